package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupCooperativeStickyFranzGo checks incremental cooperative
// rebalancing (KIP-429, the "cooperative-sticky" assignor): three members
// share an 8-partition topic; when a third of the records are consumed one
// member commits and leaves (LeaveGroup), and the other two take over its
// partitions. Every record is consumed at least once, and the group's
// committed offsets end at the topic's end offsets.
func TestGroupCooperativeStickyFranzGo(t *testing.T) {
	p := startGroupDev(t)
	h := runGroupHandoff(t, p, "coop-topic", "coop-group", kgo.Balancers(kgo.CooperativeStickyBalancer()))
	d := waitGroupState(t, h.adm, h.group, "Stable", 2, groupTimeout)
	checkClassicGroup(t, d, h.topic, "cooperative-sticky", h.partitions)
	h.finish(t)
}

// TestGroupRangeFranzGo is TestGroupCooperativeStickyFranzGo with the eager
// "range" assignor: the leave makes every member revoke everything and
// rejoin (Kafka's classic eager rebalance protocol).
func TestGroupRangeFranzGo(t *testing.T) {
	p := startGroupDev(t)
	h := runGroupHandoff(t, p, "range-topic", "range-group", kgo.Balancers(kgo.RangeBalancer()))
	d := waitGroupState(t, h.adm, h.group, "Stable", 2, groupTimeout)
	checkClassicGroup(t, d, h.topic, "range", h.partitions)
	h.finish(t)
}

// TestGroupKIP848FranzGo is the same hand-off with the next-generation
// consumer group protocol (KIP-848): members send ConsumerGroupHeartbeat
// and the broker assigns partitions ("uniform" assignor for franz-go's
// sticky balancers). franz-go v1.22 uses it only when asked, with
// kgo.ServerSideBalancer(), and only if the broker advertises
// ConsumerGroupHeartbeat v1 or later (Kafka 4.0); otherwise it silently
// falls back to the classic protocol, so the test checks with
// ConsumerGroupDescribe and ListGroups' type filter (KIP-848) that the
// group is a "consumer" (not "classic") group.
func TestGroupKIP848FranzGo(t *testing.T) {
	p := startGroupDev(t)
	checkAPIVersion(t, p, kmsg.ConsumerGroupHeartbeat, 1)
	checkAPIVersion(t, p, kmsg.ConsumerGroupDescribe, 0)
	h := runGroupHandoff(t, p, "kip848-topic", "kip848-group",
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ServerSideBalancer(),
	)

	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	var d kadm.DescribedConsumerGroup
	err := pollUntil(ctx, nil, func(ctx context.Context) error {
		described, err := h.adm.DescribeConsumerGroups(ctx, h.group)
		if err != nil {
			return err
		}
		var ok bool
		if d, ok = described[h.group]; !ok {
			return fmt.Errorf("group %s not described", h.group)
		}
		if d.Err != nil {
			return d.Err
		}
		if d.State != "Stable" || len(d.Members) != 2 {
			return fmt.Errorf("state %q with %d members", d.State, len(d.Members))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ConsumerGroupDescribe %s: want a Stable consumer-protocol group with 2 members: %v", h.group, err)
	}
	if d.AssignorName != "uniform" {
		t.Errorf("group %s: assignor %q, want %q (franz-go's sticky balancers ask for it)", h.group, d.AssignorName, "uniform")
	}
	assignments := make(map[string][]int32)
	for _, m := range d.Members {
		// MemberType (ConsumerGroupDescribe v1+): 1 is a member that
		// speaks ConsumerGroupHeartbeat, 0 a classic member in a
		// consumer group, -1 unknown (v0).
		if m.MemberType == 0 {
			t.Errorf("member %s (%s) is a classic-protocol member; franz-go should use KIP-848", m.MemberID, m.ClientID)
		}
		for p := range m.Assignment[h.topic] {
			assignments[m.MemberID] = append(assignments[m.MemberID], p)
		}
	}
	if len(topicPartitions(assignments)) == 0 {
		t.Fatalf("ConsumerGroupDescribe: no member is assigned a partition of %s by name (Kafka fills TopicName next to TopicId)", h.topic)
	}
	checkAssignedOnce(t, assignments, h.partitions)

	listed, err := h.adm.ListGroupsByType(ctx, []string{"consumer"})
	if err != nil {
		t.Fatalf("ListGroups with type filter consumer: %v", err)
	}
	if _, ok := listed[h.group]; !ok {
		t.Fatalf("ListGroups with type filter consumer does not list %s: %v", h.group, listed.Groups())
	}
	h.finish(t)
}

// checkAPIVersion fails the test unless the broker advertises key at
// version min or later.
func checkAPIVersion(t testing.TB, p *Process, key kmsg.Key, min int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	cl := p.Client(t)
	defer cl.Close()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == int16(key) {
			if k.MaxVersion < min {
				t.Fatalf("broker advertises %s up to v%d, want v%d or later", key.Name(), k.MaxVersion, min)
			}
			return
		}
	}
	t.Fatalf("broker does not advertise %s", key.Name())
}

// checkClassicGroup checks a classic group's description: consumer
// protocol type, the expected assignor, every member subscribed to topic,
// and each partition of topic assigned to exactly one member.
func checkClassicGroup(t testing.TB, d kadm.DescribedGroup, topic, protocol string, partitions int) {
	t.Helper()
	if d.ProtocolType != "consumer" || d.Protocol != protocol {
		t.Fatalf("group %s: protocol type %q, protocol %q; want consumer, %q", d.Group, d.ProtocolType, d.Protocol, protocol)
	}
	assignments := make(map[string][]int32)
	for _, m := range d.Members {
		assignments[m.MemberID] = memberAssignment(t, m, topic)
	}
	checkAssignedOnce(t, assignments, partitions)
}

// handoff is a group of two members left running after runGroupHandoff;
// finish stops them and checks the committed offsets.
type handoff struct {
	adm        *kadm.Client
	topic      string
	group      string
	partitions int
	set        *consumedSet
	members    []*groupMember
	cancel     context.CancelFunc
	wg         *sync.WaitGroup
}

// runGroupHandoff produces 100,000 records to an 8-partition topic, then
// consumes them with three members of one group polling concurrently. Once
// a third of the records are consumed the other two pause until the first
// has committed and left (Close sends LeaveGroup), so the leave always
// lands mid-stream; the remaining two then consume the rest. It returns
// once every record has been consumed at least once, with the two
// remaining members still in the group.
func runGroupHandoff(t *testing.T, p *Process, topic, group string, opts ...kgo.Opt) *handoff {
	t.Helper()
	const (
		partitions = 8
		n          = 100_000
	)
	adm := p.Admin(t)
	createTopic(t, adm, topic, partitions, groupTimeout)
	set := newConsumedSet(produceSpread(t, p, topic, partitions, n))

	members := make([]*groupMember, 3)
	for i := range members {
		members[i] = newGroupMember(t, p, fmt.Sprintf("member-%d", i), group, topic, set, opts...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*groupTimeout)
	t.Cleanup(cancel)
	left := make(chan struct{})
	start := time.Now()
	var wg sync.WaitGroup

	// member-0 leaves once a third is consumed and it has consumed
	// something itself (so it owned partitions that must move). It polls
	// with a short deadline so it notices the third while it owns nothing.
	wg.Add(1)
	go func() {
		defer wg.Done()
		m := members[0]
		for ctx.Err() == nil {
			pollCtx, pollCancel := context.WithTimeout(ctx, 100*time.Millisecond)
			m.pollOnce(pollCtx)
			pollCancel()
			if set.total.Load() >= n/3 && m.consumed.Load() > 0 {
				break
			}
		}
		owned := m.ownedPartitions()
		m.commit(context.Background(), m.cl)
		m.cl.Close()
		t.Logf("member-0 left after %v owning %v; %s; group total %d", time.Since(start), owned, m.stats(), set.total.Load())
		close(left)
	}()
	for _, m := range members[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m.pollOnce(ctx) {
				if set.total.Load() >= n/3 {
					select {
					case <-left:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}

	set.waitAllConsumed(t, 2*groupTimeout)
	t.Logf("all %d records consumed in %v", n, time.Since(start))
	for _, m := range members {
		t.Logf("%s", m.stats())
	}
	dups, extra := set.duplicates()
	t.Logf("records consumed more than once: %d (%d extra deliveries; possible only around the leave)", dups, extra)
	return &handoff{adm: adm, topic: topic, group: group, partitions: partitions, set: set, members: members[1:], cancel: cancel, wg: &wg}
}

// finish stops the remaining members' poll loops, commits what they
// polled, checks the committed offsets equal the end offsets, and closes
// them (leaving the group).
func (h *handoff) finish(t *testing.T) {
	t.Helper()
	h.cancel()
	h.wg.Wait()
	for _, m := range h.members {
		m.commit(context.Background(), m.cl)
	}
	checkCommittedAtEnd(t, h.adm, h.group, h.topic, groupTimeout)
	for _, m := range h.members {
		m.cl.Close()
	}
	checkCommittedAtEnd(t, h.adm, h.group, h.topic, groupTimeout)
	var failed int64
	for _, m := range h.members {
		failed += m.commitErrs.Load()
	}
	if failed > 0 {
		t.Logf("failed commits (retried by the next commit or the next owner): %d", failed)
	}
}

// topicPartitions returns the union of the partitions in assignments.
func topicPartitions(assignments map[string][]int32) map[int32]bool {
	all := make(map[int32]bool)
	for _, ps := range assignments {
		for _, p := range ps {
			all[p] = true
		}
	}
	return all
}
