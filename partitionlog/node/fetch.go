package node

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/partitionlog"
	"github.com/strait-io/strait/routing"
)

// fetch reads each partition from its fetch offset and long-polls: while fewer than
// MinBytes are available it waits for the next append or high-watermark advance, up to
// MaxWaitMillis. A partition error answers at once, as in Kafka.
//
// A fetch without a session (SessionEpoch -1) reads the partitions it names. A fetch in
// an incremental session (KIP-227, fetch_session.go) reads every partition of the
// session and answers only those with news; follower fetchers use one session per
// leader, so a fetch round costs in proportion to the partitions that moved.
//
// A consumer's fetch may be served as follower too, or answered with a preferred read
// replica (KIP-392, closest_replica.go).
//
// With Config.ZeroCopy the record bytes are not read at all: the answer names ranges
// of segment files, which the wire server sends with sendfile.
//
// A follower's fetch names the span it comes from, which leaders' traced acks=all waits
// link to when it moves the high watermark (caller).
func (s *Server) fetch(ctx context.Context, req *kmsg.FetchRequest) kmsg.Response {
	caller := trace.SpanContextFromContext(ctx)
	if req.Version < 7 || (req.SessionID == 0 && req.SessionEpoch == -1) {
		return s.longPoll(ctx, req, nil, s.readable.wait, func() *fetchRead { return s.readFetch(req, caller) })
	}
	if req.SessionEpoch == -1 { // close the session, then fetch without one
		s.sessions.close(req.SessionID)
		return s.longPoll(ctx, req, nil, s.readable.wait, func() *fetchRead { return s.readFetch(req, caller) })
	}
	var sess *fetchSession
	full := req.SessionEpoch == 0
	if full {
		if sess = s.sessions.open(req.SessionID, req.ReplicaID, time.Now()); sess == nil {
			return s.longPoll(ctx, req, nil, s.readable.wait, func() *fetchRead { return s.readFetch(req, caller) }) // cache full: no session
		}
	} else {
		var code int16
		if sess, code = s.sessions.get(req.SessionID); code != 0 {
			return sessionError(req, code)
		}
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if !full && req.SessionEpoch != sess.epoch {
		return sessionError(req, kerr.InvalidFetchSessionEpoch.Code)
	}
	sess.update(req)
	resp := s.longPoll(ctx, req, sess.closed, sess.wait, func() *fetchRead { return s.readSession(req, sess, full, caller) })
	sess.epoch = nextSessionEpoch(sess.epoch)
	sess.lastUsed = time.Now()
	return resp
}

// longPoll reads until MinBytes are there, a partition failed, MaxWaitMillis passed, the
// request's context ended or abort closed, and returns the last read. After a read short
// of MinBytes it waits for the channel news returned before that read.
func (s *Server) longPoll(ctx context.Context, req *kmsg.FetchRequest, abort <-chan struct{}, news func() <-chan struct{}, read func() *fetchRead) kmsg.Response {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for passes := 1; ; passes++ {
		ready := news() // taken before reading so no append slips between
		started := time.Now()
		f := read()
		wait := time.Until(deadline)
		if f.size >= int(req.MinBytes) || f.failed || f.redirected || wait <= 0 || ctx.Err() != nil || isClosed(abort) {
			traceRead(ctx, started, passes, f)
			f.commit()
			s.consumerReads.add(f.reads)
			return f.response()
		}
		f.release()
		timer := time.NewTimer(wait)
		select {
		case <-ready:
		case <-timer.C:
		case <-ctx.Done():
		case <-abort:
		}
		timer.Stop()
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// sessionError answers a fetch whose session is unknown or out of step; the fetcher
// starts a new session with a full fetch.
func sessionError(req *kmsg.FetchRequest, code int16) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.ErrorCode = code
	return resp
}

// fetchRead is one pass over a fetch's partitions.
type fetchRead struct {
	caller trace.SpanContext // the fetch's span, for a follower's
	resp   *kmsg.FetchResponse
	size   int
	failed bool
	// redirected: a partition was answered with a preferred read replica, which the
	// client should hear of at once rather than after a long poll (KAFKA-13767).
	redirected bool
	reads      ConsumerReadStats  // the consumer reads this pass answered
	ranges     [][]wire.FileRange // file ranges, one list per wire.Placeholder
	releases   []func()
	commits    []func() // run once this pass is the answer (session bookkeeping)
}

// response is the answer to send: spliced when record bytes are file ranges.
func (f *fetchRead) response() kmsg.Response {
	if len(f.ranges) == 0 {
		return f.resp
	}
	return &wire.Spliced{Response: f.resp, Ranges: f.ranges, Release: f.release}
}

func (f *fetchRead) release() {
	for _, r := range f.releases {
		r()
	}
	f.releases = nil
}

func (f *fetchRead) commit() {
	for _, c := range f.commits {
		c()
	}
}

// budget is what a fetch may still carry: the request's MaxBytes, beyond the first batch,
// which is always returned whole so consumers progress (KIP-74).
func fetchBudget(req *kmsg.FetchRequest) int32 {
	if req.Version < 3 || req.MaxBytes <= 0 {
		return 1<<31 - 1
	}
	return req.MaxBytes
}

// readFetch reads every requested partition once, keeping to the request's MaxBytes.
func (s *Server) readFetch(req *kmsg.FetchRequest, caller trace.SpanContext) *fetchRead {
	f := &fetchRead{caller: caller, resp: req.ResponseKind().(*kmsg.FetchResponse)}
	snap := s.view.Snapshot()
	rd := readerOf(req)
	budget := fetchBudget(req)
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp, n := s.readPartition(f, snap, rd, rt.Topic, rp, min(rp.PartitionMaxBytes, budget), f.size == 0)
			f.size += n
			budget -= int32(n)
			f.failed = f.failed || sp.ErrorCode != 0
			st.Partitions = append(st.Partitions, sp)
		}
		f.resp.Topics = append(f.resp.Topics, st)
	}
	return f
}

// readSession reads a session's partitions: every one for a full fetch, else those with
// news since the session's last answer. It looks only at pending partitions (those named
// by this request, marked by their replica since the last pass, or with news not yet
// answered), all of them only when the metadata changed; the cheap test for news
// (offsets compared, no read) runs first.
func (s *Server) readSession(req *kmsg.FetchRequest, sess *fetchSession, full bool, caller trace.SpanContext) *fetchRead {
	f := &fetchRead{caller: caller, resp: req.ResponseKind().(*kmsg.FetchResponse)}
	f.resp.SessionID = sess.id
	snap := s.view.Snapshot()
	sess.takeMarked()
	if routes := (routesVersion{snap.Version, s.reconciled.Load()}); sess.routedAt != routes {
		sess.routedAt = routes
		for _, sp := range sess.order {
			sp.route, sp.routeErr, sp.quiet = nil, nil, false
		}
		sess.pendAll()
	} else if full {
		sess.pendAll()
	}
	s.reportIdle(sess)
	rd := readerOf(req)
	budget := fetchBudget(req)
	topics := map[string]int{} // topic -> index in f.resp.Topics
	filled := 0                // pending partitions up to the one that used the budget up
	kept := sess.pending[:0]
	var retry []*sessionPartition // failed routes, looked up again on the next pass
	for _, sp := range sess.pending {
		if sp.forgotten {
			sp.pending = false
			continue
		}
		s.route(snap, rd, sp)
		if sp.unreported && sp.route != nil {
			// A follower's new position may advance the high watermark, news in itself.
			// It stays unreported until a pass reports it: the follower names the
			// partition again only once its position moves.
			if _, err := s.readBound(sp.route, req.ReplicaID, sp.request.FetchOffset, caller); err != nil {
				sp.route, sp.routeErr = nil, err
			} else {
				sp.unreported = false
			}
		}
		if !full && !sp.hasNews(req.ReplicaID) {
			if sp.routeErr != nil {
				// A replica can open or take its role with no metadata change, and a
				// replica it has not found cannot mark it: look it up again next pass.
				sp.routeErr = nil
				retry = append(retry, sp)
				continue
			}
			sp.pending = false // until its replica marks it again
			continue
		}
		kept = append(kept, sp)
		out, n := s.readPartition(f, snap, rd, sp.key.topic, sp.request, min(sp.request.PartitionMaxBytes, budget), f.size == 0)
		f.size += n
		if budget > 0 {
			filled = len(kept)
		}
		budget -= int32(n)
		f.failed = f.failed || (out.ErrorCode != 0 && out.ErrorCode != sp.sentError)
		f.commits = append(f.commits, sp.sent(out))
		i, ok := topics[sp.key.topic]
		if !ok {
			i = len(f.resp.Topics)
			topics[sp.key.topic] = i
			st := kmsg.NewFetchResponseTopic()
			st.Topic = sp.key.topic
			f.resp.Topics = append(f.resp.Topics, st)
		}
		f.resp.Topics[i].Partitions = append(f.resp.Topics[i].Partitions, out)
	}
	clear(sess.pending[len(kept):])
	sess.pending = append(kept, retry...)
	if budget <= 0 {
		f.commits = append(f.commits, func() { sess.rotate(filled) })
	}
	return f
}

// route finds the replica a session partition reads from, once per metadata version,
// and watches it for news.
func (s *Server) route(snap *routing.Snapshot, rd reader, sp *sessionPartition) {
	if sp.route != nil || sp.routeErr != nil {
		return
	}
	r, p, err := s.lookupReplica(snap, sp.key.topic, sp.key.index, rd.anyReplica)
	if err == nil {
		err = checkLeaderEpoch(sp.request.CurrentLeaderEpoch, p.LeaderEpoch)
	}
	sp.route, sp.routeErr = r, err
	if err != nil {
		sp.route = nil
	}
	sp.watchRoute()
}

// hasNews reports whether the partition has something its fetcher has not been told:
// records past its position, a new high watermark or log start, or a new error. A
// partition found quiet stays so, without a look at its log, until its change count
// moves or the fetcher names it again.
func (sp *sessionPartition) hasNews(replicaID int32) bool {
	if sp.routeErr != nil {
		return errorCode(sp.routeErr) != sp.sentError
	}
	r := sp.route
	changes := r.changes.Load()
	if sp.quiet && changes == sp.seenChanges {
		return false
	}
	highWatermark := r.highWatermark()
	readable := highWatermark
	if replicaID >= 0 {
		readable = r.log.EndOffset()
	}
	news := readable > sp.request.FetchOffset || highWatermark != sp.sentHighWatermark ||
		r.log.StartOffset() != sp.sentLogStart || sp.sentError != 0
	sp.quiet, sp.seenChanges = !news, changes
	return news
}

// sent returns how to record that out was answered.
func (sp *sessionPartition) sent(out kmsg.FetchResponseTopicPartition) func() {
	return func() {
		sp.sentHighWatermark, sp.sentLogStart, sp.sentError = out.HighWatermark, out.LogStartOffset, out.ErrorCode
	}
}

// reportIdle tells the leader state, every quarter of replica.lag.time.max.ms, that a
// follower still fetches the partitions its incremental fetches do not name (they did
// not move): without it an idle follower would look stuck and leave the ISR.
func (s *Server) reportIdle(sess *fetchSession) {
	now := time.Now()
	if sess.replicaID < 0 || now.Sub(sess.refreshedAt) < s.cfg.ReplicaLagTimeMax/4 {
		return
	}
	sess.refreshedAt = now
	for _, sp := range sess.partitions {
		if sp.route != nil {
			if outOfISR, err := sp.route.followerFetched(sess.replicaID, sp.request.FetchOffset, trace.SpanContext{}); err == nil && outOfISR {
				s.kickISR()
			}
		}
	}
}

// readPartition answers one partition and returns how many record bytes it carries.
// A consumer (replica -1) reads up to the high watermark, of the leader or, reading
// from a follower, of that follower; a follower (its node id) reads up to the log end,
// and its fetch offset tells the leader how far it got.
func (s *Server) readPartition(f *fetchRead, snap *routing.Snapshot, rd reader, topic string, rp kmsg.FetchRequestTopicPartition, maxBytes int32, first bool) (kmsg.FetchResponseTopicPartition, int) {
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
	sp.RecordBatches = []byte{} // never null: librdkafka rejects a null record set
	r, p, err := s.lookupReplica(snap, topic, rp.Partition, rd.anyReplica)
	if err == nil {
		err = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch)
	}
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return sp, 0
	}
	readTo, err := s.readBound(r, rd.replicaID, rp.FetchOffset, f.caller)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return sp, 0
	}
	highWatermark := r.highWatermark()
	sp.HighWatermark, sp.LastStableOffset = highWatermark, r.lastStableOffset()
	sp.LogStartOffset = r.log.StartOffset()
	committedOnly := rd.replicaID < 0 && rd.isolation == readCommitted
	if committedOnly {
		readTo = min(readTo, sp.LastStableOffset)
	}
	leading := p.Leader == s.cfg.ID
	if leading && rd.rack != "" {
		if id := s.preferredReadReplica(snap, r, p, rd.rack, rp.FetchOffset); id >= 0 {
			// The client reads the partition from id from now on; records from here
			// would only be read twice (KIP-392, KAFKA-13767).
			sp.PreferredReadReplica = id
			f.redirected = true
			f.reads.Redirected++
			return sp, 0
		}
	}
	if rd.replicaID < 0 {
		if leading {
			f.reads.AsLeader++
		} else {
			f.reads.AsFollower++
		}
	}
	if maxBytes <= 0 && !first {
		return sp, 0 // budget spent: report offsets, send no records
	}
	maxBytes = max(maxBytes, 0)
	if s.cfg.ZeroCopy {
		if n, next, err := s.readSections(f, &sp, r, rp.FetchOffset, readTo, maxBytes); !errors.Is(err, partitionlog.ErrNoSections) {
			if err != nil {
				sp.ErrorCode = errorCode(err)
			} else if committedOnly {
				sp.AbortedTransactions = abortedTransactions(r, rp.FetchOffset, next)
			}
			return sp, n
		}
	}
	res, err := r.log.Read(rp.FetchOffset, readTo, maxBytes)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return sp, 0
	}
	sp.RecordBatches = res.Records
	sp.LogStartOffset = res.LogStartOffset
	if committedOnly {
		sp.AbortedTransactions = abortedTransactions(r, rp.FetchOffset, res.NextOffset)
	}
	return sp, len(res.Records)
}

// abortedTransactions lists, for a read_committed answer holding the records from
// fetchOffset to next, the aborted transactions among them, which the consumer drops
// (KIP-98). Kafka answers an empty list as such, never null, at v4+.
func abortedTransactions(r *replica, fetchOffset, next int64) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	out := []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
	if next <= fetchOffset {
		return out
	}
	for _, a := range r.log.AbortedTransactions(fetchOffset, next) {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
		out = append(out, at)
	}
	return out
}

// readBound is the offset a fetch may read up to, and for a follower it records the
// progress its fetch offset reports, which may advance the high watermark.
func (s *Server) readBound(r *replica, replicaID int32, fetchOffset int64, caller trace.SpanContext) (int64, error) {
	if replicaID < 0 {
		return r.highWatermark(), nil
	}
	outOfISR, err := r.followerFetched(replicaID, fetchOffset, caller)
	if err != nil {
		return 0, err
	}
	if outOfISR {
		s.kickISR() // it may have caught up: the ISR loop decides
	}
	return r.log.EndOffset(), nil
}

// readSections points the partition's record bytes at segment file ranges, and returns
// how many bytes and the offset after them.
func (s *Server) readSections(f *fetchRead, sp *kmsg.FetchResponseTopicPartition, r *replica, offset, highWatermark int64, maxBytes int32) (int, int64, error) {
	sections, meta, release, err := r.log.ReadSections(offset, highWatermark, maxBytes)
	if err != nil {
		return 0, 0, err
	}
	sp.LogStartOffset = meta.LogStartOffset
	if len(sections) == 0 {
		release()
		return 0, meta.NextOffset, nil
	}
	f.releases = append(f.releases, release)
	ranges := make([]wire.FileRange, len(sections))
	n := 0
	for i, sec := range sections {
		ranges[i] = wire.FileRange{File: sec.File, Offset: sec.Offset, Length: sec.Length}
		n += int(sec.Length)
	}
	sp.RecordBatches = wire.Placeholder(len(f.ranges))
	f.ranges = append(f.ranges, ranges)
	return n, meta.NextOffset, nil
}
