package partitionlog

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// The two sparse indexes of a segment, kept in memory and mirrored to disk. On disk they use
// Kafka's entry layouts (big endian): .index is relOffset u32 | position u32, .timeindex is
// timestamp i64 | relOffset u32. Unlike Kafka the files are not preallocated or mmapped:
// they grow by appends and are loaded whole at Open.
const (
	indexEntrySize = 8
	timeEntrySize  = 12
)

// indexEntry maps the base offset of a batch (relative to the segment) to its file position.
type indexEntry struct {
	relOffset uint32
	position  uint32
}

// timeEntry records the largest timestamp seen in the segment up to and including the batch
// whose last offset is relOffset (Kafka's offsetOfMaxTimestampSoFar).
type timeEntry struct {
	timestamp int64
	relOffset uint32
}

func encodeIndex(es []indexEntry) []byte {
	b := make([]byte, 0, len(es)*indexEntrySize)
	for _, e := range es {
		b = binary.BigEndian.AppendUint32(b, e.relOffset)
		b = binary.BigEndian.AppendUint32(b, e.position)
	}
	return b
}

func encodeTimeIndex(es []timeEntry) []byte {
	b := make([]byte, 0, len(es)*timeEntrySize)
	for _, e := range es {
		b = binary.BigEndian.AppendUint64(b, uint64(e.timestamp))
		b = binary.BigEndian.AppendUint32(b, e.relOffset)
	}
	return b
}

// decodeIndex parses an .index file and checks what can be checked cheaply: whole entries,
// strictly increasing offsets and positions, positions inside a log of logSize bytes,
// relative offsets below relLimit.
func decodeIndex(b []byte, logSize, relLimit int64) ([]indexEntry, error) {
	if len(b)%indexEntrySize != 0 {
		return nil, fmt.Errorf("index size %d is not a multiple of %d", len(b), indexEntrySize)
	}
	es := make([]indexEntry, len(b)/indexEntrySize)
	for i := range es {
		e := indexEntry{
			relOffset: binary.BigEndian.Uint32(b[i*indexEntrySize:]),
			position:  binary.BigEndian.Uint32(b[i*indexEntrySize+4:]),
		}
		if int64(e.position) >= logSize || int64(e.relOffset) >= relLimit {
			return nil, fmt.Errorf("index entry %d: position %d, relative offset %d beyond log size %d or limit %d", i, e.position, e.relOffset, logSize, relLimit)
		}
		if i > 0 && (e.relOffset <= es[i-1].relOffset || e.position <= es[i-1].position) {
			return nil, fmt.Errorf("index entry %d: not increasing", i)
		}
		es[i] = e
	}
	return es, nil
}

// decodeTimeIndex parses a .timeindex file: timestamps must be valid (not negative) and
// increasing, relative offsets non-decreasing and below relLimit.
func decodeTimeIndex(b []byte, relLimit int64) ([]timeEntry, error) {
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("time index size %d is not a multiple of %d", len(b), timeEntrySize)
	}
	es := make([]timeEntry, len(b)/timeEntrySize)
	for i := range es {
		e := timeEntry{
			timestamp: int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			relOffset: binary.BigEndian.Uint32(b[i*timeEntrySize+8:]),
		}
		if e.timestamp < 0 || int64(e.relOffset) >= relLimit {
			return nil, fmt.Errorf("time index entry %d: timestamp %d, relative offset %d (limit %d)", i, e.timestamp, e.relOffset, relLimit)
		}
		if i > 0 && (e.timestamp <= es[i-1].timestamp || e.relOffset < es[i-1].relOffset) {
			return nil, fmt.Errorf("time index entry %d: not increasing", i)
		}
		es[i] = e
	}
	return es, nil
}

// lookupPosition returns the file position of the last indexed batch whose base offset is at
// or below rel: the place to start scanning forward for rel. 0 when none is.
func lookupPosition(es []indexEntry, rel uint32) int64 {
	i := sort.Search(len(es), func(i int) bool { return es[i].relOffset > rel })
	if i == 0 {
		return 0
	}
	return int64(es[i-1].position)
}

// lookupTime returns the relative offset from which to scan for the first batch with
// maxTimestamp >= ts: that of the last entry whose timestamp is below ts, since every batch
// up to it has a smaller timestamp. ok is false when the scan must start at the segment start.
func lookupTime(es []timeEntry, ts int64) (rel uint32, ok bool) {
	i := sort.Search(len(es), func(i int) bool { return es[i].timestamp >= ts })
	if i == 0 {
		return 0, false
	}
	return es[i-1].relOffset, true
}

// indexed is what a write or a rebuild adds to a segment, published to readers at once.
type indexed struct {
	index        []indexEntry
	times        []timeEntry
	recent       []batchSpan // every batch added, for the segment's in-memory tail (recent.go)
	sealed       bool        // from finish: the segment takes no more batches
	maxTimestamp int64       // largest batch maxTimestamp in the segment so far, -1 when none
	size         int64       // segment size after the write
}

// indexer decides where sparse entries go, the same way for appends and rebuilds, as
// Kafka's LogSegment.append does: an .index entry for the first batch after more than
// interval bytes without one, and with it a .timeindex entry when the largest timestamp has
// grown since the last.
type indexer struct {
	base, interval int64
	bytesSince     int64
	maxTs          int64
	offsetOfMax    int64
	lastTimeTs     int64
	pending        indexed
}

func newIndexer(base, interval int64) indexer {
	return indexer{base: base, interval: interval, maxTs: -1, lastTimeTs: -1}
}

// add accounts for the batch h stored at pos.
func (x *indexer) add(h batchHeader, pos int64) {
	if h.MaxTimestamp > x.maxTs {
		x.maxTs, x.offsetOfMax = h.MaxTimestamp, h.lastOffset()
	}
	if x.bytesSince > x.interval {
		x.pending.index = append(x.pending.index, indexEntry{relOffset: uint32(h.BaseOffset - x.base), position: uint32(pos)})
		x.maybeAddTime()
		x.bytesSince = 0
	}
	x.bytesSince += h.size()
	x.pending.recent = append(x.pending.recent, batchSpan{base: h.BaseOffset, last: h.lastOffset(), pos: pos, end: pos + h.size()})
}

func (x *indexer) maybeAddTime() {
	if x.maxTs > x.lastTimeTs {
		x.pending.times = append(x.pending.times, timeEntry{timestamp: x.maxTs, relOffset: uint32(x.offsetOfMax - x.base)})
		x.lastTimeTs = x.maxTs
	}
}

// take hands over the entries added since the last take, for a segment now size bytes long.
func (x *indexer) take(size int64) indexed {
	out := x.pending
	out.maxTimestamp, out.size = x.maxTs, size
	x.pending = indexed{}
	return out
}

// finish adds the closing time entry, so a finished segment's last entry holds its largest
// timestamp, then takes.
func (x *indexer) finish(size int64) indexed {
	x.maybeAddTime()
	out := x.take(size)
	out.sealed = true
	return out
}
