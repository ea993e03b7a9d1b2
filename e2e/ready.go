package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// pollInterval is how often readiness and other conditions are polled.
const pollInterval = 50 * time.Millisecond

// FreeAddr returns a loopback address with a port that was free a moment
// ago: it listens on 127.0.0.1:0, reads the port and closes the listener.
// Another program could take the port before ours binds it; on a test
// machine that is rare enough, and the failure is loud (the process does
// not become ready).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("free port: %v", err)
	}
	return addr
}

// pollUntil calls check every pollInterval until it returns nil, ctx ends,
// or exited is closed (the process died, so it will never be ready). The
// error names the last reason check gave.
func pollUntil(ctx context.Context, exited <-chan struct{}, check func(context.Context) error) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		// A check cut short by the deadline says less than the one before it.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited before it was ready (last check: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// HTTPReady returns a readiness check that succeeds once GET url answers
// 200 OK.
func HTTPReady(url string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %q", url, resp.Status, body)
		}
		return nil
	}
}

// TCPReady returns a readiness check that succeeds once addr accepts a TCP
// connection (for programs without a health endpoint, such as redis-server).
func TCPReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
}

// Eventually polls cond until it returns nil or timeout passes, then fails
// the test with cond's last error. Use it instead of sleeping.
func Eventually(t testing.TB, timeout time.Duration, cond func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := pollUntil(ctx, nil, cond); err != nil {
		t.Fatalf("condition not met within %v: %v", timeout, err)
	}
}
