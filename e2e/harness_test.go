package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Tests of the harness itself; they need neither the strait binary nor any
// external tool beyond go and sh.

func TestHarnessFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("FreeAddr() = %q (%v), want 127.0.0.1:<port>", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen on %s: %v", addr, err)
	}
	ln.Close()
}

func TestHarnessHTTPReady(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || calls.Add(1) < 3 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pollUntil(ctx, nil, HTTPReady(srv.URL+"/readyz")); err != nil {
		t.Fatalf("pollUntil: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("ready after %d calls, want 3", n)
	}
}

func TestHarnessPollUntilGivesUp(t *testing.T) {
	never := HTTPReady("http://" + FreeAddr(t) + "/readyz") // nothing listens

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := pollUntil(ctx, nil, never)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") || !strings.Contains(err.Error(), "last check") {
		t.Fatalf("on timeout: got %v, want a deadline error with the last check", err)
	}

	exited := make(chan struct{})
	close(exited)
	err = pollUntil(context.Background(), exited, never)
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("after exit: got %v, want an error saying the process exited", err)
	}
}

func TestHarnessModuleRoot(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(gomod), "module github.com/strait-io/strait\n") {
		t.Fatalf("%s/go.mod is not Strait's", root)
	}
}

func TestHarnessBuildGo(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/hello\n\ngo 1.22\n")
	write("main.go", "package main\n\nfunc main() { println(\"hello\") }\n")
	out := filepath.Join(t.TempDir(), "hello")
	if err := buildGo(dir, ".", out); err != nil {
		t.Fatal(err)
	}
	if got := runTool(t, "", out); got != "" { // println writes to stderr
		t.Fatalf("stdout = %q", got)
	}

	write("main.go", "package main\n\nfunc main() { undefined() }\n")
	err := buildGo(dir, ".", out)
	if err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Fatalf("broken build: got %v, want the compiler's message", err)
	}
}

// TestHarnessLifecycle runs the process lifecycle (start, Stop with exit
// code check, Restart, Kill, log across restarts) on a shell script.
func TestHarnessLifecycle(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	// Exits 0 on SIGTERM, 3 on SIGINT.
	// Output is computed so that the command line (logged by the harness)
	// does not contain it.
	script := `trap 'echo "$((1+1))bye"; exit 0' TERM; trap 'exit 3' INT; echo "$((6*7))up"; while :; do sleep 0.02; done`
	p := startProcess(t, Spec{Name: "sh", Path: sh, Args: []string{"-c", script}})
	Eventually(t, 5*time.Second, logContains(p, "42up"))

	p.Stop()
	if p.Running() || !strings.Contains(p.Log(), "2bye") {
		t.Fatalf("after Stop: running=%v log:\n%s", p.Running(), p.Log())
	}

	p.Restart(t)
	Eventually(t, 5*time.Second, func(context.Context) error {
		if strings.Count(p.Log(), "42up") < 2 {
			return errString("second start not logged")
		}
		return nil
	})
	p.Kill()
	if code, ok := p.Wait(time.Second); !ok || code != -1 {
		t.Fatalf("after Kill: code=%d exited=%v, want -1 (signal)", code, ok)
	}

	p.Restart(t)
	Eventually(t, 5*time.Second, func(context.Context) error {
		if strings.Count(p.Log(), "42up") < 3 {
			return errString("third start not logged")
		}
		return nil
	})
	if err := p.StopWith(syscall.SIGINT, StopTimeout); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("StopWith(SIGINT) = %v, want an error naming exit status 3", err)
	}
	if n := strings.Count(p.Log(), "=== harness"); n != 6 { // 3 starts, 3 exits
		t.Fatalf("log has %d harness markers, want 6:\n%s", n, p.Log())
	}
}

// TestHarnessReportsCrash checks that a process that exits on its own,
// unasked, fails the test at cleanup.
func TestHarnessReportsCrash(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	msg := expectFatal(t, func(tb testing.TB) {
		p := startProcess(tb, Spec{Name: "crash", Path: sh, Args: []string{"-c", "exit 2"}})
		<-p.current().done
	})
	if !strings.Contains(msg, "exited unexpectedly: exit status 2") {
		t.Fatalf("cleanup reported %q, want an unexpected exit", msg)
	}
}

func logContains(p *Process, s string) func(context.Context) error {
	return func(context.Context) error {
		if !strings.Contains(p.Log(), s) {
			return errString("log lacks " + s)
		}
		return nil
	}
}

type errString string

func (e errString) Error() string { return string(e) }
