package coordinator

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"

	"github.com/strait-io/strait/coordinator/classic"
)

// JoinGroup joins a member to a classic group, waiting for the rebalance to complete.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest, clientID, clientHost string) (resp *kmsg.JoinGroupResponse) {
	ctx, span := startGroupSpan(ctx, "join", req.Group)
	defer func() {
		endGroupSpan(span, resp.ErrorCode, attribute.String(memberAttr, resp.MemberID), attribute.Int(generationAttr, int(resp.Generation)))
	}()
	fail := func(code int16) *kmsg.JoinGroupResponse {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.Generation, resp.MemberID, resp.ErrorCode = -1, req.MemberID, code
		return resp
	}
	s, code := c.memberShard(req.Group)
	if code != 0 {
		return fail(code)
	}
	resp, err := do(ctx, s, func(reply func(*kmsg.JoinGroupResponse)) {
		g, code := s.classicForJoin(req.Group)
		if code != 0 {
			reply(fail(code))
			return
		}
		g.Join(time.Now(), req, clientID, clientHost, reply)
	})
	if err != nil {
		return fail(waitErrorCode(err))
	}
	return resp
}

// SyncGroup hands out the leader's assignment, waiting for the leader if needed.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) (resp *kmsg.SyncGroupResponse) {
	ctx, span := startGroupSpan(ctx, "sync", req.Group)
	defer func() {
		endGroupSpan(span, resp.ErrorCode, attribute.String(memberAttr, req.MemberID), attribute.Int(generationAttr, int(req.Generation)))
	}()
	fail := func(code int16) *kmsg.SyncGroupResponse {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	s, code := c.memberShard(req.Group)
	if code != 0 {
		return fail(code)
	}
	retry := func() *kmsg.SyncGroupResponse { return fail(kerr.CoordinatorNotAvailable.Code) }
	resp, err := doOr(ctx, s, retry, func(reply func(*kmsg.SyncGroupResponse)) {
		g, ok := s.classic[req.Group]
		if !ok {
			reply(fail(kerr.UnknownMemberID.Code))
			return
		}
		g.Sync(time.Now(), req, reply)
	})
	if err != nil {
		return fail(waitErrorCode(err))
	}
	return resp
}

// Heartbeat keeps a classic member's session alive.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	fail := func(code int16) *kmsg.HeartbeatResponse {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	}
	s, code := c.memberShard(req.Group)
	if code != 0 {
		return fail(code)
	}
	resp, err := do(ctx, s, func(reply func(*kmsg.HeartbeatResponse)) {
		g, ok := s.classic[req.Group]
		if !ok {
			reply(fail(kerr.UnknownMemberID.Code))
			return
		}
		reply(g.Heartbeat(time.Now(), req))
	})
	if err != nil {
		return fail(waitErrorCode(err))
	}
	return resp
}

// LeaveGroup removes members from a classic group.
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	fail := func(code int16) *kmsg.LeaveGroupResponse {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	s, code := c.memberShard(req.Group)
	if code != 0 {
		return fail(code)
	}
	resp, err := do(ctx, s, func(reply func(*kmsg.LeaveGroupResponse)) {
		g, ok := s.classic[req.Group]
		if !ok {
			reply(fail(kerr.UnknownMemberID.Code))
			return
		}
		reply(g.Leave(time.Now(), req))
	})
	if err != nil {
		return fail(waitErrorCode(err))
	}
	return resp
}

// classicForJoin returns the classic group to join, creating it if needed. A group id
// already used by a non-empty KIP-848 group is refused; an empty one is replaced.
func (s *shard) classicForJoin(group string) (*classic.Group, int16) {
	if g, ok := s.classic[group]; ok && g.State() != "Dead" {
		return g, 0
	}
	if cg, ok := s.consumer[group]; ok {
		if !cg.Empty() {
			return nil, kerr.InconsistentGroupProtocol.Code
		}
		delete(s.consumer, group)
	}
	g := classic.New(group, s.c.cfg.Classic)
	s.adoptClassic(group, g)
	return g, 0
}

// waitErrorCode is the answer for a request that could not wait for its reply: the
// partition moved away (NOT_COORDINATOR, so the client looks again) or the client
// went away or timed out.
func waitErrorCode(err error) int16 {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return kerr.RequestTimedOut.Code
	}
	return kerr.NotCoordinator.Code
}
