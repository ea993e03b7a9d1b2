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
//   - leftovers of interrupted work are removed: temp files, indexes without a log, and
//     *.deleted segment files whose deletion a crash interrupted;
//   - the last segment is validated batch by batch from its start (length, magic, CRC-32C,
//     offsets going forward); a torn or corrupt tail, and everything after it, is truncated,
//     and its .index/.timeindex are rebuilt from the .log. A half-finished roll leaves an
//     empty or header-less last segment, which this makes empty and active;
//   - earlier segments keep their indexes unless missing or malformed, then are rebuilt;
//   - the log start offset is the first segment's base, raised to the log-start-offset
//     checkpoint DeleteRecordsBefore wrote; a checkpoint past the recovered end (the tail
//     was lost in a crash) empties the log and restarts it there, so offsets never go back;
//     a corrupt one fails Open with ErrCorruptCheckpoint (see loadStartOffset);
//   - producer state (idempotence, open and aborted transactions) is loaded from the latest
//     usable snapshot and the batch headers after it (snapshot.go), or rebuilt by reading
//     every batch header when no snapshot can be used;
//   - the leader-epoch checkpoint is loaded (rebuilt from batch headers if missing) and
//     entries at or past the log end dropped;
//   - the high watermark is loaded from its file and clamped to [start, end] (the log
//     start offset when the file is missing or corrupt).
//
// Hooks.OnRecoverProgress hears how far it got. A nil logger discards. Errors are I/O
// failures (a file that cannot be read now, such as EMFILE or EIO, is never taken for a
// corrupt one: Open fails, and can be retried), a corrupt log-start-offset checkpoint
// (ErrCorruptCheckpoint), and an invalid cfg; other corrupt data is repaired.
func Open(dir string, cfg Config, hooks Hooks, logger *slog.Logger) (*Log, error) {
	began := time.Now()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("partition %s: %w", dir, err)
	}
	// A crash mid-compaction leaves .cleaned or .swap files: roll back or finish the swap
	// before the segments are read.
	if err := resolveCompactionLeftovers(cfg.FS, dir); err != nil {
		return nil, fmt.Errorf("partition %s: open: %w", dir, err)
	}
	l := &Log{dir: dir, fs: cfg.FS, now: cfg.Now, fileCache: cfg.fileCache, cfg: cfg, hooks: hooks, logger: discardIfNil(logger).With("dir", dir)}
	l.mu.changed = make(chan struct{})
	l.writer.lastFlush = l.now()
	progress := &recoverProgress{fn: hooks.OnRecoverProgress, dir: dir, now: l.now, last: l.now()}
	truncated, err := l.recoverSegments(progress)
	if err != nil {
		return nil, fmt.Errorf("partition %s: open: %w", dir, err)
	}
	// The high watermark first: it tells which completed transactions still hold the LSO.
	if err := l.loadHighWatermark(); err != nil {
		l.closeSegments()
		return nil, fmt.Errorf("partition %s: open: %w", dir, err)
	}
	if err := l.recoverState(progress); err != nil {
		l.closeSegments()
		return nil, fmt.Errorf("partition %s: open: %w", dir, err)
	}
	if err := syncTxnIndexes(l.fs, dir, l.mu.segments, l.mu.txns.aborted); err != nil {
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

// recoverProgress calls Hooks.OnRecoverProgress at most every progressEvery while Open goes
// through the .log files: once to load or rebuild indexes (validating the last segment),
// and once to replay batch headers, so total is twice their size.
type recoverProgress struct {
	fn             func(dir string, bytesChecked, bytesTotal int64)
	dir            string
	now            func() time.Time
	last           time.Time
	checked, total int64
}

const progressEvery = 500 * time.Millisecond

func (p *recoverProgress) add(n int64) {
	if p == nil {
		return
	}
	p.checked += n
	if p.fn == nil {
		return
	}
	if t := p.now(); t.Sub(p.last) >= progressEvery {
		p.last = t
		p.fn(p.dir, p.checked, p.total)
	}
}

// recoverSegments opens every segment, recovers the last, and sets the offsets. Nothing
// else can reach l yet, but fields are still set under their lock to keep the rule simple.
func (l *Log) recoverSegments(progress *recoverProgress) (truncated int64, err error) {
	cfg := l.config()
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
	for _, base := range bases {
		s, err := openSegmentLog(l.fs, l.fileCache, l.dir, base, cfg.IndexIntervalBytes)
		if err != nil {
			return fail(err)
		}
		s.w.created = l.now().UnixMilli()
		segs = append(segs, s)
		progress.total += 2 * s.size.Load()
	}
	for i, s := range segs {
		if i < len(segs)-1 {
			err = l.loadIndexes(s, segs[i+1].base, progress)
			s.closeIdle() // sealed: reopened by the first read that needs it
		} else {
			truncated, err = l.recoverTail(s, progress)
		}
		if err != nil {
			return fail(err)
		}
	}
	if len(segs) == 0 {
		s, err := l.createFirstSegment(0)
		if err != nil {
			return 0, err
		}
		segs = append(segs, s)
	}
	start, segs, err := l.loadStartOffset(segs)
	if err != nil {
		return fail(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.segments = segs
	l.mu.end = segs[len(segs)-1].w.next
	l.mu.start = start
	return truncated, nil
}

// createFirstSegment starts an empty log at base.
func (l *Log) createFirstSegment(base int64) (*segment, error) {
	s, err := createSegment(l.fs, l.fileCache, l.dir, base, l.config().IndexIntervalBytes)
	if err != nil {
		return nil, err
	}
	s.w.created = l.now().UnixMilli()
	if err := l.fs.SyncDir(l.dir); err != nil {
		s.close()
		return nil, fmt.Errorf("sync dir after creating segment %d: %w", base, err)
	}
	return s, nil
}

// loadStartOffset returns the log start offset: the first segment's base, or the
// log-start-offset checkpoint when that is higher. A checkpoint past the end means records
// up to it were deleted but the tail was lost: every segment goes, and segs becomes one
// empty segment at the checkpoint (Kafka's truncateFullyAndStartAt).
//
// A checkpoint that cannot be read now (EMFILE, EIO) fails Open: the caller retries. A
// corrupt one fails it too, naming the file and what the operator can do. Writes replace
// the file atomically (temp file, fsync, rename, directory fsync), so no crash leaves it
// torn: bad contents mean something outside damaged it, and then no value is safe to
// assume. The first segment's base would move the start backwards and show consumers
// records DeleteRecords removed; the end offset would hide live records. Refusing keeps
// both; a replicated partition serves from its other replicas meanwhile.
func (l *Log) loadStartOffset(segs []*segment) (int64, []*segment, error) {
	start := segs[0].base
	ckpt, found, err := readStartOffsetCheckpoint(l.fs, l.dir)
	switch {
	case errors.Is(err, ErrCorruptCheckpoint):
		return 0, segs, fmt.Errorf("%w; the log start offset is unknown: restore the file, or remove it to start the log at its first segment's base offset %d (records DeleteRecords removed above that would be readable again)", err, start)
	case err != nil:
		return 0, segs, err
	case !found || ckpt <= start:
		return start, segs, nil
	}
	end := segs[len(segs)-1].w.next
	if ckpt <= end {
		return ckpt, segs, nil
	}
	l.logger.Warn("log start offset past the recovered end: restarting the log there", "start_offset", ckpt, "end", end)
	for i, s := range segs {
		if err := s.remove(l.dir); err != nil {
			return 0, segs[i+1:], err
		}
	}
	s, err := l.createFirstSegment(ckpt)
	if err != nil {
		return 0, nil, err
	}
	return ckpt, []*segment{s}, nil
}

// listSegments returns the base offsets of the .log files in ascending order, and removes
// leftovers of interrupted work: temp files, indexes without a log, and *.deleted files
// (retention renames a segment's files to those before publishing the new segment list).
func (l *Log) listSegments() ([]int64, error) {
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	logs := map[string]bool{}
	for _, name := range names {
		if base, ok := parseSegmentName(name); ok {
			bases = append(bases, base)
			logs[strings.TrimSuffix(name, logSuffix)] = true
		}
	}
	removed := false
	for _, name := range names {
		stem, isIndex := strings.CutSuffix(name, indexSuffix)
		if !isIndex {
			stem, isIndex = strings.CutSuffix(name, timeIndexSuffix)
		}
		if !isIndex {
			stem, isIndex = strings.CutSuffix(name, txnIndexSuffix)
		}
		if strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, deletedSuffix) || (isIndex && !logs[stem]) {
			l.logger.Warn("removing leftover file", "file", name)
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				return nil, err
			}
			removed = true
		}
	}
	if removed {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return nil, err
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// recoverTail validates the last segment from its start, truncates what follows the last
// valid batch, and rebuilds its indexes. It returns how many bytes were cut.
func (l *Log) recoverTail(s *segment, progress *recoverProgress) (int64, error) {
	size := s.size.Load()
	s.w.ix = newIndexer(s.base, int64(l.config().IndexIntervalBytes))
	s.w.next = s.base
	s.w.firstTs = -1
	f, err := s.pin()
	if err != nil {
		return 0, err
	}
	valid, scanErr := scanVerified(f, size, s.base, func(h batchHeader, pos int64) {
		if pos == 0 {
			s.w.firstTs = h.MaxTimestamp
		}
		s.w.ix.add(h, pos)
		s.w.next = h.lastOffset() + 1
		progress.add(h.size())
	})
	s.unpin()
	progress.add(size - valid)
	if scanErr != nil && !isCorruption(scanErr) {
		return 0, fmt.Errorf("read segment %d: %w", s.base, scanErr) // unreadable now, not torn: cut nothing
	}
	if scanErr != nil {
		l.logger.Warn("truncating torn or corrupt tail", "segment", s.base, "valid_bytes", valid, "cut_bytes", size-valid, "err", scanErr)
		if err := s.truncate(valid); err != nil {
			return 0, err
		}
	}
	out := s.w.ix.take(valid)
	s.index, s.times, s.maxTimestamp = out.index, out.times, out.maxTimestamp
	s.size.Store(valid)
	return size - valid, s.writeIndexFiles(l.dir, s.index, s.times)
}

// loadIndexes reads an inactive segment's index files, rebuilding them when missing or
// malformed. Kafka trusts them the same way: they carry no checksum. A file that cannot be
// read now (EMFILE, EIO) is neither: Open fails, naming it, rather than rewrite an index
// that may be fine. nextBase, the next segment's base, bounds the offsets they may name.
func (l *Log) loadIndexes(s *segment, nextBase int64, progress *recoverProgress) error {
	index, times, err := s.readIndexFiles(l.dir, nextBase-s.base)
	if err == nil {
		err = s.checkLastIndexEntry(index)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		l.logger.Info("rebuilding missing segment indexes", "segment", s.base, "err", err)
		return l.rebuildIndexes(s, progress)
	case err != nil && isCorruption(err):
		l.logger.Warn("rebuilding corrupt segment indexes", "segment", s.base, "err", err)
		return l.rebuildIndexes(s, progress)
	case err != nil:
		return fmt.Errorf("load indexes of segment %d: %w", s.base, err)
	}
	progress.add(s.size.Load())
	s.index, s.times = index, times
	if len(times) > 0 {
		s.maxTimestamp = times[len(times)-1].timestamp
	}
	return nil
}

func (s *segment) readIndexFiles(dir string, relLimit int64) ([]indexEntry, []timeEntry, error) {
	ib, err := readFSFile(s.fs, segmentPath(dir, s.base, indexSuffix))
	if err != nil {
		return nil, nil, err
	}
	tb, err := readFSFile(s.fs, segmentPath(dir, s.base, timeIndexSuffix))
	if err != nil {
		return nil, nil, err
	}
	if len(tb) == 0 && s.size.Load() > 0 {
		// A finished segment always ends with a time entry unless no batch had a
		// timestamp; rebuilding is cheap enough to not tell the two apart.
		return nil, nil, fmt.Errorf("%w: empty time index", errCorruptIndex)
	}
	index, err := decodeIndex(ib, s.size.Load(), relLimit)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errCorruptIndex, err)
	}
	times, err := decodeTimeIndex(tb, relLimit)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errCorruptIndex, err)
	}
	return index, times, nil
}

// errCorruptIndex marks index contents that do not parse or do not match the log.
var errCorruptIndex = errors.New("corrupt index")

// isCorruption tells contents that are wrong (a torn or corrupt batch, an index or
// checkpoint that does not parse) from failures to read them now (EMFILE, EIO), which
// must never be repaired as if the contents were bad.
func isCorruption(err error) bool {
	return errors.Is(err, ErrCorruptBatch) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, errCorruptIndex) || errors.Is(err, ErrCorruptCheckpoint)
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
		return fmt.Errorf("%w: last entry says offset %d at %d, batch there has %d", errCorruptIndex, s.base+int64(e.relOffset), e.position, h.BaseOffset)
	}
	return nil
}

// rebuildIndexes regenerates an inactive segment's indexes from its batch headers. A bad
// header in an inactive segment is logged, not repaired: cutting it would leave a hole in the
// offsets, so the batches before it stay indexed and readers get ErrCorruptBatch there.
func (l *Log) rebuildIndexes(s *segment, progress *recoverProgress) error {
	ix := newIndexer(s.base, int64(l.config().IndexIntervalBytes))
	scanned, err := s.scanHeaders(s.size.Load(), func(h batchHeader, pos int64) {
		ix.add(h, pos)
		progress.add(h.size())
	})
	progress.add(s.size.Load() - scanned)
	if err != nil && !isCorruption(err) {
		return fmt.Errorf("rebuild indexes of segment %d: %w", s.base, err)
	}
	if err != nil {
		l.logger.Error("corrupt batch in inactive segment: reads stop there; run `strait log verify` on the partition and refetch it from another replica",
			"segment", s.base, "err", err)
	}
	out := ix.finish(s.size.Load())
	s.index, s.times, s.maxTimestamp = out.index, out.times, out.maxTimestamp
	return s.writeIndexFiles(l.dir, s.index, s.times)
}

// recoverState rebuilds producer state and the epoch history from the batch headers, and
// loads the epoch checkpoint.
func (l *Log) recoverState(progress *recoverProgress) error {
	l.writer.Lock()
	defer l.writer.Unlock()
	l.mu.Lock()
	segs, start, end, hw := l.mu.segments, l.mu.start, l.mu.end, l.highWatermarkLocked()
	l.mu.Unlock()

	// A corrupt epoch checkpoint is rebuilt from the batches' leader epochs, which say the
	// same; one that cannot be read now fails Open rather than be rewritten.
	epochs, found, err := readEpochCheckpoint(l.fs, l.dir)
	switch {
	case errors.Is(err, ErrCorruptCheckpoint):
		l.logger.Warn("corrupt leader-epoch checkpoint, rebuilding it from the log", "err", err)
	case err != nil:
		return err
	}
	// A snapshot spares reading every header, unless the epochs must come from them.
	var producers producerMap
	var txns txnState
	loaded := false
	if found && err == nil {
		producers, txns, loaded = l.loadSnapshot(segs, end, hw, progress)
	}
	if !loaded {
		var fromLog epochCache
		var scanErr error
		producers, fromLog, txns, scanErr = replayHeaders(segs, -1, producerMap{}, txnState{}, hw, progress)
		if scanErr != nil {
			return scanErr
		}
		if !found || err != nil {
			epochs = fromLog
		}
	}
	epochs, cut := epochs.truncateFromEnd(end)
	epochs, moved := epochs.truncateFromStart(start)
	if !found || err != nil || cut || moved {
		if err := writeEpochCheckpoint(l.fs, l.dir, epochs); err != nil {
			return err
		}
	}
	l.writer.producers = producers
	txns.dropBelow(start)
	l.mu.Lock()
	l.mu.epochs = epochs
	l.mu.txns = txns
	l.mu.Unlock()
	return nil
}

// replayHeaders reads the batch headers in segs from offset from on (the marker of every
// control batch too) over producers and txns, the state below from, and returns the
// producer state, the leader epochs of the batches read and the transactions they imply;
// hw says which completed transactions are replicated. from must fall between batches.
func replayHeaders(segs []*segment, from int64, producers producerMap, txns txnState, hw int64, progress *recoverProgress) (producerMap, epochCache, txnState, error) {
	pc := producerCheck{committed: producers, staged: producers}
	var epochs epochCache
	for i, s := range segs {
		size := s.size.Load()
		if i+1 < len(segs) && segs[i+1].base <= from {
			progress.add(size) // wholly below from
			continue
		}
		pos := int64(0)
		if from > s.base {
			pos = lookupPosition(s.index, uint32(min(from-s.base, math.MaxUint32)))
			progress.add(pos)
		}
		var straddles error
		scanned, err := s.scanBatchesFrom(pos, size, func(h batchHeader, m marker) {
			progress.add(h.size())
			switch {
			case h.lastOffset() < from || straddles != nil:
				return
			case h.BaseOffset < from:
				straddles = fmt.Errorf("batch %d-%d straddles the snapshot offset %d", h.BaseOffset, h.lastOffset(), from)
				return
			}
			pc.replay(h, m)
			if len(pc.events) > 0 {
				txns.apply(pc.events, hw)
				pc.events = pc.events[:0]
			}
			epochs, _ = epochs.assign(h.LeaderEpoch, h.BaseOffset)
		})
		progress.add(size - scanned)
		if straddles != nil {
			return nil, nil, txnState{}, straddles
		}
		// Only the last segment was validated at Open; a bad header in an earlier one was
		// logged by rebuildIndexes, and what precedes it still counts.
		if err != nil && s == segs[len(segs)-1] {
			return nil, nil, txnState{}, err
		}
	}
	return producers, epochs, txns, nil
}

// scanBatchesFrom is scanHeaders from byte pos that also reads the marker of each control
// batch (the zero marker when it cannot be read as one).
func (s *segment) scanBatchesFrom(pos, size int64, fn func(h batchHeader, m marker)) (int64, error) {
	f, err := s.pin()
	if err != nil {
		return 0, err
	}
	defer s.unpin()
	return scanHeadersAt(f, s.base, pos, size, func(h batchHeader, pos int64) {
		var m marker
		if h.isControl() {
			m, _ = readMarkerAt(f, h, pos)
		}
		fn(h, m)
	})
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
	f, err := s.pin()
	if err != nil {
		return 0, err
	}
	defer s.unpin()
	return scanHeadersAt(f, s.base, 0, size, fn)
}

// scanHeadersAt is scanHeaders over the file r of segment base, from byte pos.
func scanHeadersAt(r io.ReaderAt, base, pos, size int64, fn func(h batchHeader, pos int64)) (int64, error) {
	for pos < size {
		h, err := readHeaderAt(r, base, pos, size)
		if err != nil {
			return pos, err
		}
		fn(h, pos)
		pos += h.size()
	}
	return pos, nil
}
