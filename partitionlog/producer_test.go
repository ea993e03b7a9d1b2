package partitionlog

import (
	"errors"
	"math"
	"testing"
)

// TestIdempotentProducer walks Kafka's idempotence rules (KIP-98, ProducerStateManager)
// step by step on one log.
func TestIdempotentProducer(t *testing.T) {
	const pid = 7
	type step struct {
		name     string
		spec     batchSpec
		wantErr  error
		wantDup  bool
		wantBase int64
		wantEnd  int64
	}
	b := func(epoch int16, seq int32, records int) batchSpec {
		return batchSpec{producerID: pid, epoch: epoch, seq: seq, records: records}
	}
	steps := []step{
		{name: "unknown producer must start at 0", spec: b(0, 5, 2), wantErr: ErrOutOfOrderSequence, wantEnd: 0},
		{name: "first batch", spec: b(0, 0, 2), wantBase: 0, wantEnd: 2},
		{name: "next batch", spec: b(0, 2, 3), wantBase: 2, wantEnd: 5},
		{name: "retry of the latest is a duplicate", spec: b(0, 2, 3), wantDup: true, wantBase: 2, wantEnd: 5},
		{name: "retry of an older retained batch", spec: b(0, 0, 2), wantDup: true, wantBase: 0, wantEnd: 5},
		{name: "gap in sequence", spec: b(0, 9, 1), wantErr: ErrOutOfOrderSequence, wantEnd: 5},
		{name: "overlapping but not equal", spec: b(0, 3, 2), wantErr: ErrOutOfOrderSequence, wantEnd: 5},
		{name: "in order again", spec: b(0, 5, 1), wantBase: 5, wantEnd: 6},
		{name: "epoch bump must start at 0", spec: b(1, 6, 1), wantErr: ErrOutOfOrderSequence, wantEnd: 6},
		{name: "epoch bump from 0", spec: b(1, 0, 1), wantBase: 6, wantEnd: 7},
		{name: "stale epoch", spec: b(0, 6, 1), wantErr: ErrInvalidProducerEpoch, wantEnd: 7},
		{name: "old epoch's batch no longer a duplicate", spec: b(0, 2, 3), wantErr: ErrInvalidProducerEpoch, wantEnd: 7},
		{name: "other producer is independent", spec: batchSpec{producerID: 8, seq: 0}, wantBase: 7, wantEnd: 8},
		{name: "non-idempotent batch ignores state", spec: batchSpec{records: 2}, wantBase: 8, wantEnd: 10},
	}
	l := openLog(t, t.TempDir(), Config{})
	for _, s := range steps {
		res, err := l.Append(makeBatch(t, s.spec), 0, AppendOptions{})
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.wantErr)
		}
		if err == nil && (res.Duplicate != s.wantDup || res.BaseOffset != s.wantBase) {
			t.Fatalf("%s: got %+v, want base %d duplicate %v", s.name, res, s.wantBase, s.wantDup)
		}
		if l.EndOffset() != s.wantEnd {
			t.Fatalf("%s: end %d, want %d", s.name, l.EndOffset(), s.wantEnd)
		}
	}
}

// TestDuplicateOnlyWithinFiveBatches: Kafka keeps five batches per producer, so an older retry
// is out of order rather than a duplicate.
func TestDuplicateOnlyWithinFiveBatches(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	for seq := range int32(6) {
		mustAppend(t, l, makeBatch(t, batchSpec{producerID: 1, seq: seq}), 0)
	}
	if _, err := l.Append(makeBatch(t, batchSpec{producerID: 1, seq: 0}), 0, AppendOptions{}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("retry of the 6th-newest: %v, want ErrOutOfOrderSequence", err)
	}
	if res := mustAppend(t, l, makeBatch(t, batchSpec{producerID: 1, seq: 1}), 0); !res.Duplicate || res.BaseOffset != 1 {
		t.Fatalf("retry of the 5th-newest: %+v, want duplicate at 1", res)
	}
}

func TestSequenceWraps(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	mustAppend(t, l, makeBatch(t, batchSpec{producerID: 1, seq: 0}), 0)
	// Force the state to the edge rather than appending 2^31 records.
	l.writer.Lock()
	e := l.writer.producers[1]
	e.batches[0].lastSeq = math.MaxInt32 - 1
	l.writer.producers[1] = e
	l.writer.Unlock()
	mustAppend(t, l, makeBatch(t, batchSpec{producerID: 1, seq: math.MaxInt32, records: 3}), 0)
	if res := mustAppend(t, l, makeBatch(t, batchSpec{producerID: 1, seq: 2}), 0); res.BaseOffset != 4 {
		t.Fatalf("after wrap: %+v", res)
	}
	if got := incrementSequence(math.MaxInt32, 1); got != 0 {
		t.Fatalf("incrementSequence(MaxInt32, 1) = %d, want 0", got)
	}
}

func TestDuplicateInMultiBatchAppendWritesNothing(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	mustAppend(t, l, makeBatch(t, batchSpec{producerID: 1, seq: 0}), 0)
	res := mustAppend(t, l, batches(t, batchSpec{}, batchSpec{producerID: 1, seq: 0}), 0)
	if !res.Duplicate || res.BaseOffset != 0 || l.EndOffset() != 1 {
		t.Fatalf("got %+v end %d, want duplicate of 0 and nothing written", res, l.EndOffset())
	}
}

// TestProducerStateSurvivesReopen: state is rebuilt from batch headers, so a retry that
// arrives after a restart is still recognised.
func TestProducerStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallCfg)
	for seq := int32(0); seq < 30; seq += 2 {
		mustAppend(t, l, makeBatch(t, batchSpec{producerID: 3, epoch: 2, seq: seq, records: 2}), 0)
	}
	l.Close()
	l = openLog(t, dir, smallCfg)
	if res := mustAppend(t, l, makeBatch(t, batchSpec{producerID: 3, epoch: 2, seq: 26, records: 2}), 0); !res.Duplicate || res.BaseOffset != 26 {
		t.Fatalf("retry after reopen: %+v, want duplicate at 26", res)
	}
	if _, err := l.Append(makeBatch(t, batchSpec{producerID: 3, epoch: 1, seq: 30}), 0, AppendOptions{}); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("stale epoch after reopen: %v", err)
	}
	if res := mustAppend(t, l, makeBatch(t, batchSpec{producerID: 3, epoch: 2, seq: 30}), 0); res.BaseOffset != 30 {
		t.Fatalf("next after reopen: %+v", res)
	}
}

func TestControlBatchStoredAsIs(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	mustAppend(t, l, makeBatch(t, batchSpec{producerID: 1, epoch: 0, seq: 0}), 0)
	if _, err := l.Append(makeBatch(t, batchSpec{producerID: 1, epoch: 0, control: true}), 0, AppendOptions{FromCoordinator: true}); err != nil {
		t.Fatalf("marker: %v", err)
	}
	hs := readAll(t, l)
	if len(hs) != 2 || !hs[1].isControl() {
		t.Fatalf("control batch not stored: %+v", hs)
	}
	if _, err := l.Append(makeBatch(t, batchSpec{producerID: 1, epoch: 0, seq: 1}), 0, AppendOptions{}); err != nil {
		t.Fatalf("sequence continues after a marker: %v", err)
	}
}
