package routing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// The Store contract: every implementation runs the same suite, so `strait dev`
// and a Redis cluster behave alike.

func TestMemStoreContract(t *testing.T) {
	testStoreContract(t, func(t *testing.T) Store {
		s, err := NewMemStore("")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestRedisStoreContract(t *testing.T) {
	srv := startRedis(t)
	n := 0
	testStoreContract(t, func(t *testing.T) Store {
		n++ // each store its own cluster: the subtests share one redis-server
		return newTestRedisStore(t, srv.URL(), fmt.Sprintf("contract-%d", n))
	})
}

func newTestRedisStore(t *testing.T, url, cluster string) *RedisStore {
	t.Helper()
	s, err := NewRedisStore(context.Background(), url, cluster, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testStoreContract(t *testing.T, newStore func(t *testing.T) Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"TopicRoundTrip", contractTopicRoundTrip},
		{"CreateDeleteErrors", contractCreateDeleteErrors},
		{"AddPartitionsCAS", contractAddPartitionsCAS},
		{"SetTopicConfigsCAS", contractSetTopicConfigsCAS},
		{"RegistrationReplaces", contractRegistrationReplaces},
		{"ProducerIDBlocks", contractProducerIDBlocks},
		{"ProducerIDBlocksConcurrent", contractProducerIDBlocksConcurrent},
		{"NotifiesEveryChange", contractNotifiesEveryChange},
		{"NotificationsCoalesce", contractNotificationsCoalesce},
		{"SnapshotsImmutable", contractSnapshotsImmutable},
		{"Leases", contractLeases},
		{"LeaseRace", contractLeaseRace},
		{"ReleaseLease", contractReleaseLease},
		{"AddPartitionsRace", contractAddPartitionsRace},
		{"SetTopicConfigsRace", contractSetTopicConfigsRace},
		{"UpdatePartitionCAS", contractUpdatePartitionCAS},
		{"UpdatePartitionRace", contractUpdatePartitionRace},
		{"UpdatePartitionsBatch", contractUpdatePartitionsBatch},
		{"CacheFollowsStore", contractCacheFollowsStore},
		{"ACLs", contractACLs},
		{"ScramCredentials", contractScramCredentials},
		{"Closed", contractClosed},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func testTopic(name string, partitions int) Topic {
	t := Topic{Name: name, ID: NewTopicID()}
	for i := range partitions {
		t.Partitions = append(t.Partitions, newPartition(int32(i), []int32{1}))
	}
	return t
}

func mustSnapshot(t *testing.T, s Store) *Snapshot {
	t.Helper()
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// waitWake waits for a wake-up; Redis delivers them asynchronously.
func waitWake(t *testing.T, ch <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("no notification after %s", after)
	}
}

// drain empties ch once no wake-up has come for a while, and counts what it read.
func drain(ch <-chan struct{}, quiet time.Duration) int {
	n := 0
	for {
		select {
		case <-ch:
			n++
		case <-time.After(quiet):
			return n
		}
	}
}

func contractTopicRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	want := Topic{Name: "orders", ID: NewTopicID(), Configs: map[string]string{"retention.ms": "1000"},
		Partitions: []Partition{
			{Index: 0, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 3, PartitionEpoch: 7},
			{Index: 1, Replicas: []int32{2, 1}, ISR: []int32{2, 1}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1},
		}}
	if err := s.CreateTopic(ctx, want); err != nil {
		t.Fatal(err)
	}
	snap := mustSnapshot(t, s)
	got, ok := snap.Topic("orders")
	if !ok || got.ID != want.ID || !maps.Equal(got.Configs, want.Configs) || !reflect.DeepEqual(got.Partitions, want.Partitions) {
		t.Fatalf("topic read back = %+v, want %+v", got, want)
	}
	if byID, ok := snap.TopicByID(want.ID); !ok || byID.Name != "orders" {
		t.Fatalf("TopicByID = %+v, %v", byID, ok)
	}
	if snap.ClusterID == "" {
		t.Fatal("snapshot has no cluster id")
	}
	if again := mustSnapshot(t, s); again.ClusterID != snap.ClusterID {
		t.Fatalf("cluster id changed from %q to %q", snap.ClusterID, again.ClusterID)
	}
}

// Kafka: CreateTopics on an existing name is TOPIC_ALREADY_EXISTS; DeleteTopics,
// CreatePartitions and AlterConfigs on a missing one are UNKNOWN_TOPIC_OR_PARTITION.
func contractCreateDeleteErrors(t *testing.T, s Store) {
	ctx := context.Background()
	first := testTopic("t", 1)
	if err := s.CreateTopic(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTopic(ctx, testTopic("t", 2)); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second CreateTopic = %v, want ErrTopicExists", err)
	}
	for name, err := range map[string]error{
		"DeleteTopic":     s.DeleteTopic(ctx, "nope"),
		"AddPartitions":   s.AddPartitions(ctx, "nope", 0, nil),
		"SetTopicConfigs": s.SetTopicConfigs(ctx, "nope", nil, 0),
		"UpdatePartition": s.UpdatePartition(ctx, "nope", newPartition(0, []int32{1}), 0),
	} {
		if !errors.Is(err, ErrUnknownTopic) {
			t.Errorf("%s of a missing topic = %v, want ErrUnknownTopic", name, err)
		}
	}
	if err := s.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic(ctx, "t"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("second DeleteTopic = %v, want ErrUnknownTopic", err)
	}
	if _, ok := mustSnapshot(t, s).Topic("t"); ok {
		t.Fatal("deleted topic still in snapshot")
	}
	// A recreated topic is a new topic (KIP-516): a new id, nothing of the old one.
	second := testTopic("t", 3)
	if err := s.CreateTopic(ctx, second); err != nil {
		t.Fatal(err)
	}
	got, _ := mustSnapshot(t, s).Topic("t")
	if got == nil || got.ID != second.ID || len(got.Partitions) != 3 {
		t.Fatalf("recreated topic = %+v, want id %s with 3 partitions", got, second.ID)
	}
}

func contractAddPartitionsCAS(t *testing.T, s Store) {
	ctx := context.Background()
	_ = s.CreateTopic(ctx, testTopic("t", 1))
	if err := s.AddPartitions(ctx, "t", 2, []Partition{newPartition(1, []int32{1})}); !errors.Is(err, ErrConflict) {
		t.Fatalf("AddPartitions with a wrong count = %v, want ErrConflict", err)
	}
	if err := s.AddPartitions(ctx, "t", 1, []Partition{newPartition(1, []int32{1}), newPartition(2, []int32{1})}); err != nil {
		t.Fatal(err)
	}
	parts := mustSnapshot(t, s).Topics["t"].Partitions
	if len(parts) != 3 || parts[2].Index != 2 {
		t.Fatalf("partitions after AddPartitions = %+v", parts)
	}
}

// Kafka's AlterConfigs replaces the whole set of overrides (IncrementalAlterConfigs
// is built on top with a read and a compare-and-set).
func contractSetTopicConfigsCAS(t *testing.T, s Store) {
	ctx := context.Background()
	_ = s.CreateTopic(ctx, Topic{Name: "t", ID: NewTopicID(), Configs: map[string]string{"segment.ms": "1"}})
	set := map[string]string{"retention.ms": "5"}
	if err := s.SetTopicConfigs(ctx, "t", set, 0); err != nil {
		t.Fatal(err)
	}
	set["retention.ms"] = "changed by the caller afterwards"
	got := mustSnapshot(t, s).Topics["t"]
	if got.ConfigVersion != 1 || !maps.Equal(got.Configs, map[string]string{"retention.ms": "5"}) {
		t.Fatalf("after SetTopicConfigs: version %d, configs %v", got.ConfigVersion, got.Configs)
	}
	if err := s.SetTopicConfigs(ctx, "t", nil, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale SetTopicConfigs = %v, want ErrConflict", err)
	}
	if err := s.SetTopicConfigs(ctx, "t", nil, 1); err != nil {
		t.Fatal(err)
	}
	if got := mustSnapshot(t, s).Topics["t"]; got.ConfigVersion != 2 || len(got.Configs) != 0 {
		t.Fatalf("after clearing: version %d, configs %v", got.ConfigVersion, got.Configs)
	}
}

func contractRegistrationReplaces(t *testing.T, s Store) {
	ctx := context.Background()
	for _, n := range []Node{{ID: 1, Addr: "a:1"}, {ID: 2, Addr: "b:1"}, {ID: 1, Addr: "a:2", Rack: "r1"}} {
		if err := s.RegisterNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []Proxy{{ID: 5, Addr: "p:1"}, {ID: 5, Addr: "p:2", Rack: "r2", Listeners: map[string]string{"SASL_SSL": "p:3"}}} {
		if err := s.RegisterProxy(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	snap := mustSnapshot(t, s)
	if want := map[int32]Node{1: {ID: 1, Addr: "a:2", Rack: "r1"}, 2: {ID: 2, Addr: "b:1"}}; !maps.EqualFunc(snap.Nodes, want, Node.Equal) {
		t.Fatalf("nodes = %v, want %v", snap.Nodes, want)
	}
	if !slices.Equal(snap.NodeIDs(), []int32{1, 2}) {
		t.Fatalf("NodeIDs = %v", snap.NodeIDs())
	}
	if want := map[int32]Proxy{5: {ID: 5, Addr: "p:2", Rack: "r2", Listeners: map[string]string{"SASL_SSL": "p:3"}}}; !maps.EqualFunc(snap.Proxies, want, Proxy.Equal) {
		t.Fatalf("proxies = %v, want %v", snap.Proxies, want)
	}
}

// Kafka's AllocateProducerIds (KIP-730): blocks never overlap.
func contractProducerIDBlocks(t *testing.T, s Store) {
	ctx := context.Background()
	a, err := s.AllocateProducerIDs(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AllocateProducerIDs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if a < 0 || b < a+1000 {
		t.Fatalf("blocks [%d,+1000) and [%d,+10) overlap or are negative", a, b)
	}
}

func contractProducerIDBlocksConcurrent(t *testing.T, s Store) {
	ctx := context.Background()
	const goroutines, each, size = 8, 25, 100
	var mu sync.Mutex
	var firsts []int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				first, err := s.AllocateProducerIDs(ctx, size)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				firsts = append(firsts, first)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(firsts)
	if len(firsts) != goroutines*each {
		t.Fatalf("%d blocks, want %d", len(firsts), goroutines*each)
	}
	for i := 1; i < len(firsts); i++ {
		if firsts[i] < firsts[i-1]+size {
			t.Fatalf("blocks at %d and %d overlap", firsts[i-1], firsts[i])
		}
	}
}

// Every change bumps the version and wakes subscribers, so caches refresh at once.
func contractNotifiesEveryChange(t *testing.T, s Store) {
	ctx := context.Background()
	changes, cancel := s.Subscribe()
	defer cancel()
	drain(changes, 200*time.Millisecond) // a store may wake subscribers once on connecting
	version := mustSnapshot(t, s).Version
	for _, step := range []struct {
		name string
		do   func() error
	}{
		{"CreateTopic", func() error { return s.CreateTopic(ctx, testTopic("t", 1)) }},
		{"AddPartitions", func() error { return s.AddPartitions(ctx, "t", 1, []Partition{newPartition(1, []int32{1})}) }},
		{"SetTopicConfigs", func() error { return s.SetTopicConfigs(ctx, "t", map[string]string{"retention.ms": "1"}, 0) }},
		{"UpdatePartition", func() error { return s.UpdatePartition(ctx, "t", newPartition(1, []int32{1}), 0) }},
		{"DeleteTopic", func() error { return s.DeleteTopic(ctx, "t") }},
		{"RegisterNode", func() error { return s.RegisterNode(ctx, Node{ID: 1, Addr: "a:1"}) }},
		{"RegisterProxy", func() error { return s.RegisterProxy(ctx, Proxy{ID: 1, Addr: "p:1"}) }},
		{"AcquireLease", func() error { _, err := s.AcquireLease(ctx, "l", "h", time.Minute); return err }},
		{"ReleaseLease", func() error { return s.ReleaseLease(ctx, "l", "h") }},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		waitWake(t, changes, step.name)
		next := mustSnapshot(t, s).Version
		if next <= version {
			t.Fatalf("%s: version %d after %d, want it to grow", step.name, next, version)
		}
		version = next
	}
	// A failed change changes nothing.
	if err := s.DeleteTopic(ctx, "t"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatal(err)
	}
	if v := mustSnapshot(t, s).Version; v != version {
		t.Fatalf("failed DeleteTopic moved the version from %d to %d", version, v)
	}
}

// A slow subscriber never blocks writers: its wake-ups coalesce into one pending
// value, and reading it then finds the latest state.
func contractNotificationsCoalesce(t *testing.T, s Store) {
	ctx := context.Background()
	changes, cancel := s.Subscribe()
	defer cancel()
	_, other := s.Subscribe()
	_ = other // a second subscriber that never reads must not block anyone either
	const n = 50
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := s.RegisterNode(ctx, Node{ID: int32(i), Addr: "a:1"}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writes blocked on subscribers that do not read")
	}
	waitWake(t, changes, "50 registrations")
	if got := 1 + drain(changes, 300*time.Millisecond); got > n+1 {
		t.Fatalf("%d wake-ups for %d changes", got, n)
	}
	if nodes := len(mustSnapshot(t, s).Nodes); nodes != n {
		t.Fatalf("snapshot after the wake-ups has %d nodes, want %d", nodes, n)
	}
	cancel()
	_ = s.RegisterNode(ctx, Node{ID: 99})
	if got := drain(changes, 300*time.Millisecond); got != 0 {
		t.Fatalf("%d wake-ups after cancel", got)
	}
}

func contractSnapshotsImmutable(t *testing.T, s Store) {
	ctx := context.Background()
	_ = s.RegisterNode(ctx, Node{ID: 1, Addr: "a:1"})
	_ = s.CreateTopic(ctx, Topic{Name: "t", ID: NewTopicID(), Configs: map[string]string{"retention.ms": "1"},
		Partitions: []Partition{newPartition(0, []int32{1})}})
	_ = s.CreateTopic(ctx, testTopic("u", 1))
	old := mustSnapshot(t, s)
	oldTopic := *old.Topics["t"]

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddPartitions(ctx, "t", 1, []Partition{newPartition(1, []int32{1})}))
	must(s.SetTopicConfigs(ctx, "t", map[string]string{"retention.ms": "2"}, 0))
	must(s.UpdatePartition(ctx, "t", Partition{Index: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 9}, 0))
	must(s.RegisterNode(ctx, Node{ID: 1, Addr: "moved:1"}))
	must(s.RegisterProxy(ctx, Proxy{ID: 1}))
	must(s.DeleteTopic(ctx, "u"))
	if _, err := s.AcquireLease(ctx, "l", "h", time.Minute); err != nil {
		t.Fatal(err)
	}

	got := old.Topics["t"]
	if p := got.Partitions[0]; p.LeaderEpoch != 0 || p.PartitionEpoch != 0 {
		t.Fatalf("old snapshot's partition changed: %+v", p)
	}
	if len(got.Partitions) != 1 || got.Configs["retention.ms"] != "1" || got.ConfigVersion != oldTopic.ConfigVersion {
		t.Fatalf("old snapshot's topic changed: %+v", got)
	}
	if _, ok := old.Topics["u"]; !ok {
		t.Fatal("old snapshot lost a topic deleted later")
	}
	if old.Nodes[1].Addr != "a:1" || len(old.Proxies) != 0 || len(old.Leases) != 0 {
		t.Fatalf("old snapshot changed: nodes %v proxies %v leases %v", old.Nodes, old.Proxies, old.Leases)
	}
	if now := mustSnapshot(t, s); now.Version <= old.Version || len(now.Topics["t"].Partitions) != 2 {
		t.Fatalf("new snapshot: version %d (old %d), %d partitions", now.Version, old.Version, len(now.Topics["t"].Partitions))
	}
}

// A lease has one live holder; a renewal keeps the token, a takeover after expiry
// bumps it so the former holder's writes can be fenced.
func contractLeases(t *testing.T, s Store) {
	ctx := context.Background()
	const ttl = 100 * time.Millisecond
	a, err := s.AcquireLease(ctx, "offsets/0", "proxy-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if a.Holder != "proxy-a" || time.Until(a.ExpiresAt) > ttl+time.Second {
		t.Fatalf("first acquire = %+v", a)
	}
	if _, err := s.AcquireLease(ctx, "offsets/0", "proxy-b", time.Second); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("acquire of a live lease = %v, want ErrLeaseHeld", err)
	}
	before := mustSnapshot(t, s).Version
	renewed, err := s.AcquireLease(ctx, "offsets/0", "proxy-a", ttl)
	if err != nil || renewed.Token != a.Token {
		t.Fatalf("renewal = %+v, %v; want token %d", renewed, err, a.Token)
	}
	if v := mustSnapshot(t, s).Version; v != before {
		t.Fatalf("renewal moved the version from %d to %d", before, v)
	}
	if other, err := s.AcquireLease(ctx, "offsets/1", "proxy-b", ttl); err != nil || other.Holder != "proxy-b" {
		t.Fatalf("another lease = %+v, %v", other, err)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	b, err := s.AcquireLease(ctx, "offsets/0", "proxy-b", time.Minute)
	if err != nil || b.Token != a.Token+1 || b.Holder != "proxy-b" {
		t.Fatalf("takeover after expiry = %+v, %v; want token %d", b, err, a.Token+1)
	}
	snap := mustSnapshot(t, s)
	if snap.Version <= before {
		t.Fatalf("takeover did not bump the version (%d)", snap.Version)
	}
	if l := snap.Leases["offsets/0"]; l.Holder != "proxy-b" || l.Token != b.Token {
		t.Fatalf("snapshot lease = %+v", l)
	}
	if _, err := s.AcquireLease(ctx, "offsets/0", "proxy-a", ttl); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("former holder's acquire = %v, want ErrLeaseHeld", err)
	}
}

// runRace starts n goroutines at once and returns how many succeeded; every other
// one must fail with want.
func runRace(t *testing.T, n int, want error, do func(i int) error) int {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = do(i)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, want):
			t.Errorf("loser's error = %v, want %v", err, want)
		}
	}
	return wins
}

// contractReleaseLease: a released lease is free at once for another holder, whose
// token is higher; releasing a lease one does not hold changes nothing.
func contractReleaseLease(t *testing.T, s Store) {
	ctx := context.Background()
	a, err := s.AcquireLease(ctx, "coordinator/0", "proxy-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, "coordinator/0", "proxy-b"); err != nil {
		t.Fatalf("release by a non-holder = %v, want nil", err)
	}
	if _, err := s.AcquireLease(ctx, "coordinator/0", "proxy-b", time.Minute); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("acquire after a non-holder's release = %v, want ErrLeaseHeld", err)
	}
	if err := s.ReleaseLease(ctx, "coordinator/0", "proxy-a"); err != nil {
		t.Fatal(err)
	}
	b, err := s.AcquireLease(ctx, "coordinator/0", "proxy-b", time.Minute)
	if err != nil || b.Token <= a.Token {
		t.Fatalf("acquire after release = %+v, %v; want it, with a token above %d", b, err, a.Token)
	}
	if err := s.ReleaseLease(ctx, "no-such-lease", "proxy-a"); err != nil {
		t.Fatalf("release of a missing lease = %v, want nil", err)
	}
}

func contractLeaseRace(t *testing.T, s Store) {
	ctx := context.Background()
	wins := runRace(t, 8, ErrLeaseHeld, func(i int) error {
		_, err := s.AcquireLease(ctx, "controller", fmt.Sprintf("holder-%d", i), time.Minute)
		return err
	})
	if wins != 1 {
		t.Fatalf("%d holders won the lease, want 1", wins)
	}
	if l := mustSnapshot(t, s).Leases["controller"]; l.Token != 1 {
		t.Fatalf("lease after the race = %+v, want token 1", l)
	}
}

func contractAddPartitionsRace(t *testing.T, s Store) {
	ctx := context.Background()
	_ = s.CreateTopic(ctx, testTopic("t", 2))
	wins := runRace(t, 8, ErrConflict, func(i int) error {
		return s.AddPartitions(ctx, "t", 2, []Partition{newPartition(2, []int32{int32(i)})})
	})
	if wins != 1 {
		t.Fatalf("%d AddPartitions won, want 1", wins)
	}
	if n := len(mustSnapshot(t, s).Topics["t"].Partitions); n != 3 {
		t.Fatalf("%d partitions after the race, want 3", n)
	}
}

func contractSetTopicConfigsRace(t *testing.T, s Store) {
	ctx := context.Background()
	_ = s.CreateTopic(ctx, testTopic("t", 1))
	wins := runRace(t, 8, ErrConflict, func(i int) error {
		return s.SetTopicConfigs(ctx, "t", map[string]string{"retention.ms": fmt.Sprint(i)}, 0)
	})
	if wins != 1 {
		t.Fatalf("%d SetTopicConfigs won, want 1", wins)
	}
	if v := mustSnapshot(t, s).Topics["t"].ConfigVersion; v != 1 {
		t.Fatalf("config version after the race = %d, want 1", v)
	}
}

// Partition state changes by compare-and-set on the partition epoch, as Kafka's
// AlterPartition (KIP-497) and controller elections do: a writer whose read is stale
// loses with ErrConflict (Kafka's INVALID_UPDATE_VERSION), and nothing changes.
func contractUpdatePartitionCAS(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.CreateTopic(ctx, Topic{Name: "t", ID: NewTopicID(), Partitions: []Partition{
		newPartition(0, []int32{1, 2, 3}), newPartition(1, []int32{2, 3, 1}),
	}}); err != nil {
		t.Fatal(err)
	}
	before := mustSnapshot(t, s)
	next := Partition{Index: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 42}
	if err := s.UpdatePartition(ctx, "t", next, 0); err != nil {
		t.Fatal(err)
	}
	next.ISR[0] = 9 // the store keeps its own copy
	snap := mustSnapshot(t, s)
	want := Partition{Index: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1}
	if got := snap.Topics["t"].Partitions; !reflect.DeepEqual(got[0], want) || !reflect.DeepEqual(got[1], before.Topics["t"].Partitions[1]) {
		t.Fatalf("partitions after the update = %+v, want %+v and partition 1 untouched", got, want)
	}
	if snap.Version <= before.Version {
		t.Fatalf("version %d after the update, was %d", snap.Version, before.Version)
	}
	for name, tc := range map[string]struct {
		topic  string
		p      Partition
		expect int32
		want   error
	}{
		"stale epoch":   {"t", want, 0, ErrConflict},
		"future epoch":  {"t", want, 2, ErrConflict},
		"unknown topic": {"nope", want, 1, ErrUnknownTopic},
		"unknown index": {"t", Partition{Index: 2, Replicas: []int32{1}}, 0, ErrUnknownPartition},
		"negative":      {"t", Partition{Index: -1, Replicas: []int32{1}}, 0, ErrUnknownPartition},
	} {
		if err := s.UpdatePartition(ctx, tc.topic, tc.p, tc.expect); !errors.Is(err, tc.want) {
			t.Errorf("%s: UpdatePartition = %v, want %v", name, err, tc.want)
		}
	}
	if after := mustSnapshot(t, s); after.Version != snap.Version || !reflect.DeepEqual(after.Topics["t"].Partitions[0], want) {
		t.Fatalf("failed updates changed something: version %d (was %d), partition %+v", after.Version, snap.Version, after.Topics["t"].Partitions[0])
	}
	want.Leader, want.LeaderEpoch = -1, 2
	if err := s.UpdatePartition(ctx, "t", want, 1); err != nil {
		t.Fatal(err)
	}
	if got := mustSnapshot(t, s).Topics["t"].Partitions[0]; got.Leader != -1 || got.PartitionEpoch != 2 {
		t.Fatalf("second update = %+v, want leader -1 at partition epoch 2", got)
	}
}

// Two controllers (or a controller and a leader's AlterPartition) racing on the same
// partition: exactly one wins.
func contractUpdatePartitionRace(t *testing.T, s Store) {
	ctx := context.Background()
	_ = s.CreateTopic(ctx, Topic{Name: "t", ID: NewTopicID(), Partitions: []Partition{
		newPartition(0, []int32{0, 1, 2, 3, 4, 5, 6, 7}),
	}})
	wins := runRace(t, 8, ErrConflict, func(i int) error {
		p := newPartition(0, []int32{0, 1, 2, 3, 4, 5, 6, 7})
		p.Leader, p.LeaderEpoch = int32(i), 1
		return s.UpdatePartition(ctx, "t", p, 0)
	})
	if wins != 1 {
		t.Fatalf("%d UpdatePartition won, want 1", wins)
	}
	if p := mustSnapshot(t, s).Topics["t"].Partitions[0]; p.PartitionEpoch != 1 || p.LeaderEpoch != 1 {
		t.Fatalf("partition after the race = %+v, want partition epoch 1", p)
	}
}

// A batch judges each change on its own and writes the winners under one version.
func contractUpdatePartitionsBatch(t *testing.T, s Store) {
	ctx := context.Background()
	_ = s.CreateTopic(ctx, testTopic("a", 2))
	_ = s.CreateTopic(ctx, testTopic("b", 1))
	changes, cancel := s.Subscribe()
	defer cancel()
	drain(changes, 200*time.Millisecond)
	before := mustSnapshot(t, s).Version
	led := func(index, leaderEpoch int32) Partition {
		p := newPartition(index, []int32{1})
		p.LeaderEpoch = leaderEpoch
		return p
	}
	results, err := s.UpdatePartitions(ctx, []PartitionChange{
		{Topic: "a", Partition: led(0, 1), ExpectPartitionEpoch: 0},
		{Topic: "a", Partition: led(1, 1), ExpectPartitionEpoch: 5}, // stale
		{Topic: "b", Partition: led(0, 1), ExpectPartitionEpoch: 0},
		{Topic: "b", Partition: led(0, 2), ExpectPartitionEpoch: 1}, // follows the previous change
		{Topic: "c", Partition: led(0, 1), ExpectPartitionEpoch: 0},
		{Topic: "a", Partition: led(7, 1), ExpectPartitionEpoch: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantErrs := []error{nil, ErrConflict, nil, nil, ErrUnknownTopic, ErrUnknownPartition}
	if len(results) != len(wantErrs) {
		t.Fatalf("%d results for %d changes", len(results), len(wantErrs))
	}
	for i, want := range wantErrs {
		if (want == nil) != (results[i] == nil) || !errors.Is(results[i], want) {
			t.Errorf("result %d = %v, want %v", i, results[i], want)
		}
	}
	waitWake(t, changes, "UpdatePartitions")
	snap := mustSnapshot(t, s)
	if snap.Version != before+1 {
		t.Fatalf("version %d after one batch, was %d: want one bump", snap.Version, before)
	}
	a, b := snap.Topics["a"].Partitions, snap.Topics["b"].Partitions
	if a[0].PartitionEpoch != 1 || a[0].LeaderEpoch != 1 || a[1].PartitionEpoch != 0 || b[0].PartitionEpoch != 2 || b[0].LeaderEpoch != 2 {
		t.Fatalf("after the batch: a=%+v b=%+v", a, b)
	}
	// A batch where every change fails writes nothing.
	results, err = s.UpdatePartitions(ctx, []PartitionChange{{Topic: "a", Partition: led(0, 9), ExpectPartitionEpoch: 0}})
	if err != nil || !errors.Is(results[0], ErrConflict) {
		t.Fatalf("all-stale batch = %v, %v", results, err)
	}
	if v := mustSnapshot(t, s).Version; v != snap.Version {
		t.Fatalf("a batch that changed nothing moved the version from %d to %d", snap.Version, v)
	}
}

func contractCacheFollowsStore(t *testing.T, s Store) {
	ctx := context.Background()
	c, err := NewCache(ctx, s, time.Hour, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, change := range []func() error{
		func() error { return s.RegisterNode(ctx, Node{ID: 7, Addr: "x:1"}) },
		func() error { return s.CreateTopic(ctx, testTopic("t", 1)) },
		func() error { return s.DeleteTopic(ctx, "t") },
	} {
		changed := c.Changed()
		if err := change(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatalf("change %d: the cache did not follow the store", i)
		}
	}
	snap := c.Snapshot()
	if _, ok := snap.Nodes[7]; !ok || len(snap.Topics) != 0 {
		t.Fatalf("cached snapshot: nodes %v topics %v", snap.Nodes, sortedKeys(snap.Topics))
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
}

func contractClosed(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Snapshot after Close = %v, want ErrClosed", err)
	}
	if err := s.RegisterNode(ctx, Node{ID: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("RegisterNode after Close = %v, want ErrClosed", err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	return keys
}
