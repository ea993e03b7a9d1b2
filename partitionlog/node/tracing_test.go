package node

import (
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// A traced acks=all wait links to the first fetch of each follower that reports it
// past the waited offset: the fetch that moved the high watermark for that follower.
func TestCommitWaiterLinksFirstFetchPast(t *testing.T) {
	fetch := func(b byte) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{b}, TraceFlags: trace.FlagsSampled})
	}
	w := &commitWaiter{offset: 10}
	w.fetchedPast(2, 10, fetch(1))            // at the batch's last offset: not past it yet
	w.fetchedPast(2, 11, fetch(2))            // past: linked
	w.fetchedPast(2, 12, fetch(3))            // the same follower again: already linked
	w.fetchedPast(3, 11, trace.SpanContext{}) // an untraced fetch: nothing to link
	w.fetchedPast(3, 15, fetch(4))            // the other follower: linked
	var got []byte
	for _, l := range w.links {
		got = append(got, l.SpanContext.SpanID()[0])
	}
	if len(got) != 2 || got[0] != 2 || got[1] != 4 {
		t.Fatalf("linked fetches %v, want [2 4]", got)
	}
}
