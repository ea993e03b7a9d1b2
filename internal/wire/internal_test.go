package wire

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The handshake counts only as a connection's first request: declared later, or by a
// request other than ApiVersions, it leaves the connection ordinary, answered in order.
func TestHandshakeOnlyFirst(t *testing.T) {
	declaringMetadata := appendRequest(nil, metadataRequest(12, sleepTopic(0)), 0, "c", true, Origin{})
	for _, tc := range []struct {
		name  string
		first func(rc *rawConn)
	}{
		{"ApiVersions without the tag", func(rc *rawConn) {
			rc.send("c", 0, versioned(kmsg.NewPtrApiVersionsRequest(), 3))
			rc.recv()
		}},
		{"the tag on Metadata", func(rc *rawConn) {
			rc.write(declaringMetadata)
			rc.recv()
		}},
		{"the tag on the second request", func(rc *rawConn) {
			rc.send("c", 0, versioned(kmsg.NewPtrApiVersionsRequest(), 3))
			rc.recv()
			rc.declareInternal()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
			rc := dialRaw(t, addr)
			tc.first(rc)
			rc.send("c", 1, metadataRequest(1, sleepTopic(200*time.Millisecond)))
			rc.send("c", 2, metadataRequest(1, "fast"))
			if first, _ := rc.recv(); first != 1 {
				t.Fatalf("answer %d came first on an ordinary connection", first)
			}
			rc.recv()
		})
	}
}

// originRecorder is a handler that records each Metadata request's Origin, and the one
// its context carries.
type originRecorder struct {
	mu      sync.Mutex
	origins []Origin
}

func (o *originRecorder) ServeKafka(ctx context.Context, req *Request) (kmsg.Response, error) {
	if _, ok := req.Body.(*kmsg.MetadataRequest); ok {
		fromCtx, _ := OriginFrom(ctx)
		if fromCtx != req.Origin {
			panic("the context's origin is not the request's")
		}
		o.mu.Lock()
		o.origins = append(o.origins, req.Origin)
		o.mu.Unlock()
	}
	return echoHandler(ctx, req)
}

func (o *originRecorder) last(t *testing.T) Origin {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.origins) == 0 {
		t.Fatal("no request recorded")
	}
	return o.origins[len(o.origins)-1]
}

// A request's Origin comes from its header tags on an internal connection only; on an
// ordinary one, and for a request whose header has no tags (not flexible), it is the
// connection's own client id and address.
func TestOriginOnlyFromInternalConnections(t *testing.T) {
	rec := &originRecorder{}
	addr := startServer(t, &Server{Handler: rec})
	claimed := Origin{ClientID: "real-client", ClientAddr: "192.0.2.1:40000", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	ctx := WithOrigin(t.Context(), claimed)

	internal := dial(t, addr, ClientOptions{ClientID: "strait-proxy", Internal: true})
	mustDo(t, internal, ctx, metadataRequest(12, "t"))
	want := claimed
	want.Principal = anonymous // an origin without a principal is the peer's own
	if got := rec.last(t); got != want {
		t.Fatalf("internal, with an origin: %+v, want %+v", got, want)
	}
	mustDo(t, internal, t.Context(), metadataRequest(12, "t"))
	if got := rec.last(t); got.ClientID != "strait-proxy" || got.ClientAddr != localAddr(internal) || got.TraceParent != "" {
		t.Fatalf("internal, without an origin: %+v, want the connection's own", got)
	}
	mustDo(t, internal, ctx, metadataRequest(8, "t"))
	if got := rec.last(t); got.ClientID != "strait-proxy" {
		t.Fatalf("internal, not flexible: %+v, want the connection's own", got)
	}

	ordinary := dial(t, addr, ClientOptions{ClientID: "plain"})
	mustDo(t, ordinary, ctx, metadataRequest(12, "t"))
	if got := rec.last(t); got.ClientID != "plain" || got.ClientAddr != localAddr(ordinary) || got.TraceParent != "" {
		t.Fatalf("ordinary, with an origin in its context: %+v, want the connection's own", got)
	}

	rc := dialRaw(t, addr) // an ordinary client that writes the tags anyway
	rc.write(appendRequest(nil, metadataRequest(12, "t"), 1, "sneaky", false, claimed))
	rc.recv()
	if got := rec.last(t); got.ClientID != "sneaky" || got.ClientAddr != rc.nc.LocalAddr().String() {
		t.Fatalf("ordinary, with origin tags: %+v, want the connection's own", got)
	}
}

// A handler that forwards with its own context carries its client's origin on: the
// proxy's pattern. The second server sees the first one's client.
func TestOriginForwarded(t *testing.T) {
	rec := &originRecorder{}
	node := startServer(t, &Server{Handler: rec})
	pool := NewPool(PoolOptions{ClientOptions: ClientOptions{ClientID: "strait-proxy", Internal: true, Logger: testLogger(t)}})
	defer pool.Close()
	proxy := startServer(t, &Server{Handler: HandlerFunc(func(ctx context.Context, req *Request) (kmsg.Response, error) {
		if m, ok := req.Body.(*kmsg.MetadataRequest); ok {
			return pool.Do(ctx, node, metadataRequest(12, *m.Topics[0].Topic))
		}
		return echoHandler(ctx, req)
	})})
	c := dial(t, proxy, ClientOptions{ClientID: "app-1"})
	mustDo(t, c, t.Context(), metadataRequest(4, "t"))
	if got, want := rec.last(t), (Origin{ClientID: "app-1", ClientAddr: localAddr(c), Principal: anonymous}); got != want {
		t.Fatalf("node saw %+v, want %+v", got, want)
	}
}

// An origin field past its bound closes the connection, as any malformed header does.
func TestOriginTooLongClosesConnection(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	rc := dialRaw(t, addr)
	rc.declareInternal()
	long := string(make([]byte, maxOriginTraceParent+1))
	rc.write(appendRequest(nil, metadataRequest(12, "t"), 1, "c", false, Origin{TraceParent: long}))
	rc.expectClosed()
}

// An internal connection reads many more requests ahead than an ordinary one: with
// MaxInFlight 2, twenty long polls all run at once, and a fast request behind them is
// answered first.
func TestInternalReadAhead(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler), Limits: Limits{MaxInFlight: 2}})
	c := dial(t, addr, ClientOptions{Internal: true})
	var wg sync.WaitGroup
	start := time.Now()
	for range 20 {
		wg.Go(func() { mustEcho(t, c, sleepTopic(500*time.Millisecond)) })
	}
	time.Sleep(50 * time.Millisecond)
	mustEcho(t, c, "fast")
	if took := time.Since(start); took > 400*time.Millisecond {
		t.Fatalf("a fast request waited %s behind long polls", took)
	}
	wg.Wait()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("20 long polls of 500ms took %s: they did not run together", took)
	}
}

func mustDo(t *testing.T, c *Client, ctx context.Context, req kmsg.Request) kmsg.Response {
	t.Helper()
	resp, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// localAddr is the client's end of its connection: the address the server sees.
func localAddr(c *Client) string { return c.nc.LocalAddr().String() }
