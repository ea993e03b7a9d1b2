package observability

import (
	"context"
	"testing"
)

// With tracing off, observing a request allocates what its record, contexts and
// measurements need, and no more than it did before spans could be exported (12 then).
func TestObserveRequestAllocsWithTracingOff(t *testing.T) {
	tel, err := New(Config{Tier: "proxy", ClientIDs: ClientIDLabels{Max: 10}})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	observe := tel.ObserveRequestFrom("proxy")
	origin := RequestOrigin{ClientID: "producer", ClientAddr: "192.0.2.1:5000"}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		rctx, done := observe(ctx, 0, 9, origin)
		AnnotateRequest(rctx, RequestAnswer{Topic: "t", Topics: 1, Partitions: 1})
		done(100, 50, nil)
	})
	if allocs > 9 {
		t.Errorf("observing a request with tracing off allocates %v times; want at most 9 (12 before request metrics were cached per client)", allocs)
	}
	t.Logf("%v allocations per request", allocs)
}
