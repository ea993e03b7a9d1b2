package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/strait-io/strait/internal/gctune"
	"github.com/strait-io/strait/observability"
	"github.com/strait-io/strait/partitionlog"
	"github.com/strait-io/strait/routing"
)

// nodeConfig is everything `strait node` can be told.
type nodeConfig struct {
	ID             int
	Listen         string
	Advertise      string
	DataDir        string
	Redis          string
	Cluster        string
	Admin          string
	LogFormat      string
	LogLevel       string
	Limits         listenerLimits
	RetentionCheck time.Duration
	CleanerBackoff time.Duration
	ProducerExpiry time.Duration
	ZeroCopy       bool
	LagTimeMax     time.Duration
	MaxPartitions  int
	Rack           string
	Security       securityConfig
	listener       listenerSpec // from --listeners (one) or --listen
	Telemetry      telemetryFlags
}

func (c *nodeConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.ID, "id", -1, "this node's id, unique in the cluster (required)")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:9093", "address the node's Kafka listener binds")
	fs.StringVar(&c.Advertise, "advertise", "", "host:port proxies, peers and, in redirect mode, clients dial (default: the listen address)")
	fs.StringVar(&c.DataDir, "data-dir", "./strait-node-data", "directory for this node's partitions")
	clusterFlags(fs, &c.Redis, &c.Cluster, &c.Admin, "127.0.0.1:9645", &c.LogFormat, &c.LogLevel)
	c.Limits.flags(fs)
	fs.DurationVar(&c.RetentionCheck, "log-retention-check-interval", 5*time.Minute, "how often partitions delete segments past retention (log.retention.check.interval.ms)")
	fs.DurationVar(&c.CleanerBackoff, "log-cleaner-backoff", 15*time.Second, "how often compacted topics are cleaned (log.cleaner.backoff.ms)")
	producerExpiryFlag(fs, &c.ProducerExpiry)
	fs.BoolVar(&c.ZeroCopy, "zero-copy", true, "send fetched record bytes from segment files with sendfile")
	fs.DurationVar(&c.LagTimeMax, "replica-lag-time-max", 30*time.Second, "how long a follower may lag before it leaves the ISR (replica.lag.time.max.ms)")
	maxNodePartitionsFlag(fs, &c.MaxPartitions)
	c.Security.flags(fs)
	fs.StringVar(&c.Rack, "rack", "", "the rack or zone this node runs in (broker.rack): consumers that set the same client.rack read its replicas rather than the leader's (KIP-392)")
	c.Telemetry.flags(fs)
}

// producerExpiryFlag is producer.id.expiration.ms, for `strait node` and `strait dev`.
func producerExpiryFlag(fs *flag.FlagSet, v *time.Duration) {
	fs.DurationVar(v, "producer-id-expiration", partitionlog.DefaultProducerIDExpiration, "forget, in each partition, an idempotent or transactional producer that wrote nothing for this long and has no transaction open (producer.id.expiration.ms)")
}

// maxNodePartitionsFlag is the partitions a node may hold, for `strait node` and `strait dev`.
func maxNodePartitionsFlag(fs *flag.FlagSet, v *int) {
	fs.IntVar(v, "max-node-partitions", 0, "partition replicas a node may hold; the controller places no more on it (Kafka's max.broker.partitions, KIP-578; 0: the process's file descriptor limit, shared among the nodes of one process)")
}

func (c *nodeConfig) validate() error {
	switch {
	case c.ID < 0 || c.ID >= firstAutoProxyID:
		return fmt.Errorf("--id %d: give each node an id from 0 to %d", c.ID, firstAutoProxyID-1)
	case c.DataDir == "":
		return fmt.Errorf("--data-dir is empty")
	case c.RetentionCheck <= 0 || c.CleanerBackoff <= 0 || c.ProducerExpiry <= 0:
		return fmt.Errorf("--log-retention-check-interval, --log-cleaner-backoff and --producer-id-expiration must be positive")
	case c.LagTimeMax <= 0:
		return fmt.Errorf("--replica-lag-time-max %s: must be positive", c.LagTimeMax)
	case c.MaxPartitions < 0:
		return fmt.Errorf("--max-node-partitions %d: must not be negative (0: sized from the file descriptor limit)", c.MaxPartitions)
	}
	listeners, err := parseListeners(c.Security.Listeners, c.Listen)
	if err != nil {
		return err
	}
	if len(listeners) != 1 {
		return fmt.Errorf("--listeners: a node serves one listener, which proxies, peers and redirect-mode clients share; got %d", len(listeners))
	}
	c.listener = listeners[0]
	if err := c.Security.validate(listeners); err != nil {
		return err
	}
	if err := c.Telemetry.validate(); err != nil {
		return err
	}
	return c.Limits.validate()
}

func runNode(args []string) error {
	var cfg nodeConfig
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	cfg.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	logger, err := newLogger(cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	defer gctune.MinHeap(uint64(cfg.Limits.GCMinHeap))()
	return runUntilSignal(logger, func(ctx context.Context) (func(context.Context) error, error) {
		return startNodeCommand(ctx, cfg, logger)
	})
}

// startNodeCommand runs a node of a cluster whose metadata is in Redis.
func startNodeCommand(ctx context.Context, cfg nodeConfig, logger *slog.Logger) (func(context.Context) error, error) {
	var ready atomic.Bool
	instance := fmt.Sprintf("node-%d", cfg.ID)
	tel, admin, err := startObservability(cfg.Telemetry.config("node", instance), cfg.Admin, logger, &ready)
	if err != nil {
		return nil, err
	}
	budget, err := newMemoryBudget(cfg.Limits.MemoryBudget, tel)
	if err != nil {
		stopObservability(ctx, admin, tel)
		return nil, err
	}
	c, err := connectCluster(ctx, cfg.Redis, cfg.Cluster, logger, tel, admin)
	if err != nil {
		stopObservability(ctx, admin, tel)
		return nil, err
	}
	sec, err := startSecurity(c.ctx, cfg.Security, []listenerSpec{cfg.listener}, c.store, c.cache, tel, "node", logger)
	if err != nil {
		c.close()
		stopObservability(ctx, admin, tel)
		return nil, err
	}
	ln, advertise, err := listenAndAdvertise(cfg.listener.Addr, cfg.Advertise)
	if err != nil {
		c.close()
		stopObservability(ctx, admin, tel)
		return nil, err
	}
	relay := newProxyRelay(int32(cfg.ID), c.store, c.cache, sec.clientTLS(), logger.With("node", cfg.ID))
	n, err := startNodeProcess(c.ctx, nodeOptions{
		ID: int32(cfg.ID), Listener: ln, Advertise: advertise, DataDir: cfg.DataDir,
		Limits: cfg.Limits.forListener(budget), RetentionCheck: cfg.RetentionCheck, ProducerExpiry: cfg.ProducerExpiry,
		CleanerBackoff: cfg.CleanerBackoff, ZeroCopy: cfg.ZeroCopy, LagTimeMax: cfg.LagTimeMax,
		MaxPartitions: nodePartitionLimit(cfg.MaxPartitions, 1),
		Rack:          cfg.Rack,
		Relay:         relay.relay,
		Security:      sec,
		Spec:          cfg.listener,
	}, c.store, c.cache, tel, logger)
	if err != nil {
		ln.Close()
		relay.Close()
		c.close()
		stopObservability(ctx, admin, tel)
		return nil, err
	}
	serveClusterView(admin, clusterView{store: c.store, proxies: liveProxies})
	ready.Store(true)
	logger.Info("strait node is ready", "id", cfg.ID, "listen", ln.Addr().String(), "advertise", advertise,
		"admin", admin.Addr().String(), "data_dir", cfg.DataDir, "cluster", cfg.Cluster, "version", version)
	return func(ctx context.Context) error {
		ready.Store(false)
		err := n.shutdown(ctx)
		relay.Close()
		c.close()
		return errors.Join(err, stopObservability(ctx, admin, tel))
	}, nil
}

// cluster is a connection to a cluster's routing metadata in Redis.
type cluster struct {
	ctx    context.Context // ends when the process stops using the cluster
	cancel context.CancelFunc
	store  *routing.RedisStore
	cache  *routing.Cache
}

// connectCluster opens the Redis store (failing fast, naming the URL, if Redis does not
// answer), starts the cached view, and reports the store in the admin server's readiness.
func connectCluster(ctx context.Context, url, name string, logger *slog.Logger, tel *observability.Telemetry, admin *observability.AdminServer) (*cluster, error) {
	store, err := routing.NewRedisStore(ctx, url, name, logger)
	if err != nil {
		return nil, err
	}
	if observe, err := tel.ObserveRedisCalls(); err == nil {
		store.ObserveCalls(observe)
	} else {
		logger.Warn("Redis call metrics are unavailable; running without them", "err", err)
	}
	c := &cluster{store: store}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if c.cache, err = routing.NewCache(ctx, store, 0, logger); err != nil {
		store.Close()
		return nil, err
	}
	admin.AddCheck(observability.ReadinessCheck{Name: "redis", Check: func(context.Context) error { return c.cache.Err() }})
	return c, nil
}

func (c *cluster) close() {
	c.cancel()
	c.cache.Close()
	c.store.Close()
}

// clusterFlags are the flags every clustered process takes.
func clusterFlags(fs *flag.FlagSet, redis, name, admin *string, adminDefault string, logFormat, logLevel *string) {
	fs.StringVar(redis, "redis", "redis://127.0.0.1:6379/0", "Redis holding the routing metadata: redis://[:password@]host:port/db, or rediss:// for TLS")
	fs.StringVar(name, "cluster", "strait", "cluster name; clusters sharing a Redis keep apart by it")
	fs.StringVar(admin, "admin", adminDefault, "address of the admin HTTP server (/metrics, /healthz, /readyz, /debug/pprof/)")
	fs.StringVar(logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(logLevel, "log-level", "info", "log level: debug, info, warn or error")
}
