package routing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// The Controller's partition state changes: each reads the Store, decides by the rules
// of election.go, and writes with a compare-and-set on the partition epoch, so a
// decision based on a stale read never lands. Many partitions are written in one
// UpdatePartitions; those whose write lost a race are decided again on fresh state.

// maxRewriteRounds bounds how often a partition that keeps losing races is decided
// again before the Controller gives up with ErrConflict.
const maxRewriteRounds = 16

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// ElectionType is the ElectLeaders election type.
type ElectionType int8

const (
	// ElectionPreferred moves leadership back to the first replica.
	ElectionPreferred ElectionType = 0
	// ElectionUnclean elects a leader for a partition without a live one, from outside
	// the ISR if no ISR member is live, whatever the topic's configuration.
	ElectionUnclean ElectionType = 1
)

// ElectionResult is one partition's outcome of an election. Err is nil when a leader
// was elected and written; otherwise it wraps ErrElectionNotNeeded,
// ErrPreferredLeaderNotAvailable, ErrEligibleLeadersNotAvailable, ErrUnknownTopic,
// ErrUnknownPartition or ErrConflict (lost too many races). Leader and LeaderEpoch are
// the partition's after the election, or its current ones if there was none.
type ElectionResult struct {
	TopicPartition
	Leader      int32
	LeaderEpoch int32
	Err         error
}

// AlterPartitionISR is Kafka's AlterPartition (KIP-497): the leader of a partition
// replaces its ISR. It is accepted only from leader at leaderEpoch (else
// ErrFencedLeaderEpoch), based on the current partitionEpoch (else ErrConflict: re-read
// and propose again), with newISR a non-empty set of replicas that contains the leader
// (else ErrInvalidISR). It returns the partition as it now is; on those errors, as it
// was. An unchanged ISR is not written. ErrUnknownTopic and ErrUnknownPartition too.
func (c *Controller) AlterPartitionISR(ctx context.Context, topic string, index, leader, leaderEpoch int32, newISR []int32, partitionEpoch int32, live func(int32) bool) (Partition, error) {
	snap, err := c.store.Snapshot(ctx)
	if err != nil {
		return Partition{}, err
	}
	cur, err := lookupPartition(snap, TopicPartition{topic, index})
	if err != nil {
		return Partition{}, err
	}
	next, err := planAlterISR(cur, leader, leaderEpoch, newISR, partitionEpoch)
	if err != nil {
		return cur, fmt.Errorf("alter ISR of %s-%d: %w", topic, index, err)
	}
	// Only live replicas may join: a follower that caught up and then died must not be
	// counted for acks=all (Kafka's INELIGIBLE_REPLICA, KIP-841). nil skips the check.
	for _, id := range next.ISR {
		if live != nil && !slices.Contains(cur.ISR, id) && !live(id) {
			return cur, fmt.Errorf("alter ISR of %s-%d: %w: node %d has no live lease", topic, index, ErrIneligibleReplica, id)
		}
	}
	if sameState(cur, next) {
		return cur, nil
	}
	if err := c.store.UpdatePartition(ctx, topic, next, partitionEpoch); err != nil {
		return cur, err
	}
	next.PartitionEpoch = partitionEpoch + 1
	c.logger.Info("changed ISR", "topic", topic, "partition", index, "leader", leader, "leader_epoch", leaderEpoch, "isr", next.ISR, "was", cur.ISR)
	return next, nil
}

// HandleNodeFailure acts on a node found dead (its lease expired): it leaves the ISR of
// every partition unless it is the last member, and the partitions it led get the
// first live ISR replica as leader, or none (-1) — or, where the topic sets
// unclean.leader.election.enable, a live replica outside the ISR. live tells which
// other nodes are alive; node counts as dead. It returns how many partitions changed;
// an error means some were not (a Store failure, or races lost too often): call again.
func (c *Controller) HandleNodeFailure(ctx context.Context, node int32, live func(int32) bool) (changed int, err error) {
	outs, err := c.rewrite(ctx, nil, nil, func(t *Topic, p Partition) (Partition, bool, error) {
		next, ok := planNodeFailure(p, node, live, t.ConfigBool(UncleanLeaderElectionEnable))
		return next, ok, nil
	})
	changed, failed := c.logChanges(outs, "node failed", node)
	return changed, errors.Join(err, failed)
}

// HandleNodeReturn acts on a node that is alive again: partitions without a leader
// hold an election in which it counts as live, so those whose ISR it is in get it as
// leader. It rejoins the ISR of other partitions through their leaders (AlterPartition)
// once it has caught up, not here.
func (c *Controller) HandleNodeReturn(ctx context.Context, node int32, live func(int32) bool) (changed int, err error) {
	outs, err := c.rewrite(ctx, nil, nil, func(t *Topic, p Partition) (Partition, bool, error) {
		next, ok := planNodeReturn(p, node, live, t.ConfigBool(UncleanLeaderElectionEnable))
		return next, ok, nil
	})
	changed, failed := c.logChanges(outs, "node returned", node)
	return changed, errors.Join(err, failed)
}

// ElectPreferredLeaders runs Kafka's preferred leader election over the partitions
// only accepts (all if only is nil): where the first replica is live, in the ISR and
// not leading, it becomes leader. Results are sorted by topic and partition.
func (c *Controller) ElectPreferredLeaders(ctx context.Context, live func(int32) bool, only func(topic string, index int32) bool) ([]ElectionResult, error) {
	return c.elect(ctx, ElectionPreferred, live, nil, only)
}

// ElectLeaders serves Kafka's ElectLeaders API for the named partitions (all if
// partitions is nil), with one result per distinct partition, sorted.
func (c *Controller) ElectLeaders(ctx context.Context, typ ElectionType, live func(int32) bool, partitions []TopicPartition) ([]ElectionResult, error) {
	if typ != ElectionPreferred && typ != ElectionUnclean {
		return nil, fmt.Errorf("election type %d is neither preferred (0) nor unclean (1)", typ)
	}
	if partitions != nil && len(partitions) == 0 {
		return nil, nil
	}
	return c.elect(ctx, typ, live, partitions, nil)
}

func (c *Controller) elect(ctx context.Context, typ ElectionType, live func(int32) bool, keys []TopicPartition, only func(string, int32) bool) ([]ElectionResult, error) {
	outs, err := c.rewrite(ctx, keys, only, func(_ *Topic, p Partition) (Partition, bool, error) {
		var next Partition
		var err error
		if typ == ElectionUnclean {
			next, err = planUnclean(p, live)
		} else {
			next, err = planPreferred(p, live)
		}
		return next, err == nil, err
	})
	if err != nil {
		return nil, err
	}
	results := make([]ElectionResult, len(outs))
	for i, o := range outs {
		results[i] = ElectionResult{TopicPartition: o.key, Leader: o.p.Leader, LeaderEpoch: o.p.LeaderEpoch, Err: o.err}
		if o.written {
			c.logger.Info("elected leader", "topic", o.key.Topic, "partition", o.key.Partition, "leader", o.p.Leader,
				"leader_epoch", o.p.LeaderEpoch, "was", o.was.Leader, "unclean", typ == ElectionUnclean && !slices.Contains(o.was.ISR, o.p.Leader))
		}
	}
	return results, nil
}

// outcome is what rewrite did to one partition.
type outcome struct {
	key     TopicPartition
	was     Partition // the state decided on last
	p       Partition // the state written, else the current one
	written bool
	err     error // why nothing was written, if there is a reason to tell
}

// decideFunc returns a partition's next state; ok false leaves it as it is.
type decideFunc func(t *Topic, p Partition) (next Partition, ok bool, err error)

// rewrite decides and writes the next state of the partitions keys names, or if keys
// is nil of every partition that only accepts (all if only is nil). Each round reads a
// snapshot and writes every decision in one UpdatePartitions; partitions that lost a
// race are decided again in the next. Outcomes are sorted. err is a Store failure:
// rounds before it may have been written.
func (c *Controller) rewrite(ctx context.Context, keys []TopicPartition, only func(string, int32) bool, decide decideFunc) ([]outcome, error) {
	done := map[TopicPartition]outcome{}
	pending := dedupe(keys)
	for round := 0; ; round++ {
		snap, err := c.store.Snapshot(ctx)
		if err != nil {
			return sortedOutcomes(done), err
		}
		if keys == nil && round == 0 {
			pending = allPartitions(snap, only)
		}
		var changes []PartitionChange
		var decided []outcome
		for _, k := range pending {
			p, err := lookupPartition(snap, k)
			if err != nil {
				done[k] = outcome{key: k, p: p, err: err}
				continue
			}
			next, ok, err := decide(snap.Topics[k.Topic], p)
			if !ok {
				done[k] = outcome{key: k, was: p, p: p, err: err}
				continue
			}
			changes = append(changes, PartitionChange{Topic: k.Topic, Partition: next, ExpectPartitionEpoch: p.PartitionEpoch})
			decided = append(decided, outcome{key: k, was: p, p: next})
		}
		if len(changes) == 0 {
			return sortedOutcomes(done), nil
		}
		results, err := c.store.UpdatePartitions(ctx, changes)
		if err != nil {
			return sortedOutcomes(done), err
		}
		pending = nil
		for i, o := range decided {
			switch {
			case results[i] == nil:
				o.p.PartitionEpoch = changes[i].ExpectPartitionEpoch + 1
				o.written = true
			case errors.Is(results[i], ErrConflict) && round+1 < maxRewriteRounds:
				pending = append(pending, o.key)
				continue
			default:
				o.p, o.err = o.was, results[i]
			}
			done[o.key] = o
		}
		if len(pending) == 0 {
			return sortedOutcomes(done), nil
		}
	}
}

// logChanges logs the leader changes among outs, counts the partitions written and
// joins the errors of those that were not (a topic deleted meanwhile is no error).
func (c *Controller) logChanges(outs []outcome, why string, node int32) (n int, err error) {
	var errs []error
	for _, o := range outs {
		switch {
		case o.written:
			n++
		case o.err != nil && !errors.Is(o.err, ErrUnknownTopic) && !errors.Is(o.err, ErrUnknownPartition):
			errs = append(errs, fmt.Errorf("%s-%d: %w", o.key.Topic, o.key.Partition, o.err))
		}
		if !o.written || o.p.Leader == o.was.Leader {
			continue
		}
		attrs := []any{"why", why, "node", node, "topic", o.key.Topic, "partition", o.key.Partition,
			"leader", o.p.Leader, "leader_epoch", o.p.LeaderEpoch, "was", o.was.Leader, "isr", o.p.ISR}
		switch {
		case o.p.Leader == NoLeader:
			c.logger.Warn("partition is offline: no live replica in its ISR", attrs...)
		case !slices.Contains(o.was.ISR, o.p.Leader):
			c.logger.Warn("unclean leader election: records the old ISR held may be lost", attrs...)
		default:
			c.logger.Info("elected leader", attrs...)
		}
	}
	return n, errors.Join(errs...)
}

func lookupPartition(snap *Snapshot, k TopicPartition) (Partition, error) {
	t, ok := snap.Topic(k.Topic)
	if !ok {
		return Partition{}, fmt.Errorf("topic %q: %w", k.Topic, ErrUnknownTopic)
	}
	if k.Partition < 0 || int(k.Partition) >= len(t.Partitions) {
		return Partition{}, fmt.Errorf("partition %s-%d (the topic has %d): %w", k.Topic, k.Partition, len(t.Partitions), ErrUnknownPartition)
	}
	return t.Partitions[k.Partition], nil
}

func allPartitions(snap *Snapshot, only func(string, int32) bool) []TopicPartition {
	var out []TopicPartition
	for _, name := range snap.TopicNames() {
		for i := range snap.Topics[name].Partitions {
			if only == nil || only(name, int32(i)) {
				out = append(out, TopicPartition{name, int32(i)})
			}
		}
	}
	return out
}

func dedupe(keys []TopicPartition) []TopicPartition {
	seen := make(map[TopicPartition]bool, len(keys))
	var out []TopicPartition
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func sortedOutcomes(done map[TopicPartition]outcome) []outcome {
	out := make([]outcome, 0, len(done))
	for _, o := range done {
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b outcome) int {
		return cmp.Or(cmp.Compare(a.key.Topic, b.key.Topic), cmp.Compare(a.key.Partition, b.key.Partition))
	})
	return out
}
