package partitionlog

import "fmt"

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

// producerMap holds every producer id seen in the log.
// TODO: expire producers idle for transactional.id.expiration / producer.id.expiration.ms
// and write .snapshot files so Open need not read every batch header.
type producerMap map[int64]producerEntry

// producerCheck stages the producer-state changes of one append, so that a rejected append
// leaves the committed map untouched.
type producerCheck struct {
	committed producerMap
	staged    producerMap
}

func (c *producerCheck) get(pid int64) (producerEntry, bool) {
	if e, ok := c.staged[pid]; ok {
		return e, true
	}
	e, ok := c.committed[pid]
	return e, ok
}

// check applies Kafka's idempotence rules to h, which already carries its assigned offsets.
// It returns the retained batch h repeats, if it is a retry.
func (c *producerCheck) check(h batchHeader) (dup batchMeta, isDup bool, err error) {
	if h.ProducerID < 0 {
		return batchMeta{}, false, nil
	}
	e, known := c.get(h.ProducerID)
	switch {
	case known && h.ProducerEpoch < e.epoch:
		return batchMeta{}, false, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	case h.isControl():
		// Transaction markers carry no sequence; they only move the epoch forward.
		if !known || h.ProducerEpoch > e.epoch {
			e = producerEntry{epoch: h.ProducerEpoch}
		}
		c.staged[h.ProducerID] = e
		return batchMeta{}, false, nil
	case !known || h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return batchMeta{}, false, fmt.Errorf("%w: producer %d epoch %d must start at sequence 0, got %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		e = producerEntry{epoch: h.ProducerEpoch}
	default:
		if d, ok := e.duplicateOf(h); ok {
			return d, true, nil
		}
		if err := checkNextSequence(h, e); err != nil {
			return batchMeta{}, false, err
		}
	}
	c.staged[h.ProducerID] = e.with(h)
	return batchMeta{}, false, nil
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

// replay rebuilds producer state from a stored batch header, trusting what the log holds.
func (m producerMap) replay(h batchHeader) {
	if h.ProducerID < 0 {
		return
	}
	e, ok := m[h.ProducerID]
	m[h.ProducerID] = e.replayed(h, ok)
}

// replay stages what a batch copied from the leader does to producer state: the leader
// checked its sequence, so it is recorded as the log holds it, without checks (AppendAsFollower).
func (c *producerCheck) replay(h batchHeader) {
	if h.ProducerID < 0 {
		return
	}
	e, ok := c.get(h.ProducerID)
	c.staged[h.ProducerID] = e.replayed(h, ok)
}

// replayed is e after the stored batch h; known says whether e existed. A newer producer
// epoch starts afresh; a control batch (transaction marker) only moves the epoch.
func (e producerEntry) replayed(h batchHeader, known bool) producerEntry {
	if !known || h.ProducerEpoch > e.epoch {
		e = producerEntry{epoch: h.ProducerEpoch}
	}
	if !h.isControl() {
		e = e.with(h)
	}
	return e
}
