package routing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// newRF3Cluster registers nodes 1, 2, 3 and creates topic "t" with one partition on
// replicas 1, 2, 3 (Kafka: a new partition's ISR is its replicas, led by the first).
func newRF3Cluster(t *testing.T, s Store, configs map[string]string) *Controller {
	t.Helper()
	ctx := context.Background()
	for id := int32(1); id <= 3; id++ {
		if err := s.RegisterNode(ctx, Node{ID: id, Addr: fmt.Sprintf("n%d:1", id)}); err != nil {
			t.Fatal(err)
		}
	}
	c := NewController(s, ControllerConfig{}, discard())
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "t", Assignment: [][]int32{{1, 2, 3}}, Configs: configs}); err != nil {
		t.Fatal(err)
	}
	return c
}

func partitionOf(t *testing.T, s Store, topic string, index int32) Partition {
	t.Helper()
	p, ok := mustSnapshot(t, s).Partition(topic, index)
	if !ok {
		t.Fatalf("no partition %s-%d", topic, index)
	}
	return p
}

func TestControllerFailoverMemStore(t *testing.T) {
	s, _ := NewMemStore("")
	testControllerFailover(t, s)
}

func TestControllerFailoverRedisStore(t *testing.T) {
	testControllerFailover(t, newTestRedisStore(t, startRedis(t).URL(), "failover"))
}

// The life of a partition with replicas 1, 2, 3 as its nodes fail and return, written
// through the Store as Kafka's controller would: ISR {1,2,3} led by 1; 1 fails → 2
// leads at epoch 1 with ISR {2,3}; 2 fails → 3; 3, the last ISR member, fails → it
// stays the ISR, nobody leads (epoch 3); it returns → it leads again (epoch 4).
func testControllerFailover(t *testing.T, s Store) {
	ctx := context.Background()
	c := newRF3Cluster(t, s, nil)
	alive := map[int32]bool{1: true, 2: true, 3: true}
	live := func(n int32) bool { return alive[n] }
	steps := []struct {
		name        string
		do          func() (int, error)
		leader      int32
		leaderEpoch int32
		isr         []int32
	}{
		{"1 fails", func() (int, error) { alive[1] = false; return c.HandleNodeFailure(ctx, 1, live) }, 2, 1, []int32{2, 3}},
		{"1 fails again: nothing to do", func() (int, error) { return c.HandleNodeFailure(ctx, 1, live) }, 2, 1, []int32{2, 3}},
		{"2 fails", func() (int, error) { alive[2] = false; return c.HandleNodeFailure(ctx, 2, live) }, 3, 2, []int32{3}},
		{"3 fails", func() (int, error) { alive[3] = false; return c.HandleNodeFailure(ctx, 3, live) }, -1, 3, []int32{3}},
		{"1 returns: not in the ISR", func() (int, error) { alive[1] = true; return c.HandleNodeReturn(ctx, 1, live) }, -1, 3, []int32{3}},
		{"3 returns", func() (int, error) { alive[3] = true; return c.HandleNodeReturn(ctx, 3, live) }, 3, 4, []int32{3}},
	}
	epoch := partitionOf(t, s, "t", 0).PartitionEpoch
	for _, step := range steps {
		before := partitionOf(t, s, "t", 0)
		n, err := step.do()
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got := partitionOf(t, s, "t", 0)
		checkPartition(t, step.name, got, step.leader, step.leaderEpoch, step.isr...)
		if wantN := map[bool]int{true: 1, false: 0}[!sameState(before, got)]; n != wantN {
			t.Errorf("%s: changed = %d, want %d", step.name, n, wantN)
		}
		if n > 0 {
			epoch++
		}
		if got.PartitionEpoch != epoch {
			t.Errorf("%s: partition epoch %d, want %d", step.name, got.PartitionEpoch, epoch)
		}
	}

	// The ISR grows back through the leader's AlterPartition; the leader at epoch 0 is fenced.
	p := partitionOf(t, s, "t", 0)
	if _, err := c.AlterPartitionISR(ctx, "t", 0, 1, 0, []int32{1, 2, 3}, p.PartitionEpoch, nil); !errors.Is(err, ErrFencedLeaderEpoch) {
		t.Fatalf("AlterPartition from the first leader = %v, want ErrFencedLeaderEpoch", err)
	}
	if _, err := c.AlterPartitionISR(ctx, "t", 0, 3, p.LeaderEpoch, []int32{3, 1}, p.PartitionEpoch-1, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("AlterPartition at a stale partition epoch = %v, want ErrConflict", err)
	}
	got, err := c.AlterPartitionISR(ctx, "t", 0, 3, p.LeaderEpoch, []int32{3, 1}, p.PartitionEpoch, nil)
	if err != nil || !slices.Equal(got.ISR, []int32{3, 1}) || got.PartitionEpoch != p.PartitionEpoch+1 {
		t.Fatalf("AlterPartition = %+v, %v", got, err)
	}
	if stored := partitionOf(t, s, "t", 0); !sameState(stored, got) || stored.PartitionEpoch != got.PartitionEpoch {
		t.Fatalf("stored %+v, returned %+v", stored, got)
	}

	// Preferred election: 1 is live and in the ISR again, so it takes over.
	results, err := c.ElectPreferredLeaders(ctx, live, nil)
	if err != nil || len(results) != 1 || results[0].Err != nil || results[0].Leader != 1 || results[0].LeaderEpoch != 5 {
		t.Fatalf("ElectPreferredLeaders = %+v, %v", results, err)
	}
	results, _ = c.ElectPreferredLeaders(ctx, live, nil)
	if !errors.Is(results[0].Err, ErrElectionNotNeeded) {
		t.Fatalf("second preferred election = %+v, want ErrElectionNotNeeded", results)
	}
}

func TestControllerAlterPartitionISRErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := NewMemStore("")
	c := newRF3Cluster(t, s, nil)
	for name, tc := range map[string]struct {
		topic string
		index int32
		isr   []int32
		want  error
	}{
		"unknown topic":     {"nope", 0, []int32{1}, ErrUnknownTopic},
		"unknown partition": {"t", 1, []int32{1}, ErrUnknownPartition},
		"non-replica":       {"t", 0, []int32{1, 4}, ErrInvalidISR},
		"leader missing":    {"t", 0, []int32{2, 3}, ErrInvalidISR},
	} {
		if _, err := c.AlterPartitionISR(ctx, tc.topic, tc.index, 1, 0, tc.isr, 0, nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// A replica without a live lease may not join (Kafka's INELIGIBLE_REPLICA, KIP-841):
	// one that caught up and then died must not count for acks=all.
	if _, err := c.AlterPartitionISR(ctx, "t", 0, 1, 0, []int32{1}, 0, nil); err != nil {
		t.Fatal(err)
	}
	dead := func(id int32) bool { return id != 3 }
	if _, err := c.AlterPartitionISR(ctx, "t", 0, 1, 0, []int32{1, 3}, 1, dead); !errors.Is(err, ErrIneligibleReplica) {
		t.Fatalf("adding a dead replica = %v, want ErrIneligibleReplica", err)
	}
	if _, err := c.AlterPartitionISR(ctx, "t", 0, 1, 0, []int32{1, 2, 3}, 1, func(int32) bool { return true }); err != nil {
		t.Fatalf("adding live replicas: %v", err)
	}
	// Proposing the ISR it already has writes nothing.
	v := mustSnapshot(t, s).Version
	if got, err := c.AlterPartitionISR(ctx, "t", 0, 1, 0, []int32{1, 2, 3}, 2, nil); err != nil || got.PartitionEpoch != 2 {
		t.Fatalf("unchanged ISR = %+v, %v", got, err)
	}
	if mustSnapshot(t, s).Version != v {
		t.Fatal("an unchanged ISR was written")
	}
}

// Kafka's ElectLeaders answers per partition, UNKNOWN_TOPIC_OR_PARTITION included.
func TestControllerElectLeaders(t *testing.T) {
	ctx := context.Background()
	s, _ := NewMemStore("")
	c := newRF3Cluster(t, s, nil)
	live := liveSet(2, 3)
	if _, err := c.HandleNodeFailure(ctx, 1, live); err != nil {
		t.Fatal(err)
	}
	results, err := c.ElectLeaders(ctx, ElectionPreferred, live, []TopicPartition{{"t", 0}, {"t", 0}, {"t", 5}, {"u", 0}})
	if err != nil {
		t.Fatal(err)
	}
	want := []error{ErrPreferredLeaderNotAvailable, ErrUnknownPartition, ErrUnknownTopic}
	if len(results) != len(want) {
		t.Fatalf("results = %+v", results)
	}
	for i, w := range want {
		if !errors.Is(results[i].Err, w) {
			t.Errorf("result %d = %+v, want %v", i, results[i], w)
		}
	}
	if results[0].Leader != 2 || results[0].LeaderEpoch != 1 {
		t.Errorf("a failed election reports %+v, want the current leader 2 at epoch 1", results[0])
	}
	// Everyone but 1 dies; an unclean election can only pick 1, which left the ISR.
	for _, n := range []int32{2, 3} {
		if _, err := c.HandleNodeFailure(ctx, n, liveSet()); err != nil {
			t.Fatal(err)
		}
	}
	// 2's failure took the leadership (epoch 2); 3's, the last ISR member's, changed nothing.
	checkPartition(t, "all failed", partitionOf(t, s, "t", 0), -1, 2, 3)
	results, _ = c.ElectLeaders(ctx, ElectionUnclean, liveSet(), nil)
	if !errors.Is(results[0].Err, ErrEligibleLeadersNotAvailable) {
		t.Fatalf("unclean election with nobody live = %+v", results)
	}
	results, _ = c.ElectLeaders(ctx, ElectionUnclean, liveSet(1), nil)
	if results[0].Err != nil || results[0].Leader != 1 {
		t.Fatalf("unclean election = %+v", results)
	}
	checkPartition(t, "unclean", partitionOf(t, s, "t", 0), 1, 3, 1)
	if _, err := c.ElectLeaders(ctx, ElectionType(2), live, nil); err == nil {
		t.Fatal("election type 2 accepted")
	}
}

// unclean.leader.election.enable (Kafka's default false) decides what a failure of the
// last ISR member does.
func TestControllerUncleanConfig(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		configs map[string]string
		leader  int32
		isr     []int32
	}{
		{nil, -1, []int32{1}},
		{map[string]string{UncleanLeaderElectionEnable: "false"}, -1, []int32{1}},
		{map[string]string{UncleanLeaderElectionEnable: "TRUE"}, 2, []int32{2}},
	} {
		s, _ := NewMemStore("")
		c := newRF3Cluster(t, s, tc.configs)
		p := partitionOf(t, s, "t", 0)
		if _, err := c.AlterPartitionISR(ctx, "t", 0, 1, 0, []int32{1}, p.PartitionEpoch, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.HandleNodeFailure(ctx, 1, liveSet(2, 3)); err != nil {
			t.Fatal(err)
		}
		checkPartition(t, fmt.Sprint(tc.configs), partitionOf(t, s, "t", 0), tc.leader, 1, tc.isr...)
	}
	if err := ValidateTopicConfigs(map[string]string{UncleanLeaderElectionEnable: "yes"}); err == nil {
		t.Fatal("unclean.leader.election.enable=yes accepted")
	}
}

// racingStore lets another writer (a leader's AlterPartition) in just before the
// controller's first write, which then loses its compare-and-set.
type racingStore struct {
	Store
	calls atomic.Int32
	race  func()
}

func (r *racingStore) UpdatePartitions(ctx context.Context, changes []PartitionChange) ([]error, error) {
	if r.calls.Add(1) == 1 {
		r.race()
	}
	return r.Store.UpdatePartitions(ctx, changes)
}

// A failover that loses a race is decided again on the fresh state: here the leader
// shrank the ISR to {1,3} meanwhile, so 3, not 2, takes over. Partitions of one round
// are written in one UpdatePartitions.
func TestControllerFailoverRetriesOnConflict(t *testing.T) {
	ctx := context.Background()
	mem, _ := NewMemStore("")
	r := &racingStore{Store: mem}
	c := newRF3Cluster(t, r, nil)
	if err := c.CreatePartitions(ctx, "t", 4, [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}, false); err != nil {
		t.Fatal(err)
	}
	r.race = func() {
		if _, err := c.AlterPartitionISR(ctx, "t", 0, 1, 0, []int32{1, 3}, 0, nil); err != nil {
			t.Error(err)
		}
	}
	n, err := c.HandleNodeFailure(ctx, 1, liveSet(2, 3))
	if err != nil || n != 4 {
		t.Fatalf("HandleNodeFailure = %d, %v; want 4 partitions changed", n, err)
	}
	if calls := r.calls.Load(); calls != 2 { // the batch, then the retry of partition 0
		t.Errorf("%d UpdatePartitions calls, want 2", calls)
	}
	checkPartition(t, "raced", partitionOf(t, r, "t", 0), 3, 1, 3)
	checkPartition(t, "p1", partitionOf(t, r, "t", 1), 2, 1, 2, 3)
	checkPartition(t, "p2", partitionOf(t, r, "t", 2), 2, 0, 2, 3)
	checkPartition(t, "p3", partitionOf(t, r, "t", 3), 3, 0, 3, 2)
}

// Liveness is a node lease that has not expired, judged by the caller's clock.
func TestLiveNodes(t *testing.T) {
	ctx := context.Background()
	s, _ := NewMemStore("")
	for id := int32(1); id <= 3; id++ {
		_ = s.RegisterNode(ctx, Node{ID: id})
	}
	if _, err := s.AcquireLease(ctx, NodeLeaseName(1), "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, NodeLeaseName(2), "b", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	_, _ = s.AcquireLease(ctx, NodeLeaseName(9), "unregistered", time.Minute)
	snap := mustSnapshot(t, s)
	now := time.Now().Add(time.Second)
	live := LiveNodes(snap, now)
	for id, want := range map[int32]bool{1: true, 2: false, 3: false, 9: false} {
		if live(id) != want {
			t.Errorf("live(%d) = %v, want %v", id, live(id), want)
		}
	}
	if LiveNodes(snap, now.Add(time.Hour))(1) {
		t.Error("node 1 live after its lease expired")
	}
	c := NewController(s, ControllerConfig{Now: func() time.Time { return now }}, discard())
	if live, err := c.LiveNodes(ctx); err != nil || !live(1) || live(2) {
		t.Fatalf("Controller.LiveNodes: %v", err)
	}
}

// The replication factor is bounded by the registered nodes, and by
// MaxReplicationFactor only if set.
func TestControllerReplicationFactor(t *testing.T) {
	ctx := context.Background()
	s, _ := NewMemStore("")
	for id := int32(1); id <= 3; id++ {
		_ = s.RegisterNode(ctx, Node{ID: id})
	}
	c := NewController(s, ControllerConfig{}, discard())
	top, err := c.CreateTopic(ctx, TopicSpec{Name: "rf3", Partitions: 6, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range top.Partitions {
		if len(p.Replicas) != 3 || !slices.Equal(p.ISR, p.Replicas) || p.Leader != p.Replicas[0] {
			t.Fatalf("partition %+v", p)
		}
	}
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "rf4", ReplicationFactor: 4}); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("RF 4 on 3 nodes = %v", err)
	}
	capped := NewController(s, ControllerConfig{MaxReplicationFactor: 2}, discard())
	if _, err := capped.CreateTopic(ctx, TopicSpec{Name: "capped", ReplicationFactor: 3}); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("RF 3 above a cap of 2 = %v", err)
	}
	if _, err := capped.CreateTopic(ctx, TopicSpec{Name: "capped", Assignment: [][]int32{{1, 2, 3}}}); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("an assignment of RF 3 above a cap of 2 = %v", err)
	}
}

// Property: over random sequences of node failures and returns, ISR
// changes from leaders (some stale) and elections, checked against the rules:
// (a) a leader is in the ISR, or -1; the ISR is a non-empty set of replicas;
// (b) LeaderEpoch never decreases and grows exactly when the leader changes;
// (c) with unclean elections off, a new leader was in the ISR before;
// and nobody dead is ever elected.
func TestElectionProperties(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := range seeds {
		runElectionProperty(t, uint64(seed), 150)
	}
}

func runElectionProperty(t *testing.T, seed uint64, steps int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x57a17))
	s, _ := NewMemStore("")
	const nodes = 5
	alive := map[int32]bool{}
	for id := int32(1); id <= nodes; id++ {
		_ = s.RegisterNode(ctx, Node{ID: id})
		alive[id] = true
	}
	live := func(n int32) bool { return alive[n] }
	c := NewController(s, ControllerConfig{}, discard())
	for _, spec := range []TopicSpec{
		{Name: "clean", Partitions: 6, ReplicationFactor: 3},
		{Name: "unclean", Partitions: 4, ReplicationFactor: 2, Configs: map[string]string{UncleanLeaderElectionEnable: "true"}},
	} {
		if _, err := c.CreateTopic(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	prev := mustSnapshot(t, s)
	for step := range steps {
		var what string
		var err error
		node := int32(1 + rng.IntN(nodes))
		switch op := rng.IntN(10); {
		case op < 3 && alive[node]:
			what = fmt.Sprintf("node %d fails", node)
			alive[node] = false
			_, err = c.HandleNodeFailure(ctx, node, live)
		case op < 5 && !alive[node]:
			what = fmt.Sprintf("node %d returns", node)
			alive[node] = true
			_, err = c.HandleNodeReturn(ctx, node, live)
		case op < 8:
			what, err = randomAlterISR(ctx, rng, c, prev, live)
		case op < 9:
			what = "preferred election"
			_, err = c.ElectPreferredLeaders(ctx, live, nil)
		default:
			what = "unclean election of the unclean topic"
			_, err = c.ElectLeaders(ctx, ElectionUnclean, live, []TopicPartition{{"unclean", int32(rng.IntN(4))}})
		}
		if err != nil {
			t.Fatalf("seed %d step %d (%s): %v", seed, step, what, err)
		}
		next := mustSnapshot(t, s)
		for _, name := range next.TopicNames() {
			for i, p := range next.Topics[name].Partitions {
				if msg := checkTransition(prev.Topics[name].Partitions[i], p, live, name == "clean"); msg != "" {
					t.Fatalf("seed %d step %d (%s): %s-%d: %s\nbefore %+v\nafter  %+v", seed, step, what, name, i, msg, prev.Topics[name].Partitions[i], p)
				}
			}
		}
		prev = next
	}
}

// randomAlterISR has a partition's leader propose an ISR of itself and some live
// replicas, sometimes with a stale epoch, which must be refused and change nothing.
func randomAlterISR(ctx context.Context, rng *rand.Rand, c *Controller, snap *Snapshot, live func(int32) bool) (string, error) {
	names := snap.TopicNames()
	name := names[rng.IntN(len(names))]
	parts := snap.Topics[name].Partitions
	p := parts[rng.IntN(len(parts))]
	if p.Leader == NoLeader {
		return "nothing", nil
	}
	isr := []int32{p.Leader}
	for _, r := range p.Replicas {
		if r != p.Leader && live(r) && rng.IntN(2) == 0 {
			isr = append(isr, r)
		}
	}
	leaderEpoch, partitionEpoch, want := p.LeaderEpoch, p.PartitionEpoch, error(nil)
	switch rng.IntN(6) {
	case 0:
		leaderEpoch, want = leaderEpoch-1, ErrFencedLeaderEpoch
	case 1:
		partitionEpoch, want = partitionEpoch-1, ErrConflict
	}
	what := fmt.Sprintf("leader %d of %s-%d proposes ISR %v at epochs %d/%d", p.Leader, name, p.Index, isr, leaderEpoch, partitionEpoch)
	_, err := c.AlterPartitionISR(ctx, name, p.Index, p.Leader, leaderEpoch, isr, partitionEpoch, nil)
	if !errors.Is(err, want) || (want == nil) != (err == nil) {
		return what, fmt.Errorf("got %v, want %v", err, want)
	}
	return what, nil
}

// checkTransition returns what is wrong with a partition going from a to b, or "".
func checkTransition(a, b Partition, live func(int32) bool, clean bool) string {
	switch {
	case len(b.ISR) == 0:
		return "empty ISR"
	case b.Leader != NoLeader && !slices.Contains(b.ISR, b.Leader):
		return "(a) the leader is not in the ISR"
	case b.LeaderEpoch < a.LeaderEpoch:
		return "(b) the leader epoch went down"
	case (b.Leader != a.Leader) != (b.LeaderEpoch > a.LeaderEpoch):
		return "(b) the leader epoch must grow exactly when the leader changes"
	case b.PartitionEpoch < a.PartitionEpoch || (b.PartitionEpoch == a.PartitionEpoch && !sameState(a, b)):
		return "the partition epoch did not grow with a change"
	case b.Leader != a.Leader && b.Leader != NoLeader && !live(b.Leader):
		return "a dead node was elected"
	case clean && b.Leader != a.Leader && b.Leader != NoLeader && !slices.Contains(a.ISR, b.Leader):
		return "(c) unclean elections are off, yet the new leader was not in the ISR"
	}
	for i, r := range b.ISR {
		if !b.HasReplica(r) || slices.Contains(b.ISR[:i], r) {
			return "the ISR is not a set of replicas"
		}
	}
	return ""
}
