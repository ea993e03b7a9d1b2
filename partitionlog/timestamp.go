package partitionlog

import (
	"encoding/binary"
	"fmt"
)

// OffsetForTimestamp answers ListOffsets by time: the first offset whose timestamp is >= ts,
// and that timestamp, or (-1, -1, nil) when no record is that recent.
//
// Precision: for uncompressed batches with CreateTime it is the exact record, as in Kafka.
// For compressed batches (records are not decompressed here) and LogAppendTime batches it is
// the batch: the batch's base offset and its maxTimestamp.
//
// Records below the log start offset are not considered. Segments whose largest timestamp
// is below ts are skipped; in the first that qualifies the
// .timeindex gives the starting point and batch headers are scanned forward.
//
// Errors: ErrClosed, ErrCorruptBatch for a bad header on the way, or an I/O failure.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, err error) {
	l.files.RLock()
	defer l.files.RUnlock()
	tvs, start, end, err := l.timeSnapshot()
	if err != nil {
		return -1, -1, fmt.Errorf("partition %s: offset for timestamp %d: %w", l.dir, ts, err)
	}
	defer func() {
		for _, tv := range tvs {
			tv.s.release()
		}
	}()
	for _, tv := range tvs {
		if tv.maxTimestamp < ts {
			continue
		}
		off, t, found, err := tv.find(ts, start, end)
		if err != nil {
			return -1, -1, fmt.Errorf("partition %s: offset for timestamp %d: %w", l.dir, ts, err)
		}
		if found {
			return off, t, nil
		}
	}
	return -1, -1, nil
}

// timeView is a snapshot of what a timestamp lookup needs from one segment.
type timeView struct {
	s            *segment
	index        []indexEntry
	times        []timeEntry
	maxTimestamp int64
}

// timeSnapshot acquires every segment; the caller releases them.
func (l *Log) timeSnapshot() (tvs []timeView, start, end int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return nil, 0, 0, ErrClosed
	}
	tvs = make([]timeView, len(l.mu.segments))
	for i, s := range l.mu.segments {
		s.acquire()
		tvs[i] = timeView{s: s, index: s.index, times: s.times, maxTimestamp: s.maxTimestamp}
	}
	return tvs, l.mu.start, l.mu.end, nil
}

// find scans the segment from the time index's starting point for the first batch in
// [start, end) with maxTimestamp >= ts, then looks inside it.
func (tv timeView) find(ts, start, end int64) (offset, timestamp int64, found bool, err error) {
	s := tv.s
	size := s.size.Load()
	var pos int64
	if rel, ok := lookupTime(tv.times, ts); ok {
		pos = lookupPosition(tv.index, rel)
	}
	for pos < size {
		h, err := s.readHeader(pos, size)
		if err != nil || h.BaseOffset >= end {
			return -1, -1, false, err
		}
		if h.MaxTimestamp >= ts && h.lastOffset() >= start {
			off, t, err := s.recordForTimestamp(h, pos, ts, start)
			return off, t, true, err
		}
		pos += h.size()
	}
	return -1, -1, false, nil
}

// recordForTimestamp narrows a batch whose maxTimestamp >= ts to its first record at or
// after ts and at or after start, when the records can be read without decompressing.
func (s *segment) recordForTimestamp(h batchHeader, pos, ts, start int64) (int64, int64, error) {
	if h.compressed() || h.logAppendTime() {
		return max(h.BaseOffset, start), h.MaxTimestamp, nil
	}
	b := make([]byte, h.size())
	if err := s.readAt(b, pos); err != nil {
		return -1, -1, err
	}
	if delta, t, ok := firstRecordAtOrAfter(b[headerSize:], h.BaseTimestamp, ts, start-h.BaseOffset); ok {
		return h.BaseOffset + int64(delta), t, nil
	}
	return max(h.BaseOffset, start), h.MaxTimestamp, nil
}

// firstRecordAtOrAfter walks uncompressed v2 records (varint length, attributes i8,
// timestampDelta varlong, offsetDelta varint, ...) for the first with timestamp >= ts and
// offsetDelta >= minDelta. ok is false if none is found or the records do not parse; the
// caller then falls back to the batch.
func firstRecordAtOrAfter(recs []byte, baseTs, ts, minDelta int64) (offsetDelta int32, timestamp int64, ok bool) {
	for len(recs) > 0 {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 0 || int64(len(recs)-n) < length {
			return 0, 0, false
		}
		rec := recs[n : n+int(length)]
		recs = recs[n+int(length):]
		if len(rec) < 1 {
			return 0, 0, false
		}
		tsDelta, n1 := binary.Varint(rec[1:])
		if n1 <= 0 {
			return 0, 0, false
		}
		offDelta, n2 := binary.Varint(rec[1+n1:])
		if n2 <= 0 {
			return 0, 0, false
		}
		if baseTs+tsDelta >= ts && offDelta >= minDelta {
			return int32(offDelta), baseTs + tsDelta, true
		}
	}
	return 0, 0, false
}
