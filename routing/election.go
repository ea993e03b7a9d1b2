package routing

import (
	"errors"
	"fmt"
	"slices"
)

// The rules by which partition leadership and ISR change, as pure functions of a
// partition's state: they decide, the Controller's methods (partition_control.go) read
// and write the Store. They follow Kafka's KRaft controller (ReplicationControlManager,
// PartitionChangeBuilder) and AlterPartition (KIP-497):
//
//   - A leader is always in the ISR, or -1 (offline).
//   - Every change of leader, to -1 included, bumps LeaderEpoch; every write bumps
//     PartitionEpoch (the Store does that), the version compare-and-set checks.
//   - A clean election picks the first replica, in replica order, that is live and in
//     the ISR. An unclean one (opt-in: unclean.leader.election.enable, or ElectLeaders
//     with ElectionUnclean) may pick a live replica outside the ISR, which then becomes
//     the whole ISR: the records it lacks are lost (NOTES §3, Kafka 0.8 under Jepsen).
//   - The ISR never becomes empty: a failed node that is the last ISR member stays in
//     it, so that it can lead again without an unclean election when it returns.
//
// Not yet: Kafka 4's eligible leader replicas (KIP-966), and AlterPartition's check
// that added replicas are live (INELIGIBLE_REPLICA, 107).

// Errors of partition state changes, wrapped with what was wrong; proxies and nodes map
// them to Kafka codes with errors.Is. A stale partition epoch in AlterPartition is
// ErrConflict (Kafka's INVALID_UPDATE_VERSION, 108).
var (
	// ErrIneligibleReplica refuses adding a replica that is not alive to an ISR
	// (INELIGIBLE_REPLICA, 107).
	ErrIneligibleReplica = errors.New("replica is not eligible to join the ISR")
	// ErrFencedLeaderEpoch means the request came from a former leader or carries a
	// leader epoch that is not the current one: FENCED_LEADER_EPOCH (74).
	ErrFencedLeaderEpoch = errors.New("fenced leader epoch")
	// ErrInvalidISR means a proposed ISR is empty, repeats a replica, names a node that
	// holds no replica, or leaves out the leader: INVALID_REQUEST (42) in AlterPartition.
	ErrInvalidISR = errors.New("invalid ISR")
	// ErrElectionNotNeeded: the preferred replica already leads (preferred election), or
	// the partition has a live leader (unclean election): ELECTION_NOT_NEEDED (84).
	ErrElectionNotNeeded = errors.New("election not needed")
	// ErrPreferredLeaderNotAvailable: the preferred replica is not live or not in the
	// ISR: PREFERRED_LEADER_NOT_AVAILABLE (80).
	ErrPreferredLeaderNotAvailable = errors.New("preferred leader not available")
	// ErrEligibleLeadersNotAvailable: no replica is live: ELIGIBLE_LEADERS_NOT_AVAILABLE (83).
	ErrEligibleLeadersNotAvailable = errors.New("eligible leaders not available")
)

// NoLeader is the Leader of a partition that no replica can lead.
const NoLeader int32 = -1

// bestLeader returns the first replica, in replica order, that is live and in the ISR
// (clean). Failing that, with unclean, the first live replica (clean false); else NoLeader.
func bestLeader(p Partition, live func(int32) bool, unclean bool) (leader int32, clean bool) {
	for _, r := range p.Replicas {
		if live(r) && slices.Contains(p.ISR, r) {
			return r, true
		}
	}
	if unclean {
		for _, r := range p.Replicas {
			if live(r) {
				return r, false
			}
		}
	}
	return NoLeader, true
}

// withLeader returns p (a copy the caller owns) led by leader, with the leader epoch
// bumped if the leader changes. An unclean leader becomes the whole ISR, as in Kafka.
func withLeader(p Partition, leader int32, clean bool) Partition {
	if leader != p.Leader {
		p.Leader = leader
		p.LeaderEpoch++
	}
	if !clean {
		p.ISR = []int32{leader}
	}
	return p
}

// sameState reports whether two states of a partition agree on leadership and ISR.
func sameState(a, b Partition) bool {
	return a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch && slices.Equal(a.ISR, b.ISR) && slices.Equal(a.Replicas, b.Replicas)
}

// planNodeFailure is Kafka's handling of a fenced broker: node leaves the ISR unless it
// is its last member, and if it led, the best live ISR member takes over (or, with
// unclean, any live replica; else nobody). node counts as dead whatever live says.
func planNodeFailure(p Partition, node int32, live func(int32) bool, unclean bool) (Partition, bool) {
	inISR := slices.Contains(p.ISR, node)
	if !inISR && p.Leader != node {
		return p, false
	}
	next := p.clone()
	if inISR && len(p.ISR) > 1 {
		next.ISR = slices.DeleteFunc(next.ISR, func(r int32) bool { return r == node })
	}
	if p.Leader == node {
		alive := func(r int32) bool { return r != node && live(r) }
		leader, clean := bestLeader(next, alive, unclean)
		next = withLeader(next, leader, clean)
	}
	return next, !sameState(p, next)
}

// planNodeReturn is Kafka's handling of an unfenced broker: a partition without a leader
// holds an election in which node counts as live. Node is then the usual winner, being
// the live member of the ISR; with unclean, a partition whose ISR members are all gone
// may be led by a replica outside it. Partitions that have a leader are left alone:
// node rejoins their ISR through the leader (AlterPartition), once caught up.
func planNodeReturn(p Partition, node int32, live func(int32) bool, unclean bool) (Partition, bool) {
	if p.Leader != NoLeader || !p.HasReplica(node) {
		return p, false
	}
	alive := func(r int32) bool { return r == node || live(r) }
	leader, clean := bestLeader(p, alive, unclean)
	if leader == NoLeader {
		return p, false
	}
	return withLeader(p.clone(), leader, clean), true
}

// planAlterISR judges a leader's AlterPartition (KIP-497): it must lead at leaderEpoch,
// have read the current partitionEpoch, and propose an ISR of distinct replicas that
// contains itself. The result has the new ISR (unchanged epochs: the Store bumps the
// partition epoch); it equals p when the ISR does not change.
func planAlterISR(p Partition, leader, leaderEpoch int32, newISR []int32, partitionEpoch int32) (Partition, error) {
	switch {
	case leaderEpoch != p.LeaderEpoch:
		return p, fmt.Errorf("%w: leader epoch %d is not the current %d", ErrFencedLeaderEpoch, leaderEpoch, p.LeaderEpoch)
	case leader != p.Leader:
		return p, fmt.Errorf("%w: node %d does not lead at epoch %d (leader %d)", ErrFencedLeaderEpoch, leader, leaderEpoch, p.Leader)
	case partitionEpoch != p.PartitionEpoch:
		return p, fmt.Errorf("partition epoch %d is not the current %d: %w", partitionEpoch, p.PartitionEpoch, ErrConflict)
	}
	if err := checkISR(p, newISR); err != nil {
		return p, err
	}
	next := p.clone()
	next.ISR = slices.Clone(newISR)
	return next, nil
}

func checkISR(p Partition, isr []int32) error {
	if len(isr) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidISR)
	}
	for i, r := range isr {
		if !p.HasReplica(r) {
			return fmt.Errorf("%w: node %d holds no replica (replicas %v)", ErrInvalidISR, r, p.Replicas)
		}
		if slices.Contains(isr[:i], r) {
			return fmt.Errorf("%w: node %d appears twice", ErrInvalidISR, r)
		}
	}
	if !slices.Contains(isr, p.Leader) {
		return fmt.Errorf("%w: %v leaves out the leader %d", ErrInvalidISR, isr, p.Leader)
	}
	return nil
}

// planPreferred is Kafka's preferred leader election: the first replica leads if it is
// live, in the ISR and not leading already.
func planPreferred(p Partition, live func(int32) bool) (Partition, error) {
	if len(p.Replicas) == 0 {
		return p, fmt.Errorf("%w: no replicas", ErrPreferredLeaderNotAvailable)
	}
	preferred := p.Replicas[0]
	switch {
	case p.Leader == preferred:
		return p, fmt.Errorf("%w: the preferred replica %d leads", ErrElectionNotNeeded, preferred)
	case !live(preferred):
		return p, fmt.Errorf("%w: replica %d is not live", ErrPreferredLeaderNotAvailable, preferred)
	case !slices.Contains(p.ISR, preferred):
		return p, fmt.Errorf("%w: replica %d is not in the ISR %v", ErrPreferredLeaderNotAvailable, preferred, p.ISR)
	}
	return withLeader(p.clone(), preferred, true), nil
}

// planUnclean is Kafka's unclean election (ElectLeaders type 1), for partitions without
// a live leader: a live ISR member if there is one, else any live replica, which then
// becomes the whole ISR.
func planUnclean(p Partition, live func(int32) bool) (Partition, error) {
	if p.Leader != NoLeader && live(p.Leader) {
		return p, fmt.Errorf("%w: replica %d leads", ErrElectionNotNeeded, p.Leader)
	}
	leader, clean := bestLeader(p, live, true)
	if leader == NoLeader {
		return p, fmt.Errorf("%w: none of the replicas %v is live", ErrEligibleLeadersNotAvailable, p.Replicas)
	}
	return withLeader(p.clone(), leader, clean), nil
}
