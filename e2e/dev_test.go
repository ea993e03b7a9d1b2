package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevVersionAndSignals checks the CLI contract around the dev process:
// `strait version` prints a version; dev logs where it listens and exits 0
// on SIGTERM and on SIGINT.
func TestDevVersionAndSignals(t *testing.T) {
	t.Run("version", func(t *testing.T) {
		out := strings.TrimSpace(runTool(t, "", StraitBin(t), "version"))
		if out == "" {
			t.Fatal("strait version printed nothing")
		}
		t.Logf("strait version: %s", out)
	})
	for _, tc := range []struct {
		name string
		sig  os.Signal
	}{{"SIGTERM", syscall.SIGTERM}, {"SIGINT", syscall.SIGINT}} {
		sig := tc.sig
		t.Run(tc.name, func(t *testing.T) {
			p := StartDev(t)
			if err := p.StopWith(sig, StopTimeout); err != nil {
				t.Fatal(err)
			}
			if !hasLineWith(p.Log(), p.Addr()) {
				t.Fatalf("no log line names the listen address %s", p.Addr())
			}
		})
	}
}

// TestDevAdminEndpoints checks the admin HTTP endpoints every process
// serves: /healthz and /readyz answer 200, /metrics serves Prometheus text.
func TestDevAdminEndpoints(t *testing.T) {
	p := StartDev(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		body := httpGet(t, "http://"+p.AdminAddr()+path)
		if path == "/metrics" && !strings.Contains(body, "# TYPE") {
			t.Fatalf("/metrics does not look like Prometheus text:\n%.2000s", body)
		}
	}
}

func hasLineWith(log, s string) bool {
	for line := range strings.Lines(log) {
		if !strings.HasPrefix(line, "=== harness") && strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// httpGet fetches url and fails the test unless it answers 200 OK.
func httpGet(t testing.TB, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%.2000s", url, resp.Status, body)
	}
	return string(body)
}
