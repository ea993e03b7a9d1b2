package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/observability"
)

// What every Strait process shares: logging, telemetry, the admin server, signals.

func newLogger(format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	logger, err := observability.NewLogger(os.Stderr, format, l)
	if err != nil {
		return nil, fmt.Errorf("--log-format %q: %w", format, err)
	}
	return logger, nil
}

// telemetryFlags are how dev, proxy and node are traced and metered. The tracing
// flags override the standard OpenTelemetry environment variables, which apply where
// a flag is not given (observability.Tracing).
type telemetryFlags struct {
	Tracing       observability.Tracing
	ClientIDs     string // --metrics-client-ids, comma-separated
	MaxClientIDs  int
	clientIDsList []string
}

func (c *telemetryFlags) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Tracing.Exporter, "traces-exporter", "", "where spans go: otlp, console (standard output) or none (default: OTEL_TRACES_EXPORTER, else none: tracing is off)")
	fs.StringVar(&c.Tracing.Endpoint, "otlp-endpoint", "", "OTLP receiver's base URL, e.g. http://localhost:4318 for http/protobuf (/v1/traces is appended) or http://localhost:4317 for grpc (default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT)")
	fs.StringVar(&c.Tracing.Protocol, "otlp-protocol", "", "OTLP protocol: grpc or http/protobuf (default: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf)")
	fs.StringVar(&c.Tracing.Sampler, "traces-sampler", "", "which traces to keep: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio (default: OTEL_TRACES_SAMPLER, else parentbased_always_on)")
	fs.StringVar(&c.Tracing.SamplerArg, "traces-sampler-arg", "", "the sampler's ratio, 0 to 1, for traceidratio samplers (default: OTEL_TRACES_SAMPLER_ARG, else 1)")
	fs.BoolVar(&c.Tracing.SampleLinkedRecords, "traces-sample-linked-records", false, "trace every produce whose records carry a sampled W3C traceparent header, whatever the sampler says")
	fs.StringVar(&c.ClientIDs, "metrics-client-ids", "", "comma-separated client ids that request metrics name in their client_id label; others count as \"other\" (default: the first --metrics-max-client-ids ids seen)")
	fs.IntVar(&c.MaxClientIDs, "metrics-max-client-ids", 20, "without --metrics-client-ids: how many client ids, first seen first served, request metrics name; later ones count as \"other\"")
}

func (c *telemetryFlags) validate() error {
	if c.MaxClientIDs < 0 {
		return fmt.Errorf("--metrics-max-client-ids %d: must not be negative", c.MaxClientIDs)
	}
	c.clientIDsList = nil
	if c.ClientIDs != "" {
		c.clientIDsList = strings.Split(c.ClientIDs, ",")
	}
	return nil
}

// config is the telemetry configuration of one process.
func (c *telemetryFlags) config(tier, instance string) observability.Config {
	return observability.Config{
		ServiceName: "strait",
		Tier:        tier,
		InstanceID:  instance,
		Tracing:     c.Tracing,
		ClientIDs:   observability.ClientIDLabels{Allow: c.clientIDsList, Max: c.MaxClientIDs},
	}
}

// startObservability sets up telemetry and the admin server, ready once *ready is set.
func startObservability(cfg observability.Config, adminAddr string, logger *slog.Logger, ready *atomic.Bool) (*observability.Telemetry, *observability.AdminServer, error) {
	tel, err := observability.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	admin := observability.NewAdminServer(adminAddr, tel, logger, observability.ReadinessCheck{
		Name:  "serving",
		Check: func(context.Context) error { return readyErr(ready.Load()) },
	})
	if err := admin.Start(); err != nil {
		return tel, nil, err
	}
	return tel, admin, nil
}

func stopObservability(ctx context.Context, admin *observability.AdminServer, tel *observability.Telemetry) error {
	var errs []error
	if admin != nil {
		errs = append(errs, admin.Shutdown(ctx))
	}
	if tel != nil {
		errs = append(errs, tel.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// runUntilSignal runs start, then waits for SIGINT or SIGTERM and calls the shutdown
// it returned, with a bounded time to finish.
func runUntilSignal(logger *slog.Logger, start func(ctx context.Context) (shutdown func(context.Context) error, err error)) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdown, err := start(ctx)
	if err != nil {
		logger.Error("could not start", "err", err)
		return err
	}
	<-ctx.Done()
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := shutdown(shutdownCtx); err != nil {
		logger.Error("shutdown was not clean", "err", err)
		return err
	}
	logger.Info("stopped")
	return nil
}

func serve(s *wire.Server, ln net.Listener, logger *slog.Logger) {
	if err := s.Serve(ln); err != nil && !errors.Is(err, wire.ErrServerClosed) {
		logger.Error("Kafka listener stopped", "addr", ln.Addr().String(), "err", err)
	}
}

func readyErr(ready bool) error {
	if !ready {
		return errors.New("starting or stopping")
	}
	return nil
}

// advertisedFrom turns a listen address into one clients can dial: a wildcard host
// (":9092", "0.0.0.0:9092") becomes localhost.
func advertisedFrom(listen string) string {
	host, port, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// listenAndAdvertise binds the Kafka listener and works out the advertised address:
// the given one, or the listener's own (so ":0" advertises the port it got).
func listenAndAdvertise(listen, advertise string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, "", fmt.Errorf("--listen %s: %w", listen, err)
	}
	if advertise == "" {
		advertise = advertisedFrom(ln.Addr().String())
	}
	if _, _, err := net.SplitHostPort(advertise); err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("--advertise %q: %w", advertise, err)
	}
	return ln, advertise, nil
}

// listenerLimits bound what clients can make a process's Kafka listeners hold, and for
// how long, and how the process spends memory; dev, proxy and node take the same flags.
type listenerLimits struct {
	MaxConnections     int           // max.connections, per listener; 0: none
	MaxInFlight        int           // requests read ahead per client connection
	MaxRequestBytes    int           // socket.request.max.bytes
	IdleTimeout        time.Duration // connections.max.idle.ms
	RequestReadTimeout time.Duration
	MaxInFlightBytes   int64 // per connection
	MemoryBudget       int64 // per process; queued.max.request.bytes, answers included
	GCMinHeap          int64 // the garbage collector waits for the heap to reach this (gctune)
}

func (l *listenerLimits) flags(fs *flag.FlagSet) {
	fs.IntVar(&l.MaxConnections, "max-connections", 0, "connections each Kafka listener serves at once; past it a new connection is closed as soon as it is accepted (max.connections). Connections from other Strait processes count too. 0: no limit but the file descriptor limit")
	fs.IntVar(&l.MaxInFlight, "max-inflight-requests-per-connection", wire.DefaultMaxInFlight, "requests read ahead on one client connection before it is no longer read; they are still handled one at a time, in order. Connections between Strait processes take up to 1024")
	fs.IntVar(&l.MaxRequestBytes, "max-request-bytes", wire.DefaultMaxRequestBytes, "largest request accepted; larger ones close the connection (socket.request.max.bytes). Requests other than Produce, and a Produce's bytes besides its records, are held to 1 MiB")
	fs.DurationVar(&l.IdleTimeout, "connections-max-idle", wire.DefaultIdleTimeout, "close a connection that has nothing in flight and sent nothing for this long, or whose client took nothing of an answer for this long (connections.max.idle.ms)")
	fs.DurationVar(&l.RequestReadTimeout, "request-read-timeout", wire.DefaultRequestReadTimeout, "close a connection whose client started a request and did not finish sending it within this long")
	fs.Int64Var(&l.MaxInFlightBytes, "max-inflight-bytes-per-connection", wire.DefaultMaxInFlightBytes, "bytes of requests read and answers not yet written one connection may hold before it is no longer read; a connection holding nothing may still send one larger request")
	fs.Int64Var(&l.MemoryBudget, "memory-budget", wire.DefaultMemoryBudget, "bytes of requests read and answers not yet written all connections of the process may hold before reading pauses (Kafka's queued.max.request.bytes, answers included)")
	fs.Int64Var(&l.GCMinHeap, "gc-min-heap", defaultGCMinHeap, "bytes the Go heap may grow to before the garbage collector runs; above it GOGC applies as usual. A collection pauses requests briefly and a small heap collects many times a second under load, so this trades memory for tail latency. 0: GOGC alone (GOMEMLIMIT still applies)")
}

// defaultGCMinHeap keeps a process under load from collecting more than every few
// seconds; the price is up to this much memory held by garbage beyond the live heap.
const defaultGCMinHeap = 128 << 20

func (l *listenerLimits) validate() error {
	switch {
	case l.MaxConnections < 0:
		return fmt.Errorf("--max-connections %d: must not be negative (0: no limit)", l.MaxConnections)
	case l.MaxInFlight < 1 || l.MaxInFlight > wire.DefaultMaxInFlightInternal:
		return fmt.Errorf("--max-inflight-requests-per-connection %d: must be between 1 and %d", l.MaxInFlight, wire.DefaultMaxInFlightInternal)
	case l.MaxRequestBytes < 1024 || l.MaxRequestBytes > math.MaxInt32:
		return fmt.Errorf("--max-request-bytes %d: must be between 1024 and %d", l.MaxRequestBytes, math.MaxInt32)
	case l.IdleTimeout <= 0:
		return fmt.Errorf("--connections-max-idle %s: must be positive", l.IdleTimeout)
	case l.RequestReadTimeout <= 0:
		return fmt.Errorf("--request-read-timeout %s: must be positive", l.RequestReadTimeout)
	case l.MaxInFlightBytes < 64<<10:
		return fmt.Errorf("--max-inflight-bytes-per-connection %d: must be at least 65536", l.MaxInFlightBytes)
	case l.MemoryBudget < 1<<20:
		return fmt.Errorf("--memory-budget %d: must be at least 1048576 (1 MiB)", l.MemoryBudget)
	case l.GCMinHeap < 0:
		return fmt.Errorf("--gc-min-heap %d: must not be negative (0: GOGC alone)", l.GCMinHeap)
	}
	return nil
}

// forListener returns the limits of one listener drawing on budget, which the process's
// listeners share.
func (l *listenerLimits) forListener(budget *wire.MemoryBudget) wire.Limits {
	return wire.Limits{
		MaxConnections:     l.MaxConnections,
		MaxInFlight:        l.MaxInFlight,
		MaxRequestBytes:    int32(l.MaxRequestBytes),
		MaxInFlightBytes:   l.MaxInFlightBytes,
		RequestReadTimeout: l.RequestReadTimeout,
		IdleTimeout:        l.IdleTimeout,
		Budget:             budget,
	}
}

// newMemoryBudget makes the process's memory budget and reports it as metrics.
func newMemoryBudget(limit int64, tel *observability.Telemetry) (*wire.MemoryBudget, error) {
	b := wire.NewMemoryBudget(limit)
	err := tel.ObserveMemoryBudget(func() observability.MemoryBudgetStats {
		return observability.MemoryBudgetStats{Limit: b.Limit(), Used: b.Used(), Waits: b.Waits()}
	})
	return b, err
}

// observeListener reports a Kafka listener's connections as metrics.
func observeListener(tel *observability.Telemetry, tier, name string, s *wire.Server) error {
	return tel.ObserveListener(tier, name, func() observability.ListenerStats {
		st := s.Stats()
		return observability.ListenerStats{
			OpenConnections:        st.OpenConnections,
			HeldBytes:              st.HeldBytes,
			InFlightRequests:       st.InFlightRequests,
			PausedInFlightRequests: st.PausedInFlightRequests,
			PausedInFlightBytes:    st.PausedInFlightBytes,
			PausedMemoryBudget:     st.PausedMemoryBudget,
			ClosedIdle:             st.ClosedIdle,
			ClosedReadTimeout:      st.ClosedReadTimeout,
			ClosedWriteTimeout:     st.ClosedWriteTimeout,
			ClosedBadRequest:       st.ClosedBadRequest,
			ClosedMaxConnections:   st.RefusedConnections,
		}
	})
}

// observeRequests is a Kafka listener's Observe hook. Each request is observed as coming
// from its origin (the real client, behind a proxy), and its handler's context carries
// that origin on with the request's own span as traceparent, so that what it forwards
// continues the trace. With tracing on, a Produce straight from a client links to the
// traces its records name; a forwarded one was linked by the proxy already.
func observeRequests(tel *observability.Telemetry, tier string) func(context.Context, *wire.Request) (context.Context, func(int, int, error)) {
	observe := tel.ObserveRequestFrom(tier)
	tracing := tel.Tracing()
	return func(ctx context.Context, req *wire.Request) (context.Context, func(int, int, error)) {
		o := req.Origin
		origin := observability.RequestOrigin{ClientID: o.ClientID, ClientAddr: o.ClientAddr, TraceParent: o.TraceParent}
		if produce, ok := req.Body.(*kmsg.ProduceRequest); ok && tracing && !req.Internal {
			origin.Links = observability.ProduceRecordLinks(produce)
		}
		ctx, done := observe(ctx, req.Header.Key, req.Header.Version, origin)
		o.TraceParent = observability.TraceParent(ctx)
		return wire.WithOrigin(ctx, o), done
	}
}

// upstreamFlag sets how many connections a proxy keeps to each node, for `strait proxy`
// and `strait dev`.
func upstreamFlag(fs *flag.FlagSet, v *int) {
	fs.IntVar(v, "upstream-connections-per-node", wire.DefaultPoolConns, "connections the proxy keeps to each node, shared by all its clients")
}

func validateUpstream(conns int) error {
	if conns < 1 || conns > 64 {
		return fmt.Errorf("--upstream-connections-per-node %d: must be between 1 and 64", conns)
	}
	return nil
}

// upstreamIdle is how long a proxy's connection to a node may idle: nine tenths of the
// listeners' idle timeout, as Kafka clients' 9 minutes are of brokers' 10, so that the
// proxy closes it before a node does (nodes of a cluster take the same flag).
func upstreamIdle(listenerIdle time.Duration) time.Duration {
	return listenerIdle * 9 / 10
}

// observeUpstream reports a proxy's connections to nodes as metrics.
func observeUpstream(tel *observability.Telemetry, stats func() wire.PoolStats) error {
	return tel.ObserveUpstream("proxy", func() observability.UpstreamStats {
		st := stats()
		return observability.UpstreamStats{Conns: st.Conns, Dials: st.Dials, DialErrors: st.DialErrors}
	})
}

// tracerIfOn returns a tracer of the named scope for the spans a component starts on
// its own (not under a request's), or nil with tracing off, which skips them.
func tracerIfOn(tel *observability.Telemetry, scope string) trace.Tracer {
	if !tel.Tracing() {
		return nil
	}
	return tel.Tracer(scope)
}
