package partitionlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Open opens (creating if missing) the partition directory dir and recovers it:
//   - the last segment is validated batch by batch from its start (length, magic, CRC-32C,
//     offsets going forward); a torn or corrupt tail, and everything after it, is truncated,
//     and its .index/.timeindex are rebuilt from the .log;
//   - earlier segments keep their indexes unless missing or malformed, then are rebuilt;
//   - idempotent-producer state is rebuilt by reading every batch header;
//   - the leader-epoch checkpoint is loaded (rebuilt from batch headers if missing) and
//     entries at or past the log end dropped.
//
// A nil logger discards. Errors are I/O failures and an invalid cfg; corrupt data is
// repaired, not reported as an error.
func Open(dir string, cfg Config, hooks Hooks, logger *slog.Logger) (*Log, error) {
	began := time.Now()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("partition %s: %w", dir, err)
	}
	l := &Log{dir: dir, cfg: cfg, hooks: hooks, logger: discardIfNil(logger).With("dir", dir)}
	l.mu.changed = make(chan struct{})
	truncated, err := l.recoverSegments()
	if err != nil {
		return nil, fmt.Errorf("partition %s: open: %w", dir, err)
	}
	if err := l.recoverState(); err != nil {
		l.closeSegments()
		return nil, fmt.Errorf("partition %s: open: %w", dir, err)
	}
	took := time.Since(began)
	l.logger.Debug("partition log opened", "segments", len(l.mu.segments),
		"start", l.mu.start, "end", l.mu.end, "truncated_bytes", truncated, "took", took)
	if l.hooks.OnRecover != nil {
		l.hooks.OnRecover(dir, len(l.mu.segments), truncated, took)
	}
	return l, nil
}

// recoverSegments opens every segment, recovers the last, and sets the offsets. Nothing
// else can reach l yet, but fields are still set under their lock to keep the rule simple.
func (l *Log) recoverSegments() (truncated int64, err error) {
	bases, err := l.listSegments()
	if err != nil {
		return 0, err
	}
	var segs []*segment
	fail := func(err error) (int64, error) {
		for _, s := range segs {
			s.close()
		}
		return 0, err
	}
	for i, base := range bases {
		s, err := openSegmentLog(l.dir, base, l.cfg.IndexIntervalBytes)
		if err != nil {
			return fail(err)
		}
		segs = append(segs, s)
		if i < len(bases)-1 {
			err = l.loadIndexes(s, bases[i+1])
		} else {
			truncated, err = l.recoverTail(s)
		}
		if err != nil {
			return fail(err)
		}
	}
	if len(segs) == 0 {
		s, err := createSegment(l.dir, 0, l.cfg.IndexIntervalBytes)
		if err != nil {
			return 0, err
		}
		segs = append(segs, s)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.segments = segs
	l.mu.start = segs[0].base
	l.mu.end = segs[len(segs)-1].w.next
	return truncated, nil
}

// listSegments returns the base offsets of the .log files in ascending order, and removes
// leftovers of interrupted work: temp files and indexes without a log.
func (l *Log) listSegments() ([]int64, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	logs := map[string]bool{}
	for _, e := range entries {
		if base, ok := parseSegmentName(e.Name()); ok {
			bases = append(bases, base)
			logs[strings.TrimSuffix(e.Name(), logSuffix)] = true
		}
	}
	for _, e := range entries {
		name := e.Name()
		stem, isIndex := strings.CutSuffix(name, indexSuffix)
		if !isIndex {
			stem, isIndex = strings.CutSuffix(name, timeIndexSuffix)
		}
		if strings.HasSuffix(name, ".tmp") || (isIndex && !logs[stem]) {
			l.logger.Warn("removing leftover file", "file", name)
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return nil, err
			}
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// recoverTail validates the last segment from its start, truncates what follows the last
// valid batch, and rebuilds its indexes. It returns how many bytes were cut.
func (l *Log) recoverTail(s *segment) (int64, error) {
	size := s.size.Load()
	s.w.ix = newIndexer(s.base, int64(l.cfg.IndexIntervalBytes))
	s.w.next = s.base
	valid, scanErr := scanVerified(s.log, size, s.base, func(h batchHeader, pos int64) {
		s.w.ix.add(h, pos)
		s.w.next = h.lastOffset() + 1
	})
	if scanErr != nil {
		l.logger.Warn("truncating torn or corrupt tail", "segment", s.base, "valid_bytes", valid, "cut_bytes", size-valid, "err", scanErr)
		if err := s.log.Truncate(valid); err != nil {
			return 0, fmt.Errorf("truncate segment %d to %d: %w", s.base, valid, err)
		}
		if err := s.log.Sync(); err != nil {
			return 0, fmt.Errorf("sync segment %d: %w", s.base, err)
		}
	}
	out := s.w.ix.take(valid)
	s.index, s.times, s.maxTimestamp = out.index, out.times, out.maxTimestamp
	s.size.Store(valid)
	if s.w.indexFile == nil {
		if err := s.openIndexFiles(l.dir); err != nil {
			return 0, err
		}
	}
	return size - valid, s.writeIndexFiles()
}

// loadIndexes reads an inactive segment's index files, rebuilding them when missing or
// malformed. Kafka trusts them the same way: they carry no checksum.
// nextBase, the next segment's base, bounds the offsets the indexes may name.
func (l *Log) loadIndexes(s *segment, nextBase int64) error {
	index, times, err := s.readIndexFiles(l.dir, nextBase-s.base)
	if err == nil {
		err = s.checkLastIndexEntry(index)
	}
	if err != nil {
		l.logger.Warn("rebuilding segment indexes", "segment", s.base, "err", err)
		return l.rebuildIndexes(s)
	}
	s.index, s.times = index, times
	if len(times) > 0 {
		s.maxTimestamp = times[len(times)-1].timestamp
	}
	return nil
}

func (s *segment) readIndexFiles(dir string, relLimit int64) ([]indexEntry, []timeEntry, error) {
	ib, err := os.ReadFile(segmentPath(dir, s.base, indexSuffix))
	if err != nil {
		return nil, nil, err
	}
	tb, err := os.ReadFile(segmentPath(dir, s.base, timeIndexSuffix))
	if err != nil {
		return nil, nil, err
	}
	if len(tb) == 0 && s.size.Load() > 0 {
		// A finished segment always ends with a time entry unless no batch had a
		// timestamp; rebuilding is cheap enough to not tell the two apart.
		return nil, nil, errors.New("empty time index")
	}
	index, err := decodeIndex(ib, s.size.Load(), relLimit)
	if err != nil {
		return nil, nil, err
	}
	times, err := decodeTimeIndex(tb, relLimit)
	return index, times, err
}

// checkLastIndexEntry reads the batch the last entry points at: a cheap check that the index
// belongs to this log.
func (s *segment) checkLastIndexEntry(index []indexEntry) error {
	if len(index) == 0 {
		return nil
	}
	e := index[len(index)-1]
	h, err := s.readHeader(int64(e.position), s.size.Load())
	if err != nil {
		return err
	}
	if h.BaseOffset != s.base+int64(e.relOffset) {
		return fmt.Errorf("last index entry says offset %d at %d, batch there has %d", s.base+int64(e.relOffset), e.position, h.BaseOffset)
	}
	return nil
}

// rebuildIndexes regenerates an inactive segment's indexes from its batch headers. A bad
// header in an inactive segment is logged, not repaired: cutting it would leave a hole in the
// offsets, so the batches before it stay indexed and readers get ErrCorruptBatch there.
func (l *Log) rebuildIndexes(s *segment) error {
	ix := newIndexer(s.base, int64(l.cfg.IndexIntervalBytes))
	if _, err := s.scanHeaders(s.size.Load(), func(h batchHeader, pos int64) { ix.add(h, pos) }); err != nil {
		l.logger.Error("corrupt batch in inactive segment", "segment", s.base, "err", err)
	}
	out := ix.finish(s.size.Load())
	s.index, s.times, s.maxTimestamp = out.index, out.times, out.maxTimestamp
	if err := s.openIndexFiles(l.dir); err != nil {
		return err
	}
	err := s.writeIndexFiles()
	if err == nil {
		err = s.sync()
	}
	return errors.Join(err, s.closeIndexFiles())
}

// recoverState rebuilds producer state and the epoch history from the batch headers, and
// loads the epoch checkpoint.
func (l *Log) recoverState() error {
	l.writer.Lock()
	defer l.writer.Unlock()
	l.mu.Lock()
	segs, end := l.mu.segments, l.mu.end
	l.mu.Unlock()

	producers, fromLog, err := replayHeaders(segs)
	if err != nil {
		return err
	}
	epochs, found, err := readEpochCheckpoint(l.dir)
	if err != nil {
		l.logger.Warn("unreadable leader-epoch checkpoint, rebuilding from the log", "err", err)
	}
	if !found || err != nil {
		epochs = fromLog
	}
	epochs, cut := epochs.truncateFromEnd(end)
	if !found || err != nil || cut {
		if err := writeEpochCheckpoint(l.dir, epochs); err != nil {
			return err
		}
	}
	l.writer.producers = producers
	l.mu.Lock()
	l.mu.epochs = epochs
	l.mu.Unlock()
	return nil
}

// replayHeaders reads every batch header in segs, returning the producer state and the
// leader epochs they imply.
func replayHeaders(segs []*segment) (producerMap, epochCache, error) {
	producers := producerMap{}
	var epochs epochCache
	for _, s := range segs {
		_, err := s.scanHeaders(s.size.Load(), func(h batchHeader, _ int64) {
			producers.replay(h)
			epochs, _ = epochs.assign(h.LeaderEpoch, h.BaseOffset)
		})
		// Only the last segment was validated at Open; a bad header in an earlier one was
		// logged by rebuildIndexes, and what precedes it still counts.
		if err != nil && s == segs[len(segs)-1] {
			return nil, nil, err
		}
	}
	return producers, epochs, nil
}

func (l *Log) closeSegments() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.mu.segments {
		s.close()
	}
}

// scanVerified walks the batches stored in the first size bytes of r, validating each fully
// (length, magic, CRC-32C, base offset at or after next, next offset representable), and calls fn
// for each valid one. It returns the bytes of whole valid batches and why it stopped before
// size (nil when it reached size exactly).
func scanVerified(r io.ReaderAt, size int64, next int64, fn func(h batchHeader, pos int64)) (int64, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 64<<10)
	var buf []byte
	var pos int64
	for pos < size {
		h, err := readVerified(br, &buf, size-pos)
		if err == nil && (h.BaseOffset < next || h.BaseOffset >= math.MaxInt64-int64(h.LastOffsetDelta)) {
			err = fmt.Errorf("%w: base offset %d, expected at least %d", ErrCorruptBatch, h.BaseOffset, next)
		}
		if err != nil {
			return pos, fmt.Errorf("at byte %d: %w", pos, err)
		}
		fn(h, pos)
		next = h.lastOffset() + 1
		pos += h.size()
	}
	return pos, nil
}

// readVerified reads and checks one batch from br, which has avail bytes left.
func readVerified(br *bufio.Reader, buf *[]byte, avail int64) (batchHeader, error) {
	if avail < headerSize {
		return batchHeader{}, fmt.Errorf("%w: %d trailing bytes, header needs %d", ErrCorruptBatch, avail, headerSize)
	}
	*buf = slices.Grow((*buf)[:0], headerSize)[:headerSize]
	if _, err := io.ReadFull(br, *buf); err != nil {
		return batchHeader{}, noEOF(err)
	}
	h, _ := parseHeader(*buf)
	if err := checkHeader(h, avail); err != nil {
		return h, err
	}
	*buf = slices.Grow(*buf, int(h.size())-headerSize)[:h.size()]
	if _, err := io.ReadFull(br, (*buf)[headerSize:]); err != nil {
		return h, noEOF(err)
	}
	return h, checkCRC(h, *buf)
}

// scanHeaders walks batch headers without reading records or checking CRCs: for segments
// already validated, where only offsets, producers and epochs matter.
func (s *segment) scanHeaders(size int64, fn func(h batchHeader, pos int64)) (int64, error) {
	var pos int64
	for pos < size {
		h, err := s.readHeader(pos, size)
		if err != nil {
			return pos, err
		}
		fn(h, pos)
		pos += h.size()
	}
	return pos, nil
}
