package wire

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// connCounter is a handler that counts the requests of each connection, by the address
// of its client end.
type connCounter struct {
	mu   sync.Mutex
	seen map[string]int
}

func (cc *connCounter) ServeKafka(ctx context.Context, req *Request) (kmsg.Response, error) {
	if _, ok := req.Body.(*kmsg.MetadataRequest); ok {
		cc.mu.Lock()
		if cc.seen == nil {
			cc.seen = make(map[string]int)
		}
		cc.seen[req.RemoteAddr.String()]++
		cc.mu.Unlock()
	}
	return echoHandler(ctx, req)
}

func (cc *connCounter) perConn() map[string]int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return maps.Clone(cc.seen)
}

// Many concurrent callers share ConnsPerAddr connections to an address, and the
// requests spread over all of them.
func TestPoolConnsPerAddr(t *testing.T) {
	for _, size := range []int{1, 2, 3} {
		cc := &connCounter{}
		srv := &Server{Handler: cc}
		addr := startServer(t, srv)
		pool := NewPool(PoolOptions{ClientOptions: ClientOptions{Internal: true, Logger: testLogger(t)}, ConnsPerAddr: size})
		if _, err := pool.Do(t.Context(), addr, metadataRequest(12, "warm")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "connections dialed", func() bool { return pool.Stats().Conns[addr] == size })
		var wg sync.WaitGroup
		for i := range 60 {
			wg.Go(func() {
				if _, err := pool.Do(t.Context(), addr, metadataRequest(12, sleepTopic(time.Duration(i%3)*50*time.Millisecond))); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := pool.Stats().Conns[addr]; got != size {
			t.Errorf("pool of %d holds %d connections", size, got)
		}
		if open := srv.Stats().OpenConnections; open != int64(size) {
			t.Errorf("pool of %d: the server sees %d connections", size, open)
		}
		seen := cc.perConn()
		if len(seen) != size {
			t.Errorf("pool of %d sent over %d connections: %v", size, len(seen), seen)
		}
		for conn, n := range seen {
			if n < 60/size/4 {
				t.Errorf("pool of %d: connection %s got %d of 60 requests: %v", size, conn, n, seen)
			}
		}
		pool.Close()
	}
}

// A pool keeps its number of connections however it is used: sequential calls take
// them in turn, and none is dialed twice.
func TestPoolKeepsItsConnections(t *testing.T) {
	cc := &connCounter{}
	addr := startServer(t, &Server{Handler: cc})
	pool := NewPool(PoolOptions{ClientOptions: ClientOptions{Internal: true}, ConnsPerAddr: 4})
	defer pool.Close()
	for range 5 {
		if _, err := pool.Do(t.Context(), addr, metadataRequest(12, "t")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "connections dialed", func() bool { return pool.Stats().Conns[addr] == 4 })
	for range 40 {
		if _, err := pool.Do(t.Context(), addr, metadataRequest(12, "t")); err != nil {
			t.Fatal(err)
		}
	}
	if s := pool.Stats(); s.Conns[addr] != 4 || s.Dials != 4 {
		t.Fatalf("%+v, want 4 connections dialed once each", s)
	}
	for conn, n := range cc.perConn() {
		if n < 10 {
			t.Errorf("connection %s got %d requests: %v", conn, n, cc.perConn())
		}
	}
}

// With one connection per address, long polls on it hold up neither a fast request to
// the same address nor any to another.
func TestPoolSlowRequestsDoNotDelayOthers(t *testing.T) {
	slow := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	fast := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	pool := NewPool(PoolOptions{ClientOptions: ClientOptions{Internal: true, Logger: testLogger(t)}, ConnsPerAddr: 1})
	defer pool.Close()
	if _, err := pool.Do(t.Context(), slow, metadataRequest(12, "warm")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := pool.Do(t.Context(), slow, metadataRequest(12, sleepTopic(time.Second))); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the long polls are in
	start := time.Now()
	for _, addr := range []string{slow, fast, slow, fast} {
		if _, err := pool.Do(t.Context(), addr, metadataRequest(12, "quick")); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("four quick requests took %s behind long polls", took)
	}
	wg.Wait()
}

// A connection idle for IdleTimeout is closed rather than used: the next request goes
// over a new one, and the server sees the old one go.
func TestPoolIdleTimeout(t *testing.T) {
	srv := &Server{Handler: HandlerFunc(echoHandler)}
	addr := startServer(t, srv)
	pool := NewPool(PoolOptions{ConnsPerAddr: 1, IdleTimeout: 100 * time.Millisecond})
	defer pool.Close()
	for range 2 {
		if _, err := pool.Do(t.Context(), addr, metadataRequest(12, "t")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if dials := pool.Stats().Dials; dials != 2 {
		t.Fatalf("%d dials, want 2: the idle connection was used again", dials)
	}
	eventually(t, 5*time.Second, "the idle connection closed", func() bool { return srv.Stats().OpenConnections == 1 })
}

// The default idle timeout is under the server's, as Kafka clients' is under brokers'.
func TestPoolIdleTimeoutUnderServers(t *testing.T) {
	if DefaultPoolIdleTimeout >= DefaultIdleTimeout {
		t.Fatalf("pool idle timeout %s, server's %s", DefaultPoolIdleTimeout, DefaultIdleTimeout)
	}
}

// A connection the server closed is found broken and replaced before a request is
// written on it.
func TestPoolReplacesClosedConnection(t *testing.T) {
	srv := &Server{Handler: HandlerFunc(echoHandler), Limits: Limits{IdleTimeout: 100 * time.Millisecond}}
	addr := startServer(t, srv)
	pool := NewPool(PoolOptions{ConnsPerAddr: 1})
	defer pool.Close()
	if _, err := pool.Do(t.Context(), addr, metadataRequest(12, "t")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the server closed the idle connection", func() bool { return srv.Stats().ClosedIdle == 1 })
	time.Sleep(50 * time.Millisecond) // the client reads the close
	if _, err := pool.Do(t.Context(), addr, metadataRequest(12, "t")); err != nil {
		t.Fatalf("after the server closed the pooled connection: %v", err)
	}
}

// Errors before any byte of a request was written satisfy NotSent: a failed dial, a
// closed pool or client, a context already done. Errors after do not.
func TestNotSent(t *testing.T) {
	breaker := func(ctx context.Context, req *Request) (kmsg.Response, error) {
		if m, ok := req.Body.(*kmsg.MetadataRequest); ok && *m.Topics[0].Topic == "break" {
			return nil, errors.New("break the connection")
		}
		return echoHandler(ctx, req)
	}
	addr := startServer(t, &Server{Handler: HandlerFunc(breaker)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := ln.Addr().String()
	ln.Close()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	pool := NewPool(PoolOptions{ClientOptions: ClientOptions{Internal: true}})
	closedPool := NewPool(PoolOptions{})
	closedPool.Close()
	closedClient := dial(t, addr, ClientOptions{})
	closedClient.Close()
	c := dial(t, addr, ClientOptions{Internal: true})
	defer pool.Close()

	for _, tc := range []struct {
		name    string
		do      func() error
		notSent bool
	}{
		{"dial refused", func() error { _, err := pool.Do(t.Context(), nobody, metadataRequest(12, "t")); return err }, true},
		{"pool closed", func() error { _, err := closedPool.Do(t.Context(), addr, metadataRequest(12, "t")); return err }, true},
		{"client closed", func() error { _, err := closedClient.Do(t.Context(), metadataRequest(12, "t")); return err }, true},
		{"context done", func() error { _, err := c.Do(cancelled, metadataRequest(12, "t")); return err }, true},
		{"context done, pool", func() error { _, err := pool.Do(cancelled, addr, metadataRequest(12, "t")); return err }, true},
		{"the request broke the connection", func() error { _, err := c.Do(t.Context(), metadataRequest(12, "break")); return err }, false},
		{"client broken by the last request", func() error { _, err := c.Do(t.Context(), metadataRequest(12, "t")); return err }, true},
	} {
		err := tc.do()
		if err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		if NotSent(err) != tc.notSent {
			t.Errorf("%s: NotSent(%v) = %v, want %v", tc.name, err, NotSent(err), tc.notSent)
		}
	}
}

// stuckServer accepts connections and reads nothing, so that a client's writes stall
// once the socket buffers are full.
func stuckServer(t *testing.T) (addr string, conns <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { nc.Close() })
		ch <- nc
	}()
	return ln.Addr().String(), ch
}

// bigProduce is a produce request of n bytes, more than socket buffers hold.
func bigProduce(n int) *kmsg.ProduceRequest {
	req := produceRequest(9, 1, "big")
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = make([]byte, n)
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, p)
	return req
}

// Callers wait in line for the writer under their own context: one whose context ends
// in line gets a NotSent error, while the one being written when its context ends does
// not; once the connection breaks, those still in line are not sent either.
func TestClientLineAndNotSent(t *testing.T) {
	addr, conns := stuckServer(t)
	c := dial(t, addr, ClientOptions{})
	server := <-conns

	writing := make(chan error, 1)
	writingCtx, cancelWriting := context.WithCancel(t.Context())
	big := bigProduce(64 << 20)
	go func() { _, err := c.Do(writingCtx, big); writing <- err }()
	if _, err := io.ReadFull(server, make([]byte, 4)); err != nil { // the writer is on it, and stuck
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Do(short, metadataRequest(12, "t")); !NotSent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("left the line on its deadline: %v, want a NotSent deadline error", err)
	}

	inLine := make(chan error, 1)
	go func() { _, err := c.Do(t.Context(), metadataRequest(12, "t")); inLine <- err }()
	time.Sleep(50 * time.Millisecond)
	cancelWriting()
	if err := <-writing; NotSent(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while being written: %v, want a sent cancellation", err)
	}
	server.Close() // the stuck write fails and breaks the connection
	select {
	case err := <-inLine:
		if !NotSent(err) {
			t.Fatalf("in line when the connection broke: %v, want NotSent", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a caller in line was not told the connection broke")
	}
}
