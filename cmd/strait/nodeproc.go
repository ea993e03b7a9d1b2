package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/strait-io/strait/internal/authz"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/observability"
	"github.com/strait-io/strait/partitionlog"
	"github.com/strait-io/strait/partitionlog/node"
	"github.com/strait-io/strait/proxy"
	"github.com/strait-io/strait/routing"
)

// nodeLeaseTTL bounds how long a node that died keeps looking alive.
const nodeLeaseTTL = 10 * time.Second

// nodeOptions is what one partition-log node needs, in dev or on its own.
type nodeOptions struct {
	ID             int32
	Listener       net.Listener
	Advertise      string // host:port others dial
	DataDir        string
	Limits         wire.Limits
	RetentionCheck time.Duration
	CleanerBackoff time.Duration
	ProducerExpiry time.Duration // producer.id.expiration.ms
	ZeroCopy       bool
	LagTimeMax     time.Duration // replica.lag.time.max.ms
	MaxPartitions  int           // max.broker.partitions, published in the registration
	Rack           string        // broker.rack, published in the registration
	// LeaseHolder names this process in the node's lease (default node-<id>@<advertise>):
	// a restarted node with the same holder takes its lease back at once.
	LeaseHolder string
	// Relay answers ordinary clients' requests for APIs only proxies serve (relay.go).
	Relay node.Relay
	// Security and Spec are the listener's security (nil Security: plaintext).
	Security *security
	Spec     listenerSpec
}

// nodeProcess is a running partition-log node: its partitions, its Kafka listener, and
// its registration in the routing Store, which it keeps alive.
type nodeProcess struct {
	opts    nodeOptions
	store   routing.Store
	cache   *routing.Cache
	server  *node.Server
	wire    *wire.Server
	logger  *slog.Logger
	renewed atomic.Int64 // when the lease was last renewed, in Unix nanoseconds
}

// startNodeProcess registers the node, recovers its partitions and starts serving.
// It fails if another live process holds the node's id.
func startNodeProcess(ctx context.Context, opts nodeOptions, store routing.Store, cache *routing.Cache, tel *observability.Telemetry, logger *slog.Logger) (*nodeProcess, error) {
	n := &nodeProcess{opts: opts, store: store, cache: cache, logger: logger.With("node", opts.ID)}
	if err := n.register(ctx); err != nil {
		return nil, err
	}
	if err := cache.Refresh(ctx); err != nil {
		return nil, err
	}
	started := time.Now()
	srv, err := node.New(node.Config{
		ID:                     opts.ID,
		DataDir:                opts.DataDir,
		RetentionCheckInterval: opts.RetentionCheck,
		CleanerBackoff:         opts.CleanerBackoff,
		ProducerIDExpiration:   opts.ProducerExpiry,
		ZeroCopy:               opts.ZeroCopy,
		Hooks:                  recoveryHooks(n.logger),
		ReplicaLagTimeMax:      opts.LagTimeMax,
		AlterISR:               n.alterISR(routing.NewController(store, routing.ControllerConfig{}, n.logger)),
		Fenced:                 n.fenced,
		Relay:                  opts.Relay,
		RelayAPIs:              proxy.APIs(),
		PeerTLS:                opts.Security.clientTLS(),
		Tracer:                 tracerIfOn(tel, "github.com/strait-io/strait/partitionlog/node"),
		Authz:                  authz.New(opts.Security.decider(), opts.Security.denials(), n.logger),
	}, cache, logger) // the node names itself in its lines
	if err != nil {
		return nil, err
	}
	if err := srv.Reconcile(); err != nil {
		return nil, fmt.Errorf("node %d: open partitions: %w", opts.ID, err)
	}
	n.server = srv
	n.logger.Debug("node recovered its partitions", "took", time.Since(started).Round(time.Millisecond), "addr", opts.Advertise)
	go srv.Run(ctx)
	go n.keepRegistered(ctx)
	n.wire = &wire.Server{
		Handler:  srv,
		Logger:   n.logger,
		Limits:   opts.Limits,
		Versions: srv.APIs().Versions,
		Observe:  observeRequests(tel, "node"),
		ZeroCopy: opts.ZeroCopy,
		Security: opts.Security.wire(opts.Spec),
	}
	if err := observeListener(tel, "node", "node-"+strconv.Itoa(int(opts.ID)), n.wire); err != nil {
		n.logger.Warn("connection metrics are unavailable; serving without them", "err", err)
	}
	if err := observeConsumerReads(tel, opts.ID, srv.ConsumerReadStats); err != nil {
		n.logger.Warn("consumer read metrics are unavailable; serving without them", "err", err)
	}
	if err := observePartitions(tel, opts.ID, srv); err != nil {
		n.logger.Warn("partition metrics are unavailable; serving without them", "err", err)
	}
	go serve(n.wire, opts.Listener, n.logger)
	return n, nil
}

// register takes the node's lease and records its address. The lease holder names the
// address, so a node restarted in place takes its lease back at once while a second
// process claiming the same id elsewhere is refused.
func (n *nodeProcess) register(ctx context.Context) error {
	holder := n.opts.LeaseHolder
	if holder == "" {
		holder = "node-" + strconv.Itoa(int(n.opts.ID)) + "@" + n.opts.Advertise
	}
	if _, err := n.store.AcquireLease(ctx, routing.NodeLeaseName(n.opts.ID), holder, nodeLeaseTTL); err != nil {
		if errors.Is(err, routing.ErrLeaseHeld) {
			return fmt.Errorf("node id %d is in use by another live process (give each node its own --id): %w", n.opts.ID, err)
		}
		return fmt.Errorf("node %d: register: %w", n.opts.ID, err)
	}
	n.renewed.Store(time.Now().UnixNano())
	want := routing.Node{ID: n.opts.ID, Addr: n.opts.Advertise, MaxPartitions: n.opts.MaxPartitions, Rack: n.opts.Rack}
	if n.opts.Spec.Name != "" {
		want.Listeners = map[string]string{n.opts.Spec.Name: n.opts.Advertise}
	}
	if cur, ok := n.cache.Snapshot().Nodes[n.opts.ID]; ok && cur.Equal(want) {
		return nil
	}
	return n.store.RegisterNode(ctx, want)
}

// keepRegistered renews the lease, registers again if the Store forgot the node, and
// republishes the topics whose data this node holds if the Store lost them (a Redis
// restarted empty), until ctx ends.
func (n *nodeProcess) keepRegistered(ctx context.Context) {
	ticker := time.NewTicker(nodeLeaseTTL / 3)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := n.register(ctx); err != nil {
			n.logger.Warn("cannot renew the node's registration; it keeps serving from its cached metadata", "err", err)
			continue
		}
		if err := n.server.Republish(ctx, n.store.CreateTopic); err != nil {
			n.logger.Warn("republishing topics the metadata store lost failed; will retry", "err", err)
		}
	}
}

func (n *nodeProcess) shutdown(ctx context.Context) error {
	return errors.Join(n.wire.Shutdown(ctx), n.server.Close())
}

// fenced reports that the lease may have expired: the controller may have moved this
// node's leaderships elsewhere, so it must not take writes as a leader until renewed.
func (n *nodeProcess) fenced() bool {
	return time.Since(time.Unix(0, n.renewed.Load())) > nodeLeaseTTL
}

// alterISR writes an ISR change this node proposes as leader (Kafka's AlterPartition).
func (n *nodeProcess) alterISR(c *routing.Controller) func(context.Context, string, int32, int32, []int32, int32) error {
	return func(ctx context.Context, topic string, index, leaderEpoch int32, isr []int32, partitionEpoch int32) error {
		live, err := c.LiveNodes(ctx)
		if err != nil {
			return err
		}
		_, err = c.AlterPartitionISR(ctx, topic, index, n.opts.ID, leaderEpoch, isr, partitionEpoch, live)
		return err
	}
}

// observeConsumerReads reports, as strait.node.consumer_reads labelled with the node's
// id, the partitions a node answered to consumers' fetches, by how: read as leader
// ("leader"), read as follower for a client in its rack ("follower", KIP-392), or
// answered with a preferred read replica in the client's rack ("redirect").
func observeConsumerReads(tel *observability.Telemetry, id int32, stats func() node.ConsumerReadStats) error {
	meter := tel.Meter("github.com/strait-io/strait/cmd/strait")
	reads, err := meter.Int64ObservableCounter("strait.node.consumer_reads",
		metric.WithDescription("Partitions answered to consumers' fetches: read as leader, read as follower (KIP-392), or redirected to a replica in the client's rack."),
		metric.WithUnit("{partition}"))
	if err != nil {
		return fmt.Errorf("create strait.node.consumer_reads: %w", err)
	}
	nodeID := attribute.String("node", strconv.Itoa(int(id)))
	as := func(how string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(nodeID, attribute.String("as", how)))
	}
	asLeader, asFollower, redirect := as("leader"), as("follower"), as("redirect")
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := stats()
		o.ObserveInt64(reads, st.AsLeader, asLeader)
		o.ObserveInt64(reads, st.AsFollower, asFollower)
		o.ObserveInt64(reads, st.Redirected, redirect)
		return nil
	}, reads)
	if err != nil {
		return fmt.Errorf("observe consumer reads of node %d: %w", id, err)
	}
	return nil
}

// recoveryHooks logs what opening a partition found and shows progress on long ones.
func recoveryHooks(logger *slog.Logger) partitionlog.Hooks {
	return partitionlog.Hooks{
		OnRecover: func(dir string, segments int, truncated int64, took time.Duration) {
			if truncated > 0 {
				logger.Warn("recovered a partition with a torn tail", "dir", dir, "segments", segments, "truncated_bytes", truncated, "took", took)
			}
		},
		OnRecoverProgress: func(dir string, checked, total int64) {
			logger.Info("recovering partition", "dir", dir, "checked_bytes", checked, "total_bytes", total,
				"percent", 100*checked/max(total, 1))
		},
	}
}
