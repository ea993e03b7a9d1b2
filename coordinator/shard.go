package coordinator

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/strait-io/strait/coordinator/classic"
	"github.com/strait-io/strait/coordinator/consumer"
	"github.com/strait-io/strait/coordinator/offsets"
)

// shard is one loaded __consumer_offsets partition: its groups and committed offsets,
// owned by the goroutine in run. Everything else reaches it through do.
type shard struct {
	c      *Coordinator
	index  int32
	inbox  chan func()
	stop   chan struct{}
	done   chan struct{}
	loaded atomic.Bool

	// Owned by run.
	classic    map[string]*classic.Group
	consumer   map[string]*consumer.Group
	table      *offsets.Table
	emptySince map[string]time.Time // when each group last became empty, for retention
	persist    []offsets.KV         // group records to write before the replies go out
	persisted  []string             // the groups whose records are in persist
	replies    []pendingReply
	timer      *time.Timer
	// Transactions' offsets (txn_offsets.go): pending per producer until its marker, and
	// the sequence of each producer's next transactional batch here.
	txnOffsets map[int64][]offsets.Record
	txnSeqs    map[int64]txnSeq
	replaying  offsets.BatchInfo // the batch whose records load is replaying
	// eventSpan is the span of the request whose event runs, nil for a timer's.
	eventSpan trace.Span
	// rebalances are the open spans of classic groups' rebalances (traceRebalances).
	rebalances map[string]trace.Span
}

func newShard(c *Coordinator, index int32) *shard {
	return &shard{
		c:          c,
		index:      index,
		inbox:      make(chan func(), 64),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		classic:    make(map[string]*classic.Group),
		consumer:   make(map[string]*consumer.Group),
		table:      offsets.NewTable(),
		emptySince: make(map[string]time.Time),
		txnOffsets: make(map[int64][]offsets.Record),
		txnSeqs:    make(map[int64]txnSeq),
		rebalances: make(map[string]trace.Span),
	}
}

func (s *shard) ready() bool { return s.loaded.Load() }

// run replays the partition, then serves events until closed.
func (s *shard) run() {
	defer close(s.done)
	if !s.load() {
		return
	}
	s.loaded.Store(true)
	s.timer = time.NewTimer(time.Hour)
	defer s.timer.Stop()
	retention := time.NewTicker(s.c.cfg.RetentionCheckInterval)
	defer retention.Stop()
	s.rearm()
	for {
		select {
		case <-s.stop:
			return
		case fn := <-s.inbox:
			s.safely(fn)
		case <-s.timer.C:
			s.tick(time.Now())
		case <-retention.C:
			s.expire(time.Now())
		}
		s.flush()
		s.traceRebalances(time.Now())
		s.eventSpan = nil
		s.rearm()
	}
}

// safely runs one event; a bug that panics loses that request's answer and is
// logged, rather than taking every group of the process down with it.
func (s *shard) safely(fn func()) {
	defer func() {
		if p := recover(); p != nil {
			s.c.logger.Error("coordinator event panicked; its request gets no answer", "partition", s.index, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// pendingReply is an answer held until the event's group records are written: send
// delivers it, or failed (when set) delivers the answer for a failed write instead.
type pendingReply struct {
	send, failed func()
}

// do runs fn on the shard's goroutine and waits for the value fn hands to reply,
// which may come in a later event (a JoinGroup waits for its rebalance).
func do[T any](ctx context.Context, s *shard, fn func(reply func(T))) (T, error) {
	return doOr(ctx, s, nil, fn)
}

// doOr is do for requests whose answer must not claim a state that was not stored:
// if the group records of the event that answers them cannot be written, they get
// onWriteFailure() instead (Kafka answers SyncGroup COORDINATOR_NOT_AVAILABLE then).
func doOr[T any](ctx context.Context, s *shard, onWriteFailure func() T, fn func(reply func(T))) (T, error) {
	ch := make(chan T, 1)
	span := trace.SpanFromContext(ctx)
	reply := func(v T) {
		r := pendingReply{send: func() { ch <- v }}
		if onWriteFailure != nil {
			r.failed = func() { ch <- onWriteFailure() }
		}
		s.replies = append(s.replies, r)
	}
	var zero T
	select {
	case s.inbox <- func() { s.eventSpan = span; fn(reply) }:
	case <-s.done:
		return zero, errNotCoordinator
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case v := <-ch:
		return v, nil
	case <-s.done:
		return zero, errNotCoordinator
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

func (s *shard) close() {
	close(s.stop)
	<-s.done
}

// load replays every record of the partition up to its high watermark.
func (s *shard) load() bool {
	started := time.Now()
	var offset int64
	records := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		batches, highWatermark, err := s.c.log.Read(ctx, s.index, offset, 1<<20)
		cancel()
		if err == nil {
			var next int64
			next, err = offsets.DecodeBatches(batches, s.replayBatch, func(_ int64, r offsets.Record) {
				s.replay(r)
				records++
			})
			if next > offset {
				offset = next
			}
		}
		if err != nil {
			s.c.logger.Warn("loading __consumer_offsets partition failed; retrying", "partition", s.index, "offset", offset, "err", err)
			if !s.sleep(time.Second) {
				return false
			}
			continue
		}
		if offset >= highWatermark {
			break
		}
	}
	s.c.logger.Debug("loaded consumer groups", "partition", s.index, "records", records,
		"groups", len(s.classic), "took", time.Since(started).Round(time.Millisecond))
	return true
}

// replay applies one stored record.
func (s *shard) replay(r offsets.Record) {
	switch {
	case r.IsOffset && s.replaying.Transactional:
		s.txnOffsets[s.replaying.ProducerID] = append(s.txnOffsets[s.replaying.ProducerID], r)
	case r.IsOffset:
		s.table.Apply(r)
	case r.IsGroup && r.Metadata == nil:
		delete(s.classic, r.Group)
	case r.IsGroup:
		g := classic.Restore(r.Group, s.c.cfg.Classic, *r.Metadata, time.Now())
		s.adoptClassic(r.Group, g)
	}
}

func (s *shard) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	}
}

// flush writes the group records the last event produced, then sends its replies,
// so a member never hears of a generation that a restart could forget.
func (s *shard) flush() {
	failed := false
	if len(s.persist) > 0 {
		if err := s.write(s.eventParent(), s.persist); err != nil {
			failed = true
			s.c.logger.Error("writing group metadata to __consumer_offsets failed; the groups rebalance and members retry", "partition", s.index, "err", err)
			for _, id := range s.persisted {
				if g, ok := s.classic[id]; ok {
					g.StoreFailed(time.Now())
				}
			}
		}
		s.persist, s.persisted = nil, nil
	}
	replies := s.replies
	s.replies = nil
	for _, r := range replies {
		if failed && r.failed != nil {
			r.failed()
		} else {
			r.send()
		}
	}
}

// write appends records to the partition with acks=all, in a span under parent when
// that is recorded. The write is not the request's to cancel: it may be an event's
// that other members wait for.
func (s *shard) write(parent trace.Span, kvs []offsets.KV) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx, span := s.startWrite(ctx, parent, len(kvs))
	err := s.c.log.Append(ctx, s.index, offsets.Batch(kvs, time.Now()))
	if err != nil {
		err = fmt.Errorf("append to %s-%d: %w", OffsetsTopic, s.index, err)
	}
	endWrite(span, err)
	return err
}

// tick lets every group act on timeouts that have passed.
func (s *shard) tick(now time.Time) {
	for _, g := range s.classic {
		if d, ok := g.NextDeadline(); ok && !d.After(now) {
			g.Tick(now)
		}
	}
	for _, g := range s.consumer {
		if d, ok := g.NextDeadline(); ok && !d.After(now) {
			g.Tick(now)
		}
	}
	s.noteEmpty(now)
}

// rearm sets the timer to the earliest group deadline.
func (s *shard) rearm() {
	var next time.Time
	consider := func(d time.Time, ok bool) {
		if ok && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	for _, g := range s.classic {
		consider(g.NextDeadline())
	}
	for _, g := range s.consumer {
		consider(g.NextDeadline())
	}
	wait := time.Hour
	if !next.IsZero() {
		wait = max(time.Until(next), 0)
	}
	if !s.timer.Stop() {
		select {
		case <-s.timer.C:
		default:
		}
	}
	s.timer.Reset(wait)
}

// noteEmpty remembers when groups became empty, for offset retention (KIP-211).
func (s *shard) noteEmpty(now time.Time) {
	for id, g := range s.classic {
		s.trackEmpty(id, g.State() == "Empty", now)
	}
	for id, g := range s.consumer {
		s.trackEmpty(id, g.Empty(), now)
	}
}

func (s *shard) trackEmpty(group string, empty bool, now time.Time) {
	_, known := s.emptySince[group]
	switch {
	case empty && !known:
		s.emptySince[group] = now
	case !empty && known:
		delete(s.emptySince, group)
	}
}

// expire tombstones offsets past retention, then removes empty groups left with no
// offsets, as Kafka's periodic group metadata cleanup does.
func (s *shard) expire(now time.Time) {
	s.noteEmpty(now)
	s.expireOffsets(now)
	s.removeEmptyGroups()
}

func (s *shard) expireOffsets(now time.Time) {
	var kvs []offsets.KV
	var expired []offsets.Record
	for _, group := range s.table.Groups() {
		in := offsets.ExpiryInput{Group: group, Empty: s.groupEmpty(group), EmptySince: s.emptySince[group]}
		if !in.Empty {
			subscribed, known := s.subscribedFunc(group)
			if !known {
				continue // a rebalancing or non-consumer group: expire nothing, as Kafka
			}
			in.Subscribed = subscribed
		}
		for _, tp := range s.table.Expired(now, s.c.cfg.OffsetsRetention, in) {
			key, value := offsets.OffsetTombstone(group, tp.Topic, tp.Partition)
			kvs = append(kvs, offsets.KV{Key: key, Value: value})
			expired = append(expired, offsets.Record{Group: group, Topic: tp.Topic, Partition: tp.Partition, IsOffset: true})
		}
	}
	if len(kvs) == 0 {
		return
	}
	if err := s.write(noSpan, kvs); err != nil {
		s.c.logger.Warn("expiring committed offsets failed; will retry", "partition", s.index, "err", err)
		return
	}
	for _, r := range expired {
		s.table.Apply(r)
	}
	s.c.logger.Info("expired committed offsets", "partition", s.index, "offsets", len(expired))
}

// removeEmptyGroups forgets groups with no members and no committed offsets; a
// classic group's metadata gets a tombstone so a replay forgets it too.
func (s *shard) removeEmptyGroups() {
	var kvs []offsets.KV
	var gone []string
	for id, g := range s.classic {
		if st := g.State(); (st == "Empty" || st == "Dead") && len(s.table.Group(id)) == 0 {
			key, value := offsets.GroupTombstone(id)
			kvs = append(kvs, offsets.KV{Key: key, Value: value})
			gone = append(gone, id)
		}
	}
	if len(kvs) > 0 {
		if err := s.write(noSpan, kvs); err != nil {
			s.c.logger.Warn("removing empty groups failed; will retry", "partition", s.index, "err", err)
			return
		}
	}
	for _, id := range gone {
		s.classic[id].Delete()
		delete(s.classic, id)
		delete(s.emptySince, id)
	}
	for id, g := range s.consumer {
		if g.Empty() && len(s.table.Group(id)) == 0 {
			delete(s.consumer, id)
			delete(s.emptySince, id)
		}
	}
}

// groupEmpty reports whether a group has no members (or no group object at all).
func (s *shard) groupEmpty(group string) bool {
	if g, ok := s.classic[group]; ok {
		return g.State() == "Empty" || g.State() == "Dead"
	}
	if g, ok := s.consumer[group]; ok {
		return g.Empty()
	}
	return true
}

// subscribedFunc reports which topics an active group consumes, from its members'
// assignments; offsets of other topics may expire (KIP-211). known is false when that
// cannot be told: a classic group that is rebalancing or not of the consumer protocol.
func (s *shard) subscribedFunc(group string) (subscribed func(string) bool, known bool) {
	topics := map[string]bool{}
	if g, ok := s.classic[group]; ok {
		if g.State() != "Stable" || g.ProtocolType() != "consumer" {
			return nil, false
		}
		for _, m := range g.Describe().Members {
			for _, t := range assignedTopics(m.MemberAssignment) {
				topics[t] = true
			}
		}
	}
	if g, ok := s.consumer[group]; ok {
		for _, m := range g.Describe(s.topics()).Members {
			for _, t := range m.Assignment.TopicPartitions {
				topics[t.Topic] = true
			}
		}
	}
	return func(t string) bool { return topics[t] }, true
}

// adoptClassic installs a classic group and routes its durable changes to persist.
func (s *shard) adoptClassic(id string, g *classic.Group) {
	g.Persist = func(v kmsg.GroupMetadataValue) {
		key, value := offsets.GroupMetadataRecord(id, v)
		s.persist = append(s.persist, offsets.KV{Key: key, Value: value})
		s.persisted = append(s.persisted, id)
	}
	s.classic[id] = g
}

var errUnknownGroup = errors.New("unknown group")
