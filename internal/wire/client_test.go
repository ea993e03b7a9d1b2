package wire

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client and Server agree on every header shape: v1 and v2 requests, v0 and v1 responses,
// and ApiVersions' v0 response header at flexible versions (KIP-511).
func TestClientRoundTrip(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	for _, tc := range []struct {
		name string
		req  func() kmsg.Request
		want []string // topics echoed back, when the API echoes
	}{
		{"ApiVersions v0", func() kmsg.Request { return versioned(kmsg.NewPtrApiVersionsRequest(), 0) }, nil},
		{"ApiVersions v3 flexible", func() kmsg.Request { return versioned(kmsg.NewPtrApiVersionsRequest(), 3) }, nil},
		{"ApiVersions v4 flexible", func() kmsg.Request { return versioned(kmsg.NewPtrApiVersionsRequest(), 4) }, nil},
		{"Metadata v1", func() kmsg.Request { return metadataRequest(1, "a", "b") }, []string{"a", "b"}},
		{"Metadata v8", func() kmsg.Request { return metadataRequest(8, "a") }, []string{"a"}},
		{"Metadata v9 flexible", func() kmsg.Request { return metadataRequest(9, "a") }, []string{"a"}},
		{"Metadata v12 flexible", func() kmsg.Request { return metadataRequest(12, "a") }, []string{"a"}},
		{"Produce v3", func() kmsg.Request { return produceRequest(3, 1, "p") }, []string{"p"}},
		{"Produce v9 flexible", func() kmsg.Request { return produceRequest(9, -1, "p") }, []string{"p"}},
		{"FindCoordinator v1", func() kmsg.Request { return versioned(kmsg.NewPtrFindCoordinatorRequest(), 1) }, nil},
		{"FindCoordinator v4 flexible", func() kmsg.Request { return versioned(kmsg.NewPtrFindCoordinatorRequest(), 4) }, nil},
		{"ListOffsets v1", func() kmsg.Request { return versioned(kmsg.NewPtrListOffsetsRequest(), 1) }, nil},
	} {
		for _, internal := range []bool{false, true} {
			c := dial(t, addr, ClientOptions{ClientID: "test", Internal: internal})
			req := tc.req()
			resp, err := c.Do(t.Context(), req)
			if err != nil {
				t.Fatalf("%s (internal %v): %v", tc.name, internal, err)
			}
			if resp.Key() != req.Key() || resp.GetVersion() != req.GetVersion() {
				t.Fatalf("%s: got key %d v%d", tc.name, resp.Key(), resp.GetVersion())
			}
			if got := echoed(resp); tc.want != nil && !slices.Equal(got, tc.want) {
				t.Fatalf("%s: echoed %v, want %v", tc.name, got, tc.want)
			}
		}
	}
}

func versioned[R kmsg.Request](r R, v int16) R {
	r.SetVersion(v)
	return r
}

func echoed(resp kmsg.Response) []string {
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		return topicNames(r)
	case *kmsg.ProduceResponse:
		var names []string
		for _, t := range r.Topics {
			names = append(names, t.Topic)
		}
		return names
	}
	return nil
}

func dial(t *testing.T, addr string, opts ClientOptions) *Client {
	t.Helper()
	opts.Logger = testLogger(t)
	c, err := Dial(t.Context(), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Concurrent calls on one client get their own answers. On an internal connection, a
// fast call is not held up behind a slow one.
func TestClientPipelining(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	for _, outOfOrder := range []bool{false, true} {
		c := dial(t, addr, ClientOptions{Internal: outOfOrder})
		slow := sleepTopic(300 * time.Millisecond)
		slowDone := make(chan struct{})
		go func() {
			defer close(slowDone)
			mustEcho(t, c, slow)
		}()
		time.Sleep(20 * time.Millisecond) // let the slow request go out first

		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() { mustEcho(t, c, "t"+itoa(i)) })
		}
		wg.Wait()
		select {
		case <-slowDone:
			if outOfOrder {
				t.Fatal("out of order: fast calls waited for the slow one")
			}
		default:
			if !outOfOrder {
				t.Fatal("in order: fast calls were answered before the slow one")
			}
		}
		<-slowDone
	}
}

func mustEcho(t *testing.T, c *Client, topic string) {
	resp, err := c.Do(t.Context(), metadataRequest(4, topic))
	if err != nil {
		t.Error(err)
		return
	}
	if got := topicNames(resp.(*kmsg.MetadataResponse)); !slices.Equal(got, []string{topic}) {
		t.Errorf("asked for %s, got %v", topic, got)
	}
}

// acks=0 produce is never answered: Do returns nil, nil, and the next request on the
// connection gets its own answer, not a stray one.
func TestClientAcksZero(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	c := dial(t, addr, ClientOptions{})
	for _, v := range []int16{3, 9} {
		resp, err := c.Do(t.Context(), produceRequest(v, 0, "fire-and-forget"))
		if resp != nil || err != nil {
			t.Fatalf("acks=0 v%d: %v, %v; want nil, nil", v, resp, err)
		}
		resp, err = c.Do(t.Context(), produceRequest(v, 1, "acked"))
		if err != nil {
			t.Fatal(err)
		}
		if got := echoed(resp); !slices.Equal(got, []string{"acked"}) {
			t.Fatalf("acks=1 after acks=0 got %v", got)
		}
	}
}

// A cancelled wait returns the context's error; the late answer is dropped and the
// connection keeps serving.
func TestClientCancel(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	c := dial(t, addr, ClientOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, metadataRequest(1, sleepTopic(100*time.Millisecond))); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	mustEcho(t, c, "after")
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
}

// KIP-511 from the client's side: asking ApiVersions above the server's range yields the
// server's v0 answer with UNSUPPORTED_VERSION, not a decoding error.
func TestClientAPIVersionsTooNew(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	c := dial(t, addr, ClientOptions{})
	resp, err := c.Do(t.Context(), versioned(kmsg.NewPtrApiVersionsRequest(), 100))
	if err != nil {
		t.Fatal(err)
	}
	if av := resp.(*kmsg.ApiVersionsResponse); av.ErrorCode != 35 || av.GetVersion() != 0 || len(av.ApiKeys) == 0 {
		t.Fatalf("got %+v", av)
	}
}

// After the connection breaks, the pending call and every later one fail with the cause,
// and a Pool redials on next use.
func TestClientBrokenConnection(t *testing.T) {
	h := func(ctx context.Context, req *Request) (kmsg.Response, error) {
		if m, ok := req.Body.(*kmsg.MetadataRequest); ok && len(m.Topics) == 1 && *m.Topics[0].Topic == "break" {
			return nil, errors.New("break the connection")
		}
		return echoHandler(ctx, req)
	}
	addr := startServer(t, &Server{Handler: HandlerFunc(h)})
	pool := NewPool(PoolOptions{ClientOptions: ClientOptions{Logger: testLogger(t)}, ConnsPerAddr: 1})
	defer pool.Close()

	if _, err := pool.Do(t.Context(), addr, metadataRequest(1, "break")); err == nil {
		t.Fatal("request that breaks the connection succeeded")
	}
	if _, err := pool.Do(t.Context(), addr, metadataRequest(1, "after")); err != nil { // redialed
		t.Fatal(err)
	}
	if dials := pool.Stats().Dials; dials != 2 {
		t.Fatalf("%d dials, want 2", dials)
	}
	c := dial(t, addr, ClientOptions{})

	if _, err := c.Do(t.Context(), metadataRequest(1, "break")); err == nil {
		t.Fatal("request that breaks the connection succeeded")
	}
	if c.Err() == nil {
		t.Fatal("Err() is nil after the connection broke")
	}
	if _, err := c.Do(t.Context(), metadataRequest(1, "t")); err == nil {
		t.Fatal("Do on a broken client succeeded")
	}
}

// Close fails what waits, and a closed Pool dials nothing more.
func TestClientClose(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	c := dial(t, addr, ClientOptions{})
	failed := make(chan error, 1)
	go func() {
		_, err := c.Do(t.Context(), metadataRequest(1, sleepTopic(time.Second)))
		failed <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	if err := <-failed; !errors.Is(err, ErrClientClosed) {
		t.Fatalf("pending Do got %v, want ErrClientClosed", err)
	}

	pool := NewPool(PoolOptions{})
	pool.Close()
	if _, err := pool.Do(t.Context(), addr, metadataRequest(1)); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Do on a closed pool got %v", err)
	}
}

// A response larger than MaxResponseBytes breaks the connection rather than being read.
func TestClientMaxResponseBytes(t *testing.T) {
	addr := startServer(t, &Server{Handler: HandlerFunc(echoHandler)})
	c := dial(t, addr, ClientOptions{MaxResponseBytes: 16})
	if _, err := c.Do(t.Context(), metadataRequest(1, "a-topic-name-longer-than-16-bytes")); !errors.Is(err, errFrameSize) {
		t.Fatalf("got %v, want a frame size error", err)
	}
}
