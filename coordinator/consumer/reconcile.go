package consumer

import "time"

// reconcile moves a member one step towards its target assignment, following
// KIP-848's revoke-before-assign rule (Kafka's CurrentAssignmentBuilder):
//
//  1. A member that must give up partitions is told to (its assignment
//     shrinks) and stays at its epoch in UNREVOKED_PARTITIONS.
//  2. Once a later heartbeat's owned partitions no longer hold them, they are
//     released and the member moves to the target epoch.
//  3. It then receives the new partitions that no other member still holds;
//     the rest it waits for in UNRELEASED_PARTITIONS, getting them on a later
//     heartbeat once freed.
//
// owned is what the member reported; nil means it did not say.
func (g *Group) reconcile(now time.Time, m *member, owned assignment) {
	if m.state == unrevoked && !g.acknowledgeRevocation(m, owned) {
		return
	}
	if m.state == stable && m.epoch == g.assignmentEpoch {
		return
	}
	g.advance(now, m)
}

// acknowledgeRevocation releases the partitions a member was told to give up
// once it reports owning none of them, and reports whether it did.
func (g *Group) acknowledgeRevocation(m *member, owned assignment) bool {
	if owned == nil || owned.overlaps(m.revoking) {
		return false
	}
	g.release(m.revoking)
	m.revoking, m.revokeDeadline, m.state = assignment{}, time.Time{}, stable
	return true
}

// advance computes the member's next assignment from its current one and its
// target.
func (g *Group) advance(now time.Time, m *member) {
	target := g.target[m.id]
	keep := m.assigned.intersect(target)
	if revoke := m.assigned.minus(target); revoke.size() > 0 {
		g.startRevocation(now, m, keep, revoke)
		return
	}
	want := target.minus(m.assigned)
	free := want.filter(func(p tp) bool { _, held := g.owners[p]; return !held })
	g.claim(m, free)
	m.assigned = keep.union(free)
	m.moveTo(g.assignmentEpoch)
	m.state = stable
	if free.size() < want.size() {
		m.state = unreleased
	}
}

// startRevocation tells the member to drop revoke. Until it does, it keeps
// holding those partitions (no one else gets them) and its epoch stays; if it
// has not acknowledged within its rebalance timeout, Tick fences it.
func (g *Group) startRevocation(now time.Time, m *member, keep, revoke assignment) {
	m.assigned, m.revoking = keep, m.revoking.union(revoke)
	m.state = unrevoked
	m.revokeDeadline = now.Add(g.rebalanceTimeout(m))
}

// rebalanceTimeout: the configured override, else what the member asked for,
// else Kafka's default of five minutes.
func (g *Group) rebalanceTimeout(m *member) time.Duration {
	switch {
	case g.cfg.RebalanceTimeout > 0:
		return g.cfg.RebalanceTimeout
	case m.rebalanceTimeout > 0:
		return m.rebalanceTimeout
	}
	return defaultRebalanceTimeout
}

// moveTo sets the member's epoch, remembering the previous one so that a
// member whose response was lost can still be recognised (checkEpoch).
func (m *member) moveTo(epoch int32) {
	if m.epoch != epoch {
		m.prevEpoch, m.epoch = m.epoch, epoch
	}
}
