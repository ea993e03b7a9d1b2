package routing

// Racks (KIP-392, "Allow consumers to fetch from closest replica"): a consumer that
// names its rack (client.rack) may read a partition from an in-sync replica in that
// rack instead of from the leader, which spares cross-zone traffic. Nodes register the
// rack they run in (Node.Rack, `strait node --rack`). As Kafka's
// RackAwareReplicaSelector does, the leader keeps the clients of its own rack, and a
// client in a rack without a replica reads from the leader.

// FollowersInRack returns the followers of p that a client in rack may read from
// instead of its leader: the members of p's ISR, other than the leader, whose nodes are
// registered in rack, in ISR order. It is empty when rack is "", when p has no leader,
// or when the leader's node is in rack itself.
func (s *Snapshot) FollowersInRack(p Partition, rack string) []int32 {
	if rack == "" || p.Leader < 0 {
		return nil
	}
	if n, ok := s.Nodes[p.Leader]; ok && n.Rack == rack {
		return nil
	}
	var out []int32
	for _, id := range p.ISR {
		if n, ok := s.Nodes[id]; ok && id != p.Leader && n.Rack == rack {
			out = append(out, id)
		}
	}
	return out
}

// ReadReplicaInRack picks the follower a client in rack reads p from, among
// FollowersInRack: by partition index, so that the partitions of a rack holding
// several followers spread over them. ok is false when the leader serves the client.
func (s *Snapshot) ReadReplicaInRack(p Partition, rack string) (n Node, ok bool) {
	followers := s.FollowersInRack(p, rack)
	if len(followers) == 0 {
		return Node{}, false
	}
	return s.Nodes[followers[int(p.Index)%len(followers)]], true
}
