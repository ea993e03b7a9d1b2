package node

import (
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/routing"
)

// Fetching from the closest replica (KIP-392). A consumer's Fetch of v11 or later may be
// served by a follower as well as by the leader: the follower reads up to its own high
// watermark, which trails the leader's by a fetch round, so an offset past it but
// within its log is answered with no records, and one past its log end with
// OFFSET_OUT_OF_RANGE (after which clients go back to the leader). The client's current
// leader epoch is checked against the partition's, as at the leader. Replica fetches
// (a follower's node id as replica id) are served by the leader alone, as before.
//
// A leader asked by a consumer that names its rack (client.rack, Fetch v11+) answers,
// for each partition with an in-sync follower in that rack, PreferredReadReplica and no
// records, at once; the client then fetches the partition from that follower, until
// it fails there or rechecks with the leader.

// reader is who a fetch reads for.
type reader struct {
	// replicaID is a follower's node id, or negative for a consumer.
	replicaID int32
	// anyReplica: a consumer that may read from followers (Fetch v11+). Older clients
	// expect NOT_LEADER_OR_FOLLOWER from anything but the leader, as Kafka answers them.
	anyReplica bool
	// rack is a consumer's rack (client.rack), "" when it names none.
	rack string
	// isolation is the consumer's isolation level: 1 (read_committed) reads below the
	// last stable offset only.
	isolation int8
}

func readerOf(req *kmsg.FetchRequest) reader {
	rd := reader{replicaID: req.ReplicaID, isolation: req.IsolationLevel}
	if req.ReplicaID < 0 && req.Version >= 11 {
		rd.anyReplica, rd.rack = true, req.Rack
	}
	return rd
}

// preferredReadReplica is the follower a consumer in rack should read p from instead of
// this node, which leads it, or -1 for none. It chooses as Kafka's
// RackAwareReplicaSelector does: among the in-sync followers registered in the rack
// (routing.FollowersInRack) that hold fetchOffset, the one furthest along. Membership
// of the ISR stands for liveness too: the controller takes a node whose lease expired
// out of every ISR.
func (s *Server) preferredReadReplica(snap *routing.Snapshot, r *replica, p routing.Partition, rack string, fetchOffset int64) int32 {
	candidates := snap.FollowersInRack(p, rack)
	if len(candidates) == 0 {
		return -1
	}
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	l := r.state.leader
	if l == nil {
		return -1
	}
	best, bestEnd := int32(-1), int64(-1)
	for _, id := range candidates {
		// The ISR as this leader last committed it (KAFKA-14372: a lagging follower would
		// hold the client back), and a log that reaches the client's position.
		if f, ok := l.FollowerState(id); ok && f.InISR && f.End >= fetchOffset && f.End > bestEnd {
			best, bestEnd = id, f.End
		}
	}
	return best
}

// ConsumerReadStats counts, since the node started, the partitions it answered to
// consumers' fetches: read as leader, read as follower, and answered with a
// PreferredReadReplica instead of records.
type ConsumerReadStats struct {
	AsLeader, AsFollower, Redirected int64
}

// consumerReads is the server's running ConsumerReadStats.
type consumerReads struct {
	asLeader, asFollower, redirected atomic.Int64
}

func (c *consumerReads) add(n ConsumerReadStats) {
	c.asLeader.Add(n.AsLeader)
	c.asFollower.Add(n.AsFollower)
	c.redirected.Add(n.Redirected)
}

// ConsumerReadStats reports the consumer reads this node answered.
func (s *Server) ConsumerReadStats() ConsumerReadStats {
	return ConsumerReadStats{
		AsLeader:   s.consumerReads.asLeader.Load(),
		AsFollower: s.consumerReads.asFollower.Load(),
		Redirected: s.consumerReads.redirected.Load(),
	}
}
