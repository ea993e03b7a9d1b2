package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/observability"
	"github.com/strait-io/strait/routing"
)

// The forwarding engine. Every client request the proxy splits by destination goes
// through forward: it splits the request's parts (partitions) into one piece per
// destination node, sends the pieces at once, and puts each answer in the part's slot
// of the client's response, which the handler laid out in the client's order. Parts
// that fail because the proxy's view of leadership was out of date (the node answered
// NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, UNKNOWN_LEADER_EPOCH or
// UNKNOWN_TOPIC_OR_PARTITION, or could not be reached) are split again on a fresh
// routing view and sent again, until the request's deadline: a leader that dies or
// moves while a request is in flight costs the client latency, not an error.
//
// A part whose piece may have reached its node before the connection failed is sent
// again only if the adapter says that is safe (a read, or an idempotent batch, whose
// sequence makes a second append a duplicate the node recognizes); otherwise it is
// answered REQUEST_TIMED_OUT, as Kafka answers a write whose outcome it cannot tell.
//
// Each API keeps its own file and supplies an adapter: how to start a piece, add a part
// to it, read a node's answers, and read and write an answer's error code. The engine
// owns splitting, sending, retrying and merging, so the APIs cannot drift apart.
//
// An adapter may prefer another node to a part's leader for the first round (Fetch
// prefers an in-sync replica in the client's rack, KIP-392). Whatever that node does
// not serve, whatever the error, is sent to the leader on the next round, at once: the
// routing view is not stale for it, and the client never hears of the detour.

// part is one partition of a client request on its way through the engine: what the
// client asked of it, and where its answer goes in the client's response.
type part[In, Out any] struct {
	topic string
	index int32
	in    In
	out   *Out
	// The last failure, answered if the deadline passes before a retry succeeds.
	lastCode int16
	lastErr  error
	// preferred says this round sends the part to the node its adapter prefers to the
	// leader (preferrer).
	preferred bool
}

// adapter is what one API tells the engine.
type adapter[In, Out any] interface {
	// piece starts the request to one node, carrying the client request's settings.
	piece() kmsg.Request
	// add puts a part into a piece.
	add(piece kmsg.Request, p *part[In, Out])
	// answers calls each with every partition answer in a node's response.
	answers(resp kmsg.Response, each func(topic string, index int32, out *Out))
	// code is an answer's error code.
	code(out *Out) int16
	// fail makes out an answer with code and a message (nil for none).
	fail(out *Out, code int16, msg *string)
	// resendable reports whether p may be sent again after a send that may have
	// reached its node.
	resendable(p *part[In, Out]) bool
}

// roundSender is an adapter that sends each round's pieces its own way (Fetch, which
// long-polls several nodes without letting a quiet one hold up a busy one).
type roundSender interface {
	sendRound(ctx context.Context, p *Proxy, round int, pieces []*piece) []*piece
}

// router is an adapter whose parts are not partitions sent to their leader nodes but
// groups sent to their coordinators (group_forward.go): it says where each goes, and
// which answer codes mean its view of coordinators was out of date.
type router interface {
	route(p *Proxy, snap *routing.Snapshot, key string) (target, error)
	stale(code int16) bool
}

// preferrer is an adapter that may send a part, on the first round only, to a node it
// prefers to the part's leader; ok false sends it to the leader. Router adapters route
// by key and prefer nothing.
type preferrer[In, Out any] interface {
	prefer(p *Proxy, snap *routing.Snapshot, pt *part[In, Out]) (to target, ok bool)
}

// localServer is a router that answers the parts routed to this proxy itself.
type localServer interface {
	serveLocal(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// target is where a piece goes: a node or another proxy by address, or this proxy.
type target struct {
	id    int32
	addr  string
	local bool
}

// piece is one destination's share of a client request, and what came of sending it.
type piece struct {
	to    target
	req   kmsg.Request
	parts int // how many of the request's parts it carries
	round int
	resp  kmsg.Response
	err   error
}

// Backoff between rounds while waiting for a fresh routing view.
const (
	retryBackoffMin = 25 * time.Millisecond
	retryBackoffMax = 500 * time.Millisecond
)

// forward sends parts to their leaders through a, retrying what failed on a stale view
// until deadline, and leaves every part's answer in its slot. The request ctx serves
// learns what was addressed and the first error answered (AnnotateRequest); a traced
// one gets a child span per piece sent, under a span per retry round.
func forward[In, Out any](ctx context.Context, p *Proxy, a adapter[In, Out], parts []*part[In, Out], deadline time.Time) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	defer annotate(ctx, a, parts)
	snap := p.view.Snapshot()
	backoff := retryBackoffMin
	for round := 0; len(parts) > 0; round++ {
		pieces, members, retry := split(p, snap, a, parts, round)
		roundCtx, span := startRound(ctx, round, len(parts))
		sent := p.sendPieces(roundCtx, a, round, pieces)
		span.End()
		for i, pc := range sent {
			retry = append(retry, merge(a, pc, members[i])...)
		}
		if len(retry) == 0 {
			return
		}
		// Parts a preferred node did not serve go to their leaders as the view knows them.
		stale := slices.ContainsFunc(retry, func(pt *part[In, Out]) bool { return !pt.preferred })
		if stale {
			p.viewIsStale()
		}
		if ctx.Err() != nil || time.Until(deadline) < backoff { // out of time, or the client left
			for _, pt := range retry {
				a.fail(pt.out, pt.lastCode, errorMessage(pt.lastErr))
			}
			return
		}
		if stale {
			snap = p.awaitView(ctx, snap, backoff)
			backoff = min(2*backoff, retryBackoffMax)
		}
		parts = retry
		p.logger.DebugContext(ctx, "retrying parts of a request", "round", round+1, "parts", len(parts), "fresh_view", stale)
	}
}

// routeOf is where a part goes this round: where the adapter routes it, the node it
// prefers on the first round, or its partition's leader node.
func routeOf[In, Out any](p *Proxy, snap *routing.Snapshot, a adapter[In, Out], pt *part[In, Out], round int) (target, error) {
	if r, ok := a.(router); ok {
		return r.route(p, snap, pt.topic)
	}
	pt.preferred = false
	if pr, ok := a.(preferrer[In, Out]); ok && round == 0 {
		if to, ok := pr.prefer(p, snap, pt); ok {
			pt.preferred = true
			return to, nil
		}
	}
	node, addr, err := leaderOf(snap, pt.topic, pt.index)
	return target{id: node, addr: addr}, err
}

// split groups parts by destination. Parts without a usable route are answered at once
// when the route can only be wrong (no such topic), and kept for the next round when
// the view may be stale (no live leader).
func split[In, Out any](p *Proxy, snap *routing.Snapshot, a adapter[In, Out], parts []*part[In, Out], round int) ([]*piece, [][]*part[In, Out], []*part[In, Out]) {
	var pieces []*piece
	var members [][]*part[In, Out]
	var retry []*part[In, Out]
	byTarget := map[target]int{}
	for _, pt := range parts {
		to, err := routeOf(p, snap, a, pt, round)
		if err != nil {
			pt.lastCode, pt.lastErr = partitionErrorCode(err), err
			if errors.Is(err, errNoLeader) || errors.Is(err, errNoCoordinator) {
				retry = append(retry, pt)
			} else {
				a.fail(pt.out, pt.lastCode, errorMessage(err))
			}
			continue
		}
		i, ok := byTarget[to]
		if !ok {
			i = len(pieces)
			byTarget[to] = i
			pieces = append(pieces, &piece{to: to, req: a.piece(), round: round})
			members = append(members, nil)
		}
		a.add(pieces[i].req, pt)
		pieces[i].parts++
		members[i] = append(members[i], pt)
	}
	return pieces, members, retry
}

// sendPieces sends one round's pieces, through the adapter's own sender if it has one.
func (p *Proxy) sendPieces(ctx context.Context, a any, round int, pieces []*piece) []*piece {
	if rs, ok := a.(roundSender); ok {
		return rs.sendRound(ctx, p, round, pieces)
	}
	if len(pieces) == 1 { // no goroutine to start and wait for: the common case
		p.sendPiece(ctx, a, pieces[0])
		return pieces
	}
	var wg sync.WaitGroup
	for _, pc := range pieces {
		wg.Go(func() { p.sendPiece(ctx, a, pc) })
	}
	wg.Wait()
	return pieces
}

// sendPiece sends one piece to its destination and records the outcome in it.
func (p *Proxy) sendPiece(ctx context.Context, a any, pc *piece) {
	ctx, span := startPiece(ctx, pc)
	defer endPiece(span, pc)
	if pc.to.local {
		pc.resp, pc.err = a.(localServer).serveLocal(ctx, pc.req)
		return
	}
	pc.resp, pc.err = p.nodes.Do(ctx, pc.to.addr, pc.req)
	if pc.err == nil {
		// A node in this process answers a fetch with file ranges; read them.
		pc.resp, pc.err = wire.Materialize(pc.resp)
	}
	if pc.err == nil {
		return
	}
	level := slog.LevelWarn
	if ctx.Err() != nil {
		level = slog.LevelDebug // the client went away or its request's time ran out
	}
	p.logger.Log(ctx, level, "forwarding failed; retrying on a fresh routing view while the request has time",
		"to", pc.to.id, "addr", pc.to.addr, "api", kmsg.NameForKey(pc.req.Key()), "err", pc.err)
	pc.err = fmt.Errorf("forward %s to %d at %s: %w", kmsg.NameForKey(pc.req.Key()), pc.to.id, pc.to.addr, pc.err)
}

// merge puts a sent piece's answers in its parts' slots and returns the parts to try
// again.
func merge[In, Out any](a adapter[In, Out], pc *piece, parts []*part[In, Out]) []*part[In, Out] {
	var retry []*part[In, Out]
	if pc.err != nil {
		for _, pt := range parts {
			switch {
			case wire.NotSent(pc.err) || a.resendable(pt):
				pt.lastCode, pt.lastErr = kerr.NotLeaderForPartition.Code, pc.err
				retry = append(retry, pt)
			default: // it may have been applied: tell the client we cannot say
				a.fail(pt.out, kerr.RequestTimedOut.Code, errorMessage(fmt.Errorf("%w; the outcome is unknown", pc.err)))
			}
		}
		return retry
	}
	answers := make(map[topicPartition]*Out, len(parts))
	a.answers(pc.resp, func(topic string, index int32, out *Out) {
		answers[topicPartition{topic, index}] = out
	})
	for _, pt := range parts {
		out, ok := answers[topicPartition{pt.topic, pt.index}]
		switch {
		case !ok:
			a.fail(pt.out, kerr.UnknownServerError.Code, kmsg.StringPtr(fmt.Sprintf("%d did not answer for %s-%d", pc.to.id, pt.topic, pt.index)))
		case pt.preferred && a.code(out) != 0: // the leader may serve what the preferred node could not
			pt.lastCode, pt.lastErr = a.code(out), fmt.Errorf("%d, preferred to the leader: %w", pc.to.id, kerr.ErrorForCode(a.code(out)))
			*pt.out = *out
			retry = append(retry, pt)
		case isStale(a, a.code(out)):
			pt.lastCode, pt.lastErr = a.code(out), fmt.Errorf("%d: %w", pc.to.id, kerr.ErrorForCode(a.code(out)))
			*pt.out = *out // answered as is if no retry succeeds
			retry = append(retry, pt)
		default:
			*pt.out = *out
		}
	}
	return retry
}

// isStale reports whether an answer says the part went to the wrong place.
func isStale(a any, code int16) bool {
	if r, ok := a.(router); ok {
		return r.stale(code)
	}
	return staleRoute(code)
}

// staleRoute reports whether a node's answer says the proxy's view of leadership was
// out of date, so the part is worth sending again on a fresh one. FENCED_LEADER_EPOCH
// is not among them: it says the client's epoch is old, which only the client can fix
// (it refreshes its metadata, KIP-320).
func staleRoute(code int16) bool {
	switch code {
	case kerr.NotLeaderForPartition.Code, kerr.LeaderNotAvailable.Code, kerr.UnknownLeaderEpoch.Code, kerr.UnknownTopicOrPartition.Code:
		return true
	}
	return false
}

// awaitView waits for a routing view newer than seen, or for wait, whichever comes
// first, and returns the latest view.
func (p *Proxy) awaitView(ctx context.Context, seen *routing.Snapshot, wait time.Duration) *routing.Snapshot {
	changed := p.view.Changed()
	if cur := p.view.Snapshot(); cur.Version != seen.Version {
		return cur
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-ctx.Done():
	}
	return p.view.Snapshot()
}

// leaderOf finds the node leading a partition in snap, and its address.
func leaderOf(snap *routing.Snapshot, topic string, index int32) (int32, string, error) {
	p, ok := snap.Partition(topic, index)
	if !ok {
		return 0, "", errUnknownTopic
	}
	n, ok := snap.Nodes[p.Leader]
	if !ok {
		return 0, "", fmt.Errorf("%w: %s-%d has leader %d, which is not registered", errNoLeader, topic, index, p.Leader)
	}
	return p.Leader, n.Addr, nil
}

// requestDeadline is when the engine stops retrying a request that allows timeout: a
// little before the client gives up on it, so the client hears the last error rather
// than nothing.
func requestDeadline(timeout time.Duration) time.Time {
	const margin = 500 * time.Millisecond
	return time.Now().Add(max(timeout-margin, margin))
}

// startRound starts the span of a retry round, under which its pieces' spans go; the
// first round's pieces go straight under the request's span.
func startRound(ctx context.Context, round, parts int) (context.Context, trace.Span) {
	if round == 0 {
		return ctx, trace.SpanFromContext(context.Background())
	}
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	ctx, span := observability.StartChild(ctx, "retry round "+strconv.Itoa(round))
	span.SetAttributes(attribute.Int(roundAttr, round), attribute.Int(observability.PartitionsAttr, parts))
	return ctx, span
}

// Span attributes of the engine's spans.
const (
	roundAttr         = "strait.forward.round"
	peerIDAttr        = "strait.peer.id"
	serverAddressAttr = "server.address"
)

// startPiece starts a piece's client span, and makes it the parent the piece's request
// names (the node's span is its child).
func startPiece(ctx context.Context, pc *piece) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() { // untraced: not even the name is made
		return ctx, trace.SpanFromContext(context.Background())
	}
	name := kmsg.NameForKey(pc.req.Key())
	if pc.to.local {
		name += " here"
	} else {
		name += " to " + strconv.Itoa(int(pc.to.id))
	}
	ctx, span := observability.StartChild(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
	span.SetAttributes(
		attribute.String(observability.RPCSystemAttr, "kafka"),
		attribute.String(observability.RPCMethodAttr, kmsg.NameForKey(pc.req.Key())),
		attribute.Int(peerIDAttr, int(pc.to.id)),
		attribute.String(serverAddressAttr, pc.to.addr),
		attribute.Int(observability.PartitionsAttr, pc.parts),
		attribute.Int(roundAttr, pc.round),
	)
	o, _ := wire.OriginFrom(ctx)
	o.TraceParent = observability.TraceParent(ctx)
	return wire.WithOrigin(ctx, o), span
}

func endPiece(span trace.Span, pc *piece) {
	if pc.err != nil {
		span.RecordError(pc.err)
		span.SetStatus(codes.Error, pc.err.Error())
	}
	span.End()
}

// annotate tells the request ctx serves what it addressed and the first error code
// its parts were answered; parts routed by key (groups) name no topic.
func annotate[In, Out any](ctx context.Context, a adapter[In, Out], parts []*part[In, Out]) {
	if len(parts) == 0 {
		return
	}
	ans := observability.RequestAnswer{Partitions: len(parts)}
	if _, byKey := a.(router); !byKey {
		ans.Topic, ans.Topics = parts[0].topic, 1
	}
	for i, pt := range parts {
		if ans.ErrorCode == 0 {
			ans.ErrorCode = a.code(pt.out)
		}
		if ans.Topics > 0 && i > 0 && pt.topic != parts[i-1].topic {
			ans.Topic = ""
			ans.Topics++ // parts of a topic are adjacent: handlers lay them out in request order
		}
	}
	observability.AnnotateRequest(ctx, ans)
}
