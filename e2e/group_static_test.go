package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupStaticMemberRestart checks static membership (KIP-345): a
// member with a group.instance.id that closes without LeaveGroup (franz-go
// sends none for static members) and comes back with the same instance id
// within the session timeout gets its old partitions back without a
// rebalance: the other member sees no revocation and no new assignment,
// and the broker replaced the old member id with a new one.
func TestGroupStaticMemberRestart(t *testing.T) {
	const (
		topic          = "static-topic"
		group          = "static-group"
		partitions     = 4
		n              = 4_000
		sessionTimeout = 10 * time.Second
	)
	p := startGroupDev(t)
	adm := p.Admin(t)
	createTopic(t, adm, topic, partitions, groupTimeout)
	set := newConsumedSet(produceSpread(t, p, topic, partitions, n))

	static := func(id string) *groupMember {
		return newGroupMember(t, p, id, group, topic, set,
			kgo.InstanceID(id),
			kgo.Balancers(kgo.RangeBalancer()),
			kgo.SessionTimeout(sessionTimeout),
		)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	poll := func(m *groupMember) context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m.pollOnce(ctx) {
			}
		}()
		return cancel
	}

	a, b := static("static-a"), static("static-b")
	stopA := poll(a)
	poll(b)

	before := waitStaticAssignment(t, adm, group, topic, partitions, map[string]*groupMember{"static-a": a, "static-b": b})
	oldA := before["static-a"]
	bAssigned, bRevoked := b.assigned.Load(), b.revoked.Load()
	t.Logf("before restart: %s; %s", a.stats(), b.stats())

	// Close A. As a static member it must not leave: the broker keeps it
	// in the group until its session times out.
	stopA()
	closed := time.Now()
	a.cl.Close()
	d := waitGroupState(t, adm, group, "Stable", 2, groupTimeout)
	if m, ok := memberByInstance(d, "static-a"); !ok || m.MemberID != oldA.MemberID {
		t.Fatalf("after static-a closed, the group has %v; want static-a still a member as %s (no LeaveGroup for a static member)",
			describeMembers(d, topic), oldA.MemberID)
	}

	// Restart A with the same instance id.
	a2 := static("static-a")
	poll(a2)
	after := waitStaticAssignment(t, adm, group, topic, partitions, map[string]*groupMember{"static-a": a2, "static-b": b})
	if elapsed := time.Since(closed); elapsed >= sessionTimeout {
		t.Fatalf("static-a came back %v after closing, not within the %v session timeout; test too slow to check KIP-345", elapsed, sessionTimeout)
	}
	t.Logf("after restart: %s; %s", a2.stats(), b.stats())

	if !slices.Equal(after["static-a"].partitions, oldA.partitions) {
		t.Errorf("static-a got %v after restarting, had %v: a static member rejoining within its session keeps its assignment",
			after["static-a"].partitions, oldA.partitions)
	}
	if after["static-a"].MemberID == oldA.MemberID {
		t.Errorf("static-a kept member id %s; the broker gives a rejoining static member a new one (KIP-345)", oldA.MemberID)
	}
	if !slices.Equal(after["static-b"].partitions, before["static-b"].partitions) {
		t.Errorf("static-b's partitions changed from %v to %v", before["static-b"].partitions, after["static-b"].partitions)
	}
	if got, got2 := b.assigned.Load(), b.revoked.Load(); got != bAssigned || got2 != bRevoked || b.lost.Load() != 0 {
		t.Errorf("static-b saw a rebalance: assigned calls %d→%d, revoked calls %d→%d, lost calls %d; want none",
			bAssigned, got, bRevoked, got2, b.lost.Load())
	}

	// The restarted member carries on where static-a's commits left off.
	set.waitAllConsumed(t, groupTimeout)
}

// staticAssignment is one static member's place in a classic group.
type staticAssignment struct {
	MemberID   string
	partitions []int32
}

// waitStaticAssignment waits until the group is Stable with exactly the
// given members (by instance id), each assigned partitions that its
// client's OnPartitionsAssigned also reported, together covering the
// topic once; it returns each member's assignment by instance id.
func waitStaticAssignment(t testing.TB, adm *kadm.Client, group, topic string, partitions int, members map[string]*groupMember) map[string]staticAssignment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	var out map[string]staticAssignment
	err := pollUntil(ctx, nil, func(ctx context.Context) error {
		described, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		d := described[group]
		if d.Err != nil {
			return d.Err
		}
		if d.State != "Stable" || len(d.Members) != len(members) {
			return fmt.Errorf("state %q, members %v", d.State, describeMembers(d, topic))
		}
		out = make(map[string]staticAssignment)
		for id, gm := range members {
			m, ok := memberByInstance(d, id)
			if !ok {
				return fmt.Errorf("no member with instance id %s: %v", id, describeMembers(d, topic))
			}
			ps := memberAssignment(t, m, topic)
			if len(ps) == 0 {
				return fmt.Errorf("%s has no partitions: %v", id, describeMembers(d, topic))
			}
			if owned := gm.ownedPartitions(); !slices.Equal(owned, ps) {
				return fmt.Errorf("%s's client owns %v, the group assigns it %v", id, owned, ps)
			}
			out[id] = staticAssignment{MemberID: m.MemberID, partitions: ps}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("group %s: static members %v not settled: %v", group, mapsKeys(members), err)
	}
	byMember := make(map[string][]int32)
	for id, a := range out {
		byMember[id] = a.partitions
	}
	checkAssignedOnce(t, byMember, partitions)
	return out
}

func memberByInstance(d kadm.DescribedGroup, id string) (kadm.DescribedGroupMember, bool) {
	for _, m := range d.Members {
		if m.InstanceID != nil && *m.InstanceID == id {
			return m, true
		}
	}
	return kadm.DescribedGroupMember{}, false
}

// describeMembers renders a group's members for a failure message.
func describeMembers(d kadm.DescribedGroup, topic string) []string {
	var out []string
	for _, m := range d.Members {
		id := "<dynamic>"
		if m.InstanceID != nil {
			id = *m.InstanceID
		}
		var ps []int32
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, at := range a.Topics {
				if at.Topic == topic {
					ps = append(ps, at.Partitions...)
				}
			}
		}
		out = append(out, fmt.Sprintf("%s(%s):%v", id, m.MemberID, ps))
	}
	return out
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
