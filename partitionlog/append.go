package partitionlog

import (
	"fmt"
)

// AppendResult describes where an Append put its batches.
type AppendResult struct {
	BaseOffset     int64 // offset of the first record of the first batch appended (or of the original, for a duplicate)
	LastOffset     int64
	LogStartOffset int64
	Duplicate      bool // an idempotent retry: nothing was written, BaseOffset is the original's
}

// Append validates every batch in records (a produce request's bytes for one partition: one
// or more concatenated v2 batches), assigns offsets by rewriting each batch's baseOffset in
// place, stamps partitionLeaderEpoch = leaderEpoch (both outside the CRC), checks
// idempotent-producer state, and writes the batches to the active segment, rolling first if
// they would not fit. It is all-or-nothing: if any batch fails, nothing is written and
// records is left unchanged.
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
// Errors: ErrCorruptBatch, ErrInvalidRecord, ErrMessageTooLarge, the two producer errors,
// ErrClosed, or an I/O failure; all wrapped with the directory.
func (l *Log) Append(records []byte, leaderEpoch int32) (AppendResult, error) {
	hs, err := splitBatches(records, l.cfg.MaxMessageBytes)
	if err != nil {
		return AppendResult{}, fmt.Errorf("partition %s: append: %w", l.dir, err)
	}
	l.writer.Lock()
	defer l.writer.Unlock()
	res, err := l.appendWriterLocked(records, hs, leaderEpoch)
	if err != nil {
		return AppendResult{}, fmt.Errorf("partition %s: append: %w", l.dir, err)
	}
	return res, nil
}

// appendWriterLocked does Append's work; l.writer is held.
func (l *Log) appendWriterLocked(records []byte, hs []batchHeader, leaderEpoch int32) (AppendResult, error) {
	l.mu.Lock()
	closed, start, end, epochs := l.mu.closed, l.mu.start, l.mu.end, l.mu.epochs
	l.mu.Unlock()
	if closed {
		return AppendResult{}, ErrClosed
	}
	assignOffsets(hs, end, leaderEpoch)
	pc := producerCheck{committed: l.writer.producers, staged: producerMap{}}
	for _, h := range hs {
		dup, isDup, err := pc.check(h)
		if err != nil {
			return AppendResult{}, err
		}
		if isDup {
			return AppendResult{BaseOffset: dup.baseOffset, LastOffset: dup.lastOffset, LogStartOffset: start, Duplicate: true}, nil
		}
	}
	epochs, newEpoch := epochs.assign(leaderEpoch, end)
	if newEpoch {
		if err := writeEpochCheckpoint(l.dir, epochs); err != nil {
			return AppendResult{}, err
		}
	}
	stampBatches(records, hs)
	last := hs[len(hs)-1].lastOffset()
	if err := l.writeBatchesWriterLocked(records, hs, last, epochs); err != nil {
		return AppendResult{}, err
	}
	pc.commit()
	return AppendResult{BaseOffset: hs[0].BaseOffset, LastOffset: last, LogStartOffset: start}, nil
}

// assignOffsets gives the batches consecutive offsets from next, in their headers only.
func assignOffsets(hs []batchHeader, next int64, leaderEpoch int32) {
	for i := range hs {
		hs[i].BaseOffset = next
		hs[i].LeaderEpoch = leaderEpoch
		next = hs[i].lastOffset() + 1
	}
}

// stampBatches writes the assigned base offsets and leader epoch into the batch bytes.
func stampBatches(records []byte, hs []batchHeader) {
	pos := int64(0)
	for _, h := range hs {
		putBaseOffset(records[pos:], h.BaseOffset)
		putLeaderEpoch(records[pos:], h.LeaderEpoch)
		pos += h.size()
	}
}

// writeBatchesWriterLocked writes stamped batches to the active segment, rolling first if
// needed, then publishes them to readers. l.writer is held.
func (l *Log) writeBatchesWriterLocked(records []byte, hs []batchHeader, last int64, epochs epochCache) error {
	active, err := l.activeSegment()
	if err != nil {
		return err
	}
	if active.full(int64(len(records)), last, l.cfg) {
		if active, err = l.rollWriterLocked(active); err != nil {
			return err
		}
	}
	out, err := active.write(records, hs)
	if err != nil {
		return err
	}
	if err := active.appendIndexFiles(out); err != nil {
		// The data is written; the active segment's indexes are rebuilt at Open anyway.
		l.logger.Error("index write failed", "segment", active.base, "err", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	active.publishLocked(out)
	l.mu.end = last + 1
	l.mu.epochs = epochs
	l.signalChangedLocked()
	return nil
}

// rollWriterLocked finishes the active segment (closing time entry, fsync) and starts a new
// one at the log end offset. l.writer is held.
func (l *Log) rollWriterLocked(old *segment) (*segment, error) {
	out, err := old.deactivate()
	if err != nil {
		return nil, err
	}
	base := old.w.next
	s, err := createSegment(l.dir, base, l.cfg.IndexIntervalBytes)
	if err != nil {
		return nil, err
	}
	if err := syncDir(l.dir); err != nil {
		s.remove(l.dir)
		return nil, fmt.Errorf("sync dir after creating segment %d: %w", base, err)
	}
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
