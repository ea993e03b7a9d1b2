package wire

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Pool keeps one Client per address and redials a broken one on next use.
// Pools are separated by the caller per class of request (e.g. one for long-poll fetches).
//
// A request that fails because its connection broke is not retried: only the caller knows
// whether it is safe to send again.
type Pool struct {
	opts ClientOptions
	mu   struct {
		sync.Mutex
		closed bool
		conns  map[string]*poolConn
	}
}

// poolConn is one address's slot. Its own lock serialises dialing, so a slow dial to one
// address holds up neither the pool nor other addresses.
type poolConn struct {
	mu     sync.Mutex
	closed bool // the pool closed while a Do held this slot: dial nothing more
	client *Client
}

// NewPool returns an empty pool whose clients use opts.
func NewPool(opts ClientOptions) *Pool {
	p := &Pool{opts: opts}
	p.mu.conns = make(map[string]*poolConn)
	return p
}

// Do sends req to addr over the pool's client for addr, dialing one first if there is
// none or the last one broke. ctx bounds the dial as well as the wait.
func (p *Pool) Do(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	c, err := p.client(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c.Do(ctx, req)
}

// Close closes every client; Do fails with ErrClientClosed afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.mu.closed = true
	conns := p.mu.conns
	p.mu.conns = make(map[string]*poolConn)
	p.mu.Unlock()
	for _, pc := range conns {
		pc.close()
	}
	return nil
}

// client returns a working client for addr.
func (p *Pool) client(ctx context.Context, addr string) (*Client, error) {
	pc, err := p.slot(addr)
	if err != nil {
		return nil, err
	}
	return pc.get(ctx, addr, p.opts)
}

// slot returns addr's slot, creating it on first use.
func (p *Pool) slot(addr string) (*poolConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return nil, notSent{fmt.Errorf("wire: pool to %s: %w", addr, ErrClientClosed)}
	}
	pc, ok := p.mu.conns[addr]
	if !ok {
		pc = &poolConn{}
		p.mu.conns[addr] = pc
	}
	return pc, nil
}

// get returns the slot's client, replacing a broken one.
func (pc *poolConn) get(ctx context.Context, addr string, opts ClientOptions) (*Client, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		return nil, notSent{fmt.Errorf("wire: pool to %s: %w", addr, ErrClientClosed)}
	}
	if pc.client != nil && pc.client.Err() == nil {
		return pc.client, nil
	}
	if pc.client != nil {
		pc.client.Close()
		pc.client = nil
	}
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	pc.client = c
	return c, nil
}

func (pc *poolConn) close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.closed = true
	if pc.client != nil {
		pc.client.Close()
		pc.client = nil
	}
}
