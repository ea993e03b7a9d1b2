package e2e

import (
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// devConfig is what StartDev runs; DevOptions change it.
type devConfig struct {
	nodes   int
	dataDir string
	args    []string
	env     []string
	name    string
}

// DevOption configures StartDev.
type DevOption func(*devConfig)

// Nodes sets the number of partition-log nodes (--nodes); the default is 1.
func Nodes(n int) DevOption { return func(c *devConfig) { c.nodes = n } }

// DataDir sets the data directory (--data-dir); the default is a fresh
// t.TempDir(). Pass the DataDir of a stopped process to start on its data.
func DataDir(dir string) DevOption { return func(c *devConfig) { c.dataDir = dir } }

// Args appends extra command-line arguments after the ones StartDev sets.
func Args(extra ...string) DevOption {
	return func(c *devConfig) { c.args = append(c.args, extra...) }
}

// Env adds KEY=VALUE pairs to the process environment (STRAIT_* from the
// test's own environment are never passed on).
func Env(kv ...string) DevOption {
	return func(c *devConfig) { c.env = append(c.env, kv...) }
}

// Name labels the process in logs; the default is "dev".
func Name(name string) DevOption { return func(c *devConfig) { c.name = name } }

// StartDev starts `strait dev` on free loopback ports and waits until its
// /readyz answers 200. The process is stopped with SIGTERM when the test
// ends, and its log is printed if the test failed.
func StartDev(t testing.TB, opts ...DevOption) *Process {
	t.Helper()
	cfg := devConfig{nodes: 1, name: "dev"}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.dataDir == "" {
		cfg.dataDir = t.TempDir()
	}
	addr, admin := FreeAddr(t), FreeAddr(t)
	args := []string{"dev",
		"--listen", addr,
		"--admin", admin,
		"--data-dir", cfg.dataDir,
		"--nodes", strconv.Itoa(cfg.nodes),
	}
	return startProcess(t, Spec{
		Name:      cfg.name,
		Path:      StraitBin(t),
		Args:      append(args, cfg.args...),
		Env:       cfg.env,
		Ready:     HTTPReady("http://" + admin + "/readyz"),
		Addr:      addr,
		AdminAddr: admin,
		DataDir:   cfg.dataDir,
	})
}

// Client returns a franz-go client seeded with the process's Kafka address,
// closed when the test ends (closing it earlier is fine: kgo's Close may be
// called twice). opts come after the seed and can override it.
func (p *Process) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(p.Addr())}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("kgo client for %s: %v", p.Name(), err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client over a new Client(t, opts...).
func (p *Process) Admin(t testing.TB, opts ...kgo.Opt) *kadm.Client {
	t.Helper()
	return kadm.NewClient(p.Client(t, opts...))
}
