package routing

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// Errors the Controller returns for requests it refuses, wrapped with a message that
// says what is wrong; proxies map them to Kafka error codes.
var (
	ErrInvalidTopic             = errors.New("invalid topic")
	ErrInvalidPartitions        = errors.New("invalid partition count")
	ErrInvalidReplicationFactor = errors.New("invalid replication factor")
	ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")
	ErrInvalidConfig            = errors.New("invalid config")
	ErrNoNodes                  = errors.New("no partition-log nodes are registered")
	// ErrPolicyViolation refuses a change that would pass a configured limit, such as
	// the partitions a node or the cluster may hold.
	ErrPolicyViolation = errors.New("refused by cluster policy")
)

// ControllerConfig holds cluster-wide defaults for new topics.
type ControllerConfig struct {
	DefaultPartitions        int32 // num.partitions; default 1
	DefaultReplicationFactor int16 // default.replication.factor; default 1
	// MaxReplicationFactor caps the replication factor of new topics and partitions;
	// 0 (the default) sets no cap beyond the number of registered nodes.
	MaxReplicationFactor int16
	// MaxClusterPartitions caps the partition replicas of all topics together (KIP-578's
	// max.partitions, counting every replica); 0 sets no cap beyond each node's own
	// (Node.MaxPartitions).
	MaxClusterPartitions int
	// Now is the clock by which node leases are judged; default time.Now.
	Now func() time.Time
}

func (c *ControllerConfig) validate() {
	if c.DefaultPartitions <= 0 {
		c.DefaultPartitions = 1
	}
	if c.DefaultReplicationFactor <= 0 {
		c.DefaultReplicationFactor = 1
	}
	if c.MaxReplicationFactor < 0 {
		c.MaxReplicationFactor = 0
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// checkReplicationFactor applies MaxReplicationFactor, if set.
func (c *ControllerConfig) checkReplicationFactor(rf int) error {
	if c.MaxReplicationFactor > 0 && rf > int(c.MaxReplicationFactor) {
		return fmt.Errorf("%w: %d is above the maximum of %d set for this cluster", ErrInvalidReplicationFactor, rf, c.MaxReplicationFactor)
	}
	return nil
}

// Controller makes the metadata changes that need cluster-wide decisions: creating and
// deleting topics, placing their partitions on nodes, electing partition leaders and
// judging ISR changes (partition_control.go, by the rules of election.go).
type Controller struct {
	store  Store
	cfg    ControllerConfig
	logger *slog.Logger
}

// NewController returns a controller writing to store.
func NewController(store Store, cfg ControllerConfig, logger *slog.Logger) *Controller {
	cfg.validate()
	return &Controller{store: store, cfg: cfg, logger: logger}
}

// TopicSpec is a request to create a topic. Zero or negative counts take the defaults.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
	Assignment        [][]int32 // optional explicit replicas per partition
}

// Defaults returns the controller's default partition count and replication factor.
func (c *Controller) Defaults() (partitions int32, replicationFactor int16) {
	return c.cfg.DefaultPartitions, c.cfg.DefaultReplicationFactor
}

// PlanTopic validates spec against the current metadata and returns the topic it
// would create, without creating it (CreateTopics with ValidateOnly).
func (c *Controller) PlanTopic(ctx context.Context, spec TopicSpec) (Topic, error) {
	snap, err := c.store.Snapshot(ctx)
	if err != nil {
		return Topic{}, err
	}
	if err := ValidateTopicName(spec.Name); err != nil {
		return Topic{}, fmt.Errorf("%w: %w", ErrInvalidTopic, err)
	}
	if _, ok := snap.Topic(spec.Name); ok {
		return Topic{}, fmt.Errorf("topic %q: %w", spec.Name, ErrTopicExists)
	}
	for _, name := range snap.TopicNames() {
		if collisionKey(name) == collisionKey(spec.Name) {
			return Topic{}, fmt.Errorf("%w: topic %q collides with existing topic %q ('.' and '_' are treated alike)", ErrInvalidTopic, spec.Name, name)
		}
	}
	if err := ValidateTopicConfigs(spec.Configs); err != nil {
		return Topic{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	assignment, err := c.assign(snap, spec)
	if err != nil {
		return Topic{}, err
	}
	if err := c.checkCapacity(snap, assignment); err != nil {
		return Topic{}, err
	}
	t := Topic{Name: spec.Name, ID: NewTopicID(), Configs: spec.Configs}
	for i, replicas := range assignment {
		t.Partitions = append(t.Partitions, newPartition(int32(i), replicas))
	}
	return t, nil
}

// CreateTopic creates a topic as PlanTopic plans it.
func (c *Controller) CreateTopic(ctx context.Context, spec TopicSpec) (Topic, error) {
	t, err := c.PlanTopic(ctx, spec)
	if err != nil {
		return Topic{}, err
	}
	if err := c.store.CreateTopic(ctx, t); err != nil {
		return Topic{}, err
	}
	c.logger.Info("created topic", "topic", t.Name, "partitions", len(t.Partitions), "replication_factor", len(t.Partitions[0].Replicas))
	return t, nil
}

// DeleteTopic deletes a topic; its nodes remove the data when they see the change.
func (c *Controller) DeleteTopic(ctx context.Context, name string) error {
	if IsInternalTopic(name) {
		return fmt.Errorf("%w: %q is internal to Strait and cannot be deleted", ErrInvalidTopic, name)
	}
	if err := c.store.DeleteTopic(ctx, name); err != nil {
		return err
	}
	c.logger.Info("deleted topic", "topic", name)
	return nil
}

// CreatePartitions grows a topic to count partitions. assignment, if given, places the
// new partitions only. validateOnly checks without changing anything.
func (c *Controller) CreatePartitions(ctx context.Context, topic string, count int32, assignment [][]int32, validateOnly bool) error {
	snap, err := c.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	t, ok := snap.Topic(topic)
	if !ok {
		return fmt.Errorf("topic %q: %w", topic, ErrUnknownTopic)
	}
	have := int32(len(t.Partitions))
	if count <= have {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count %d must be larger", ErrInvalidPartitions, topic, have, count)
	}
	rf := int16(len(t.Partitions[0].Replicas))
	placed, err := c.assign(snap, TopicSpec{Name: topic, Partitions: count, ReplicationFactor: rf})
	if err != nil {
		return err
	}
	placed = placed[have:]
	if assignment != nil {
		if int32(len(assignment)) != count-have {
			return fmt.Errorf("%w: %d assignments for %d new partitions", ErrInvalidReplicaAssignment, len(assignment), count-have)
		}
		if err := c.checkAssignment(snap, assignment); err != nil {
			return err
		}
		placed = assignment
	}
	if err := c.checkCapacity(snap, placed); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	parts := make([]Partition, len(placed))
	for i, replicas := range placed {
		parts[i] = newPartition(have+int32(i), replicas)
	}
	return c.store.AddPartitions(ctx, topic, int(have), parts)
}

// assign returns the replicas of every partition: the explicit assignment if given,
// else Kafka's round-robin placement starting at a position derived from the name.
func (c *Controller) assign(snap *Snapshot, spec TopicSpec) ([][]int32, error) {
	if spec.Assignment != nil {
		if err := c.checkAssignment(snap, spec.Assignment); err != nil {
			return nil, err
		}
		return spec.Assignment, nil
	}
	partitions, rf := spec.Partitions, spec.ReplicationFactor
	if partitions <= 0 {
		partitions = c.cfg.DefaultPartitions
	}
	if rf <= 0 {
		rf = c.cfg.DefaultReplicationFactor
	}
	nodes := snap.NodeIDs()
	switch {
	case len(nodes) == 0:
		return nil, ErrNoNodes
	case partitions > 1<<20:
		return nil, fmt.Errorf("%w: %d partitions is more than Strait allows (%d)", ErrInvalidPartitions, partitions, 1<<20)
	case int(rf) > len(nodes):
		return nil, fmt.Errorf("%w: %d is larger than the %d registered nodes (replicas of a partition need distinct nodes)", ErrInvalidReplicationFactor, rf, len(nodes))
	}
	if err := c.cfg.checkReplicationFactor(int(rf)); err != nil {
		return nil, err
	}
	return placeRoundRobin(nodes, spec.Name, partitions, rf), nil
}

// checkCapacity refuses to place replicas beyond the partitions a node can hold
// (Node.MaxPartitions) or the cluster may hold (MaxClusterPartitions), naming the
// setting: a node that runs out of file descriptors drops every partition it holds.
func (c *Controller) checkCapacity(snap *Snapshot, placed [][]int32) error {
	held := map[int32]int{}
	total := 0
	for _, t := range snap.Topics {
		for _, p := range t.Partitions {
			for _, n := range p.Replicas {
				held[n]++
			}
			total += len(p.Replicas)
		}
	}
	adding := map[int32]int{}
	for _, replicas := range placed {
		for _, n := range replicas {
			adding[n]++
		}
		total += len(replicas)
	}
	if limit := c.cfg.MaxClusterPartitions; limit > 0 && total > limit {
		return fmt.Errorf("%w: the cluster would hold %d partition replicas; its limit is %d (--max-cluster-partitions, Kafka's max.partitions)",
			ErrPolicyViolation, total, limit)
	}
	for _, id := range slices.Sorted(maps.Keys(adding)) {
		limit := snap.Nodes[id].MaxPartitions
		if limit > 0 && held[id]+adding[id] > limit {
			return fmt.Errorf("%w: node %d would hold %d partition replicas; it can hold %d (--max-node-partitions, Kafka's max.broker.partitions, sized from its file descriptor limit by default)",
				ErrPolicyViolation, id, held[id]+adding[id], limit)
		}
	}
	return nil
}

// placeRoundRobin spreads leaders evenly over nodes, and places each partition's
// followers on the next nodes in order, as Kafka does without racks. The replicas of
// a partition are distinct nodes as long as rf <= len(nodes), which assign checks.
func placeRoundRobin(nodes []int32, topic string, partitions int32, rf int16) [][]int32 {
	h := fnv.New32a()
	h.Write([]byte(topic))
	start := int(h.Sum32() % uint32(len(nodes)))
	out := make([][]int32, partitions)
	for p := range out {
		replicas := make([]int32, rf)
		for r := range replicas {
			replicas[r] = nodes[(start+p+r)%len(nodes)]
		}
		out[p] = replicas
	}
	return out
}

func (c *Controller) checkAssignment(snap *Snapshot, assignment [][]int32) error {
	if len(assignment) == 0 {
		return fmt.Errorf("%w: no partitions", ErrInvalidReplicaAssignment)
	}
	rf := len(assignment[0])
	if err := c.cfg.checkReplicationFactor(rf); err != nil {
		return err
	}
	for p, replicas := range assignment {
		if len(replicas) == 0 || len(replicas) != rf {
			return fmt.Errorf("%w: partition %d has %d replicas, partition 0 has %d", ErrInvalidReplicaAssignment, p, len(replicas), rf)
		}
		seen := make(map[int32]bool, len(replicas))
		for _, n := range replicas {
			if _, ok := snap.Nodes[n]; !ok {
				return fmt.Errorf("%w: partition %d names node %d, which is not registered", ErrInvalidReplicaAssignment, p, n)
			}
			if seen[n] {
				return fmt.Errorf("%w: partition %d names node %d twice", ErrInvalidReplicaAssignment, p, n)
			}
			seen[n] = true
		}
	}
	return nil
}

func newPartition(index int32, replicas []int32) Partition {
	return Partition{
		Index:    index,
		Replicas: slices.Clone(replicas),
		ISR:      slices.Clone(replicas),
		Leader:   replicas[0],
	}
}

// AlterTopicConfigs changes a topic's config overrides: edit gets a copy of the current
// ones and returns the new set, which is validated as a whole. A change that races
// another is retried on the fresh state (compare-and-set on the config version).
func (c *Controller) AlterTopicConfigs(ctx context.Context, topic string, validateOnly bool, edit func(current map[string]string) (map[string]string, error)) error {
	for attempt := 0; ; attempt++ {
		snap, err := c.store.Snapshot(ctx)
		if err != nil {
			return err
		}
		t, ok := snap.Topic(topic)
		if !ok {
			return fmt.Errorf("topic %q: %w", topic, ErrUnknownTopic)
		}
		next, err := edit(maps.Clone(t.Configs))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		if err := ValidateTopicConfigs(next); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		if validateOnly {
			return nil
		}
		err = c.store.SetTopicConfigs(ctx, topic, next, t.ConfigVersion)
		if errors.Is(err, ErrConflict) && attempt < 10 {
			continue
		}
		if err == nil {
			c.logger.Info("changed topic configs", "topic", topic, "configs", next)
		}
		return err
	}
}
