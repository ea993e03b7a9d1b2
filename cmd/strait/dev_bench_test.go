package main

import (
	"context"
	"flag"
	"io"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-io/strait/observability"
)

// BenchmarkDevProduce is one acks=all produce of one 100-byte record at a time through
// `strait dev --nodes 3`: the proxy, the leader's append and wait, two followers'
// fetches, all in this process, with a franz-go client over loopback. Tracing is as
// the OpenTelemetry environment says (off when OTEL_TRACES_EXPORTER is unset), so
//
//	go test -run '^$' -bench DevProduce ./cmd/strait/
//	OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
//	  OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01 go test ...
//
// compare the request path with tracing off and on.
func BenchmarkDevProduce(b *testing.B) {
	addr := freeLoopbackAddr(b)
	var cfg devConfig
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.flags(fs)
	if err := fs.Parse([]string{"--nodes", "3", "--listen", addr, "--admin", "127.0.0.1:0", "--data-dir", b.TempDir()}); err != nil {
		b.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := startDev(ctx, cfg, observability.DiscardLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer d.shutdown(context.Background())
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	produce := func() {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	for range 100 { // the topic is ready, connections are open, the ISR has settled
		produce()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		produce()
	}
}

func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
