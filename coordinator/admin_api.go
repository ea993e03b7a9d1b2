package coordinator

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator/offsets"
)

// DescribeGroups describes classic groups (and, as Kafka does, reports KIP-848 groups
// with their state but no classic member detail).
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, group := range req.Groups {
		resp.Groups = append(resp.Groups, c.describeGroup(ctx, group))
	}
	return resp
}

func (c *Coordinator) describeGroup(ctx context.Context, group string) kmsg.DescribeGroupsResponseGroup {
	out := kmsg.NewDescribeGroupsResponseGroup()
	out.Group = group
	s, code := c.shardFor(group)
	if code != 0 {
		out.ErrorCode = code
		return out
	}
	got, err := do(ctx, s, func(reply func(kmsg.DescribeGroupsResponseGroup)) {
		if g, ok := s.classic[group]; ok {
			reply(g.Describe())
			return
		}
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group, d.State = group, "Dead"
		if g, ok := s.consumer[group]; ok {
			d.State, d.ProtocolType = g.State(), "consumer"
		} else if len(s.table.Group(group)) > 0 {
			d.State = "Empty" // offsets only: Kafka shows such groups as empty classic groups
		}
		reply(d)
	})
	if err != nil {
		out.ErrorCode = waitErrorCode(err)
		return out
	}
	return got
}

// ListGroups lists every group of every loaded partition, filtered by state (v4+)
// and type (v5+), case-insensitively as Kafka does.
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	for _, s := range c.allShards() {
		if !s.ready() {
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
			continue
		}
		groups, err := do(ctx, s, func(reply func([]kmsg.ListGroupsResponseGroup)) { reply(s.listGroups()) })
		if err != nil {
			resp.ErrorCode = waitErrorCode(err)
			continue
		}
		for _, g := range groups {
			if matches(req.StatesFilter, g.GroupState) && matches(req.TypesFilter, g.GroupType) {
				resp.Groups = append(resp.Groups, g)
			}
		}
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}

func (s *shard) listGroups() []kmsg.ListGroupsResponseGroup {
	var out []kmsg.ListGroupsResponseGroup
	seen := map[string]bool{}
	for id, g := range s.classic {
		if g.State() == "Dead" {
			continue
		}
		seen[id] = true
		out = append(out, kmsg.ListGroupsResponseGroup{Group: id, ProtocolType: g.ProtocolType(), GroupState: g.State(), GroupType: "classic"})
	}
	for id, g := range s.consumer {
		if g.State() == "Dead" {
			continue
		}
		seen[id] = true
		out = append(out, kmsg.ListGroupsResponseGroup{Group: id, ProtocolType: "consumer", GroupState: g.State(), GroupType: "consumer"})
	}
	for _, id := range s.table.Groups() {
		if !seen[id] {
			out = append(out, kmsg.ListGroupsResponseGroup{Group: id, GroupState: "Empty", GroupType: "classic"})
		}
	}
	return out
}

func matches(filter []string, value string) bool {
	return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, value) })
}

// DeleteGroups deletes empty groups and their committed offsets.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, group := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = group
		s, code := c.shardFor(group)
		if code == 0 {
			var err error
			code, err = do(ctx, s, func(reply func(int16)) { reply(s.deleteGroup(group)) })
			if err != nil {
				code = waitErrorCode(err)
			}
		}
		rg.ErrorCode = code
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (s *shard) deleteGroup(group string) int16 {
	classicGroup, isClassic := s.classic[group]
	consumerGroup, isConsumer := s.consumer[group]
	hasOffsets := len(s.table.Group(group)) > 0
	switch {
	case !isClassic && !isConsumer && !hasOffsets:
		return kerr.GroupIDNotFound.Code
	case isClassic && classicGroup.State() == "Dead" && !hasOffsets:
		return kerr.GroupIDNotFound.Code
	case isClassic && classicGroup.State() != "Empty" && classicGroup.State() != "Dead":
		return kerr.NonEmptyGroup.Code
	case isConsumer && !consumerGroup.Empty():
		return kerr.NonEmptyGroup.Code
	}
	var kvs []offsets.KV
	for topic, parts := range s.table.Group(group) {
		for p := range parts {
			key, value := offsets.OffsetTombstone(group, topic, p)
			kvs = append(kvs, offsets.KV{Key: key, Value: value})
		}
	}
	key, value := offsets.GroupTombstone(group)
	kvs = append(kvs, offsets.KV{Key: key, Value: value})
	if err := s.write(s.eventParent(), kvs); err != nil {
		s.c.logger.Warn("deleting group failed", "group", group, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	if isClassic {
		classicGroup.Delete()
		delete(s.classic, group)
	}
	delete(s.consumer, group)
	delete(s.emptySince, group)
	s.table.Delete(group)
	return 0
}

// assignedTopics reads the topics out of a classic consumer-protocol assignment;
// other protocols' assignments are opaque and name none.
func assignedTopics(assignment []byte) []string {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil
	}
	var topics []string
	for _, t := range a.Topics {
		topics = append(topics, t.Topic)
	}
	return topics
}
