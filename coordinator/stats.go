package coordinator

import (
	"context"
	"sort"
)

// GroupStats describes one group this coordinator holds, for metrics.
type GroupStats struct {
	Group        string
	State        string // Kafka's state name: Stable, PreparingRebalance, Empty, ...
	ProtocolType string // "consumer" for consumer groups; "" for offsets alone
	Members      int
	// Generation is a classic group's generation or a KIP-848 group's epoch.
	Generation int32
	// Committed is the group's committed offsets, by topic and partition.
	Committed map[string]map[int32]int64
}

// GroupStats describes every group of every loaded partition: classic and KIP-848
// groups, and groups that have only committed offsets. Each shard answers on its own
// goroutine, as for any request; a shard that cannot (closing, or ctx ended) is left
// out.
func (c *Coordinator) GroupStats(ctx context.Context) []GroupStats {
	var out []GroupStats
	for _, s := range c.allShards() {
		if !s.ready() {
			continue
		}
		got, err := do(ctx, s, func(reply func([]GroupStats)) { reply(s.groupStats()) })
		if err == nil {
			out = append(out, got...)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// groupStats runs on the shard's goroutine.
func (s *shard) groupStats() []GroupStats {
	var out []GroupStats
	seen := map[string]bool{}
	for id, g := range s.classic {
		seen[id] = true
		out = append(out, GroupStats{Group: id, State: g.State(), ProtocolType: g.ProtocolType(),
			Members: len(g.Describe().Members), Generation: g.Generation(), Committed: s.committed(id)})
	}
	for id, g := range s.consumer {
		seen[id] = true
		out = append(out, GroupStats{Group: id, State: g.State(), ProtocolType: "consumer",
			Members: len(g.Describe(s.topics()).Members), Generation: g.GroupEpoch(), Committed: s.committed(id)})
	}
	for _, id := range s.table.Groups() {
		if !seen[id] {
			out = append(out, GroupStats{Group: id, State: "Empty", Committed: s.committed(id)})
		}
	}
	return out
}

// committed copies a group's committed offsets.
func (s *shard) committed(group string) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for topic, parts := range s.table.Group(group) {
		out[topic] = make(map[int32]int64, len(parts))
		for p, c := range parts {
			out[topic][p] = c.Offset
		}
	}
	return out
}
