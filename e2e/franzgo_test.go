package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzGoProduceConsumeRestart produces 100,000 keyed records with
// acks=all and the idempotent producer, reads them back, restarts the
// process on the same data directory, and reads them again.
//
// Checks (docs/architecture.md, invariants 1 and 2): every acknowledged write is read
// back at the partition and offset its acknowledgement gave; offsets are
// dense from 0 per partition; within a partition records keep the order they
// were produced in (Kafka's per-partition ordering, kept across retries by
// the idempotent producer); nothing is lost or duplicated across a clean
// restart.
func TestFranzGoProduceConsumeRestart(t *testing.T) {
	const (
		topic      = "franz-restart"
		partitions = 8
		n          = 100_000
		keys       = 1000
		timeout    = 60 * time.Second
	)
	p := StartDev(t)

	adm := p.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, err, resp.ErrMessage)
	}

	producer := p.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default
	)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Key:   fmt.Appendf(nil, "k%d", i%keys),
			Value: fmt.Appendf(nil, "v%08d", i),
		}
	}
	start := time.Now()
	produceAll(t, producer, recs, timeout)
	t.Logf("produced %d records in %v", n, time.Since(start))

	read := func(phase string) {
		t.Helper()
		consumer := p.Client(t,
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)
		start := time.Now()
		got := consumeAll(t, consumer, n, timeout)
		t.Logf("%s: consumed %d records in %v", phase, len(got), time.Since(start))
		consumer.Close()

		counts := checkDenseOffsets(t, got)
		checkProducedOrder(t, got, n, keys)
		checkSameRecords(t, recs, got)
		checkPartitions(t, adm, topic, partitions, timeout)
		checkEndOffsets(t, adm, topic, perPartition(counts, topic), timeout)
	}
	read("before restart")

	p.Restart(t)
	read("after restart")
}

// checkProducedOrder checks records produced as key "k<i%keys>", value
// "v%08d" of i, for i in [0, n): every i is read exactly once, each key
// goes with its i, and within each partition i increases (records keep the
// order they were produced in; so does each key, which hashes to one
// partition).
func checkProducedOrder(t testing.TB, recs []*kgo.Record, n, keys int) {
	t.Helper()
	seen := make([]bool, n)
	last := make(map[tp]int)
	for _, r := range recs {
		var i int
		if _, err := fmt.Sscanf(string(r.Value), "v%08d", &i); err != nil || i < 0 || i >= n {
			t.Fatalf("%s offset %d: bad value %q", tp{r.Topic, r.Partition}, r.Offset, r.Value)
		}
		if want := fmt.Sprintf("k%d", i%keys); string(r.Key) != want {
			t.Fatalf("%s offset %d: value %q has key %q, want %q", tp{r.Topic, r.Partition}, r.Offset, r.Value, r.Key, want)
		}
		if seen[i] {
			t.Fatalf("value %q read twice (again at %s offset %d)", r.Value, tp{r.Topic, r.Partition}, r.Offset)
		}
		seen[i] = true
		k := tp{r.Topic, r.Partition}
		if prev, ok := last[k]; ok && i <= prev {
			t.Fatalf("%s offset %d: value %d after %d; produce order not kept", k, r.Offset, i, prev)
		}
		last[k] = i
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("value v%08d (acknowledged) never read", i)
		}
	}
}
