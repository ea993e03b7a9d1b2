package coordinator

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The classic protocol end to end through the Coordinator API (Kafka
// GroupCoordinator handleJoinGroup/handleSyncGroup/handleHeartbeat): two consumers
// join concurrently, each first answered MEMBER_ID_REQUIRED (KIP-394, JoinGroup v4+);
// the leader's SyncGroup assignment reaches the follower; heartbeats of the current
// generation succeed; OffsetCommit is fenced by generation (ILLEGAL_GENERATION);
// DescribeGroups and ListGroups (KIP-518 state filter, KIP-848 type filter,
// case-insensitive) show the Stable group.
func TestClassicGroupFlow(t *testing.T) {
	c := startCoordinator(t, testConfig(), newMemLog(), newView(t, testTopics), 0)
	ctx := testCtx(t)
	members := joinGroupOf(t, c, "g", 2, "orders")

	t.Run("one leader, same generation, each member its share", func(t *testing.T) {
		a, b := members[0], members[1]
		if a.generation != b.generation || a.generation <= 0 {
			t.Fatalf("generations %d and %d, want one positive generation", a.generation, b.generation)
		}
		if a.leader == b.leader {
			t.Fatalf("leader flags %v and %v, want exactly one leader", a.leader, b.leader)
		}
		var got []int32
		for _, m := range members {
			parts := decodeAssignment(t, m.assignment)["orders"]
			if len(parts) != 1 {
				t.Fatalf("member %s got orders %v, want one partition", m.id, parts)
			}
			got = append(got, parts...)
		}
		slices.Sort(got)
		if !slices.Equal(got, []int32{0, 1}) {
			t.Fatalf("assigned orders partitions %v, want [0 1]", got)
		}
	})

	t.Run("heartbeat of the current generation", func(t *testing.T) {
		for _, m := range members {
			if got := c.Heartbeat(ctx, heartbeatRequest("g", m.id, m.generation)).ErrorCode; got != 0 {
				t.Errorf("Heartbeat %s: %s", m.id, codeName(got))
			}
		}
	})

	t.Run("OffsetCommit is fenced by generation", func(t *testing.T) {
		m := members[0]
		tests := []struct {
			name       string
			generation int32
			want       int16
		}{
			{"current generation", m.generation, 0},
			{"stale generation", m.generation - 1, kerr.IllegalGeneration.Code},
			{"future generation", m.generation + 1, kerr.IllegalGeneration.Code},
		}
		for _, tc := range tests {
			req := commitRequest("g", m.id, tc.generation, partitionCommit{topic: "orders", partition: 0, offset: 10, leaderEpoch: 3})
			for tp, got := range commitCodes(c.OffsetCommit(ctx, req)) {
				if got != tc.want {
					t.Errorf("%s: %s answered %s, want %s", tc.name, tp, codeName(got), codeName(tc.want))
				}
			}
		}
		if got := fetchOne(t, c, "g", "orders", 0); got != 10 {
			t.Errorf("committed offset %d, want 10", got)
		}
	})

	t.Run("simple commit into a group with members", func(t *testing.T) {
		// Kafka: a commit without generation and member id is for groups with no
		// members; into a live group it is UNKNOWN_MEMBER_ID.
		req := commitRequest("g", "", -1, partitionCommit{topic: "orders", offset: 99, leaderEpoch: -1})
		for tp, got := range commitCodes(c.OffsetCommit(ctx, req)) {
			if got != kerr.UnknownMemberID.Code {
				t.Errorf("%s: %s, want UNKNOWN_MEMBER_ID", tp, codeName(got))
			}
		}
	})

	t.Run("DescribeGroups", func(t *testing.T) {
		d := describe(ctx, c, "g")
		if d.ErrorCode != 0 || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" {
			t.Fatalf("DescribeGroups = error %s, state %q, type %q, protocol %q; want Stable consumer/range",
				codeName(d.ErrorCode), d.State, d.ProtocolType, d.Protocol)
		}
		var ids []string
		for _, m := range d.Members {
			ids = append(ids, m.MemberID)
		}
		want := []string{members[0].id, members[1].id}
		slices.Sort(ids)
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("described members %v, want %v", ids, want)
		}
	})

	t.Run("ListGroups filters", func(t *testing.T) {
		commitOK(t, c, "offsets-only", partitionCommit{topic: "orders", offset: 1, leaderEpoch: -1})
		tests := []struct {
			name          string
			states, types []string
			want          []string
		}{
			{"no filter", nil, nil, []string{"g", "offsets-only"}},
			{"state stable, any case", []string{"stable"}, nil, []string{"g"}},
			{"state STABLE", []string{"STABLE"}, nil, []string{"g"}},
			{"state empty", []string{"Empty"}, nil, []string{"offsets-only"}},
			{"type classic", nil, []string{"classic"}, []string{"g", "offsets-only"}},
			{"type Classic and state stable", []string{"stable"}, []string{"Classic"}, []string{"g"}},
			{"type consumer", nil, []string{"consumer"}, nil},
		}
		for _, tc := range tests {
			got := listGroups(t, c, tc.states, tc.types)
			var ids []string
			for id := range got {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tc.want) {
				t.Errorf("%s: groups %v, want %v", tc.name, ids, tc.want)
			}
		}
		if g := listGroups(t, c, nil, nil)["g"]; g.ProtocolType != "consumer" || g.GroupState != "Stable" || g.GroupType != "classic" {
			t.Errorf("listed g as %+v, want protocol type consumer, Stable, classic", g)
		}
	})
}
