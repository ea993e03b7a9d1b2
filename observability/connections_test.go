package observability

import "testing"

// A listener's and the budget's stats are read at each scrape, a series per listener,
// and closed connections by reason.
func TestObserveListenerAndBudget(t *testing.T) {
	tel, _ := newRecordedTelemetry(t, Config{Tier: "dev"})
	proxy := ListenerStats{OpenConnections: 3, HeldBytes: 4096, InFlightRequests: 6, PausedInFlightRequests: 2, PausedInFlightBytes: 3, PausedMemoryBudget: 4,
		ClosedIdle: 1, ClosedReadTimeout: 10, ClosedWriteTimeout: 1, ClosedBadRequest: 5, ClosedMaxConnections: 8}
	node := ListenerStats{OpenConnections: 1}
	if err := tel.ObserveListener("proxy", "proxy", func() ListenerStats { return proxy }); err != nil {
		t.Fatal(err)
	}
	if err := tel.ObserveListener("node", "node-1", func() ListenerStats { return node }); err != nil {
		t.Fatal(err)
	}
	if err := tel.ObserveMemoryBudget(func() MemoryBudgetStats { return MemoryBudgetStats{Limit: 1 << 20, Used: 5000, Waits: 7} }); err != nil {
		t.Fatal(err)
	}
	proxy.OpenConnections = 4 // read at the scrape, not at registration
	families := scrape(t, tel)

	value := func(name string, labels map[string]string) float64 {
		m := find(t, families, name, labels)
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		default:
			return m.GetGauge().GetValue()
		}
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"strait_connections_open", map[string]string{"tier": "proxy", "listener": "proxy"}, 4},
		{"strait_connections_open", map[string]string{"tier": "node", "listener": "node-1"}, 1},
		{"strait_connections_held_bytes", map[string]string{"listener": "proxy"}, 4096},
		{"strait_connections_inflight_requests", map[string]string{"listener": "proxy"}, 6},
		{"strait_connections_read_pauses_total", map[string]string{"listener": "proxy", "reason": "max_inflight_requests"}, 2},
		{"strait_connections_read_pauses_total", map[string]string{"listener": "proxy", "reason": "max_inflight_bytes"}, 3},
		{"strait_connections_read_pauses_total", map[string]string{"listener": "proxy", "reason": "memory_budget"}, 4},
		{"strait_connections_closed_total", map[string]string{"listener": "proxy", "reason": "max_connections"}, 8},
		{"strait_connections_closed_total", map[string]string{"listener": "proxy", "reason": "idle"}, 1},
		{"strait_connections_closed_total", map[string]string{"listener": "proxy", "reason": "request_read_timeout"}, 10},
		{"strait_connections_closed_total", map[string]string{"listener": "proxy", "reason": "write_timeout"}, 1},
		{"strait_connections_closed_total", map[string]string{"listener": "proxy", "reason": "bad_request"}, 5},
		{"strait_memory_budget_limit_bytes", nil, 1 << 20},
		{"strait_memory_budget_used_bytes", nil, 5000},
		{"strait_memory_budget_waits_total", nil, 7},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// A pool's connections are reported per peer, with its dials.
func TestObserveUpstream(t *testing.T) {
	tel, _ := newRecordedTelemetry(t, Config{Tier: "proxy"})
	stats := UpstreamStats{Conns: map[string]int{"10.0.0.1:9093": 2, "10.0.0.2:9093": 1}, Dials: 4, DialErrors: 1}
	if err := tel.ObserveUpstream("proxy", func() UpstreamStats { return stats }); err != nil {
		t.Fatal(err)
	}
	families := scrape(t, tel)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"strait_upstream_connections", map[string]string{"tier": "proxy", "peer": "10.0.0.1:9093"}, 2},
		{"strait_upstream_connections", map[string]string{"tier": "proxy", "peer": "10.0.0.2:9093"}, 1},
	} {
		if got := find(t, families, c.name, c.labels).GetGauge().GetValue(); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := find(t, families, "strait_upstream_dials_total", nil).GetCounter().GetValue(); got != 4 {
		t.Errorf("dials %v, want 4", got)
	}
	if got := find(t, families, "strait_upstream_dial_errors_total", nil).GetCounter().GetValue(); got != 1 {
		t.Errorf("dial errors %v, want 1", got)
	}
}
