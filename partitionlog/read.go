package partitionlog

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// ReadResult is what Read found.
type ReadResult struct {
	Records        []byte // whole batches, in order
	LogStartOffset int64
	LogEndOffset   int64
	// NextOffset is the offset after the last batch returned (the offset read from when
	// none was): the upper bound of AbortedTransactions for a read_committed fetch.
	NextOffset int64
}

// Read returns whole batches starting with the one that contains offset, stopping before any
// batch whose base offset is >= maxOffset (the high watermark; EndOffset() for everything)
// and at maxBytes in total, except that the first batch is returned whole even if it alone
// exceeds maxBytes (KIP-74), so consumers always progress. offset == log end offset, or
// offset >= maxOffset, gives empty Records.
//
// It finds the segment by binary search over base offsets, the file position by binary
// search in the sparse index, then scans batch headers forward. Appends do not block it
// beyond a short snapshot.
//
// Errors: ErrOffsetOutOfRange when offset is below the start or above the end, ErrClosed,
// ErrCorruptBatch for a bad header met on the way, or an I/O failure.
func (l *Log) Read(offset, maxOffset int64, maxBytes int32) (ReadResult, error) {
	l.files.RLock()
	defer l.files.RUnlock()
	v, err := l.snapshot(offset, int64(max(maxBytes, 0)))
	if err != nil {
		return ReadResult{}, fmt.Errorf("partition %s: read at %d: %w", l.dir, offset, err)
	}
	defer releaseAll(v.segs)
	res := ReadResult{LogStartOffset: v.start, LogEndOffset: v.end, NextOffset: offset}
	maxOffset = min(maxOffset, v.end)
	if offset >= maxOffset {
		return res, nil
	}
	res.Records, err = v.read(offset, maxOffset, int64(max(maxBytes, 0)))
	if err != nil {
		return ReadResult{}, fmt.Errorf("partition %s: read at %d: %w", l.dir, offset, err)
	}
	res.NextOffset = max(offset, nextOffsetAfter(res.Records))
	return res, nil
}

// view is a reader's snapshot: the segment holding the wanted offset and as many after it as
// a read of maxBytes can reach, each acquired (the reader releases them with releaseAll),
// and their indexes as they were.
type view struct {
	start, end int64
	segs       []*segment
	indexes    [][]indexEntry
	index      []indexEntry  // indexes[0]
	recents    [][]batchSpan // each segment's recent batches, as published
}

func (l *Log) snapshot(offset, maxBytes int64) (view, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return view{}, ErrClosed
	}
	if offset < l.mu.start || offset > l.mu.end {
		return view{}, fmt.Errorf("%w: log has [%d, %d)", ErrOffsetOutOfRange, l.mu.start, l.mu.end)
	}
	segs := l.mu.segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset }) - 1
	// Later segments until their bytes cover maxBytes (at least one with a batch, for KIP-74).
	n := 1
	for later := int64(0); later < max(maxBytes, 1) && i+n < len(segs); n++ {
		later += segs[i+n].size.Load()
	}
	v := view{start: l.mu.start, end: l.mu.end, segs: segs[i : i+n : i+n], indexes: make([][]indexEntry, n), recents: make([][]batchSpan, n)}
	for k, s := range v.segs {
		s.acquire()
		v.indexes[k], v.recents[k] = s.index, s.recent
	}
	v.index = v.indexes[0]
	return v, nil
}

// read collects batches across segments until a limit stops it.
func (v view) read(offset, maxOffset, maxBytes int64) ([]byte, error) {
	var out []byte
	for i, s := range v.segs {
		size := s.size.Load()
		var pos int64
		if i == 0 {
			var err error
			if pos, err = s.seek(v.index, v.recents[0], offset, size); err != nil {
				return nil, err
			}
		}
		var done bool
		var err error
		out, done, err = s.readBatches(out, pos, size, maxOffset, maxBytes)
		if err != nil || done {
			return out, err
		}
	}
	return out, nil
}

// seek returns the position of the batch containing offset (or of the first after it), or
// size when the segment holds nothing at or past offset.
func (s *segment) seek(index []indexEntry, recent []batchSpan, offset, size int64) (int64, error) {
	pos := lookupPosition(index, uint32(offset-s.base))
	if b, ok := recentFrom(recent, offset); ok { // at the tail: no header to read
		pos = b.pos
	}
	for pos < size {
		b, ok := spanAt(recent, pos)
		if !ok {
			h, err := s.readHeader(pos, size)
			if err != nil {
				return 0, err
			}
			b = batchSpan{base: h.BaseOffset, last: h.lastOffset(), pos: pos, end: pos + h.size()}
		}
		if b.last >= offset {
			return pos, nil
		}
		pos = b.end
	}
	return size, nil
}

// readBatches appends to out whole batches from pos, up to size, while their base offset is
// below maxOffset and out stays within maxBytes; the first batch of a read is taken whole
// whatever its size (KIP-74). It reads up to the byte budget in one call and cuts at the last
// whole batch. done reports that a limit, not the segment end, stopped it.
func (s *segment) readBatches(out []byte, pos, size, maxOffset, maxBytes int64) ([]byte, bool, error) {
	budget := max(maxBytes-int64(len(out)), 0)
	buf := make([]byte, min(size-pos, budget))
	if err := s.readAt(buf, pos); err != nil {
		return out, true, err
	}
	n, hitMax, err := wholeBatches(buf, maxOffset)
	if err != nil {
		return out, true, fmt.Errorf("segment %d at %d: %w", s.base, pos+n, err)
	}
	out = appendOrAdopt(out, buf[:n])
	switch {
	case hitMax:
		return out, true, nil
	case pos+n == size:
		return out, false, nil
	case len(out) == 0:
		return s.readFirstWhole(pos, size, maxOffset)
	default:
		return out, true, nil
	}
}

// wholeBatches returns how many leading bytes of buf are whole batches with base offsets
// below maxOffset, and whether a batch at or past maxOffset stopped it.
func wholeBatches(buf []byte, maxOffset int64) (n int64, hitMax bool, err error) {
	for n+logOverhead <= int64(len(buf)) {
		base := int64(binary.BigEndian.Uint64(buf[n+offBaseOffset:]))
		length := int32(binary.BigEndian.Uint32(buf[n+offBatchLength:]))
		if length < minBatchLength {
			return n, false, fmt.Errorf("%w: batchLength %d", ErrCorruptBatch, length)
		}
		if base >= maxOffset {
			return n, true, nil
		}
		if n+logOverhead+int64(length) > int64(len(buf)) {
			break
		}
		n += logOverhead + int64(length)
	}
	return n, false, nil
}

// readFirstWhole reads the single batch at pos, larger than the byte budget (KIP-74).
func (s *segment) readFirstWhole(pos, size, maxOffset int64) ([]byte, bool, error) {
	h, err := s.readHeader(pos, size)
	if err != nil {
		return nil, true, err
	}
	if h.BaseOffset >= maxOffset {
		return nil, true, nil
	}
	buf := make([]byte, h.size())
	if err := s.readAt(buf, pos); err != nil {
		return nil, true, err
	}
	return buf, true, nil
}

// nextOffsetAfter returns the offset after the last of the whole batches in b, 0 if none.
func nextOffsetAfter(b []byte) int64 {
	next := int64(0)
	for len(b) >= headerSize {
		size := logOverhead + int64(int32(binary.BigEndian.Uint32(b[offBatchLength:])))
		if size < headerSize || size > int64(len(b)) {
			break
		}
		next = int64(binary.BigEndian.Uint64(b[offBaseOffset:])) + int64(int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))) + 1
		b = b[size:]
	}
	return next
}

func appendOrAdopt(out, b []byte) []byte {
	if out == nil {
		return b
	}
	return append(out, b...)
}
