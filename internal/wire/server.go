package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("wire: server closed")

// Accept errors that are temporary (out of file descriptors) are retried after a pause
// that doubles from acceptBackoffMin to acceptBackoffMax, as net/http does.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Request is one decoded request as a Handler sees it.
type Request struct {
	Header     RequestHeader
	Body       kmsg.Request // decoded; Body.GetVersion() == Header.Version
	RemoteAddr net.Addr
	// Origin is the client the request comes from: the connection's own, or on an
	// internal connection the one its header names (see Origin). The handler's context
	// carries it too.
	Origin Origin
	// Internal says the request came over an internal connection: from another
	// Strait process, which may have forwarded it already.
	Internal bool
}

// Handler answers requests.
type Handler interface {
	// ServeKafka answers one request. A nil response with a nil error means "send nothing"
	// (Produce with acks=0). A non-nil error closes the connection (it is logged).
	// The response's version is set by the server to the request's version before encoding.
	ServeKafka(ctx context.Context, req *Request) (kmsg.Response, error)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, req *Request) (kmsg.Response, error)

// ServeKafka calls f(ctx, req).
func (f HandlerFunc) ServeKafka(ctx context.Context, req *Request) (kmsg.Response, error) {
	return f(ctx, req)
}

// Server serves the Kafka protocol to a Handler. Its zero value, with a Handler, is ready;
// its fields must not change once Serve was called.
type Server struct {
	Handler Handler
	Logger  *slog.Logger // nil = discard
	// Limits bound what each peer can make the server hold and for how long; the zero
	// value takes every default.
	Limits
	// Versions reports the versions the handler serves for an API key (ok=false: unknown key).
	// nil means: every key kmsg knows, versions 0..kmsg max.
	Versions func(key int16) (min, max int16, ok bool)
	// Observe, when set, is called as each request starts (once it is decoded), with a
	// ctx that carries the request's Origin and the request as the handler will see it
	// (its Body is nil if it could not be decoded; Observe must not change it); the
	// returned func is called once the response was written (or dropped), with the
	// frame sizes in and out (0 out for no response) and the handler error, if any. The
	// returned ctx is passed to the handler (it carries the request's span, and may
	// carry an Origin with the span's traceparent for what the handler forwards).
	Observe func(ctx context.Context, req *Request) (context.Context, func(bytesIn, bytesOut int, err error))
	// Security authenticates connections (TLS, SASL, client certificates); the zero
	// value serves plaintext and takes every client as User:ANONYMOUS.
	Security Security
	// ZeroCopy sends the file ranges of Spliced responses from file to socket with
	// sendfile, on TCP connections under Linux. Off (or elsewhere), they are copied into
	// the frame before it is written.
	ZeroCopy bool

	conns   sync.WaitGroup // one per served connection, so Shutdown can wait for them
	stats   serverCounters
	refusal atomic.Int64 // when a refused connection was last logged, in Unix nanoseconds
	budget  struct {
		once sync.Once
		b    *MemoryBudget // Limits.Budget, or the server's own
	}
	workers struct {
		once sync.Once
		w    *workers // run handlers on reused goroutines
	}
	mu struct {
		sync.Mutex
		closed    bool
		done      chan struct{} // closed with closed, to cut accept backoff short
		listeners map[net.Listener]struct{}
		conns     map[*conn]struct{}
	}
}

// Serve accepts connections on ln and serves each on its own goroutines until Shutdown or
// Close, when it returns ErrServerClosed. Temporary accept errors are retried after a
// backoff; any other closes ln and is returned.
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.forgetListener(ln)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err == nil {
			backoff = 0
			s.startConn(nc)
			continue
		}
		if s.isClosed() {
			return ErrServerClosed
		}
		if !isTemporary(err) {
			return fmt.Errorf("wire: accept on %s: %w", ln.Addr(), err)
		}
		backoff = nextBackoff(backoff)
		s.logger().Warn("wire: accept failed, retrying", "addr", ln.Addr(), "err", err, "backoff", backoff)
		if !s.sleep(backoff) {
			return ErrServerClosed
		}
	}
}

// Shutdown stops accepting, stops reading new requests, lets the requests already read
// finish and their responses be written, then closes the connections. If ctx ends first,
// the rest are closed at once (as by Close) and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, c := range s.close() {
		c.drain()
	}
	idle := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		s.Close()
		return fmt.Errorf("wire: shutdown: %w", ctx.Err())
	}
}

// Close closes the listeners and every connection at once; handlers see their context
// cancelled and their responses are dropped.
func (s *Server) Close() error {
	for _, c := range s.close() {
		c.fail(ErrServerClosed)
	}
	return nil
}

// startConn serves nc unless the server closed meanwhile or serves MaxConnections.
func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		nc.Close()
		return
	}
	if limit := s.MaxConnections; limit > 0 && len(s.mu.conns) >= limit {
		nc.Close()
		s.refused(nc, limit)
		return
	}
	if s.mu.conns == nil {
		s.mu.conns = make(map[*conn]struct{})
	}
	c := newConn(s, nc)
	s.mu.conns[c] = struct{}{}
	s.conns.Add(1) // under mu, so never after Shutdown began to Wait
	s.stats.open.Add(1)
	go c.serve()
}

// refused counts a connection closed for want of room, and logs it at most once a
// second: a flood of connections must not turn into a flood of log lines.
func (s *Server) refused(nc net.Conn, limit int) {
	n := s.stats.refused.Add(1)
	now := time.Now().UnixNano()
	last := s.refusal.Load()
	if now-last < int64(time.Second) || !s.refusal.CompareAndSwap(last, now) {
		return
	}
	s.logger().Warn("wire: refusing connections: the server serves as many as it may (max connections)",
		"remote", nc.RemoteAddr().String(), "max_connections", limit, "refused_total", n)
}

// forgetConn is called by a connection once it is closed.
func (s *Server) forgetConn(c *conn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	s.mu.Unlock()
	s.stats.open.Add(-1)
	s.conns.Done()
}

// close marks the server closed, closes its listeners and returns the open connections.
func (s *Server) close() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mu.closed {
		s.mu.closed = true
		close(s.doneLocked())
	}
	for ln := range s.mu.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		conns = append(conns, c)
	}
	return conns
}

func (s *Server) trackListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return false
	}
	if s.mu.listeners == nil {
		s.mu.listeners = make(map[net.Listener]struct{})
	}
	s.mu.listeners[ln] = struct{}{}
	return true
}

func (s *Server) forgetListener(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.listeners, ln)
	ln.Close()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.closed
}

// sleep waits d, or less if the server closes; it reports whether the server is still open.
func (s *Server) sleep(d time.Duration) bool {
	s.mu.Lock()
	done := s.doneLocked()
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// doneLocked returns the channel closed when the server closes, creating it on first use
// so that the zero Server works.
func (s *Server) doneLocked() chan struct{} {
	if s.mu.done == nil {
		s.mu.done = make(chan struct{})
	}
	return s.mu.done
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Stats returns a snapshot of the server's connections and of what they hold.
func (s *Server) Stats() ServerStats {
	return s.stats.snapshot()
}

// memoryBudget returns Limits.Budget, or else the server's own default budget.
func (s *Server) memoryBudget() *MemoryBudget {
	s.budget.once.Do(func() {
		s.budget.b = s.Budget
		if s.budget.b == nil {
			s.budget.b = NewMemoryBudget(DefaultMemoryBudget)
		}
	})
	return s.budget.b
}

// observe starts observing one request; it never returns a nil func.
func (s *Server) observe(ctx context.Context, req *Request) (context.Context, func(int, int, error)) {
	if s.Observe == nil {
		return ctx, func(int, int, error) {}
	}
	ctx, done := s.Observe(ctx, req)
	if done == nil {
		done = func(int, int, error) {}
	}
	return ctx, done
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return acceptBackoffMin
	}
	return min(2*d, acceptBackoffMax)
}

// isTemporary reports whether an accept error is worth retrying. Temporary is deprecated
// on net.Error because it is ill-defined for reads, but for accept it is still what tells
// EMFILE and ECONNABORTED apart from a closed listener.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// handlerWorkers returns the server's pool of handler goroutines, made on first use so
// that the zero Server works.
func (s *Server) handlerWorkers() *workers {
	s.workers.once.Do(func() { s.workers.w = newWorkers() })
	return s.workers.w
}
