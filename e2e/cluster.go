package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clusterConfig is what StartCluster runs; ClusterOptions change it.
type clusterConfig struct {
	nodes, proxies int
	name           string // --cluster
	args           []string
	nodeArgs       []string
	nodeArgsAt     map[int][]string // by node position, 0-based
	proxyArgs      []string
	proxyArgsAt    map[int][]string // by proxy position, 0-based
	// nodeListener and proxyListener name the security protocol of the Kafka
	// listener; "" is --listen (PLAINTEXT).
	nodeListener, proxyListener string
}

// ClusterOption configures StartCluster.
type ClusterOption func(*clusterConfig)

// ClusterNodes sets the number of `strait node` processes (ids 1..n); the
// default is 1. (StartDev's Nodes sets `strait dev --nodes` instead.)
func ClusterNodes(n int) ClusterOption { return func(c *clusterConfig) { c.nodes = n } }

// Proxies sets the number of `strait proxy` processes; the default is 1.
func Proxies(n int) ClusterOption { return func(c *clusterConfig) { c.proxies = n } }

// ClusterArgs appends extra arguments to every node and proxy command line.
func ClusterArgs(extra ...string) ClusterOption {
	return func(c *clusterConfig) { c.args = append(c.args, extra...) }
}

// NodeArgs appends extra arguments to every `strait node` command line.
func NodeArgs(extra ...string) ClusterOption {
	return func(c *clusterConfig) { c.nodeArgs = append(c.nodeArgs, extra...) }
}

// NodeArgsAt appends extra arguments to the node at position i (0-based: node
// id i+1) only, such as its --rack.
func NodeArgsAt(i int, extra ...string) ClusterOption {
	return func(c *clusterConfig) {
		if c.nodeArgsAt == nil {
			c.nodeArgsAt = map[int][]string{}
		}
		c.nodeArgsAt[i] = append(c.nodeArgsAt[i], extra...)
	}
}

// ProxyArgs appends extra arguments to every `strait proxy` command line.
func ProxyArgs(extra ...string) ClusterOption {
	return func(c *clusterConfig) { c.proxyArgs = append(c.proxyArgs, extra...) }
}

// ClusterListeners makes every node's Kafka listener a --listeners entry of protocol
// node and every proxy's one of protocol proxy (PLAINTEXT, SSL, SASL_PLAINTEXT or
// SASL_SSL), instead of --listen; "" keeps --listen. Pass the TLS and SASL flags
// they need with NodeArgs, ProxyArgs or ClusterArgs.
func ClusterListeners(node, proxy string) ClusterOption {
	return func(c *clusterConfig) { c.nodeListener, c.proxyListener = node, proxy }
}

// listenArgs is how a process is told to listen on addr with protocol ("" for --listen).
func listenArgs(protocol, addr string) []string {
	if protocol == "" {
		return []string{"--listen", addr}
	}
	return []string{"--listeners", protocol + "://" + addr}
}

// ClusterName sets --cluster; the default is "strait-e2e".
func ClusterName(name string) ClusterOption { return func(c *clusterConfig) { c.name = name } }

// ProxyArgsAt appends extra arguments to the proxy at position i (0-based) only.
func ProxyArgsAt(i int, extra ...string) ClusterOption {
	return func(c *clusterConfig) {
		if c.proxyArgsAt == nil {
			c.proxyArgsAt = map[int][]string{}
		}
		c.proxyArgsAt[i] = append(c.proxyArgsAt[i], extra...)
	}
}

// Cluster is Strait as it is deployed: a redis-server holding the routing
// metadata, `strait node` processes holding the partitions, and `strait
// proxy` processes in front of them. Every process is a *Process: Kill,
// Restart (same arguments, ports and data directory) and Stop work on each.
type Cluster struct {
	// Redis is the redis-server, without persistence: restarting it
	// (Kill, then Restart) brings it back empty on the same port.
	Redis    *Process
	RedisURL string
	Name     string // --cluster, which scopes the routing keys in Redis
	Nodes    []*Process
	Proxies  []*Process
}

// StartCluster starts a redis-server on a free port, then the nodes (each
// with its own data directory and free ports), then the proxies, and waits
// until each answers PING or /readyz. A proxy is ready once a node is
// registered, so nodes go first. Every process is stopped when the test ends
// and its log is printed if the test failed.
//
// The test is skipped when redis-server is not installed, unless CI is set.
func StartCluster(t testing.TB, opts ...ClusterOption) *Cluster {
	t.Helper()
	cfg := clusterConfig{nodes: 1, proxies: 1, name: "strait-e2e"}
	for _, o := range opts {
		o(&cfg)
	}
	redisBin := requireRedis(t)
	bin := StraitBin(t)

	c := &Cluster{Name: cfg.name}
	c.Redis = StartRedis(t, redisBin)
	c.RedisURL = "redis://" + c.Redis.Addr()

	for id := 1; id <= cfg.nodes; id++ {
		addr, admin, dir := FreeAddr(t), FreeAddr(t), t.TempDir()
		args := append([]string{"node", "--id", strconv.Itoa(id)}, listenArgs(cfg.nodeListener, addr)...)
		args = append(args,
			"--advertise", addr,
			"--data-dir", dir,
			"--redis", c.RedisURL,
			"--admin", admin,
			"--cluster", cfg.name,
		)
		args = append(append(append(args, cfg.args...), cfg.nodeArgs...), cfg.nodeArgsAt[id-1]...)
		c.Nodes = append(c.Nodes, startProcess(t, Spec{
			Name:      "node-" + strconv.Itoa(id),
			Path:      bin,
			Args:      args,
			Ready:     HTTPReady("http://" + admin + "/readyz"),
			Addr:      addr,
			AdminAddr: admin,
			DataDir:   dir,
		}))
	}
	for i := 1; i <= cfg.proxies; i++ {
		addr, admin := FreeAddr(t), FreeAddr(t)
		args := append([]string{"proxy"}, listenArgs(cfg.proxyListener, addr)...)
		args = append(args,
			"--advertise", addr,
			"--redis", c.RedisURL,
			"--admin", admin,
			"--cluster", cfg.name,
		)
		args = append(append(append(args, cfg.args...), cfg.proxyArgs...), cfg.proxyArgsAt[i-1]...)
		c.Proxies = append(c.Proxies, startProcess(t, Spec{
			Name:      "proxy-" + strconv.Itoa(i),
			Path:      bin,
			Args:      args,
			Ready:     HTTPReady("http://" + admin + "/readyz"),
			Addr:      addr,
			AdminAddr: admin,
		}))
	}
	return c
}

// ProxyAddrs returns the Kafka addresses of the proxies.
func (c *Cluster) ProxyAddrs() []string {
	addrs := make([]string, len(c.Proxies))
	for i, p := range c.Proxies {
		addrs[i] = p.Addr()
	}
	return addrs
}

// Straits returns the nodes and then the proxies: every process with an
// admin endpoint.
func (c *Cluster) Straits() []*Process {
	return append(append([]*Process(nil), c.Nodes...), c.Proxies...)
}

// Client returns a franz-go client seeded with proxy i only, closed when
// the test ends; opts come after the seed.
func (c *Cluster) Client(t testing.TB, proxy int, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return c.Proxies[proxy].Client(t, opts...)
}

// Admin returns a kadm client over a new Client(t, proxy).
func (c *Cluster) Admin(t testing.TB, proxy int, opts ...kgo.Opt) *kadm.Client {
	t.Helper()
	return c.Proxies[proxy].Admin(t, opts...)
}

// requireRedis returns the path of redis-server, skipping the test when it
// is not installed (failing it when CI is set), as requireTool does.
func requireRedis(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("redis-server is not installed and CI is set: run scripts/test-deps.sh")
	}
	t.Skipf("redis-server is not installed (run scripts/test-deps.sh); skipping")
	return ""
}

// StartRedis starts redis-server bin on a free loopback port without
// persistence (no RDB snapshots, no AOF), so a restart brings it back
// empty, and waits until it answers PING.
func StartRedis(t testing.TB, bin string) *Process {
	t.Helper()
	addr, dir := FreeAddr(t), t.TempDir()
	_, port, _ := net.SplitHostPort(addr)
	return startProcess(t, Spec{
		Name: "redis",
		Path: bin,
		Args: []string{
			"--port", port,
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
		},
		Ready:        RedisReady(addr),
		ReadyTimeout: 10 * time.Second,
		Addr:         addr,
		DataDir:      dir,
	})
}

// RedisReady returns a readiness check that succeeds once addr accepts a
// connection and answers PING with PONG (RESP, written by hand so the
// check depends on nothing Strait uses).
func RedisReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n"); err != nil {
			return err
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return fmt.Errorf("PING: %w", err)
		}
		if strings.TrimSpace(line) != "+PONG" {
			return fmt.Errorf("PING: got %q", strings.TrimSpace(line))
		}
		return nil
	}
}

// Readyz returns the status code and (the start of) the body of p's
// /readyz.
func Readyz(ctx context.Context, p *Process) (int, string, error) {
	url := "http://" + p.AdminAddr() + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	client := &http.Client{Timeout: 8 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(body), nil
}
