package partitionlog

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Log compaction for cleanup.policy=compact, after Kafka's LogCleaner (KIP-58 for the
// compaction lag, KIP-534 for the tombstone delete horizon).
//
// A round copies every sealed segment below the first uncleanable offset (the active
// segment's base, or lower for MinCompactionLag and MaxCleanableOffset), keeping per key
// only the record with the latest offset, and swaps the copies in. Offsets never change
// and order is kept; dropped records leave gaps. The active segment is never touched.
//
//	plan      writer held briefly: snapshot the segment list and producer state
//	key map   no lock: full key -> latest offset, over the dirty segments
//	copy      no lock: filter every batch into <base>.log.cleaned (+ .index/.timeindex.cleaned)
//	commit    writer held: check nothing changed, rename all .cleaned -> .swap, sync dir
//	publish   writer, files, mu: replace the segments in the list, close the old files
//	complete  writer held: delete the old files, sync dir, rename .swap -> final names
//
// Crash resolution (resolveCompactionLeftovers, at Open): if any .cleaned file is left the
// commit never finished, so every .cleaned and .swap file goes and the old segments stand;
// otherwise .swap files finish the swap exactly as the forward path does.
//
// Records without a key are kept: Kafka rejects them at produce time on compacted topics
// (INVALID_RECORD), which the produce path must do; here they are never dropped.
//
// Transactions: a round never reaches past the last stable offset, so every transaction in
// it is decided. Records of aborted transactions (by the aborted-transaction index) are
// dropped, as Kafka's cleaner drops them, and supersede nothing; committed transactional
// records compact like any others. A marker whose transaction kept no batch gets a delete
// horizon and goes in a round past it, as in Kafka (batchFilter.markerFilter); an ABORT
// marker's aborted-transaction entry goes with it.

// Sentinel errors of Compact.
var (
	// ErrCompactionInProgress: another Compact on the same log is running.
	ErrCompactionInProgress = errors.New("compaction already in progress")
	// ErrCompactionAborted: the log changed under the round (TruncateTo, segments removed,
	// Close); nothing was replaced. Try again later.
	ErrCompactionAborted = errors.New("compaction aborted: the log changed")
)

// attrDeleteHorizon is attribute bit 6 (KIP-534): baseTimestamp holds the time after which
// the batch's tombstones may be removed, instead of the first record's timestamp. Record
// timestamp deltas are relative to it, so record timestamps read the same.
const attrDeleteHorizon = 0x40

// CompactConfig tunes a compaction round. Zero fields take Kafka's defaults.
type CompactConfig struct {
	// DeleteRetention keeps a tombstone this long after the round that first cleaned it
	// (delete.retention.ms, 24h).
	DeleteRetention time.Duration
	// MinCleanableDirtyRatio: run only when dirty bytes / cleanable bytes reaches it
	// (min.cleanable.dirty.ratio, 0.5). In (0, 1]; use a tiny value to always run.
	MinCleanableDirtyRatio float64
	// MinCompactionLag: a dirty segment holding a record newer than now minus this, and
	// every segment after it, is not cleaned (min.compaction.lag.ms, KIP-58, 0).
	MinCompactionLag time.Duration
	// MaxCleanableOffset, when positive, bounds the round: only segments wholly below it
	// are cleaned. Pass the high watermark as Kafka does, so nothing a truncation could
	// still remove is rewritten. 0: the active segment only. Either way the log stops
	// before its first unstable offset, so no transaction in the range is undecided.
	MaxCleanableOffset int64
}

func (c CompactConfig) withDefaults() (CompactConfig, error) {
	if c.DeleteRetention == 0 {
		c.DeleteRetention = 24 * time.Hour
	}
	if c.MinCleanableDirtyRatio == 0 {
		c.MinCleanableDirtyRatio = 0.5
	}
	switch {
	case c.DeleteRetention < 0:
		return c, fmt.Errorf("partitionlog: DeleteRetention %v is negative", c.DeleteRetention)
	case c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1 || math.IsNaN(c.MinCleanableDirtyRatio):
		return c, fmt.Errorf("partitionlog: MinCleanableDirtyRatio %v out of (0, 1]", c.MinCleanableDirtyRatio)
	case c.MinCompactionLag < 0:
		return c, fmt.Errorf("partitionlog: MinCompactionLag %v is negative", c.MinCompactionLag)
	case c.MaxCleanableOffset < 0:
		return c, fmt.Errorf("partitionlog: MaxCleanableOffset %d is negative", c.MaxCleanableOffset)
	}
	return c, nil
}

// CompactStats describes a round. SegmentsIn == 0 means nothing was cleanable or the dirty
// ratio was below the threshold; DirtyRatio says which.
type CompactStats struct {
	SegmentsIn, SegmentsOut int
	BytesIn, BytesOut       int64
	RecordsRemoved          int64
	DirtyRatio              float64 // dirty bytes / cleanable bytes when the round was planned
	Took                    time.Duration
}

// Compact runs one compaction round when the dirty ratio is at least
// cfg.MinCleanableDirtyRatio, and otherwise returns at once with SegmentsIn == 0. now is
// the cleaner's clock: it sets and checks tombstone delete horizons and the compaction lag.
//
// Appends are not stalled: the writer lock is held to snapshot the segment list and to
// commit and publish, not while copying. Readers see the old segments or the new, both
// holding the same latest record per key at the same offsets.
//
// Errors: ErrCompactionInProgress, ErrCompactionAborted, ErrClosed, ErrCorruptBatch for a
// bad batch in a sealed segment (nothing is rewritten then), an invalid cfg, or an I/O
// failure; all wrapped with the directory. After an I/O failure past the commit the log
// stays readable and the directory is finished by the next Compact or Open.
func (l *Log) Compact(now time.Time, cfg CompactConfig) (CompactStats, error) {
	began := time.Now()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return CompactStats{}, err
	}
	run, err := startCleaner(l)
	if err != nil {
		return CompactStats{}, fmt.Errorf("partition %s: compact: %w", l.dir, err)
	}
	defer run.finish()
	stats, err := l.compact(now, cfg, run)
	stats.Took = time.Since(began)
	if err != nil {
		return stats, fmt.Errorf("partition %s: compact: %w", l.dir, err)
	}
	if stats.SegmentsIn > 0 {
		l.logger.Info("compacted", "segments_in", stats.SegmentsIn, "segments_out", stats.SegmentsOut,
			"bytes_in", stats.BytesIn, "bytes_out", stats.BytesOut, "records_removed", stats.RecordsRemoved,
			"dirty_ratio", stats.DirtyRatio, "took", stats.Took)
	}
	return stats, nil
}

func (l *Log) compact(now time.Time, cfg CompactConfig, run *cleanerRun) (CompactStats, error) {
	if err := l.finishLeftoverSwap(); err != nil {
		return CompactStats{}, err
	}
	p, err := l.planCompaction(now, cfg)
	if err != nil || p.empty() {
		return CompactStats{DirtyRatio: p.dirtyRatio()}, err
	}
	stats := CompactStats{SegmentsIn: len(p.segs), BytesIn: p.totalBytes, DirtyRatio: p.dirtyRatio()}
	keys, err := l.buildKeyMap(p)
	if err != nil {
		return stats, err
	}
	f := batchFilter{keys: keys, now: now.UnixMilli(), horizon: now.Add(cfg.DeleteRetention).UnixMilli(), retained: p.retained, aborted: p.aborted}
	outs, removed, err := l.writeCleaned(p, &f)
	stats.RecordsRemoved = removed
	if err == nil {
		err = compactStep("cleaned")
	}
	if err == nil {
		err = l.publishCompaction(p, outs, run, f.removedAborts)
	}
	if err != nil {
		if !errors.Is(err, errCrashedAtStep) && !outs.committed {
			err = errors.Join(err, outs.discard(l.fs, l.dir))
		}
		return stats, err
	}
	stats.SegmentsOut = len(outs.segs)
	for _, o := range outs.segs {
		stats.BytesOut += o.size
	}
	if err := compactStep("finished"); err != nil {
		return stats, err
	}
	return stats, writeCleanerCheckpoint(l.fs, l.dir, p.end)
}

// compactPlan is a round's snapshot: what to rewrite and what counts as dirty.
type compactPlan struct {
	segs       []*segment // sealed segments to rewrite, ascending; a prefix of the log's list
	sizes      []int64    // their sizes (sealed: they no longer change)
	firstDirty int        // index in segs of the first segment holding dirty offsets
	lastFull   int        // index in segs of the last non-empty segment, -1 if none
	end        int64      // first offset not cleaned: the base of the segment after segs
	cfg        Config     // the log's config when planned
	retained   map[int64]bool
	aborted    abortedSet
	dirtyBytes int64 // bytes in segs[firstDirty:]
	totalBytes int64 // bytes in segs
}

func (p *compactPlan) empty() bool {
	return p == nil || len(p.segs) == 0 || p.dirtyBytes == 0 || p.lastFull < 0
}

func (p *compactPlan) dirtyRatio() float64 {
	if p == nil || p.totalBytes == 0 {
		return 0
	}
	return float64(p.dirtyBytes) / float64(p.totalBytes)
}

// planCompaction snapshots the log under the writer lock and decides the round's range
// as Kafka's LogCleanerManager does: from the log start to the first uncleanable offset,
// with everything from the cleaner checkpoint on counting as dirty. It returns an empty
// plan when there is nothing to do or the dirty ratio is below the threshold.
func (l *Log) planCompaction(now time.Time, cc CompactConfig) (*compactPlan, error) {
	p := &compactPlan{lastFull: -1}
	var segs []*segment
	var maxTs []int64
	var closed bool
	l.writer.Lock()
	l.mu.Lock()
	closed, segs, p.cfg = l.mu.closed, l.mu.segments, l.cfg // cfg: SetConfig writes it holding writer and mu
	for _, s := range segs {
		maxTs = append(maxTs, s.maxTimestamp)
	}
	unstable := l.mu.txns.firstUnstable(l.highWatermarkLocked())
	p.aborted = newAbortedSet(l.mu.txns.aborted)
	l.mu.Unlock()
	failed := l.writer.failed
	if !closed {
		p.retained = retainedBatches(l.writer.producers)
	}
	l.writer.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case failed != nil:
		return nil, failed
	}
	// A corrupt checkpoint only costs work: everything counts as dirty. One that cannot be
	// read now fails the round, which the cleaner retries.
	checkpoint, err := readCleanerCheckpoint(l.fs, l.dir)
	switch {
	case errors.Is(err, ErrCorruptCheckpoint):
		l.logger.Warn("corrupt cleaner checkpoint, cleaning from the log start", "err", err)
		checkpoint = -1
	case err != nil:
		return nil, err
	}
	active := segs[len(segs)-1].base
	if checkpoint < segs[0].base || checkpoint > active {
		// Below the start after retention, or past the active segment after a truncation.
		checkpoint = segs[0].base
	}
	lagLimit := now.Add(-cc.MinCompactionLag).UnixMilli()
	p.firstDirty = -1
	for i, s := range segs[:len(segs)-1] {
		next := segs[i+1].base
		if cc.MaxCleanableOffset > 0 && next > cc.MaxCleanableOffset || next > unstable {
			break
		}
		dirty := next > checkpoint
		if dirty && cc.MinCompactionLag > 0 && maxTs[i] > lagLimit {
			break
		}
		size := s.size.Load()
		if dirty && p.firstDirty < 0 {
			p.firstDirty = i
		}
		if dirty {
			p.dirtyBytes += size
		}
		if size > 0 {
			p.lastFull = i
		}
		p.totalBytes += size
		p.segs = append(p.segs, s)
		p.sizes = append(p.sizes, size)
		p.end = next
	}
	if p.empty() || p.dirtyRatio() < cc.MinCleanableDirtyRatio {
		return &compactPlan{dirtyBytes: p.dirtyBytes, totalBytes: p.totalBytes, lastFull: -1}, nil
	}
	return p, nil
}

// retainedBatches lists the last offsets of the batches idempotent-producer state keeps
// (the last five per producer): a fully compacted batch among them keeps an empty header,
// so a retry of it is still detected as a duplicate after the state is rebuilt from the
// log. Kafka keeps only each producer's last batch; keeping the window costs at most five
// 61-byte headers per live producer. l.writer is held.
func retainedBatches(producers producerMap) map[int64]bool {
	out := map[int64]bool{}
	for _, e := range producers {
		for _, b := range e.batches {
			out[b.lastOffset] = true
		}
	}
	return out
}

// compactStepHook, when set by a test, runs between the steps of a round; an error stops
// the round there, as a crash would, leaving every file as it is.
var compactStepHook func(step string) error

// errCrashedAtStep marks an error from compactStepHook: no cleanup runs after it.
var errCrashedAtStep = errors.New("stopped by compactStepHook")

func compactStep(step string) error {
	if compactStepHook == nil {
		return nil
	}
	if err := compactStepHook(step); err != nil {
		return fmt.Errorf("%w at %q: %w", errCrashedAtStep, step, err)
	}
	return nil
}
