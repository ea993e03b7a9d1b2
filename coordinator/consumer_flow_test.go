package coordinator

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func consumerHeartbeat(group, member string, epoch int32, topics ...string) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch = group, member, epoch
	if epoch == 0 {
		req.RebalanceTimeoutMillis = 10_000
		req.SubscribedTopicNames = topics
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	return req
}

// KIP-848: a member joins with epoch 0 and its subscription, and the group
// coordinator computes its assignment server side; ConsumerGroupDescribe shows the
// member with it. A classic JoinGroup for the id of a KIP-848 group with members is
// INCONSISTENT_GROUP_PROTOCOL (Kafka GroupMetadataManager.classicGroupJoin), and the
// group is listed with type "consumer".
func TestConsumerGroupHeartbeatFlow(t *testing.T) {
	c := startCoordinator(t, testConfig(), newMemLog(), newView(t, testTopics), 0)
	ctx := testCtx(t)

	resp := c.ConsumerGroupHeartbeat(ctx, consumerHeartbeat("g", "m1", 0, "orders"))
	if resp.ErrorCode != 0 {
		t.Fatalf("join: %s %v", codeName(resp.ErrorCode), deref(resp.ErrorMessage))
	}
	if resp.MemberEpoch <= 0 || resp.MemberID == nil || *resp.MemberID != "m1" {
		t.Fatalf("join answered epoch %d, member %v; want a positive epoch for m1", resp.MemberEpoch, resp.MemberID)
	}
	var assigned []int32
	if resp.Assignment != nil {
		for _, tp := range resp.Assignment.Topics {
			assigned = append(assigned, tp.Partitions...)
		}
	}
	slices.Sort(assigned)
	if !slices.Equal(assigned, []int32{0, 1}) {
		t.Fatalf("sole member assigned %v, want orders [0 1]", assigned)
	}

	d := describeConsumer(ctx, c, "g")
	if d.ErrorCode != 0 || len(d.Members) != 1 || d.Members[0].MemberID != "m1" || d.Members[0].MemberEpoch != resp.MemberEpoch {
		t.Fatalf("ConsumerGroupDescribe = %+v; want m1 at epoch %d", d, resp.MemberEpoch)
	}
	if !slices.Equal(d.Members[0].SubscribedTopics, []string{"orders"}) {
		t.Errorf("described subscription %v, want [orders]", d.Members[0].SubscribedTopics)
	}
	var described []int32
	for _, tp := range d.Members[0].Assignment.TopicPartitions {
		if tp.Topic != "orders" {
			t.Errorf("described assignment names topic %q, want orders", tp.Topic)
		}
		described = append(described, tp.Partitions...)
	}
	slices.Sort(described)
	if !slices.Equal(described, []int32{0, 1}) {
		t.Errorf("described assignment %v, want [0 1]", described)
	}

	if got := c.JoinGroup(ctx, joinRequest("g", "", 3, 10_000, "orders"), "client", "host").ErrorCode; got != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("classic JoinGroup on a KIP-848 group with members: %s, want INCONSISTENT_GROUP_PROTOCOL", codeName(got))
	}
	if g, ok := listGroups(t, c, nil, []string{"Consumer"})["g"]; !ok || g.GroupType != "consumer" {
		t.Errorf("ListGroups type Consumer: %+v (listed %v), want g of type consumer", g, ok)
	}
	if got := describeConsumer(ctx, c, "unknown").ErrorCode; got != kerr.GroupIDNotFound.Code {
		t.Errorf("ConsumerGroupDescribe of an unknown group: %s, want GROUP_ID_NOT_FOUND", codeName(got))
	}

	// A member commits with its member epoch (KIP-848 OffsetCommit v9).
	req := commitRequest("g", "m1", resp.MemberEpoch, partitionCommit{topic: "orders", offset: 3, leaderEpoch: -1})
	req.Version = 9
	if got := commitCodes(c.OffsetCommit(ctx, req))["orders/0"]; got != 0 {
		t.Errorf("member commit at its epoch: %s", codeName(got))
	}
	req.Generation = resp.MemberEpoch + 1
	if got := commitCodes(c.OffsetCommit(ctx, req))["orders/0"]; got != kerr.StaleMemberEpoch.Code {
		t.Errorf("member commit at a wrong epoch: %s, want STALE_MEMBER_EPOCH", codeName(got))
	}

	// Once the member leaves (epoch -1), a classic group may take the id over.
	if got := c.ConsumerGroupHeartbeat(ctx, consumerHeartbeat("g", "m1", -1)).ErrorCode; got != 0 {
		t.Fatalf("leave: %s", codeName(got))
	}
	if got := c.JoinGroup(ctx, joinRequest("g", "", 3, 10_000, "orders"), "client", "host").ErrorCode; got != 0 {
		t.Errorf("classic JoinGroup after the KIP-848 group emptied: %s, want NONE", codeName(got))
	}
}

func describeConsumer(ctx context.Context, c *Coordinator, group string) kmsg.ConsumerGroupDescribeResponseGroup {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	return c.ConsumerGroupDescribe(ctx, req).Groups[0]
}

// A JoinGroup waits in the coordinator until its rebalance completes. When the
// client's request ends first (its connection closed, or the proxy's request
// deadline), the call returns at once with REQUEST_TIMED_OUT, and the shard, whose
// goroutine never blocked on it, keeps serving every other group.
func TestCancelledWaitReturnsPromptly(t *testing.T) {
	c := startCoordinator(t, testConfig(), newMemLog(), newView(t, testTopics), 0)
	ctx := testCtx(t)
	first := joinOnce(t, c, "g")

	// A second member's join waits for the first to rejoin (up to its 10s rebalance timeout).
	waitCtx, cancel := context.WithCancel(ctx)
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { done <- c.JoinGroup(waitCtx, joinRequest("g", "", 3, 10_000, "orders"), "client", "host") }()
	eventually(t, "rebalance under way", func() error {
		if s := describe(ctx, c, "g").State; s != "PreparingRebalance" {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})
	cancel()
	select {
	case resp := <-done:
		if resp.ErrorCode != kerr.RequestTimedOut.Code {
			t.Errorf("cancelled JoinGroup: %s, want REQUEST_TIMED_OUT", codeName(resp.ErrorCode))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cancelled JoinGroup did not return")
	}

	// The shard still serves: the rebalancing group, and others.
	if got := c.Heartbeat(ctx, heartbeatRequest("g", first.id, first.generation)).ErrorCode; got != kerr.RebalanceInProgress.Code {
		t.Errorf("Heartbeat of the first member: %s, want REBALANCE_IN_PROGRESS", codeName(got))
	}
	commitOK(t, c, "other", partitionCommit{topic: "orders", offset: 1, leaderEpoch: -1})
	if got := fetchOne(t, c, "other", "orders", 0); got != 1 {
		t.Errorf("other group's offset: %d, want 1", got)
	}
	joinOnce(t, c, "third")

	// A request whose ctx has already ended answers at once too.
	ended, cancelEnded := context.WithCancel(ctx)
	cancelEnded()
	if got := c.JoinGroup(ended, joinRequest("g", first.id, 3, 10_000, "orders"), "client", "host").ErrorCode; got != kerr.RequestTimedOut.Code {
		t.Errorf("JoinGroup with an ended ctx: %s, want REQUEST_TIMED_OUT", codeName(got))
	}
}
