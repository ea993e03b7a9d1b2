package wire

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultPoolConns is how many connections a Pool keeps to each address at most.
const DefaultPoolConns = 2

// DefaultPoolIdleTimeout closes a pooled connection idle for that long instead of using
// it: a minute under a Server's DefaultIdleTimeout, as Kafka clients' 9-minute
// connections.max.idle.ms is under the broker's 10, so that a request is never written
// on a connection its server is closing for idleness.
const DefaultPoolIdleTimeout = DefaultIdleTimeout - time.Minute

// PoolOptions configure a Pool.
type PoolOptions struct {
	ClientOptions
	// ConnsPerAddr bounds the connections to each address; 0 = DefaultPoolConns.
	ConnsPerAddr int
	// IdleTimeout closes a connection with nothing in flight for that long; it must be
	// shorter than the servers' idle timeout. 0 = DefaultPoolIdleTimeout.
	IdleTimeout time.Duration
}

// Pool keeps ConnsPerAddr Clients to each address it is asked for, and sends each
// request over the one with the fewest requests outstanding (in turn among equals), so
// that every caller of a process shares a few connections per address.
//
// With internal connections (ClientOptions.Internal) that is enough to keep callers
// from holding each other up: the server answers each request when it is ready, so a
// long poll delays no other answer; each connection's writer serves callers in the
// order they came, each waiting under its own context, so a caller with many requests
// gets in line once per request and never ahead of those before it; and the server
// reads up to MaxInFlightInternal requests ahead and runs them concurrently, so one
// caller's slow requests take slots, not the line. A caller that needs its requests
// handled in order sends the next when the last is answered (the proxy does: it
// handles one request per client connection at a time, as a Kafka broker does).
//
// A broken connection is replaced on next use, and one idle for IdleTimeout is closed.
// A request that failed because its connection broke is not retried, unless it never
// left (NotSent): only the caller knows whether it is safe to send again.
type Pool struct {
	opts   PoolOptions
	ctx    context.Context // ends at Close, cutting dials short
	cancel context.CancelFunc
	dials  sync.WaitGroup
	stats  struct{ dials, dialErrors atomic.Int64 }
	local  struct { // addresses answered in process (local.go)
		sync.RWMutex
		servers map[string]*Server
	}
	mu struct {
		sync.Mutex
		closed bool
		addrs  map[string]*poolAddr
	}
}

// poolAddr holds the connections to one address. Its own lock keeps a dial to one
// address from holding up the others.
type poolAddr struct {
	addr string
	mu   struct {
		sync.Mutex
		closed  bool
		conns   []*pooledConn
		next    int          // where the search for the least busy starts, in turn
		dialing *dialAttempt // the one dial under way, if any
	}
}

// pooledConn is one connection and how busy it is; its fields are under poolAddr.mu.
type pooledConn struct {
	client      *Client
	outstanding int       // Do calls on it now
	lastUsed    time.Time // when a Do last started or ended on it
}

// dialAttempt is a dial under way; err is set before done is closed.
type dialAttempt struct {
	done chan struct{}
	err  error
}

// NewPool returns an empty pool whose clients use opts.
func NewPool(opts PoolOptions) *Pool {
	if opts.ConnsPerAddr <= 0 {
		opts.ConnsPerAddr = DefaultPoolConns
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultPoolIdleTimeout
	}
	p := &Pool{opts: opts}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.mu.addrs = make(map[string]*poolAddr)
	return p
}

// Do sends req to addr over the least busy of the pool's connections to addr, dialing
// one first if there is none. ctx bounds the wait for a dial as well as the request. A
// request whose connection turned out broken before it was written goes once more on
// another. Errors for which NotSent holds came before any byte of req was written.
func (p *Pool) Do(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	if s := p.localServer(addr); s != nil {
		return s.serveLocal(ctx, req)
	}
	pa, err := p.address(addr)
	if err != nil {
		return nil, err
	}
	for retried := false; ; retried = true {
		pc, err := p.acquire(ctx, pa)
		if err != nil {
			return nil, err
		}
		resp, err := pc.client.Do(ctx, req)
		pa.release(pc)
		if err != nil && !retried && NotSent(err) && ctx.Err() == nil && pc.client.Err() != nil {
			continue
		}
		return resp, err
	}
}

// PoolStats is a snapshot of a Pool's connections.
type PoolStats struct {
	Conns      map[string]int // open connections per address
	Dials      int64          // connections dialed, since the pool was made
	DialErrors int64          // of which failed, handshake included
}

// Stats returns how many connections the pool holds to each address, and its dials.
func (p *Pool) Stats() PoolStats {
	s := PoolStats{Conns: make(map[string]int), Dials: p.stats.dials.Load(), DialErrors: p.stats.dialErrors.Load()}
	p.mu.Lock()
	addrs := make([]*poolAddr, 0, len(p.mu.addrs))
	for _, pa := range p.mu.addrs {
		addrs = append(addrs, pa)
	}
	p.mu.Unlock()
	for _, pa := range addrs {
		pa.mu.Lock()
		if n := len(pa.mu.conns); n > 0 {
			s.Conns[pa.addr] = n
		}
		pa.mu.Unlock()
	}
	return s
}

// Close closes every connection and waits for dials under way to give up; Do fails
// with ErrClientClosed afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.mu.closed = true
	addrs := p.mu.addrs
	p.mu.addrs = make(map[string]*poolAddr)
	p.mu.Unlock()
	p.cancel()
	for _, pa := range addrs {
		pa.close()
	}
	p.dials.Wait()
	return nil
}

// address returns addr's connections, creating the entry on first use.
func (p *Pool) address(addr string) (*poolAddr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return nil, &notSentError{fmt.Errorf("wire: pool to %s: %w", addr, ErrClientClosed)}
	}
	pa, ok := p.mu.addrs[addr]
	if !ok {
		pa = &poolAddr{addr: addr}
		p.mu.addrs[addr] = pa
	}
	return pa, nil
}

// acquire returns the connection to pa with the fewest requests outstanding, counting
// one more on it. While pa has fewer than ConnsPerAddr, one more is dialed in the
// background, for later requests; only a caller that finds no connection at all waits
// for a dial.
func (p *Pool) acquire(ctx context.Context, pa *poolAddr) (*pooledConn, error) {
	for {
		now := time.Now()
		pa.mu.Lock()
		if pa.mu.closed {
			pa.mu.Unlock()
			return nil, &notSentError{fmt.Errorf("wire: pool to %s: %w", pa.addr, ErrClientClosed)}
		}
		stale := pa.dropStaleLocked(now, p.opts.IdleTimeout)
		best := pa.leastBusyLocked()
		if pa.mu.dialing == nil && len(pa.mu.conns) < p.opts.ConnsPerAddr {
			pa.mu.dialing = p.startDial(pa)
		}
		dialing := pa.mu.dialing
		if best != nil {
			best.outstanding++
			best.lastUsed = now
		}
		pa.mu.Unlock()
		closeAll(stale)
		if best != nil {
			return best, nil
		}
		select {
		case <-dialing.done:
			if dialing.err != nil {
				return nil, dialing.err
			}
		case <-ctx.Done():
			return nil, &notSentError{fmt.Errorf("wire: waiting for a connection to %s: %w", pa.addr, ctx.Err())}
		}
	}
}

// startDial dials pa in the background, one connection after the other until pa has
// ConnsPerAddr or a dial fails; each joins pa's connections as soon as it is up.
// Called with pa.mu held.
func (p *Pool) startDial(pa *poolAddr) *dialAttempt {
	d := &dialAttempt{done: make(chan struct{})}
	p.dials.Add(1)
	go func() {
		defer p.dials.Done()
		for d != nil {
			d = p.dial(pa, d)
		}
	}()
	return d
}

// dial makes one connection for attempt d, and returns the next attempt if pa wants
// another.
func (p *Pool) dial(pa *poolAddr, d *dialAttempt) *dialAttempt {
	p.stats.dials.Add(1)
	c, err := Dial(p.ctx, pa.addr, p.opts.ClientOptions)
	if err != nil {
		p.stats.dialErrors.Add(1)
	}
	pa.mu.Lock()
	defer pa.mu.Unlock()
	pa.mu.dialing = nil
	switch {
	case err != nil:
	case pa.mu.closed:
		err = &notSentError{fmt.Errorf("wire: pool to %s: %w", pa.addr, ErrClientClosed)}
		defer c.Close()
	default:
		pa.mu.conns = append(pa.mu.conns, &pooledConn{client: c, lastUsed: time.Now()})
	}
	d.err = err
	close(d.done)
	if err != nil || len(pa.mu.conns) >= p.opts.ConnsPerAddr {
		return nil
	}
	pa.mu.dialing = &dialAttempt{done: make(chan struct{})}
	return pa.mu.dialing
}

// dropStaleLocked takes out the connections that broke, and those idle for idle, and
// returns them to be closed.
func (pa *poolAddr) dropStaleLocked(now time.Time, idle time.Duration) []*Client {
	var stale []*Client
	kept := pa.mu.conns[:0]
	for _, pc := range pa.mu.conns {
		if pc.client.Err() != nil || (pc.outstanding == 0 && now.Sub(pc.lastUsed) >= idle) {
			stale = append(stale, pc.client)
			continue
		}
		kept = append(kept, pc)
	}
	clear(pa.mu.conns[len(kept):])
	pa.mu.conns = kept
	return stale
}

// leastBusyLocked returns the connection with the fewest requests outstanding, taking
// equals in turn so that all stay in use; nil if there is none.
func (pa *poolAddr) leastBusyLocked() *pooledConn {
	n := len(pa.mu.conns)
	var best *pooledConn
	at := 0
	for i := range n {
		j := (pa.mu.next + i) % n
		if pc := pa.mu.conns[j]; best == nil || pc.outstanding < best.outstanding {
			best, at = pc, j
		}
	}
	pa.mu.next = at + 1
	return best
}

// release counts a Do on pc as done.
func (pa *poolAddr) release(pc *pooledConn) {
	pa.mu.Lock()
	defer pa.mu.Unlock()
	pc.outstanding--
	pc.lastUsed = time.Now()
}

func (pa *poolAddr) close() {
	pa.mu.Lock()
	pa.mu.closed = true
	conns := pa.mu.conns
	pa.mu.conns = nil
	pa.mu.Unlock()
	for _, pc := range conns {
		pc.client.Close()
	}
}

func closeAll(clients []*Client) {
	for _, c := range clients {
		c.Close()
	}
}
