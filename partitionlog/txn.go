package partitionlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
)

// Transactions in the log (KIP-98). A transactional producer's batches carry attribute bit
// 4; the transaction coordinator ends the transaction in each partition with a control
// batch (bits 4 and 5), a marker whose one record has the key
//
//	version int16 = 0 | type int16 (0 ABORT, 1 COMMIT)
//
// and the value version int16 = 0 | coordinatorEpoch int32. Between its first batch and
// its marker a transaction is ongoing, and the log's last stable offset (LSO) stays at
// or below its first offset: read_committed consumers read no further, since whether
// those records count is not decided yet. Kafka also holds the LSO at a completed
// transaction until its marker is below the high watermark (replicated), so that no
// consumer acts on a marker a leader change could still take back; so does this log.
//
// Aborted transactions are remembered as Kafka's aborted-transaction index has them
// (txnindex.go): producer id, first offset, the marker's offset and the LSO once the
// transaction completed. A read_committed fetch returns them with the records, and the
// consumer drops the aborted producers' records from their first offset to the marker.

// ErrInvalidTxnState: a producer with a transaction ongoing in the partition wrote a batch
// outside it, or a marker is malformed. INVALID_TXN_STATE (48).
var ErrInvalidTxnState = errors.New("invalid transaction state")

// Control record types (Kafka's ControlRecordType).
const (
	markerAbort  = 0
	markerCommit = 1
)

// marker is what a control batch says: COMMIT or ABORT, by which coordinator epoch. The
// zero marker (known false) is a control batch of another kind, which ends nothing.
type marker struct {
	known            bool
	commit           bool
	coordinatorEpoch int32
}

// parseMarker reads the end-transaction marker of control batch b (header h): its single
// record's key and value. Control batches are never compressed.
func parseMarker(b []byte, h batchHeader) (marker, error) {
	if h.compressed() || h.RecordsCount != 1 || int64(len(b)) < h.size() {
		return marker{}, fmt.Errorf("%w: control batch at %d: want one uncompressed record", ErrInvalidTxnState, h.BaseOffset)
	}
	r := b[headerSize:h.size()]
	noKey := fmt.Errorf("%w: control batch at %d: no control key", ErrInvalidTxnState, h.BaseOffset)
	_, i := varintAt(r, 0, 5) // record length
	if i < 0 {
		return marker{}, noKey
	}
	i++                                                      // attributes
	for _, maxLen := range []int{binary.MaxVarintLen64, 5} { // timestamp and offset deltas
		if _, i = varintAt(r, i, maxLen); i < 0 {
			return marker{}, noKey
		}
	}
	keyLen, i := varintAt(r, i, 5)
	if i < 0 || keyLen < 4 || int64(len(r)-i) < keyLen {
		return marker{}, noKey
	}
	typ := int16(binary.BigEndian.Uint16(r[i+2:]))
	valueLen, j := varintAt(r, i+int(keyLen), 5)
	m := marker{known: true, commit: typ == markerCommit}
	if typ != markerCommit && typ != markerAbort {
		return marker{}, fmt.Errorf("%w: control batch at %d: type %d is no end-transaction marker", ErrInvalidTxnState, h.BaseOffset, typ)
	}
	if j >= 0 && valueLen >= 6 && int64(len(r)-j) >= valueLen {
		m.coordinatorEpoch = int32(binary.BigEndian.Uint32(r[j+2:]))
	}
	return m, nil
}

// MarkerBatch builds the control batch a transaction coordinator writes to end producer
// pid's transaction at epoch: COMMIT or ABORT, stamped with coordinatorEpoch and the time
// now (ms). Append takes it with AppendOptions.FromCoordinator.
func MarkerBatch(pid int64, epoch int16, commit bool, coordinatorEpoch int32, nowMs int64) []byte {
	typ := int16(markerAbort)
	if commit {
		typ = markerCommit
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	value := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(coordinatorEpoch))
	// record: length | attributes 0 | timestampDelta 0 | offsetDelta 0 | key | value | no headers
	body := []byte{0, 0, 0}
	body = binary.AppendVarint(body, int64(len(key)))
	body = append(body, key...)
	body = binary.AppendVarint(body, int64(len(value)))
	body = append(body, value...)
	body = binary.AppendVarint(body, 0)
	rec := binary.AppendVarint(nil, int64(len(body)))
	rec = append(rec, body...)

	b := make([]byte, headerSize, headerSize+len(rec))
	be := binary.BigEndian
	be.PutUint32(b[offBatchLength:], uint32(headerSize-logOverhead+len(rec)))
	be.PutUint32(b[offLeaderEpoch:], math.MaxUint32) // -1: the leader stamps it
	b[offMagic] = magicV2
	be.PutUint16(b[offAttributes:], attrControl|attrTransactional)
	be.PutUint64(b[offBaseTimestamp:], uint64(nowMs))
	be.PutUint64(b[offMaxTimestamp:], uint64(nowMs))
	be.PutUint64(b[offProducerID:], uint64(pid))
	be.PutUint16(b[offProducerEpoch:], uint16(epoch))
	be.PutUint32(b[offBaseSequence:], math.MaxUint32) // -1: markers carry no sequence
	be.PutUint32(b[offRecordsCount:], 1)
	b = append(b, rec...)
	be.PutUint32(b[offCRC:], crcOf(b))
	return b
}

// readMarkerAt reads the marker of the control batch h at pos of a segment file.
func readMarkerAt(r io.ReaderAt, h batchHeader, pos int64) (marker, error) {
	b := make([]byte, h.size())
	if _, err := r.ReadAt(b, pos); err != nil {
		return marker{}, noEOF(err)
	}
	return parseMarker(b, h)
}

// AbortedTxn is one entry of the aborted-transaction index: producer ProducerID's
// transaction held offsets FirstOffset to LastOffset (its ABORT marker) in this partition,
// and when it was aborted the LSO became LastStableOffset.
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64
	LastStableOffset int64
}

// txnEvent is what one batch did to a producer's transaction in the partition: started
// it at first, or ended it at last (a marker), aborting it or not.
type txnEvent struct {
	pid         int64
	first, last int64
	end         bool
	aborted     bool
}

// completedTxn is a transaction whose marker is in the log but maybe not yet below the
// high watermark.
type completedTxn struct {
	pid         int64
	first, last int64
}

// txnState is the log's view of transactions, for readers: published under Log.mu.
type txnState struct {
	ongoing      map[int64]int64 // producer id -> first offset of its ongoing transaction
	unreplicated []completedTxn  // completed, marker at or past the high watermark when last looked
	aborted      []AbortedTxn    // ascending LastOffset
}

// apply records events in order. hw prunes completed transactions already replicated.
func (t *txnState) apply(events []txnEvent, hw int64) {
	for _, e := range events {
		if !e.end {
			if t.ongoing == nil {
				t.ongoing = map[int64]int64{}
			}
			t.ongoing[e.pid] = e.first
			continue
		}
		delete(t.ongoing, e.pid)
		if e.last >= hw {
			t.unreplicated = append(t.unreplicated, completedTxn{pid: e.pid, first: e.first, last: e.last})
		}
		if e.aborted {
			lso := e.last + 1
			for _, first := range t.ongoing {
				lso = min(lso, first)
			}
			t.aborted = append(t.aborted, AbortedTxn{ProducerID: e.pid, FirstOffset: e.first, LastOffset: e.last, LastStableOffset: lso})
		}
	}
}

// firstUnstable returns the first offset a read_committed reader may not read past on
// account of transactions (math.MaxInt64 when none holds it), dropping the completed
// transactions whose markers are below hw.
func (t *txnState) firstUnstable(hw int64) int64 {
	first := int64(math.MaxInt64)
	for _, f := range t.ongoing {
		first = min(first, f)
	}
	if len(t.unreplicated) > 0 {
		kept := t.unreplicated[:0:0]
		for _, c := range t.unreplicated {
			if c.last >= hw {
				kept = append(kept, c)
				first = min(first, c.first)
			}
		}
		t.unreplicated = kept
	}
	return first
}

// collectAborted returns the aborted transactions a fetch of [from, upper) must know of,
// as Kafka's collectAbortedTransactions finds them: those that end at or after from and
// begin before upper, stopping at the first entry whose LSO passed upper (every later
// transaction began at or after it).
func (t *txnState) collectAborted(from, upper int64) []AbortedTxn {
	i := sort.Search(len(t.aborted), func(i int) bool { return t.aborted[i].LastOffset >= from })
	var out []AbortedTxn
	for _, a := range t.aborted[i:] {
		if a.FirstOffset < upper {
			out = append(out, a)
		}
		if a.LastStableOffset >= upper {
			break
		}
	}
	return out
}

// abortedBefore returns the aborted transactions whose markers lie below end, for
// TruncateTo.
func (t txnState) abortedBefore(end int64) []AbortedTxn {
	i := sort.Search(len(t.aborted), func(i int) bool { return t.aborted[i].LastOffset >= end })
	return slices.Clip(t.aborted[:i])
}

// dropBelow forgets aborted transactions whose markers are below the log start: no fetch
// can reach them.
func (t *txnState) dropBelow(start int64) {
	i := sort.Search(len(t.aborted), func(i int) bool { return t.aborted[i].LastOffset >= start })
	if i > 0 {
		t.aborted = slices.Clone(t.aborted[i:])
	}
}

// abortedIn returns the aborted transactions whose markers lie in [base, next).
func abortedIn(aborted []AbortedTxn, base, next int64) []AbortedTxn {
	i := sort.Search(len(aborted), func(i int) bool { return aborted[i].LastOffset >= base })
	j := sort.Search(len(aborted), func(i int) bool { return aborted[i].LastOffset >= next })
	return aborted[i:j]
}

// LastStableOffset returns the offset read_committed consumers read up to: the high
// watermark, or the first offset of the earliest transaction that is ongoing or whose
// marker is not yet replicated, if lower.
func (l *Log) LastStableOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	hw := l.highWatermarkLocked()
	return max(min(hw, l.mu.txns.firstUnstable(hw)), l.mu.start)
}

// AbortedTransactions returns the aborted transactions a read_committed fetch from offset
// needs, whose records up to upper (exclusive) it returned: see collectAborted.
func (l *Log) AbortedTransactions(from, upper int64) []AbortedTxn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.txns.collectAborted(from, upper)
}

// OngoingTransaction is a producer's transaction ongoing in the partition.
type OngoingTransaction struct {
	ProducerID  int64
	FirstOffset int64
}

// ProducerState is what the partition knows of one producer (DescribeProducers, KIP-664).
type ProducerState struct {
	ProducerID       int64
	ProducerEpoch    int16
	LastSequence     int32 // -1 when it wrote no batch at this epoch
	LastTimestamp    int64 // ms of its last batch, -1 when unknown
	CoordinatorEpoch int32 // of its last marker, -1 when none
	TxnStartOffset   int64 // first offset of its ongoing transaction, -1 when none
}

// Producers returns the state of every producer the partition remembers, by producer id.
func (l *Log) Producers() []ProducerState {
	l.writer.Lock()
	defer l.writer.Unlock()
	out := make([]ProducerState, 0, len(l.writer.producers))
	for pid, e := range l.writer.producers {
		ps := ProducerState{ProducerID: pid, ProducerEpoch: e.epoch, LastSequence: -1, LastTimestamp: e.lastTimestamp,
			CoordinatorEpoch: e.coordinatorEpoch, TxnStartOffset: -1}
		if n := len(e.batches); n > 0 {
			ps.LastSequence = e.batches[n-1].lastSeq
		}
		if e.txnOngoing {
			ps.TxnStartOffset = e.txnFirst
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return int(min(max(a.ProducerID-b.ProducerID, -1), 1)) })
	return out
}
