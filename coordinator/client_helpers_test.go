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

// groupInPartition returns a group id that Kafka's hash puts in partition p of n.
func groupInPartition(t *testing.T, prefix string, p, n int32) string {
	t.Helper()
	c := &Coordinator{cfg: Config{Partitions: n}}
	for i := range 10000 {
		g := fmt.Sprintf("%s-%d", prefix, i)
		if c.Partition(g) == p {
			return g
		}
	}
	t.Fatalf("no group id found for partition %d of %d", p, n)
	return ""
}

func joinRequest(group, member string, version int16, sessionMillis int32, topics ...string) *kmsg.JoinGroupRequest {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = topics
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = version
	req.Group = group
	req.MemberID = member
	req.SessionTimeoutMillis = sessionMillis
	req.RebalanceTimeoutMillis = 10_000
	req.ProtocolType = "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	return req
}

func syncRequest(group, member string, generation int32, assignments []kmsg.SyncGroupRequestGroupAssignment) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 3
	req.Group, req.MemberID, req.Generation = group, member, generation
	req.GroupAssignment = assignments
	return req
}

func heartbeatRequest(group, member string, generation int32) *kmsg.HeartbeatRequest {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 3
	req.Group, req.MemberID, req.Generation = group, member, generation
	return req
}

// encodeAssignment is a consumer-protocol assignment of partitions of one topic.
func encodeAssignment(topic string, partitions ...int32) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: topic, Partitions: partitions}}
	return a.AppendTo(nil)
}

func decodeAssignment(t *testing.T, b []byte) map[string][]int32 {
	t.Helper()
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		t.Fatalf("decode assignment: %v", err)
	}
	out := map[string][]int32{}
	for _, tp := range a.Topics {
		out[tp.Topic] = append(out[tp.Topic], tp.Partitions...)
	}
	return out
}

// classicMember is a classic consumer as a test drives it.
type classicMember struct {
	id         string
	generation int32
	leader     bool
	assignment []byte
}

// joinUntilStable runs one classic consumer (JoinGroup v5, with KIP-394's
// MEMBER_ID_REQUIRED round trip) through as many rebalances as it takes until its
// group is Stable with want members. Its leader gives member i of the sorted member
// list partition i (mod 2) of "orders".
func joinUntilStable(ctx context.Context, c *Coordinator, group string, want int, topics ...string) (classicMember, error) {
	m := classicMember{}
	sawMemberIDRequired := false
	for ctx.Err() == nil {
		join := c.JoinGroup(ctx, joinRequest(group, m.id, 5, 10_000, topics...), "client", "127.0.0.1")
		switch join.ErrorCode {
		case kerr.MemberIDRequired.Code:
			m.id, sawMemberIDRequired = join.MemberID, true
			continue
		case kerr.RebalanceInProgress.Code:
			continue
		case 0:
		default:
			return m, fmt.Errorf("JoinGroup: %v", kerr.ErrorForCode(join.ErrorCode))
		}
		if !sawMemberIDRequired {
			return m, fmt.Errorf("JoinGroup v5 without a member id was not answered MEMBER_ID_REQUIRED first (KIP-394)")
		}
		m.id, m.generation, m.leader = join.MemberID, join.Generation, join.LeaderID == join.MemberID
		var assignments []kmsg.SyncGroupRequestGroupAssignment
		if m.leader {
			ids := make([]string, 0, len(join.Members))
			for _, jm := range join.Members {
				ids = append(ids, jm.MemberID)
			}
			slices.Sort(ids)
			for i, id := range ids {
				assignments = append(assignments, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: encodeAssignment("orders", int32(i%2))})
			}
		}
		sync := c.SyncGroup(ctx, syncRequest(group, m.id, m.generation, assignments))
		switch sync.ErrorCode {
		case kerr.RebalanceInProgress.Code:
			continue
		case 0:
		default:
			return m, fmt.Errorf("SyncGroup: %v", kerr.ErrorForCode(sync.ErrorCode))
		}
		m.assignment = sync.MemberAssignment
		stable, err := heartbeatUntilStable(ctx, c, group, m, want)
		if err != nil || stable {
			return m, err
		}
	}
	return m, ctx.Err()
}

// heartbeatUntilStable heartbeats until the group is Stable with want members
// (true) or a rebalance asks the member to rejoin (false).
func heartbeatUntilStable(ctx context.Context, c *Coordinator, group string, m classicMember, want int) (bool, error) {
	for ctx.Err() == nil {
		hb := c.Heartbeat(ctx, heartbeatRequest(group, m.id, m.generation))
		switch hb.ErrorCode {
		case kerr.RebalanceInProgress.Code:
			return false, nil
		case 0:
		default:
			return false, fmt.Errorf("Heartbeat: %v", kerr.ErrorForCode(hb.ErrorCode))
		}
		if d := describe(ctx, c, group); d.State == "Stable" && len(d.Members) == want {
			return true, nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false, ctx.Err()
}

// joinGroupOf runs n consumers concurrently until their group is Stable with all.
func joinGroupOf(t *testing.T, c *Coordinator, group string, n int, topics ...string) []classicMember {
	t.Helper()
	ctx := testCtx(t)
	type result struct {
		m   classicMember
		err error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			m, err := joinUntilStable(ctx, c, group, n, topics...)
			results <- result{m, err}
		}()
	}
	var members []classicMember
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("member of %s: %v", group, r.err)
		}
		members = append(members, r.m)
	}
	return members
}

func describe(ctx context.Context, c *Coordinator, group string) kmsg.DescribeGroupsResponseGroup {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	return c.DescribeGroups(ctx, req).Groups[0]
}

// partitionCommit is one partition of an OffsetCommit.
type partitionCommit struct {
	topic       string
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    *string
}

func commitRequest(group, memberID string, generation int32, parts ...partitionCommit) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	for _, p := range parts {
		i := slices.IndexFunc(req.Topics, func(t kmsg.OffsetCommitRequestTopic) bool { return t.Topic == p.topic })
		if i < 0 {
			req.Topics = append(req.Topics, kmsg.OffsetCommitRequestTopic{Topic: p.topic})
			i = len(req.Topics) - 1
		}
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.partition, p.offset, p.leaderEpoch, p.metadata
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	return req
}

// commitCodes flattens an OffsetCommit answer to "topic/partition" -> code.
func commitCodes(resp *kmsg.OffsetCommitResponse) map[string]int16 {
	out := map[string]int16{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[fmt.Sprintf("%s/%d", t.Topic, p.Partition)] = p.ErrorCode
		}
	}
	return out
}

// commitOK commits as a simple (non-member) consumer and fails the test on any error.
func commitOK(t *testing.T, c *Coordinator, group string, parts ...partitionCommit) {
	t.Helper()
	for tp, code := range commitCodes(c.OffsetCommit(testCtx(t), commitRequest(group, "", -1, parts...))) {
		if code != 0 {
			t.Fatalf("commit %s of %s: %v", tp, group, kerr.ErrorForCode(code))
		}
	}
}

// committed is what OffsetFetch answers for one partition.
type committed struct {
	offset      int64
	leaderEpoch int32
	metadata    string
}

// fetchAll is OffsetFetch v8 for one group and all its topics (nil topics), as
// "topic/partition" -> committed, with the group's error code.
func fetchAll(t *testing.T, c *Coordinator, group string) (map[string]committed, int16) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	req.Groups = []kmsg.OffsetFetchRequestGroup{g}
	resp := c.OffsetFetch(testCtx(t), req)
	if len(resp.Groups) != 1 {
		t.Fatalf("OffsetFetch v8 answered %d groups, want 1", len(resp.Groups))
	}
	return fetchedGroup(t, resp.Groups[0]), resp.Groups[0].ErrorCode
}

func fetchedGroup(t *testing.T, g kmsg.OffsetFetchResponseGroup) map[string]committed {
	t.Helper()
	out := map[string]committed{}
	for _, tp := range g.Topics {
		for _, p := range tp.Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("OffsetFetch %s %s/%d: %v", g.Group, tp.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
			var meta string
			if p.Metadata != nil {
				meta = *p.Metadata
			}
			out[fmt.Sprintf("%s/%d", tp.Topic, p.Partition)] = committed{p.Offset, p.LeaderEpoch, meta}
		}
	}
	return out
}

// fetchOne is OffsetFetch v7 (single group form) for one partition; offset -1 when
// nothing is committed.
func fetchOne(t *testing.T, c *Coordinator, group, topic string, partition int32) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group = group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{partition}}}
	resp := c.OffsetFetch(testCtx(t), req)
	if resp.ErrorCode != 0 {
		t.Fatalf("OffsetFetch %s: %v", group, kerr.ErrorForCode(resp.ErrorCode))
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("OffsetFetch %s %s/%d answered %+v", group, topic, partition, resp.Topics)
	}
	return resp.Topics[0].Partitions[0].Offset
}

func listGroups(t *testing.T, c *Coordinator, states, types []string) map[string]kmsg.ListGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 5
	req.StatesFilter, req.TypesFilter = states, types
	resp := c.ListGroups(testCtx(t), req)
	if resp.ErrorCode != 0 {
		t.Fatalf("ListGroups: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	out := map[string]kmsg.ListGroupsResponseGroup{}
	for _, g := range resp.Groups {
		out[g.Group] = g
	}
	return out
}

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).Error()
}
