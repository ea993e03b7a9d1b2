package observability

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Tracing says where a process's spans go and which it keeps. Every empty field falls
// back to the standard OpenTelemetry environment variable named beside it, so a flag
// overrides the environment; with neither, tracing is off: the tracer is the no-op one,
// and a request pays nothing for its spans.
type Tracing struct {
	// Exporter is "otlp", "console" (spans as JSON on standard output) or "none";
	// else OTEL_TRACES_EXPORTER; else none (OpenTelemetry's own default is otlp, but a
	// process that nobody told where to send spans should not try).
	Exporter string
	// Endpoint is the OTLP receiver's base URL (http://collector:4318 for
	// http/protobuf, where /v1/traces is appended; http://collector:4317 for grpc);
	// else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT.
	Endpoint string
	// Protocol is "grpc" or "http/protobuf"; else OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
	// or OTEL_EXPORTER_OTLP_PROTOCOL; else http/protobuf.
	Protocol string
	// Sampler is one of OTEL_TRACES_SAMPLER's values (always_on, always_off,
	// traceidratio, parentbased_always_on, parentbased_always_off,
	// parentbased_traceidratio), SamplerArg its argument (the ratio); else those
	// variables; else parentbased_always_on.
	Sampler    string
	SamplerArg string
	// SampleLinkedRecords samples every request whose records carry a sampled W3C
	// traceparent (a producer instrumented with OpenTelemetry), whatever Sampler
	// decides: a trace someone asked for reaches through Strait.
	SampleLinkedRecords bool
}

// Environment variables of the OpenTelemetry specification that Tracing reads itself;
// the exporters and the SDK read the others (headers, timeouts, resource attributes).
const (
	envTracesExporter = "OTEL_TRACES_EXPORTER"
	envTracesSampler  = "OTEL_TRACES_SAMPLER"
	envSamplerArg     = "OTEL_TRACES_SAMPLER_ARG"
	envProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// exporterName is the exporter in force: the field, else the environment, else none.
func (tr Tracing) exporterName() string {
	if tr.Exporter != "" {
		return tr.Exporter
	}
	if env := strings.TrimSpace(os.Getenv(envTracesExporter)); env != "" {
		return env
	}
	return "none"
}

// validate rejects values no exporter or sampler would take, naming the setting.
func (tr Tracing) validate() error {
	switch tr.exporterName() {
	case "otlp", "console", "none":
	default:
		return fmt.Errorf("observability: traces exporter %q: want otlp, console or none", tr.exporterName())
	}
	switch tr.Protocol {
	case "", "grpc", "http/protobuf":
	default:
		return fmt.Errorf("observability: OTLP protocol %q: want grpc or http/protobuf", tr.Protocol)
	}
	if tr.Endpoint != "" {
		if u, err := url.Parse(tr.Endpoint); err != nil || u.Host == "" {
			return fmt.Errorf("observability: OTLP endpoint %q: want a URL such as http://localhost:4318", tr.Endpoint)
		}
	}
	if tr.Sampler != "" || tr.SampleLinkedRecords {
		if _, err := tr.baseSampler(); err != nil {
			return err
		}
	}
	return nil
}

// newSpanExporter returns the exporter Tracing names, nil when tracing is off. With no
// field set it is autoexport's reading of the environment; a field set builds the
// exporter here, with the field in place of its variable, since autoexport reads only
// the environment.
func (tr Tracing) newSpanExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	name := tr.exporterName()
	if name == "none" {
		return nil, nil
	}
	if tr.Exporter == "" && tr.Endpoint == "" && tr.Protocol == "" {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("observability: traces exporter from the environment: %w", err)
		}
		return exp, nil
	}
	switch name {
	case "console":
		exp, err := stdouttrace.New()
		if err != nil {
			return nil, fmt.Errorf("observability: console traces exporter: %w", err)
		}
		return exp, nil
	case "otlp":
		return tr.newOTLPExporter(ctx)
	}
	return nil, fmt.Errorf("observability: traces exporter %q: want otlp, console or none", name)
}

// newOTLPExporter builds the OTLP exporter of the protocol in force. The exporter reads
// the variables that no field overrides (headers, timeout, compression, certificates).
func (tr Tracing) newOTLPExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	protocol := firstSet(tr.Protocol, os.Getenv(envTracesProtocol), os.Getenv(envProtocol), "http/protobuf")
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "grpc":
		var opts []otlptracegrpc.Option
		if tr.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(tr.Endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	case "http/protobuf":
		var opts []otlptracehttp.Option
		if tr.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(tracesURL(tr.Endpoint)))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("observability: OTLP protocol %q: want grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("observability: OTLP %s traces exporter: %w", protocol, err)
	}
	return exp, nil
}

// tracesURL appends the traces path to a base endpoint, as the specification says of
// OTEL_EXPORTER_OTLP_ENDPOINT, unless the URL names the path already.
func tracesURL(base string) string {
	u, err := url.Parse(base)
	if err != nil || strings.HasSuffix(u.Path, "/v1/traces") {
		return base
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	return u.String()
}

// sampler returns the sampler to give the TracerProvider, nil to let the SDK read
// OTEL_TRACES_SAMPLER itself. It builds one only when it must: for a Sampler field, or
// to wrap the base in one that samples requests whose records carry a sampled trace.
func (tr Tracing) sampler() (sdktrace.Sampler, error) {
	if tr.Sampler == "" && !tr.SampleLinkedRecords {
		return nil, nil
	}
	base, err := tr.baseSampler()
	if err != nil {
		return nil, err
	}
	if tr.SampleLinkedRecords {
		return recordLinkSampler{base: base}, nil
	}
	return base, nil
}

// baseSampler builds the sampler named by the field or, failing it, the environment,
// as the SDK would.
func (tr Tracing) baseSampler() (sdktrace.Sampler, error) {
	name, arg := tr.Sampler, tr.SamplerArg
	if name == "" {
		name, arg = os.Getenv(envTracesSampler), os.Getenv(envSamplerArg)
	} else if arg == "" {
		arg = os.Getenv(envSamplerArg)
	}
	name = strings.ToLower(strings.TrimSpace(name))
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("observability: sampler argument %q: want a ratio from 0 to 1", arg)
		}
		return r, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("observability: sampler %q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
}

// recordLinkSampler samples a span started with a link to a sampled record's trace
// (RecordLinks) and leaves every other decision to base.
type recordLinkSampler struct{ base sdktrace.Sampler }

func (s recordLinkSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	for _, l := range p.Links {
		if l.SpanContext.IsSampled() && isRecordLink(l) {
			res := s.base.ShouldSample(p)
			res.Decision = sdktrace.RecordAndSample
			return res
		}
	}
	return s.base.ShouldSample(p)
}

func (s recordLinkSampler) Description() string {
	return "RecordLinkSampler{" + s.base.Description() + "}"
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
