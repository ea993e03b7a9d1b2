package partitionlog

import (
	"fmt"
	"time"
)

// batchesToRetain is how many recent batches Kafka remembers per producer
// (ProducerStateEntry.NUM_BATCHES_TO_RETAIN), and why clients cap in-flight requests at 5.
const batchesToRetain = 5

// batchMeta is what a retained batch contributes to duplicate detection.
type batchMeta struct {
	firstSeq, lastSeq      int32
	baseOffset, lastOffset int64
}

// producerEntry is one idempotent producer's state in this partition (KIP-98). It is a value:
// with copies batches, so staged changes never alias committed ones.
type producerEntry struct {
	epoch   int16
	batches []batchMeta // oldest first, at most batchesToRetain
	// txnOngoing: a transaction of this producer is open in the partition since txnFirst.
	txnOngoing       bool
	txnFirst         int64
	coordinatorEpoch int32 // of the last marker; -1 before any
	lastTimestamp    int64 // maxTimestamp of its last batch, ms; for producer expiry
}

// newEntry is a producer's state when epoch starts: no batches, no transaction.
func newEntry(epoch int16) producerEntry {
	return producerEntry{epoch: epoch, coordinatorEpoch: -1, lastTimestamp: -1}
}

// reset starts epoch over: the batches go, a transaction in progress and the last marker's
// coordinator epoch stay (its marker will still come, at this epoch or a later one).
func (e producerEntry) reset(epoch int16) producerEntry {
	e.epoch, e.batches = epoch, nil
	return e
}

func (e producerEntry) with(h batchHeader) producerEntry {
	keep := e.batches
	if len(keep) == batchesToRetain {
		keep = keep[1:]
	}
	out := make([]batchMeta, len(keep), len(keep)+1)
	copy(out, keep)
	e.batches = append(out, batchMeta{
		firstSeq: h.BaseSequence, lastSeq: h.lastSequence(),
		baseOffset: h.BaseOffset, lastOffset: h.lastOffset(),
	})
	e.lastTimestamp = h.MaxTimestamp
	return e
}

func (e producerEntry) duplicateOf(h batchHeader) (batchMeta, bool) {
	for _, b := range e.batches {
		if b.firstSeq == h.BaseSequence && b.lastSeq == h.lastSequence() {
			return b, true
		}
	}
	return batchMeta{}, false
}

// producerMap holds every producer id seen in the log, until it expires.
type producerMap map[int64]producerEntry

// DefaultProducerIDExpiration is Kafka's producer.id.expiration.ms default: one day.
const DefaultProducerIDExpiration = 24 * time.Hour

// ExpireProducers forgets the producers whose last write (the largest timestamp of their
// last batch or marker) is expiration or more before the log's clock, except those with
// a transaction open in the partition, as Kafka's removeExpiredProducers does
// (producer.id.expiration.ms, KIP-854). A forgotten producer that writes again is taken
// as a new one, at whatever sequence it goes on from. It returns how many went. Errors:
// ErrClosed.
func (l *Log) ExpireProducers(expiration time.Duration) (int, error) {
	l.writer.Lock()
	defer l.writer.Unlock()
	if _, err := l.activeSegment(); err != nil {
		return 0, err
	}
	return l.writer.producers.expire(l.now().UnixMilli(), expiration.Milliseconds()), nil
}

// expire removes the entries idle for expirationMs at nowMs, without a transaction open.
func (m producerMap) expire(nowMs, expirationMs int64) int {
	n := 0
	for pid, e := range m {
		if !e.txnOngoing && nowMs-e.lastTimestamp >= expirationMs {
			delete(m, pid)
			n++
		}
	}
	return n
}

// producerCheck stages the producer-state changes of one append, so that a rejected append
// leaves the committed map untouched.
type producerCheck struct {
	committed producerMap
	staged    producerMap
	events    []txnEvent // transactions the append starts and ends, in order
}

// stage records e as pid's state after the append, making the map on first use: most
// appends are of producers without ids and stage nothing.
func (c *producerCheck) stage(pid int64, e producerEntry) {
	if c.staged == nil {
		c.staged = producerMap{}
	}
	c.staged[pid] = e
}

func (c *producerCheck) get(pid int64) (producerEntry, bool) {
	if e, ok := c.staged[pid]; ok {
		return e, true
	}
	e, ok := c.committed[pid]
	return e, ok
}

// check applies Kafka's idempotence rules to h, which already carries its assigned offsets,
// and its transaction rules: a transactional batch starts the producer's transaction if
// none is open, a marker (m, for a control batch) ends it, and a plain batch while one is
// open is refused (ErrInvalidTxnState), as Kafka refuses it. It returns the retained batch
// h repeats, if it is a retry.
func (c *producerCheck) check(h batchHeader, m marker) (dup batchMeta, isDup bool, err error) {
	if h.ProducerID < 0 {
		return batchMeta{}, false, nil
	}
	e, known := c.get(h.ProducerID)
	switch {
	case known && h.ProducerEpoch < e.epoch:
		return batchMeta{}, false, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	case h.isControl():
		if known && m.coordinatorEpoch < e.coordinatorEpoch {
			return batchMeta{}, false, fmt.Errorf("%w: marker of producer %d from coordinator epoch %d, after one from %d", ErrInvalidTxnState, h.ProducerID, m.coordinatorEpoch, e.coordinatorEpoch)
		}
		c.stage(h.ProducerID, c.endTxn(e, known, h, m))
		return batchMeta{}, false, nil
	case !known || h.ProducerEpoch > e.epoch:
		// A producer the partition does not know may go on at any sequence, as in Kafka
		// since KIP-360: its state may have expired (producer.id.expiration.ms) or gone
		// with the segments retention deleted. A known one starts a new epoch at 0.
		if known && h.BaseSequence != 0 {
			return batchMeta{}, false, fmt.Errorf("%w: producer %d epoch %d must start at sequence 0, got %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		if !known {
			e = newEntry(h.ProducerEpoch)
		}
		e = e.reset(h.ProducerEpoch)
	default:
		if d, ok := e.duplicateOf(h); ok {
			return d, true, nil
		}
		if err := checkNextSequence(h, e); err != nil {
			return batchMeta{}, false, err
		}
	}
	transactional := h.Attributes&attrTransactional != 0
	if e.txnOngoing && !transactional {
		return batchMeta{}, false, fmt.Errorf("%w: producer %d wrote a non-transactional batch while its transaction from offset %d is open", ErrInvalidTxnState, h.ProducerID, e.txnFirst)
	}
	c.stage(h.ProducerID, c.startTxn(e.with(h), h))
	return batchMeta{}, false, nil
}

// startTxn opens e's transaction at h if h is transactional and none is open.
func (c *producerCheck) startTxn(e producerEntry, h batchHeader) producerEntry {
	if h.Attributes&attrTransactional != 0 && !e.txnOngoing {
		e.txnOngoing, e.txnFirst = true, h.BaseOffset
		c.events = append(c.events, txnEvent{pid: h.ProducerID, first: h.BaseOffset})
	}
	return e
}

// endTxn applies marker m at h to e: the transaction open, if any, ends there; a newer
// epoch starts afresh (KIP-890 markers carry the bumped epoch).
func (c *producerCheck) endTxn(e producerEntry, known bool, h batchHeader, m marker) producerEntry {
	if !known {
		e = newEntry(h.ProducerEpoch)
	}
	if h.ProducerEpoch > e.epoch {
		e = e.reset(h.ProducerEpoch)
	}
	if !m.known {
		return e
	}
	if e.txnOngoing {
		c.events = append(c.events, txnEvent{pid: h.ProducerID, first: e.txnFirst, last: h.BaseOffset, end: true, aborted: !m.commit})
	}
	e.txnOngoing, e.txnFirst = false, 0
	e.coordinatorEpoch = m.coordinatorEpoch
	e.lastTimestamp = h.MaxTimestamp
	return e
}

func checkNextSequence(h batchHeader, e producerEntry) error {
	if len(e.batches) == 0 {
		if h.BaseSequence == 0 {
			return nil
		}
		return fmt.Errorf("%w: producer %d has no batches, got sequence %d", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence)
	}
	last := e.batches[len(e.batches)-1].lastSeq
	if h.BaseSequence != incrementSequence(last, 1) {
		return fmt.Errorf("%w: producer %d expected sequence %d, got %d", ErrOutOfOrderSequence, h.ProducerID, incrementSequence(last, 1), h.BaseSequence)
	}
	return nil
}

// commit makes the staged changes permanent, once the batches are written.
func (c *producerCheck) commit() {
	for pid, e := range c.staged {
		c.committed[pid] = e
	}
}

// replay stages what a stored batch (its header, and its marker if a control batch) does
// to producer state, trusting what the log holds: no sequence or epoch checks. For
// AppendAsFollower (the leader checked) and for rebuilding state from the log.
func (c *producerCheck) replay(h batchHeader, m marker) {
	if h.ProducerID < 0 {
		return
	}
	e, known := c.get(h.ProducerID)
	if h.isControl() {
		c.stage(h.ProducerID, c.endTxn(e, known, h, m))
		return
	}
	if !known {
		e = newEntry(h.ProducerEpoch)
	}
	if h.ProducerEpoch > e.epoch {
		e = e.reset(h.ProducerEpoch)
	}
	c.stage(h.ProducerID, c.startTxn(e.with(h), h))
}
