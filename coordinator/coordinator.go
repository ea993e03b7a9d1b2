package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.opentelemetry.io/otel/trace"

	"github.com/strait-io/strait/coordinator/classic"
	"github.com/strait-io/strait/coordinator/consumer"
	"github.com/strait-io/strait/coordinator/offsets"
	"github.com/strait-io/strait/routing"
)

// OffsetsTopic is the internal topic that holds groups and committed offsets.
const OffsetsTopic = "__consumer_offsets"

// OffsetsLog is how the coordinator reaches __consumer_offsets.
type OffsetsLog interface {
	// Append writes one record batch to a partition with acks=all and returns once it
	// is acknowledged.
	Append(ctx context.Context, partition int32, batch []byte) error
	// Read returns whole record batches of a partition from offset, up to about
	// maxBytes, and the partition's high watermark.
	Read(ctx context.Context, partition int32, offset int64, maxBytes int32) (batches []byte, highWatermark int64, err error)
}

// Config configures the coordinator.
type Config struct {
	Partitions             int32 // __consumer_offsets partitions (offsets.topic.num.partitions)
	Classic                classic.Config
	Consumer               consumer.Config
	OffsetsRetention       time.Duration // offsets.retention.minutes; default 7 days
	RetentionCheckInterval time.Duration // offsets.retention.check.interval.ms; default 10 minutes
	MaxMetadataBytes       int           // offset.metadata.max.bytes; default 4096
	// Tracer starts the spans no request begins: rebalances a timer starts. Nil when
	// tracing is off, which also skips following rebalances at all.
	Tracer trace.Tracer
}

func (c *Config) validate() error {
	if c.Partitions <= 0 {
		return fmt.Errorf("coordinator: offsets topic partitions %d: must be positive", c.Partitions)
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.RetentionCheckInterval <= 0 {
		c.RetentionCheckInterval = 10 * time.Minute
	}
	if c.MaxMetadataBytes <= 0 {
		c.MaxMetadataBytes = 4096
	}
	// Stored strings carry an int16 length, so longer metadata could not be written.
	c.MaxMetadataBytes = min(c.MaxMetadataBytes, offsets.MaxStringLen)
	if err := c.Consumer.Validate(); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	return nil
}

// Snapshots gives the coordinator the routing metadata: topics for KIP-848
// assignments and offset commits.
type Snapshots interface {
	Snapshot() *routing.Snapshot
}

// Coordinator owns the groups of the __consumer_offsets partitions it has loaded.
type Coordinator struct {
	cfg    Config
	log    OffsetsLog
	view   Snapshots
	logger *slog.Logger
	tracer trace.Tracer // nil: tracing is off

	mu struct {
		sync.Mutex
		shards map[int32]*shard
	}
}

// New returns a coordinator with no partitions loaded.
func New(cfg Config, log OffsetsLog, view Snapshots, logger *slog.Logger) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, log: log, view: view, logger: logger, tracer: cfg.Tracer}
	c.mu.shards = make(map[int32]*shard)
	return c, nil
}

// Partition returns the __consumer_offsets partition that holds group, as Kafka
// computes it, so a group keeps its partition whichever implementation wrote it.
func (c *Coordinator) Partition(group string) int32 {
	return offsets.Partition(group, c.cfg.Partitions)
}

// Partitions is the number of __consumer_offsets partitions groups hash onto.
func (c *Coordinator) Partitions() int32 { return c.cfg.Partitions }

// Load starts coordinating a partition: it replays the partition's records in the
// background and serves its groups once done (COORDINATOR_LOAD_IN_PROGRESS until then).
func (c *Coordinator) Load(partition int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.mu.shards[partition]; ok {
		return
	}
	s := newShard(c, partition)
	c.mu.shards[partition] = s
	go s.run()
}

// Unload stops coordinating a partition (its lease moved); its groups' members will
// find the new coordinator.
func (c *Coordinator) Unload(partition int32) {
	c.mu.Lock()
	s, ok := c.mu.shards[partition]
	delete(c.mu.shards, partition)
	c.mu.Unlock()
	if ok {
		s.close()
	}
}

// Loaded reports whether every loaded partition has finished replaying.
func (c *Coordinator) Loaded() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, s := range c.mu.shards {
		if !s.ready() {
			return fmt.Errorf("__consumer_offsets partition %d is still loading", p)
		}
	}
	return nil
}

// Close stops every shard.
func (c *Coordinator) Close() {
	c.mu.Lock()
	shards := c.mu.shards
	c.mu.shards = make(map[int32]*shard)
	c.mu.Unlock()
	for _, s := range shards {
		s.close()
	}
}

var errNotCoordinator = errors.New("this proxy does not coordinate the group")

// maxGroupIDBytes keeps group ids, and the member ids derived from client ids, within
// what a __consumer_offsets record can store (int16 string lengths).
const maxGroupIDBytes = 4096

// memberShard is shardFor for the membership APIs, which need a non-empty group id.
// OffsetCommit, OffsetFetch, DescribeGroups and DeleteGroups accept "" as Kafka does,
// for old clients.
func (c *Coordinator) memberShard(group string) (*shard, int16) {
	if group == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	return c.shardFor(group)
}

// shardFor returns the loaded shard of group, or the Kafka error code to answer.
func (c *Coordinator) shardFor(group string) (*shard, int16) {
	if len(group) > maxGroupIDBytes {
		return nil, kerr.InvalidGroupID.Code
	}
	c.mu.Lock()
	s, ok := c.mu.shards[c.Partition(group)]
	c.mu.Unlock()
	switch {
	case !ok:
		return nil, kerr.NotCoordinator.Code
	case !s.ready():
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return s, 0
}

// allShards returns the loaded shards in partition order.
func (c *Coordinator) allShards() []*shard {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*shard, 0, len(c.mu.shards))
	for _, s := range c.mu.shards {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].index < out[j].index })
	return out
}
