package observability

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics of the data a cluster holds: partitions (ObservePartitions, per node), the
// cluster's partition health (ObserveCluster), consumer groups (ObserveGroups, per
// coordinator) and the calls to the metadata store (ObserveRedisCalls). Gauges are read
// at each scrape from what the caller's func reports, so keeping them costs the request
// path nothing; the attribute sets of a partition or group are made the first time it
// is seen and kept, so a scrape allocates for new series only.

// PartitionStats is one partition a node holds; cmd/strait fills it from the node.
type PartitionStats struct {
	Topic     string
	Partition int32
	Leader    bool
	// Offsets: the log start, the high watermark and this replica's log end.
	LogStartOffset, HighWatermark, LogEndOffset int64
	SizeBytes                                   int64
	ISR                                         int // where this node leads
	Followers                                   []FollowerLag
}

// FollowerLag is how many offsets a follower is behind its leader.
type FollowerLag struct {
	Follower int32
	Lag      int64
}

// ClusterStats is the cluster's partition health as a process's routing view has it.
type ClusterStats struct {
	Partitions      int
	UnderReplicated int // fewer replicas in sync than assigned
	Offline         int // no leader
}

// GroupStats is one consumer group as its coordinator has it, with its lag.
type GroupStats struct {
	Group, State string
	Members      int
	Generation   int32
	Lag          []PartitionLag
}

// PartitionLag is a group's committed offset of one partition and its distance to the
// partition's high watermark.
type PartitionLag struct {
	Topic     string
	Partition int32
	Committed int64
	Lag       int64
}

// Label keys of these metrics.
const (
	topicLabel     = "topic"
	partitionLabel = "partition"
	nodeLabel      = "node"
	followerLabel  = "follower"
	groupLabel     = "group"
	stateLabel     = "state"
	commandLabel   = "command"
)

// groupStates are the states a group's state gauge reports, one series each (1 for
// the state it is in), as Prometheus exporters report an enum.
var groupStates = []string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Assigning", "Reconciling"}

// ObservePartitions reports node's partitions at each scrape: strait.partition.*
// offsets, size and ISR size, and strait.partition.follower_lag on the leader,
// labelled with the node's id so the nodes of one process (`strait dev`) stay apart.
func (t *Telemetry) ObservePartitions(node int32, stats func() []PartitionStats) error {
	m := t.Meter(instrumentationName)
	var errs []error
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	logStart := gauge("strait.partition.log_start_offset", "{offset}", "The first offset a partition replica holds.")
	highWatermark := gauge("strait.partition.high_watermark", "{offset}", "The offset up to which a partition is replicated to every in-sync replica (consumers read below it).")
	logEnd := gauge("strait.partition.log_end_offset", "{offset}", "The offset the next record appended to a partition replica takes.")
	size := gauge("strait.partition.size", "By", "Bytes of a partition replica's segment files on disk.")
	isr := gauge("strait.partition.in_sync_replicas", "{replica}", "Replicas in a partition's ISR, reported by its leader.")
	lag := gauge("strait.partition.follower_lag", "{offset}", "Offsets a follower is behind its leader's log end, reported by the leader.")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("observability: create partition metrics: %w", err)
	}
	nodeAttr := attribute.String(nodeLabel, strconv.Itoa(int(node)))
	sets := newAttrSets()
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, p := range stats() {
			key := p.Topic + "\x00" + strconv.Itoa(int(p.Partition))
			at := sets.get(key, func() []attribute.KeyValue {
				return []attribute.KeyValue{nodeAttr, attribute.String(topicLabel, p.Topic), attribute.String(partitionLabel, strconv.Itoa(int(p.Partition)))}
			})
			o.ObserveInt64(logStart, p.LogStartOffset, at)
			o.ObserveInt64(highWatermark, p.HighWatermark, at)
			o.ObserveInt64(logEnd, p.LogEndOffset, at)
			o.ObserveInt64(size, p.SizeBytes, at)
			if !p.Leader {
				continue
			}
			o.ObserveInt64(isr, int64(p.ISR), at)
			for _, f := range p.Followers {
				o.ObserveInt64(lag, f.Lag, sets.get(key+"\x00"+strconv.Itoa(int(f.Follower)), func() []attribute.KeyValue {
					return []attribute.KeyValue{nodeAttr, attribute.String(topicLabel, p.Topic), attribute.String(partitionLabel, strconv.Itoa(int(p.Partition))),
						attribute.String(followerLabel, strconv.Itoa(int(f.Follower)))}
				}))
			}
		}
		return nil
	}, logStart, highWatermark, logEnd, size, isr, lag)
	if err != nil {
		return fmt.Errorf("observability: observe partitions of node %d: %w", node, err)
	}
	return nil
}

// ObserveCluster reports the cluster's partition health at each scrape:
// strait.cluster.partitions, .partitions.under_replicated and .partitions.offline.
// Every proxy reports the whole cluster: aggregate with max, not sum.
func (t *Telemetry) ObserveCluster(stats func() ClusterStats) error {
	m := t.Meter(instrumentationName)
	var errs []error
	gauge := func(name, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit("{partition}"), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	total := gauge("strait.cluster.partitions", "Partitions of the cluster, as this process's routing view has them.")
	under := gauge("strait.cluster.partitions.under_replicated", "Partitions whose ISR is smaller than their replica set.")
	offline := gauge("strait.cluster.partitions.offline", "Partitions with no leader.")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("observability: create cluster metrics: %w", err)
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := stats()
		o.ObserveInt64(total, int64(s.Partitions))
		o.ObserveInt64(under, int64(s.UnderReplicated))
		o.ObserveInt64(offline, int64(s.Offline))
		return nil
	}, total, under, offline)
	if err != nil {
		return fmt.Errorf("observability: observe cluster: %w", err)
	}
	return nil
}

// ObserveGroups reports the consumer groups a coordinator holds at each scrape:
// strait.group.members, .generation, .state (1 for the group's state, 0 for the
// others), and per partition .committed_offset and .lag. stats gets the scrape's
// context: it may ask nodes for high watermarks.
func (t *Telemetry) ObserveGroups(stats func(ctx context.Context) []GroupStats) error {
	m := t.Meter(instrumentationName)
	var errs []error
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	members := gauge("strait.group.members", "{member}", "Members of a consumer group, reported by its coordinator.")
	generation := gauge("strait.group.generation", "{generation}", "A classic group's generation, or a KIP-848 group's epoch.")
	state := gauge("strait.group.state", "{state}", "1 for the state a consumer group is in, 0 for the others.")
	committed := gauge("strait.group.committed_offset", "{offset}", "A consumer group's committed offset of a partition.")
	lag := gauge("strait.group.lag", "{offset}", "Offsets between a partition's high watermark and a consumer group's committed offset.")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("observability: create group metrics: %w", err)
	}
	sets := newAttrSets()
	_, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for _, g := range stats(ctx) {
			at := sets.get(g.Group, func() []attribute.KeyValue { return []attribute.KeyValue{attribute.String(groupLabel, g.Group)} })
			o.ObserveInt64(members, int64(g.Members), at)
			o.ObserveInt64(generation, int64(g.Generation), at)
			for _, st := range groupStates {
				v := int64(0)
				if st == g.State {
					v = 1
				}
				o.ObserveInt64(state, v, sets.get(g.Group+"\x00"+st, func() []attribute.KeyValue {
					return []attribute.KeyValue{attribute.String(groupLabel, g.Group), attribute.String(stateLabel, st)}
				}))
			}
			for _, p := range g.Lag {
				pat := sets.get(g.Group+"\x00"+p.Topic+"\x00"+strconv.Itoa(int(p.Partition)), func() []attribute.KeyValue {
					return []attribute.KeyValue{attribute.String(groupLabel, g.Group), attribute.String(topicLabel, p.Topic), attribute.String(partitionLabel, strconv.Itoa(int(p.Partition)))}
				})
				o.ObserveInt64(committed, p.Committed, pat)
				o.ObserveInt64(lag, p.Lag, pat)
			}
		}
		return nil
	}, members, generation, state, committed, lag)
	if err != nil {
		return fmt.Errorf("observability: observe groups: %w", err)
	}
	return nil
}

// ObserveRedisCalls returns what a Redis client calls after each command (or pipeline):
// it records strait.redis.call.duration and, for failed calls, strait.redis.call.errors,
// by command name. A key that does not exist is an answer, not an error: the caller
// passes err nil for it.
func (t *Telemetry) ObserveRedisCalls() (func(command string, took time.Duration, err error), error) {
	m := t.Meter(instrumentationName)
	duration, err := m.Float64Histogram("strait.redis.call.duration",
		metric.WithDescription("Time a call to the Redis metadata store took, by command."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		return nil, fmt.Errorf("observability: create strait.redis.call.duration: %w", err)
	}
	failed, err := m.Int64Counter("strait.redis.call.errors",
		metric.WithDescription("Calls to the Redis metadata store that failed, by command."),
		metric.WithUnit("{call}"))
	if err != nil {
		return nil, fmt.Errorf("observability: create strait.redis.call.errors: %w", err)
	}
	sets := newAttrSets()
	return func(command string, took time.Duration, err error) {
		at := sets.get(command, func() []attribute.KeyValue { return []attribute.KeyValue{attribute.String(commandLabel, command)} })
		duration.Record(context.Background(), took.Seconds(), at)
		if err != nil {
			failed.Add(context.Background(), 1, at)
		}
	}, nil
}

// attrSets keeps the attribute set of each series, made once.
type attrSets struct {
	mu   sync.Mutex
	sets map[string]metric.MeasurementOption
}

func newAttrSets() *attrSets {
	return &attrSets{sets: make(map[string]metric.MeasurementOption)}
}

// get returns key's set, making it from attrs the first time.
func (a *attrSets) get(key string, attrs func() []attribute.KeyValue) metric.MeasurementOption {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sets[key]
	if !ok {
		s = metric.WithAttributeSet(attribute.NewSet(attrs()...))
		a.sets[key] = s
	}
	return s
}
