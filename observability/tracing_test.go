package observability

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

const (
	sampledParent   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	unsampledParent = "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b8-00"
)

// batch encodes a v2 record batch of one record per value, each with the headers
// given (nil for none), compressed as attributes say (only the bits are set: the
// parser must not look inside).
func batch(attributes int16, headers [][]kmsg.Header) []byte {
	var encoded []byte
	for i, h := range headers {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte("k"), Value: []byte("value"), Headers: h}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		encoded = r.AppendTo(encoded)
	}
	b := kmsg.RecordBatch{Magic: 2, Attributes: attributes, ProducerID: -1, NumRecords: int32(len(headers)), Records: encoded}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[batchLengthAt:], uint32(len(out)-batchOverhead))
	return out
}

func produceOf(records ...[]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "t"
	for i, r := range records {
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition, p.Records = int32(i), r
		t.Partitions = append(t.Partitions, p)
	}
	req.Topics = append(req.Topics, t)
	return req
}

func traceparent(v string) []kmsg.Header {
	return []kmsg.Header{{Key: "other", Value: []byte("x")}, {Key: "traceparent", Value: []byte(v)}}
}

// The first record of each uncompressed batch is read for a traceparent header; later
// records, compressed batches and malformed input give no link.
func TestProduceRecordLinks(t *testing.T) {
	twoBatches := append(batch(0, [][]kmsg.Header{traceparent(sampledParent), nil}), batch(0, [][]kmsg.Header{traceparent(unsampledParent)})...)
	cases := []struct {
		name    string
		records [][]byte
		want    []string // trace ids linked
	}{
		{"one batch", [][]byte{batch(0, [][]kmsg.Header{traceparent(sampledParent)})}, []string{"4bf92f3577b34da6a3ce929d0e0e4736"}},
		{"two batches", [][]byte{twoBatches}, []string{"4bf92f3577b34da6a3ce929d0e0e4736", "4bf92f3577b34da6a3ce929d0e0e4737"}},
		{"only a later record", [][]byte{batch(0, [][]kmsg.Header{nil, traceparent(sampledParent)})}, nil},
		{"gzip", [][]byte{batch(1, [][]kmsg.Header{traceparent(sampledParent)})}, nil},
		{"not a traceparent", [][]byte{batch(0, [][]kmsg.Header{traceparent("nonsense")})}, nil},
		{"truncated", [][]byte{batch(0, [][]kmsg.Header{traceparent(sampledParent)})[:70]}, nil},
		{"empty", [][]byte{nil}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			links := ProduceRecordLinks(produceOf(c.records...))
			if len(links) != len(c.want) {
				t.Fatalf("%d links, want %d: %v", len(links), len(c.want), links)
			}
			for i, l := range links {
				if got := l.SpanContext.TraceID().String(); got != c.want[i] {
					t.Errorf("link %d: trace %s, want %s", i, got, c.want[i])
				}
				if !isRecordLink(l) {
					t.Errorf("link %d is not marked as a record's", i)
				}
			}
		})
	}
}

// Reading links never panics on arbitrary bytes.
func FuzzProduceRecordLinks(f *testing.F) {
	f.Add(batch(0, [][]kmsg.Header{traceparent(sampledParent)}))
	f.Add(batch(0, [][]kmsg.Header{nil}))
	f.Fuzz(func(t *testing.T, records []byte) {
		ProduceRecordLinks(produceOf(records))
	})
}

// With SampleLinkedRecords, a span linked to a sampled record's trace is sampled even
// where the base sampler would drop it; an unsampled one, or a link of another kind,
// leaves the decision to the base.
func TestRecordLinkSampler(t *testing.T) {
	tr := Tracing{Sampler: "always_off", SampleLinkedRecords: true}
	s, err := tr.sampler()
	if err != nil {
		t.Fatal(err)
	}
	link := func(tp string, record bool) trace.Link {
		sc, ok := parseTraceParent(tp)
		if !ok {
			t.Fatalf("bad traceparent %s", tp)
		}
		l := trace.Link{SpanContext: sc}
		if record {
			l.Attributes = recordLinkAttrs
		}
		return l
	}
	for _, c := range []struct {
		name  string
		links []trace.Link
		want  sdktrace.SamplingDecision
	}{
		{"sampled record", []trace.Link{link(unsampledParent, true), link(sampledParent, true)}, sdktrace.RecordAndSample},
		{"unsampled record", []trace.Link{link(unsampledParent, true)}, sdktrace.Drop},
		{"sampled, not a record", []trace.Link{link(sampledParent, false)}, sdktrace.Drop},
		{"no link", nil, sdktrace.Drop},
	} {
		res := s.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), Name: "Produce proxy", Links: c.links})
		if res.Decision != c.want {
			t.Errorf("%s: decision %v, want %v", c.name, res.Decision, c.want)
		}
	}
}

// Tracing is off unless an exporter is named, by field or environment; fields win over
// the environment; bad values are refused with the setting named.
func TestTracingConfig(t *testing.T) {
	t.Setenv(envTracesExporter, "")
	t.Setenv(envTracesSampler, "")
	if tel := newTestTelemetry(t, Config{}); tel.Tracing() {
		t.Error("tracing is on with no exporter named")
	}
	t.Setenv(envTracesExporter, "console")
	if tel := newTestTelemetry(t, Config{}); !tel.Tracing() {
		t.Error("tracing is off with OTEL_TRACES_EXPORTER=console")
	}
	if tel := newTestTelemetry(t, Config{Tracing: Tracing{Exporter: "none"}}); tel.Tracing() {
		t.Error("--traces-exporter none did not override OTEL_TRACES_EXPORTER=console")
	}
	t.Setenv(envTracesExporter, "")
	tel := newTestTelemetry(t, Config{Tracing: Tracing{Exporter: "otlp", Endpoint: "http://127.0.0.1:1", Sampler: "parentbased_traceidratio", SamplerArg: "0.01"}})
	if !tel.Tracing() {
		t.Error("tracing is off with an OTLP exporter")
	}
	for _, bad := range []Tracing{
		{Exporter: "zipkin"},
		{Exporter: "otlp", Protocol: "http/json"},
		{Exporter: "otlp", Endpoint: "localhost"},
		{Exporter: "otlp", Sampler: "sometimes"},
		{Exporter: "otlp", Sampler: "traceidratio", SamplerArg: "2"},
	} {
		if _, err := New(Config{Tracing: bad}); err == nil {
			t.Errorf("New accepted %+v", bad)
		}
	}
	if got := tracesURL("http://collector:4318"); got != "http://collector:4318/v1/traces" {
		t.Errorf("tracesURL = %s", got)
	}
	if got := tracesURL("http://collector:4318/v1/traces"); got != "http://collector:4318/v1/traces" {
		t.Errorf("tracesURL kept path = %s", got)
	}
}

func newTestTelemetry(t *testing.T, cfg Config) *Telemetry {
	t.Helper()
	tel, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		defer cancel()
		_ = tel.Shutdown(ctx) // an unreachable receiver fails the flush; that is not the test
	})
	return tel
}
