package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

// relayCluster is a Store with proxies registered in it, live (holding their lease)
// or not, for a node's proxyRelay.
type relayCluster struct {
	store *routing.MemStore
	cache *routing.Cache
}

func newRelayCluster(t *testing.T) *relayCluster {
	t.Helper()
	store, err := routing.NewMemStore("")
	if err != nil {
		t.Fatalf("NewMemStore: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	cache, err := routing.NewCache(context.Background(), store, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(cache.Close)
	return &relayCluster{store: store, cache: cache}
}

// addProxy registers proxy id at addr, live if live.
func (c *relayCluster) addProxy(t *testing.T, id int32, addr string, live bool) {
	t.Helper()
	ctx := context.Background()
	if err := c.store.RegisterProxy(ctx, routing.Proxy{ID: id, Addr: addr}); err != nil {
		t.Fatalf("RegisterProxy: %v", err)
	}
	if live {
		if _, err := c.store.AcquireLease(ctx, routing.ProxyLeaseName(id), "test", time.Minute); err != nil {
			t.Fatalf("AcquireLease: %v", err)
		}
	}
}

func (c *relayCluster) relay(t *testing.T) *proxyRelay {
	t.Helper()
	if err := c.cache.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	r := newProxyRelay(0, c.store, c.cache, nil, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { r.Close() })
	return r
}

// fakeProxy serves Metadata naming id as the controller, and counts the requests.
func fakeProxy(t *testing.T, id int32) (string, *atomic.Int32) {
	t.Helper()
	var served atomic.Int32
	srv := &wire.Server{Handler: wire.HandlerFunc(func(_ context.Context, req *wire.Request) (kmsg.Response, error) {
		if _, ok := req.Body.(*kmsg.ApiVersionsRequest); ok { // the internal handshake
			return req.Body.ResponseKind(), nil
		}
		served.Add(1)
		resp := req.Body.ResponseKind().(*kmsg.MetadataResponse)
		resp.ControllerID = id
		return resp, nil
	})}
	return serveOn(t, srv), &served
}

func serveOn(t *testing.T, srv *wire.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// closedAddr is an address nothing listens on: dialing it fails before anything is sent.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func relayMetadata(r *proxyRelay) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.relay(ctx, &wire.Request{Header: wire.RequestHeader{Key: req.Key(), Version: req.Version, ClientID: "app"}, Body: req})
	if err != nil {
		return -1, err
	}
	return resp.(*kmsg.MetadataResponse).ControllerID, nil
}

// TestProxyRelayMovesOnFromUnreachableProxy: a node relays to a live proxy, skipping
// one it cannot reach and one whose lease expired, and keeps to the one that answered.
func TestProxyRelayMovesOnFromUnreachableProxy(t *testing.T) {
	c := newRelayCluster(t)
	liveAddr, served := fakeProxy(t, 1001)
	deadAddr, notLive := fakeProxy(t, 1002)
	c.addProxy(t, 1000, closedAddr(t), true) // the node's first choice: 0 % 2 live proxies
	c.addProxy(t, 1001, liveAddr, true)
	c.addProxy(t, 1002, deadAddr, false)
	r := c.relay(t)

	for i := range 3 {
		if got, err := relayMetadata(r); err != nil || got != 1001 {
			t.Fatalf("relay %d: answered by %d, %v; want proxy 1001", i, got, err)
		}
	}
	if first := r.candidates(context.Background())[0].ID; first != 1001 {
		t.Errorf("next relay goes first to %d, want 1001, which answered", first)
	}
	if served.Load() != 3 || notLive.Load() != 0 {
		t.Errorf("live proxy served %d, proxy without a lease %d; want 3 and 0", served.Load(), notLive.Load())
	}
}

// TestProxyRelayDoesNotResendAfterSending: a request whose connection broke after it was
// sent may have been applied (a CreateTopics, a JoinGroup), so it is not sent to another
// proxy; the client hears of the failure and decides.
func TestProxyRelayDoesNotResendAfterSending(t *testing.T) {
	c := newRelayCluster(t)
	// Completes the internal handshake, then reads the request and hangs up.
	hangUp := serveOn(t, &wire.Server{Handler: wire.HandlerFunc(func(_ context.Context, req *wire.Request) (kmsg.Response, error) {
		if _, ok := req.Body.(*kmsg.ApiVersionsRequest); ok {
			return req.Body.ResponseKind(), nil
		}
		return nil, errors.New("hanging up after reading the request")
	})})
	otherAddr, other := fakeProxy(t, 1001)
	c.addProxy(t, 1000, hangUp, true)
	c.addProxy(t, 1001, otherAddr, true)

	if got, err := relayMetadata(c.relay(t)); err == nil {
		t.Fatalf("relay answered by %d, want an error", got)
	}
	if other.Load() != 0 {
		t.Errorf("the request was sent again to proxy 1001")
	}
}

// TestProxyRelayWithoutLiveProxy: with no live proxy the relay fails at once.
func TestProxyRelayWithoutLiveProxy(t *testing.T) {
	c := newRelayCluster(t)
	c.addProxy(t, 1000, closedAddr(t), false)
	if _, err := relayMetadata(c.relay(t)); !errors.Is(err, errNoLiveProxy) {
		t.Fatalf("relay: %v, want %v", err, errNoLiveProxy)
	}
}
