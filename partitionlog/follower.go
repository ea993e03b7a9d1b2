package partitionlog

import "fmt"

// What a follower replica needs from its log, after Kafka's UnifiedLog.appendAsFollower and
// the fetcher's truncation (KIP-101, KIP-279): append the leader's batches as they are, find
// where the local log diverged from the leader's, and keep the high watermark
// (highwatermark.go).

// AppendAsFollower appends whole v2 batches copied from the leader's log (a replica Fetch
// response's records for this partition), keeping their base offsets and partition leader
// epochs: nothing is reassigned or stamped, and the bytes go to disk as received.
//
// Batches are validated as Append validates them (framing, magic, CRC-32C), except that
// max.message.bytes does not apply and compacted batches are accepted: fewer records than
// their offset range, or none. Offsets must increase from batch to batch.
//
// Batches entirely below EndOffset are skipped (a re-sent prefix). The first batch kept
// must start exactly at EndOffset: one starting above it, or one straddling it, gives
// ErrOffsetGap, and nothing is written. A follower of a compacted topic, whose leader may
// have no batch at all at EndOffset, uses AppendAsFollowerAt instead.
//
// Producer state is replayed from the batch headers without sequence checks (the leader
// made them), so a retry that reaches this replica after it becomes leader is still a
// duplicate. Each leader epoch newer than the history is recorded at the base offset of
// the first batch carrying it, and the checkpoint rewritten before the data, so
// EndOffsetForEpoch answers here as on the leader. Rolling, indexes, the flush policy,
// storage failures and Changed behave as for Append. The batches' bytes are not modified.
//
// It returns the log's last offset afterwards (EndOffset()-1), also when everything was
// skipped. Errors: ErrCorruptBatch, ErrInvalidRecord, ErrOffsetGap, ErrClosed, ErrStorage;
// all wrapped with the directory.
func (l *Log) AppendAsFollower(records []byte) (lastOffset int64, err error) {
	return l.appendAsFollower(-1, records)
}

// AppendAsFollowerAt is AppendAsFollower for the leader's answer to a fetch at fetchOffset,
// which must still be EndOffset (else ErrOffsetGap: the answer is stale, say from before a
// truncation; refetch). The first batch may then start above fetchOffset: the leader holds
// nothing in between, as happens when compaction removed whole batches, and the follower's
// log keeps the same gap, as Kafka's followers do.
func (l *Log) AppendAsFollowerAt(fetchOffset int64, records []byte) (lastOffset int64, err error) {
	if fetchOffset < 0 {
		return 0, fmt.Errorf("partition %s: append as follower: %w: fetch offset %d", l.dir, ErrOffsetGap, fetchOffset)
	}
	return l.appendAsFollower(fetchOffset, records)
}

// appendAsFollower does the work of both; fetchOffset -1 allows no gap.
func (l *Log) appendAsFollower(fetchOffset int64, records []byte) (int64, error) {
	hs, err := splitFollowerBatches(records)
	if err != nil {
		return 0, fmt.Errorf("partition %s: append as follower: %w", l.dir, err)
	}
	l.writer.Lock()
	defer l.writer.Unlock()
	last, err := l.appendAsFollowerWriterLocked(fetchOffset, records, hs)
	if err != nil {
		return 0, fmt.Errorf("partition %s: append as follower: %w", l.dir, err)
	}
	return last, nil
}

// appendAsFollowerWriterLocked writes the batches not yet in the log; l.writer is held.
func (l *Log) appendAsFollowerWriterLocked(fetchOffset int64, records []byte, hs []batchHeader) (int64, error) {
	l.mu.Lock()
	closed, end, epochs := l.mu.closed, l.mu.end, l.mu.epochs
	l.mu.Unlock()
	switch {
	case closed:
		return 0, ErrClosed
	case l.writer.failed != nil:
		return 0, l.writer.failed
	case fetchOffset >= 0 && fetchOffset != end:
		return 0, fmt.Errorf("%w: fetched at %d but the log ends at %d", ErrOffsetGap, fetchOffset, end)
	}
	records, hs = skipBelow(records, hs, end)
	if len(hs) == 0 {
		return end - 1, nil
	}
	switch first := hs[0]; {
	case first.BaseOffset < end:
		return 0, fmt.Errorf("%w: batch [%d, %d] straddles the log end %d", ErrOffsetGap, first.BaseOffset, first.lastOffset(), end)
	case first.BaseOffset > end && fetchOffset < 0:
		return 0, fmt.Errorf("%w: batch starts at %d, the log ends at %d", ErrOffsetGap, first.BaseOffset, end)
	}
	pc := producerCheck{committed: l.writer.producers}
	newEpoch := false
	pos := int64(0)
	for _, h := range hs {
		var m marker
		if h.isControl() {
			m, _ = parseMarker(records[pos:], h) // the leader accepted it; an unknown control type ends nothing
		}
		pos += h.size()
		pc.replay(h, m)
		var added bool
		epochs, added = epochs.assign(h.LeaderEpoch, h.BaseOffset)
		newEpoch = newEpoch || added
	}
	if newEpoch {
		if err := writeEpochCheckpoint(l.fs, l.dir, epochs); err != nil {
			return 0, l.failWriterLocked("epoch checkpoint", err)
		}
	}
	last := hs[len(hs)-1].lastOffset()
	if err := l.writeBatchesWriterLocked(records, hs, last, epochs, pc.events, l.config(), l.now()); err != nil {
		return 0, err
	}
	pc.commit()
	return last, nil
}

// skipBelow drops the leading batches that end below offset.
func skipBelow(records []byte, hs []batchHeader, offset int64) ([]byte, []batchHeader) {
	skip := int64(0)
	i := 0
	for i < len(hs) && hs[i].lastOffset() < offset {
		skip += hs[i].size()
		i++
	}
	return records[skip:], hs[i:]
}

// LatestEpoch returns the newest leader epoch in the log's epoch history, -1 if none: what
// a follower asks the leader about with OffsetForLeaderEpoch (KIP-101), and Fetch v12+'s
// LastFetchedEpoch.
func (l *Log) LatestEpoch() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.epochs.latest()
}

// EpochStartOffset returns the offset at which leader epoch epoch wrote its first record in
// this log, and false when the history does not hold epoch (never seen, truncated away,
// or below the log start, where the history keeps only the epoch in force at the start).
func (l *Log) EpochStartOffset(epoch int32) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.epochs.startOf(epoch)
}

// DivergencePoint returns the offset a follower truncates to (TruncateTo) given the
// leader's OffsetForLeaderEpoch answer (leaderEpoch, leaderEndOffset) to a request for this
// log's LatestEpoch, by the rules of Kafka's fetcher (KIP-101, KIP-279):
//   - leaderEndOffset undefined (-1): the leader knows nothing of the epoch; truncate to
//     the high watermark, the pre-KIP-101 rule;
//   - leaderEpoch undefined (-1) with an end offset: min(leaderEndOffset, log end);
//   - otherwise min(leaderEndOffset, this log's end of the largest epoch <= leaderEpoch
//     (EndOffsetForEpoch), log end); when this log has no such epoch, min(leaderEndOffset,
//     log end).
//
// The answer is never above EndOffset. When leaderEpoch is not the epoch asked about, or
// not one this log holds, the point is safe but may be above the true divergence (the
// leader has epochs this log missed): after truncating, the caller asks again about the
// new LatestEpoch, until DivergencePoint returns EndOffset (KIP-279's loop). A point below
// StartOffset cannot be truncated to: the log must be emptied and refetched.
func (l *Log) DivergencePoint(leaderEpoch int32, leaderEndOffset int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.mu.end
	switch {
	case leaderEndOffset < 0:
		return l.highWatermarkLocked()
	case leaderEpoch < 0:
		return min(leaderEndOffset, end)
	}
	_, epochEnd := l.mu.epochs.endOffsetFor(leaderEpoch, end)
	if epochEnd < 0 {
		return min(leaderEndOffset, end)
	}
	return min(leaderEndOffset, epochEnd, end)
}
