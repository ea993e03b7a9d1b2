package main

import (
	"context"
	"time"

	"github.com/strait-io/strait/observability"
	"github.com/strait-io/strait/partitionlog/node"
	"github.com/strait-io/strait/proxy"
	"github.com/strait-io/strait/routing"
)

// The metrics of what a process holds, read at each scrape: a node's partitions, the
// cluster's partition health and the groups a proxy coordinates. observability defines
// them; this file fills them from the packages it may not import.

// observePartitions reports a node's partitions.
func observePartitions(tel *observability.Telemetry, id int32, srv *node.Server) error {
	return tel.ObservePartitions(id, func() []observability.PartitionStats {
		stats := srv.PartitionStats()
		out := make([]observability.PartitionStats, len(stats))
		for i, p := range stats {
			out[i] = observability.PartitionStats{
				Topic: p.Topic, Partition: p.Partition, Leader: p.Leader,
				LogStartOffset: p.LogStartOffset, HighWatermark: p.HighWatermark, LogEndOffset: p.LogEndOffset,
				SizeBytes: p.SizeBytes, ISR: p.ISR,
			}
			for _, f := range p.Followers {
				out[i].Followers = append(out[i].Followers, observability.FollowerLag{Follower: f.ID, Lag: f.Lag})
			}
		}
		return out
	})
}

// observeCluster reports the cluster's partition health as view has it.
func observeCluster(tel *observability.Telemetry, view *routing.Cache) error {
	return tel.ObserveCluster(func() observability.ClusterStats {
		return clusterHealth(view.Snapshot())
	})
}

// clusterHealth counts a snapshot's partitions: all, under-replicated (an ISR smaller
// than the replica set) and offline (no leader, or one that is not registered).
func clusterHealth(snap *routing.Snapshot) observability.ClusterStats {
	var s observability.ClusterStats
	for _, t := range snap.Topics {
		for _, p := range t.Partitions {
			s.Partitions++
			if len(p.ISR) < len(p.Replicas) {
				s.UnderReplicated++
			}
			if _, ok := snap.Nodes[p.Leader]; p.Leader < 0 || !ok {
				s.Offline++
			}
		}
	}
	return s
}

// groupScrapeTimeout bounds asking the nodes for high watermarks during a scrape.
const groupScrapeTimeout = 5 * time.Second

// observeGroups reports the groups p coordinates, with their lag against the high
// watermarks the partitions' leaders give.
func observeGroups(tel *observability.Telemetry, p *proxy.Proxy) error {
	return tel.ObserveGroups(func(ctx context.Context) []observability.GroupStats {
		ctx, cancel := context.WithTimeout(ctx, groupScrapeTimeout)
		defer cancel()
		return groupLags(ctx, p)
	})
}

// groupLags describes the groups p coordinates, each committed offset with its lag; a
// partition whose high watermark is unknown is left out of the lag.
func groupLags(ctx context.Context, p *proxy.Proxy) []observability.GroupStats {
	groups := p.GroupStats(ctx)
	wanted := map[string][]int32{}
	seen := map[string]map[int32]bool{}
	for _, g := range groups {
		for topic, parts := range g.Committed {
			for part := range parts {
				if seen[topic] == nil {
					seen[topic] = map[int32]bool{}
				}
				if !seen[topic][part] {
					seen[topic][part] = true
					wanted[topic] = append(wanted[topic], part)
				}
			}
		}
	}
	var hw map[string]map[int32]int64
	if len(wanted) > 0 {
		hw = p.HighWatermarks(ctx, wanted)
	}
	out := make([]observability.GroupStats, 0, len(groups))
	for _, g := range groups {
		gs := observability.GroupStats{Group: g.Group, State: g.State, Members: g.Members, Generation: g.Generation}
		for topic, parts := range g.Committed {
			for part, offset := range parts {
				end, ok := hw[topic][part]
				if !ok || offset < 0 {
					continue
				}
				gs.Lag = append(gs.Lag, observability.PartitionLag{Topic: topic, Partition: part, Committed: offset, Lag: max(end-offset, 0)})
			}
		}
		out = append(out, gs)
	}
	return out
}
