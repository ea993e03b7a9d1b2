package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
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
	// drainGrace is how long a stopping proxy keeps serving after it left the proxy
	// list: other proxies see it gone within a second (proxy.memberPoll).
	drainGrace = time.Second
)

// proxyOptions is what one proxy needs, in dev or on its own.
type proxyOptions struct {
	ID int32 // -1: take the lowest free id from firstAutoProxyID up
	// Listeners are the Kafka listeners, bound; Advertise is the address other Strait
	// processes dial (registered as the proxy's Addr).
	Listeners         []boundListener
	Advertise         string
	Security          *security // nil: plaintext, no authorizer
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
	// LocalNodes are nodes of this process, by address, which the proxy calls in
	// process rather than through sockets.
	LocalNodes map[string]*wire.Server
	Mode       proxy.Mode
	Rack       string // broker.rack
	// Transactions configures the transaction coordinator.
	Transactions proxy.TransactionsConfig
}

// proxyProcess is a running proxy: its Kafka listener, its consumer-group coordinator,
// its registration, and (when it holds that lease) the controller role.
type proxyProcess struct {
	opts       proxyOptions
	store      routing.Store
	cache      *routing.Cache
	proxy      *proxy.Proxy
	controller *routing.Controller
	// control runs the controller role while this proxy holds its lease.
	control *routing.ControlLoop
	// stopLoops ends the loops that renew this proxy's leases (registration, groups,
	// controller); loops counts them, so a drain releases leases none will renew.
	stopLoops context.CancelFunc
	loops     sync.WaitGroup
	wire      []*wire.Server // one per listener
	logger    *slog.Logger
	tel       *observability.Telemetry
}

// startProxyProcess registers the proxy, starts its group coordinator once a node
// exists to hold __consumer_offsets, and starts serving.
func startProxyProcess(ctx context.Context, opts proxyOptions, store routing.Store, cache *routing.Cache, tel *observability.Telemetry, logger *slog.Logger) (*proxyProcess, error) {
	pp := &proxyProcess{opts: opts, store: store, cache: cache, logger: logger.With("tier", "proxy"), tel: tel}
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
		Mode:             opts.Mode,
		Rack:             opts.Rack,
		Upstream: wire.PoolOptions{ConnsPerAddr: opts.UpstreamConns, IdleTimeout: upstreamIdle(opts.Limits.IdleTimeout),
			ClientOptions: wire.ClientOptions{TLS: opts.Security.clientTLS()}},
		Listeners:   advertisedListeners(opts.Listeners),
		Authorizer:  opts.Security.decider(),
		Denials:     opts.Security.denials(),
		Credentials: store,
	}, cache, store, controller, pp.logger)
	if err != nil {
		return nil, err
	}
	pp.proxy = p
	for addr, s := range opts.LocalNodes {
		p.ServeLocally(addr, s)
	}
	loopCtx, stopLoops := context.WithCancel(ctx)
	pp.stopLoops = stopLoops
	if err := pp.startGroups(loopCtx); err != nil {
		stopLoops()
		p.Close()
		return nil, err
	}
	pp.loops.Go(func() { pp.keepRegistered(loopCtx) })
	holder := "proxy-" + strconv.Itoa(int(pp.opts.ID)) + "@" + pp.opts.Advertise
	pp.control = routing.NewControlLoop(store, controller, routing.ControlLoopConfig{
		Holder: holder, LeaseTTL: controllerLeaseTTL, ImbalanceCheck: opts.ImbalanceCheck,
	}, pp.logger)
	pp.loops.Go(func() { pp.control.Run(loopCtx) })
	for _, l := range opts.Listeners {
		s := &wire.Server{
			Handler:  p,
			Logger:   pp.logger.With("listener", l.spec.Name),
			Limits:   opts.Limits,
			Versions: proxy.APIs().Versions,
			Observe:  observeRequests(tel, "proxy"),
			Security: opts.Security.wire(l.spec),
		}
		pp.wire = append(pp.wire, s)
		if err := observeListener(tel, "proxy", "proxy-"+strconv.Itoa(int(pp.opts.ID))+"-"+strings.ToLower(l.spec.Name), s); err != nil {
			pp.logger.Warn("connection metrics are unavailable; serving without them", "err", err)
		}
	}
	if err := observeUpstream(tel, p.UpstreamStats); err != nil {
		pp.logger.Warn("upstream connection metrics are unavailable; serving without them", "err", err)
	}
	if err := observeCluster(tel, cache); err != nil {
		pp.logger.Warn("cluster metrics are unavailable; serving without them", "err", err)
	}
	if err := observeGroups(tel, p); err != nil {
		pp.logger.Warn("consumer group metrics are unavailable; serving without them", "err", err)
	}
	for i, l := range opts.Listeners {
		go serve(pp.wire[i], l.ln, pp.logger)
	}
	return pp, nil
}

// register gives the proxy an id (the configured one, or the lowest free one) held by
// a lease, and records its advertised address.
func (pp *proxyProcess) register(ctx context.Context) error {
	holder := "proxy@" + pp.opts.Advertise
	if pp.opts.ID >= 0 {
		if _, err := pp.store.AcquireLease(ctx, routing.ProxyLeaseName(pp.opts.ID), holder, proxyLeaseTTL); err != nil {
			return fmt.Errorf("proxy id %d: %w", pp.opts.ID, err)
		}
	} else {
		id, err := pp.claimID(ctx, holder)
		if err != nil {
			return err
		}
		pp.opts.ID = id
	}
	want := routing.Proxy{ID: pp.opts.ID, Addr: pp.opts.Advertise, Rack: pp.opts.Rack, Listeners: advertisedListeners(pp.opts.Listeners)}
	if cur, ok := pp.cache.Snapshot().Proxies[pp.opts.ID]; ok && cur.Equal(want) {
		return nil
	}
	return pp.store.RegisterProxy(ctx, want)
}

func (pp *proxyProcess) claimID(ctx context.Context, holder string) (int32, error) {
	for id := int32(firstAutoProxyID); id < firstAutoProxyID+10_000; id++ {
		_, err := pp.store.AcquireLease(ctx, routing.ProxyLeaseName(id), holder, proxyLeaseTTL)
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
		Tracer:     tracerIfOn(pp.tel, "github.com/strait-io/strait/coordinator"),
	}
	for logged := false; ; {
		err := pp.proxy.StartGroups(ctx, cfg)
		if err == nil {
			// Transactions after groups: their markers reach __consumer_offsets through them.
			if err := pp.proxy.StartTransactions(ctx, pp.opts.Transactions); err != nil {
				return fmt.Errorf("start transactions: %w", err)
			}
			return nil
		}
		if !errors.Is(err, routing.ErrNoNodes) {
			return fmt.Errorf("start consumer groups: %w", err)
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

// shutdown drains the proxy, in the order that lets its clients move on without
// errors: its coordinator leases, the controller lease and its broker id lease are
// released (its groups load elsewhere at once, and other proxies stop listing it
// within a second), it keeps serving for drainGrace while clients learn that, then it
// stops reading, finishes what it read, and closes.
func (pp *proxyProcess) shutdown(ctx context.Context) error {
	pp.logger.Info("draining: handing over coordinator and controller leases, leaving the proxy list; in-flight requests finish")
	pp.stopLoops()
	pp.loops.Wait()
	pp.proxy.Drain(ctx)
	errs := []error{pp.control.Release(ctx)}
	errs = append(errs, pp.store.ReleaseLease(ctx, routing.ProxyLeaseName(pp.opts.ID), "proxy@"+pp.opts.Advertise))
	select {
	case <-time.After(drainGrace):
	case <-ctx.Done():
	}
	for _, s := range pp.wire {
		errs = append(errs, s.Shutdown(ctx))
	}
	errs = append(errs, pp.proxy.Close())
	return errors.Join(errs...)
}

// observabilityGroupsCheck makes readiness wait for the group coordinator's replay.
func observabilityGroupsCheck(pp *proxyProcess) observability.ReadinessCheck {
	return observability.ReadinessCheck{Name: "groups", Check: func(context.Context) error {
		return errors.Join(pp.proxy.GroupsLoaded(), pp.proxy.TransactionsLoaded())
	}}
}
