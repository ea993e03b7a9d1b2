package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/gctune"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/observability"
	"github.com/strait-io/strait/proxy"
	"github.com/strait-io/strait/routing"
)

// devConfig is everything `strait dev` can be told.
type devConfig struct {
	Listen               string // proxy's Kafka listener
	Advertise            string // host:port clients are told; derived from Listen when empty
	DataDir              string
	Nodes                int
	Admin                string // admin HTTP: /metrics, /healthz, /readyz, /debug/pprof/
	LogFormat            string
	LogLevel             string
	AutoCreateTopics     bool
	DefaultPartitions    int
	Limits               listenerLimits
	UpstreamConns        int
	OffsetsPartitions    int           // offsets.topic.num.partitions
	InitialRebalance     time.Duration // group.initial.rebalance.delay.ms
	RetentionCheck       time.Duration // log.retention.check.interval.ms
	CleanerBackoff       time.Duration // log.cleaner.backoff.ms
	ProducerExpiry       time.Duration // producer.id.expiration.ms
	ZeroCopy             bool
	ReplicationFactor    int // default.replication.factor, capped at --nodes
	ImbalanceCheck       time.Duration
	LagTimeMax           time.Duration
	MaxNodePartitions    int
	MaxClusterPartitions int
	Mode                 string
	Rack                 string
	Txn                  txnFlags
	NodeRacks            string   // --node-racks as given
	nodeRacks            []string // by node, in id order; nil when not given
	Security             securityConfig
	listeners            []listenerSpec // from --listeners or --listen
	Telemetry            telemetryFlags
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
	c.Limits.flags(fs)
	upstreamFlag(fs, &c.UpstreamConns)
	fs.IntVar(&c.OffsetsPartitions, "offsets-partitions", 10, "partitions of __consumer_offsets when it is created (offsets.topic.num.partitions)")
	fs.DurationVar(&c.InitialRebalance, "group-initial-rebalance-delay", 3*time.Second, "how long a new group waits for more members before its first rebalance (group.initial.rebalance.delay.ms)")
	fs.DurationVar(&c.RetentionCheck, "log-retention-check-interval", 5*time.Minute, "how often partitions delete segments past retention.ms and retention.bytes (log.retention.check.interval.ms)")
	fs.DurationVar(&c.CleanerBackoff, "log-cleaner-backoff", 15*time.Second, "how often compacted topics are cleaned (log.cleaner.backoff.ms)")
	producerExpiryFlag(fs, &c.ProducerExpiry)
	fs.BoolVar(&c.ZeroCopy, "zero-copy", true, "send fetched record bytes from segment files with sendfile")
	replicationFlags(fs, &c.ReplicationFactor, 3, &c.ImbalanceCheck, &c.MaxClusterPartitions)
	fs.DurationVar(&c.LagTimeMax, "replica-lag-time-max", 30*time.Second, "how long a follower may lag before it leaves the ISR (replica.lag.time.max.ms)")
	maxNodePartitionsFlag(fs, &c.MaxNodePartitions)
	modeFlags(fs, &c.Mode, &c.Rack)
	c.Security.flags(fs)
	c.Txn.flags(fs, 10)
	fs.StringVar(&c.NodeRacks, "node-racks", "", "racks of the nodes, comma-separated, one per node in id order (a,b,c for --nodes 3): consumers that set client.rack read from the replica in theirs rather than the leader (KIP-392)")
	c.Telemetry.flags(fs)
}

// validate fills derived values and rejects bad ones, naming the setting.
func (c *devConfig) validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	var err error
	if c.listeners, err = parseListeners(c.Security.Listeners, c.Listen); err != nil {
		return err
	}
	if err := c.Security.validate(c.listeners); err != nil {
		return err
	}
	if c.Advertise == "" {
		c.Advertise = advertisedFrom(c.listeners[0].Addr)
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
	case c.OffsetsPartitions < 1 || c.OffsetsPartitions > 1000:
		return fmt.Errorf("--offsets-partitions %d: must be between 1 and 1000", c.OffsetsPartitions)
	case c.InitialRebalance < 0:
		return fmt.Errorf("--group-initial-rebalance-delay %s: must not be negative", c.InitialRebalance)
	case c.RetentionCheck <= 0:
		return fmt.Errorf("--log-retention-check-interval %s: must be positive", c.RetentionCheck)
	case c.CleanerBackoff <= 0:
		return fmt.Errorf("--log-cleaner-backoff %s: must be positive", c.CleanerBackoff)
	case c.ProducerExpiry <= 0:
		return fmt.Errorf("--producer-id-expiration %s: must be positive", c.ProducerExpiry)
	case !validMode(c.Mode):
		return fmt.Errorf("--mode %q: want forward, sidecar or redirect", c.Mode)
	case c.MaxNodePartitions < 0 || c.MaxClusterPartitions < 0:
		return fmt.Errorf("--max-node-partitions %d, --max-cluster-partitions %d: must not be negative (0: the default)", c.MaxNodePartitions, c.MaxClusterPartitions)
	case c.ReplicationFactor < 1 || c.ImbalanceCheck <= 0 || c.LagTimeMax <= 0:
		return fmt.Errorf("--default-replication-factor must be at least 1, --leader-imbalance-check-interval and --replica-lag-time-max positive")
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := validateUpstream(c.UpstreamConns); err != nil {
		return err
	}
	if err := c.Telemetry.validate(); err != nil {
		return err
	}
	if c.NodeRacks != "" {
		c.nodeRacks = strings.Split(c.NodeRacks, ",")
		if len(c.nodeRacks) != c.Nodes || slices.Contains(c.nodeRacks, "") {
			return fmt.Errorf("--node-racks %q: want %d racks, one per node, none empty", c.NodeRacks, c.Nodes)
		}
	}
	c.ReplicationFactor = min(c.ReplicationFactor, c.Nodes) // as many replicas as dev has nodes
	return c.Txn.validate()
}

// nodeRack is the rack of node id (counted from 1), "" when --node-racks is not given.
func (c *devConfig) nodeRack(id int32) string {
	if c.nodeRacks == nil {
		return ""
	}
	return c.nodeRacks[id-1]
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
	defer gctune.MinHeap(uint64(cfg.Limits.GCMinHeap))()
	return runUntilSignal(logger, func(ctx context.Context) (func(context.Context) error, error) {
		d, err := startDev(ctx, cfg, logger)
		if err != nil {
			return nil, err
		}
		return d.shutdown, nil
	})
}

// dev is a running `strait dev`: one proxy, N nodes and an in-process store.
type dev struct {
	logger    *slog.Logger
	telemetry *observability.Telemetry
	store     *routing.MemStore
	cache     *routing.Cache
	budget    *wire.MemoryBudget // shared by the proxy's and the nodes' listeners
	nodes     []*nodeProcess
	proxy     *proxyProcess
	admin     *observability.AdminServer
	cancel    context.CancelFunc
	ready     atomic.Bool
	// relayTo is the proxy the nodes relay to: set once it serves, cleared as it stops.
	relayTo  atomic.Pointer[proxy.Proxy]
	security *security
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
	d.telemetry, d.admin, err = startObservability(cfg.Telemetry.config("dev", "dev"), cfg.Admin, d.logger, &d.ready)
	if err != nil {
		return err
	}
	if d.budget, err = newMemoryBudget(cfg.Limits.MemoryBudget, d.telemetry); err != nil {
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
	if d.security, err = startSecurity(ctx, cfg.Security, cfg.listeners, d.store, d.cache, d.telemetry, "dev", d.logger); err != nil {
		return err
	}
	for i := range cfg.Nodes {
		if err := d.startNode(ctx, cfg, int32(i+1)); err != nil {
			return err
		}
	}
	// One process: nodes replicate from each other and the proxy forwards to them by
	// calling their handlers, not through sockets (wire.Pool.ServeLocally).
	for _, a := range d.nodes {
		for _, b := range d.nodes {
			if a != b {
				a.server.ServePeerLocally(b.opts.Advertise, b.wire)
			}
		}
	}
	return d.startProxy(ctx, cfg)
}

// startNode runs one node on a fresh loopback port.
func (d *dev) startNode(ctx context.Context, cfg devConfig, id int32) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("node %d: listen: %w", id, err)
	}
	n, err := startNodeProcess(ctx, nodeOptions{
		ID:             id,
		Listener:       ln,
		Advertise:      ln.Addr().String(),
		DataDir:        filepath.Join(cfg.DataDir, "node-"+strconv.Itoa(int(id))),
		Limits:         cfg.Limits.forListener(d.budget),
		RetentionCheck: cfg.RetentionCheck,
		CleanerBackoff: cfg.CleanerBackoff,
		ProducerExpiry: cfg.ProducerExpiry,
		ZeroCopy:       cfg.ZeroCopy,
		LagTimeMax:     cfg.LagTimeMax,
		MaxPartitions:  nodePartitionLimit(cfg.MaxNodePartitions, cfg.Nodes),
		Rack:           cfg.nodeRack(id),
		// Dev nodes listen on a new port at each start; the data dir is what they are.
		LeaseHolder: "dev-node-" + strconv.Itoa(int(id)) + "@" + cfg.DataDir,
		Relay:       d.relay,
		// Clients reach dev nodes only in redirect mode, as they reach the proxy.
		Security: d.security,
		Spec:     cfg.listeners[0],
	}, d.store, d.cache, d.telemetry, d.logger)
	if err != nil {
		ln.Close()
		return err
	}
	d.nodes = append(d.nodes, n)
	return nil
}

func (d *dev) startProxy(ctx context.Context, cfg devConfig) error {
	listeners, err := bindListeners(cfg.listeners, cfg.Advertise)
	if err != nil {
		return err
	}
	d.proxy, err = startProxyProcess(ctx, proxyOptions{
		ID:                   0, // the sidecar's one broker; nodes count from 1
		Listeners:            listeners,
		Advertise:            internalAddr(listeners, d.security.tls != nil),
		Security:             d.security,
		Limits:               cfg.Limits.forListener(d.budget),
		UpstreamConns:        cfg.UpstreamConns,
		AutoCreateTopics:     cfg.AutoCreateTopics,
		DefaultPartitions:    cfg.DefaultPartitions,
		OffsetsPartitions:    cfg.OffsetsPartitions,
		InitialRebalance:     cfg.InitialRebalance,
		ReplicationFactor:    cfg.ReplicationFactor,
		ImbalanceCheck:       cfg.ImbalanceCheck,
		MaxClusterPartitions: cfg.MaxClusterPartitions,
		Mode:                 proxy.Mode(cfg.Mode),
		Rack:                 cfg.Rack,
		LocalNodes:           d.localNodes(),
		Transactions:         cfg.Txn.config(),
	}, d.store, d.cache, d.telemetry, d.logger)
	if err != nil {
		closeListeners(listeners)
		return err
	}
	d.admin.AddCheck(observabilityGroupsCheck(d.proxy))
	serveClusterView(d.admin, clusterView{store: d.store, proxies: ownProxy(cfg.Advertise)})
	d.relayTo.Store(d.proxy.proxy)
	return nil
}

// localNodes are the nodes' listeners by address, for the proxy to call in process.
func (d *dev) localNodes() map[string]*wire.Server {
	m := make(map[string]*wire.Server, len(d.nodes))
	for _, n := range d.nodes {
		m[n.opts.Advertise] = n.wire
	}
	return m
}

// relay answers the nodes' relayed requests with the proxy of this process: in the
// same process, its handler sees the client's own id and address.
func (d *dev) relay(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	p := d.relayTo.Load()
	if p == nil {
		return nil, errors.New("the proxy is not serving")
	}
	return p.ServeKafka(ctx, req)
}

// shutdown stops taking requests at the proxy first, then lets nodes finish and
// close their logs cleanly, so nothing acknowledged is left unflushed.
func (d *dev) shutdown(ctx context.Context) error {
	d.ready.Store(false)
	var errs []error
	d.relayTo.Store(nil)
	if d.proxy != nil {
		errs = append(errs, d.proxy.shutdown(ctx))
	}
	for _, n := range d.nodes {
		errs = append(errs, n.shutdown(ctx))
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
	errs = append(errs, stopObservability(ctx, d.admin, d.telemetry))
	return errors.Join(errs...)
}
