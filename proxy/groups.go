package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/routing"
)

// coordinatorLeaseTTL bounds how long a dead proxy keeps its groups unreachable.
const coordinatorLeaseTTL = 15 * time.Second

// StartGroups makes sure __consumer_offsets exists, then keeps the leases of its
// partitions that this proxy coordinates, loading each partition it wins and
// unloading any it loses. It returns once the topic exists; the lease loop runs
// until ctx ends.
func (p *Proxy) StartGroups(ctx context.Context, cfg coordinator.Config) error {
	partitions, err := p.ensureOffsetsTopic(ctx, cfg.Partitions)
	if err != nil {
		return err
	}
	cfg.Partitions = partitions
	c, err := coordinator.New(cfg, offsetsLog{p}, p.view, p.logger.With("component", "coordinator"))
	if err != nil {
		return err
	}
	p.groups.Store(c)
	p.keepLeases(ctx, c, partitions)
	go func() {
		ticker := time.NewTicker(coordinatorLeaseTTL / 3)
		defer ticker.Stop()
		for {
			changed := p.view.Changed()
			select {
			case <-ctx.Done():
				c.Close()
				return
			case <-ticker.C:
				p.keepLeases(ctx, c, partitions)
			case <-changed:
				// A proxy that drained released its leases: take them now, not at
				// the next tick, so its groups wait for no one.
				if p.freeLease(partitions) {
					p.keepLeases(ctx, c, partitions)
				}
			}
		}
	}()
	return nil
}

// freeLease reports whether some coordinator lease has lapsed or been released.
func (p *Proxy) freeLease(partitions int32) bool {
	snap, now := p.view.Snapshot(), time.Now()
	for i := range partitions {
		if l, ok := snap.Leases[coordinatorLeaseName(i)]; !ok || !l.ExpiresAt.After(now) {
			return true
		}
	}
	return false
}

// Drain hands over this proxy's coordinator leases, for a clean stop: its groups are
// unloaded (their state is in __consumer_offsets) and the leases released, so another
// proxy loads them at once rather than one lease TTL later. The proxy stops taking
// leases; requests for its former groups get NOT_COORDINATOR, which clients follow to
// the new coordinator.
func (p *Proxy) Drain(ctx context.Context) {
	p.draining.Store(true)
	p.leases.Lock()
	defer p.leases.Unlock()
	p.drainTransactions(ctx)
	c := p.groups.Load()
	if c == nil {
		return
	}
	snap := p.view.Snapshot()
	for i := range c.Partitions() {
		name := coordinatorLeaseName(i)
		if snap.Leases[name].Holder != p.holder() {
			continue
		}
		c.Unload(i)
		if err := p.store.ReleaseLease(ctx, name, p.holder()); err != nil {
			p.logger.WarnContext(ctx, "releasing a coordinator lease failed; another proxy takes it when it expires", "partition", i, "err", err)
		}
	}
	p.logger.InfoContext(ctx, "handed over the coordinator leases")
}

// ensureOffsetsTopic creates __consumer_offsets if missing and returns its partition
// count: an existing topic keeps its count, since groups hash onto it.
func (p *Proxy) ensureOffsetsTopic(ctx context.Context, partitions int32) (int32, error) {
	// Compacted, as in Kafka: only the latest commit per group and partition matters.
	// Replicated three ways where there are three nodes (offsets.topic.replication.factor).
	rf := int16(min(3, len(p.view.Snapshot().Nodes)))
	spec := routing.TopicSpec{Name: coordinator.OffsetsTopic, Partitions: partitions, ReplicationFactor: rf,
		Configs: map[string]string{"cleanup.policy": "compact"}}
	_, err := p.controller.CreateTopic(ctx, spec)
	if err != nil && !errors.Is(err, routing.ErrTopicExists) {
		return 0, fmt.Errorf("create %s: %w", coordinator.OffsetsTopic, err)
	}
	if err := p.view.Refresh(ctx); err != nil {
		return 0, err
	}
	t, ok := p.view.Snapshot().Topic(coordinator.OffsetsTopic)
	if !ok {
		return 0, fmt.Errorf("%s is missing right after it was created", coordinator.OffsetsTopic)
	}
	return int32(len(t.Partitions)), nil
}

// keepLeases renews or takes each partition's coordinator lease.
func (p *Proxy) keepLeases(ctx context.Context, c *coordinator.Coordinator, partitions int32) {
	p.leases.Lock() // Drain waits for a pass in progress, so none renews after it
	defer p.leases.Unlock()
	if p.draining.Load() {
		return
	}
	for i := range partitions {
		_, err := p.store.AcquireLease(ctx, coordinatorLeaseName(i), p.holder(), coordinatorLeaseTTL)
		switch {
		case err == nil:
			c.Load(i)
		case errors.Is(err, routing.ErrLeaseHeld):
			c.Unload(i)
		default:
			p.logger.Warn("cannot renew a coordinator lease; keeping the partition while the lease lasts", "partition", i, "err", err)
		}
	}
}

func coordinatorLeaseName(partition int32) string {
	return "coordinator/" + coordinator.OffsetsTopic + "/" + strconv.Itoa(int(partition))
}

// holder is this proxy's name in the coordinator leases it holds.
func (p *Proxy) holder() string { return leaseHolderName(p.cfg.BrokerID) }

// leaseHolderName names proxy id as a coordinator lease's holder.
func leaseHolderName(id int32) string { return "proxy-" + strconv.Itoa(int(id)) }

// coordinatorOf returns the proxy that coordinates group: the holder of its
// partition's lease.
func (p *Proxy) coordinatorOf(group string) (routing.Proxy, int16) {
	c := p.groups.Load()
	if c == nil {
		return routing.Proxy{}, kerr.CoordinatorNotAvailable.Code
	}
	return p.leaseHolder(coordinatorLeaseName(c.Partition(group)))
}

// leaseHolder returns the live proxy holding a coordinator lease (of a group's or a
// transactional id's partition), this one with all its listeners when it holds it.
func (p *Proxy) leaseHolder(name string) (routing.Proxy, int16) {
	snap := p.view.Snapshot()
	lease, ok := snap.Leases[name]
	if !ok {
		return routing.Proxy{}, kerr.CoordinatorNotAvailable.Code
	}
	if lease.Holder == p.holder() {
		return p.self(), 0
	}
	for _, other := range snap.Proxies {
		if leaseHolderName(other.ID) == lease.Holder {
			return other, 0
		}
	}
	return routing.Proxy{}, kerr.CoordinatorNotAvailable.Code
}

// coord returns the coordinator; group requests before StartGroups are a wiring bug,
// answered by closing the connection with a log line.
func (p *Proxy) coord() (*coordinator.Coordinator, error) {
	c := p.groups.Load()
	if c == nil {
		return nil, errors.New("proxy: consumer groups are not started (StartGroups was not called)")
	}
	return c, nil
}

// offsetsLog reads and writes __consumer_offsets through the forwarding engine, so
// group state is stored and replicated like any partition, and a leader change of an
// offsets partition costs a commit latency rather than an error.
type offsetsLog struct{ p *Proxy }

func (l offsetsLog) Append(ctx context.Context, partition int32, batch []byte) error {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 12, -1, 30_000
	out := kmsg.NewProduceResponseTopicPartition()
	pt := &producePart{topic: coordinator.OffsetsTopic, index: partition, out: &out}
	pt.in.Partition, pt.in.Records = partition, batch
	forward(ctx, l.p, produceAdapter{req}, []*producePart{pt}, requestDeadline(time.Duration(req.TimeoutMillis)*time.Millisecond))
	return kerr.ErrorForCode(out.ErrorCode)
}

func (l offsetsLog) Read(ctx context.Context, partition int32, offset int64, maxBytes int32) ([]byte, int64, error) {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.SessionEpoch = 12, -1, maxBytes, -1
	out := kmsg.NewFetchResponseTopicPartition()
	pt := &fetchPart{topic: coordinator.OffsetsTopic, index: partition, out: &out}
	pt.in.Partition, pt.in.FetchOffset, pt.in.PartitionMaxBytes = partition, offset, maxBytes
	pt.in.CurrentLeaderEpoch, pt.in.LastFetchedEpoch = -1, -1
	forward(ctx, l.p, fetchAdapter{req}, []*fetchPart{pt}, requestDeadline(30*time.Second))
	if err := kerr.ErrorForCode(out.ErrorCode); err != nil {
		return nil, 0, err
	}
	return out.RecordBatches, out.HighWatermark, nil
}

// GroupsLoaded reports whether every partition this proxy coordinates has replayed
// its groups (for readiness).
func (p *Proxy) GroupsLoaded() error {
	c, err := p.coord()
	if err != nil {
		return err
	}
	return c.Loaded()
}

// GroupStats describes the groups this proxy coordinates (for metrics); none before
// StartGroups.
func (p *Proxy) GroupStats(ctx context.Context) []coordinator.GroupStats {
	c := p.groups.Load()
	if c == nil {
		return nil
	}
	return c.GroupStats(ctx)
}

// HighWatermarks asks the partitions' leaders for their high watermarks (ListOffsets
// for the latest offset, through the forwarding engine), by topic and partition. A
// partition whose leader did not answer is left out.
func (p *Proxy) HighWatermarks(ctx context.Context, partitions map[string][]int32) map[string]map[int32]int64 {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	var parts []*listOffsetsPart
	for topic, indexes := range partitions {
		for _, i := range indexes {
			out := kmsg.NewListOffsetsResponseTopicPartition()
			pt := &listOffsetsPart{topic: topic, index: i, out: &out}
			pt.in = kmsg.NewListOffsetsRequestTopicPartition()
			pt.in.Partition, pt.in.Timestamp, pt.in.CurrentLeaderEpoch = i, -1, -1
			parts = append(parts, pt)
		}
	}
	forward(ctx, p, listOffsetsAdapter{req}, parts, requestDeadline(10*time.Second))
	hw := map[string]map[int32]int64{}
	for _, pt := range parts {
		if pt.out.ErrorCode != 0 || pt.out.Offset < 0 {
			continue
		}
		if hw[pt.topic] == nil {
			hw[pt.topic] = map[int32]int64{}
		}
		hw[pt.topic][pt.index] = pt.out.Offset
	}
	return hw
}
