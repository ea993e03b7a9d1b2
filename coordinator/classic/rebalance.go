package classic

import "time"

// The join phase of a rebalance: PreparingRebalance until every member has rejoined or
// the rebalance timeout passes, then a new generation in CompletingRebalance (or Empty).

// maybePrepareRebalance starts a rebalance unless one is already being prepared.
func (g *Group) maybePrepareRebalance(now time.Time) {
	switch g.state {
	case stateEmpty, stateCompletingRebalance, stateStable:
		g.prepareRebalance(now)
	}
}

// prepareRebalance moves the group to PreparingRebalance. Members waiting in SyncGroup
// are told REBALANCE_IN_PROGRESS (so they rejoin) and the assignment they were waiting
// for is void. A group leaving Empty waits the initial delay first, so that a fleet of
// consumers starting together joins one generation instead of many (KIP-134); any other
// rebalance waits at most the rebalance timeout, and completes at once if every member
// has already rejoined (Kafka GroupCoordinator.prepareRebalance, tryCompleteElseWatch).
func (g *Group) prepareRebalance(now time.Time) {
	if g.state == stateCompletingRebalance {
		for _, m := range g.ordered() {
			m.assignment = nil
			if m.sync != nil {
				m.touch(now) // its wait kept it alive; the session restarts as it ends
				g.answerSync(m, syncError(codeRebalanceInProgress))
			}
		}
	}
	clear(g.pendingSync)
	timeout := g.rebalanceTimeout()
	if g.state == stateEmpty {
		delay := g.cfg.InitialRebalanceDelay
		g.rb = rebalance{deadline: now.Add(delay), initial: true, remaining: max(timeout-delay, 0)}
	} else {
		g.rb = rebalance{deadline: now.Add(timeout)}
	}
	g.setState(now, statePreparingRebalance)
	g.maybeCompleteJoin(now) // e.g. the last member left: Empty at once
}

// maybeCompleteJoin completes the join phase early once every member and every pending
// member id has joined. The initial delay never ends early: waiting for more members
// is its purpose.
func (g *Group) maybeCompleteJoin(now time.Time) {
	if g.state == statePreparingRebalance && !g.rb.initial && g.allJoined() {
		g.completeJoin(now)
	}
}

func (g *Group) allJoined() bool {
	return len(g.pending) == 0 && g.numAwaitingJoin() == len(g.members)
}

// onRebalanceDeadline ends the initial delay or the rebalance timeout. The initial delay
// is extended by another delay while members keep arriving, up to the rebalance
// timeout in all (Kafka InitialDelayedJoin).
func (g *Group) onRebalanceDeadline(now time.Time) {
	if g.rb.initial && g.rb.newMemberAdded && g.rb.remaining > 0 {
		delay := min(g.cfg.InitialRebalanceDelay, g.rb.remaining)
		g.rb.remaining -= delay
		g.rb.newMemberAdded = false
		g.rb.deadline = now.Add(delay)
		return
	}
	g.completeJoin(now)
}

// completeJoin ends the join phase (Kafka GroupCoordinator.onCompleteJoin). Dynamic
// members that did not rejoin are removed; static ones stay, to be removed by their
// session timeout, since a restarting static member is expected back (KIP-345). The
// generation is bumped even when nobody is left, and the group is then Empty.
func (g *Group) completeJoin(now time.Time) {
	for _, m := range g.ordered() {
		if m.join == nil && m.instanceID == nil {
			g.remove(m.id)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeader() {
		// Only static members that have not rejoined are left: wait another round for
		// them to rejoin or expire (Kafka logs "could not complete rebalance").
		g.rb = rebalance{deadline: now.Add(max(g.rebalanceTimeout(), time.Millisecond))}
		return
	}
	g.gen++
	if len(g.members) == 0 {
		g.protocol = ""
		g.setState(now, stateEmpty)
		g.persist()
		return
	}
	g.protocol = g.selectProtocol()
	g.setState(now, stateCompletingRebalance)
	g.syncDeadline = now.Add(g.rebalanceTimeout())
	for _, m := range g.ordered() {
		g.answerJoin(m, g.joinResult(m.id, m.id == g.leader))
		m.touch(now)
		m.isNew = false
		g.pendingSync[m.id] = true
	}
}

// electJoinedLeader keeps the leader if it rejoined, else hands leadership to the
// oldest member that did; false if no member rejoined (Kafka maybeElectNewJoinedLeader).
func (g *Group) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.ordered() {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// removeMemberAndUpdate removes a member that left or expired and lets the group react:
// a rebalance, or the completion of the one under way (Kafka removeMemberAndUpdateGroup).
func (g *Group) removeMemberAndUpdate(now time.Time, id string) {
	g.remove(id)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance(now)
	case statePreparingRebalance:
		g.maybeCompleteJoin(now)
	}
}

// StoreFailed tells the group that the value it last handed to Persist could not be
// written. The generation's assignment is void and the group rebalances, so no member
// keeps running on an assignment a coordinator restart would forget (Kafka
// GroupCoordinator.doSyncGroup: resetAndPropagateAssignmentError, then
// maybePrepareRebalance). The owner answers the waiting SyncGroups with the error.
func (g *Group) StoreFailed(now time.Time) {
	if g.state != stateStable && g.state != stateCompletingRebalance {
		return
	}
	for _, m := range g.ordered() {
		m.assignment = nil
	}
	g.maybePrepareRebalance(now)
	g.flush()
}
