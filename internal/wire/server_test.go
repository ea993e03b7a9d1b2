package wire

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A real Kafka client negotiates versions with ApiVersions, then gets its own requests
// answered.
func TestServerWithKgo(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	cl := newKgo(t, addr)

	req := metadataRequest(12, "a", "b")
	resp, err := cl.Request(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := topicNames(resp.(*kmsg.MetadataResponse)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("topics %v, want [a b]", got)
	}
	av, err := cl.Request(t.Context(), kmsg.NewPtrApiVersionsRequest())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(av.(*kmsg.ApiVersionsResponse).ApiKeys); n == 0 {
		t.Fatal("ApiVersions listed no keys")
	}
}

// KIP-511: a client that asks ApiVersions at a version the server does not serve gets a v0
// UNSUPPORTED_VERSION answer listing the server's range, and retries lower on the same
// connection. kgo starts at its newest version, above the 0..2 served here.
func TestServerKIP511WithKgo(t *testing.T) {
	s := &Server{
		Handler: HandlerFunc(echoHandler),
		Versions: func(key int16) (int16, int16, bool) {
			if key == apiVersionsKey {
				return 0, 2, true
			}
			return clampVersions(nil)(key)
		},
	}
	addr := startServer(t, s)
	cl := newKgo(t, addr)
	if _, err := cl.Request(t.Context(), metadataRequest(12, "a")); err != nil {
		t.Fatal(err)
	}
}

func newKgo(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// KIP-511 on the wire: ApiVersions v127 is answered at v0 with error 35, and the
// connection then serves ApiVersions v3.
func TestServerKIP511(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	rc := dialRaw(t, addr)

	tooNew := kmsg.NewPtrApiVersionsRequest()
	tooNew.SetVersion(127)
	rc.send("kip511", 1, tooNew)
	id, payload := rc.recv()
	v0 := kmsg.NewPtrApiVersionsRequest() // the answer is at v0, whatever was asked
	resp, err := decodeResponse(payload, v0)
	if err != nil {
		t.Fatal(err)
	}
	av := resp.(*kmsg.ApiVersionsResponse)
	if id != 1 || av.ErrorCode != 35 {
		t.Fatalf("correlation %d, error code %d; want 1, 35", id, av.ErrorCode)
	}
	if !hasKey(av, apiVersionsKey, 0, kmsg.NewPtrApiVersionsRequest().MaxVersion()) {
		t.Fatalf("ApiKeys %+v lack ApiVersions' range", av.ApiKeys)
	}

	v3 := kmsg.NewPtrApiVersionsRequest()
	v3.SetVersion(3)
	rc.send("kip511", 2, v3)
	id, payload = rc.recv()
	resp, err = decodeResponse(payload, v3)
	if err != nil || id != 2 || resp.(*kmsg.ApiVersionsResponse).ErrorCode != 0 {
		t.Fatalf("v3 after v127: correlation %d, err %v, resp %+v", id, err, resp)
	}
}

func hasKey(av *kmsg.ApiVersionsResponse, key, lo, hi int16) bool {
	return slices.ContainsFunc(av.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool {
		return k.ApiKey == key && k.MinVersion == lo && k.MaxVersion == hi
	})
}

// The protocol answers in request order per connection: the first request sleeps longest,
// yet its answer comes first. On an internal connection, answers come as they are ready.
// The client id that used to switch a connection to out-of-order answers is now an
// ordinary client id.
func TestServerResponseOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		clientID string
		internal bool
		want     []int32
	}{
		{"in order", "ordinary", false, []int32{1, 2, 3}},
		{"the old out-of-order client id", "strait-internal/out-of-order", false, []int32{1, 2, 3}},
		{"internal", "ordinary", true, []int32{3, 2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
			rc := dialRaw(t, addr)
			if tc.internal {
				rc.declareInternal()
			}
			delays := []time.Duration{300 * time.Millisecond, 150 * time.Millisecond, 0}
			for i, d := range delays {
				rc.send(tc.clientID, int32(i+1), metadataRequest(1, sleepTopic(d)))
			}
			var got []int32
			for range delays {
				id, payload := rc.recv()
				checkEcho(t, payload, sleepTopic(delays[id-1]))
				got = append(got, id)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("answers came as %v, want %v", got, tc.want)
			}
		})
	}
}

func checkEcho(t *testing.T, payload []byte, topic string) {
	t.Helper()
	resp, err := decodeResponse(payload, metadataRequest(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := topicNames(resp.(*kmsg.MetadataResponse)); !slices.Equal(got, []string{topic}) {
		t.Fatalf("answer for %v, want [%s]", got, topic)
	}
}

// Read-ahead is bounded: with MaxInFlightInternal 2, no more than 2 handlers run at once
// however many requests are pipelined on an internal connection; an ordinary connection
// runs one handler at a time, as a Kafka broker does.
func TestServerConcurrencyPerConnection(t *testing.T) {
	for _, tc := range []struct {
		name     string
		internal bool
		want     int32
	}{
		{"internal", true, 2},
		{"ordinary", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var running, peak atomic.Int32
			h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
				n := running.Add(1)
				defer running.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(20 * time.Millisecond)
				return echoHandler(ctx, req)
			}
			addr := startServer(t, &Server{Handler: HandlerFunc(h), Limits: Limits{MaxInFlight: 2, MaxInFlightInternal: 2}})
			rc := dialRaw(t, addr)
			if tc.internal {
				rc.declareInternal()
				peak.Store(0)
			}
			for i := range 8 {
				rc.send("client", int32(i+1), metadataRequest(1, "t"))
			}
			got := map[int32]bool{}
			for range 8 {
				id, _ := rc.recv()
				got[id] = true
			}
			if len(got) != 8 {
				t.Fatalf("got answers %v, want 8 distinct", got)
			}
			if p := peak.Load(); p != tc.want {
				t.Fatalf("peak concurrency %d, want %d", p, tc.want)
			}
		})
	}
}

// Bad input closes the offending connection (as Kafka does) without allocating what the
// peer announces, and another connection to the same server keeps working.
func TestServerBadInput(t *testing.T) {
	frame := func(payload ...byte) []byte {
		return append([]byte{0, 0, 0, byte(len(payload))}, payload...)
	}
	metadata := kmsg.NewRequestFormatter().AppendRequest(nil, metadataRequest(1, "t"), 1)
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"oversized size prefix", []byte{0x7f, 0xff, 0xff, 0xff}},
		{"size just over the limit", []byte{0, 0, 4, 1}},
		{"negative size", []byte{0xff, 0xff, 0xff, 0xfe}},
		{"header shorter than 8 bytes", frame(0, 3, 0, 1)},
		{"garbage header", frame(0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0, 0)},
		{"unknown api key", frame(0x7f, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff)},
		{"unsupported version", frame(0, 3, 0x7f, 0, 0, 0, 0, 1, 0xff, 0xff)},
		{"client id past the frame", frame(0, 3, 0, 1, 0, 0, 0, 1, 0, 9, 'a')},
		{"truncated body", truncate(metadata, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler), Limits: Limits{MaxRequestBytes: 1024}})
			good := dialRaw(t, addr)
			bad := dialRaw(t, addr)
			bad.write(tc.bytes)
			bad.expectClosed()

			good.send("good", 7, metadataRequest(1, "still-here"))
			_, payload := good.recv()
			checkEcho(t, payload, "still-here")
		})
	}
}

// truncate shortens a frame's payload by n bytes, fixing its size prefix to match.
func truncate(frame []byte, n int) []byte {
	out := slices.Clone(frame[:len(frame)-n])
	size := len(out) - 4
	out[0], out[1], out[2], out[3] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
	return out
}

// A handler error closes its connection; a panic is one too, not a crash.
func TestServerHandlerFailureClosesConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    HandlerFunc
	}{
		{"error", func(context.Context, *Request) (kmsg.Response, error) { return nil, errors.New("boom") }},
		{"panic", func(context.Context, *Request) (kmsg.Response, error) { panic("boom") }},
		{"wrong response kind", func(context.Context, *Request) (kmsg.Response, error) {
			return kmsg.NewPtrProduceResponse(), nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServer(t, &Server{Handler: tc.h})
			rc := dialRaw(t, addr)
			rc.send("c", 1, metadataRequest(1))
			rc.expectClosed()
		})
	}
}

// Shutdown lets a request already read finish and delivers its answer, then closes;
// Serve returns ErrServerClosed.
func TestServerShutdown(t *testing.T) {
	started := make(chan struct{})
	h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
		close(started)
		return echoHandler(ctx, req)
	}
	s := &Server{Handler: HandlerFunc(h), Logger: testLogger(t)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	c, err := Dial(t.Context(), ln.Addr().String(), ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	slow := sleepTopic(200 * time.Millisecond)
	answered := make(chan error, 1)
	go func() {
		resp, err := c.Do(t.Context(), metadataRequest(1, slow))
		if err == nil && !slices.Equal(topicNames(resp.(*kmsg.MetadataResponse)), []string{slow}) {
			err = errors.New("wrong answer")
		}
		answered <- err
	}()
	<-started

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown returned %v", err)
	}
}

// When Shutdown's context ends first, the connections are closed at once and the
// handlers see their context cancelled.
func TestServerShutdownTimeout(t *testing.T) {
	cancelled := make(chan struct{})
	started := make(chan struct{})
	h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	}
	s := &Server{Handler: HandlerFunc(h)}
	addr := startServer(t, s)
	rc := dialRaw(t, addr)
	rc.send("c", 1, metadataRequest(1))
	<-started

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown returned %v, want DeadlineExceeded", err)
	}
	<-cancelled
	rc.expectClosed()
}

// Observe sees each request start and end with the frame sizes, and its context reaches
// the handler.
func TestServerObserve(t *testing.T) {
	type key struct{}
	type call struct {
		key, version int16
		in, out      int
	}
	var (
		mu    sync.Mutex
		calls []call
		done  = make(chan struct{}, 2)
	)
	observe := func(ctx context.Context, req *Request) (context.Context, func(int, int, error)) {
		k, v := req.Header.Key, req.Header.Version
		return context.WithValue(ctx, key{}, "span"), func(in, out int, err error) {
			mu.Lock()
			calls = append(calls, call{k, v, in, out})
			mu.Unlock()
			done <- struct{}{}
		}
	}
	h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
		if ctx.Value(key{}) != "span" {
			return nil, errors.New("observe's context did not reach the handler")
		}
		return echoHandler(ctx, req)
	}
	addr := startServer(t, &Server{Handler: HandlerFunc(h), Observe: observe})
	rc := dialRaw(t, addr)
	req := metadataRequest(1, "t")
	reqFrame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c")).AppendRequest(nil, req, 1)
	rc.write(reqFrame)
	_, payload := rc.recv()
	rc.send("c", 2, produceRequest(3, 0, "t")) // acks=0: nothing written
	<-done
	<-done

	mu.Lock()
	defer mu.Unlock()
	want := []call{{3, 1, len(reqFrame), 4 + len(payload)}, {0, 3, calls[1].in, 0}}
	if !slices.Equal(calls, want) {
		t.Fatalf("observed %+v, want %+v", calls, want)
	}
}

// Temporary accept errors are retried after a backoff instead of ending Serve.
func TestServerAcceptBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	flaky := &flakyListener{Listener: ln}
	flaky.failures.Store(3)
	s := &Server{Handler: HandlerFunc(echoHandler), Logger: testLogger(t)}
	served := make(chan error, 1)
	go func() { served <- s.Serve(flaky) }()
	defer func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	}()

	c, err := Dial(t.Context(), ln.Addr().String(), ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do(t.Context(), metadataRequest(1, "t")); err != nil {
		t.Fatal(err)
	}
	if n := flaky.failures.Load(); n != 0 {
		t.Fatalf("%d failures left", n)
	}
}

type flakyListener struct {
	net.Listener
	failures atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, temporaryError{}
	}
	l.failures.Store(0)
	return l.Listener.Accept()
}

type temporaryError struct{}

func (temporaryError) Error() string   { return "temporary" }
func (temporaryError) Temporary() bool { return true }
func (temporaryError) Timeout() bool   { return false }

func TestNextBackoff(t *testing.T) {
	var got []time.Duration
	for d := time.Duration(0); len(got) < 10; {
		d = nextBackoff(d)
		got = append(got, d)
	}
	if got[0] != 5*time.Millisecond || got[1] != 10*time.Millisecond || got[9] != time.Second {
		t.Fatalf("backoffs %v", got)
	}
}
