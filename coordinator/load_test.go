package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupAPIs calls each group API the routing by group id applies to, returning the
// error code it answered (the first partition's, for per-partition answers).
var groupAPIs = []struct {
	name string
	call func(ctx context.Context, c *Coordinator, group string) int16
}{
	{"JoinGroup", func(ctx context.Context, c *Coordinator, group string) int16 {
		return c.JoinGroup(ctx, joinRequest(group, "", 5, 10_000, "orders"), "client", "host").ErrorCode
	}},
	{"Heartbeat", func(ctx context.Context, c *Coordinator, group string) int16 {
		return c.Heartbeat(ctx, heartbeatRequest(group, "m", 1)).ErrorCode
	}},
	{"OffsetCommit", func(ctx context.Context, c *Coordinator, group string) int16 {
		resp := c.OffsetCommit(ctx, commitRequest(group, "", -1, partitionCommit{topic: "orders", offset: 1, leaderEpoch: -1}))
		return resp.Topics[0].Partitions[0].ErrorCode
	}},
	{"OffsetFetch v7", func(ctx context.Context, c *Coordinator, group string) int16 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group = 7, group
		return c.OffsetFetch(ctx, req).ErrorCode
	}},
	{"OffsetFetch v8", func(ctx context.Context, c *Coordinator, group string) int16 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 8
		req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group}}
		return c.OffsetFetch(ctx, req).Groups[0].ErrorCode
	}},
	{"DescribeGroups", func(ctx context.Context, c *Coordinator, group string) int16 {
		return describe(ctx, c, group).ErrorCode
	}},
}

// Kafka routes a group to the coordinator of partition abs(hash(group)) % N of
// __consumer_offsets: a coordinator that has not loaded that partition answers
// NOT_COORDINATOR so the client looks the coordinator up again.
func TestUnloadedPartitionAnswersNotCoordinator(t *testing.T) {
	cfg := testConfig()
	cfg.Partitions = 2
	c := startCoordinator(t, cfg, newMemLog(), newView(t, testTopics), 0)
	loaded, other := groupInPartition(t, "g", 0, 2), groupInPartition(t, "g", 1, 2)
	ctx := testCtx(t)
	for _, api := range groupAPIs {
		t.Run(api.name, func(t *testing.T) {
			if got := api.call(ctx, c, other); got != kerr.NotCoordinator.Code {
				t.Errorf("group of the unloaded partition: %s, want NOT_COORDINATOR", codeName(got))
			}
			if got := api.call(ctx, c, loaded); got == kerr.NotCoordinator.Code || got == kerr.CoordinatorLoadInProgress.Code {
				t.Errorf("group of the loaded partition: %s, want an answer", codeName(got))
			}
		})
	}
}

// While a coordinator replays its partition (Kafka GroupMetadataManager.loadGroupsAndOffsets)
// it answers COORDINATOR_LOAD_IN_PROGRESS, which clients retry, and serves once done.
func TestLoadingPartitionAnswersLoadInProgress(t *testing.T) {
	log := newMemLog()
	release := log.blockReads()
	defer release()
	c, err := New(testConfig(), log, newView(t, testTopics), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Loaded(); err != nil {
		t.Fatalf("Loaded with nothing loaded: %v", err)
	}
	c.Load(0)
	if err := c.Loaded(); err == nil || !strings.Contains(err.Error(), "partition 0") {
		t.Fatalf("Loaded while partition 0 replays = %v, want an error naming partition 0", err)
	}
	ctx := testCtx(t)
	for _, api := range groupAPIs {
		if got := api.call(ctx, c, "g"); got != kerr.CoordinatorLoadInProgress.Code {
			t.Errorf("%s while loading: %s, want COORDINATOR_LOAD_IN_PROGRESS", api.name, codeName(got))
		}
	}
	req := kmsg.NewPtrListGroupsRequest()
	if got := c.ListGroups(ctx, req).ErrorCode; got != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("ListGroups while loading: %s, want COORDINATOR_LOAD_IN_PROGRESS", codeName(got))
	}
	release()
	eventually(t, "partition 0 loaded", c.Loaded)
	if got := c.JoinGroup(ctx, joinRequest("g", "", 5, 10_000, "orders"), "client", "host").ErrorCode; got != kerr.MemberIDRequired.Code {
		t.Errorf("JoinGroup v5 after loading: %s, want MEMBER_ID_REQUIRED", codeName(got))
	}
}

// Unload (the partition's lease moved) answers NOT_COORDINATOR from then on, also to a
// request that was waiting in the shard, so the member finds the new coordinator.
func TestUnloadAnswersWaitingRequestsNotCoordinator(t *testing.T) {
	c := startCoordinator(t, testConfig(), newMemLog(), newView(t, testTopics), 0)
	ctx := testCtx(t)
	first := joinOnce(t, c, "g")
	// A second member joining starts a rebalance that waits for the first to rejoin.
	waiting := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		second := c.JoinGroup(ctx, joinRequest("g", "", 3, 10_000, "orders"), "client", "host")
		waiting <- second
	}()
	eventually(t, "rebalance under way", func() error {
		if s := describe(ctx, c, "g").State; s != "PreparingRebalance" {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})
	c.Unload(0)
	if got := (<-waiting).ErrorCode; got != kerr.NotCoordinator.Code {
		t.Errorf("waiting JoinGroup after Unload: %s, want NOT_COORDINATOR", codeName(got))
	}
	if got := c.Heartbeat(ctx, heartbeatRequest("g", first.id, first.generation)).ErrorCode; got != kerr.NotCoordinator.Code {
		t.Errorf("Heartbeat after Unload: %s, want NOT_COORDINATOR", codeName(got))
	}
}

// Kafka refuses an empty group id for the group membership APIs (KafkaApis
// isValidGroupId). Strait also caps ids at 4096 bytes so that they, and member ids
// derived from them, fit the int16 string lengths of __consumer_offsets records.
func TestInvalidGroupIDs(t *testing.T) {
	c := startCoordinator(t, testConfig(), newMemLog(), newView(t, testTopics), 0)
	ctx := testCtx(t)
	tests := []struct {
		name  string
		group string
		apis  []string
		want  int16
	}{
		{"empty", "", []string{"JoinGroup", "Heartbeat"}, kerr.InvalidGroupID.Code},
		{"4097 bytes", strings.Repeat("g", 4097), []string{"JoinGroup", "Heartbeat", "OffsetCommit", "OffsetFetch v7", "OffsetFetch v8", "DescribeGroups"}, kerr.InvalidGroupID.Code},
	}
	for _, tc := range tests {
		for _, api := range groupAPIs {
			if !slices.Contains(tc.apis, api.name) {
				continue
			}
			t.Run(tc.name+"/"+api.name, func(t *testing.T) {
				if got := api.call(ctx, c, tc.group); got != tc.want {
					t.Errorf("got %s, want %s", codeName(got), codeName(tc.want))
				}
			})
		}
	}
	t.Run("4096 bytes is accepted", func(t *testing.T) {
		if got := c.JoinGroup(ctx, joinRequest(strings.Repeat("g", 4096), "", 5, 10_000, "orders"), "client", "host").ErrorCode; got != kerr.MemberIDRequired.Code {
			t.Errorf("JoinGroup: %s, want MEMBER_ID_REQUIRED", codeName(got))
		}
	})
}

// Kafka accepts the empty group id for OffsetCommit and OffsetFetch "for backwards
// compatibility" (KafkaApis.isValidGroupId; GroupCoordinatorService.commitOffsets
// checks only for null), where JoinGroup and the other membership APIs refuse it.
func TestEmptyGroupIDCommitAndFetchAllowed(t *testing.T) {
	c := startCoordinator(t, testConfig(), newMemLog(), newView(t, testTopics), 0)
	commitOK(t, c, "", partitionCommit{topic: "orders", offset: 5, leaderEpoch: -1})
	if got := fetchOne(t, c, "", "orders", 0); got != 5 {
		t.Errorf("OffsetFetch of group \"\": %d, want 5", got)
	}
}

// joinOnce runs one member (JoinGroup v3, no MEMBER_ID_REQUIRED) to a Stable group.
func joinOnce(t *testing.T, c *Coordinator, group string) classicMember {
	t.Helper()
	ctx := testCtx(t)
	join := c.JoinGroup(ctx, joinRequest(group, "", 3, 10_000, "orders"), "client", "host")
	if join.ErrorCode != 0 {
		t.Fatalf("JoinGroup: %s", codeName(join.ErrorCode))
	}
	m := classicMember{id: join.MemberID, generation: join.Generation, leader: true}
	assignment := []kmsg.SyncGroupRequestGroupAssignment{{MemberID: m.id, MemberAssignment: encodeAssignment("orders", 0, 1)}}
	sync := c.SyncGroup(ctx, syncRequest(group, m.id, m.generation, assignment))
	if sync.ErrorCode != 0 {
		t.Fatalf("SyncGroup: %s", codeName(sync.ErrorCode))
	}
	m.assignment = sync.MemberAssignment
	return m
}
