package partitionlog

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
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
		// KIP-360: its state may have expired or gone with deleted segments.
		{name: "unknown producer goes on at any sequence", spec: batchSpec{producerID: 9, seq: 5, records: 2}, wantBase: 10, wantEnd: 12},
		{name: "and then in order", spec: batchSpec{producerID: 9, seq: 7}, wantBase: 12, wantEnd: 13},
		{name: "a known producer's new epoch starts at 0", spec: batchSpec{producerID: 9, epoch: 1, seq: 8}, wantErr: ErrOutOfOrderSequence, wantEnd: 13},
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

// TestProducerExpiry: producer.id.expiration.ms (KIP-854) forgets a producer whose last
// write is that old by the log's clock, never one with a transaction open; a forgotten
// producer that comes back is taken as new, at the sequence it goes on from (KIP-360),
// and a snapshot written after the expiry does not bring it back.
func TestProducerExpiry(t *testing.T) {
	const day = int64(24 * 3600 * 1000)
	t0 := int64(1_700_000_000_000)
	now := t0
	dir := t.TempDir()
	cfg := Config{Now: func() time.Time { return time.UnixMilli(now) }}
	l := openLog(t, dir, cfg)
	mustAppend(t, l, makeBatch(t, batchSpec{producerID: 1, seq: 0, records: 3, baseTs: t0 - 2}), 0) // last write at t0
	mustAppendOpts(t, l, makeBatch(t, batchSpec{producerID: 2, seq: 0, txn: true, baseTs: t0}), AppendOptions{TransactionalID: "tx"})
	mustAppend(t, l, makeBatch(t, batchSpec{producerID: 3, seq: 0, baseTs: t0 + 1000}), 0)
	mustAppendOpts(t, l, makeBatch(t, batchSpec{producerID: 4, seq: 0, txn: true, baseTs: t0}), AppendOptions{TransactionalID: "tx"})
	mustAppendOpts(t, l, MarkerBatch(4, 0, true, 0, t0), AppendOptions{FromCoordinator: true}) // its marker is its last write
	ids := func() []int64 {
		var out []int64
		for _, p := range l.Producers() {
			out = append(out, p.ProducerID)
		}
		return out
	}
	now = t0 + day - 1
	if n, err := l.ExpireProducers(DefaultProducerIDExpiration); err != nil || n != 0 {
		t.Fatalf("a millisecond early: %d expired, %v", n, err)
	}
	now = t0 + day
	if n, err := l.ExpireProducers(DefaultProducerIDExpiration); err != nil || n != 2 {
		t.Fatalf("at a day: %d expired, %v; want producers 1 and 4", n, err)
	}
	if got := ids(); !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("producers left %v, want [2 3] (2 has a transaction open, 3 wrote later)", got)
	}
	now = t0 + 10*day
	if n, _ := l.ExpireProducers(DefaultProducerIDExpiration); n != 1 {
		t.Fatalf("ten days on: %d expired, want producer 3 (2's transaction is still open)", n)
	}
	// Producer 1 comes back at sequence 3: a new producer to the partition.
	res := mustAppend(t, l, makeBatch(t, batchSpec{producerID: 1, seq: 3, baseTs: now}), 0)
	if res.Duplicate {
		t.Fatal("a returning producer's write taken for a duplicate")
	}
	l.SetHighWatermark(l.EndOffset())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, cfg)
	if got := ids(); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("after reopening from the snapshot: producers %v, want [1 2]", got)
	}
}
