package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
