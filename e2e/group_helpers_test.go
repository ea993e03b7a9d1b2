package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Helpers shared by the consumer-group tests (group_*_test.go).

const (
	// fastRebalance shortens Kafka's group.initial.rebalance.delay.ms (3s
	// by default) so the group tests do not wait for it. One test
	// (TestGroupKcatAndConfluentPython) keeps the default.
	fastRebalance = "--group-initial-rebalance-delay=200ms"
	// groupTimeout bounds each group step (joining, consuming, committing).
	groupTimeout = 30 * time.Second
	// pollBatch caps the records one poll returns, so a consumer's
	// progress can be gated between polls.
	pollBatch = 500
)

// classicGroupAPIs are the requests a classic-protocol consumer group needs
// from the broker (Kafka's group coordinator APIs).
var classicGroupAPIs = []kmsg.Key{
	kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat,
	kmsg.LeaveGroup, kmsg.OffsetCommit, kmsg.OffsetFetch,
}

// startGroupDev starts `strait dev` with a short initial rebalance delay
// and checks up front that the broker advertises the group APIs, so a
// build without them fails at once with a clear message rather than at a
// deadline.
func startGroupDev(t testing.TB, opts ...DevOption) *Process {
	t.Helper()
	p := StartDev(t, append([]DevOption{Args(fastRebalance)}, opts...)...)
	requireAPIs(t, p, classicGroupAPIs...)
	return p
}

// requireAPIs fails the test unless the broker advertises every key in
// ApiVersions.
func requireAPIs(t testing.TB, p *Process, keys ...kmsg.Key) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	cl := p.Client(t)
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	have := make(map[int16]int16)
	for _, k := range resp.ApiKeys {
		have[k.ApiKey] = k.MaxVersion
	}
	var missing []string
	for _, k := range keys {
		if _, ok := have[int16(k)]; !ok {
			missing = append(missing, k.Name())
		}
	}
	cl.Close()
	if len(missing) > 0 {
		t.Fatalf("broker does not advertise %v in ApiVersions", missing)
	}
}

// produceSpread produces n records to topic, record i to partition
// i%partitions with key "k<i>" and value "v%08d" of i, and waits for every
// acknowledgement. Each returned record carries its partition and offset.
func produceSpread(t testing.TB, p *Process, topic string, partitions, n int) []*kgo.Record {
	t.Helper()
	cl := p.Client(t,
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Partition: int32(i % partitions),
			Key:       fmt.Appendf(nil, "k%d", i),
			Value:     fmt.Appendf(nil, "v%08d", i),
		}
	}
	start := time.Now()
	produceAll(t, cl, recs, groupTimeout)
	cl.Close()
	t.Logf("produced %d records to %s in %v", n, topic, time.Since(start))
	return recs
}

// recordIndex returns i for a record produced by produceSpread.
func recordIndex(r *kgo.Record, n int) (int, error) {
	var i int
	if _, err := fmt.Sscanf(string(r.Value), "v%08d", &i); err != nil || i < 0 || i >= n {
		return 0, fmt.Errorf("%s offset %d: bad value %q", tp{r.Topic, r.Partition}, r.Offset, r.Value)
	}
	return i, nil
}

// consumedSet records which of the records produceSpread acknowledged have
// been consumed, by any member of a group, and how often. It is safe for
// concurrent use.
type consumedSet struct {
	acked    []*kgo.Record
	counts   []atomic.Int32
	total    atomic.Int64 // records consumed, duplicates included
	distinct atomic.Int64 // acknowledged records consumed at least once
}

func newConsumedSet(acked []*kgo.Record) *consumedSet {
	return &consumedSet{acked: acked, counts: make([]atomic.Int32, len(acked))}
}

// add counts a consumed record. It returns an error if the record is not
// one that was acknowledged, at the partition and offset the
// acknowledgement gave (every reader sees the same record at the same
// offset).
func (s *consumedSet) add(r *kgo.Record) error {
	i, err := recordIndex(r, len(s.acked))
	if err != nil {
		return err
	}
	w := s.acked[i]
	if r.Partition != w.Partition || r.Offset != w.Offset || string(r.Key) != string(w.Key) {
		return fmt.Errorf("consumed value %q key %q at %s offset %d; acknowledged key %q at %s offset %d",
			r.Value, r.Key, tp{r.Topic, r.Partition}, r.Offset, w.Key, tp{w.Topic, w.Partition}, w.Offset)
	}
	s.total.Add(1)
	if s.counts[i].Add(1) == 1 {
		s.distinct.Add(1)
	}
	return nil
}

// duplicates returns how many records were consumed more than once, and
// how many extra deliveries there were in all.
func (s *consumedSet) duplicates() (records, extra int) {
	for i := range s.counts {
		if c := s.counts[i].Load(); c > 1 {
			records++
			extra += int(c) - 1
		}
	}
	return records, extra
}

// missing returns up to max acknowledged records never consumed.
func (s *consumedSet) missing(max int) []string {
	var out []string
	for i := range s.counts {
		if s.counts[i].Load() == 0 && len(out) < max {
			w := s.acked[i]
			out = append(out, fmt.Sprintf("%s@%d", tp{w.Topic, w.Partition}, w.Offset))
		}
	}
	return out
}

// waitAllConsumed polls until every acknowledged record has been consumed
// at least once (Kafka's at-least-once delivery for a group that commits
// after processing), failing the test after timeout.
func (s *consumedSet) waitAllConsumed(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	n := int64(len(s.acked))
	err := pollUntil(ctx, nil, func(context.Context) error {
		if d := s.distinct.Load(); d < n {
			return fmt.Errorf("%d of %d records consumed", d, n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("not every record was consumed: %v; missing (first 10): %v", err, s.missing(10))
	}
}

// groupMember is one franz-go consumer in a group that commits what it
// has processed after each poll (DisableAutoCommit, BlockRebalanceOnPoll)
// and, as franz-go documents for manual commits, in OnPartitionsRevoked, so
// the next owner of a revoked partition starts where this one stopped.
type groupMember struct {
	t    testing.TB
	name string
	cl   *kgo.Client
	set  *consumedSet

	consumed   atomic.Int64
	commitErrs atomic.Int64
	assigned   atomic.Int32 // OnPartitionsAssigned calls
	revoked    atomic.Int32 // OnPartitionsRevoked calls
	lost       atomic.Int32 // OnPartitionsLost calls

	mu    sync.Mutex
	owned map[int32]bool // partitions of the topic assigned now
}

// newGroupMember creates a consumer in group reading topic from the start
// when nothing is committed; extra options (balancers, instance ids) come
// last.
func newGroupMember(t testing.TB, p *Process, name, group, topic string, set *consumedSet, extra ...kgo.Opt) *groupMember {
	t.Helper()
	m := &groupMember{t: t, name: name, set: set, owned: make(map[int32]bool)}
	opts := []kgo.Opt{
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.assigned.Add(1)
			m.setOwned(ps[topic], true)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			m.revoked.Add(1)
			m.commit(ctx, cl)
			m.setOwned(ps[topic], false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.lost.Add(1)
			m.setOwned(ps[topic], false)
		}),
	}
	m.cl = p.Client(t, append(opts, extra...)...)
	return m
}

func (m *groupMember) setOwned(ps []int32, owned bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range ps {
		if owned {
			m.owned[p] = true
		} else {
			delete(m.owned, p)
		}
	}
}

// ownedPartitions returns the partitions assigned to m now, sorted.
func (m *groupMember) ownedPartitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int32, 0, len(m.owned))
	for p := range m.owned {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// commit commits everything m has polled. A failed commit is not fatal:
// Kafka may refuse commits around a rebalance (REBALANCE_IN_PROGRESS,
// ILLEGAL_GENERATION, STALE_MEMBER_EPOCH), and the next owner then
// consumes those records again (at-least-once). The count is reported.
func (m *groupMember) commit(ctx context.Context, cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(ctx, groupTimeout)
	defer cancel()
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		m.commitErrs.Add(1)
		m.t.Logf("%s: commit: %v", m.name, err)
	}
}

// pollOnce polls up to pollBatch records, processes them, commits, and
// allows a pending rebalance. It returns false once the client is closed or
// ctx is done. Fetch errors other than those fail the test.
func (m *groupMember) pollOnce(ctx context.Context) bool {
	fetches := m.cl.PollRecords(ctx, pollBatch)
	defer m.cl.AllowRebalance()
	if fetches.IsClientClosed() {
		return false
	}
	fetches.EachError(func(topic string, partition int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		m.t.Errorf("%s: fetch %s: %v", m.name, tp{topic, partition}, err)
	})
	recs := fetches.Records()
	for _, r := range recs {
		if err := m.set.add(r); err != nil {
			m.t.Errorf("%s: %v", m.name, err)
		}
	}
	m.consumed.Add(int64(len(recs)))
	if len(recs) > 0 {
		m.commit(context.Background(), m.cl)
	}
	return ctx.Err() == nil
}

// stats formats m's counters for a log line.
func (m *groupMember) stats() string {
	return fmt.Sprintf("%s: consumed %d, owns %v, assigned %d, revoked %d, lost %d, failed commits %d",
		m.name, m.consumed.Load(), m.ownedPartitions(), m.assigned.Load(), m.revoked.Load(), m.lost.Load(), m.commitErrs.Load())
}

// waitGroupState polls DescribeGroups until group is in state with
// members members, and returns the description.
func waitGroupState(t testing.TB, adm *kadm.Client, group, state string, members int, timeout time.Duration) kadm.DescribedGroup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d kadm.DescribedGroup
	err := pollUntil(ctx, nil, func(ctx context.Context) error {
		described, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		var ok bool
		if d, ok = described[group]; !ok {
			return fmt.Errorf("group %s not described", group)
		}
		if d.Err != nil {
			return d.Err
		}
		if d.State != state || len(d.Members) != members {
			return fmt.Errorf("state %q with %d members", d.State, len(d.Members))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("group %s: want state %s with %d members: %v", group, state, members, err)
	}
	return d
}

// memberAssignment returns the partitions of topic assigned to m in a
// classic group's description.
func memberAssignment(t testing.TB, m kadm.DescribedGroupMember, topic string) []int32 {
	t.Helper()
	a, ok := m.Assigned.AsConsumer()
	if !ok {
		t.Fatalf("member %s: assignment is not a consumer assignment", m.MemberID)
	}
	var out []int32
	for _, at := range a.Topics {
		if at.Topic == topic {
			out = append(out, at.Partitions...)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// checkAssignedOnce checks that every partition in [0, partitions) is
// assigned to exactly one of the given member assignments (Kafka: within a
// generation no partition is owned by two members; docs/architecture.md invariant 4).
func checkAssignedOnce(t testing.TB, assignments map[string][]int32, partitions int) {
	t.Helper()
	owner := make(map[int32]string)
	for member, ps := range assignments {
		for _, p := range ps {
			if prev, dup := owner[p]; dup {
				t.Fatalf("partition %d assigned to both %s and %s: %v", p, prev, member, assignments)
			}
			owner[p] = member
		}
	}
	for p := range int32(partitions) {
		if _, ok := owner[p]; !ok {
			t.Fatalf("partition %d assigned to no member: %v", p, assignments)
		}
	}
}
