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
	"sync/atomic"
	"syscall"
	"time"

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

// startObservability sets up telemetry and the admin server, ready once *ready is set.
func startObservability(tier, instance, adminAddr string, logger *slog.Logger, ready *atomic.Bool) (*observability.Telemetry, *observability.AdminServer, error) {
	tel, err := observability.New(observability.Config{ServiceName: "strait", Tier: tier, InstanceID: instance})
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
// how long; dev, proxy and node take the same flags.
type listenerLimits struct {
	MaxConnections     int           // max.connections, per listener; 0: none
	MaxInFlight        int           // requests read ahead per client connection
	MaxRequestBytes    int           // socket.request.max.bytes
	IdleTimeout        time.Duration // connections.max.idle.ms
	RequestReadTimeout time.Duration
	MaxInFlightBytes   int64 // per connection
	MemoryBudget       int64 // per process; queued.max.request.bytes, answers included
}

func (l *listenerLimits) flags(fs *flag.FlagSet) {
	fs.IntVar(&l.MaxConnections, "max-connections", 0, "connections each Kafka listener serves at once; past it a new connection is closed as soon as it is accepted (max.connections). Connections from other Strait processes count too. 0: no limit but the file descriptor limit")
	fs.IntVar(&l.MaxInFlight, "max-inflight-requests-per-connection", wire.DefaultMaxInFlight, "requests read ahead on one client connection before it is no longer read; they are still handled one at a time, in order. Connections between Strait processes take up to 1024")
	fs.IntVar(&l.MaxRequestBytes, "max-request-bytes", wire.DefaultMaxRequestBytes, "largest request accepted; larger ones close the connection (socket.request.max.bytes). Requests other than Produce, and a Produce's bytes besides its records, are held to 1 MiB")
	fs.DurationVar(&l.IdleTimeout, "connections-max-idle", wire.DefaultIdleTimeout, "close a connection that has nothing in flight and sent nothing for this long, or whose client took nothing of an answer for this long (connections.max.idle.ms)")
	fs.DurationVar(&l.RequestReadTimeout, "request-read-timeout", wire.DefaultRequestReadTimeout, "close a connection whose client started a request and did not finish sending it within this long")
	fs.Int64Var(&l.MaxInFlightBytes, "max-inflight-bytes-per-connection", wire.DefaultMaxInFlightBytes, "bytes of requests read and answers not yet written one connection may hold before it is no longer read; a connection holding nothing may still send one larger request")
	fs.Int64Var(&l.MemoryBudget, "memory-budget", wire.DefaultMemoryBudget, "bytes of requests read and answers not yet written all connections of the process may hold before reading pauses (Kafka's queued.max.request.bytes, answers included)")
}

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
// continues the trace.
func observeRequests(tel *observability.Telemetry, tier string) func(context.Context, int16, int16) (context.Context, func(int, int, error)) {
	observe := tel.ObserveRequestFrom(tier)
	return func(ctx context.Context, key, version int16) (context.Context, func(int, int, error)) {
		o, _ := wire.OriginFrom(ctx)
		ctx, done := observe(ctx, key, version, observability.RequestOrigin{ClientID: o.ClientID, ClientAddr: o.ClientAddr, TraceParent: o.TraceParent})
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
