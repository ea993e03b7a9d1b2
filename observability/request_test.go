package observability

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// newRecordedTelemetry returns a Telemetry whose finished spans land in the recorder.
func newRecordedTelemetry(t *testing.T, cfg Config) (*Telemetry, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tel, err := newTelemetry(cfg, withSpanProcessor(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return tel, rec
}

// scrape fetches MetricsHandler in the text format and parses it.
func scrape(t *testing.T, tel *Telemetry) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("GET /metrics = %d: %s", w.Code, w.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return families
}

// find returns the metric in family name whose labels include want.
func find(t *testing.T, families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f, ok := families[name]
	if !ok {
		t.Fatalf("no metric family %q in scrape", name)
	}
	for _, m := range f.GetMetric() {
		if hasLabels(m, want) {
			return m
		}
	}
	t.Fatalf("%s: no series with labels %v among %v", name, want, f.GetMetric())
	return nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestObserveRequestSpan(t *testing.T) {
	tel, rec := newRecordedTelemetry(t, Config{Tier: "proxy", InstanceID: "proxy-1"})
	observe := tel.ObserveRequest("proxy")

	ctx, done := observe(context.Background(), 0, 9) // Produce v9
	if !trace.SpanContextFromContext(ctx).IsValid() {
		t.Fatal("hook's context carries no span")
	}
	done(100, 20, errors.New("boom"))

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1", len(spans))
	}
	s := spans[0]
	if s.Name() != "Produce proxy" {
		t.Errorf("span name = %q, want %q", s.Name(), "Produce proxy")
	}
	if s.SpanKind() != trace.SpanKindServer {
		t.Errorf("span kind = %v, want server", s.SpanKind())
	}
	if s.Status().Code != codes.Error || s.Status().Description != "boom" {
		t.Errorf("status = %+v, want error \"boom\"", s.Status())
	}
	wantAttrs := map[attribute.Key]attribute.Value{
		APIKeyAttr:        attribute.IntValue(0),
		APINameAttr:       attribute.StringValue("Produce"),
		APIVersionAttr:    attribute.IntValue(9),
		TierAttr:          attribute.StringValue("proxy"),
		RequestBytesAttr:  attribute.IntValue(100),
		ResponseBytesAttr: attribute.IntValue(20),
	}
	got := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		got[kv.Key] = kv.Value
	}
	for k, v := range wantAttrs {
		if got[k] != v {
			t.Errorf("attribute %s = %v, want %v", k, got[k].Emit(), v.Emit())
		}
	}
	if v, _ := s.Resource().Set().Value("service.instance.id"); v.AsString() != "proxy-1" {
		t.Errorf("resource service.instance.id = %q, want proxy-1", v.AsString())
	}
}

// A request that arrives inside a traced context (e.g. a proxy forwarding to a node in
// the same process) becomes a child of that span.
func TestObserveRequestSpanFollowsParent(t *testing.T) {
	tel, rec := newRecordedTelemetry(t, Config{Tier: "dev"})
	parentCtx, parent := tel.Tracer("test").Start(context.Background(), "parent")
	_, done := tel.ObserveRequest("node")(parentCtx, 1, 16)
	done(10, 10, nil)
	parent.End()

	ended := rec.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans ended, want 2", len(ended))
	}
	child := ended[0]
	if child.Name() != "Fetch node" {
		t.Fatalf("first ended span = %q, want %q", child.Name(), "Fetch node")
	}
	if child.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("parent = %v, want %v", child.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	if child.Status().Code != codes.Unset {
		t.Errorf("status = %v, want unset for a request without error", child.Status().Code)
	}
}

func TestObserveRequestMetrics(t *testing.T) {
	tel, _ := newRecordedTelemetry(t, Config{Tier: "proxy"})
	observe := tel.ObserveRequest("proxy")
	for _, r := range []struct {
		key     int16
		in, out int
		err     error
	}{
		{key: 0, in: 100, out: 20},
		{key: 0, in: 50, out: 10, err: errors.New("boom")},
		{key: 3, in: 30, out: 300},
	} {
		_, done := observe(context.Background(), r.key, 1)
		done(r.in, r.out, r.err)
	}
	families := scrape(t, tel)

	counter := func(name string, labels map[string]string) float64 {
		return find(t, families, name, labels).GetCounter().GetValue()
	}
	checks := []struct {
		name   string
		labels map[string]string
		got    float64
		want   float64
	}{
		{"strait_requests_total", map[string]string{"api": "Produce", "tier": "proxy", "outcome": "ok"}, 0, 1},
		{"strait_requests_total", map[string]string{"api": "Produce", "tier": "proxy", "outcome": "error"}, 0, 1},
		{"strait_requests_total", map[string]string{"api": "Metadata", "tier": "proxy", "outcome": "ok"}, 0, 1},
		{"strait_bytes_received_total", map[string]string{"tier": "proxy"}, 0, 180},
		{"strait_bytes_sent_total", map[string]string{"tier": "proxy"}, 0, 330},
	}
	for _, c := range checks {
		if got := counter(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	h := find(t, families, "strait_request_duration_seconds", map[string]string{"api": "Produce", "tier": "proxy"}).GetHistogram()
	if h.GetSampleCount() != 2 {
		t.Errorf("Produce duration count = %d, want 2", h.GetSampleCount())
	}
	if n := len(h.GetBucket()); n != len(durationBuckets)+1 {
		t.Fatalf("duration has %d buckets, want %d and +Inf", n, len(durationBuckets))
	}
	for i, b := range durationBuckets { // the scrape adds +Inf after these
		if got := h.GetBucket()[i].GetUpperBound(); got != b {
			t.Errorf("duration bucket %d bound = %v, want %v (seconds)", i, got, b)
		}
	}
}

// Unknown API keys share one label value, so junk keys cannot create series without end.
func TestObserveRequestUnknownKeyIsOneSeries(t *testing.T) {
	tel, _ := newRecordedTelemetry(t, Config{})
	observe := tel.ObserveRequest("proxy")
	for _, key := range []int16{-1, 999, 31000} {
		_, done := observe(context.Background(), key, 0)
		done(1, 1, nil)
	}
	m := find(t, scrape(t, tel), "strait_requests_total", map[string]string{"api": "Unknown"})
	if got := m.GetCounter().GetValue(); got != 3 {
		t.Errorf("Unknown requests = %v, want 3", got)
	}
}

func TestNewRejectsUnknownTier(t *testing.T) {
	if _, err := New(Config{Tier: "broker"}); err == nil {
		t.Error("New accepted tier \"broker\"")
	}
}

// A request forwarded from another process continues that process's trace: its span is
// a child of the origin's traceparent, names the real client, hands its own
// traceparent on, and log lines written under it name the client too.
func TestObserveRequestFromOrigin(t *testing.T) {
	tel, rec := newRecordedTelemetry(t, Config{Tier: "node"})
	upstreamCtx, upstream := tel.Tracer("proxy").Start(context.Background(), "Fetch proxy")
	upstream.End()
	origin := RequestOrigin{ClientID: "consumer-1", ClientAddr: "192.0.2.7:51000", TraceParent: TraceParent(upstreamCtx)}
	if origin.TraceParent == "" {
		t.Fatal("no traceparent for a valid span")
	}

	ctx, done := tel.ObserveRequestFrom("node")(context.Background(), 1, 12, origin)
	line := logJSON(t, func(l *slog.Logger) { l.InfoContext(ctx, "serving") })
	forwarded := TraceParent(ctx)
	done(10, 20, nil)

	span := rec.Ended()[len(rec.Ended())-1]
	if span.Parent().SpanID() != upstream.SpanContext().SpanID() || span.SpanContext().TraceID() != upstream.SpanContext().TraceID() {
		t.Errorf("span %v has parent %v, want a child of %v", span.SpanContext(), span.Parent(), upstream.SpanContext())
	}
	if !span.Parent().IsRemote() {
		t.Error("the parent from another process is not marked remote")
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range span.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	if attrs[ClientIDAttr].AsString() != "consumer-1" || attrs[ClientAddrAttr].AsString() != "192.0.2.7" || attrs[ClientPortAttr].AsInt64() != 51000 {
		t.Errorf("span attributes %v do not name the client", span.Attributes())
	}
	if want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"; forwarded != want {
		t.Errorf("traceparent handed on %q, want %q", forwarded, want)
	}
	if line[ClientIDKey] != "consumer-1" || line[ClientAddrKey] != "192.0.2.7:51000" || line[TraceIDKey] != span.SpanContext().TraceID().String() {
		t.Errorf("log line %v does not name the client and the trace", line)
	}
}

// An origin without a traceparent, or with a broken one, starts a trace of its own.
func TestObserveRequestFromBadTraceParent(t *testing.T) {
	tel, rec := newRecordedTelemetry(t, Config{Tier: "node"})
	for _, tp := range []string{"", "not-a-traceparent"} {
		_, done := tel.ObserveRequestFrom("node")(context.Background(), 1, 12, RequestOrigin{ClientID: "c", TraceParent: tp})
		done(1, 1, nil)
		if span := rec.Ended()[len(rec.Ended())-1]; span.Parent().IsValid() {
			t.Errorf("traceparent %q: span has parent %v", tp, span.Parent())
		}
	}
}

// TestTraceParentMatchesW3C: the traceparent formatted and parsed directly on the request
// path is the one OpenTelemetry's W3C propagator writes and reads.
func TestTraceParentMatchesW3C(t *testing.T) {
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled} {
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
			SpanID:  trace.SpanID{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2}, TraceFlags: flags,
		})
		ctx := trace.ContextWithSpanContext(context.Background(), sc)
		carrier := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, carrier)
		if got := TraceParent(ctx); got != carrier.Get("traceparent") {
			t.Fatalf("TraceParent = %q, the W3C propagator writes %q", got, carrier.Get("traceparent"))
		}
		parsed, ok := parseTraceParent(TraceParent(ctx))
		if !ok || parsed.TraceID() != sc.TraceID() || parsed.SpanID() != sc.SpanID() || parsed.TraceFlags() != flags || !parsed.IsRemote() {
			t.Fatalf("parseTraceParent(%q) = %v, %v", TraceParent(ctx), parsed, ok)
		}
	}
	for _, bad := range []string{"", "00-zz", "01-0102030405060708090a0b0c0d0e0f10-0a0b0c0d0e0f0102-01",
		"00-00000000000000000000000000000000-0a0b0c0d0e0f0102-01"} {
		if _, ok := parseTraceParent(bad); ok {
			t.Errorf("parseTraceParent(%q) accepted it", bad)
		}
	}
}
