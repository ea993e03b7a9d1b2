package partitionlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Suffixes of a round's output files, added after the segment file's own suffix:
// 00000000000000000000.log.cleaned, .index.cleaned, .timeindex.cleaned, then .swap.
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

var segmentSuffixes = []string{indexSuffix, timeIndexSuffix, logSuffix} // the .log last

// eachSealedBatch streams the verified batches (CRC included) of sealed segment s, size
// bytes long, to fn. It holds files shared, so TruncateTo and Close cannot cut or close s
// meanwhile, and fails with ErrCompactionAborted when s is no longer a sealed segment of
// the log. b is reused after fn returns.
func (l *Log) eachSealedBatch(s *segment, size int64, fn func(b []byte, h batchHeader, pos int64) error) error {
	l.files.RLock()
	defer l.files.RUnlock()
	if !l.acquireSealed(s) {
		return ErrCompactionAborted
	}
	defer s.release()
	f, err := s.openFile()
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 64<<10)
	var buf []byte
	for pos := int64(0); pos < size; {
		h, err := readVerified(br, &buf, size-pos)
		if err != nil {
			return fmt.Errorf("segment %d at %d: %w", s.base, pos, err)
		}
		if err := fn(buf[:h.size()], h, pos); err != nil {
			return err
		}
		pos += h.size()
	}
	return nil
}

// acquireSealed takes a reference on s if it is still a sealed segment of the log, so that
// retention removing it meanwhile does not close its file.
func (l *Log) acquireSealed(s *segment) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	segs := l.mu.segments
	if l.mu.closed || !slices.Contains(segs[:len(segs)-1], s) {
		return false
	}
	s.acquire()
	return true
}

// buildKeyMap records each key's latest offset over the plan's dirty segments.
func (l *Log) buildKeyMap(p *compactPlan) (keyMap, error) {
	keys := keyMap{}
	for i := p.firstDirty; i < len(p.segs); i++ {
		err := l.eachSealedBatch(p.segs[i], p.sizes[i], func(b []byte, h batchHeader, _ int64) error {
			return keys.addBatch(b, h, p.aborted)
		})
		if err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// writeCleaned filters every batch of the plan into .cleaned segment files, fsynced. On
// error the returned set holds what was written, for discard.
func (l *Log) writeCleaned(p *compactPlan, f *batchFilter) (*cleanedSet, int64, error) {
	w := &cleanedWriter{fs: l.fs, dir: l.dir, cfg: p.cfg, set: &cleanedSet{}, first: p.segs[0].base}
	var removed int64
	for i, s := range p.segs {
		err := l.eachSealedBatch(s, p.sizes[i], func(b []byte, h batchHeader, pos int64) error {
			keepEmpty := i == p.lastFull && pos+h.size() == p.sizes[i]
			out, n, err := f.filter(b, h, keepEmpty)
			removed += int64(n)
			if err != nil || out == nil {
				return err
			}
			oh, err := parseHeader(out)
			if err != nil {
				return err
			}
			return w.add(out, oh)
		})
		if err != nil {
			return w.set, removed, err
		}
	}
	return w.set, removed, w.finish()
}

// cleanedSegment is one output segment: its .log stays open, and becomes the new
// segment's file (renames do not affect an open file).
type cleanedSegment struct {
	base int64
	f    File
	size int64
	out  indexed
	next int64
}

// cleanedSet is a round's output. committed is set once every file is renamed to .swap
// and the directory synced: from then on the round must finish, not be discarded.
type cleanedSet struct {
	segs      []*cleanedSegment
	committed bool
}

// cleanedWriter groups output batches into segments the way appends roll them: a new one
// when the next batch would pass SegmentBytes, fill an index, or overflow relative
// offsets. The first keeps the range's first base offset, so the log start is unchanged;
// the others start at their first batch.
type cleanedWriter struct {
	fs    FS
	dir   string
	cfg   Config
	set   *cleanedSet
	first int64
	cur   *cleanedSegment
	bw    *bufio.Writer
	ix    indexer
}

func (w *cleanedWriter) add(b []byte, h batchHeader) error {
	if w.cur == nil || w.full(h) {
		base := h.BaseOffset
		if w.cur == nil {
			base = w.first
		}
		if err := w.finish(); err != nil {
			return err
		}
		if err := w.start(base); err != nil {
			return err
		}
	}
	if _, err := w.bw.Write(b); err != nil {
		return fmt.Errorf("write cleaned segment %d: %w", w.cur.base, err)
	}
	w.ix.add(h, w.cur.size)
	w.cur.size += h.size()
	w.cur.next = h.lastOffset() + 1
	return nil
}

func (w *cleanedWriter) full(h batchHeader) bool {
	size, maxIndex := w.cur.size, int64(w.cfg.MaxIndexBytes)
	switch {
	case size == 0:
		return false
	case size+h.size() > w.cfg.SegmentBytes:
		return true
	case int64(len(w.ix.pending.index)+1)*indexEntrySize > maxIndex,
		int64(len(w.ix.pending.times)+2)*timeEntrySize > maxIndex: // +1 for finish's entry
		return true
	default:
		return h.lastOffset()-w.cur.base > math.MaxInt32
	}
}

func (w *cleanedWriter) start(base int64) error {
	f, err := w.fs.OpenFile(segmentPath(w.dir, base, logSuffix+cleanedSuffix), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create cleaned segment %d: %w", base, err)
	}
	w.cur = &cleanedSegment{base: base, f: f, next: base}
	w.set.segs = append(w.set.segs, w.cur)
	w.bw = bufio.NewWriterSize(&fileAppender{f: f}, 256<<10)
	w.ix = newIndexer(base, int64(w.cfg.IndexIntervalBytes))
	return nil
}

// finish completes the current segment: flush, indexes built as appends build them
// (closing time entry included), everything fsynced.
func (w *cleanedWriter) finish() error {
	c := w.cur
	if c == nil {
		return nil
	}
	w.cur = nil
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("write cleaned segment %d: %w", c.base, err)
	}
	c.out = w.ix.finish(c.size)
	err := errors.Join(
		writeSynced(w.fs, segmentPath(w.dir, c.base, indexSuffix+cleanedSuffix), encodeIndex(c.out.index), true),
		writeSynced(w.fs, segmentPath(w.dir, c.base, timeIndexSuffix+cleanedSuffix), encodeTimeIndex(c.out.times), true),
		c.f.Sync(),
	)
	if err != nil {
		return fmt.Errorf("finish cleaned segment %d: %w", c.base, err)
	}
	return nil
}

// fileAppender writes a File sequentially from its start.
type fileAppender struct {
	f   File
	pos int64
}

func (a *fileAppender) Write(b []byte) (int, error) {
	n, err := a.f.WriteAt(b, a.pos)
	a.pos += int64(n)
	return n, err
}

// writeSynced writes a whole file and fsyncs it: a new one with excl, else replacing what
// is there.
func writeSynced(fs FS, path string, b []byte, excl bool) error {
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if excl {
		flag = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	f, err := fs.OpenFile(path, flag, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// commit renames every output file from .cleaned to .swap and syncs the directory. The
// round is committed when no .cleaned file is left: a crash before that rolls back.
func (c *cleanedSet) commit(fs FS, dir string) error {
	if err := fs.SyncDir(dir); err != nil { // the .cleaned files' names, before any rename
		return err
	}
	for _, s := range c.segs {
		for _, suffix := range segmentSuffixes {
			from := segmentPath(dir, s.base, suffix+cleanedSuffix)
			if err := fs.Rename(from, strings.TrimSuffix(from, cleanedSuffix)+swapSuffix); err != nil {
				return err
			}
		}
		if err := compactStep("swap-rename"); err != nil {
			return err
		}
	}
	if err := fs.SyncDir(dir); err != nil {
		return err
	}
	c.committed = true
	return nil
}

// discard closes and deletes an uncommitted round's files: every .swap first, then every
// .cleaned, so that a crash in between still finds a .cleaned file and rolls back.
func (c *cleanedSet) discard(fs FS, dir string) error {
	var errs []error
	for _, s := range c.segs {
		errs = append(errs, s.f.Close())
	}
	for _, suffix := range []string{swapSuffix, cleanedSuffix} {
		for _, s := range c.segs {
			for _, seg := range segmentSuffixes {
				errs = append(errs, removeIfExists(fs, segmentPath(dir, s.base, seg+suffix)))
			}
		}
		errs = append(errs, fs.SyncDir(dir))
	}
	return errors.Join(errs...)
}

// segments turns the committed output into sealed segments. Their files stay open, and
// the cache keeps them so (their paths are still *.swap) until allowEviction.
func (c *cleanedSet) segments(fs FS, cache *fileCache, dir string, interval int32) []*segment {
	out := make([]*segment, len(c.segs))
	for i, cs := range c.segs {
		s := newSegment(fs, cache, dir, cs.base, interval)
		s.file.keepOpen = true
		s.adopt(cs.f)
		s.size.Store(cs.size)
		s.index, s.times, s.maxTimestamp = cs.out.index, cs.out.times, cs.out.maxTimestamp
		s.w.next = cs.next
		out[i] = s
	}
	return out
}

// publishCompaction checks that the plan still describes the log, commits the round,
// replaces the old segments by the new ones (publishSegmentsLocked, the step retention
// uses too), and finishes the swap on disk. The writer lock is held throughout, so no
// append, truncation, retention or close interleaves. Old segments are closed after: a
// reader still holding one keeps its file open until it lets go.
func (l *Log) publishCompaction(p *compactPlan, out *cleanedSet, run *cleanerRun, removedAborts []int64) error {
	l.writer.Lock()
	defer l.writer.Unlock()
	if err := l.checkPlanWriterLocked(p, run); err != nil {
		return err
	}
	// Open before the swap deletes and replaces the files: readers that took the old
	// segments keep reading them, never the new files under the same names.
	if err := retireAll(p.segs); err != nil {
		return err
	}
	// Producer snapshots count on the .txnindex files of the segments below them, which
	// the swap moves and rewrites: they go first, and a fresh one follows the rewrite.
	if err := removeSnapshots(l.fs, l.dir, func(int64) bool { return true }); err != nil {
		return err
	}
	if err := out.commit(l.fs, l.dir); err != nil {
		return err
	}
	if err := compactStep("swapped"); err != nil {
		return err
	}
	fresh := out.segments(l.fs, l.fileCache, l.dir, p.cfg.IndexIntervalBytes)
	l.mu.Lock()
	err := l.publishSegmentsLocked(p.segs, fresh, l.mu.start)
	if err == nil && len(removedAborts) > 0 {
		gone := map[int64]bool{}
		for _, off := range removedAborts {
			gone[off] = true
		}
		l.mu.txns.aborted = slices.DeleteFunc(slices.Clone(l.mu.txns.aborted), func(a AbortedTxn) bool { return gone[a.LastOffset] })
	}
	l.mu.Unlock()
	if err != nil {
		return err // cannot happen: checkPlanWriterLocked saw the same list
	}
	for _, s := range p.segs {
		if err := s.close(); err != nil {
			l.logger.Warn("closing a compacted segment", "segment", s.base, "err", err)
		}
	}
	if err := compactStep("published"); err != nil {
		return err
	}
	if err := completeSwaps(l.fs, l.dir); err != nil {
		return err
	}
	for _, s := range fresh {
		s.allowEviction()
	}
	// Markers keep their offsets, but segments may merge: each aborted transaction's entry
	// goes to the file of the segment that now holds its marker.
	l.mu.Lock()
	segs, aborted := l.mu.segments, l.mu.txns.aborted
	l.mu.Unlock()
	if err := syncTxnIndexes(l.fs, l.dir, segs, aborted); err != nil {
		return err
	}
	l.writeSnapshotWriterLocked(l.EndOffset())
	return nil
}

// checkPlanWriterLocked fails with ErrCompactionAborted unless the planned segments are
// still the log's first ones, unchanged and sealed, and no truncation aborted the round.
func (l *Log) checkPlanWriterLocked(p *compactPlan, run *cleanerRun) error {
	if run.wasAborted() {
		return ErrCompactionAborted
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.mu.segments
	switch {
	case l.mu.closed:
		return ErrClosed
	case len(cur) <= len(p.segs):
		return ErrCompactionAborted
	}
	for i, s := range p.segs {
		if cur[i] != s || s.size.Load() != p.sizes[i] {
			return ErrCompactionAborted
		}
	}
	return nil
}

// finishLeftoverSwap resolves what an earlier round of this process left when it failed
// after its commit (or in discarding), before a new round writes files.
func (l *Log) finishLeftoverSwap() error {
	l.writer.Lock()
	defer l.writer.Unlock()
	if _, err := l.activeSegment(); err != nil {
		return err
	}
	return resolveCompactionLeftovers(l.fs, l.dir)
}

// resolveCompactionLeftovers finishes or undoes a round interrupted by a crash. Open must
// call it before listing segments.
//
//   - Any .cleaned file left: the round never committed. Every .swap file is deleted,
//     then every .cleaned file; the old segments are intact.
//   - Otherwise, .swap files: the round committed. They replace the plain segment files
//     whose base offsets lie between the first .swap's base and the last .swap's last
//     offset (the forward path keeps the cleaned range's last batch, so that is where the
//     range ended), then are renamed to their final names, highest base first.
//
// Both are idempotent, so a crash during resolution is resolved by the next.
func resolveCompactionLeftovers(fs FS, dir string) error {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, cleanedSuffix) }) {
		return completeSwaps(fs, dir)
	}
	for _, suffix := range []string{swapSuffix, cleanedSuffix} {
		for _, n := range names {
			if strings.HasSuffix(n, suffix) {
				if err := removeIfExists(fs, filepath.Join(dir, n)); err != nil {
					return err
				}
			}
		}
		if err := fs.SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// completeSwaps finishes a committed round; see resolveCompactionLeftovers. Old files are
// all deleted, and the deletions synced, before the first rename: so when some .swap
// files were already renamed, only the lowest remain, the renamed ones lie above their
// range, and nothing new is deleted.
func completeSwaps(fs FS, dir string) error {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return err
	}
	var swaps []int64
	isSwap := map[int64]bool{}
	for _, n := range names {
		if base, ok := parseSegmentName(strings.TrimSuffix(n, swapSuffix)); ok && strings.HasSuffix(n, swapSuffix) {
			swaps = append(swaps, base)
			isSwap[base] = true
		}
	}
	if len(swaps) == 0 {
		return removeStraySwaps(fs, dir, names)
	}
	slices.Sort(swaps)
	hi, err := lastOffsetOfFile(fs, segmentPath(dir, swaps[len(swaps)-1], logSuffix+swapSuffix))
	if err != nil {
		return fmt.Errorf("read swap segment %d: %w", swaps[len(swaps)-1], err)
	}
	hi = max(hi, swaps[len(swaps)-1])
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, n := range names {
		base, suffix, ok := parseSegmentFile(n)
		if !ok || base < swaps[0] || base > hi {
			continue
		}
		// A swap segment's own index already renamed (no .swap left for it) is new: keep it.
		if isSwap[base] && suffix != logSuffix && !have[n+swapSuffix] {
			continue
		}
		if err := removeIfExists(fs, filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	if err := fs.SyncDir(dir); err != nil {
		return err
	}
	if err := compactStep("deleted-old"); err != nil {
		return err
	}
	for _, base := range slices.Backward(swaps) {
		for _, suffix := range segmentSuffixes {
			final := segmentPath(dir, base, suffix)
			if err := fs.Rename(final+swapSuffix, final); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := compactStep("final-rename"); err != nil {
			return err
		}
	}
	return fs.SyncDir(dir)
}

// removeStraySwaps deletes index .swap files whose .log.swap is gone; the forward path
// renames the .log last, so they cannot normally exist.
func removeStraySwaps(fs FS, dir string, names []string) error {
	for _, n := range names {
		if strings.HasSuffix(n, swapSuffix) {
			if err := removeIfExists(fs, filepath.Join(dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseSegmentFile splits NNNNNNNNNNNNNNNNNNNN.{log,index,timeindex}.
func parseSegmentFile(name string) (int64, string, bool) {
	for _, suffix := range segmentSuffixes {
		if stem, ok := strings.CutSuffix(name, suffix); ok {
			base, ok := parseSegmentName(stem + logSuffix)
			return base, suffix, ok
		}
	}
	return 0, "", false
}

// lastOffsetOfFile returns the last offset of the last batch in a .log file, or -1.
func lastOffsetOfFile(fs FS, path string) (int64, error) {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return -1, err
	}
	last := int64(-1)
	_, err = scanHeadersAt(f, 0, 0, fi.Size(), func(h batchHeader, _ int64) { last = h.lastOffset() })
	return last, err
}

func removeIfExists(fs FS, path string) error {
	if err := fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
