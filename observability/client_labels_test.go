package observability

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The client_id label names at most Max ids, the first seen, or exactly the allowed
// ones; the rest are "other", and a client without an id is "none".
func TestClientIDLabels(t *testing.T) {
	first := newClientLabels(ClientIDLabels{Max: 2})
	for _, c := range []struct{ id, want string }{
		{"a", "a"}, {"b", "b"}, {"c", "other"}, {"a", "a"}, {"", "none"},
	} {
		if got := first.label(c.id); got != c.want {
			t.Errorf("first two: label(%q) = %q, want %q", c.id, got, c.want)
		}
	}
	allowed := newClientLabels(ClientIDLabels{Allow: []string{"billing"}, Max: 100})
	for _, c := range []struct{ id, want string }{{"billing", "billing"}, {"a", "other"}} {
		if got := allowed.label(c.id); got != c.want {
			t.Errorf("allowed: label(%q) = %q, want %q", c.id, got, c.want)
		}
	}
}

// Request metrics carry the bounded client id, and an answer's Kafka error counts the
// request as an error, under its code's name.
func TestObserveRequestClientAndAnswerError(t *testing.T) {
	tel, rec := newRecordedTelemetry(t, Config{Tier: "proxy", ClientIDs: ClientIDLabels{Max: 1}})
	observe := tel.ObserveRequestFrom("proxy")
	for i := range 3 {
		ctx, done := observe(context.Background(), 0, 9, RequestOrigin{ClientID: fmt.Sprint("producer-", i)})
		if i == 0 {
			AnnotateRequest(ctx, RequestAnswer{Topic: "orders", Topics: 1, Partitions: 1, ErrorCode: kerr.NotLeaderForPartition.Code})
		}
		done(10, 10, nil)
	}
	families := scrape(t, tel)
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"api": "Produce", "client_id": "producer-0", "outcome": "error"}, 1},
		{map[string]string{"api": "Produce", "client_id": "other", "outcome": "ok"}, 2},
	} {
		if got := find(t, families, "strait_requests_total", c.labels).GetCounter().GetValue(); got != c.want {
			t.Errorf("strait_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	errs := find(t, families, "strait_request_errors_total", map[string]string{"api": "Produce", "error_code": "NOT_LEADER_FOR_PARTITION"})
	if got := errs.GetCounter().GetValue(); got != 1 {
		t.Errorf("strait_request_errors_total = %v, want 1", got)
	}
	span := rec.Ended()[0]
	attrs := map[string]string{}
	for _, kv := range span.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs[DestinationAttr] != "orders" || attrs[ErrorTypeAttr] != "NOT_LEADER_FOR_PARTITION" {
		t.Errorf("span attributes %v: want destination orders and error.type NOT_LEADER_FOR_PARTITION", attrs)
	}
}
