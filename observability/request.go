package observability

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Span attribute keys for a Kafka request.
const (
	APIKeyAttr        = "kafka.api.key"
	APINameAttr       = "kafka.api.name"
	APIVersionAttr    = "kafka.api.version"
	RequestBytesAttr  = "kafka.request.bytes"
	ResponseBytesAttr = "kafka.response.bytes"
	// The client a request comes from, as OpenTelemetry's semantic conventions name it.
	ClientIDAttr   = "messaging.client.id"
	ClientAddrAttr = "client.address"
	ClientPortAttr = "client.port"
)

// RequestOrigin is the client a request comes from: the one on the connection, or the
// real client behind a proxy. cmd/strait fills it from internal/wire's Origin.
type RequestOrigin struct {
	ClientID    string
	ClientAddr  string // host:port
	TraceParent string // W3C traceparent of the caller's span; "" when there is none
}

// Metric label keys. They are short because they are Prometheus labels first.
const (
	apiLabel     = "api"
	tierLabel    = "tier"
	outcomeLabel = "outcome"
)

// durationBuckets, in seconds, span a cached Metadata answer (~100µs) to a long-poll
// Fetch or an acks=all Produce waiting on a slow follower (tens of seconds). The SDK's
// default buckets are meant for milliseconds and would put every request in the first.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// requestInstruments are the instruments ObserveRequest records into, created once per
// Telemetry.
type requestInstruments struct {
	requests      metric.Int64Counter
	duration      metric.Float64Histogram
	bytesReceived metric.Int64Counter
	bytesSent     metric.Int64Counter
}

func newRequestInstruments(m metric.Meter) (requestInstruments, error) {
	var ri requestInstruments
	var err error
	if ri.requests, err = m.Int64Counter("strait.requests",
		metric.WithDescription("Kafka requests handled, by API, tier and outcome."),
		metric.WithUnit("{request}")); err != nil {
		return ri, fmt.Errorf("observability: create strait.requests: %w", err)
	}
	if ri.duration, err = m.Float64Histogram("strait.request.duration",
		metric.WithDescription("Time from a decoded Kafka request to its response being handed back."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		return ri, fmt.Errorf("observability: create strait.request.duration: %w", err)
	}
	if ri.bytesReceived, err = m.Int64Counter("strait.bytes.received",
		metric.WithDescription("Kafka request bytes received."),
		metric.WithUnit("By")); err != nil {
		return ri, fmt.Errorf("observability: create strait.bytes.received: %w", err)
	}
	if ri.bytesSent, err = m.Int64Counter("strait.bytes.sent",
		metric.WithDescription("Kafka response bytes sent."),
		metric.WithUnit("By")); err != nil {
		return ri, fmt.Errorf("observability: create strait.bytes.sent: %w", err)
	}
	return ri, nil
}

// ObserveRequest returns a hook for internal/wire's Server.Observe. For each Kafka
// request it starts a server span named "<ApiName> <tier>" (e.g. "Produce proxy") and
// returns a func that, when the request is done, ends the span (status error if err is
// not nil) and records strait.requests, strait.request.duration, strait.bytes.received
// and strait.bytes.sent.
//
// The api label is kmsg.NameForKey, which is "Unknown" for any key it does not know, so a
// client sending made-up keys cannot grow the number of series.
func (t *Telemetry) ObserveRequest(tier string) func(ctx context.Context, key, version int16) (context.Context, func(bytesIn, bytesOut int, err error)) {
	observe := t.ObserveRequestFrom(tier)
	return func(ctx context.Context, key, version int16) (context.Context, func(int, int, error)) {
		return observe(ctx, key, version, RequestOrigin{})
	}
}

// ObserveRequestFrom is ObserveRequest for requests whose origin is known. The span is
// a child of the origin's traceparent (unless ctx carries a span already) and names the
// client's id and address, which log lines written with the returned context carry
// too. No metric is labelled by client: clients choose their ids, and each would make
// new series.
func (t *Telemetry) ObserveRequestFrom(tier string) func(ctx context.Context, key, version int16, origin RequestOrigin) (context.Context, func(bytesIn, bytesOut int, err error)) {
	tracer := t.Tracer(instrumentationName)
	tierOnly := metric.WithAttributeSet(attribute.NewSet(attribute.String(tierLabel, tier)))
	var perAPI sync.Map // API key -> *apiMeasurements, built once per API
	return func(ctx context.Context, key, version int16, origin RequestOrigin) (context.Context, func(int, int, error)) {
		r := &observedRequest{inst: &t.requests, tier: tier, tierOnly: tierOnly, start: time.Now()}
		r.api = kmsg.NameForKey(key)
		if m, ok := perAPI.Load(key); ok {
			r.measure = m.(*apiMeasurements)
		} else {
			m, _ := perAPI.LoadOrStore(key, newAPIMeasurements(r.api, tier))
			r.measure = m.(*apiMeasurements)
		}
		r.ctx, r.span = tracer.Start(withRemoteParent(ctx, origin.TraceParent), r.api+" "+tier, trace.WithSpanKind(trace.SpanKindServer))
		if r.span.IsRecording() { // attributes cost allocations; spans nobody records need none
			r.span.SetAttributes(append([]attribute.KeyValue{
				attribute.Int(APIKeyAttr, int(key)),
				attribute.String(APINameAttr, r.api),
				attribute.Int(APIVersionAttr, int(version)),
				attribute.String(TierAttr, tier),
			}, clientAttributes(origin)...)...)
		}
		r.ctx = withClient(r.ctx, origin)
		return r.ctx, r.finish
	}
}

// clientAttributes name the client of a request on its span.
func clientAttributes(o RequestOrigin) []attribute.KeyValue {
	var attrs []attribute.KeyValue
	if o.ClientID != "" {
		attrs = append(attrs, attribute.String(ClientIDAttr, o.ClientID))
	}
	if host, port, err := net.SplitHostPort(o.ClientAddr); err == nil {
		attrs = append(attrs, attribute.String(ClientAddrAttr, host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int(ClientPortAttr, p))
		}
	} else if o.ClientAddr != "" {
		attrs = append(attrs, attribute.String(ClientAddrAttr, o.ClientAddr))
	}
	return attrs
}

// traceContext reads and writes W3C traceparent headers of versions other than 00.
var traceContext propagation.TraceContext

// withRemoteParent makes the span of traceParent, from another process, the parent of
// the spans started from ctx, unless ctx has a span of its own or traceParent is not
// valid.
func withRemoteParent(ctx context.Context, traceParent string) context.Context {
	if traceParent == "" || trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	if sc, ok := parseTraceParent(traceParent); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": traceParent})
}

// TraceParent returns the W3C traceparent of the span ctx carries, "" if it carries
// none: what a request sent on from within it names as its parent. It is made on every
// forwarded request, so it is formatted directly: "00-<trace id>-<span id>-<flags>".
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, tid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, []byte{byte(sc.TraceFlags() & trace.FlagsSampled)})
	return string(b)
}

// parseTraceParent reads a version-00 W3C traceparent as a remote span context.
func parseTraceParent(s string) (trace.SpanContext, bool) {
	if len(s) != 55 || s[:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return trace.SpanContext{}, false
	}
	tid, err := trace.TraceIDFromHex(s[3:35])
	if err != nil {
		return trace.SpanContext{}, false
	}
	sid, err := trace.SpanIDFromHex(s[36:52])
	if err != nil {
		return trace.SpanContext{}, false
	}
	var flags [1]byte
	if _, err := hex.Decode(flags[:], []byte(s[53:55])); err != nil {
		return trace.SpanContext{}, false
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]), Remote: true})
	return sc, sc.IsValid()
}

// observedRequest is one request between ObserveRequest's hook and its finish func.
type observedRequest struct {
	inst     *requestInstruments
	measure  *apiMeasurements
	ctx      context.Context // carries span
	span     trace.Span
	api      string
	tier     string
	tierOnly metric.MeasurementOption
	start    time.Time
}

// apiMeasurements are the attribute sets one API's measurements carry, made once:
// building them per request allocated on every request.
type apiMeasurements struct {
	api, ok, failed metric.MeasurementOption
}

func newAPIMeasurements(api, tier string) *apiMeasurements {
	a, t := attribute.String(apiLabel, api), attribute.String(tierLabel, tier)
	return &apiMeasurements{
		api:    metric.WithAttributeSet(attribute.NewSet(a, t)),
		ok:     metric.WithAttributeSet(attribute.NewSet(a, t, attribute.String(outcomeLabel, "ok"))),
		failed: metric.WithAttributeSet(attribute.NewSet(a, t, attribute.String(outcomeLabel, "error"))),
	}
}

// finish ends the request's span and records its metrics. Metrics are recorded with the
// span's context so that exemplars, where enabled, point at the trace.
func (r *observedRequest) finish(bytesIn, bytesOut int, err error) {
	elapsed := time.Since(r.start)
	outcome := "ok"
	if err != nil {
		outcome = "error"
		r.span.RecordError(err)
		r.span.SetStatus(codes.Error, err.Error())
	}
	if r.span.IsRecording() {
		r.span.SetAttributes(
			attribute.Int(RequestBytesAttr, bytesIn),
			attribute.Int(ResponseBytesAttr, bytesOut),
		)
	}
	r.span.End()

	counted := r.measure.ok
	if outcome != "ok" {
		counted = r.measure.failed
	}
	r.inst.requests.Add(r.ctx, 1, counted)
	r.inst.duration.Record(r.ctx, elapsed.Seconds(), r.measure.api)
	r.inst.bytesReceived.Add(r.ctx, int64(bytesIn), r.tierOnly)
	r.inst.bytesSent.Add(r.ctx, int64(bytesOut), r.tierOnly)
}
