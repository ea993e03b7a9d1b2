package routing

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisServer is a throwaway redis-server for one test: no persistence, a free port
// on 127.0.0.1, its files in a temporary directory, killed when the test ends.
type redisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

// startRedis starts a redis-server, or skips the test when none is installed
// (fails it when CI is set: CI must run the Redis contract).
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed, and CI is set: run scripts/test-deps.sh")
		}
		t.Skip("redis-server is not installed; run scripts/test-deps.sh to run the Redis store tests")
	}
	r := &redisServer{t: t, bin: bin, dir: t.TempDir(), port: freePort(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (r *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }
func (r *redisServer) URL() string  { return "redis://" + r.Addr() }

// Start runs redis-server (again, on the same port) and waits until it answers PING.
func (r *redisServer) Start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", "redis.log")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := r.Do("PING"); err == nil {
			return
		} else if time.Now().After(deadline) {
			log, _ := os.ReadFile(r.dir + "/redis.log")
			r.Stop()
			r.t.Fatalf("redis-server on port %d does not answer PING: %v\n%s", r.port, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills redis-server and waits for it to exit.
func (r *redisServer) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Do sends one inline command and fails unless the reply is a status or integer.
func (r *redisServer) Do(cmd string) error {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+") && !strings.HasPrefix(line, ":") {
		return fmt.Errorf("%s: %s", cmd, strings.TrimSpace(line))
	}
	return nil
}
