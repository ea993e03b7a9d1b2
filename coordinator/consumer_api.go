package coordinator

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator/consumer"
	"github.com/strait-io/strait/routing"
)

// ConsumerGroupHeartbeat runs KIP-848's single group RPC.
func (c *Coordinator) ConsumerGroupHeartbeat(ctx context.Context, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	fail := func(code int16) *kmsg.ConsumerGroupHeartbeatResponse {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = code
		return resp
	}
	s, code := c.memberShard(req.Group)
	if code != 0 {
		return fail(code)
	}
	resp, err := do(ctx, s, func(reply func(*kmsg.ConsumerGroupHeartbeatResponse)) {
		g, code := s.consumerFor(req.Group, req.MemberEpoch == 0)
		if code != 0 {
			reply(fail(code))
			return
		}
		reply(g.Heartbeat(time.Now(), req, s.topics()))
	})
	if err != nil {
		return fail(waitErrorCode(err))
	}
	return resp
}

// ConsumerGroupDescribe describes KIP-848 groups.
func (c *Coordinator) ConsumerGroupDescribe(ctx context.Context, req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, group := range req.Groups {
		out := kmsg.NewConsumerGroupDescribeResponseGroup()
		out.Group = group
		s, code := c.shardFor(group)
		if code == 0 {
			got, err := do(ctx, s, func(reply func(kmsg.ConsumerGroupDescribeResponseGroup)) {
				g, ok := s.consumer[group]
				if !ok {
					d := kmsg.NewConsumerGroupDescribeResponseGroup()
					d.Group, d.ErrorCode = group, kerr.GroupIDNotFound.Code
					reply(d)
					return
				}
				reply(g.Describe(s.topics()))
			})
			out, code = got, waitErrorCodeOrZero(err)
		}
		if code != 0 {
			out = kmsg.NewConsumerGroupDescribeResponseGroup()
			out.Group, out.ErrorCode = group, code
		}
		resp.Groups = append(resp.Groups, out)
	}
	return resp
}

// consumerFor returns the KIP-848 group, creating it on a join. A group id used by a
// non-empty classic group is refused; an empty one is replaced.
func (s *shard) consumerFor(group string, joining bool) (*consumer.Group, int16) {
	if g, ok := s.consumer[group]; ok {
		return g, 0
	}
	if !joining {
		return nil, kerr.UnknownMemberID.Code
	}
	if cg, ok := s.classic[group]; ok {
		if st := cg.State(); st != "Empty" && st != "Dead" {
			return nil, kerr.GroupIDNotFound.Code
		}
		delete(s.classic, group)
	}
	g := consumer.New(group, s.c.cfg.Consumer)
	s.consumer[group] = g
	return g, 0
}

func waitErrorCodeOrZero(err error) int16 {
	if err == nil {
		return 0
	}
	return waitErrorCode(err)
}

// topics adapts the routing snapshot to what the KIP-848 assignor needs.
func (s *shard) topics() consumer.Topics { return snapshotTopics{s.c.view.Snapshot()} }

type snapshotTopics struct{ snap *routing.Snapshot }

func (t snapshotTopics) ByName(name string) ([16]byte, int32, bool) {
	topic, ok := t.snap.Topic(name)
	if !ok {
		return [16]byte{}, 0, false
	}
	return [16]byte(topic.ID), int32(len(topic.Partitions)), true
}

func (t snapshotTopics) ByID(id [16]byte) (string, int32, bool) {
	topic, ok := t.snap.TopicByID(routing.TopicID(id))
	if !ok {
		return "", 0, false
	}
	return topic.Name, int32(len(topic.Partitions)), true
}

func (t snapshotTopics) Names() []string { return t.snap.TopicNames() }
