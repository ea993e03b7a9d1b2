package offsets

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Table is the committed offsets of all groups of one __consumer_offsets partition,
// rebuilt by replaying its records in order: later records win, tombstones delete.
// Group metadata records are not its business and are ignored; a group tombstone does
// not delete the group's offsets (Kafka writes a tombstone per offset for that).
// Not safe for concurrent use.
type Table struct {
	groups map[string]map[TopicPartition]Commit
}

// NewTable returns an empty Table.
func NewTable() *Table {
	return &Table{groups: make(map[string]map[TopicPartition]Commit)}
}

// Apply applies one record: replayed from the log, or just written to it.
func (t *Table) Apply(r Record) {
	if !r.IsOffset {
		return
	}
	tp := TopicPartition{r.Topic, r.Partition}
	if r.Commit == nil {
		t.DeletePartition(r.Group, r.Topic, r.Partition)
		return
	}
	g := t.groups[r.Group]
	if g == nil {
		g = make(map[TopicPartition]Commit)
		t.groups[r.Group] = g
	}
	g[tp] = *r.Commit
}

// Get returns the group's committed offset for the partition, if any.
func (t *Table) Get(group, topic string, partition int32) (Commit, bool) {
	c, ok := t.groups[group][TopicPartition{topic, partition}]
	return c, ok
}

// Group returns a copy of the group's commits by topic and partition, or nil if the
// group has none.
func (t *Table) Group(group string) map[string]map[int32]Commit {
	g := t.groups[group]
	if len(g) == 0 {
		return nil
	}
	out := make(map[string]map[int32]Commit)
	for tp, c := range g {
		ps := out[tp.Topic]
		if ps == nil {
			ps = make(map[int32]Commit)
			out[tp.Topic] = ps
		}
		ps[tp.Partition] = c
	}
	return out
}

// Groups returns the groups that have committed offsets, sorted.
func (t *Table) Groups() []string {
	return slices.Sorted(maps.Keys(t.groups))
}

// Delete forgets all of the group's offsets (DeleteGroups; the caller writes the
// tombstones).
func (t *Table) Delete(group string) {
	delete(t.groups, group)
}

// DeletePartition forgets the group's offset for one partition (OffsetDelete, or an
// offset tombstone).
func (t *Table) DeletePartition(group, topic string, partition int32) {
	g := t.groups[group]
	delete(g, TopicPartition{topic, partition})
	if len(g) == 0 {
		delete(t.groups, group)
	}
}

// ExpiryInput is what the group coordinator knows about a group that the offsets do
// not say.
type ExpiryInput struct {
	Group      string
	Empty      bool      // the group has no members
	EmptySince time.Time // when it became empty; zero if unknown (commit time alone decides)
	// Subscribed reports whether the group's members still consume the topic. Nil
	// when Empty; nil for a group with members means the subscriptions are unknown
	// (not the consumer protocol, or mid-rebalance) and nothing expires.
	Subscribed func(topic string) bool
}

// Expired returns, sorted by topic and partition, the group's commits to tombstone
// under offsets.retention.minutes as KIP-211 has it:
//
//   - an empty group: every commit whose later of commit time and EmptySince is at
//     least retention before now;
//   - a group with members: only commits of topics it no longer subscribes to, whose
//     commit time is at least retention before now.
//
// A commit with an explicit ExpireTime (value v1) expires at that time instead of by
// retention, in either case. Expired changes nothing; the caller writes tombstones and
// applies them.
func (t *Table) Expired(now time.Time, retention time.Duration, in ExpiryInput) []TopicPartition {
	g := t.groups[in.Group]
	if len(g) == 0 || (!in.Empty && in.Subscribed == nil) {
		return nil
	}
	var out []TopicPartition
	for tp, c := range g {
		if !in.Empty && in.Subscribed(tp.Topic) {
			continue
		}
		var expired bool
		if !c.ExpireTime.IsZero() {
			expired = !now.Before(c.ExpireTime)
		} else {
			base := c.CommitTime
			if in.Empty && in.EmptySince.After(base) {
				base = in.EmptySince
			}
			expired = now.Sub(base) >= retention
		}
		if expired {
			out = append(out, tp)
		}
	}
	slices.SortFunc(out, func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}
