package routing

import (
	"errors"
	"slices"
	"testing"
)

// part builds a partition of replicas 1, 2, 3 (preferred leader 1) at epochs 5 and 9.
func part(leader int32, isr ...int32) Partition {
	return Partition{Replicas: []int32{1, 2, 3}, ISR: isr, Leader: leader, LeaderEpoch: 5, PartitionEpoch: 9}
}

func liveSet(nodes ...int32) func(int32) bool {
	return func(n int32) bool { return slices.Contains(nodes, n) }
}

func checkPartition(t *testing.T, name string, got Partition, leader, leaderEpoch int32, isr ...int32) {
	t.Helper()
	if got.Leader != leader || got.LeaderEpoch != leaderEpoch || !slices.Equal(got.ISR, isr) {
		t.Errorf("%s: leader %d epoch %d ISR %v; want leader %d epoch %d ISR %v", name, got.Leader, got.LeaderEpoch, got.ISR, leader, leaderEpoch, isr)
	}
}

// Kafka's ReplicationControlManager.handleBrokerFenced: the broker leaves every ISR it
// is in unless it is the last member, and the partitions it led elect the first
// replica, in replica order, that is unfenced and in the ISR; with none, leader -1.
// Unclean elections only where the topic enables them (off since Kafka 0.11, KIP-106).
func TestPlanNodeFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       Partition
		node    int32
		live    func(int32) bool
		unclean bool
		changed bool
		want    Partition // Leader, LeaderEpoch, ISR
	}{
		{"leader fails: the next ISR replica leads", part(1, 1, 2, 3), 1, liveSet(2, 3), false, true, part(2, 2, 3)},
		{"follower fails: leaves the ISR, same leader and epoch", part(1, 1, 2, 3), 3, liveSet(1, 2), false, true, part(1, 1, 2)},
		{"leader fails: replica order, skipping dead ISR members", part(1, 1, 2, 3), 1, liveSet(3), false, true, part(3, 2, 3)},
		{"leader fails: ISR order does not matter, replica order does", part(1, 1, 3, 2), 1, liveSet(2, 3), false, true, part(2, 3, 2)},
		{"leader fails, no live ISR member: offline", part(1, 1, 2), 1, liveSet(3), false, true, part(-1, 2)},
		{"last ISR member fails: stays in the ISR, offline", part(1, 1), 1, liveSet(2, 3), false, true, part(-1, 1)},
		{"last ISR member fails, unclean enabled: first live replica leads alone", part(1, 1), 1, liveSet(2, 3), true, true, part(2, 2)},
		{"unclean enabled, but a live ISR member wins first", part(1, 1, 3), 1, liveSet(2, 3), true, true, part(3, 3)},
		{"unclean enabled, nobody live: offline", part(1, 1), 1, liveSet(), true, true, part(-1, 1)},
		{"the failed node is dead whatever live says", part(1, 1), 1, liveSet(1, 2, 3), false, true, part(-1, 1)},
		{"offline partition: a failed ISR member leaves", part(-1, 1, 2), 1, liveSet(), false, true, part(-1, 2)},
		{"offline partition, last ISR member: nothing changes", part(-1, 1), 1, liveSet(), false, false, part(-1, 1)},
		{"a replica outside the ISR fails: nothing changes", part(1, 1, 2), 3, liveSet(1, 2), false, false, part(1, 1, 2)},
	} {
		got, changed := planNodeFailure(tc.p, tc.node, tc.live, tc.unclean)
		if changed != tc.changed {
			t.Errorf("%s: changed = %v, want %v", tc.name, changed, tc.changed)
		}
		wantEpoch := tc.p.LeaderEpoch
		if tc.want.Leader != tc.p.Leader {
			wantEpoch++
		}
		checkPartition(t, tc.name, got, tc.want.Leader, wantEpoch, tc.want.ISR...)
		if got.PartitionEpoch != tc.p.PartitionEpoch {
			t.Errorf("%s: the plan changed the partition epoch; the Store sets it", tc.name)
		}
	}
}

// The plans never modify the partition they are given: it belongs to a Snapshot.
func TestPlansLeaveTheirInputAlone(t *testing.T) {
	p := part(1, 1, 2, 3)
	orig := p.clone()
	planNodeFailure(p, 1, liveSet(2, 3), false)
	planNodeFailure(p, 2, liveSet(1, 3), false)
	_, _ = planAlterISR(p, 1, 5, []int32{1}, 9)
	_, _ = planPreferred(part(2, 1, 2), liveSet(1, 2))
	if !slices.Equal(p.ISR, orig.ISR) || p.Leader != orig.Leader {
		t.Fatalf("input changed: %+v, was %+v", p, orig)
	}
}

// Kafka's handleBrokerUnfenced: partitions without a leader hold an election in which
// the returning broker is eligible; it rejoins other ISRs through their leaders.
func TestPlanNodeReturn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       Partition
		node    int32
		unclean bool
		changed bool
		want    Partition
	}{
		{"the last ISR member returns: leads again", part(-1, 1), 1, false, true, part(1, 1)},
		{"a replica outside the ISR returns: still offline", part(-1, 1), 2, false, false, part(-1, 1)},
		{"outside the ISR, unclean enabled: leads alone", part(-1, 1), 2, true, true, part(2, 2)},
		{"the partition has a leader: nothing changes", part(2, 2, 3), 1, false, false, part(2, 2, 3)},
		{"not a replica: nothing changes", part(-1, 1), 7, true, false, part(-1, 1)},
	} {
		got, changed := planNodeReturn(tc.p, tc.node, liveSet(), tc.unclean)
		if changed != tc.changed {
			t.Errorf("%s: changed = %v, want %v", tc.name, changed, tc.changed)
		}
		wantEpoch := tc.p.LeaderEpoch
		if tc.want.Leader != tc.p.Leader {
			wantEpoch++
		}
		checkPartition(t, tc.name, got, tc.want.Leader, wantEpoch, tc.want.ISR...)
	}
}

// Kafka's AlterPartition (KIP-497), as ReplicationControlManager validates it: a stale
// leader epoch gets FENCED_LEADER_EPOCH, a stale partition epoch INVALID_UPDATE_VERSION,
// an ISR with non-replicas or without the leader INVALID_REQUEST.
func TestPlanAlterISR(t *testing.T) {
	p := part(1, 1, 2) // leader epoch 5, partition epoch 9
	for _, tc := range []struct {
		name                string
		leader, leaderEpoch int32
		isr                 []int32
		partitionEpoch      int32
		want                error
	}{
		{"shrink", 1, 5, []int32{1}, 9, nil},
		{"expand", 1, 5, []int32{1, 2, 3}, 9, nil},
		{"stale leader epoch", 1, 4, []int32{1}, 9, ErrFencedLeaderEpoch},
		{"leader epoch from the future", 1, 6, []int32{1}, 9, ErrFencedLeaderEpoch},
		{"not the leader", 2, 5, []int32{2}, 9, ErrFencedLeaderEpoch},
		{"stale partition epoch", 1, 5, []int32{1}, 8, ErrConflict},
		{"not a subset of the replicas", 1, 5, []int32{1, 4}, 9, ErrInvalidISR},
		{"leader left out", 1, 5, []int32{2, 3}, 9, ErrInvalidISR},
		{"empty", 1, 5, nil, 9, ErrInvalidISR},
		{"a replica twice", 1, 5, []int32{1, 2, 2}, 9, ErrInvalidISR},
	} {
		got, err := planAlterISR(p, tc.leader, tc.leaderEpoch, tc.isr, tc.partitionEpoch)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err != nil {
			continue
		}
		checkPartition(t, tc.name, got, 1, 5, tc.isr...)
	}
}

// Kafka's preferred leader election (ElectLeaders type 0, auto.leader.rebalance):
// ELECTION_NOT_NEEDED if the preferred replica leads, PREFERRED_LEADER_NOT_AVAILABLE
// if it is not live or not in the ISR.
func TestPlanPreferred(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Partition
		live func(int32) bool
		want error
	}{
		{"moves back to the first replica", part(2, 1, 2), liveSet(1, 2), nil},
		{"from an offline partition", part(-1, 1), liveSet(1), nil},
		{"already leads", part(1, 1, 2), liveSet(1, 2), ErrElectionNotNeeded},
		{"not live", part(2, 1, 2), liveSet(2), ErrPreferredLeaderNotAvailable},
		{"not in the ISR", part(2, 2, 3), liveSet(1, 2, 3), ErrPreferredLeaderNotAvailable},
	} {
		got, err := planPreferred(tc.p, tc.live)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err == nil {
			checkPartition(t, tc.name, got, 1, tc.p.LeaderEpoch+1, tc.p.ISR...)
		}
	}
}

// Kafka's unclean election (ElectLeaders type 1): ELECTION_NOT_NEEDED with a live
// leader, ELIGIBLE_LEADERS_NOT_AVAILABLE with no live replica; a live ISR member is
// preferred, else any live replica, which becomes the whole ISR.
func TestPlanUnclean(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      Partition
		live   func(int32) bool
		want   error
		leader int32
		isr    []int32
	}{
		{"a live leader", part(1, 1), liveSet(1, 2), ErrElectionNotNeeded, 0, nil},
		{"out of the ISR", part(-1, 1), liveSet(2, 3), nil, 2, []int32{2}},
		{"a live ISR member first", part(-1, 1, 3), liveSet(2, 3), nil, 3, []int32{1, 3}},
		{"a dead leader is replaced", part(1, 1), liveSet(3), nil, 3, []int32{3}},
		{"nobody live", part(-1, 1), liveSet(), ErrEligibleLeadersNotAvailable, 0, nil},
	} {
		got, err := planUnclean(tc.p, tc.live)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err == nil {
			checkPartition(t, tc.name, got, tc.leader, tc.p.LeaderEpoch+1, tc.isr...)
		}
	}
}

// Round-robin placement never puts two replicas of a partition on one node.
func TestPlaceRoundRobinDistinctReplicas(t *testing.T) {
	for n := 1; n <= 7; n++ {
		nodes := make([]int32, n)
		for i := range nodes {
			nodes[i] = int32(10 * (i + 1))
		}
		for rf := 1; rf <= n; rf++ {
			for p, replicas := range placeRoundRobin(nodes, "t", 20, int16(rf)) {
				sorted := slices.Sorted(slices.Values(replicas))
				if len(slices.Compact(sorted)) != rf {
					t.Fatalf("%d nodes, RF %d: partition %d has replicas %v", n, rf, p, replicas)
				}
			}
		}
	}
}
