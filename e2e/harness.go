package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// DefaultReadyTimeout bounds how long a process may take to become ready.
	DefaultReadyTimeout = 30 * time.Second
	// StopTimeout bounds how long a process may take to exit after SIGTERM.
	StopTimeout = 20 * time.Second
	// logTail is how much of a process log is printed when a test fails.
	logTail = 256 << 10
)

// Spec says how to run one program under test.
type Spec struct {
	// Name is a short label used in log lines and file names: "dev",
	// "node-1", "proxy-2", "redis".
	Name string
	// Path is the executable; Args are its arguments (without argv[0]).
	Path string
	Args []string
	// Env holds extra KEY=VALUE pairs. The environment starts from the
	// test's own without any STRAIT_* variables, so a developer's shell
	// cannot change what a test runs.
	Env []string
	// Dir is the working directory; empty means a fresh temporary one.
	Dir string
	// Ready reports nil once the process serves. It is polled until it
	// succeeds, the process exits, or ReadyTimeout passes. Nil means the
	// process is ready as soon as it has started.
	Ready        func(ctx context.Context) error
	ReadyTimeout time.Duration

	// Addr, AdminAddr and DataDir are reported by the Process methods of
	// the same names; the harness does not interpret them.
	Addr      string
	AdminAddr string
	DataDir   string
}

// Process is a program under test. Its methods are meant to be called from
// the test goroutine: those that fail the test call t.Fatalf.
type Process struct {
	t    testing.TB
	spec Spec
	log  *logBuffer

	mu  sync.Mutex
	cur *run // the current (or last) execution; nil before the first start
}

// run is one execution of a Process.
type run struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its output is drained
	// expected is set when the test asked for the exit (Stop, Kill) or
	// waited for it (Wait); any other exit is reported at cleanup.
	expected atomic.Bool
}

// startProcess starts spec's program, waits until it is ready, and arranges
// for it to be stopped (SIGTERM, expecting exit code 0) when the test ends.
// If the test fails, the process log is printed.
func startProcess(t testing.TB, spec Spec) *Process {
	t.Helper()
	if spec.Name == "" {
		spec.Name = filepath.Base(spec.Path)
	}
	if spec.ReadyTimeout == 0 {
		spec.ReadyTimeout = DefaultReadyTimeout
	}
	if spec.Dir == "" {
		spec.Dir = t.TempDir()
	}
	log, err := newLogBuffer(t, spec.Name)
	if err != nil {
		t.Fatalf("%s: log file: %v", spec.Name, err)
	}
	p := &Process{t: t, spec: spec, log: log}

	// Cleanups run last-in first-out: stop the process, then print its log
	// (so the log includes shutdown), then close the log file.
	t.Cleanup(func() { log.close() })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s", p.logReport())
		}
	})
	t.Cleanup(p.cleanup)

	p.start(t)
	return p
}

// Name returns the process's label.
func (p *Process) Name() string { return p.spec.Name }

// Addr returns the address the process serves its main protocol on (Kafka
// for strait, RESP for redis).
func (p *Process) Addr() string { return p.spec.Addr }

// AdminAddr returns the process's admin HTTP address, if it has one.
func (p *Process) AdminAddr() string { return p.spec.AdminAddr }

// DataDir returns the process's data directory, if it has one.
func (p *Process) DataDir() string { return p.spec.DataDir }

// Log returns everything the process has written to stdout and stderr so
// far, across restarts.
func (p *Process) Log() string { return p.log.String() }

// Running reports whether the process is running.
func (p *Process) Running() bool {
	r := p.current()
	if r == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits up to StopTimeout for the process to exit.
// It fails the test unless the process exits with code 0.
func (p *Process) Stop() {
	p.t.Helper()
	if err := p.StopWith(syscall.SIGTERM, StopTimeout); err != nil {
		p.t.Fatalf("%v", err)
	}
}

// StopWith sends sig and waits up to timeout for the process to exit. It
// returns an error unless the process exits with code 0; after the timeout
// it kills the process.
func (p *Process) StopWith(sig os.Signal, timeout time.Duration) error {
	r := p.current()
	if r == nil || !p.Running() {
		return fmt.Errorf("%s: stop: not running", p.spec.Name)
	}
	r.expected.Store(true)
	if err := r.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: send %v: %w", p.spec.Name, sig, err)
	}
	select {
	case <-r.done:
	case <-time.After(timeout):
		_ = r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("%s: did not exit within %v of %v; killed", p.spec.Name, timeout, sig)
	}
	if code := r.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("%s: after %v: %v (want exit code 0)", p.spec.Name, sig, r.cmd.ProcessState)
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to exit, as a crash would.
func (p *Process) Kill() {
	p.t.Helper()
	r := p.current()
	if r == nil || !p.Running() {
		p.t.Fatalf("%s: kill: not running", p.spec.Name)
	}
	r.expected.Store(true)
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("%s: kill: %v", p.spec.Name, err)
	}
	<-r.done
}

// Wait waits up to timeout for the process to exit on its own and returns
// its exit code (-1 if a signal ended it). ok is false on timeout.
func (p *Process) Wait(timeout time.Duration) (code int, ok bool) {
	r := p.current()
	if r == nil {
		return 0, false
	}
	select {
	case <-r.done:
		r.expected.Store(true)
		return r.cmd.ProcessState.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// Restart stops the process if it runs (SIGTERM, expecting exit code 0),
// then starts it again with the same arguments, ports and data directory
// and waits until it is ready. Use it after Kill to recover from a crash;
// it fails the test if the process had exited without being asked to.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	if r := p.current(); r != nil && !p.Running() && !r.expected.Load() {
		t.Fatalf("restart: %s had exited unexpectedly: %v", p.spec.Name, r.cmd.ProcessState)
	}
	if p.Running() {
		if err := p.StopWith(syscall.SIGTERM, StopTimeout); err != nil {
			t.Fatalf("restart: %v", err)
		}
	}
	p.start(t)
}

// start runs the program once and waits for readiness.
func (p *Process) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Dir = p.spec.Dir
	cmd.Env = append(cleanEnv(), p.spec.Env...)
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	cmd.SysProcAttr = sysProcAttr()
	// A child that inherited our pipes must not hang Wait forever.
	cmd.WaitDelay = 5 * time.Second

	p.log.marker("start: " + commandLine(p.spec.Path, p.spec.Args))
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start: %v", p.spec.Name, err)
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		msg := fmt.Sprintf("exited: %v", cmd.ProcessState)
		if _, exit := err.(*exec.ExitError); err != nil && !exit {
			msg += fmt.Sprintf(" (%v)", err)
		}
		p.log.marker(msg)
		close(r.done)
	}()
	p.mu.Lock()
	p.cur = r
	p.mu.Unlock()

	if p.spec.Ready == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.spec.ReadyTimeout)
	defer cancel()
	if err := pollUntil(ctx, r.done, p.spec.Ready); err != nil {
		t.Fatalf("%s: not ready: %v\n%s", p.spec.Name, err, p.logReport())
	}
}

// cleanup stops the process at the end of the test if it still runs, and
// fails the test if it exited without being asked to (a crash).
func (p *Process) cleanup() {
	r := p.current()
	if r == nil {
		return
	}
	if !p.Running() {
		if !r.expected.Load() {
			p.t.Errorf("%s exited unexpectedly: %v", p.spec.Name, r.cmd.ProcessState)
		}
		return
	}
	if err := p.StopWith(syscall.SIGTERM, StopTimeout); err != nil {
		p.t.Errorf("at cleanup: %v", err)
	}
}

func (p *Process) current() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// logReport formats the tail of the log for a failure message.
func (p *Process) logReport() string {
	s := p.log.String()
	var b strings.Builder
	fmt.Fprintf(&b, "---- %s log", p.spec.Name)
	if f := p.log.path; f != "" {
		fmt.Fprintf(&b, " (%s)", f)
	}
	if len(s) > logTail {
		fmt.Fprintf(&b, ", last %d of %d bytes", logTail, len(s))
		s = s[len(s)-logTail:]
	}
	b.WriteString(" ----\n")
	b.WriteString(s)
	if !strings.HasSuffix(s, "\n") {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "---- end of %s log ----", p.spec.Name)
	return b.String()
}

// cleanEnv returns the environment without STRAIT_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRAIT_") {
			env = append(env, kv)
		}
	}
	return env
}

func commandLine(path string, args []string) string {
	return strings.Join(append([]string{path}, args...), " ")
}

// logBuffer collects a process's output in memory and in a file. It is
// written by os/exec's copying goroutines and read by the test.
type logBuffer struct {
	path string

	mu   sync.Mutex
	buf  bytes.Buffer
	file *os.File
}

// newLogBuffer creates the log file in STRAIT_E2E_LOG_DIR if set (kept after
// the run), otherwise in the test's temporary directory.
func newLogBuffer(t testing.TB, name string) (*logBuffer, error) {
	dir := os.Getenv("STRAIT_E2E_LOG_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, sanitize(t.Name()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, sanitize(name)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &logBuffer{path: f.Name(), file: f}, nil
}

func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	if l.file != nil {
		_, _ = l.file.Write(b) // the in-memory copy is what tests read
	}
	return len(b), nil
}

// marker writes a harness line, so restarts and exits show in the log.
func (l *logBuffer) marker(msg string) {
	fmt.Fprintf(l, "=== harness %s: %s\n", time.Now().Format("15:04:05.000"), msg)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file != nil {
		_ = l.file.Close()
		l.file = nil
	}
}

// sanitize makes a test or process name safe as a file name.
func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
}
