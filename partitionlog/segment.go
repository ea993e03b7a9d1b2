package partitionlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

// segment is one .log file and its two indexes, holding offsets from base up to the next
// segment's base.
//
// Concurrency: size is atomic, and the bytes below it never change while readers may look
// (TruncateTo and Close exclude readers with Log.files), so readers ReadAt without a lock.
// refs counts the log's segment list (one) and every reader or writer using the segment;
// the .log is opened on demand and may be closed by the file cache while only the list
// holds the segment (filecache.go), and closes for good when the last reference goes, so a
// segment removed by retention, DeleteRecordsBefore, TruncateTo or Close stays readable for
// readers that took it before (a removed file stays readable while open).
// index, times and maxTimestamp are written only by the appender while it holds Log.mu, and
// read by others under Log.mu (the slices are snapshotted; entries below a snapshot's length
// are never rewritten in place). They live in memory; the index files are written whole when
// the segment is sealed (deactivate), rebuilt (recoverTail, rebuildIndexes) or the log
// closed, since Open rebuilds the last segment's indexes from its .log anyway. w is the
// appender's alone, under Log.writer.
type segment struct {
	base  int64
	fs    FS
	path  string // the .log
	cache *fileCache
	file  segmentFile
	size  atomic.Int64
	refs  atomic.Int32

	index        []indexEntry
	times        []timeEntry
	recent       []batchSpan // the active segment's last batches (recent.go); under Log.mu
	maxTimestamp int64

	w struct {
		next    int64 // next offset expected in the segment
		ix      indexer
		firstTs int64 // maxTimestamp of the first batch (-1 none yet): what SegmentMs ages
		created int64 // when this process created or opened the segment, in ms
	}
}

func segmentPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// parseSegmentName returns the base offset of a NNNNNNNNNNNNNNNNNNNN.log file name.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, logSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil && base >= 0
}

// createSegment makes a new, empty active segment. The .log must not exist: a name clash
// means the directory disagrees with the log's end offset. Its index files are written
// when it is sealed.
func createSegment(fs FS, cache *fileCache, dir string, base int64, interval int32) (*segment, error) {
	s := newSegment(fs, cache, dir, base, interval)
	f, err := fs.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", base, err)
	}
	s.adopt(f)
	return s, nil
}

// openSegmentLog opens an existing .log; its indexes are loaded or rebuilt by the caller.
func openSegmentLog(fs FS, cache *fileCache, dir string, base int64, interval int32) (*segment, error) {
	s := newSegment(fs, cache, dir, base, interval)
	f, err := fs.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment %d: %w", base, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat segment %d: %w", base, err)
	}
	s.size.Store(fi.Size())
	s.adopt(f)
	return s, nil
}

// newSegment describes the segment at base in dir, its file not open yet, with the one
// reference of the list it is meant for.
func newSegment(fs FS, cache *fileCache, dir string, base int64, interval int32) *segment {
	s := &segment{base: base, fs: fs, path: segmentPath(dir, base, logSuffix), cache: cache, maxTimestamp: -1}
	s.file.slot = -1
	s.refs.Store(1)
	s.w.next = base
	s.w.ix = newIndexer(base, int64(interval))
	s.w.firstTs = -1
	return s
}

// acquire takes a reference. The caller knows the count is above zero: it holds Log.mu and
// found s in the segment list, holds the writer lock with s in the list, or holds a
// reference already.
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the .log for good.
func (s *segment) release() error {
	if s.refs.Add(-1) == 0 {
		return s.closeForGood()
	}
	return nil
}

// releaseAll releases each of segs, for readers done with a snapshot.
func releaseAll(segs []*segment) {
	for _, s := range segs {
		s.release()
	}
}

// writeIndexFiles replaces the index files' contents with index and times and fsyncs them.
// They are opened only for this: a segment keeps no descriptor on its indexes.
func (s *segment) writeIndexFiles(dir string, index []indexEntry, times []timeEntry) error {
	if err := writeSynced(s.fs, segmentPath(dir, s.base, indexSuffix), encodeIndex(index), false); err != nil {
		return fmt.Errorf("write index of segment %d: %w", s.base, err)
	}
	if err := writeSynced(s.fs, segmentPath(dir, s.base, timeIndexSuffix), encodeTimeIndex(times), false); err != nil {
		return fmt.Errorf("write time index of segment %d: %w", s.base, err)
	}
	return nil
}

// write appends whole batches (buf, described by hs) at the end of the segment. It returns
// the index entries they add, which the appender writes with appendIndexFiles and publishes.
// Nothing changes in memory if the write fails, so the next write overwrites the torn bytes.
func (s *segment) write(buf []byte, hs []batchHeader) (indexed, error) {
	pos := s.size.Load()
	f, err := s.pin()
	if err != nil {
		return indexed{}, err
	}
	defer s.unpin()
	if _, err := f.WriteAt(buf, pos); err != nil {
		return indexed{}, fmt.Errorf("write segment %d at %d: %w", s.base, pos, err)
	}
	if pos == 0 {
		s.w.firstTs = hs[0].MaxTimestamp
	}
	for _, h := range hs {
		s.w.ix.add(h, pos)
		pos += h.size()
	}
	s.w.next = hs[len(hs)-1].lastOffset() + 1
	return s.w.ix.take(pos), nil
}

// publishLocked makes written bytes and index entries visible to readers. Log.mu is held.
func (s *segment) publishLocked(out indexed) {
	s.index = append(s.index, out.index...)
	s.times = append(s.times, out.times...)
	s.recent = appendRecent(s.recent, out.recent)
	if out.sealed {
		s.recent = nil // reads of sealed segments go by the index; the memory is for the tail
	}
	s.maxTimestamp = out.maxTimestamp
	s.size.Store(out.size)
}

// full reports whether adding n more bytes, or offsets up to last, needs a new segment:
// Kafka rolls on size, on a full index, before relative offsets overflow 32 bits, and on age
// (segment.ms) as LogSegment.timeWaitedForRoll measures it: the incoming batches' largest
// timestamp (maxTs) minus the first batch's, or, when the first batch has none, the wall
// clock (nowMs) minus the segment's creation. An empty segment never rolls.
func (s *segment) full(n int64, last int64, cfg Config, maxTs, nowMs int64) bool {
	size := s.size.Load()
	waited := maxTs - s.w.firstTs
	if s.w.firstTs < 0 {
		waited = nowMs - s.w.created
	}
	switch {
	case size == 0:
		return false
	case size+n > cfg.SegmentBytes, waited > cfg.SegmentMs:
		return true
	case int64(len(s.index)+1)*indexEntrySize > int64(cfg.MaxIndexBytes),
		int64(len(s.times)+1)*timeEntrySize > int64(cfg.MaxIndexBytes):
		return true
	default:
		return last-s.base > int64(^uint32(0)>>1)
	}
}

// deactivate adds the closing time-index entry (Kafka does the same when a segment stops
// being active), writes both index files and fsyncs them and the .log. The caller publishes
// the returned entries.
func (s *segment) deactivate(dir string) (indexed, error) {
	out := s.w.ix.finish(s.size.Load())
	err := s.writeIndexFiles(dir, slices.Concat(s.index, out.index), slices.Concat(s.times, out.times))
	if err != nil {
		return out, err
	}
	return out, s.sync()
}

// sync fsyncs the .log (reopening it if the cache closed it: fsync flushes the file, not the
// descriptor).
func (s *segment) sync() error {
	f, err := s.pin()
	if err != nil {
		return err
	}
	defer s.unpin()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync segment %d: %w", s.base, err)
	}
	return nil
}

// truncate cuts the .log to size bytes and fsyncs it.
func (s *segment) truncate(size int64) error {
	f, err := s.pin()
	if err != nil {
		return err
	}
	defer s.unpin()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate segment %d to %d: %w", s.base, size, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync segment %d: %w", s.base, err)
	}
	return nil
}

// close drops the segment list's reference: the .log closes now, or when the last reader
// releases it.
func (s *segment) close() error {
	s.retire(false) // cannot fail without opening
	return s.release()
}

// remove deletes the segment's files and closes it. The caller syncs the directory.
func (s *segment) remove(dir string) error {
	_, err := s.retire(true)
	errs := []error{err}
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := s.fs.Remove(segmentPath(dir, s.base, suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, s.release())...)
}

// readHeader reads the batch header at pos, limited to the first size bytes of the log.
func (s *segment) readHeader(pos, size int64) (batchHeader, error) {
	f, err := s.pin()
	if err != nil {
		return batchHeader{}, err
	}
	defer s.unpin()
	return readHeaderAt(f, s.base, pos, size)
}

// readAt reads len(b) bytes at pos of the .log.
func (s *segment) readAt(b []byte, pos int64) error {
	f, err := s.pin()
	if err != nil {
		return err
	}
	defer s.unpin()
	if _, err := f.ReadAt(b, pos); err != nil {
		return fmt.Errorf("segment %d: read at %d: %w", s.base, pos, noEOF(err))
	}
	return nil
}

// readHeaderAt reads the header at pos of segment base's file r, whose first size bytes
// hold batches.
func readHeaderAt(r io.ReaderAt, base, pos, size int64) (batchHeader, error) {
	var b [headerSize]byte
	if size-pos < headerSize {
		return batchHeader{}, fmt.Errorf("%w: segment %d: %d bytes at %d, header needs %d", ErrCorruptBatch, base, size-pos, pos, headerSize)
	}
	if _, err := r.ReadAt(b[:], pos); err != nil {
		return batchHeader{}, fmt.Errorf("segment %d: read header at %d: %w", base, pos, noEOF(err))
	}
	h, _ := parseHeader(b[:])
	if err := checkHeader(h, size-pos); err != nil {
		return h, fmt.Errorf("segment %d at %d: %w", base, pos, err)
	}
	return h, nil
}

// noEOF turns a short read of bytes that should exist into an error that says so.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
