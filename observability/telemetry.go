package observability

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config names the process in every metric and span it exports.
type Config struct {
	ServiceName string // "strait" when empty
	Tier        string // "proxy", "node" or "dev"; a resource attribute; may be empty
	InstanceID  string // e.g. "node-1"; resource attribute service.instance.id; may be empty
	// Tracing says where spans go; its zero value, with no OTEL_TRACES_EXPORTER in
	// the environment, leaves tracing off.
	Tracing Tracing
	// ClientIDs bounds the client ids request metrics name; the zero value names
	// none (every client is "other").
	ClientIDs ClientIDLabels
}

// TierAttr is the attribute key for the tier, on the resource and on each request.
const TierAttr = "strait.tier"

// validate fills defaults and rejects a tier nothing else would recognise, so a typo in
// a flag shows up at start rather than as a stray label on a dashboard.
func (c *Config) validate() error {
	if c.ServiceName == "" {
		c.ServiceName = "strait"
	}
	switch c.Tier {
	case "", "proxy", "node", "dev":
	default:
		return fmt.Errorf("observability: tier %q: want \"proxy\", \"node\" or \"dev\"", c.Tier)
	}
	return c.Tracing.validate()
}

// Telemetry owns the process's OpenTelemetry providers: a MeterProvider whose reader is
// the Prometheus exporter registered on its own prometheus.Registry (not the global
// default), and an SDK TracerProvider when spans have somewhere to go (an exporter, or
// a span processor in tests), sampling as Config.Tracing says, or a no-op one when they
// have not. It does not set OpenTelemetry globals: whoever needs a
// tracer or meter gets it from here, which keeps tests independent of each other.
type Telemetry struct {
	registry *prometheus.Registry
	meters   *sdkmetric.MeterProvider
	tracers  trace.TracerProvider
	// shutdownTracing flushes and stops the span processors; nil when there are none.
	shutdownTracing func(context.Context) error
	tracing         bool // spans are recorded and exported
	clientIDs       *clientLabels
	requests        requestInstruments
	conns           connInstruments
}

// option adjusts how New builds a Telemetry. Tests use it to record spans in memory.
type option func(*options)

type options struct {
	spanProcessors []sdktrace.SpanProcessor
}

// withSpanProcessor adds p to the TracerProvider (a batching OTLP exporter, or a
// tracetest.SpanRecorder in tests).
func withSpanProcessor(p sdktrace.SpanProcessor) option {
	return func(o *options) { o.spanProcessors = append(o.spanProcessors, p) }
}

// New builds the providers described by cfg. Call Shutdown when the process stops.
func New(cfg Config) (*Telemetry, error) {
	return newTelemetry(cfg)
}

func newTelemetry(cfg Config, opts ...option) (*Telemetry, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	res, err := newResource(cfg)
	if err != nil {
		return nil, err
	}
	exporter, err := cfg.Tracing.newSpanExporter(context.Background())
	if err != nil {
		return nil, err
	}
	if exporter != nil {
		o.spanProcessors = append(o.spanProcessors, sdktrace.NewBatchSpanProcessor(exporter))
	}
	sampler, err := cfg.Tracing.sampler()
	if err != nil {
		return nil, err
	}
	t := &Telemetry{registry: newRegistry(), clientIDs: newClientLabels(cfg.ClientIDs)}
	if t.meters, err = newMeterProvider(t.registry, res); err != nil {
		return nil, errors.Join(err, shutdownProcessors(o.spanProcessors))
	}
	t.tracers, t.shutdownTracing = newTracerProvider(res, sampler, o.spanProcessors)
	t.tracing = len(o.spanProcessors) > 0
	if t.requests, err = newRequestInstruments(t.Meter(instrumentationName)); err != nil {
		return nil, errors.Join(err, t.Shutdown(context.Background()))
	}
	if t.conns, err = newConnInstruments(t.Meter(instrumentationName)); err != nil {
		return nil, errors.Join(err, t.Shutdown(context.Background()))
	}
	return t, nil
}

// instrumentationName is the scope of the instruments this package creates itself.
const instrumentationName = "github.com/strait-io/strait/observability"

// newResource describes this process. It starts from the SDK default (which reads
// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME) and lets cfg win.
func newResource(cfg Config) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(cfg.ServiceName)}
	if cfg.Tier != "" {
		attrs = append(attrs, attribute.String(TierAttr, cfg.Tier))
	}
	if cfg.InstanceID != "" {
		attrs = append(attrs, semconv.ServiceInstanceID(cfg.InstanceID))
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return nil, fmt.Errorf("observability: build resource: %w", err)
	}
	return res, nil
}

// newRegistry returns a registry with the Go runtime and process collectors that the
// global default registry would have had, so /metrics still shows memory, GC and file
// descriptors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

func newMeterProvider(reg prometheus.Registerer, res *resource.Resource) (*sdkmetric.MeterProvider, error) {
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("observability: prometheus exporter: %w", err)
	}
	return sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exporter),
		sdkmetric.WithResource(res),
	), nil
}

// shutdownProcessors stops span processors that no provider took.
func shutdownProcessors(processors []sdktrace.SpanProcessor) error {
	var errs []error
	for _, p := range processors {
		errs = append(errs, p.Shutdown(context.Background()))
	}
	return errors.Join(errs...)
}

// newTracerProvider returns the SDK's provider when spans have somewhere to go, and a
// no-op one otherwise: with tracing off, a request pays nothing for its spans (an SDK
// provider that samples nothing still costs each request a span's worth of CPU). A
// nil sampler leaves the SDK to read OTEL_TRACES_SAMPLER, parentbased_always_on by
// default.
func newTracerProvider(res *resource.Resource, sampler sdktrace.Sampler, processors []sdktrace.SpanProcessor) (trace.TracerProvider, func(context.Context) error) {
	if len(processors) == 0 {
		return noop.NewTracerProvider(), nil
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if sampler != nil {
		opts = append(opts, sdktrace.WithSampler(sampler))
	}
	for _, p := range processors {
		opts = append(opts, sdktrace.WithSpanProcessor(p))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return tp, tp.Shutdown
}

// Tracing reports whether spans are recorded and exported. Components skip the work
// that only spans need (reading record headers, spans of background loops) when not.
func (t *Telemetry) Tracing() bool { return t.tracing }

// Tracer returns a tracer for the named instrumentation scope (by convention the
// importing package's path).
func (t *Telemetry) Tracer(name string) trace.Tracer {
	return t.tracers.Tracer(name)
}

// Meter returns a meter for the named instrumentation scope.
func (t *Telemetry) Meter(name string) metric.Meter {
	return t.meters.Meter(name)
}

// MetricsHandler serves the registry in the Prometheus text (or OpenMetrics) format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Shutdown flushes and stops both providers. Both are stopped even if one fails.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.shutdownTracing != nil {
		if err := t.shutdownTracing(ctx); err != nil {
			errs = append(errs, fmt.Errorf("observability: shut down tracer provider: %w", err))
		}
	}
	if err := t.meters.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("observability: shut down meter provider: %w", err))
	}
	return errors.Join(errs...)
}
