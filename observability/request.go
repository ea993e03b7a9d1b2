package observability

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
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
	// What the request addressed and how it was answered (AnnotateRequest), in the
	// messaging and RPC conventions' names where they have one.
	MessagingSystemAttr = "messaging.system"
	RPCSystemAttr       = "rpc.system"
	RPCMethodAttr       = "rpc.method"
	DestinationAttr     = "messaging.destination.name"
	PartitionIDAttr     = "messaging.destination.partition.id"
	PartitionsAttr      = "kafka.partitions"
	TopicsAttr          = "kafka.topics"
	ErrorTypeAttr       = "error.type"
	OperationTypeAttr   = "messaging.operation.type"
	ErrorCodeAttr       = "kafka.error.code"
)

// RequestOrigin is the client a request comes from: the one on the connection, or the
// real client behind a proxy. cmd/strait fills it from internal/wire's Origin.
type RequestOrigin struct {
	ClientID    string
	ClientAddr  string // host:port
	TraceParent string // W3C traceparent of the caller's span; "" when there is none
	// Links are traces the request's records come from (ProduceRecordLinks): its span
	// links to them, and with Tracing.SampleLinkedRecords a sampled one samples it.
	Links []trace.Link
}

// Metric label keys. They are short because they are Prometheus labels first.
const (
	apiLabel       = "api"
	tierLabel      = "tier"
	outcomeLabel   = "outcome"
	clientIDLabel  = "client_id"
	errorCodeLabel = "error_code"
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
	errors        metric.Int64Counter
	duration      metric.Float64Histogram
	bytesReceived metric.Int64Counter
	bytesSent     metric.Int64Counter
}

func newRequestInstruments(m metric.Meter) (requestInstruments, error) {
	var ri requestInstruments
	var err error
	if ri.requests, err = m.Int64Counter("strait.requests",
		metric.WithDescription("Kafka requests handled, by API, tier, client id (bounded: see --metrics-client-ids) and outcome (error: the handler failed or the answer carried a Kafka error code)."),
		metric.WithUnit("{request}")); err != nil {
		return ri, fmt.Errorf("observability: create strait.requests: %w", err)
	}
	if ri.errors, err = m.Int64Counter("strait.request.errors",
		metric.WithDescription("Kafka requests answered with an error, by API, tier and the answer's Kafka error code (the first, where the answer has one per partition)."),
		metric.WithUnit("{request}")); err != nil {
		return ri, fmt.Errorf("observability: create strait.request.errors: %w", err)
	}
	if ri.duration, err = m.Float64Histogram("strait.request.duration",
		metric.WithDescription("Time from a decoded Kafka request to its response being handed back, by API, tier and client id (bounded)."),
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
// a child of the origin's traceparent (unless ctx carries a span already), links to the
// origin's record traces, and names the client's id and address, which log lines
// written with the returned context carry too. Metrics name the client id among the
// first ones seen or allowed (Config.ClientIDs), else "other": clients choose their
// ids, and each would make new series.
func (t *Telemetry) ObserveRequestFrom(tier string) func(ctx context.Context, key, version int16, origin RequestOrigin) (context.Context, func(bytesIn, bytesOut int, err error)) {
	tracer := t.Tracer(instrumentationName)
	tierOnly := metric.WithAttributeSet(attribute.NewSet(attribute.String(tierLabel, tier)))
	var perAPI sync.Map // API key -> *clientMeasurements
	// made once: a slice literal per request would be allocated per request
	serverSpan := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	return func(ctx context.Context, key, version int16, origin RequestOrigin) (context.Context, func(int, int, error)) {
		r := &observedRequest{inst: &t.requests, tier: tier, tierOnly: tierOnly, origin: origin, start: time.Now()}
		r.api = kmsg.NameForKey(key)
		byClient, ok := perAPI.Load(key)
		if !ok {
			byClient, _ = perAPI.LoadOrStore(key, &clientMeasurements{api: r.api, tier: tier, byClient: map[string]*apiMeasurements{}})
		}
		r.measure = byClient.(*clientMeasurements).of(t.clientIDs.label(origin.ClientID))
		opts := serverSpan
		if len(origin.Links) > 0 {
			opts = []trace.SpanStartOption{serverSpan[0], trace.WithLinks(origin.Links...)}
		}
		r.ctx, r.span = tracer.Start(withRemoteParent(ctx, origin.TraceParent), r.api+" "+tier, opts...)
		if r.span.IsRecording() { // attributes cost allocations; spans nobody records need none
			if op, ok := messagingOperations[key]; ok {
				r.span.SetAttributes(attribute.String(OperationTypeAttr, op))
			}
			r.span.SetAttributes(append([]attribute.KeyValue{
				attribute.String(MessagingSystemAttr, "kafka"),
				attribute.String(RPCSystemAttr, "kafka"),
				attribute.String(RPCMethodAttr, r.api),
				attribute.Int(APIKeyAttr, int(key)),
				attribute.String(APINameAttr, r.api),
				attribute.Int(APIVersionAttr, int(version)),
				attribute.String(TierAttr, tier),
			}, clientAttributes(origin)...)...)
		}
		r.ctx = context.WithValue(r.ctx, requestKey{}, r)
		return r.ctx, r.finish
	}
}

// messagingOperations are the messaging conventions' operation types of the APIs that
// move records.
var messagingOperations = map[int16]string{0: "send", 1: "receive"}

// clientMeasurements are one API's measurements by client label. A map under a lock
// rather than a sync.Map keyed by API and client: boxing that key to look it up
// allocated on every request.
type clientMeasurements struct {
	api, tier string
	mu        sync.RWMutex
	byClient  map[string]*apiMeasurements
}

func (c *clientMeasurements) of(client string) *apiMeasurements {
	c.mu.RLock()
	m, ok := c.byClient[client]
	c.mu.RUnlock()
	if ok {
		return m
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok = c.byClient[client]; !ok {
		m = newAPIMeasurements(c.api, c.tier, client)
		c.byClient[client] = m
	}
	return m
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
// The handler's context carries it (requestKey), for log lines and AnnotateRequest.
type observedRequest struct {
	inst     *requestInstruments
	measure  *apiMeasurements
	ctx      context.Context // carries span
	span     trace.Span
	origin   RequestOrigin
	api      string
	tier     string
	tierOnly metric.MeasurementOption
	start    time.Time
	// errorCode is the Kafka error code of the answer, from AnnotateRequest.
	errorCode int16
}

type requestKey struct{}

// requestOf returns the request ctx serves, nil if none.
func requestOf(ctx context.Context) *observedRequest {
	r, _ := ctx.Value(requestKey{}).(*observedRequest)
	return r
}

// apiMeasurements are the attribute sets one API's measurements carry for one client
// label, made once: building them per request allocated on every request.
type apiMeasurements struct {
	api, tier   string
	perAPI      metric.MeasurementOption // api, tier, client
	ok, failed  metric.MeasurementOption // and outcome
	errorsByKey sync.Map                 // Kafka error code -> metric.MeasurementOption
}

func newAPIMeasurements(api, tier, client string) *apiMeasurements {
	a, t, c := attribute.String(apiLabel, api), attribute.String(tierLabel, tier), attribute.String(clientIDLabel, client)
	return &apiMeasurements{
		api:    api,
		tier:   tier,
		perAPI: metric.WithAttributeSet(attribute.NewSet(a, t, c)),
		ok:     metric.WithAttributeSet(attribute.NewSet(a, t, c, attribute.String(outcomeLabel, "ok"))),
		failed: metric.WithAttributeSet(attribute.NewSet(a, t, c, attribute.String(outcomeLabel, "error"))),
	}
}

// errorsOf is the attribute set of strait.request.errors for a Kafka error code. The
// codes are Kafka's (a few hundred at most), so the series stay bounded.
func (m *apiMeasurements) errorsOf(code int16) metric.MeasurementOption {
	if o, ok := m.errorsByKey.Load(code); ok {
		return o.(metric.MeasurementOption)
	}
	o := metric.WithAttributeSet(attribute.NewSet(attribute.String(apiLabel, m.api), attribute.String(tierLabel, m.tier),
		attribute.String(errorCodeLabel, errorName(code))))
	got, _ := m.errorsByKey.LoadOrStore(code, o)
	return got.(metric.MeasurementOption)
}

// errorName is the Kafka name of an error code (NOT_LEADER_OR_FOLLOWER), or the code.
func errorName(code int16) string {
	if err := kerr.ErrorForCode(code); err != nil {
		var ke *kerr.Error
		if errors.As(err, &ke) {
			return ke.Message
		}
	}
	return strconv.Itoa(int(code))
}

// RequestAnswer is what a handler learned of its request by answering it: what it
// addressed, and the first Kafka error code its answer carries (0 for none).
type RequestAnswer struct {
	Topic      string // the one topic addressed; "" for none or several
	Topics     int
	Partitions int
	ErrorCode  int16
}

// AnnotateRequest records, on the span and metrics of the request ctx serves, what the
// handler learned of it; it does nothing outside a request. The handler calls it before
// it returns its answer.
func AnnotateRequest(ctx context.Context, a RequestAnswer) {
	r := requestOf(ctx)
	if r == nil {
		return
	}
	if a.ErrorCode != 0 && r.errorCode == 0 {
		r.errorCode = a.ErrorCode
	}
	if r.span.IsRecording() {
		SetAnswerAttributes(r.span, a)
	}
}

// SetAnswerAttributes puts a on span, in the messaging conventions' names, and marks
// the span an error if the answer carries one.
func SetAnswerAttributes(span trace.Span, a RequestAnswer) {
	attrs := make([]attribute.KeyValue, 0, 5)
	if a.Topic != "" {
		attrs = append(attrs, attribute.String(DestinationAttr, a.Topic))
	}
	attrs = append(attrs, attribute.Int(TopicsAttr, a.Topics), attribute.Int(PartitionsAttr, a.Partitions))
	if a.ErrorCode != 0 {
		name := errorName(a.ErrorCode)
		attrs = append(attrs, attribute.String(ErrorTypeAttr, name), attribute.Int(ErrorCodeAttr, int(a.ErrorCode)))
		span.SetStatus(codes.Error, name)
	}
	span.SetAttributes(attrs...)
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
	if outcome != "ok" || r.errorCode != 0 {
		counted = r.measure.failed
	}
	r.inst.requests.Add(r.ctx, 1, counted)
	if r.errorCode != 0 {
		r.inst.errors.Add(r.ctx, 1, r.measure.errorsOf(r.errorCode))
	}
	r.inst.duration.Record(r.ctx, elapsed.Seconds(), r.measure.perAPI)
	r.inst.bytesReceived.Add(r.ctx, int64(bytesIn), r.tierOnly)
	r.inst.bytesSent.Add(r.ctx, int64(bytesOut), r.tierOnly)
}

// noSpan is the span of a context that carries none: it records nothing.
var noSpan = trace.SpanFromContext(context.Background())

// StartChild starts a span under the one ctx carries, from that span's provider, when
// that span is recorded. Otherwise (tracing off, or the request not sampled) it returns
// ctx and a span that records nothing, and allocates nothing: the work a child span
// would describe costs no more than it did.
func StartChild(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noSpan
	}
	return parent.TracerProvider().Tracer(scopeName).Start(ctx, name, opts...)
}

// scopeName is the instrumentation scope of the spans Strait's packages start.
const scopeName = "github.com/strait-io/strait"
