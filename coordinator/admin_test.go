package coordinator

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka lets a consumer outside any group membership (assign() with a group.id, or an
// admin tool) commit with generation -1 and no member id while the group has no
// members (GroupCoordinator.handleCommitOffsets creates the group); such groups are
// listed as Empty. Each partition is checked on its own: metadata over
// offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE and an unknown topic or
// partition UNKNOWN_TOPIC_OR_PARTITION, for that partition only.
func TestSimpleCommits(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMetadataBytes = 8
	c := startCoordinator(t, cfg, newMemLog(), newView(t, testTopics), 0)
	ctx := testCtx(t)
	fits, tooLarge := strings.Repeat("m", 8), strings.Repeat("m", 9)

	tests := []struct {
		name       string
		generation int32
		memberID   string
		parts      []partitionCommit
		want       map[string]int16
	}{
		{
			name: "generation -1, no member id", generation: -1,
			parts: []partitionCommit{{topic: "orders", offset: 1, leaderEpoch: -1, metadata: &fits}},
			want:  map[string]int16{"orders/0": 0},
		},
		{
			name: "per-partition errors", generation: -1,
			parts: []partitionCommit{
				{topic: "orders", partition: 1, offset: 2, leaderEpoch: -1, metadata: &tooLarge},
				{topic: "orders", partition: 0, offset: 3, leaderEpoch: -1},
				{topic: "orders", partition: 2, offset: 4, leaderEpoch: -1},
				{topic: "nope", partition: 0, offset: 5, leaderEpoch: -1},
				{topic: "payments", partition: 0, offset: 6, leaderEpoch: -1},
			},
			want: map[string]int16{
				"orders/1":   kerr.OffsetMetadataTooLarge.Code,
				"orders/0":   0,
				"orders/2":   kerr.UnknownTopicOrPartition.Code,
				"nope/0":     kerr.UnknownTopicOrPartition.Code,
				"payments/0": 0,
			},
		},
		{
			// No group to be a member of: Kafka answers ILLEGAL_GENERATION (a member
			// commit to an unknown group), never creating the group.
			name: "member commit to an unknown group", generation: 3, memberID: "ghost",
			parts: []partitionCommit{{topic: "orders", offset: 7, leaderEpoch: -1}},
			want:  map[string]int16{"orders/0": kerr.IllegalGeneration.Code},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			group := "simple-" + strings.ReplaceAll(tc.name, " ", "-")
			got := commitCodes(c.OffsetCommit(ctx, commitRequest(group, tc.memberID, tc.generation, tc.parts...)))
			for tp, want := range tc.want {
				if got[tp] != want {
					t.Errorf("%s: %s, want %s", tp, codeName(got[tp]), codeName(want))
				}
			}
		})
	}

	offsetsOf, _ := fetchAll(t, c, "simple-per-partition-errors")
	if want := map[string]committed{"orders/0": {3, -1, ""}, "payments/0": {6, -1, ""}}; len(offsetsOf) != len(want) || offsetsOf["orders/0"] != want["orders/0"] || offsetsOf["payments/0"] != want["payments/0"] {
		t.Errorf("committed %v, want only the valid partitions %v", offsetsOf, want)
	}
	listed := listGroups(t, c, nil, nil)
	for _, id := range []string{"simple-generation--1,-no-member-id", "simple-per-partition-errors"} {
		if g, ok := listed[id]; !ok || g.GroupState != "Empty" || g.GroupType != "classic" {
			t.Errorf("ListGroups %s = %+v (listed %v), want Empty classic", id, g, ok)
		}
	}
	if _, ok := listed["simple-member-commit-to-an-unknown-group"]; ok {
		t.Errorf("a refused commit created a group")
	}
}

// OffsetCommit v0-5 carry no leader epoch; Strait stores -1 for them, as Kafka does
// (OffsetCommitRequest leaderEpoch is "ignorable" before v6).
func TestOldOffsetCommitHasNoLeaderEpoch(t *testing.T) {
	c := startCoordinator(t, testConfig(), newMemLog(), newView(t, testTopics), 0)
	req := commitRequest("g", "", -1, partitionCommit{topic: "orders", offset: 9, leaderEpoch: 5})
	req.Version = 5
	for tp, got := range commitCodes(c.OffsetCommit(testCtx(t), req)) {
		if got != 0 {
			t.Fatalf("commit %s: %s", tp, codeName(got))
		}
	}
	if got, _ := fetchAll(t, c, "g"); got["orders/0"] != (committed{9, -1, ""}) {
		t.Errorf("committed %v, want offset 9 with leader epoch -1", got["orders/0"])
	}
}

func deleteGroups(t *testing.T, c *Coordinator, groups ...string) map[string]int16 {
	t.Helper()
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = 2
	req.Groups = groups
	out := map[string]int16{}
	for _, g := range c.DeleteGroups(testCtx(t), req).Groups {
		out[g.Group] = g.ErrorCode
	}
	return out
}

// Kafka's DeleteGroups (GroupCoordinator.handleDeleteGroups) refuses a group with
// members (NON_EMPTY_GROUP), answers GROUP_ID_NOT_FOUND for an unknown group, and for
// an empty group writes tombstones for its metadata and every offset, so a coordinator
// that replays the partition does not bring it back.
func TestDeleteGroups(t *testing.T) {
	log := newMemLog()
	view := newView(t, testTopics)
	c := startCoordinator(t, testConfig(), log, view, 0)
	ctx := testCtx(t)
	joinOnce(t, c, "busy")
	commitOK(t, c, "idle", partitionCommit{topic: "orders", offset: 11, leaderEpoch: -1}, partitionCommit{topic: "payments", offset: 12, leaderEpoch: -1})

	// A classic group that had a member and became Empty has metadata to tombstone.
	left := joinOnce(t, c, "left")
	commitReq := commitRequest("left", left.id, left.generation, partitionCommit{topic: "orders", offset: 13, leaderEpoch: -1})
	if got := commitCodes(c.OffsetCommit(ctx, commitReq))["orders/0"]; got != 0 {
		t.Fatalf("commit to left: %s", codeName(got))
	}
	if got := c.LeaveGroup(ctx, leaveRequest("left", left.id)).ErrorCode; got != 0 {
		t.Fatalf("LeaveGroup: %s", codeName(got))
	}

	got := deleteGroups(t, c, "busy", "idle", "left", "unknown")
	want := map[string]int16{"busy": kerr.NonEmptyGroup.Code, "idle": 0, "left": 0, "unknown": kerr.GroupIDNotFound.Code}
	for g, w := range want {
		if got[g] != w {
			t.Errorf("DeleteGroups %s: %s, want %s", g, codeName(got[g]), codeName(w))
		}
	}
	if got := deleteGroups(t, c, "idle")["idle"]; got != kerr.GroupIDNotFound.Code {
		t.Errorf("deleting idle again: %s, want GROUP_ID_NOT_FOUND", codeName(got))
	}

	check := func(t *testing.T, c *Coordinator) {
		for _, g := range []string{"idle", "left"} {
			if got := fetchOne(t, c, g, "orders", 0); got != -1 {
				t.Errorf("OffsetFetch %s orders/0 after delete: %d, want -1", g, got)
			}
			if all, _ := fetchAll(t, c, g); len(all) != 0 {
				t.Errorf("OffsetFetch %s (all) after delete: %v, want none", g, all)
			}
			if _, ok := listGroups(t, c, nil, nil)[g]; ok {
				t.Errorf("ListGroups still lists %s", g)
			}
			if s := describe(ctx, c, g).State; s != "Dead" {
				t.Errorf("DescribeGroups %s: %s, want Dead", g, s)
			}
		}
		if s := describe(ctx, c, "busy").State; s != "Stable" {
			t.Errorf("busy: %s, want still Stable", s)
		}
	}
	check(t, c)

	t.Run("tombstones written", func(t *testing.T) {
		c.Close()
		check(t, startCoordinator(t, testConfig(), log, view, 0))
		tombstones := map[string]bool{}
		for _, r := range log.records(t, 0) {
			switch {
			case r.IsGroup && r.Metadata == nil:
				tombstones["group "+r.Group] = true
			case r.IsOffset && r.Commit == nil:
				tombstones[r.Group+" "+r.Topic] = true
			}
		}
		for _, w := range []string{"group idle", "group left", "idle orders", "idle payments", "left orders"} {
			if !tombstones[w] {
				t.Errorf("no tombstone for %s in the log (have %v)", w, tombstones)
			}
		}
	})
}

// Kafka's OffsetDelete (KIP-496) removes committed offsets of topics the group does
// not consume, and answers GROUP_SUBSCRIBED_TO_TOPIC for a partition of a topic its
// members consume; an unknown group is GROUP_ID_NOT_FOUND.
func TestOffsetDelete(t *testing.T) {
	c := startCoordinator(t, testConfig(), newMemLog(), newView(t, testTopics), 0)
	ctx := testCtx(t)
	m := joinOnce(t, c, "g") // assigned orders 0 and 1
	commitReq := commitRequest("g", m.id, m.generation,
		partitionCommit{topic: "orders", offset: 1, leaderEpoch: -1},
		partitionCommit{topic: "payments", offset: 2, leaderEpoch: -1})
	for tp, got := range commitCodes(c.OffsetCommit(ctx, commitReq)) {
		if got != 0 {
			t.Fatalf("commit %s: %s", tp, codeName(got))
		}
	}
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "g"
	req.Topics = []kmsg.OffsetDeleteRequestTopic{
		{Topic: "orders", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "payments", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
	}
	resp := c.OffsetDelete(ctx, req)
	if resp.ErrorCode != 0 {
		t.Fatalf("OffsetDelete: %s", codeName(resp.ErrorCode))
	}
	want := map[string]int16{"orders": kerr.GroupSubscribedToTopic.Code, "payments": 0}
	for _, tp := range resp.Topics {
		if got := tp.Partitions[0].ErrorCode; got != want[tp.Topic] {
			t.Errorf("OffsetDelete %s/0: %s, want %s", tp.Topic, codeName(got), codeName(want[tp.Topic]))
		}
	}
	if got := fetchOne(t, c, "g", "payments", 0); got != -1 {
		t.Errorf("payments/0 after OffsetDelete: %d, want -1", got)
	}
	if got := fetchOne(t, c, "g", "orders", 0); got != 1 {
		t.Errorf("orders/0 (consumed) after OffsetDelete: %d, want 1", got)
	}
	req.Group = "unknown"
	if got := c.OffsetDelete(ctx, req).ErrorCode; got != kerr.GroupIDNotFound.Code {
		t.Errorf("OffsetDelete of an unknown group: %s, want GROUP_ID_NOT_FOUND", codeName(got))
	}
}
