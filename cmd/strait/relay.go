package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

// A node answers ordinary clients' requests for APIs it does not own by relaying them
// to a proxy (partitionlog/node/relay.go). In `strait dev` the proxy is in the process
// and answers directly (dev.relay); a `strait node` relays over the network to a live
// proxy (proxyRelay). Nodes relay in every mode: a client that reaches a node in
// forward mode hears the cluster as the proxies describe it, and only such clients send
// a node those requests.

// relayProxiesTTL is how long a relay trusts its list of live proxies. Lease renewals
// move no metadata version, so only a read of the Store shows which proxies are live;
// reading lazily, at most this often, costs nothing where clients do not talk to nodes.
const relayProxiesTTL = time.Second

// errNoLiveProxy says a relay found no proxy to ask.
var errNoLiveProxy = errors.New("no live proxy to relay to: start a strait proxy for this cluster")

// proxyRelay sends a node's relayed requests to a live proxy, keeps to the one that
// answered last, and moves to the next when it cannot be reached.
//
// It relays over Strait's own out-of-order connections, so a slow request (a JoinGroup
// waiting for its rebalance) holds up no other client's; the proxy so sees a request
// from Strait, answered where it lands (a group request is not forwarded on to its
// coordinator, as a Kafka broker that does not coordinate a group answers
// NOT_COORDINATOR), and not the client's own id: carrying that is for the request
// header's origin context (docs/architecture.md, "Strait-to-Strait requests carry context").
type proxyRelay struct {
	node   int32 // spreads the nodes' first choices over the proxies
	store  routing.Store
	view   *routing.Cache
	pool   *wire.Pool
	logger *slog.Logger
	mu     struct {
		sync.Mutex
		live   []routing.Proxy // in id order
		readAt time.Time
		chosen int32 // the proxy that answered last; -1 for none yet
	}
}

func newProxyRelay(node int32, store routing.Store, view *routing.Cache, tlsConfig func() (*tls.Config, error), logger *slog.Logger) *proxyRelay {
	r := &proxyRelay{node: node, store: store, view: view, logger: logger}
	r.pool = wire.NewPool(wire.PoolOptions{ClientOptions: wire.ClientOptions{ClientID: "strait-node-" + strconv.Itoa(int(node)) + "-relay", Internal: true, Logger: logger, TLS: tlsConfig}})
	r.mu.chosen = -1
	return r
}

// relay sends req to a proxy and returns its answer. A proxy that cannot be reached
// (the request certainly did not leave) is skipped for the next; after any other
// failure the request may have been applied, so the error goes back and the client,
// whose connection closes, decides whether to send it again.
func (r *proxyRelay) relay(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	proxies := r.candidates(ctx)
	if len(proxies) == 0 {
		return nil, errNoLiveProxy
	}
	var errs []error
	for _, px := range proxies {
		resp, err := r.pool.Do(ctx, px.Addr, req.Body)
		if err == nil {
			r.choose(px.ID)
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("proxy %d at %s: %w", px.ID, px.Addr, err))
		if !wire.NotSent(err) || ctx.Err() != nil {
			break
		}
		r.logger.Debug("relaying to a proxy failed; trying the next", "proxy", px.ID, "addr", px.Addr, "err", err)
	}
	return nil, errors.Join(errs...)
}

// Close closes the connections to proxies.
func (r *proxyRelay) Close() error { return r.pool.Close() }

// candidates returns the live proxies in the order to try them: the one that answered
// last, then the others after it in id order.
func (r *proxyRelay) candidates(ctx context.Context) []routing.Proxy {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := r.liveProxiesLocked(ctx)
	if len(live) == 0 {
		return nil
	}
	first := int(r.node) % len(live)
	if i := slices.IndexFunc(live, func(px routing.Proxy) bool { return px.ID == r.mu.chosen }); i >= 0 {
		first = i
	}
	return append(slices.Clone(live[first:]), live[:first]...)
}

// liveProxiesLocked returns the live proxies, read from the Store at most every
// relayProxiesTTL. While the Store cannot be read it keeps the last list, or, before
// the first read, takes every proxy the cached view has registered.
func (r *proxyRelay) liveProxiesLocked(ctx context.Context) []routing.Proxy {
	if !r.mu.readAt.IsZero() && time.Since(r.mu.readAt) < relayProxiesTTL {
		return r.mu.live
	}
	ctx, cancel := context.WithTimeout(ctx, relayProxiesTTL)
	defer cancel()
	snap, err := r.store.Snapshot(ctx)
	r.mu.readAt = time.Now()
	switch {
	case err == nil:
		r.mu.live = routing.LiveProxies(snap, time.Now())
	case r.mu.live == nil:
		r.logger.Warn("reading the live proxies failed; relaying to every registered proxy meanwhile", "err", err)
		registered := r.view.Snapshot().Proxies
		r.mu.live = slices.SortedFunc(maps.Values(registered), func(a, b routing.Proxy) int { return cmp.Compare(a.ID, b.ID) })
	default:
		r.logger.Debug("reading the live proxies failed; keeping the last list", "err", err)
	}
	return r.mu.live
}

func (r *proxyRelay) choose(id int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.chosen = id
}
