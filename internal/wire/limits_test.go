package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// eventually polls cond every 10ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// announce writes the size prefix of a frame of size bytes, then the first bytes of a
// Produce request, and nothing more.
func (r *rawConn) announce(size int32) {
	r.t.Helper()
	b := binary.BigEndian.AppendUint32(nil, uint32(size))
	r.write(append(b, 0, 0, 0, 9, 0, 0, 0, 1)) // Produce v9, correlation id 1
}

// checkStillServes checks that a fresh connection to addr gets an answer.
func checkStillServes(t *testing.T, addr string) {
	t.Helper()
	good := dialRaw(t, addr)
	good.send("good", 7, metadataRequest(1, "still-here"))
	_, payload := good.recv()
	checkEcho(t, payload, "still-here")
}

// Ten connections announce 100 MiB requests and send a few bytes: the server holds a
// first small buffer for each, well within its budget, serves others meanwhile, and
// closes them once the request read timeout passes (the issue's "ten connections
// announcing 100 MiB hold 1 GB indefinitely").
func TestAnnouncedRequestsHoldWhatArrives(t *testing.T) {
	budget := NewMemoryBudget(1 << 20)
	s := &Server{Handler: HandlerFunc(echoHandler), Limits: Limits{
		RequestReadTimeout: 500 * time.Millisecond,
		Budget:             budget,
	}}
	addr := startServer(t, s)
	var hostile []*rawConn
	for range 10 {
		rc := dialRaw(t, addr)
		rc.announce(DefaultMaxRequestBytes)
		hostile = append(hostile, rc)
	}
	eventually(t, 5*time.Second, "ten frames started", func() bool { return s.Stats().HeldBytes >= 10*initialFrameBytes })
	if held, used := s.Stats().HeldBytes, budget.Used(); held > 10*initialFrameBytes || used > budget.Limit() {
		t.Fatalf("holding %d bytes, budget %d of %d, for ten frames of a few bytes each", held, used, budget.Limit())
	}
	checkStillServes(t, addr)

	for _, rc := range hostile {
		rc.expectClosed()
	}
	eventually(t, 5*time.Second, "memory given back", func() bool { return s.Stats().HeldBytes == 0 && budget.Used() == 0 })
	if n := s.Stats().ClosedReadTimeout; n != 10 {
		t.Fatalf("%d connections closed by the request read timeout, want 10", n)
	}
}

// A peer that trickles a request, a byte at a time, is closed once the request read
// timeout passes, whether it is in the size prefix or the payload.
func TestTricklingRequestClosed(t *testing.T) {
	frame := kmsg.NewRequestFormatter().AppendRequest(nil, metadataRequest(1, "t"), 1)
	for _, tc := range []struct {
		name string
		sent int // bytes sent at once before trickling
	}{
		{"size prefix", 1},
		{"payload", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{Handler: HandlerFunc(echoHandler), Limits: Limits{RequestReadTimeout: 200 * time.Millisecond}}
			addr := startServer(t, s)
			rc := dialRaw(t, addr)
			rc.write(frame[:tc.sent])
			start := time.Now()
			for _, b := range frame[tc.sent:] {
				time.Sleep(50 * time.Millisecond)
				if _, err := rc.nc.Write([]byte{b}); err != nil {
					break // closed under us: what we want
				}
			}
			rc.expectClosed()
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("closed after %s with a 200ms request read timeout", took)
			}
			if n := s.Stats().ClosedReadTimeout; n != 1 {
				t.Fatalf("ClosedReadTimeout %d, want 1", n)
			}
		})
	}
}

// Kafka's connections.max.idle.ms: a connection with nothing in flight that sends nothing
// is closed; one waiting for a slow answer is not idle.
func TestIdleConnectionClosed(t *testing.T) {
	s := &Server{Handler: HandlerFunc(echoHandler), Limits: Limits{IdleTimeout: 200 * time.Millisecond}}
	addr := startServer(t, s)

	busy := dialRaw(t, addr)
	slow := sleepTopic(600 * time.Millisecond)
	busy.send("busy", 1, metadataRequest(1, slow))
	_, payload := busy.recv() // answered after three idle timeouts: in flight is not idle
	checkEcho(t, payload, slow)

	idle := dialRaw(t, addr)
	start := time.Now()
	idle.expectClosed()
	busy.expectClosed() // idle too, now that its answer is written
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("idle connection closed after %s with a 200ms idle timeout", took)
	}
	if n := s.Stats().ClosedIdle; n != 2 {
		t.Fatalf("ClosedIdle %d, want 2", n)
	}
}

// bigAnswers answers every Fetch with recordBytes of records, and counts the requests.
func bigAnswers(recordBytes int, served *atomic.Int32) HandlerFunc {
	return func(ctx context.Context, req *Request) (kmsg.Response, error) {
		if _, ok := req.Body.(*kmsg.FetchRequest); !ok {
			return echoHandler(ctx, req)
		}
		served.Add(1)
		resp := kmsg.NewPtrFetchResponse()
		p := kmsg.NewFetchResponseTopicPartition()
		p.RecordBatches = make([]byte, recordBytes)
		topic := kmsg.NewFetchResponseTopic()
		topic.Topic = "t"
		topic.Partitions = append(topic.Partitions, p)
		resp.Topics = append(resp.Topics, topic)
		return resp, nil
	}
}

// A client that pipelines fetches and never reads the answers: the server stops reading
// from it once its answers fill the connection's budget, holds no more than that (plus
// one answer), keeps serving other connections, and closes it once it has taken nothing
// for the idle timeout.
func TestUnreadAnswersStopReading(t *testing.T) {
	const (
		answerBytes = 256 << 10
		perConn     = 1 << 20
		requests    = 400 // 100 MiB of answers, far more than socket buffers take
	)
	var served atomic.Int32
	budget := NewMemoryBudget(8 << 20)
	s := &Server{Handler: bigAnswers(answerBytes, &served), Limits: Limits{
		MaxInFlightBytes: perConn,
		IdleTimeout:      time.Second,
		Budget:           budget,
	}}
	addr := startServer(t, s)
	rc := dialRaw(t, addr)
	rc.nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	fetch := versioned(kmsg.NewPtrFetchRequest(), 4)
	for i := range requests {
		rc.send("greedy", int32(i), fetch)
	}
	eventually(t, 5*time.Second, "reading paused", func() bool { return s.Stats().ReadPauses > 0 })
	time.Sleep(200 * time.Millisecond) // let anything still running settle
	held, n := s.Stats().HeldBytes, served.Load()
	// The answers within the connection's budget, the one whose handler started just
	// under it, and the requests read ahead (each one small frame and its decoding).
	if limit := int64(perConn + answerBytes + DefaultMaxInFlight*initialFrameBytes); held > limit || budget.Used() > limit {
		t.Fatalf("holding %d bytes (budget %d) for unread answers, want at most %d", held, budget.Used(), limit)
	}
	if n >= requests {
		t.Fatalf("all %d requests were read and served", n)
	}
	t.Logf("served %d of %d requests, holding %d bytes", n, requests, held)

	c := dial(t, addr, ClientOptions{})
	if _, err := c.Do(t.Context(), versioned(kmsg.NewPtrFetchRequest(), 4)); err != nil {
		t.Fatalf("another connection is not served: %v", err)
	}

	rc.expectClosedWithin(10 * time.Second)
	if n := s.Stats().ClosedWriteTimeout; n != 1 {
		t.Fatalf("ClosedWriteTimeout %d, want 1", n)
	}
	eventually(t, 5*time.Second, "memory given back", func() bool { return budget.Used() == 0 })
}

// expectClosedWithin checks that the server closes the connection within d, reading and
// dropping whatever it still sends.
func (r *rawConn) expectClosedWithin(d time.Duration) {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64<<10)
	for {
		_, err := r.br.Read(buf)
		if err == nil {
			continue
		}
		if !isClosed(err) {
			r.t.Fatalf("read: %v; want the connection closed within %s", err, d)
		}
		return
	}
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || isReset(err) || err.Error() == "EOF"
}

// A request larger than every budget is still served on a connection that holds
// nothing else: the budget slows a process down, it never wedges a connection.
func TestRequestLargerThanBudgetServed(t *testing.T) {
	budget := NewMemoryBudget(64 << 10)
	s := &Server{Handler: HandlerFunc(echoHandler), Limits: Limits{MaxInFlightBytes: 64 << 10, Budget: budget}}
	addr := startServer(t, s)
	req := produceRequest(9, 1, "big")
	req.Topics[0].Partitions = []kmsg.ProduceRequestTopicPartition{{Records: make([]byte, 4<<20)}}
	c := dial(t, addr, ClientOptions{})
	for range 3 {
		if _, err := c.Do(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "memory given back", func() bool { return budget.Used() == 0 })
}

// Servers sharing a budget: what one holds, another cannot take, so it stops reading
// until the first gives it back; neither is wedged.
func TestSharedBudget(t *testing.T) {
	budget := NewMemoryBudget(1 << 20)
	release := make(chan struct{})
	blocking := func(ctx context.Context, req *Request) (kmsg.Response, error) {
		if p, ok := req.Body.(*kmsg.ProduceRequest); ok && p.Topics[0].Topic == "hold" {
			<-release
		}
		return echoHandler(ctx, req)
	}
	a := startServer(t, &Server{Handler: HandlerFunc(blocking), Limits: Limits{Budget: budget}})
	b := startServer(t, &Server{Handler: HandlerFunc(echoHandler), Limits: Limits{Budget: budget}})

	// A request larger than the budget, alone on its connection to a, is read and held.
	hold := produceRequest(9, 1, "hold")
	hold.Topics[0].Partitions = []kmsg.ProduceRequestTopicPartition{{Records: make([]byte, 3<<19)}}
	ca := dialRaw(t, a)
	ca.send("a", 1, hold)
	eventually(t, 5*time.Second, "budget spent", func() bool { return budget.Used() > budget.Limit() })

	// b's connection holds a request in flight when a second one arrives: that one waits
	// for the budget, and goes ahead once its connection is empty.
	cb := dialRaw(t, b)
	cb.send("b", 1, metadataRequest(1, sleepTopic(300*time.Millisecond)))
	small := produceRequest(9, 1, "small")
	small.Topics[0].Partitions = []kmsg.ProduceRequestTopicPartition{{Records: make([]byte, 100<<10)}}
	cb.send("b", 2, small)
	eventually(t, 5*time.Second, "b waits for the budget", func() bool { return budget.Waits() > 0 })
	for want := int32(1); want <= 2; want++ {
		if id, _ := cb.recv(); id != want {
			t.Fatalf("answer %d, want %d", id, want)
		}
	}

	close(release)
	ca.recv()
	eventually(t, 5*time.Second, "memory given back", func() bool { return budget.Used() == 0 })
}

// The 25-byte ApiVersions v3 whose body announces 0x0fffffff tagged fields closes its
// connection at once, as any malformed request does, and costs nothing to others.
func TestTagBombClosesConnection(t *testing.T) {
	s := &Server{Handler: HandlerFunc(echoHandler)}
	addr := startServer(t, s)
	rc := dialRaw(t, addr)
	start := time.Now()
	rc.write(tagBomb())
	rc.expectClosed()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("closed after %s", took)
	}
	if n := s.Stats().ClosedBadRequest; n != 1 {
		t.Fatalf("ClosedBadRequest %d, want 1", n)
	}
	checkStillServes(t, addr)
}

// Requests other than Produce are refused past MaxNonRecordBytes, from their size
// prefix and api key, before their buffer grows.
func TestNonProduceFrameLimit(t *testing.T) {
	s := &Server{Handler: HandlerFunc(echoHandler), Limits: Limits{MaxNonRecordBytes: 4 << 10}}
	addr := startServer(t, s)
	rc := dialRaw(t, addr)
	b := binary.BigEndian.AppendUint32(nil, 8<<10)
	rc.write(append(b, 0, 3, 0, 1)) // Metadata v1
	rc.expectClosed()
	if n := s.Stats().ClosedBadRequest; n != 1 {
		t.Fatalf("ClosedBadRequest %d, want 1", n)
	}
}

func TestMemoryBudget(t *testing.T) {
	ctx := t.Context()
	b := NewMemoryBudget(100)
	mustReserve := func(n int64, exceed bool) {
		t.Helper()
		if _, err := b.reserve(ctx, nil, nil, n, exceed); err != nil {
			t.Fatal(err)
		}
	}
	mustReserve(60, false)
	mustReserve(60, true) // the one request of an otherwise empty connection
	if b.Used() != 120 {
		t.Fatalf("used %d, want 120", b.Used())
	}

	// Waiters are served in order: a small one does not overtake a large one, which
	// would otherwise wait for ever behind a stream of small ones.
	granted := make(chan int64, 2)
	for _, n := range []int64{90, 10} {
		go func() {
			if _, err := b.reserve(ctx, nil, nil, n, false); err == nil {
				granted <- n
			}
		}()
		eventually(t, time.Second, fmt.Sprintf("%d waiting", n), func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return len(b.mu.queue) > 0 && b.mu.queue[len(b.mu.queue)-1].n == n
		})
	}
	b.release(30) // 90 used: 10 would fit, but 90 is first
	time.Sleep(50 * time.Millisecond)
	if len(granted) != 0 || b.Used() != 90 {
		t.Fatalf("%d granted, %d used; want none granted while 90 waits first", len(granted), b.Used())
	}
	b.release(90)
	<-granted
	<-granted
	if b.Used() != 100 {
		t.Fatalf("used %d, want 100", b.Used())
	}
	b.release(100)

	// A waiter that gives up leaves the line, and its bytes are not lost.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	mustReserve(100, false) // first, so that the 50 below must wait
	go func() { _, err := b.reserve(cctx, nil, nil, 50, false); done <- err }()
	eventually(t, time.Second, "waiting", func() bool { return b.Waits() == 3 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	b.release(100)
	if b.Used() != 0 {
		t.Fatalf("used %d after everything was released", b.Used())
	}

	// More than the whole budget fits once it is empty.
	mustReserve(1000, false)
	b.release(1000)

	var none *MemoryBudget
	if _, err := none.reserve(ctx, nil, nil, 1<<40, false); err != nil || none.Used() != 0 {
		t.Fatal("a nil budget limits")
	}
}

// Past MaxConnections a new connection is closed at once (Kafka's max.connections),
// counted, and logged at most once a second; those served are unharmed, and room made
// by a close is taken again.
func TestMaxConnections(t *testing.T) {
	var logged lockedBuffer
	srv := &Server{Handler: HandlerFunc(echoHandler), Limits: Limits{MaxConnections: 2},
		Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	addr := startServer(t, srv)
	first := dial(t, addr, ClientOptions{})
	second := dial(t, addr, ClientOptions{})
	mustEcho(t, first, "a")
	mustEcho(t, second, "b")
	for range 5 {
		dialRaw(t, addr).expectClosed()
	}
	if s := srv.Stats(); s.RefusedConnections != 5 || s.OpenConnections != 2 {
		t.Fatalf("refused %d, open %d; want 5 and 2", s.RefusedConnections, s.OpenConnections)
	}
	if n := strings.Count(logged.String(), "refusing connections"); n != 1 {
		t.Fatalf("%d log lines for 5 refusals within a second, want 1:\n%s", n, logged.String())
	}
	mustEcho(t, first, "still served")

	second.Close()
	eventually(t, 5*time.Second, "room for a connection", func() bool { return srv.Stats().OpenConnections == 1 })
	mustEcho(t, dial(t, addr, ClientOptions{}), "c")
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
