package routing

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Kafka's Topic.validate: legal characters, length 249, "." and ".." refused.
func TestValidateTopicName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"a.b_c-D9", true},
		{strings.Repeat("x", 249), true},
		{strings.Repeat("x", 250), false},
		{"", false},
		{".", false},
		{"..", false},
		{"has space", false},
		{"slash/no", false},
		{"ünïcode", false},
	} {
		if err := ValidateTopicName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateTopicName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestMemStorePersistsAndNotifies(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "metadata.json")
	s, err := NewMemStore(path)
	if err != nil {
		t.Fatal(err)
	}
	changes, cancel := s.Subscribe()
	defer cancel()
	if err := s.RegisterNode(ctx, Node{ID: 1, Addr: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(time.Second):
		t.Fatal("no notification after RegisterNode")
	}
	topic := Topic{Name: "t", ID: NewTopicID(), Partitions: []Partition{newPartition(0, []int32{1})}}
	if err := s.CreateTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTopic(ctx, topic); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second CreateTopic = %v, want ErrTopicExists", err)
	}
	first, _ := s.AllocateProducerIDs(ctx, 1000)
	before, _ := s.Snapshot(ctx)

	reopened, err := NewMemStore(path)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := reopened.Snapshot(ctx)
	if after.Version != before.Version || after.ClusterID != before.ClusterID {
		t.Fatalf("reopened version/cluster = %d/%s, want %d/%s", after.Version, after.ClusterID, before.Version, before.ClusterID)
	}
	got, ok := after.Topic("t")
	if !ok || got.ID != topic.ID || len(got.Partitions) != 1 {
		t.Fatalf("reopened topic = %+v", got)
	}
	if _, ok := after.TopicByID(topic.ID); !ok {
		t.Fatal("TopicByID after reopen")
	}
	next, _ := reopened.AllocateProducerIDs(ctx, 1000)
	if next < first+1000 {
		t.Fatalf("producer ids reused across restart: %d after block at %d", next, first)
	}
}

func TestSnapshotsAreNotChangedByLaterWrites(t *testing.T) {
	ctx := context.Background()
	s, _ := NewMemStore("")
	_ = s.RegisterNode(ctx, Node{ID: 1})
	_ = s.CreateTopic(ctx, Topic{Name: "t", Partitions: []Partition{newPartition(0, []int32{1})}})
	old, _ := s.Snapshot(ctx)
	if err := s.AddPartitions(ctx, "t", 1, []Partition{newPartition(1, []int32{1})}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPartitions(ctx, "t", 1, []Partition{newPartition(1, []int32{1})}); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale AddPartitions = %v, want ErrConflict", err)
	}
	if n := len(old.Topics["t"].Partitions); n != 1 {
		t.Fatalf("old snapshot sees %d partitions", n)
	}
}

// Kafka places replicas round-robin so leaders spread evenly over brokers.
func TestPlaceRoundRobinSpreadsLeaders(t *testing.T) {
	nodes := []int32{1, 2, 3}
	got := placeRoundRobin(nodes, "orders", 6, 2)
	leaders := map[int32]int{}
	for _, replicas := range got {
		leaders[replicas[0]]++
		if replicas[0] == replicas[1] {
			t.Fatalf("replicas on one node: %v", replicas)
		}
	}
	for _, n := range nodes {
		if leaders[n] != 2 {
			t.Fatalf("leaders per node = %v, want 2 each", leaders)
		}
	}
}

func TestControllerCreateTopic(t *testing.T) {
	ctx := context.Background()
	s, _ := NewMemStore("")
	c := NewController(s, ControllerConfig{DefaultPartitions: 3}, discard())
	if _, err := c.CreateTopic(ctx, TopicSpec{Name: "t"}); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("create without nodes = %v", err)
	}
	_ = s.RegisterNode(ctx, Node{ID: 1})
	for _, tc := range []struct {
		spec TopicSpec
		want error
	}{
		{TopicSpec{Name: "bad name"}, ErrInvalidTopic},
		{TopicSpec{Name: "t", ReplicationFactor: 2}, ErrInvalidReplicationFactor},
		{TopicSpec{Name: "t", Configs: map[string]string{"segment.bytes": "x"}}, ErrInvalidConfig},
		{TopicSpec{Name: "t", Configs: map[string]string{"no.such": "1"}}, ErrInvalidConfig},
		{TopicSpec{Name: "t", Assignment: [][]int32{{9}}}, ErrInvalidReplicaAssignment},
		{TopicSpec{Name: "t"}, nil},
		{TopicSpec{Name: "t"}, ErrTopicExists},
		{TopicSpec{Name: "t.x"}, nil},
		{TopicSpec{Name: "t_x"}, ErrInvalidTopic}, // collides with t.x
	} {
		_, err := c.CreateTopic(ctx, tc.spec)
		if !errors.Is(err, tc.want) {
			t.Errorf("CreateTopic(%+v) = %v, want %v", tc.spec, err, tc.want)
		}
	}
	snap, _ := s.Snapshot(ctx)
	if n := len(snap.Topics["t"].Partitions); n != 3 {
		t.Fatalf("default partitions = %d, want 3", n)
	}
	if err := c.CreatePartitions(ctx, "t", 2, nil, false); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("shrink = %v", err)
	}
	if err := c.CreatePartitions(ctx, "t", 5, nil, false); err != nil {
		t.Fatal(err)
	}
	snap, _ = s.Snapshot(ctx)
	parts := snap.Topics["t"].Partitions
	if len(parts) != 5 || parts[4].Index != 4 || !slices.Equal(parts[4].Replicas, []int32{1}) {
		t.Fatalf("after CreatePartitions: %+v", parts)
	}
}

func TestCacheFollowsStore(t *testing.T) {
	ctx := context.Background()
	s, _ := NewMemStore("")
	c, err := NewCache(ctx, s, time.Hour, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	changed := c.Changed()
	_ = s.RegisterNode(ctx, Node{ID: 7, Addr: "x"})
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("cache did not see the change")
	}
	if _, ok := c.Snapshot().Nodes[7]; !ok {
		t.Fatal("node missing from cached snapshot")
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
}

// A lease has one live holder; renewals keep the token, a takeover after expiry bumps it.
func TestMemStoreLeases(t *testing.T) {
	ctx := context.Background()
	s, _ := NewMemStore("")
	a, err := s.AcquireLease(ctx, "offsets/0", "proxy-a", 50*time.Millisecond)
	if err != nil || a.Token != 1 {
		t.Fatalf("first acquire = %+v, %v", a, err)
	}
	if _, err := s.AcquireLease(ctx, "offsets/0", "proxy-b", time.Second); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("acquire of a live lease = %v, want ErrLeaseHeld", err)
	}
	renewed, err := s.AcquireLease(ctx, "offsets/0", "proxy-a", 50*time.Millisecond)
	if err != nil || renewed.Token != a.Token {
		t.Fatalf("renewal = %+v, %v; want token %d", renewed, err, a.Token)
	}
	time.Sleep(60 * time.Millisecond)
	b, err := s.AcquireLease(ctx, "offsets/0", "proxy-b", time.Second)
	if err != nil || b.Token != a.Token+1 {
		t.Fatalf("takeover after expiry = %+v, %v", b, err)
	}
	snap, _ := s.Snapshot(ctx)
	if snap.Leases["offsets/0"].Holder != "proxy-b" {
		t.Fatalf("snapshot lease = %+v", snap.Leases["offsets/0"])
	}
}

// TestControllerPartitionLimits: the controller places no more replicas on a node than
// it registered it can hold (KIP-578's max.broker.partitions) and no more in the cluster
// than MaxClusterPartitions (max.partitions), for new topics and new partitions alike,
// refusing with ErrPolicyViolation and a message naming the setting.
func TestControllerPartitionLimits(t *testing.T) {
	ctx := context.Background()
	s, _ := NewMemStore("")
	c := NewController(s, ControllerConfig{MaxClusterPartitions: 22}, discard())
	_ = s.RegisterNode(ctx, Node{ID: 1, MaxPartitions: 10})
	_ = s.RegisterNode(ctx, Node{ID: 2, MaxPartitions: 100})
	for _, tc := range []struct {
		name string
		spec TopicSpec
		want error
		says string
	}{
		{"fits", TopicSpec{Name: "a", Partitions: 8, ReplicationFactor: 2}, nil, ""},
		{"node 1 full", TopicSpec{Name: "b", Partitions: 3, ReplicationFactor: 2}, ErrPolicyViolation, "--max-node-partitions"},
		{"node 2 has room", TopicSpec{Name: "c", Assignment: [][]int32{{2}, {2}}}, nil, ""},
		{"cluster full", TopicSpec{Name: "d", Assignment: [][]int32{{2}, {2}, {2}, {2}, {2}}}, ErrPolicyViolation, "--max-cluster-partitions"},
	} {
		_, err := c.CreateTopic(ctx, tc.spec)
		if !errors.Is(err, tc.want) || (err != nil && !strings.Contains(err.Error(), tc.says)) {
			t.Errorf("%s: CreateTopic = %v; want %v naming %q", tc.name, err, tc.want, tc.says)
		}
	}
	if err := c.CreatePartitions(ctx, "a", 11, nil, true); !errors.Is(err, ErrPolicyViolation) {
		t.Errorf("CreatePartitions past node 1's limit = %v; want ErrPolicyViolation", err)
	}
}
