package partitionlog

import (
	"fmt"
	"time"
)

// AppendResult describes where an Append put its batches.
type AppendResult struct {
	BaseOffset     int64 // offset of the first record of the first batch appended (or of the original, for a duplicate)
	LastOffset     int64
	LogStartOffset int64
	Duplicate      bool  // an idempotent retry: nothing was written, BaseOffset is the original's
	LogAppendTime  int64 // the time stamped into the batches under LogAppendTime, else -1 (the produce response's field)
}

// Append validates every batch in records (a produce request's bytes for one partition: one
// or more concatenated v2 batches) and every record in them as Kafka's LogValidator does
// (validate.go; opts says what the request and topic allow), assigns offsets by rewriting
// each batch's baseOffset in place, stamps partitionLeaderEpoch = leaderEpoch (both outside
// the CRC), checks idempotent-producer state, and writes the batches to the active segment,
// rolling first if they would not fit or the segment is older than SegmentMs. It is
// all-or-nothing: if any batch fails, nothing is written and records is left unchanged.
//
// Under MessageTimestampType LogAppendTime each batch's maxTimestamp becomes the append
// time and attribute bit 3 is set; under CreateTime maxTimestamp becomes the largest record
// timestamp when the producer's differs. Either changes the CRC, which is then recomputed:
// the only cases where the broker rewrites a batch's checksum (Kafka's LogValidator does
// the same).
//
// Batches with producerId >= 0 follow KIP-98: per producer the epoch and the last five
// batches are kept. A retry of one of those five writes nothing and returns its original
// offsets with Duplicate set; as in Kafka, one duplicate batch makes the whole append a
// duplicate. Otherwise a sequence that is not the last + 1 (wrapping after MaxInt32), an
// unknown producer or a new epoch not starting at 0 give ErrOutOfOrderSequence, and an older
// epoch gives ErrInvalidProducerEpoch.
//
// When leaderEpoch is newer than the last in the epoch history it is recorded, starting at
// the first appended offset, and the checkpoint rewritten before the data is written.
//
// FlushMessages and FlushMs may make it fsync before returning; otherwise nothing is synced.
//
// Errors: ErrCorruptBatch (a batch's length, magic or CRC), a *ValidationError for what is
// wrong inside a batch (wrapping ErrInvalidRecord, ErrInvalidTimestamp,
// ErrUnsupportedCompression or ErrTransactionalIDRequired, and naming the records to
// blame), ErrMessageTooLarge, the two producer errors, ErrClosed, or ErrStorage when a
// write, fsync or roll fails now or failed before (the end offset is then unchanged); all
// wrapped with the directory.
func (l *Log) Append(records []byte, leaderEpoch int32, opts AppendOptions) (AppendResult, error) {
	cfg := l.config()
	hs, err := checkProduced(records, cfg, opts)
	if err != nil {
		return AppendResult{}, fmt.Errorf("partition %s: append: %w", l.dir, err)
	}
	l.writer.Lock()
	defer l.writer.Unlock()
	res, err := l.appendWriterLocked(records, hs, leaderEpoch, l.config())
	if err != nil {
		return AppendResult{}, fmt.Errorf("partition %s: append: %w", l.dir, err)
	}
	return res, nil
}

// appendWriterLocked does Append's work; l.writer is held.
func (l *Log) appendWriterLocked(records []byte, hs []batchHeader, leaderEpoch int32, cfg Config) (AppendResult, error) {
	l.mu.Lock()
	closed, start, end, epochs := l.mu.closed, l.mu.start, l.mu.end, l.mu.epochs
	l.mu.Unlock()
	if closed {
		return AppendResult{}, ErrClosed
	}
	if l.writer.failed != nil {
		return AppendResult{}, l.writer.failed
	}
	assignOffsets(hs, end, leaderEpoch)
	pc := producerCheck{committed: l.writer.producers}
	pos := int64(0)
	for _, h := range hs {
		var m marker
		if h.isControl() {
			var err error
			if m, err = parseMarker(records[pos:], h); err != nil {
				return AppendResult{}, err
			}
		}
		pos += h.size()
		dup, isDup, err := pc.check(h, m)
		if err != nil {
			return AppendResult{}, err
		}
		if isDup {
			return AppendResult{BaseOffset: dup.baseOffset, LastOffset: dup.lastOffset, LogStartOffset: start, Duplicate: true, LogAppendTime: -1}, nil
		}
	}
	epochs, newEpoch := epochs.assign(leaderEpoch, end)
	if newEpoch {
		if err := writeEpochCheckpoint(l.fs, l.dir, epochs); err != nil {
			return AppendResult{}, l.failWriterLocked("epoch checkpoint", err)
		}
	}
	now := l.now()
	appendTime := int64(-1)
	if cfg.MessageTimestampType == LogAppendTime {
		appendTime = now.UnixMilli()
	}
	stampBatches(records, hs, appendTime)
	last := hs[len(hs)-1].lastOffset()
	if err := l.writeBatchesWriterLocked(records, hs, last, epochs, pc.events, cfg, now); err != nil {
		return AppendResult{}, err
	}
	pc.commit()
	return AppendResult{BaseOffset: hs[0].BaseOffset, LastOffset: last, LogStartOffset: start, LogAppendTime: appendTime}, nil
}

// assignOffsets gives the batches consecutive offsets from next, in their headers only.
func assignOffsets(hs []batchHeader, next int64, leaderEpoch int32) {
	for i := range hs {
		hs[i].BaseOffset = next
		hs[i].LeaderEpoch = leaderEpoch
		next = hs[i].lastOffset() + 1
	}
}

// stampBatches writes the assigned base offsets and leader epoch into the batch bytes, and
// with appendTime >= 0 the LogAppendTime stamp, else the attributes and maxTimestamp
// checkProduced settled on when they differ from the producer's, recomputing the CRC
// (headers too).
func stampBatches(records []byte, hs []batchHeader, appendTime int64) {
	pos := int64(0)
	for i, h := range hs {
		b := records[pos : pos+h.size()]
		putBaseOffset(b, h.BaseOffset)
		putLeaderEpoch(b, h.LeaderEpoch)
		if appendTime >= 0 {
			hs[i].Attributes, hs[i].MaxTimestamp, hs[i].CRC = putLogAppendTime(b, appendTime)
		} else {
			hs[i].CRC = putTimestamps(b, h.Attributes, h.MaxTimestamp)
		}
		pos += h.size()
	}
}

// writeBatchesWriterLocked writes stamped batches to the active segment, rolling first if
// needed, fsyncs if the flush policy says so, then publishes them to readers with the
// transactions they start and end. Any I/O failure fails the log before anything is
// published. l.writer is held.
func (l *Log) writeBatchesWriterLocked(records []byte, hs []batchHeader, last int64, epochs epochCache, txns []txnEvent, cfg Config, now time.Time) error {
	active, err := l.activeSegment()
	if err != nil {
		return err
	}
	maxTs := int64(-1)
	for _, h := range hs {
		maxTs = max(maxTs, h.MaxTimestamp)
	}
	if active.full(int64(len(records)), last, cfg, maxTs, now.UnixMilli()) {
		if active, err = l.rollWriterLocked(active, cfg, now); err != nil {
			return l.failWriterLocked("roll", err)
		}
	}
	out, err := active.write(records, hs)
	if err != nil {
		return l.failWriterLocked("write", err)
	}
	l.writer.unflushed += last - hs[0].BaseOffset + 1
	if flushDue(cfg, l.writer.unflushed, now.Sub(l.writer.lastFlush)) {
		if err := l.flushWriterLocked(active); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	active.publishLocked(out)
	l.mu.end = last + 1
	l.mu.epochs = epochs
	if len(txns) > 0 {
		l.mu.txns.apply(txns, l.highWatermarkLocked())
	}
	l.signalChangedLocked()
	return nil
}

// flushDue applies flush.messages and flush.ms to what is unflushed. flush.ms is
// compared in milliseconds: Kafka's default, Long.MAX_VALUE, overflows a Duration.
func flushDue(cfg Config, unflushed int64, sinceFlush time.Duration) bool {
	return cfg.FlushMessages > 0 && unflushed >= cfg.FlushMessages ||
		cfg.FlushMs > 0 && sinceFlush.Milliseconds() >= cfg.FlushMs
}

// rollWriterLocked finishes the active segment (closing time entry, index files, fsync),
// writes the high watermark if it changed, and starts a new one at the log end offset.
// l.writer is held.
func (l *Log) rollWriterLocked(old *segment, cfg Config, now time.Time) (*segment, error) {
	out, err := old.deactivate(l.dir)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	aborted := abortedIn(l.mu.txns.aborted, old.base, old.w.next)
	l.mu.Unlock()
	if err := writeTxnIndex(l.fs, l.dir, old.base, aborted); err != nil {
		return nil, err
	}
	if err := l.checkpointHighWatermark(true); err != nil {
		return nil, err
	}
	base := old.w.next
	// Every .txnindex below base is written: producer state as of base can be too.
	l.writeSnapshotWriterLocked(base)
	s, err := createSegment(l.fs, l.fileCache, l.dir, base, cfg.IndexIntervalBytes)
	if err != nil {
		return nil, err
	}
	s.w.created = now.UnixMilli()
	if err := l.fs.SyncDir(l.dir); err != nil {
		s.remove(l.dir)
		return nil, fmt.Errorf("sync dir after creating segment %d: %w", base, err)
	}
	l.writer.unflushed, l.writer.lastFlush = 0, now
	l.mu.Lock()
	old.publishLocked(out)
	l.mu.segments = append(l.mu.segments[:len(l.mu.segments):len(l.mu.segments)], s)
	l.mu.Unlock()
	l.logger.Debug("rolled segment", "base", base)
	if l.hooks.OnRoll != nil {
		l.hooks.OnRoll(l.dir, base)
	}
	return s, nil
}
