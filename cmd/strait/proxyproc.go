package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/coordinator/classic"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/observability"
	"github.com/strait-io/strait/proxy"
	"github.com/strait-io/strait/routing"
)

const (
	// proxyLeaseTTL bounds how long a dead proxy's id stays taken.
	proxyLeaseTTL = 10 * time.Second
	// firstAutoProxyID keeps registered proxy ids clear of configured node ids.
	firstAutoProxyID = 1000
	// controllerLeaseTTL bounds how long the cluster goes without a controller.
	controllerLeaseTTL = 10 * time.Second
)

// proxyOptions is what one proxy needs, in dev or on its own.
type proxyOptions struct {
	ID                int32 // -1: take the lowest free id from firstAutoProxyID up
	Listener          net.Listener
	Advertise         string
	Limits            wire.Limits
	UpstreamConns     int // connections to each node
	AutoCreateTopics  bool
	DefaultPartitions int
	OffsetsPartitions int
	InitialRebalance  time.Duration
	ReplicationFactor int           // default.replication.factor
	ImbalanceCheck    time.Duration // leader.imbalance.check.interval.seconds
	// MaxClusterPartitions caps the partition replicas of the cluster (max.partitions).
	MaxClusterPartitions int
}

// proxyProcess is a running proxy: its Kafka listener, its consumer-group coordinator,
// its registration, and (when it holds that lease) the controller role.
type proxyProcess struct {
	opts       proxyOptions
	store      routing.Store
	cache      *routing.Cache
	proxy      *proxy.Proxy
	controller *routing.Controller
	wire       *wire.Server
	logger     *slog.Logger
}

// startProxyProcess registers the proxy, starts its group coordinator once a node
// exists to hold __consumer_offsets, and starts serving.
func startProxyProcess(ctx context.Context, opts proxyOptions, store routing.Store, cache *routing.Cache, tel *observability.Telemetry, logger *slog.Logger) (*proxyProcess, error) {
	pp := &proxyProcess{opts: opts, store: store, cache: cache, logger: logger.With("tier", "proxy")}
	if err := pp.register(ctx); err != nil {
		return nil, err
	}
	pp.logger = pp.logger.With("proxy", pp.opts.ID)
	controller := routing.NewController(store, routing.ControllerConfig{
		DefaultPartitions:        int32(opts.DefaultPartitions),
		DefaultReplicationFactor: int16(opts.ReplicationFactor),
		MaxClusterPartitions:     opts.MaxClusterPartitions,
	}, pp.logger)
	pp.controller = controller
	p, err := proxy.New(proxy.Config{
		BrokerID:         pp.opts.ID,
		AdvertisedAddr:   opts.Advertise,
		AutoCreateTopics: opts.AutoCreateTopics,
		Upstream:         wire.PoolOptions{ConnsPerAddr: opts.UpstreamConns, IdleTimeout: upstreamIdle(opts.Limits.IdleTimeout)},
	}, cache, store, controller, pp.logger)
	if err != nil {
		return nil, err
	}
	pp.proxy = p
	if err := pp.startGroups(ctx); err != nil {
		p.Close()
		return nil, err
	}
	go pp.keepRegistered(ctx)
	go pp.control(ctx)
	pp.wire = &wire.Server{
		Handler:  p,
		Logger:   pp.logger,
		Limits:   opts.Limits,
		Versions: proxy.APIs().Versions,
		Observe:  observeRequests(tel, "proxy"),
	}
	if err := observeListener(tel, "proxy", "proxy-"+strconv.Itoa(int(pp.opts.ID)), pp.wire); err != nil {
		pp.logger.Warn("connection metrics are unavailable; serving without them", "err", err)
	}
	if err := observeUpstream(tel, p.UpstreamStats); err != nil {
		pp.logger.Warn("upstream connection metrics are unavailable; serving without them", "err", err)
	}
	go serve(pp.wire, opts.Listener, pp.logger)
	return pp, nil
}

// register gives the proxy an id (the configured one, or the lowest free one) held by
// a lease, and records its advertised address.
func (pp *proxyProcess) register(ctx context.Context) error {
	holder := "proxy@" + pp.opts.Advertise
	if pp.opts.ID >= 0 {
		if _, err := pp.store.AcquireLease(ctx, proxyLeaseName(pp.opts.ID), holder, proxyLeaseTTL); err != nil {
			return fmt.Errorf("proxy id %d: %w", pp.opts.ID, err)
		}
	} else {
		id, err := pp.claimID(ctx, holder)
		if err != nil {
			return err
		}
		pp.opts.ID = id
	}
	if cur, ok := pp.cache.Snapshot().Proxies[pp.opts.ID]; ok && cur.Addr == pp.opts.Advertise {
		return nil
	}
	return pp.store.RegisterProxy(ctx, routing.Proxy{ID: pp.opts.ID, Addr: pp.opts.Advertise})
}

func (pp *proxyProcess) claimID(ctx context.Context, holder string) (int32, error) {
	for id := int32(firstAutoProxyID); id < firstAutoProxyID+10_000; id++ {
		_, err := pp.store.AcquireLease(ctx, proxyLeaseName(id), holder, proxyLeaseTTL)
		switch {
		case err == nil:
			return id, nil
		case !errors.Is(err, routing.ErrLeaseHeld):
			return 0, fmt.Errorf("claim a proxy id: %w", err)
		}
	}
	return 0, errors.New("claim a proxy id: every id is taken")
}

// startGroups starts the coordinator, waiting for a node to register if none has.
func (pp *proxyProcess) startGroups(ctx context.Context) error {
	delay := pp.opts.InitialRebalance
	if delay == 0 {
		delay = -1 // classic.Config reads zero as "Kafka's default"; the flag's 0 means none
	}
	cfg := coordinator.Config{
		Partitions: int32(pp.opts.OffsetsPartitions),
		Classic:    classic.Config{InitialRebalanceDelay: delay},
	}
	for logged := false; ; {
		err := pp.proxy.StartGroups(ctx, cfg)
		if !errors.Is(err, routing.ErrNoNodes) {
			if err != nil {
				return fmt.Errorf("start consumer groups: %w", err)
			}
			return nil
		}
		if !logged {
			pp.logger.Info("waiting for a partition-log node to register before starting consumer groups")
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		_ = pp.cache.Refresh(ctx)
	}
}

// keepRegistered renews the proxy's id lease and registers it again if the Store
// forgot it, until ctx ends.
func (pp *proxyProcess) keepRegistered(ctx context.Context) {
	ticker := time.NewTicker(proxyLeaseTTL / 3)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := pp.register(ctx); err != nil {
				pp.logger.Warn("cannot renew the proxy's registration; it keeps serving from its cached metadata", "err", err)
			}
		}
	}
}

// control runs the controller role while this proxy holds its lease, one process at a
// time: nodes whose lease expired leave the ISRs and lose their leaderships to live
// ISR replicas; nodes that come back lead partitions left without a leader; and every
// leader.imbalance interval preferred leaders are restored.
func (pp *proxyProcess) control(ctx context.Context) {
	ticker := time.NewTicker(controllerLeaseTTL / 5)
	defer ticker.Stop()
	holder := "proxy-" + strconv.Itoa(int(pp.opts.ID)) + "@" + pp.opts.Advertise
	down := map[int32]bool{}
	leading := false
	lastBalance := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		_, err := pp.store.AcquireLease(ctx, "controller", holder, controllerLeaseTTL)
		if now := err == nil; now != leading {
			leading = now
			clear(down)
			pp.logger.Info("controller role changed", "active", leading)
		}
		if !leading {
			continue
		}
		pp.watchNodes(ctx, down)
		if time.Since(lastBalance) >= pp.opts.ImbalanceCheck {
			lastBalance = time.Now()
			pp.balanceLeaders(ctx)
		}
	}
}

// watchNodes acts on node leases, from a fresh read of the store (lease renewals do
// not bump the metadata version, so a cached snapshot would not show them).
func (pp *proxyProcess) watchNodes(ctx context.Context, down map[int32]bool) {
	snap, err := pp.store.Snapshot(ctx)
	if err != nil {
		return
	}
	live := routing.LiveNodes(snap, time.Now())
	for _, id := range snap.NodeIDs() {
		switch {
		case !live(id):
			if !down[id] {
				pp.logger.Warn("node lease expired: moving its leaderships to live in-sync replicas", "node", id, "addr", snap.Nodes[id].Addr)
			}
			down[id] = true
			// Every tick, not only the first: a change that lost a race is retried.
			if n, err := pp.controller.HandleNodeFailure(ctx, id, live); err != nil {
				pp.logger.Warn("handling a failed node failed; will retry", "node", id, "err", err)
			} else if n > 0 {
				pp.logger.Info("moved partitions off a failed node", "node", id, "partitions", n)
			}
		case down[id]:
			delete(down, id)
			pp.logger.Info("node is back", "node", id)
			if n, err := pp.controller.HandleNodeReturn(ctx, id, live); err != nil {
				pp.logger.Warn("handling a returning node failed", "node", id, "err", err)
			} else if n > 0 {
				pp.logger.Info("a returning node leads partitions that had no leader", "node", id, "partitions", n)
			}
		}
	}
}

// balanceLeaders gives leadership back to preferred replicas that are live and in sync.
func (pp *proxyProcess) balanceLeaders(ctx context.Context) {
	live, err := pp.controller.LiveNodes(ctx)
	if err != nil {
		return
	}
	results, err := pp.controller.ElectPreferredLeaders(ctx, live, nil)
	if err != nil {
		pp.logger.Warn("preferred leader election failed", "err", err)
		return
	}
	moved := 0
	for _, r := range results {
		if r.Err == nil {
			moved++
		}
	}
	if moved > 0 {
		pp.logger.Info("restored preferred leaders", "partitions", moved)
	}
}

func (pp *proxyProcess) shutdown(ctx context.Context) error {
	return errors.Join(pp.wire.Shutdown(ctx), pp.proxy.Close())
}

func proxyLeaseName(id int32) string { return "proxy-id/" + strconv.Itoa(int(id)) }

// observabilityGroupsCheck makes readiness wait for the group coordinator's replay.
func observabilityGroupsCheck(pp *proxyProcess) observability.ReadinessCheck {
	return observability.ReadinessCheck{Name: "groups", Check: func(context.Context) error { return pp.proxy.GroupsLoaded() }}
}
