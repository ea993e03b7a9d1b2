package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestDevNodeRacks: --node-racks gives each node of `strait dev` its rack, one per node
// in id order, and is refused, naming the flag, when the count does not match --nodes.
func TestDevNodeRacks(t *testing.T) {
	parse := func(args ...string) (devConfig, error) {
		var cfg devConfig
		fs := flag.NewFlagSet("dev", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.flags(fs)
		if err := fs.Parse(args); err != nil {
			return cfg, err
		}
		return cfg, cfg.validate()
	}
	cfg, err := parse("--nodes", "3", "--node-racks", "a,b,c")
	if err != nil {
		t.Fatalf("--nodes 3 --node-racks a,b,c: %v", err)
	}
	if got := []string{cfg.nodeRack(1), cfg.nodeRack(2), cfg.nodeRack(3)}; strings.Join(got, ",") != "a,b,c" {
		t.Errorf("node racks %q; want a, b, c for nodes 1, 2, 3", got)
	}
	if cfg, err := parse("--nodes", "2"); err != nil || cfg.nodeRack(1) != "" || cfg.nodeRack(2) != "" {
		t.Errorf("without --node-racks: err %v, racks %q, %q; want none", err, cfg.nodeRack(1), cfg.nodeRack(2))
	}
	for _, racks := range []string{"a,b", "a,b,c,d", "a,,c"} {
		if _, err := parse("--nodes", "3", "--node-racks", racks); err == nil || !strings.Contains(err.Error(), "--node-racks") {
			t.Errorf("--nodes 3 --node-racks %s: error %v; want one naming --node-racks", racks, err)
		}
	}
}
