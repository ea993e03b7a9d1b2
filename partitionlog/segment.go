package partitionlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
// refs counts the log's segment list (one) and every reader holding the segment; the .log
// closes when the last lets go, so a segment removed by retention, DeleteRecordsBefore,
// TruncateTo or Close stays readable for readers that took it before (a removed file stays
// readable while open).
// index, times and maxTimestamp are written only by the appender while it holds Log.mu, and
// read by others under Log.mu (the slices are snapshotted; entries below a snapshot's length
// are never rewritten in place). w is the appender's alone, under Log.writer.
type segment struct {
	base int64
	fs   FS
	log  File
	size atomic.Int64
	refs atomic.Int32

	index        []indexEntry
	times        []timeEntry
	maxTimestamp int64

	w struct {
		indexFile File // nil once the segment is no longer active
		timeFile  File
		next      int64 // next offset expected in the segment
		ix        indexer
		firstTs   int64 // maxTimestamp of the first batch (-1 none yet): what SegmentMs ages
		created   int64 // when this process created or opened the segment, in ms
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
// means the directory disagrees with the log's end offset.
func createSegment(fs FS, dir string, base int64, interval int32) (*segment, error) {
	f, err := fs.OpenFile(segmentPath(dir, base, logSuffix), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", base, err)
	}
	s := newSegment(base, f, interval)
	s.fs = fs
	if err := s.openIndexFiles(dir); err != nil {
		f.Close()
		return nil, err
	}
	if err := s.writeIndexFiles(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// openSegmentLog opens an existing .log; its indexes are loaded or rebuilt by the caller.
func openSegmentLog(fs FS, dir string, base int64, interval int32) (*segment, error) {
	f, err := fs.OpenFile(segmentPath(dir, base, logSuffix), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment %d: %w", base, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat segment %d: %w", base, err)
	}
	s := newSegment(base, f, interval)
	s.fs = fs
	s.size.Store(fi.Size())
	return s, nil
}

// newSegment wraps an open .log; its FS is the operating system's unless the caller sets fs.
func newSegment(base int64, f File, interval int32) *segment {
	s := &segment{base: base, fs: osFS{}, log: f, maxTimestamp: -1}
	s.refs.Store(1)
	s.w.next = base
	s.w.ix = newIndexer(base, int64(interval))
	s.w.firstTs = -1
	return s
}

// acquire takes a reader's reference. The caller holds Log.mu and found s in the segment
// list, so the list's reference keeps the count above zero.
func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the .log.
func (s *segment) release() error {
	if s.refs.Add(-1) == 0 {
		return s.log.Close()
	}
	return nil
}

// releaseAll releases each of segs, for readers done with a snapshot.
func releaseAll(segs []*segment) {
	for _, s := range segs {
		s.release()
	}
}

// openIndexFiles opens the index files for writing, making the segment appendable.
func (s *segment) openIndexFiles(dir string) error {
	var err error
	if s.w.indexFile, err = s.fs.OpenFile(segmentPath(dir, s.base, indexSuffix), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return fmt.Errorf("open index of segment %d: %w", s.base, err)
	}
	if s.w.timeFile, err = s.fs.OpenFile(segmentPath(dir, s.base, timeIndexSuffix), os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		s.w.indexFile.Close()
		s.w.indexFile = nil
		return fmt.Errorf("open time index of segment %d: %w", s.base, err)
	}
	return nil
}

// writeIndexFiles replaces the index files' contents with the in-memory entries.
func (s *segment) writeIndexFiles() error {
	if err := rewriteFile(s.w.indexFile, encodeIndex(s.index)); err != nil {
		return fmt.Errorf("write index of segment %d: %w", s.base, err)
	}
	if err := rewriteFile(s.w.timeFile, encodeTimeIndex(s.times)); err != nil {
		return fmt.Errorf("write time index of segment %d: %w", s.base, err)
	}
	return nil
}

func rewriteFile(f File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt(b, 0)
	return err
}

// write appends whole batches (buf, described by hs) at the end of the segment. It returns
// the index entries they add, which the appender writes with appendIndexFiles and publishes.
// Nothing changes in memory if the write fails, so the next write overwrites the torn bytes.
func (s *segment) write(buf []byte, hs []batchHeader) (indexed, error) {
	pos := s.size.Load()
	if _, err := s.log.WriteAt(buf, pos); err != nil {
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

func (s *segment) appendIndexFiles(out indexed) error {
	if len(out.index) > 0 {
		if _, err := s.w.indexFile.WriteAt(encodeIndex(out.index), int64(len(s.index))*indexEntrySize); err != nil {
			return fmt.Errorf("append index of segment %d: %w", s.base, err)
		}
	}
	if len(out.times) > 0 {
		if _, err := s.w.timeFile.WriteAt(encodeTimeIndex(out.times), int64(len(s.times))*timeEntrySize); err != nil {
			return fmt.Errorf("append time index of segment %d: %w", s.base, err)
		}
	}
	return nil
}

// publishLocked makes written bytes and index entries visible to readers. Log.mu is held.
func (s *segment) publishLocked(out indexed) {
	s.index = append(s.index, out.index...)
	s.times = append(s.times, out.times...)
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

// deactivate writes the closing time-index entry (Kafka does the same when a segment stops
// being active), syncs everything and closes the index files. The caller publishes the
// returned entries.
func (s *segment) deactivate() (indexed, error) {
	out := s.w.ix.finish(s.size.Load())
	if err := s.appendIndexFiles(out); err != nil {
		return out, err
	}
	err := s.sync()
	return out, errors.Join(err, s.closeIndexFiles())
}

func (s *segment) sync() error {
	var errs []error
	for _, f := range []File{s.log, s.w.indexFile, s.w.timeFile} {
		if f != nil {
			if err := f.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("sync segment %d: %w", s.base, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (s *segment) closeIndexFiles() error {
	var errs []error
	for _, f := range []*File{&s.w.indexFile, &s.w.timeFile} {
		if *f != nil {
			errs = append(errs, (*f).Close())
			*f = nil
		}
	}
	return errors.Join(errs...)
}

// close closes the index files and drops the segment list's reference: the .log closes now,
// or when the last reader releases it.
func (s *segment) close() error {
	return errors.Join(s.closeIndexFiles(), s.release())
}

// remove deletes the segment's files and closes it. The caller syncs the directory.
func (s *segment) remove(dir string) error {
	errs := []error{s.closeIndexFiles()}
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := s.fs.Remove(segmentPath(dir, s.base, suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, s.release())...)
}

// readHeader reads the batch header at pos, limited to the first size bytes of the log.
func (s *segment) readHeader(pos, size int64) (batchHeader, error) {
	var b [headerSize]byte
	if size-pos < headerSize {
		return batchHeader{}, fmt.Errorf("%w: segment %d: %d bytes at %d, header needs %d", ErrCorruptBatch, s.base, size-pos, pos, headerSize)
	}
	if _, err := s.log.ReadAt(b[:], pos); err != nil {
		return batchHeader{}, fmt.Errorf("segment %d: read header at %d: %w", s.base, pos, noEOF(err))
	}
	h, _ := parseHeader(b[:])
	if err := checkHeader(h, size-pos); err != nil {
		return h, fmt.Errorf("segment %d at %d: %w", s.base, pos, err)
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
