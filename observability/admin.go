package observability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"
)

// ReadinessCheck is one condition /readyz requires, such as "routing store reachable".
// Check returns nil when ready; its error message is what /readyz shows.
type ReadinessCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// readyzTimeout bounds a whole /readyz run, so one hung check cannot hold the probe
// open past the orchestrator's own timeout.
const readyzTimeout = 5 * time.Second

// AdminServer serves the operator endpoints of a process:
//
//	/metrics       Prometheus scrape of the Telemetry's registry
//	/healthz       200 "ok" while the process runs (liveness)
//	/readyz        200 "ok" when every readiness check passes, else 503 listing failures
//	/debug/pprof/  net/http/pprof, on this server's own mux
//	/v1/...        JSON documents the process adds (HandleJSON), such as /v1/cluster
type AdminServer struct {
	addr   string
	logger *slog.Logger
	srv    *http.Server
	mux    *http.ServeMux

	mu struct {
		sync.Mutex
		checks []ReadinessCheck
		ln     net.Listener  // set by Start
		done   chan struct{} // closed when Serve returns
	}
}

// NewAdminServer returns a server for addr (e.g. ":9090" or "127.0.0.1:0"). A nil t
// leaves out /metrics; a nil logger discards.
func NewAdminServer(addr string, t *Telemetry, logger *slog.Logger, checks ...ReadinessCheck) *AdminServer {
	if logger == nil {
		logger = DiscardLogger()
	}
	a := &AdminServer{addr: addr, logger: logger}
	a.mu.checks = append([]ReadinessCheck(nil), checks...)
	a.mux = a.routes(t)
	a.srv = &http.Server{
		Handler:           a.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return a
}

func (a *AdminServer) routes(t *Telemetry) *http.ServeMux {
	mux := http.NewServeMux()
	if t != nil {
		mux.Handle("GET /metrics", t.MetricsHandler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.serveReadyz)
	// The same routes net/http/pprof registers on DefaultServeMux, here on our own mux.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// jsonTimeout bounds building one JSON document, which may ask other processes.
const jsonTimeout = 10 * time.Second

// HandleJSON serves GET pattern with the document build returns, encoded as JSON, or
// 503 and {"error": "..."} when it fails; safe to call before or after Start.
func (a *AdminServer) HandleJSON(pattern string, build func(ctx context.Context) (any, error)) {
	a.mux.HandleFunc("GET "+pattern, func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), jsonTimeout)
		defer cancel()
		doc, err := build(ctx)
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			enc.Encode(map[string]string{"error": err.Error()})
			return
		}
		if err := enc.Encode(doc); err != nil {
			a.logger.Debug("writing a JSON document failed", "path", r.URL.Path, "err", err)
		}
	})
}

// AddCheck adds a readiness check; safe to call before or after Start.
func (a *AdminServer) AddCheck(c ReadinessCheck) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mu.checks = append(a.mu.checks, c)
}

// serveReadyz runs every check and answers 200 "ok", or 503 with one "name: message"
// line per failing check.
func (a *AdminServer) serveReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyzTimeout)
	defer cancel()
	failures := a.runChecks(ctx)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(failures) == 0 {
		fmt.Fprintln(w, "ok")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	for _, f := range failures {
		fmt.Fprintln(w, f)
	}
}

// runChecks runs the checks in order, outside the lock so a slow check does not block
// AddCheck, and returns one line per failure.
func (a *AdminServer) runChecks(ctx context.Context) []string {
	a.mu.Lock()
	checks := a.mu.checks[:len(a.mu.checks):len(a.mu.checks)]
	a.mu.Unlock()
	var failures []string
	for _, c := range checks {
		if err := c.Check(ctx); err != nil {
			// A multi-line error would break the one-failure-per-line body.
			msg := strings.ReplaceAll(err.Error(), "\n", " ")
			failures = append(failures, c.Name+": "+msg)
		}
	}
	return failures
}

// Start listens on the server's address and serves in the background. A listen error
// (port in use, bad address) is returned at once.
func (a *AdminServer) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.ln != nil {
		return fmt.Errorf("observability: admin server on %s already started", a.mu.ln.Addr())
	}
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return fmt.Errorf("observability: admin server listen on %q: %w", a.addr, err)
	}
	a.mu.ln = ln
	a.mu.done = make(chan struct{})
	go a.serve(ln, a.mu.done)
	a.logger.Debug("admin server listening", "addr", ln.Addr().String()) // the process's ready line names it
	return nil
}

func (a *AdminServer) serve(ln net.Listener, done chan<- struct{}) {
	defer close(done)
	if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		a.logger.Error("admin server stopped", "addr", ln.Addr().String(), "err", err)
	}
}

// Addr is the address the server listens on (useful with ":0"), or nil before Start.
func (a *AdminServer) Addr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.ln == nil {
		return nil
	}
	return a.mu.ln.Addr()
}

// Shutdown stops accepting, waits for in-flight requests (bounded by ctx) and for the
// serving goroutine to return. It does not shut down the Telemetry, which the caller
// owns. Shutdown before Start is a no-op.
func (a *AdminServer) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	done := a.mu.done
	a.mu.Unlock()
	if done == nil {
		return nil
	}
	if err := a.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("observability: admin server shutdown: %w", err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("observability: admin server shutdown: %w", ctx.Err())
	}
}
