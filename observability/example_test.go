package observability_test

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/strait-io/strait/observability"
)

// A process builds its logger and telemetry first, hands the request hook to its Kafka
// server, serves the admin endpoints, and shuts everything down in reverse.
func Example() {
	logger, err := observability.NewLogger(os.Stderr, "json", slog.LevelInfo)
	if err != nil {
		panic(err)
	}
	tel, err := observability.New(observability.Config{Tier: "node", InstanceID: "node-1"})
	if err != nil {
		panic(err)
	}
	defer tel.Shutdown(context.Background())

	admin := observability.NewAdminServer("127.0.0.1:0", tel, logger)
	if err := admin.Start(); err != nil {
		panic(err)
	}
	defer admin.Shutdown(context.Background())

	// Until the node has loaded its partitions, /readyz answers 503.
	loaded := false
	admin.AddCheck(observability.ReadinessCheck{Name: "partitions", Check: func(context.Context) error {
		if !loaded {
			return errors.New("partitions not loaded")
		}
		return nil
	}})

	// internal/wire calls the hook around every request (here: a Metadata v12).
	observe := tel.ObserveRequest("node")
	ctx, done := observe(context.Background(), 3, 12)
	logger.DebugContext(ctx, "answering metadata") // carries trace_id and span_id
	done(64, 512, nil)
	loaded = true
}
