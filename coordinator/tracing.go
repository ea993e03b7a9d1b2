package coordinator

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/strait-io/strait/observability"
)

// Spans of the coordinator. Under a traced group request's span (the proxy's), JoinGroup,
// SyncGroup and OffsetCommit get a span of their own, for the wait on the group; the
// __consumer_offsets write that an event makes is a child of that event's span, or of
// the group's rebalance span while one is open. A classic group's rebalance, from
// PreparingRebalance until it is Stable again (or empty), is a span of its own: a child
// of the request that began it, or a root span when a timer did (a member that stopped
// heartbeating, a rebalance timeout), which needs Config.Tracer.

// Span attributes of the coordinator's spans, in the messaging conventions' names.
const (
	groupAttr      = "messaging.consumer.group.name"
	operationAttr  = "messaging.operation.name"
	memberAttr     = "strait.group.member.id"
	generationAttr = "strait.group.generation"
	membersAttr    = "strait.group.members"
	causeAttr      = "strait.group.rebalance.cause"
	recordsAttr    = "kafka.records"
)

// noSpan is a span that records nothing.
var noSpan = trace.SpanFromContext(context.Background())

// startGroupSpan starts the span of one group operation under the request's span, when
// that is traced.
func startGroupSpan(ctx context.Context, op, group string) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noSpan
	}
	return observability.StartChild(ctx, op+" "+group, trace.WithAttributes(
		attribute.String(groupAttr, group),
		attribute.String(operationAttr, op),
	))
}

// endGroupSpan ends a group operation's span with the answer's error code and attrs.
func endGroupSpan(span trace.Span, code int16, attrs ...attribute.KeyValue) {
	if span.IsRecording() {
		span.SetAttributes(attrs...)
		if code != 0 {
			observability.SetAnswerAttributes(span, observability.RequestAnswer{ErrorCode: code})
		}
	}
	span.End()
}

// startWrite starts the span of a write to __consumer_offsets under parent, when that
// is recorded, and returns ctx carrying it for the write.
func (s *shard) startWrite(ctx context.Context, parent trace.Span, records int) (context.Context, trace.Span) {
	if !parent.IsRecording() {
		return ctx, noSpan
	}
	ctx, span := observability.StartChild(trace.ContextWithSpan(ctx, parent), "write "+OffsetsTopic+"-"+strconv.Itoa(int(s.index)),
		trace.WithAttributes(
			attribute.String(observability.DestinationAttr, OffsetsTopic),
			attribute.String(observability.PartitionIDAttr, strconv.Itoa(int(s.index))),
			attribute.Int(recordsAttr, records),
		))
	return ctx, span
}

func endWrite(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// eventParent is the span the current event's writes go under: the rebalance span of
// a group whose records are in the batch, else the request's.
func (s *shard) eventParent() trace.Span {
	for _, id := range s.persisted {
		if span, ok := s.rebalances[id]; ok {
			return span
		}
	}
	if s.eventSpan != nil {
		return s.eventSpan
	}
	return noSpan
}

// eventContext carries the current event's span, so that a log line about the event
// names its trace: the shard's goroutine has no request context of its own.
func (s *shard) eventContext() context.Context {
	if s.eventSpan == nil {
		return context.Background()
	}
	return trace.ContextWithSpan(context.Background(), s.eventSpan)
}

// traceRebalances opens a span for each classic group that began rebalancing in the
// last event and ends the span of each that finished. It runs only with a tracer: a
// pass over the shard's groups is not free.
func (s *shard) traceRebalances(now time.Time) {
	if s.c.tracer == nil {
		return
	}
	for id, g := range s.classic {
		st := g.State()
		rebalancing := st == "PreparingRebalance" || st == "CompletingRebalance"
		span, open := s.rebalances[id]
		switch {
		case rebalancing && !open:
			s.rebalances[id] = s.startRebalance(id, g.Generation(), now)
		case !rebalancing && open:
			span.SetAttributes(
				attribute.Int(generationAttr, int(g.Generation())),
				attribute.Int(membersAttr, len(g.Describe().Members)),
				attribute.String("strait.group.state", st),
			)
			span.End(trace.WithTimestamp(now))
			delete(s.rebalances, id)
		}
	}
	for id, span := range s.rebalances {
		if _, ok := s.classic[id]; !ok { // removed while rebalancing
			span.End(trace.WithTimestamp(now))
			delete(s.rebalances, id)
		}
	}
}

// startRebalance opens the span of a group's rebalance: under the request that began it,
// or as a root when a timer did.
func (s *shard) startRebalance(group string, generation int32, now time.Time) trace.Span {
	ctx, cause := context.Background(), "timer"
	if s.eventSpan != nil && s.eventSpan.IsRecording() {
		ctx, cause = trace.ContextWithSpan(ctx, s.eventSpan), "request"
	}
	_, span := s.c.tracer.Start(ctx, "rebalance "+group, trace.WithTimestamp(now), trace.WithAttributes(
		attribute.String(groupAttr, group),
		attribute.String(operationAttr, "rebalance"),
		attribute.Int("strait.group.previous_generation", int(generation)),
		attribute.String(causeAttr, cause),
	))
	return span
}
