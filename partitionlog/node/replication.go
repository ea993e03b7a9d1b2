package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	rstate "github.com/strait-io/strait/partitionlog/replica"
	"github.com/strait-io/strait/routing"
)

// role is what this node is for one partition.
type role int

const (
	roleNone role = iota
	roleLeader
	roleFollower
)

// leadership is a partition's replication state on this node: whether it leads or
// follows, at which leader epoch, and, when leading, the followers' progress that
// decides the high watermark. Guarded by mu; the request path, the follower fetcher
// and the ISR loop all go through it briefly.
type leadership struct {
	mu          sync.Mutex
	role        role
	leaderEpoch int32
	leader      *rstate.Leader // when leading
	following   *fetcher       // when following: the fetcher of the leader node
	hwAdvanced  broadcast      // wakes acks=all produces waiting for the high watermark
	// waiters are the traced acks=all produces waiting here, which follower fetches
	// link themselves to; empty unless a traced produce waits.
	waiters []*commitWaiter
}

// applyRole moves the partition to the role the metadata gives it: leader or follower
// at the partition's leader epoch. Called by Reconcile for every assigned partition.
func (s *Server) applyRole(key partitionKey, r *replica, p routing.Partition) {
	st := &r.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if p.LeaderEpoch < st.leaderEpoch {
		return // an older snapshot than the one this role came from
	}
	switch {
	case p.Leader == s.cfg.ID && (st.role != roleLeader || st.leaderEpoch != p.LeaderEpoch):
		s.becomeLeaderLocked(key, r, p)
	case p.Leader == s.cfg.ID && !slices.Equal(st.leader.ISR(), p.ISR):
		st.leader.Committed(p.ISR) // the controller changed it (a node failed)
	case p.Leader != s.cfg.ID && (st.role != roleFollower || st.leaderEpoch != p.LeaderEpoch):
		s.becomeFollowerLocked(key, r, p)
	default:
		return // lookups apply the role they find too: most find it applied
	}
	r.changed() // a new role or ISR may change what fetchers are told
}

func (s *Server) becomeLeaderLocked(key partitionKey, r *replica, p routing.Partition) {
	st := &r.state
	r.unfollowLocked()
	now := time.Now()
	st.role, st.leaderEpoch = roleLeader, p.LeaderEpoch
	st.leader = rstate.NewLeader(rstate.Config{LagTimeMax: s.cfg.ReplicaLagTimeMax}, s.cfg.ID, p.Replicas, p.ISR,
		p.LeaderEpoch, r.log.EndOffset(), r.log.HighWatermark(), now)
	r.log.SetHighWatermark(st.leader.HighWatermark())
	s.logger.Debug("leading partition", "topic", key.topic, "partition", key.index, "leader_epoch", p.LeaderEpoch,
		"isr", p.ISR, "log_end_offset", r.log.EndOffset(), "high_watermark", r.log.HighWatermark())
}

func (s *Server) becomeFollowerLocked(key partitionKey, r *replica, p routing.Partition) {
	st := &r.state
	r.unfollowLocked()
	st.role, st.leaderEpoch, st.leader = roleFollower, p.LeaderEpoch, nil
	st.hwAdvanced.notify() // produces waiting as leader find out they are not any more
	if p.Leader < 0 {
		s.logger.Warn("partition has no leader; waiting for the controller to elect one", "topic", key.topic, "partition", key.index)
		return
	}
	st.following = s.fetcher(p.Leader)
	st.following.follow(key, followed{r: r, leaderEpoch: p.LeaderEpoch})
	s.logger.Debug("following partition", "topic", key.topic, "partition", key.index, "leader", p.Leader, "leader_epoch", p.LeaderEpoch)
}

// stopReplication ends following when the partition is closed or removed.
func (r *replica) stopReplication() {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	r.unfollowLocked()
	r.state.role, r.state.leader = roleNone, nil
	r.state.hwAdvanced.notify()
}

// unfollowLocked takes the partition off its leader's fetcher, if it follows one.
func (r *replica) unfollowLocked() {
	if r.state.following != nil {
		r.state.following.unfollow(r.key, r)
		r.state.following = nil
	}
}

// highWatermark is what consumers may read up to: the leader's high watermark.
func (r *replica) highWatermark() int64 {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	if r.state.leader != nil {
		return r.state.leader.HighWatermark()
	}
	return r.log.HighWatermark()
}

// lastStableOffset is what read_committed consumers may read up to: the high watermark,
// lowered to the first record of an undecided transaction (KIP-98).
func (r *replica) lastStableOffset() int64 {
	return min(r.highWatermark(), r.log.LastStableOffset())
}

// leaderISR returns the committed ISR when this node leads the partition.
func (r *replica) leaderISR() ([]int32, error) {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	if r.state.leader == nil {
		return nil, errNotLeader
	}
	return r.state.leader.ISR(), nil
}

// appended tells the leader state of a local append; with an ISR of one the high
// watermark moves at once.
func (r *replica) appended(end int64) {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	r.changed()
	if r.state.leader != nil && r.state.leader.LocalAppended(end, time.Now()) {
		r.publishHighWatermarkLocked()
	}
}

// followerFetched records a follower's progress, reported by its fetch offset; fetch is
// that fetch's span, which traced produces waiting for the follower link to.
func (r *replica) followerFetched(follower int32, fetchOffset int64, fetch trace.SpanContext) (outOfISR bool, err error) {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	l := r.state.leader
	if l == nil {
		return false, errNotLeader
	}
	for _, w := range r.state.waiters {
		w.fetchedPast(follower, fetchOffset, fetch)
	}
	// A follower can read a batch, write it and report its new end before the append
	// that wrote the batch here has told the leader state (appended): bring the state's
	// end up to the log's first, or that report would be past it and dropped, and the
	// high watermark would wait for the follower's next move.
	now := time.Now()
	advanced := l.LocalAppended(r.log.EndOffset(), now)
	if l.FollowerFetched(follower, fetchOffset, now) || advanced {
		r.publishHighWatermarkLocked()
	}
	return !slices.Contains(l.ISR(), follower), nil
}

func (r *replica) publishHighWatermarkLocked() {
	r.log.SetHighWatermark(r.state.leader.HighWatermark())
	r.changed()
	r.state.hwAdvanced.notify()
	r.readable.notify() // consumers long-polling up to the high watermark
}

// waitCommitted blocks until the high watermark passes offset (every ISR replica has
// it), the partition stops being led here, the timeout passes or ctx ends. A recording
// span gets links to the follower fetches that went past offset meanwhile.
func (r *replica) waitCommitted(ctx context.Context, offset int64, timeout time.Duration, span trace.Span) error {
	if span.IsRecording() {
		w := r.await(offset)
		defer func() {
			for _, l := range r.unawait(w) {
				span.AddLink(l)
			}
		}()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.state.mu.Lock()
		l := r.state.leader
		if l == nil {
			r.state.mu.Unlock()
			return errNotLeader
		}
		if l.HighWatermark() > offset {
			r.state.mu.Unlock()
			return nil
		}
		wake := r.state.hwAdvanced.wait()
		r.state.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return fmt.Errorf("%w: offset %d not replicated to every in-sync replica within %s", errRequestTimedOut, offset, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// await registers a traced wait for offset.
func (r *replica) await(offset int64) *commitWaiter {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	w := &commitWaiter{offset: offset}
	r.state.waiters = append(r.state.waiters, w)
	return w
}

// unawait removes a traced wait and returns the links it collected.
func (r *replica) unawait(w *commitWaiter) []trace.Link {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	r.state.waiters = slices.DeleteFunc(r.state.waiters, func(x *commitWaiter) bool { return x == w })
	return w.links
}
