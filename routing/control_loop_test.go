package routing

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// controlHarness is a store with nodes 1-3 and a topic of three RF-3 partitions, each
// led by its preferred replica, and a clock shared by the store's leases and the loops.
type controlHarness struct {
	store *MemStore
	clock *fakeClock
}

const nodeTTL = 10 * time.Second

func newControlHarness(t *testing.T) *controlHarness {
	t.Helper()
	ctx := context.Background()
	h := &controlHarness{clock: &fakeClock{now: time.Unix(1_000_000, 0)}}
	var err error
	if h.store, err = NewMemStore(""); err != nil {
		t.Fatal(err)
	}
	h.store.Now = h.clock.Now
	topic := Topic{Name: "t", ID: NewTopicID()}
	for i := range int32(3) {
		replicas := []int32{i + 1, (i+1)%3 + 1, (i+2)%3 + 1}
		topic.Partitions = append(topic.Partitions, Partition{Index: i, Replicas: replicas, ISR: slices.Clone(replicas), Leader: replicas[0]})
	}
	for id := int32(1); id <= 3; id++ {
		if err := h.store.RegisterNode(ctx, Node{ID: id, Addr: "127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.store.CreateTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	h.renew(t, 1, 2, 3)
	return h
}

// renew renews the leases of the given nodes, as live nodes do every few seconds.
func (h *controlHarness) renew(t *testing.T, ids ...int32) {
	t.Helper()
	for _, id := range ids {
		if _, err := h.store.AcquireLease(context.Background(), NodeLeaseName(id), "node", nodeTTL); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *controlHarness) loop(holder string) *ControlLoop {
	c := NewController(h.store, ControllerConfig{Now: h.clock.Now}, discard())
	return NewControlLoop(h.store, c, ControlLoopConfig{Holder: holder, LeaseTTL: 10 * time.Second,
		ImbalanceCheck: time.Minute, Now: h.clock.Now}, discard())
}

func (h *controlHarness) partition(t *testing.T, index int32) Partition {
	t.Helper()
	snap, _ := h.store.Snapshot(context.Background())
	p, _ := snap.Partition("t", index)
	return p
}

// TestControlLoopOneControllerAtATime: the controller lease elects one loop; another
// takes over only once the first stops renewing and its lease lapses.
func TestControlLoopOneControllerAtATime(t *testing.T) {
	h := newControlHarness(t)
	ctx := context.Background()
	a, b := h.loop("proxy-a"), h.loop("proxy-b")
	a.Step(ctx)
	b.Step(ctx)
	if !a.Leading() || b.Leading() {
		t.Fatalf("leading: a %v, b %v; want a only", a.Leading(), b.Leading())
	}
	h.clock.advance(5 * time.Second)
	a.Step(ctx) // renews
	h.clock.advance(6 * time.Second)
	b.Step(ctx)
	if b.Leading() {
		t.Fatalf("b took the lease while a renewed it")
	}
	h.clock.advance(11 * time.Second) // a is gone
	b.Step(ctx)
	if !b.Leading() {
		t.Fatalf("b did not take the lease 11 s after a stopped renewing a 10 s lease")
	}
}

// TestControlLoopFailsOverAndRebalances: a node whose lease expires loses its
// leaderships to live in-sync replicas (the epoch bumps, and it leaves the ISR); when
// it comes back and catches up, the imbalance check gives it its preferred
// partitions back.
func TestControlLoopFailsOverAndRebalances(t *testing.T) {
	h := newControlHarness(t)
	ctx := context.Background()
	loop := h.loop("proxy-a")
	loop.Step(ctx)
	before := h.partition(t, 0) // led by node 1

	h.clock.advance(nodeTTL + time.Second)
	h.renew(t, 2, 3) // node 1 died
	loop.Step(ctx)
	after := h.partition(t, 0)
	if after.Leader == 1 || after.LeaderEpoch != before.LeaderEpoch+1 || slices.Contains(after.ISR, 1) {
		t.Fatalf("after node 1's lease expired: leader %d epoch %d ISR %v; want another leader, epoch %d, node 1 out of the ISR",
			after.Leader, after.LeaderEpoch, after.ISR, before.LeaderEpoch+1)
	}

	// Node 1 returns and rejoins the ISR (its leader's AlterPartition, done here by hand).
	h.renew(t, 1, 2, 3)
	p := h.partition(t, 0)
	p.ISR = append(p.ISR, 1)
	if err := h.store.UpdatePartition(ctx, "t", p, p.PartitionEpoch); err != nil {
		t.Fatal(err)
	}
	loop.Step(ctx)
	if got := h.partition(t, 0); got.Leader == 1 {
		t.Fatalf("node 1 led again before the imbalance check was due")
	}
	h.clock.advance(time.Minute)
	h.renew(t, 1, 2, 3)
	loop.Step(ctx)
	if got := h.partition(t, 0); got.Leader != 1 {
		t.Fatalf("after the imbalance check partition 0 is led by %d; want its preferred replica, node 1", got.Leader)
	}
}
