package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Helpers for the multi-process tests (cluster_test.go).

// clusterTimeout bounds each step of a cluster test that has no tighter
// bound of its own.
const clusterTimeout = 30 * time.Second

// keyedRecords returns n records with key "k<i%keys>" and value "v%08d" of
// i, as checkProducedOrder expects.
func keyedRecords(n, keys int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Key:   fmt.Appendf(nil, "k%d", i%keys),
			Value: fmt.Appendf(nil, "v%08d", i),
		}
	}
	return recs
}

// describeTopic returns topic's metadata (Metadata through adm's proxy),
// or an error if the topic is not listed, has an error or no partitions.
func describeTopic(ctx context.Context, adm *kadm.Client, topic string) (kadm.TopicDetail, error) {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return kadm.TopicDetail{}, err
	}
	d, ok := details[topic]
	switch {
	case !ok:
		return d, fmt.Errorf("topic %s not listed", topic)
	case d.Err != nil:
		return d, fmt.Errorf("topic %s: %w", topic, d.Err)
	case len(d.Partitions) == 0:
		return d, fmt.Errorf("topic %s has no partitions", topic)
	}
	return d, nil
}

// topicReady reports nil once topic is listed with n partitions, each with
// a leader and no error: produce and fetch can be routed.
func topicReady(ctx context.Context, adm *kadm.Client, topic string, n int) (kadm.TopicDetail, error) {
	d, err := describeTopic(ctx, adm, topic)
	if err != nil {
		return d, err
	}
	if len(d.Partitions) != n {
		return d, fmt.Errorf("topic %s has %d partitions, want %d", topic, len(d.Partitions), n)
	}
	for _, p := range d.Partitions.Sorted() {
		if p.Err != nil {
			return d, fmt.Errorf("%s: %w", tp{topic, p.Partition}, p.Err)
		}
		if p.Leader < 0 {
			return d, fmt.Errorf("%s has no leader", tp{topic, p.Partition})
		}
	}
	return d, nil
}

// waitTopicReady polls topicReady until it succeeds, failing the test
// after timeout.
func waitTopicReady(t testing.TB, adm *kadm.Client, topic string, n int, timeout time.Duration) kadm.TopicDetail {
	t.Helper()
	var d kadm.TopicDetail
	Eventually(t, timeout, func(ctx context.Context) error {
		var err error
		d, err = topicReady(ctx, adm, topic, n)
		return err
	})
	return d
}

// placement reads topic's replica placement from the routing metadata in Redis
// (in forward mode Metadata names proxies, not nodes, as replicas).
func placement(t testing.TB, c *Cluster, topic string) map[int32]partitionState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	states, err := partitionStates(ctx, c, topic)
	if err != nil {
		t.Fatal(err)
	}
	return states
}

// partitionsByNode returns, for each node id holding a replica, the partitions it
// holds, in partition order.
func partitionsByNode(states map[int32]partitionState) map[int32][]int32 {
	out := make(map[int32][]int32)
	for p := range int32(len(states)) {
		for _, r := range states[p].Replicas {
			out[r] = append(out[r], p)
		}
	}
	return out
}

// checkReplicasSpread checks that every partition of topic has exactly rf
// replicas, each a node in ids, and that every node in ids holds at least
// one partition (Kafka's round-robin placement spreads partitions over all
// live brokers).
func checkReplicasSpread(t testing.TB, topic string, states map[int32]partitionState, ids []int32, rf int) {
	t.Helper()
	for _, p := range states {
		if len(p.Replicas) != rf {
			t.Fatalf("%s: replicas %v, want %d", tp{topic, p.Partition}, p.Replicas, rf)
		}
		for _, r := range p.Replicas {
			if !slices.Contains(ids, r) {
				t.Fatalf("%s: replica %d is not a node (nodes %v)", tp{topic, p.Partition}, r, ids)
			}
		}
	}
	byNode := partitionsByNode(states)
	for _, id := range ids {
		if len(byNode[id]) == 0 {
			t.Fatalf("topic %s: node %d holds no partition; placement %v", topic, id, byNode)
		}
	}
}

// waitReadyz polls the /readyz of each process until it answers want and
// its body contains substr (case-insensitively; "" matches any body), and
// fails the test if some process does not by deadline.
func waitReadyz(t testing.TB, deadline time.Time, want int, substr string, procs ...*Process) {
	t.Helper()
	for _, p := range procs {
		Eventually(t, max(time.Until(deadline), time.Millisecond), func(ctx context.Context) error {
			code, body, err := Readyz(ctx, p)
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name(), err)
			}
			if code != want || !strings.Contains(strings.ToLower(body), strings.ToLower(substr)) {
				return fmt.Errorf("%s /readyz: %d %q; want %d %s containing %q",
					p.Name(), code, strings.TrimSpace(body), want, http.StatusText(want), substr)
			}
			return nil
		})
	}
}

// steadyProducer produces to one topic in a loop of small synchronous
// batches (acks=all, idempotent), and remembers when each batch started and
// finished, so a test can count writes acknowledged during a fault.
type steadyProducer struct {
	cl     *kgo.Client
	keys   int
	batch  int
	ctx    context.Context // cancelled only if Stop waits too long
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	next    int // value of the next record
	acked   []*kgo.Record
	batches []producedBatch
	failed  int
	first   error
}

type producedBatch struct {
	start, end time.Time
	ok         int // records acknowledged
}

// startSteadyProducer starts producing to topic through cl; Stop ends it.
func startSteadyProducer(t testing.TB, cl *kgo.Client, topic string, keys int) *steadyProducer {
	p := &steadyProducer{cl: cl, keys: keys, batch: 20, stop: make(chan struct{}), done: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.run(topic)
	t.Cleanup(p.Stop)
	return p
}

func (p *steadyProducer) run(topic string) {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
		p.mu.Lock()
		recs := make([]*kgo.Record, p.batch)
		for i := range recs {
			recs[i] = &kgo.Record{
				Topic: topic,
				Key:   fmt.Appendf(nil, "k%d", p.next%p.keys),
				Value: fmt.Appendf(nil, "v%08d", p.next),
			}
			p.next++
		}
		p.mu.Unlock()

		b := producedBatch{start: time.Now()}
		ctx, cancel := context.WithTimeout(p.ctx, clusterTimeout)
		results := p.cl.ProduceSync(ctx, recs...)
		cancel()
		b.end = time.Now()

		p.mu.Lock()
		for _, r := range results {
			if r.Err != nil {
				p.failed++
				if p.first == nil {
					p.first = fmt.Errorf("record %q at %s: %w", r.Record.Value, b.end.Format("15:04:05.000"), r.Err)
				}
				continue
			}
			b.ok++
			p.acked = append(p.acked, r.Record)
		}
		p.batches = append(p.batches, b)
		p.mu.Unlock()
	}
}

// Stop ends the loop after the batch in flight, or cancels that batch if
// it takes more than 5s (its records then count as failed); it may be
// called twice.
func (p *steadyProducer) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cancel()
		<-p.done
	}
	p.cancel()
}

// Acked returns the records acknowledged so far, in produce order.
func (p *steadyProducer) Acked() []*kgo.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked)
}

// Err returns how many records failed and the first failure.
func (p *steadyProducer) Err() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed, p.first
}

// AckedBetween counts the records acknowledged by batches that started at
// or after from and finished before until.
func (p *steadyProducer) AckedBetween(from, until time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, b := range p.batches {
		if !b.start.Before(from) && b.end.Before(until) {
			n += b.ok
		}
	}
	return n
}

// waitAcked polls until the producer has n records acknowledged by batches
// started at or after from, failing the test after timeout or on a failed
// record.
func (p *steadyProducer) waitAcked(t testing.TB, from time.Time, n int, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func(context.Context) error {
		if failed, err := p.Err(); failed > 0 {
			return fmt.Errorf("%d records failed; first: %w", failed, err)
		}
		if got := p.AckedBetween(from, time.Now().Add(time.Hour)); got < n {
			return fmt.Errorf("%d records acknowledged since %s, want %d", got, from.Format("15:04:05.000"), n)
		}
		return nil
	})
	if failed, err := p.Err(); failed > 0 {
		t.Fatalf("%d records failed; first: %v", failed, err)
	}
}

// commitSome joins group through cl's proxy, consumes at least n records
// of topic from the start, commits what it consumed and leaves. It returns
// the committed offsets by partition.
func commitSome(t testing.TB, c *Cluster, proxy int, group, topic string, n int) map[int32]int64 {
	t.Helper()
	cl := c.Client(t, proxy,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	want := make(map[int32]int64)
	got := 0
	for got < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group %s: consumed %d of %d records within %v", group, got, n, clusterTimeout)
		}
		if err := errors.Join(fetchErrors(fetches)...); err != nil {
			t.Fatalf("group %s: %v", group, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			got++
			want[r.Partition] = max(want[r.Partition], r.Offset+1)
		})
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("group %s: commit: %v", group, err)
	}
	cl.Close() // leaves the group
	return want
}

func fetchErrors(fetches kgo.Fetches) []error {
	var errs []error
	fetches.EachError(func(topic string, partition int32, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", tp{topic, partition}, err))
	})
	return errs
}

// equalOffsets reports whether two partition → offset maps are equal.
func equalOffsets(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for p, o := range a {
		if bo, ok := b[p]; !ok || bo != o {
			return false
		}
	}
	return true
}

// endsOf returns, per partition, one past the highest acknowledged offset.
func endsOf(recs []*kgo.Record) map[int32]int64 {
	end := make(map[int32]int64)
	for _, r := range recs {
		end[r.Partition] = max(end[r.Partition], r.Offset+1)
	}
	return end
}
