package node

import "sync"

// News for fetch sessions. A fetch in a session waits for news of its own partitions,
// not for any append on the node, and then looks only at the partitions that changed:
// each replica keeps the session partitions that watch it and, when it changes (an
// append, a high-watermark, log-start or role change), marks them in their session and
// wakes that session's long-polling fetch. A follower holding a session of 3,000 idle
// partitions and one busy one so looks at one partition per fetch, where a scan of the
// whole session per append made replication latency grow with the partition count.

// watchers are the session partitions watching a replica.
type watchers struct {
	mu  sync.Mutex
	set map[*sessionPartition]struct{}
}

// changed records that fetchers of the partition may have something new to hear: it
// moves the change count and marks every watching session partition.
func (r *replica) changed() {
	r.changes.Add(1)
	r.watchers.mu.Lock()
	defer r.watchers.mu.Unlock()
	for sp := range r.watchers.set {
		sp.session.mark(sp)
	}
}

func (r *replica) watch(sp *sessionPartition) {
	r.watchers.mu.Lock()
	defer r.watchers.mu.Unlock()
	if r.watchers.set == nil {
		r.watchers.set = make(map[*sessionPartition]struct{})
	}
	r.watchers.set[sp] = struct{}{}
}

func (r *replica) unwatch(sp *sessionPartition) {
	r.watchers.mu.Lock()
	defer r.watchers.mu.Unlock()
	delete(r.watchers.set, sp)
}

// watchRoute makes the partition watch its route, the replica it reads from; the
// caller holds the session's mu.
func (sp *sessionPartition) watchRoute() {
	if sp.route == sp.watched || sp.route == nil {
		return
	}
	sp.unwatch()
	sp.route.watch(sp)
	sp.watched = sp.route
}

// unwatch stops watching; the caller holds the session's mu.
func (sp *sessionPartition) unwatch() {
	if sp.watched != nil {
		sp.watched.unwatch(sp)
		sp.watched = nil
	}
}

// mark queues a changed partition for the session's next pass and wakes its fetch. It
// takes only the news lock, as replicas call it while they hold their own.
func (sess *fetchSession) mark(sp *sessionPartition) {
	if sp.marked.Swap(true) {
		return // queued already; the pass that takes it sees this change too
	}
	sess.news.Lock()
	sess.news.marked = append(sess.news.marked, sp)
	sess.news.Unlock()
	select {
	case sess.wake <- struct{}{}:
	default:
	}
}

// wakeAll wakes every session's fetch, for a pass over all its partitions when the
// metadata changed.
func (fs *fetchSessions) wakeAll() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, sess := range fs.mu.byID {
		select {
		case sess.wake <- struct{}{}:
		default:
		}
	}
}

// wait returns the channel that tells of the next mark. Taken before a pass, it cannot
// miss a mark made during the pass.
func (sess *fetchSession) wait() <-chan struct{} {
	select {
	case <-sess.wake:
	default:
	}
	return sess.wake
}

// takeMarked moves the marked partitions into pending; the caller holds mu. Flags are
// cleared before the pass reads the partitions, so a change after the clear marks again
// and a change before it is seen by the pass.
func (sess *fetchSession) takeMarked() {
	sess.news.Lock()
	marked := sess.news.marked
	sess.news.marked = nil
	sess.news.Unlock()
	for _, sp := range marked {
		sp.marked.Store(false)
		sess.pend(sp)
	}
}

// pend puts a partition in pending; the caller holds mu.
func (sess *fetchSession) pend(sp *sessionPartition) {
	if !sp.pending && !sp.forgotten {
		sp.pending = true
		sess.pending = append(sess.pending, sp)
	}
}

// pendAll puts every partition in pending, in order, for a pass that must look at all
// of them (a full fetch, new metadata); the caller holds mu.
func (sess *fetchSession) pendAll() {
	for _, sp := range sess.pending {
		sp.pending = false
	}
	sess.pending = sess.pending[:0]
	for _, sp := range sess.order {
		sess.pend(sp)
	}
}

// unwatchAll stops every partition of a closed session watching its replica.
func (sess *fetchSession) unwatchAll() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	for _, sp := range sess.partitions {
		sp.unwatch()
	}
}
