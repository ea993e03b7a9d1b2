package classic

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup, versions 0-5. v0-2 name one member id; v3 (KIP-345) takes a batch of
// members, each by member id and/or instance id, and answers each one.

// Leave handles a LeaveGroup request. Each member removed rebalances the group (or
// completes the rebalance under way, or leaves the group Empty).
func (g *Group) Leave(now time.Time, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	defer g.flush()
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = req.Version
	if g.state == stateDead {
		resp.ErrorCode = codeCoordinatorNotAvailable
		return resp
	}
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	for _, l := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = l.MemberID, l.InstanceID
		rm.ErrorCode = g.leaveOne(now, l.MemberID, l.InstanceID)
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp
}

// leaveOne removes one member (Kafka GroupCoordinator.handleLeaveGroup): a static
// member may be named by its instance id alone; naming it with a member id that is not
// its current one is fenced.
func (g *Group) leaveOne(now time.Time, memberID string, instanceID *string) int16 {
	if _, ok := g.pending[memberID]; ok && memberID != "" {
		delete(g.pending, memberID)
		g.maybeCompleteJoin(now)
		return codeNone
	}
	id := memberID
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		if ok && memberID != "" && cur != memberID {
			return codeFencedInstanceID
		}
		if ok {
			id = cur
		}
	}
	if g.members[id] == nil {
		return codeUnknownMemberID
	}
	g.removeMemberAndUpdate(now, id)
	return codeNone
}
