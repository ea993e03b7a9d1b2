package node

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/observability"
)

// Spans of a node. A request's own span is the Observe hook's; under it, when the
// request is traced, a produce gets a span per partition for its append and for its
// acks=all wait, which links to the follower fetches that moved the high watermark past
// the batch, and a fetch gets a span per read of its partitions. A follower's fetcher
// starts a root span per fetch from its leader (Config.Tracer), whose context the fetch
// carries, so the leader's span of that fetch is its child and a wait can link to it.

// Span attributes of a node's spans.
const (
	recordsBytesAttr = "kafka.records.bytes"
	baseOffsetAttr   = "kafka.offset.base"
	leaderAttr       = "strait.leader.id"
	passesAttr       = "strait.fetch.passes"
	sessionAttr      = "kafka.fetch.session_id"
)

// startPartitionSpan starts a span about one partition under the request's span, when
// that is traced.
func startPartitionSpan(ctx context.Context, name, topic string, index int32) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	ctx, span := observability.StartChild(ctx, name+" "+topic+"-"+strconv.Itoa(int(index)))
	span.SetAttributes(
		attribute.String(observability.DestinationAttr, topic),
		attribute.String(observability.PartitionIDAttr, strconv.Itoa(int(index))),
	)
	return ctx, span
}

// endWithError marks span failed by err, if any; the caller ends it.
func endWithError(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

// startReplicaFetch starts the span of one fetch from a leader, and makes it the parent
// the fetch names. With no tracer (tracing off) it does nothing.
func (s *Server) startReplicaFetch(ctx context.Context, leader int32, partitions int, sessionID int32) (context.Context, trace.Span) {
	if s.cfg.Tracer == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	ctx, span := s.cfg.Tracer.Start(ctx, fmt.Sprintf("replica fetch from %d", leader), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String(observability.RPCSystemAttr, "kafka"),
			attribute.String(observability.RPCMethodAttr, "Fetch"),
			attribute.Int(leaderAttr, int(leader)),
			attribute.Int(observability.PartitionsAttr, partitions),
			attribute.Int(sessionAttr, int(sessionID)),
		))
	if !span.SpanContext().IsValid() {
		return ctx, span
	}
	return wire.WithOrigin(ctx, wire.Origin{TraceParent: observability.TraceParent(ctx)}), span
}

// traceRead records, under a traced fetch, the read that answers it: one span from
// started, naming how many passes the long poll made (the earlier ones found too little
// to answer) and what the last found.
func traceRead(ctx context.Context, started time.Time, passes int, f *fetchRead) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	partitions := 0
	for _, t := range f.resp.Topics {
		partitions += len(t.Partitions)
	}
	_, span := observability.StartChild(ctx, "read", trace.WithTimestamp(started), trace.WithAttributes(
		attribute.Int(passesAttr, passes),
		attribute.Int(observability.PartitionsAttr, partitions),
		attribute.Int(recordsBytesAttr, f.size),
	))
	span.End()
}

// commitWaiter is a traced acks=all produce waiting for the high watermark to pass
// offset; the follower fetches that report having gone past it are linked to its span.
type commitWaiter struct {
	offset int64
	links  []trace.Link
	linked []int32 // the followers linked, one link each
}

// fetchedPast links the waiter to the fetch of follower described by fetch, if that
// fetch reports the follower past the waited offset for the first time.
func (w *commitWaiter) fetchedPast(follower int32, fetchOffset int64, fetch trace.SpanContext) {
	if fetchOffset <= w.offset || !fetch.IsValid() {
		return
	}
	for _, id := range w.linked {
		if id == follower {
			return
		}
	}
	w.linked = append(w.linked, follower)
	w.links = append(w.links, trace.Link{SpanContext: fetch, Attributes: []attribute.KeyValue{attribute.Int(followerAttr, int(follower))}})
}

const followerAttr = "strait.follower.id"
