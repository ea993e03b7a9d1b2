package coordinator

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// retentionConfig expires offsets after 50ms, checked every 5ms.
func retentionConfig() Config {
	cfg := testConfig()
	cfg.OffsetsRetention = 50 * time.Millisecond
	cfg.RetentionCheckInterval = 5 * time.Millisecond
	return cfg
}

// KIP-211: the committed offsets of a group with no members expire
// offsets.retention.minutes after it became empty (or after their commit); Kafka
// writes a tombstone for each, and the periodic cleanup then removes the group,
// tombstoning its metadata (GroupMetadataManager.cleanupGroupMetadata).
func TestRetentionExpiresEmptyGroups(t *testing.T) {
	log := newMemLog()
	view := newView(t, testTopics)
	c := startCoordinator(t, retentionConfig(), log, view, 0)
	ctx := testCtx(t)
	commitOK(t, c, "simple", partitionCommit{topic: "orders", offset: 1, leaderEpoch: -1})

	// A classic group whose only member left: Empty, with metadata in the log.
	m := joinOnce(t, c, "left")
	req := commitRequest("left", m.id, m.generation, partitionCommit{topic: "payments", offset: 2, leaderEpoch: -1})
	if got := commitCodes(c.OffsetCommit(ctx, req))["payments/0"]; got != 0 {
		t.Fatalf("commit to left: %s", codeName(got))
	}
	if got := c.LeaveGroup(ctx, leaveRequest("left", m.id)).ErrorCode; got != 0 {
		t.Fatalf("LeaveGroup: %s", codeName(got))
	}

	for _, g := range []string{"simple", "left"} {
		eventually(t, g+" forgotten", func() error {
			if all, _ := fetchAll(t, c, g); len(all) != 0 {
				return fmt.Errorf("offsets %v", all)
			}
			if _, ok := listGroups(t, c, nil, nil)[g]; ok {
				return fmt.Errorf("still listed")
			}
			return nil
		})
	}
	if s := describe(ctx, c, "left").State; s != "Dead" {
		t.Errorf("left after retention: %s, want Dead (forgotten)", s)
	}
	tombstones := map[string]bool{}
	for _, r := range log.records(t, 0) {
		switch {
		case r.IsGroup && r.Metadata == nil:
			tombstones["group "+r.Group] = true
		case r.IsOffset && r.Commit == nil:
			tombstones[fmt.Sprintf("%s %s/%d", r.Group, r.Topic, r.Partition)] = true
		}
	}
	for _, w := range []string{"simple orders/0", "left payments/0", "group left"} {
		if !tombstones[w] {
			t.Errorf("no tombstone for %s (have %v)", w, tombstones)
		}
	}

	c.Close()
	again := startCoordinator(t, retentionConfig(), log, view, 0)
	if got := listGroups(t, again, nil, nil); len(got) != 0 {
		t.Errorf("a replay brought back %v", got)
	}
}

// KIP-211: while a consumer group has members, the offsets of topics it consumes never
// expire; only those of topics it no longer consumes do (GroupMetadata.removeExpiredOffsets
// with subscribedTopics).
func TestRetentionKeepsOffsetsOfConsumedTopics(t *testing.T) {
	c := startCoordinator(t, retentionConfig(), newMemLog(), newView(t, testTopics), 0)
	ctx := testCtx(t)
	m := joinOnce(t, c, "g") // consumes orders 0 and 1
	req := commitRequest("g", m.id, m.generation,
		partitionCommit{topic: "orders", offset: 1, leaderEpoch: -1},
		partitionCommit{topic: "payments", offset: 2, leaderEpoch: -1})
	for tp, got := range commitCodes(c.OffsetCommit(ctx, req)) {
		if got != 0 {
			t.Fatalf("commit %s: %s", tp, codeName(got))
		}
	}
	eventually(t, "payments (not consumed) expired", func() error {
		if got := fetchOne(t, c, "g", "payments", 0); got != -1 {
			return fmt.Errorf("payments/0 = %d", got)
		}
		return nil
	})
	// Several more retention periods: what is consumed stays.
	time.Sleep(3 * retentionConfig().OffsetsRetention)
	if got := fetchOne(t, c, "g", "orders", 0); got != 1 {
		t.Errorf("orders/0 of the live group: %d, want 1", got)
	}
	if s := describe(ctx, c, "g").State; s != "Stable" {
		t.Errorf("live group: %s, want Stable", s)
	}
}

// Kafka expires nothing of a group with members unless it is a Stable "consumer"
// protocol group whose subscriptions it knows (GroupMetadata.removeExpiredOffsets:
// `case _ => Map()`): mid-rebalance the assignment is in flux, and other protocols'
// assignments are opaque.
func TestRetentionKeepsOffsetsDuringRebalance(t *testing.T) {
	c := startCoordinator(t, retentionConfig(), newMemLog(), newView(t, testTopics), 0)
	ctx := testCtx(t)
	m := joinOnce(t, c, "g")
	req := commitRequest("g", m.id, m.generation, partitionCommit{topic: "orders", offset: 1, leaderEpoch: -1})
	if got := commitCodes(c.OffsetCommit(ctx, req))["orders/0"]; got != 0 {
		t.Fatalf("commit: %s", codeName(got))
	}
	// A second member starts a rebalance that waits up to the first member's 10s
	// rebalance timeout for it to rejoin.
	go c.JoinGroup(ctx, joinRequest("g", "", 3, 10_000, "orders"), "client", "host")
	eventually(t, "rebalancing", func() error {
		if s := describe(ctx, c, "g").State; s != "PreparingRebalance" {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})
	time.Sleep(3 * retentionConfig().OffsetsRetention)
	if got := fetchOne(t, c, "g", "orders", 0); got != 1 {
		t.Errorf("orders/0 of a rebalancing group: %d, want 1", got)
	}
}

func leaveRequest(group, member string) *kmsg.LeaveGroupRequest {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version, req.Group, req.MemberID = 2, group, member
	return req
}
