package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/partitionlog"
)

// Follower fetch sizes and pacing: Kafka's replica.fetch.max.bytes,
// replica.fetch.response.max.bytes, replica.fetch.wait.max.ms and replica.fetch.backoff.ms.
const (
	replicaFetchMaxBytes         = 1 << 20
	replicaFetchResponseMaxBytes = 10 << 20
	replicaFetchWait             = 500 * time.Millisecond
	replicaFetchBackoff          = time.Second
)

// fetcher replicates every partition this node follows from one leader node: one
// goroutine sending one Fetch at a time that covers them all, in an incremental fetch
// session (KIP-227), as a Kafka broker's replica fetcher thread does
// (num.replica.fetchers=1). Following costs one connection and one request in flight
// per leader whatever the number of partitions, and each round costs in proportion to
// the partitions that moved: an idle partition is named in no request and answered in
// no response.
//
// Before a partition is fetched at a new leader epoch, the fetcher cuts any tail the
// leader does not have (KIP-101, KIP-279), asking with one OffsetForLeaderEpoch for all
// partitions that need it.
//
// The replication state says which partitions to follow (follow, unfollow); the
// fetcher's goroutine owns everything else (fetchSet, fetcherSession).
type fetcher struct {
	s      *Server
	leader int32
	logger *slog.Logger
	wake   chan struct{} // the followed set changed
	mu     struct {
		sync.Mutex
		followed map[partitionKey]followed
		changed  map[partitionKey]struct{} // since the goroutine last looked
	}
}

// followed is a partition to replicate, and the leader epoch it is followed at.
type followed struct {
	r           *replica
	leaderEpoch int32
}

func newFetcher(s *Server, leader int32) *fetcher {
	f := &fetcher{s: s, leader: leader, logger: s.logger.With("leader", leader), wake: make(chan struct{}, 1)}
	f.mu.followed = make(map[partitionKey]followed)
	f.mu.changed = make(map[partitionKey]struct{})
	return f
}

// follow starts or updates following a partition at a leader epoch.
func (f *fetcher) follow(key partitionKey, p followed) {
	f.mu.Lock()
	f.mu.followed[key] = p
	f.mu.changed[key] = struct{}{}
	f.mu.Unlock()
	f.poke()
}

// unfollow stops following a partition, if it was followed with replica r.
func (f *fetcher) unfollow(key partitionKey, r *replica) {
	f.mu.Lock()
	if cur, ok := f.mu.followed[key]; ok && cur.r == r {
		delete(f.mu.followed, key)
		f.mu.changed[key] = struct{}{}
	}
	f.mu.Unlock()
	f.poke()
}

func (f *fetcher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// changes returns what changed since the last call: each changed partition's followed
// state, or ok=false for one no longer followed.
func (f *fetcher) changes() map[partitionKey]*followed {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.mu.changed) == 0 {
		return nil
	}
	out := make(map[partitionKey]*followed, len(f.mu.changed))
	for key := range f.mu.changed {
		if p, ok := f.mu.followed[key]; ok {
			out[key] = &p
		} else {
			out[key] = nil
		}
	}
	clear(f.mu.changed)
	return out
}

// run replicates until ctx ends.
func (f *fetcher) run(ctx context.Context) {
	set := newFetchSet()
	var sess fetcherSession
	for ctx.Err() == nil {
		drain(f.wake) // changes() sees all made before this; later ones wake us again
		set.apply(f.changes())
		addr, ok := f.s.view.Snapshot().Nodes[f.leader]
		if !ok || len(set.states) == 0 {
			sess.reset(set)
			f.idle(ctx, set)
			continue
		}
		if err := f.truncate(ctx, addr.Addr, set); err != nil {
			f.logger.Debug("asking the leader where epochs end failed; retrying", "err", err)
			sleepCtx(ctx, replicaFetchBackoff)
			continue
		}
		req := sess.request(f.s.cfg.ID, set, time.Now())
		if req == nil {
			f.idle(ctx, set)
			continue
		}
		if err := f.tracedFetch(ctx, addr.Addr, req, set, &sess); err != nil && ctx.Err() == nil {
			f.logger.Debug("replica fetch from the leader failed; retrying", "err", err)
			sleepCtx(ctx, replicaFetchBackoff)
		}
	}
}

// idle waits for a change of the followed set, the earliest retry, or a short while
// (a leader that was unknown may have registered).
func (f *fetcher) idle(ctx context.Context, set *fetchSet) {
	t := time.NewTimer(set.nextRetry(time.Now(), replicaFetchBackoff))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-f.wake:
	case <-t.C:
	}
}

// truncate cuts, for every partition not yet checked at its leader epoch, any tail the
// leader does not have. A partition that was cut is asked about again on the next
// round, from its new end, until nothing is cut: an answer about an epoch this replica
// never had gives a safe point that may still be too high (KIP-279).
func (f *fetcher) truncate(ctx context.Context, addr string, set *fetchSet) error {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version, req.ReplicaID = 4, f.s.cfg.ID
	topics := map[string]int{}
	now := time.Now()
	for key := range set.parked {
		st := set.states[key]
		if st.truncated || st.retryAt.After(now) {
			continue
		}
		latest := st.r.log.LatestEpoch()
		if latest < 0 {
			st.truncated = true // nothing written under any epoch: nothing can diverge
			continue
		}
		i, ok := topics[key.topic]
		if !ok {
			i = len(req.Topics)
			topics[key.topic] = i
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = key.topic
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.Partition, p.CurrentLeaderEpoch, p.LeaderEpoch = key.index, st.leaderEpoch, latest
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	if len(req.Topics) == 0 {
		return nil
	}
	resp, err := f.s.peers.Do(ctx, addr, req)
	if err != nil {
		return fmt.Errorf("ask leader %d at %s where epochs end: %w", f.leader, addr, err)
	}
	for _, t := range resp.(*kmsg.OffsetForLeaderEpochResponse).Topics {
		for _, p := range t.Partitions {
			key := partitionKey{t.Topic, p.Partition}
			if st := set.states[key]; st != nil && !st.truncated {
				f.truncateOne(key, st, p)
			}
		}
	}
	return nil
}

// truncateOne applies the leader's answer for one partition.
func (f *fetcher) truncateOne(key partitionKey, st *fetchState, got kmsg.OffsetForLeaderEpochResponseTopicPartition) {
	logger := f.logger.With("topic", key.topic, "partition", key.index, "leader_epoch", st.leaderEpoch)
	if err := kerr.ErrorForCode(got.ErrorCode); err != nil {
		logger.Debug("the leader cannot say where our epoch ends yet; retrying", "err", err)
		st.retryAt = time.Now().Add(replicaFetchBackoff)
		return
	}
	r := st.r
	point := r.log.DivergencePoint(got.LeaderEpoch, got.EndOffset)
	end := r.log.EndOffset()
	if point >= end {
		st.truncated = true
		return
	}
	logger.Warn("truncating a divergent tail to the leader's epoch boundary", "from", end, "to", point,
		"local_epoch", r.log.LatestEpoch(), "leader_answer_epoch", got.LeaderEpoch, "leader_answer_end", got.EndOffset)
	if err := whileFollowing(st, func() error { return r.log.TruncateTo(point) }); err != nil {
		logger.Error("truncating the divergent tail failed; retrying", "to", point, "err", err)
		st.retryAt = time.Now().Add(replicaFetchBackoff)
	}
}

// tracedFetch is fetch in a span of its own, when tracing is on.
func (f *fetcher) tracedFetch(ctx context.Context, addr string, req *kmsg.FetchRequest, set *fetchSet, sess *fetcherSession) error {
	ctx, span := f.s.startReplicaFetch(ctx, f.leader, len(set.states)-len(set.parked), req.SessionID)
	defer span.End()
	err := f.fetch(ctx, addr, req, set, sess)
	endWithError(span, err)
	return err
}

// fetch sends one replica fetch and applies its answer. A change of the followed set
// abandons an incremental fetch (and its session, whose epoch the leader has moved
// on), so a new partition never waits out a long poll.
func (f *fetcher) fetch(ctx context.Context, addr string, req *kmsg.FetchRequest, set *fetchSet, sess *fetcherSession) error {
	fetchCtx, cancel := context.WithTimeout(ctx, replicaFetchWait+30*time.Second)
	defer cancel()
	if req.SessionEpoch > 0 {
		// The full fetch that opens the next session names this one, so the leader
		// closes it and ends its long poll. A full fetch does not long-poll (request).
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-f.wake: // run looks at the changes once the fetch returns
				cancel()
			case <-stop:
			}
		}()
	}
	resp, err := f.s.peers.Do(fetchCtx, addr, req)
	if err == nil {
		resp, err = wire.Materialize(resp) // a leader in this process answers with file ranges
	}
	if err != nil {
		sess.reset(set)
		if ctx.Err() == nil && fetchCtx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil // abandoned for a change of the followed set
		}
		return fmt.Errorf("fetch from leader %d at %s: %w", f.leader, addr, err)
	}
	got := resp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(got.ErrorCode); err != nil {
		sess.reset(set)
		if errors.Is(err, kerr.FetchSessionIDNotFound) || errors.Is(err, kerr.InvalidFetchSessionEpoch) {
			return nil // start a new session at once
		}
		return fmt.Errorf("fetch from leader %d at %s: %w", f.leader, addr, err)
	}
	sess.answered(req, got, set)
	for _, t := range got.Topics {
		for _, p := range t.Partitions {
			key := partitionKey{t.Topic, p.Partition}
			if st := set.states[key]; st != nil && !set.isParked(key) {
				f.apply(key, st, p, set)
			}
		}
	}
	return nil
}

// apply appends what the leader sent for one partition and follows its high watermark
// and log start.
func (f *fetcher) apply(key partitionKey, st *fetchState, got kmsg.FetchResponseTopicPartition, set *fetchSet) {
	r := st.r
	if err := kerr.ErrorForCode(got.ErrorCode); err != nil {
		f.failed(key, st, err, set)
		return
	}
	err := whileFollowing(st, func() error {
		if len(got.RecordBatches) > 0 {
			// At: a compacted leader may have no batch at this replica's end offset.
			if _, err := r.log.AppendAsFollowerAt(st.sentOffset, got.RecordBatches); err != nil {
				return fmt.Errorf("append from leader: %w", err)
			}
			set.moved(key)
		}
		hwBefore, startBefore := r.log.HighWatermark(), r.log.StartOffset()
		defer func() {
			if r.log.HighWatermark() != hwBefore || r.log.StartOffset() != startBefore {
				// News for consumers reading from this follower (KIP-392).
				r.changed()
				r.readable.notify()
			}
		}()
		r.log.SetHighWatermark(min(got.HighWatermark, r.log.EndOffset()))
		// The leader's log start moved (DeleteRecords, retention): follow it, as Kafka does.
		if start := min(got.LogStartOffset, r.log.EndOffset()); start > r.log.StartOffset() {
			if _, err := r.log.DeleteRecordsBefore(start); err != nil {
				return fmt.Errorf("follow the leader's log start %d: %w", start, err)
			}
		}
		return nil
	})
	if err != nil {
		f.failed(key, st, err, set)
	}
}

// failed handles a partition's error: a gap or an out-of-range position means the logs
// diverged, so check again where; anything else is retried after a backoff (a leader
// change shows up as a change of the followed set meanwhile).
func (f *fetcher) failed(key partitionKey, st *fetchState, err error, set *fetchSet) {
	if errors.Is(err, errNotFollowing) {
		return // the partition is being led or closed here now; apply drops it
	}
	if errors.Is(err, partitionlog.ErrOffsetGap) || errors.Is(err, kerr.OffsetOutOfRange) {
		st.truncated = false
	}
	st.retryAt = time.Now().Add(replicaFetchBackoff)
	set.park(key)
	f.logger.Debug("replicating a partition failed; retrying", "topic", key.topic, "partition", key.index, "err", err)
}

var errNotFollowing = errors.New("partition no longer followed at this epoch")

// whileFollowing runs fn, which writes the partition's log, only while the partition is
// still followed at st's leader epoch, holding its replication state so that it cannot
// become leader meanwhile (a follower's write must never land in a leader's log).
func whileFollowing(st *fetchState, fn func() error) error {
	rs := &st.r.state
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.role != roleFollower || rs.leaderEpoch != st.leaderEpoch {
		return errNotFollowing
	}
	return fn()
}

// fetchSet is the fetcher goroutine's record of the partitions it follows. Every
// partition is either parked (waiting for its divergence check or for a retry after an
// error) or fetchable; a fetchable one is named in the next incremental fetch only
// when it is new to the session or its position moved.
type fetchSet struct {
	states    map[partitionKey]*fetchState
	parked    map[partitionKey]struct{}
	toName    map[partitionKey]struct{}
	forgotten []partitionKey // left the session: named in the next incremental fetch's ForgottenTopics
}

// fetchState is one followed partition.
type fetchState struct {
	followed
	truncated bool      // the divergence check against this leader epoch is done
	retryAt   time.Time // after an error: not fetched before then
	// The session's view of the partition: whether the leader has it in the session,
	// and the position it was last named at.
	inSession  bool
	sentOffset int64
}

func newFetchSet() *fetchSet {
	return &fetchSet{
		states: map[partitionKey]*fetchState{},
		parked: map[partitionKey]struct{}{},
		toName: map[partitionKey]struct{}{},
	}
}

// apply takes in changes of the followed set: a partition followed anew, or at a new
// epoch, starts parked for its divergence check; one no longer followed leaves.
func (set *fetchSet) apply(changes map[partitionKey]*followed) {
	for key, want := range changes {
		st := set.states[key]
		if st != nil && want != nil && st.followed == *want {
			continue
		}
		if st != nil {
			set.leave(key)
		}
		if want != nil {
			set.states[key] = &fetchState{followed: *want}
			set.parked[key] = struct{}{}
		}
	}
}

// leave drops a partition, to be forgotten by the leader's session if it is in it.
func (set *fetchSet) leave(key partitionKey) {
	if st := set.states[key]; st != nil && st.inSession {
		set.forgotten = append(set.forgotten, key)
	}
	delete(set.states, key)
	delete(set.parked, key)
	delete(set.toName, key)
}

// park stops fetching a partition until its retry time and divergence check.
func (set *fetchSet) park(key partitionKey) {
	st := set.states[key]
	if st.inSession {
		set.forgotten = append(set.forgotten, key)
		st.inSession = false
	}
	set.parked[key] = struct{}{}
	delete(set.toName, key)
}

func (set *fetchSet) isParked(key partitionKey) bool {
	_, ok := set.parked[key]
	return ok
}

// moved marks a partition whose log end moved: the next fetch names its new position.
func (set *fetchSet) moved(key partitionKey) {
	set.toName[key] = struct{}{}
}

// unpark makes fetchable the parked partitions whose check is done and retry is due.
func (set *fetchSet) unpark(now time.Time) {
	for key := range set.parked {
		if st := set.states[key]; st.truncated && !st.retryAt.After(now) {
			delete(set.parked, key)
			set.toName[key] = struct{}{}
		}
	}
}

// nextRetry is how long until the earliest parked partition may be fetched, at most limit.
func (set *fetchSet) nextRetry(now time.Time, limit time.Duration) time.Duration {
	wait := limit
	for key := range set.parked {
		if st := set.states[key]; st.truncated {
			wait = min(wait, max(st.retryAt.Sub(now), 0))
		}
	}
	return wait
}

// fetcherSession is the follower's side of its incremental fetch session with the leader.
type fetcherSession struct {
	id    int32
	epoch int32 // of the next request; 0 asks for a new session with a full fetch
	// refused says the leader kept no session for the last full fetch (its cache was
	// full): full fetches then long-poll like any other.
	refused bool
}

// reset forgets the session: the next fetch is a full one that opens a new session.
func (sess *fetcherSession) reset(set *fetchSet) {
	sess.epoch = 0
	for _, st := range set.states {
		st.inSession = false
	}
	set.forgotten = nil
}

// request builds the next fetch: every fetchable partition for a full fetch, else those
// to name, with the forgotten ones. Nil means there is nothing to fetch.
func (sess *fetcherSession) request(self int32, set *fetchSet, now time.Time) *kmsg.FetchRequest {
	set.unpark(now)
	if len(set.parked) == len(set.states) {
		return nil
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID = 12, self
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = int32(replicaFetchWait/time.Millisecond), 1, replicaFetchResponseMaxBytes
	req.SessionID, req.SessionEpoch = sess.id, sess.epoch
	topics := map[string]int{}
	name := func(key partitionKey, st *fetchState) {
		st.sentOffset = st.r.log.EndOffset()
		i, ok := topics[key.topic]
		if !ok {
			i = len(req.Topics)
			topics[key.topic] = i
			t := kmsg.NewFetchRequestTopic()
			t.Topic = key.topic
			req.Topics = append(req.Topics, t)
		}
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition, p.FetchOffset, p.PartitionMaxBytes = key.index, st.sentOffset, replicaFetchMaxBytes
		p.CurrentLeaderEpoch, p.LastFetchedEpoch = st.leaderEpoch, st.r.log.LatestEpoch()
		p.LogStartOffset = st.r.log.StartOffset()
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	if sess.epoch == 0 {
		if !sess.refused {
			req.MaxWaitMillis = 0 // answer at once with the session id, so never abandoned
		}
		for key, st := range set.states {
			if !set.isParked(key) {
				name(key, st)
			}
		}
		return req
	}
	for key := range set.toName {
		name(key, set.states[key])
	}
	// A partition named anew (followed at a new epoch) is updated by being named;
	// forgetting it as well would drop it, as the leader forgets after updating.
	var forgotten []partitionKey
	for _, key := range set.forgotten {
		if _, named := set.toName[key]; !named {
			forgotten = append(forgotten, key)
		}
	}
	req.ForgottenTopics = forgottenTopics(forgotten)
	return req
}

func forgottenTopics(keys []partitionKey) []kmsg.FetchRequestForgottenTopic {
	var out []kmsg.FetchRequestForgottenTopic
	topics := map[string]int{}
	for _, key := range keys {
		i, ok := topics[key.topic]
		if !ok {
			i = len(out)
			topics[key.topic] = i
			t := kmsg.NewFetchRequestForgottenTopic()
			t.Topic = key.topic
			out = append(out, t)
		}
		out[i].Partitions = append(out[i].Partitions, key.index)
	}
	return out
}

// answered moves the session on after the leader answered req: the partitions req
// named are in the session at the positions named, and nothing is left to forget.
func (sess *fetcherSession) answered(req *kmsg.FetchRequest, resp *kmsg.FetchResponse, set *fetchSet) {
	sess.refused = resp.SessionID == 0
	switch {
	case sess.refused: // the leader keeps no session for us: fetch in full each time
		sess.id, sess.epoch = 0, 0
	case req.SessionEpoch == 0:
		sess.id, sess.epoch = resp.SessionID, 1
	default:
		sess.epoch = nextSessionEpoch(sess.epoch)
	}
	set.forgotten = nil
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			key := partitionKey{t.Topic, p.Partition}
			delete(set.toName, key)
			if st := set.states[key]; st != nil {
				st.inSession = !sess.refused
			}
		}
	}
}

func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
