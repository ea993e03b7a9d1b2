package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/authz"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

// View is the routing metadata the proxy reads; *routing.Cache satisfies it.
type View interface {
	Snapshot() *routing.Snapshot
	Refresh(ctx context.Context) error
	// Changed returns a channel closed once a newer snapshot is in.
	Changed() <-chan struct{}
}

// Config configures a proxy.
type Config struct {
	BrokerID         int32  // the broker id clients see for this proxy
	AdvertisedAddr   string // host:port clients are told to connect to
	Rack             string
	AutoCreateTopics bool // create unknown topics on Metadata and Produce (auto.create.topics.enable)
	Mode             Mode // forward (the default), sidecar or redirect
	// Upstream sizes the pool of connections to nodes: connections per node (default 2)
	// and how long one may idle, and sets their TLS. The proxy sets the other client
	// options itself.
	Upstream wire.PoolOptions
	// Listeners are this proxy's client addresses by listener name, which Metadata
	// names it by; none means AdvertisedAddr serves every client.
	Listeners map[string]string
	// Authorizer decides what each principal may do; nil allows everything.
	Authorizer Authorizer
	// Denials hears of denied operations, for metrics.
	Denials Denials
	// Credentials stores SCRAM credentials for AlterUserScramCredentials; nil refuses
	// those requests. Normally the Store.
	Credentials routing.Store
}

// Proxy answers Kafka requests; it implements wire.Handler.
type Proxy struct {
	cfg         Config
	host        string
	port        int32
	view        View
	controller  *routing.Controller
	producerIDs *producerIDs
	nodes       *wire.Pool
	store       routing.Store
	groups      atomic.Pointer[coordinator.Coordinator]  // set by StartGroups
	txns        atomic.Pointer[coordinator.Transactions] // set by StartTransactions
	logger      *slog.Logger
	authz       *authz.Enforcer // nil: ACLs are not enforced
	handlers    map[int16]handler
	staleView   chan struct{} // a node said NOT_LEADER or was unreachable: refresh soon
	members     members       // the live proxies
	draining    atomic.Bool   // Drain began: take no more leases
	leases      sync.Mutex    // held by a pass over the coordinator leases
	closed      chan struct{}
}

// New returns a proxy that forwards to nodes through a pool of a few internal
// connections per node, shared by all its clients: answered out of order, so a
// long-polling fetch never holds up a produce behind it, and carrying each request's
// origin, so nodes see the real client.
func New(cfg Config, view View, store routing.Store, controller *routing.Controller, logger *slog.Logger) (*Proxy, error) {
	host, portText, err := net.SplitHostPort(cfg.AdvertisedAddr)
	if err != nil {
		return nil, fmt.Errorf("proxy: advertised address %q: %w", cfg.AdvertisedAddr, err)
	}
	port, err := strconv.ParseInt(portText, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("proxy: advertised port %q: %w", portText, err)
	}
	if cfg.Mode, err = ParseMode(string(cfg.Mode)); err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg:         cfg,
		host:        host,
		port:        int32(port),
		view:        view,
		controller:  controller,
		producerIDs: newProducerIDs(store),
		nodes:       wire.NewPool(upstreamOptions(cfg.Upstream, logger)),
		store:       store,
		logger:      logger,
		authz:       authz.New(cfg.Authorizer, cfg.Denials, logger),
		handlers:    handlerTable(),
		staleView:   make(chan struct{}, 1),
		closed:      make(chan struct{}),
	}
	go p.refreshStaleView()
	p.readMembers()
	go p.watchMembers()
	return p, nil
}

// upstreamOptions completes the pool options of cfg.Upstream with the proxy's own.
func upstreamOptions(opts wire.PoolOptions, logger *slog.Logger) wire.PoolOptions {
	opts.ClientID, opts.Internal, opts.Logger = "strait-proxy", true, logger // TLS as given
	return opts
}

// UpstreamStats reports the proxy's connections to nodes.
func (p *Proxy) UpstreamStats() wire.PoolStats {
	return p.nodes.Stats()
}

// ServeKafka implements wire.Handler.
func (p *Proxy) ServeKafka(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	h, ok := p.handlers[req.Header.Key]
	if !ok {
		return nil, fmt.Errorf("proxy: no handler for %s", kmsg.NameForKey(req.Header.Key))
	}
	return h.serve(p, ctx, req)
}

// Close stops the group coordinator, then closes the connections to nodes it writes
// through.
func (p *Proxy) Close() error {
	close(p.closed)
	if t := p.txns.Load(); t != nil {
		t.Close()
	}
	if c := p.groups.Load(); c != nil {
		c.Close()
	}
	return p.nodes.Close()
}

// ServeLocally makes the proxy call node s, which serves addr in this process, directly
// rather than through a socket (`strait dev`).
func (p *Proxy) ServeLocally(addr string, s *wire.Server) { p.nodes.ServeLocally(addr, s) }

// viewIsStale asks for a refresh of the routing view without waiting: a node answered
// NOT_LEADER or could not be reached, so leadership has probably moved.
func (p *Proxy) viewIsStale() {
	select {
	case p.staleView <- struct{}{}:
	default: // a refresh is already due
	}
}

// refreshStaleView refreshes the view when asked, at most ten times a second.
func (p *Proxy) refreshStaleView() {
	for {
		select {
		case <-p.closed:
			return
		case <-p.staleView:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.view.Refresh(ctx); err != nil {
			p.logger.Debug("refreshing a stale routing view failed", "err", err)
		}
		cancel()
		select {
		case <-p.closed:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
