package coordinator

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var errAppend = errors.New("injected: not enough replicas")

// Kafka acknowledges an OffsetCommit only once its records are appended with acks=all
// (GroupMetadataManager.storeOffsets); when the append fails the commit answers
// COORDINATOR_NOT_AVAILABLE (NOT_ENOUGH_REPLICAS and the like are mapped to it) and
// the offset is not visible, since the in-memory table is updated only after the write.
func TestCommitIsAcknowledgedOnlyAfterAppend(t *testing.T) {
	log := newMemLog()
	c := startCoordinator(t, testConfig(), log, newView(t, testTopics), 0)
	ctx := testCtx(t)
	commitOK(t, c, "g", partitionCommit{topic: "orders", offset: 5, leaderEpoch: -1})

	log.setAppendErr(errAppend)
	req := commitRequest("g", "", -1,
		partitionCommit{topic: "orders", offset: 7, leaderEpoch: -1},
		partitionCommit{topic: "orders", partition: 1, offset: 8, leaderEpoch: -1})
	for tp, got := range commitCodes(c.OffsetCommit(ctx, req)) {
		if got != kerr.CoordinatorNotAvailable.Code {
			t.Errorf("commit %s while appends fail: %s, want COORDINATOR_NOT_AVAILABLE", tp, codeName(got))
		}
	}
	if got := fetchOne(t, c, "g", "orders", 0); got != 5 {
		t.Errorf("orders/0 after a failed commit: %d, want the earlier 5", got)
	}
	if got := fetchOne(t, c, "g", "orders", 1); got != -1 {
		t.Errorf("orders/1 after a failed commit: %d, want -1 (none)", got)
	}

	log.setAppendErr(nil)
	commitOK(t, c, "g", partitionCommit{topic: "orders", offset: 7, leaderEpoch: -1})
	if got := fetchOne(t, c, "g", "orders", 0); got != 7 {
		t.Errorf("orders/0 after the retried commit: %d, want 7", got)
	}
}

// Kafka rebuilds its groups and offsets by replaying __consumer_offsets when it
// becomes coordinator (GroupMetadataManager.loadGroupsAndOffsets): a new coordinator
// over the same log answers OffsetFetch (v0-7 single group, v8+ groups, null topics
// for all) with the offsets, leader epochs and metadata committed before, and
// restores a Stable classic group with its members, whose heartbeats of the
// persisted generation succeed.
func TestRestartRestoresOffsetsAndGroups(t *testing.T) {
	log := newMemLog()
	view := newView(t, testTopics)
	first := startCoordinator(t, testConfig(), log, view, 0)
	ctx := testCtx(t)

	members := joinGroupOf(t, first, "live", 2, "orders")
	m := members[0]
	meta := "checkpoint-7"
	req := commitRequest("live", m.id, m.generation, partitionCommit{topic: "orders", partition: 1, offset: 42, leaderEpoch: 4, metadata: &meta})
	for tp, got := range commitCodes(first.OffsetCommit(ctx, req)) {
		if got != 0 {
			t.Fatalf("member commit %s: %s", tp, codeName(got))
		}
	}
	empty := ""
	commitOK(t, first, "simple",
		partitionCommit{topic: "orders", partition: 0, offset: 100, leaderEpoch: 2, metadata: &empty},
		partitionCommit{topic: "payments", partition: 0, offset: 200, leaderEpoch: 9, metadata: &meta})
	commitOK(t, first, "simple", partitionCommit{topic: "orders", partition: 0, offset: 101, leaderEpoch: 3}) // later commit wins
	first.Close()

	second := startCoordinator(t, testConfig(), log, view, 0)

	t.Run("OffsetFetch v8, null topics", func(t *testing.T) {
		got, code := fetchAll(t, second, "simple")
		want := map[string]committed{"orders/0": {101, 3, ""}, "payments/0": {200, 9, meta}}
		if code != 0 || !maps.Equal(got, want) {
			t.Fatalf("simple: %v, %s; want %v", got, codeName(code), want)
		}
	})

	t.Run("OffsetFetch v8, several groups", func(t *testing.T) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 8
		req.Groups = []kmsg.OffsetFetchRequestGroup{
			{Group: "live", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "orders", Partitions: []int32{0, 1}}}},
			{Group: "simple", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "payments", Partitions: []int32{0}}}},
		}
		resp := second.OffsetFetch(ctx, req)
		if len(resp.Groups) != 2 || resp.Groups[0].Group != "live" || resp.Groups[1].Group != "simple" {
			t.Fatalf("answered groups %+v, want live and simple in order", resp.Groups)
		}
		want := []map[string]committed{
			{"orders/0": {-1, -1, ""}, "orders/1": {42, 4, meta}},
			{"payments/0": {200, 9, meta}},
		}
		for i, g := range resp.Groups {
			if got := fetchedGroup(t, g); g.ErrorCode != 0 || !maps.Equal(got, want[i]) {
				t.Errorf("%s: %v, %s; want %v", g.Group, got, codeName(g.ErrorCode), want[i])
			}
		}
	})

	t.Run("OffsetFetch v7 single group", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			topics []kmsg.OffsetFetchRequestTopic
			want   map[string]committed
		}{
			{"named partitions", []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{1}}}, map[string]committed{"orders/1": {42, 4, meta}}},
			{"null topics", nil, map[string]committed{"orders/1": {42, 4, meta}}},
		} {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version = 7
			req.Group, req.Topics = "live", tc.topics
			resp := second.OffsetFetch(ctx, req)
			got := map[string]committed{}
			for _, tp := range resp.Topics {
				for _, p := range tp.Partitions {
					got[fmt.Sprintf("%s/%d", tp.Topic, p.Partition)] = committed{p.Offset, p.LeaderEpoch, deref(p.Metadata)}
				}
			}
			if resp.ErrorCode != 0 || !maps.Equal(got, tc.want) {
				t.Errorf("%s: %v, %s; want %v", tc.name, got, codeName(resp.ErrorCode), tc.want)
			}
		}
	})

	t.Run("Stable group restored", func(t *testing.T) {
		d := describe(ctx, second, "live")
		var ids, want []string
		for _, dm := range d.Members {
			ids = append(ids, dm.MemberID)
		}
		for _, m := range members {
			want = append(want, m.id)
		}
		slices.Sort(ids)
		slices.Sort(want)
		if d.State != "Stable" || !slices.Equal(ids, want) {
			t.Fatalf("restored group: state %s, members %v; want Stable with %v", d.State, ids, want)
		}
		for _, m := range members {
			if got := second.Heartbeat(ctx, heartbeatRequest("live", m.id, m.generation)).ErrorCode; got != 0 {
				t.Errorf("Heartbeat of %s at generation %d after restart: %s", m.id, m.generation, codeName(got))
			}
		}
		req := commitRequest("live", m.id, m.generation, partitionCommit{topic: "orders", partition: 1, offset: 43, leaderEpoch: 4})
		for tp, got := range commitCodes(second.OffsetCommit(ctx, req)) {
			if got != 0 {
				t.Errorf("member commit %s after restart: %s", tp, codeName(got))
			}
		}
	})
}

// Kafka's SyncGroup stores the leader's assignment (GroupMetadataManager.storeGroup)
// before anyone hears of it; if the append fails, the members get the error
// (COORDINATOR_NOT_AVAILABLE, mapped from NOT_ENOUGH_REPLICAS etc.) and the group
// rebalances (GroupCoordinator.doSyncGroup: resetAndPropagateAssignmentError), so no
// member runs on a generation that a restart would forget.
func TestSyncGroupFailsWhenGroupMetadataIsNotWritten(t *testing.T) {
	log := newMemLog()
	c := startCoordinator(t, testConfig(), log, newView(t, testTopics), 0)
	ctx := testCtx(t)
	join := c.JoinGroup(ctx, joinRequest("g", "", 3, 10_000, "orders"), "client", "host")
	if join.ErrorCode != 0 {
		t.Fatalf("JoinGroup: %s", codeName(join.ErrorCode))
	}
	log.setAppendErr(errAppend)
	assignment := []kmsg.SyncGroupRequestGroupAssignment{{MemberID: join.MemberID, MemberAssignment: encodeAssignment("orders", 0, 1)}}
	sync := c.SyncGroup(ctx, syncRequest("g", join.MemberID, join.Generation, assignment))
	if sync.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("SyncGroup while the group cannot be written: %s, want COORDINATOR_NOT_AVAILABLE", codeName(sync.ErrorCode))
	}
	if s := describe(ctx, c, "g").State; s == "Stable" {
		t.Errorf("group is %s although its assignment was never written", s)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
