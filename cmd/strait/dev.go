package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/coordinator/classic"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/observability"
	"github.com/strait-io/strait/partitionlog"
	"github.com/strait-io/strait/partitionlog/node"
	"github.com/strait-io/strait/proxy"
	"github.com/strait-io/strait/routing"
)

// devConfig is everything `strait dev` can be told.
type devConfig struct {
	Listen            string // proxy's Kafka listener
	Advertise         string // host:port clients are told; derived from Listen when empty
	DataDir           string
	Nodes             int
	Admin             string // admin HTTP: /metrics, /healthz, /readyz, /debug/pprof/
	LogFormat         string
	LogLevel          string
	AutoCreateTopics  bool
	DefaultPartitions int
	MaxRequestBytes   int
	OffsetsPartitions int           // offsets.topic.num.partitions
	InitialRebalance  time.Duration // group.initial.rebalance.delay.ms
	RetentionCheck    time.Duration // log.retention.check.interval.ms
	CleanerBackoff    time.Duration // log.cleaner.backoff.ms
	ZeroCopy          bool
}

func (c *devConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:9092", "address the Kafka listener binds")
	fs.StringVar(&c.Advertise, "advertise", "", "host:port clients are told to connect to (default: the listen address, with localhost for an unspecified host)")
	fs.StringVar(&c.DataDir, "data-dir", "./strait-data", "directory for partition data and metadata")
	fs.IntVar(&c.Nodes, "nodes", 1, "number of partition-log nodes to run in this process")
	fs.StringVar(&c.Admin, "admin", "127.0.0.1:9644", "address of the admin HTTP server (/metrics, /healthz, /readyz, /debug/pprof/)")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&c.AutoCreateTopics, "auto-create-topics", true, "create unknown topics on first use (auto.create.topics.enable)")
	fs.IntVar(&c.DefaultPartitions, "default-partitions", 1, "partitions of a topic created without a count (num.partitions)")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", wire.DefaultMaxRequestBytes, "largest request accepted; larger ones close the connection")
	fs.IntVar(&c.OffsetsPartitions, "offsets-partitions", 10, "partitions of __consumer_offsets when it is created (offsets.topic.num.partitions)")
	fs.DurationVar(&c.InitialRebalance, "group-initial-rebalance-delay", 3*time.Second, "how long a new group waits for more members before its first rebalance (group.initial.rebalance.delay.ms)")
	fs.DurationVar(&c.RetentionCheck, "log-retention-check-interval", 5*time.Minute, "how often partitions delete segments past retention.ms and retention.bytes (log.retention.check.interval.ms)")
	fs.DurationVar(&c.CleanerBackoff, "log-cleaner-backoff", 15*time.Second, "how often compacted topics are cleaned (log.cleaner.backoff.ms)")
	fs.BoolVar(&c.ZeroCopy, "zero-copy", true, "send fetched record bytes from segment files with sendfile")
}

// validate fills derived values and rejects bad ones, naming the setting.
func (c *devConfig) validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	if c.Advertise == "" {
		c.Advertise = advertisedFrom(c.Listen)
	}
	if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
		return fmt.Errorf("--advertise %q: %w", c.Advertise, err)
	}
	switch {
	case c.Nodes < 1 || c.Nodes > 64:
		return fmt.Errorf("--nodes %d: must be between 1 and 64", c.Nodes)
	case c.DataDir == "":
		return fmt.Errorf("--data-dir is empty")
	case c.DefaultPartitions < 1:
		return fmt.Errorf("--default-partitions %d: must be at least 1", c.DefaultPartitions)
	case c.MaxRequestBytes < 1024:
		return fmt.Errorf("--max-request-bytes %d: must be at least 1024", c.MaxRequestBytes)
	case c.OffsetsPartitions < 1 || c.OffsetsPartitions > 1000:
		return fmt.Errorf("--offsets-partitions %d: must be between 1 and 1000", c.OffsetsPartitions)
	case c.InitialRebalance < 0:
		return fmt.Errorf("--group-initial-rebalance-delay %s: must not be negative", c.InitialRebalance)
	case c.RetentionCheck <= 0:
		return fmt.Errorf("--log-retention-check-interval %s: must be positive", c.RetentionCheck)
	case c.CleanerBackoff <= 0:
		return fmt.Errorf("--log-cleaner-backoff %s: must be positive", c.CleanerBackoff)
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

func runDev(args []string) error {
	var cfg devConfig
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := startDev(ctx, cfg, logger)
	if err != nil {
		logger.Error("strait dev could not start", "err", err)
		return err
	}
	<-ctx.Done()
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := d.shutdown(shutdownCtx); err != nil {
		logger.Error("shutdown was not clean", "err", err)
		return err
	}
	logger.Info("stopped")
	return nil
}

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

// dev is a running `strait dev`: one proxy, N nodes and an in-process store.
type dev struct {
	logger    *slog.Logger
	telemetry *observability.Telemetry
	store     *routing.MemStore
	cache     *routing.Cache
	nodes     []*devNode
	proxy     *proxy.Proxy
	proxySrv  *wire.Server
	admin     *observability.AdminServer
	cancel    context.CancelFunc
	ready     atomic.Bool
}

type devNode struct {
	server *node.Server
	wire   *wire.Server
}

func startDev(ctx context.Context, cfg devConfig, logger *slog.Logger) (*dev, error) {
	d := &dev{logger: logger}
	ctx, d.cancel = context.WithCancel(ctx)
	if err := d.start(ctx, cfg); err != nil {
		d.shutdown(context.Background())
		return nil, err
	}
	d.ready.Store(true)
	logger.Info("strait dev is ready: point Kafka clients at "+cfg.Advertise,
		"listen", cfg.Listen, "advertise", cfg.Advertise, "admin", d.admin.Addr().String(),
		"data_dir", cfg.DataDir, "nodes", cfg.Nodes, "version", version)
	return d, nil
}

func (d *dev) start(ctx context.Context, cfg devConfig) error {
	var err error
	d.telemetry, err = observability.New(observability.Config{ServiceName: "strait", Tier: "dev", InstanceID: "dev"})
	if err != nil {
		return err
	}
	d.admin = observability.NewAdminServer(cfg.Admin, d.telemetry, d.logger, observability.ReadinessCheck{
		Name:  "serving",
		Check: func(context.Context) error { return readyErr(d.ready.Load()) },
	})
	if err := d.admin.Start(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create --data-dir: %w", err)
	}
	if d.store, err = routing.NewMemStore(filepath.Join(cfg.DataDir, "metadata.json")); err != nil {
		return err
	}
	if d.cache, err = routing.NewCache(ctx, d.store, 0, d.logger); err != nil {
		return err
	}
	if err := d.startNodes(ctx, cfg); err != nil {
		return err
	}
	return d.startProxy(ctx, cfg)
}

// startNodes registers every node at a fresh loopback port, recovers its partitions,
// and starts serving.
func (d *dev) startNodes(ctx context.Context, cfg devConfig) error {
	listeners := make([]net.Listener, cfg.Nodes)
	for i := range listeners {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("node %d: listen: %w", i+1, err)
		}
		listeners[i] = ln
		if err := d.store.RegisterNode(ctx, routing.Node{ID: int32(i + 1), Addr: ln.Addr().String()}); err != nil {
			return err
		}
	}
	if err := d.cache.Refresh(ctx); err != nil {
		return err
	}
	for i, ln := range listeners {
		n, err := d.startNode(ctx, cfg, int32(i+1), ln)
		if err != nil {
			return err
		}
		d.nodes = append(d.nodes, n)
	}
	return nil
}

func (d *dev) startNode(ctx context.Context, cfg devConfig, id int32, ln net.Listener) (*devNode, error) {
	logger := d.logger.With("node", id)
	started := time.Now()
	srv, err := node.New(node.Config{
		ID:                     id,
		DataDir:                filepath.Join(cfg.DataDir, "node-"+strconv.Itoa(int(id))),
		RetentionCheckInterval: cfg.RetentionCheck,
		CleanerBackoff:         cfg.CleanerBackoff,
		ZeroCopy:               cfg.ZeroCopy,
		Hooks: partitionlog.Hooks{OnRecover: func(dir string, segments int, truncated int64, took time.Duration) {
			if truncated > 0 {
				logger.Warn("recovered a partition with a torn tail", "dir", dir, "segments", segments, "truncated_bytes", truncated, "took", took)
			}
		}},
	}, d.cache, logger)
	if err != nil {
		return nil, err
	}
	if err := srv.Reconcile(); err != nil {
		return nil, fmt.Errorf("node %d: open partitions: %w", id, err)
	}
	logger.Info("node recovered its partitions", "took", time.Since(started).Round(time.Millisecond), "addr", ln.Addr().String())
	go srv.Run(ctx)
	ws := &wire.Server{
		Handler:         srv,
		Logger:          logger,
		MaxRequestBytes: int32(cfg.MaxRequestBytes),
		Versions:        node.APIs.Versions,
		Observe:         d.telemetry.ObserveRequest("node"),
		ZeroCopy:        cfg.ZeroCopy,
	}
	go serve(ws, ln, logger)
	return &devNode{server: srv, wire: ws}, nil
}

func (d *dev) startProxy(ctx context.Context, cfg devConfig) error {
	controller := routing.NewController(d.store, routing.ControllerConfig{DefaultPartitions: int32(cfg.DefaultPartitions)}, d.logger)
	p, err := proxy.New(proxy.Config{
		BrokerID:         0,
		AdvertisedAddr:   cfg.Advertise,
		AutoCreateTopics: cfg.AutoCreateTopics,
	}, d.cache, d.store, controller, d.logger.With("tier", "proxy"))
	if err != nil {
		return err
	}
	d.proxy = p
	if err := d.store.RegisterProxy(ctx, routing.Proxy{ID: 0, Addr: cfg.Advertise}); err != nil {
		return err
	}
	delay := cfg.InitialRebalance
	if delay == 0 {
		delay = -1 // classic.Config reads zero as "Kafka's default"; the flag's 0 means none
	}
	groups := coordinator.Config{
		Partitions: int32(cfg.OffsetsPartitions),
		Classic:    classic.Config{InitialRebalanceDelay: delay},
	}
	if err := p.StartGroups(ctx, groups); err != nil {
		return fmt.Errorf("start consumer groups: %w", err)
	}
	d.admin.AddCheck(observability.ReadinessCheck{Name: "groups", Check: func(context.Context) error { return p.GroupsLoaded() }})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", cfg.Listen, err)
	}
	d.proxySrv = &wire.Server{
		Handler:         p,
		Logger:          d.logger.With("tier", "proxy"),
		MaxRequestBytes: int32(cfg.MaxRequestBytes),
		Versions:        proxy.APIs().Versions,
		Observe:         d.telemetry.ObserveRequest("proxy"),
	}
	go serve(d.proxySrv, ln, d.logger)
	return nil
}

// shutdown stops taking requests at the proxy first, then lets nodes finish and
// close their logs cleanly, so nothing acknowledged is left unflushed.
func (d *dev) shutdown(ctx context.Context) error {
	d.ready.Store(false)
	var errs []error
	if d.proxySrv != nil {
		errs = append(errs, d.proxySrv.Shutdown(ctx))
	}
	if d.proxy != nil {
		errs = append(errs, d.proxy.Close())
	}
	for _, n := range d.nodes {
		errs = append(errs, n.wire.Shutdown(ctx), n.server.Close())
	}
	if d.cancel != nil {
		d.cancel()
	}
	if d.cache != nil {
		d.cache.Close()
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	if d.admin != nil {
		errs = append(errs, d.admin.Shutdown(ctx))
	}
	if d.telemetry != nil {
		errs = append(errs, d.telemetry.Shutdown(ctx))
	}
	return errors.Join(errs...)
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
