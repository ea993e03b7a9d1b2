package routing

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// ControlLoopConfig configures a ControlLoop.
type ControlLoopConfig struct {
	// Holder names this process in the controller lease.
	Holder string
	// LeaseTTL bounds how long the cluster goes without a controller after the one
	// holding the lease dies; the loop steps every fifth of it. Default 10 s.
	LeaseTTL time.Duration
	// ImbalanceCheck is how often leadership goes back to preferred replicas (Kafka's
	// leader.imbalance.check.interval.seconds). Default 5 minutes.
	ImbalanceCheck time.Duration
	// Now is the clock node leases are judged by; default time.Now.
	Now func() time.Time
}

func (c *ControlLoopConfig) validate() {
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.ImbalanceCheck <= 0 {
		c.ImbalanceCheck = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ControlLoop runs the controller role of a cluster while its process holds the
// controller lease, one process at a time: nodes whose lease expired leave the ISRs and
// lose their leaderships to live ISR replicas; nodes that come back lead the partitions
// left without a leader; and every ImbalanceCheck leadership returns to preferred
// replicas. Any proxy may run one; the lease elects the one that acts.
//
// Step is one pass, deterministic given the Store and the clock, so tests drive it on
// an injected clock; Run steps on a ticker.
type ControlLoop struct {
	store       Store
	controller  *Controller
	cfg         ControlLoopConfig
	logger      *slog.Logger
	leading     atomic.Bool
	down        map[int32]bool // nodes seen dead, to log their return once
	lastBalance time.Time
}

// NewControlLoop returns a loop that acts through controller on store.
func NewControlLoop(store Store, controller *Controller, cfg ControlLoopConfig, logger *slog.Logger) *ControlLoop {
	cfg.validate()
	return &ControlLoop{store: store, controller: controller, cfg: cfg, logger: logger,
		down: map[int32]bool{}, lastBalance: cfg.Now()}
}

// Run steps every fifth of the lease TTL until ctx ends.
func (l *ControlLoop) Run(ctx context.Context) {
	ticker := time.NewTicker(l.cfg.LeaseTTL / 5)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		l.Step(ctx)
	}
}

// Release gives the controller lease up, for a process that stops cleanly, so another
// process's loop takes the role at its next step rather than one TTL later. Call it
// once Run has returned.
func (l *ControlLoop) Release(ctx context.Context) error {
	if !l.leading.Load() {
		return nil
	}
	l.leading.Store(false)
	return l.store.ReleaseLease(ctx, "controller", l.cfg.Holder)
}

// Leading reports whether the last Step held the controller lease.
func (l *ControlLoop) Leading() bool { return l.leading.Load() }

// Step takes or renews the controller lease and, while it holds it, acts on node
// leases and, when due, on preferred leaders.
func (l *ControlLoop) Step(ctx context.Context) {
	_, err := l.store.AcquireLease(ctx, "controller", l.cfg.Holder, l.cfg.LeaseTTL)
	if now := err == nil; now != l.leading.Load() {
		l.leading.Store(now)
		clear(l.down)
		l.logger.Info("controller role changed", "active", now)
	}
	if !l.leading.Load() {
		return
	}
	l.watchNodes(ctx)
	if l.cfg.Now().Sub(l.lastBalance) >= l.cfg.ImbalanceCheck {
		l.lastBalance = l.cfg.Now()
		l.balanceLeaders(ctx)
	}
}

// watchNodes acts on node leases, from a fresh read of the store (lease renewals do
// not bump the metadata version, so a cached snapshot would not show them).
func (l *ControlLoop) watchNodes(ctx context.Context) {
	snap, err := l.store.Snapshot(ctx)
	if err != nil {
		return
	}
	live := LiveNodes(snap, l.cfg.Now())
	for _, id := range snap.NodeIDs() {
		switch {
		case !live(id):
			if !l.down[id] {
				l.logger.Warn("node lease expired: moving its leaderships to live in-sync replicas", "node", id, "addr", snap.Nodes[id].Addr)
			}
			l.down[id] = true
			// Every step, not only the first: a change that lost a race is retried.
			if n, err := l.controller.HandleNodeFailure(ctx, id, live); err != nil {
				l.logger.Warn("handling a failed node failed; will retry", "node", id, "err", err)
			} else if n > 0 {
				l.logger.Info("moved partitions off a failed node", "node", id, "partitions", n)
			}
		case l.down[id]:
			delete(l.down, id)
			l.logger.Info("node is back", "node", id)
			if n, err := l.controller.HandleNodeReturn(ctx, id, live); err != nil {
				l.logger.Warn("handling a returning node failed", "node", id, "err", err)
			} else if n > 0 {
				l.logger.Info("a returning node leads partitions that had no leader", "node", id, "partitions", n)
			}
		}
	}
}

// balanceLeaders gives leadership back to preferred replicas that are live and in sync.
func (l *ControlLoop) balanceLeaders(ctx context.Context) {
	live, err := l.controller.LiveNodes(ctx)
	if err != nil {
		return
	}
	results, err := l.controller.ElectPreferredLeaders(ctx, live, nil)
	if err != nil {
		l.logger.Warn("preferred leader election failed", "err", err)
		return
	}
	moved := 0
	for _, r := range results {
		if r.Err == nil {
			moved++
		}
	}
	if moved > 0 {
		l.logger.Info("restored preferred leaders", "partitions", moved)
	}
}
