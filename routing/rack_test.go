package routing

import (
	"slices"
	"testing"
)

// rackSnapshot has nodes 1 and 4 in rack a, 2 and 5 in rack b, 3 in rack c and 6 in
// none.
func rackSnapshot() *Snapshot {
	return newSnapshot(1, "c", nil, []Node{
		{ID: 1, Addr: "n1:1", Rack: "a"}, {ID: 2, Addr: "n2:1", Rack: "b"}, {ID: 3, Addr: "n3:1", Rack: "c"},
		{ID: 4, Addr: "n4:1", Rack: "a"}, {ID: 5, Addr: "n5:1", Rack: "b"}, {ID: 6, Addr: "n6:1"},
	})
}

// TestFollowersInRack: the in-sync followers in the client's rack, unless the leader is
// there itself (KIP-392; Kafka's RackAwareReplicaSelector keeps such clients on the
// leader), and none for a client without a rack.
func TestFollowersInRack(t *testing.T) {
	snap := rackSnapshot()
	for _, tc := range []struct {
		name   string
		p      Partition
		rack   string
		expect []int32
	}{
		{"follower in rack", Partition{Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}, "b", []int32{2}},
		{"leader in rack", Partition{Leader: 1, Replicas: []int32{1, 4, 2}, ISR: []int32{1, 4, 2}}, "a", nil},
		{"no replica in rack", Partition{Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}, "c", nil},
		{"follower out of the ISR", Partition{Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 3}}, "b", nil},
		{"several, in ISR order", Partition{Leader: 3, Replicas: []int32{3, 2, 5}, ISR: []int32{3, 5, 2}}, "b", []int32{5, 2}},
		{"client without a rack", Partition{Leader: 1, Replicas: []int32{1, 6}, ISR: []int32{1, 6}}, "", nil},
		{"no leader", Partition{Leader: -1, Replicas: []int32{1, 2}, ISR: []int32{2}}, "b", nil},
		{"unregistered follower", Partition{Leader: 1, Replicas: []int32{1, 9}, ISR: []int32{1, 9}}, "b", nil},
	} {
		if got := snap.FollowersInRack(tc.p, tc.rack); !slices.Equal(got, tc.expect) {
			t.Errorf("%s: FollowersInRack(%+v, %q) = %v, want %v", tc.name, tc.p, tc.rack, got, tc.expect)
		}
	}
}

// TestReadReplicaInRack: one of the followers in the rack, chosen by partition index so
// that partitions spread over a rack's followers; none when the leader serves.
func TestReadReplicaInRack(t *testing.T) {
	snap := rackSnapshot()
	picked := map[int32]int{}
	for index := range int32(10) {
		p := Partition{Index: index, Leader: 3, Replicas: []int32{3, 2, 5}, ISR: []int32{3, 2, 5}}
		n, ok := snap.ReadReplicaInRack(p, "b")
		if !ok || (n.ID != 2 && n.ID != 5) || n.Addr != snap.Nodes[n.ID].Addr {
			t.Fatalf("partition %d: ReadReplicaInRack = %+v, %v; want node 2 or 5 in rack b", index, n, ok)
		}
		picked[n.ID]++
	}
	if picked[2] != 5 || picked[5] != 5 {
		t.Errorf("ten partitions read from %v; want five from each of nodes 2 and 5", picked)
	}
	if n, ok := snap.ReadReplicaInRack(Partition{Leader: 2, Replicas: []int32{2, 5}, ISR: []int32{2, 5}}, "b"); ok {
		t.Errorf("leader in the rack: ReadReplicaInRack = node %d; want the leader to serve", n.ID)
	}
}
