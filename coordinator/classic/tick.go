package classic

import "time"

// The group's timers. Kafka runs them in purgatories; here the owner asks NextDeadline
// when to call Tick, and Tick fires whatever is due, earliest first, so that the result
// does not depend on how late Tick is called.

// event is one timer: when it fires and what it does.
type event struct {
	at   time.Time
	fire func(now time.Time)
}

// NextDeadline returns the earliest time Tick has work; false if none. It can change
// after any call, and can be at or before the time of the call that set it.
func (g *Group) NextDeadline() (time.Time, bool) {
	e, ok := g.nextEvent()
	return e.at, ok
}

// Tick fires every timer due at now: pending member ids and sessions expire, members
// that never synced are dropped, and the initial delay or the rebalance timeout ends.
func (g *Group) Tick(now time.Time) {
	defer g.flush()
	for {
		e, ok := g.nextEvent()
		if !ok || e.at.After(now) {
			return
		}
		e.fire(now)
	}
}

// nextEvent returns the earliest timer. Every timer fired either goes away or moves
// past now, so Tick's loop ends.
func (g *Group) nextEvent() (event, bool) {
	var best event
	found := false
	consider := func(at time.Time, fire func(time.Time)) {
		if !found || at.Before(best.at) {
			best, found = event{at, fire}, true
		}
	}
	if g.state == stateDead {
		return best, false
	}
	if g.state == statePreparingRebalance {
		consider(g.rb.deadline, g.onRebalanceDeadline)
	}
	if (g.state == stateCompletingRebalance || g.state == stateStable) && len(g.pendingSync) > 0 {
		consider(g.syncDeadline, g.onSyncDeadline)
	}
	for _, id := range sortedKeys(g.pending) {
		consider(g.pending[id], func(now time.Time) { g.expirePending(now, id) })
	}
	for _, m := range g.ordered() {
		if m.expirable() {
			consider(m.deadline, func(now time.Time) { g.removeMemberAndUpdate(now, m.id) })
		}
	}
	return best, found
}

// expirePending forgets a member id handed out with MEMBER_ID_REQUIRED that never
// joined within its session timeout (Kafka onExpireHeartbeat, isPending).
func (g *Group) expirePending(now time.Time, id string) {
	delete(g.pending, id)
	g.maybeCompleteJoin(now)
}

// onSyncDeadline removes the members that got this generation's JoinGroup answer but
// never sent SyncGroup within the rebalance timeout, and rebalances without them
// (Kafka onExpirePendingSync, KAFKA-13217).
func (g *Group) onSyncDeadline(now time.Time) {
	for _, id := range sortedKeys(g.pendingSync) {
		g.remove(id)
	}
	g.prepareRebalance(now)
}
