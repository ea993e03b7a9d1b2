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
	"github.com/strait-io/strait/proxy"
)

// proxyConfig is everything `strait proxy` can be told.
type proxyConfig struct {
	ID                int
	Listen            string
	Advertise         string
	Redis             string
	Cluster           string
	Admin             string
	LogFormat         string
	LogLevel          string
	Limits            listenerLimits
	UpstreamConns     int
	AutoCreateTopics  bool
	DefaultPartitions int
	OffsetsPartitions int
	InitialRebalance  time.Duration
	ReplicationFactor int
	ImbalanceCheck    time.Duration
	// MaxClusterPartitions caps the partition replicas of the cluster (max.partitions).
	MaxClusterPartitions int
	Mode                 string
	Rack                 string
	Security             securityConfig
	listeners            []listenerSpec // from --listeners or --listen
	Txn                  txnFlags
	Telemetry            telemetryFlags
}

func (c *proxyConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.ID, "id", -1, fmt.Sprintf("broker id clients see for this proxy (default: the lowest free id from %d)", firstAutoProxyID))
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:9092", "address the Kafka listener binds")
	fs.StringVar(&c.Advertise, "advertise", "", "host:port clients are told to connect to (default: the listen address)")
	clusterFlags(fs, &c.Redis, &c.Cluster, &c.Admin, "127.0.0.1:9644", &c.LogFormat, &c.LogLevel)
	c.Limits.flags(fs)
	upstreamFlag(fs, &c.UpstreamConns)
	fs.BoolVar(&c.AutoCreateTopics, "auto-create-topics", true, "create unknown topics on first use (auto.create.topics.enable)")
	fs.IntVar(&c.DefaultPartitions, "default-partitions", 1, "partitions of a topic created without a count (num.partitions)")
	fs.IntVar(&c.OffsetsPartitions, "offsets-partitions", 50, "partitions of __consumer_offsets when it is created (offsets.topic.num.partitions)")
	fs.DurationVar(&c.InitialRebalance, "group-initial-rebalance-delay", 3*time.Second, "how long a new group waits for more members before its first rebalance (group.initial.rebalance.delay.ms)")
	replicationFlags(fs, &c.ReplicationFactor, 1, &c.ImbalanceCheck, &c.MaxClusterPartitions)
	modeFlags(fs, &c.Mode, &c.Rack)
	c.Security.flags(fs)
	c.Txn.flags(fs, 50)
	c.Telemetry.flags(fs)
}

// modeFlags are a proxy's mode and rack, for `strait proxy` and `strait dev`.
func modeFlags(fs *flag.FlagSet, mode, rack *string) {
	fs.StringVar(mode, "mode", "forward", "what clients are told the cluster is: forward (proxies lead, forwarding to nodes), sidecar (this proxy is the whole cluster) or redirect (clients produce and fetch straight to nodes)")
	fs.StringVar(rack, "rack", "", "the rack or zone of this process (broker.rack): forward-mode Metadata prefers proxies in the same rack")
}

func (c *proxyConfig) validate() error {
	switch {
	case c.ID < -1:
		return fmt.Errorf("--id %d: must not be negative", c.ID)
	case c.DefaultPartitions < 1:
		return fmt.Errorf("--default-partitions %d: must be at least 1", c.DefaultPartitions)
	case c.OffsetsPartitions < 1 || c.OffsetsPartitions > 1000:
		return fmt.Errorf("--offsets-partitions %d: must be between 1 and 1000", c.OffsetsPartitions)
	case c.InitialRebalance < 0:
		return fmt.Errorf("--group-initial-rebalance-delay %s: must not be negative", c.InitialRebalance)
	case !validMode(c.Mode):
		return fmt.Errorf("--mode %q: want forward, sidecar or redirect", c.Mode)
	case c.MaxClusterPartitions < 0:
		return fmt.Errorf("--max-cluster-partitions %d: must not be negative (0: no cluster-wide limit)", c.MaxClusterPartitions)
	case c.ReplicationFactor < 1 || c.ImbalanceCheck <= 0:
		return fmt.Errorf("--default-replication-factor must be at least 1 and --leader-imbalance-check-interval positive")
	}
	if err := validateUpstream(c.UpstreamConns); err != nil {
		return err
	}
	var err error
	if c.listeners, err = parseListeners(c.Security.Listeners, c.Listen); err != nil {
		return err
	}
	if err := c.Security.validate(c.listeners); err != nil {
		return err
	}
	if err := c.Txn.validate(); err != nil {
		return err
	}
	if err := c.Telemetry.validate(); err != nil {
		return err
	}
	return c.Limits.validate()
}

func runProxy(args []string) error {
	var cfg proxyConfig
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
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
		return startProxyCommand(ctx, cfg, logger)
	})
}

// startProxyCommand runs a proxy of a cluster whose metadata is in Redis.
func startProxyCommand(ctx context.Context, cfg proxyConfig, logger *slog.Logger) (func(context.Context) error, error) {
	var ready atomic.Bool
	tel, admin, err := startObservability(cfg.Telemetry.config("proxy", cfg.Listen), cfg.Admin, logger, &ready)
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
	sec, err := startSecurity(c.ctx, cfg.Security, cfg.listeners, c.store, c.cache, tel, "proxy", logger)
	if err != nil {
		c.close()
		stopObservability(ctx, admin, tel)
		return nil, err
	}
	listeners, err := bindListeners(cfg.listeners, cfg.Advertise)
	if err != nil {
		c.close()
		stopObservability(ctx, admin, tel)
		return nil, err
	}
	advertise := internalAddr(listeners, sec.tls != nil)
	pp, err := startProxyProcess(c.ctx, proxyOptions{
		ID: int32(cfg.ID), Listeners: listeners, Advertise: advertise, Security: sec, Limits: cfg.Limits.forListener(budget),
		UpstreamConns:    cfg.UpstreamConns,
		AutoCreateTopics: cfg.AutoCreateTopics, DefaultPartitions: cfg.DefaultPartitions,
		OffsetsPartitions: cfg.OffsetsPartitions, InitialRebalance: cfg.InitialRebalance,
		ReplicationFactor: cfg.ReplicationFactor, ImbalanceCheck: cfg.ImbalanceCheck,
		MaxClusterPartitions: cfg.MaxClusterPartitions, Mode: proxy.Mode(cfg.Mode), Rack: cfg.Rack,
		Transactions: cfg.Txn.config(),
	}, c.store, c.cache, tel, logger)
	if err != nil {
		closeListeners(listeners)
		c.close()
		stopObservability(ctx, admin, tel)
		return nil, err
	}
	admin.AddCheck(observabilityGroupsCheck(pp))
	serveClusterView(admin, clusterView{store: c.store, proxies: ownProxy(advertise)})
	ready.Store(true)
	logger.Info("strait proxy is ready: point Kafka clients at "+advertise, "id", pp.opts.ID, "listeners", advertisedListeners(listeners), "authorizer", sec.authorizer != nil,
		"admin", admin.Addr().String(), "cluster", cfg.Cluster, "version", version)
	return func(ctx context.Context) error {
		ready.Store(false)
		err := pp.shutdown(ctx)
		c.close()
		return errors.Join(err, stopObservability(ctx, admin, tel))
	}, nil
}

// replicationFlags are the replication settings of the processes that create topics
// and run the controller.
func replicationFlags(fs *flag.FlagSet, rf *int, rfDefault int, imbalance *time.Duration, maxPartitions *int) {
	fs.IntVar(rf, "default-replication-factor", rfDefault, "replicas of a topic created without a replication factor (default.replication.factor)")
	fs.IntVar(maxPartitions, "max-cluster-partitions", 0, "partition replicas the whole cluster may hold; CreateTopics and CreatePartitions past it get POLICY_VIOLATION (Kafka's max.partitions, KIP-578; 0: only each node's --max-node-partitions)")
	fs.DurationVar(imbalance, "leader-imbalance-check-interval", 5*time.Minute, "how often leadership returns to preferred replicas (leader.imbalance.check.interval.seconds)")
}

func validMode(m string) bool {
	_, err := proxy.ParseMode(m)
	return err == nil
}
