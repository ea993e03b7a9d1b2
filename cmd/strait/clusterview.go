package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-io/strait/observability"
	"github.com/strait-io/strait/routing"
)

// /v1/cluster: the cluster as a console or a script wants it, the same on every admin
// server. Placement, leaders, ISR and liveness come from the routing Store (a fresh
// read, since liveness is in lease expiries a cached view does not follow); offsets
// and groups from the cluster itself, asked as a Kafka client would ask it (kadm)
// through a proxy: this process's own, or for a node any live proxy.

// clusterDoc is the /v1/cluster document.
type clusterDoc struct {
	ClusterID       string      `json:"cluster_id"`
	MetadataVersion int64       `json:"metadata_version"`
	Nodes           []memberDoc `json:"nodes"`
	Proxies         []memberDoc `json:"proxies"`
	Topics          []topicDoc  `json:"topics"`
	Groups          []groupDoc  `json:"groups"`
	Health          healthDoc   `json:"health"`
	Errors          []string    `json:"errors,omitempty"` // what could not be read, such as offsets with no live proxy
}

// memberDoc is a node or a proxy.
type memberDoc struct {
	ID   int32  `json:"id"`
	Addr string `json:"addr"`
	Rack string `json:"rack,omitempty"`
	Live bool   `json:"live"`
}

type topicDoc struct {
	Name       string         `json:"name"`
	ID         string         `json:"id"`
	Partitions []partitionDoc `json:"partitions"`
}

type partitionDoc struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"` // a node id; -1 for none
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	// Offsets as the leader answers ListOffsets; -1 when it did not.
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
}

type groupDoc struct {
	Group        string   `json:"group"`
	State        string   `json:"state"`
	ProtocolType string   `json:"protocol_type"`
	Protocol     string   `json:"protocol,omitempty"`
	Coordinator  int32    `json:"coordinator"` // the proxy's broker id
	Members      int      `json:"members"`
	Lag          []lagDoc `json:"lag"`
	TotalLag     int64    `json:"total_lag"`
}

type lagDoc struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	Committed     int64  `json:"committed"` // -1: none
	HighWatermark int64  `json:"high_watermark"`
	Lag           int64  `json:"lag"` // -1: unknown
}

type healthDoc struct {
	Partitions      int `json:"partitions"`
	UnderReplicated int `json:"under_replicated"`
	Offline         int `json:"offline"`
}

// clusterView builds the document.
type clusterView struct {
	store routing.Store
	// proxies returns the Kafka addresses to ask for offsets and groups.
	proxies func(snap *routing.Snapshot) []string
}

// ownProxy asks the process's own proxy, at its advertised address.
func ownProxy(addr string) func(*routing.Snapshot) []string {
	return func(*routing.Snapshot) []string { return []string{addr} }
}

// liveProxies asks any live proxy of the cluster (a node has none of its own).
func liveProxies(snap *routing.Snapshot) []string {
	var addrs []string
	for _, p := range routing.LiveProxies(snap, time.Now()) {
		addrs = append(addrs, p.Addr)
	}
	return addrs
}

// serveClusterView adds /v1/cluster to admin.
func serveClusterView(admin *observability.AdminServer, v clusterView) {
	admin.HandleJSON("/v1/cluster", func(ctx context.Context) (any, error) { return v.build(ctx) })
}

func (v clusterView) build(ctx context.Context) (*clusterDoc, error) {
	snap, err := v.store.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the routing store: %w", err)
	}
	doc := placement(snap)
	seeds := v.proxies(snap)
	if len(seeds) == 0 {
		doc.Errors = append(doc.Errors, "no live proxy to ask for offsets and groups")
		return doc, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("strait-admin"))
	if err != nil {
		return nil, fmt.Errorf("client of proxies %v: %w", seeds, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := addOffsets(ctx, adm, doc); err != nil {
		doc.Errors = append(doc.Errors, err.Error())
	}
	if err := addGroups(ctx, adm, doc); err != nil {
		doc.Errors = append(doc.Errors, err.Error())
	}
	return doc, nil
}

// placement is what the routing Store says: members, topics, leaders, ISR, health.
func placement(snap *routing.Snapshot) *clusterDoc {
	doc := &clusterDoc{ClusterID: snap.ClusterID, MetadataVersion: snap.Version, Nodes: []memberDoc{}, Proxies: []memberDoc{}, Topics: []topicDoc{}, Groups: []groupDoc{}}
	live := routing.LiveNodes(snap, time.Now())
	for _, id := range slices.Sorted(maps.Keys(snap.Nodes)) {
		n := snap.Nodes[id]
		doc.Nodes = append(doc.Nodes, memberDoc{ID: id, Addr: n.Addr, Rack: n.Rack, Live: live(id)})
	}
	liveProxy := map[int32]bool{}
	for _, p := range routing.LiveProxies(snap, time.Now()) {
		liveProxy[p.ID] = true
	}
	for _, id := range slices.Sorted(maps.Keys(snap.Proxies)) {
		p := snap.Proxies[id]
		doc.Proxies = append(doc.Proxies, memberDoc{ID: id, Addr: p.Addr, Rack: p.Rack, Live: liveProxy[id]})
	}
	for _, name := range snap.TopicNames() {
		t := snap.Topics[name]
		td := topicDoc{Name: name, ID: t.ID.String()}
		for _, p := range t.Partitions {
			td.Partitions = append(td.Partitions, partitionDoc{
				Partition: p.Index, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR),
				LogStartOffset: -1, HighWatermark: -1,
			})
		}
		slices.SortFunc(td.Partitions, func(a, b partitionDoc) int { return cmp.Compare(a.Partition, b.Partition) })
		doc.Topics = append(doc.Topics, td)
	}
	h := clusterHealth(snap)
	doc.Health = healthDoc{Partitions: h.Partitions, UnderReplicated: h.UnderReplicated, Offline: h.Offline}
	return doc
}

// addOffsets fills each partition's log start and high watermark.
func addOffsets(ctx context.Context, adm *kadm.Client, doc *clusterDoc) error {
	if len(doc.Topics) == 0 {
		return nil
	}
	names := make([]string, len(doc.Topics))
	for i, t := range doc.Topics {
		names[i] = t.Name
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	for i := range doc.Topics {
		t := &doc.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if o, ok := starts.Lookup(t.Name, p.Partition); ok && o.Err == nil {
				p.LogStartOffset = o.Offset
			}
			if o, ok := ends.Lookup(t.Name, p.Partition); ok && o.Err == nil {
				p.HighWatermark = o.Offset
			}
		}
	}
	return nil
}

// addGroups lists every group with its members and lag.
func addGroups(ctx context.Context, adm *kadm.Client, doc *clusterDoc) error {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	if len(listed) == 0 {
		return nil
	}
	lags, err := adm.Lag(ctx, listed.Groups()...)
	if err != nil {
		return fmt.Errorf("describe groups and their lag: %w", err)
	}
	var errs []error
	for _, l := range lags.Sorted() {
		if err := l.Error(); err != nil {
			errs = append(errs, fmt.Errorf("group %s: %w", l.Group, err))
		}
		g := groupDoc{Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
			Coordinator: l.Coordinator.NodeID, Members: len(l.Members), Lag: []lagDoc{}}
		for _, m := range l.Lag.Sorted() {
			ld := lagDoc{Topic: m.Topic, Partition: m.Partition, Committed: m.Commit.At, HighWatermark: m.End.Offset, Lag: m.Lag}
			if m.Lag > 0 {
				g.TotalLag += m.Lag
			}
			g.Lag = append(g.Lag, ld)
		}
		doc.Groups = append(doc.Groups, g)
	}
	return errors.Join(errs...)
}
