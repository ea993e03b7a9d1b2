package observability

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startAdmin starts an admin server on a free loopback port and stops it at cleanup.
func startAdmin(t *testing.T, checks ...ReadinessCheck) (*AdminServer, string) {
	t.Helper()
	tel, _ := newRecordedTelemetry(t, Config{Tier: "node"})
	a := NewAdminServer("127.0.0.1:0", tel, DiscardLogger(), checks...)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return a, "http://" + a.Addr().String()
}

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestAdminHealthz(t *testing.T) {
	_, base := startAdmin(t)
	if code, body, _ := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 \"ok\"", code, body)
	}
}

func TestAdminReadyz(t *testing.T) {
	var storeUp atomic.Bool
	store := ReadinessCheck{Name: "store", Check: func(context.Context) error {
		if !storeUp.Load() {
			return errors.New("redis: connection refused")
		}
		return nil
	}}
	a, base := startAdmin(t, store)
	a.AddCheck(ReadinessCheck{Name: "always", Check: func(context.Context) error { return nil }})

	code, body, _ := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || body != "store: redis: connection refused\n" {
		t.Errorf("/readyz with store down = %d %q, want 503 naming the store", code, body)
	}

	storeUp.Store(true)
	if code, body, _ := get(t, base+"/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz with store up = %d %q, want 200 \"ok\"", code, body)
	}

	// A check added after Start counts, and each failure gets its own line.
	a.AddCheck(ReadinessCheck{Name: "catalog", Check: func(context.Context) error { return errors.New("not loaded\nyet") }})
	a.AddCheck(ReadinessCheck{Name: "leases", Check: func(context.Context) error { return errors.New("not held") }})
	code, body, _ = get(t, base+"/readyz")
	if want := "catalog: not loaded yet\nleases: not held\n"; code != 503 || body != want {
		t.Errorf("/readyz = %d %q, want 503 %q", code, body, want)
	}
}

func TestAdminMetrics(t *testing.T) {
	_, base := startAdmin(t)
	code, body, header := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want the Prometheus text format", ct)
	}
	for _, want := range []string{"# TYPE target_info gauge", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestAdminPprof(t *testing.T) {
	_, base := startAdmin(t)
	code, body, _ := get(t, base+"/debug/pprof/")
	if code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d, want 200 with the profile index", code)
	}
	if code, _, _ := get(t, base+"/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Errorf("/debug/pprof/goroutine = %d, want 200", code)
	}
}

func TestAdminStartOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	a := NewAdminServer(addr, nil, nil)
	err = a.Start()
	if err == nil {
		a.Shutdown(context.Background())
		t.Fatalf("Start on busy %s succeeded", addr)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name %s", err, addr)
	}
	if a.Addr() != nil {
		t.Errorf("Addr after failed Start = %v, want nil", a.Addr())
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after failed Start = %v", err)
	}
}

func TestAdminStartTwice(t *testing.T) {
	a, _ := startAdmin(t)
	if err := a.Start(); err == nil {
		t.Error("second Start succeeded")
	}
}
