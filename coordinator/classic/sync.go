package classic

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup, versions 0-5. v3 adds the instance id (KIP-345); v5 (KIP-559) the
// protocol type and name, which must match the group's when given.

// Sync handles a SyncGroup request. reply is called exactly once: at once, or for a
// member waiting on its leader, when the leader's assignment arrives or the rebalance
// is abandoned.
func (g *Group) Sync(now time.Time, req *kmsg.SyncGroupRequest, reply func(*kmsg.SyncGroupResponse)) {
	defer g.flush()
	answer := func(resp *kmsg.SyncGroupResponse) {
		resp.Version = req.Version
		g.emit(func() { reply(resp) })
	}
	if code := g.validateSync(req); code != codeNone {
		answer(syncError(code))
		return
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		answer(syncError(codeRebalanceInProgress))
	case stateCompletingRebalance:
		// A SyncGroup already waiting was abandoned by the client; Kafka drops it.
		g.answerSync(m, syncError(codeRebalanceInProgress))
		m.sync = &waitingSync{version: req.Version, reply: reply}
		delete(g.pendingSync, m.id)
		if m.id == g.leader {
			g.completeSync(now, req.GroupAssignment)
		}
	case stateStable:
		delete(g.pendingSync, m.id)
		m.touch(now)
		answer(g.syncResult(m))
	default:
		answer(syncError(codeUnknownMemberID))
	}
}

// validateSync checks the member, its generation and, from v5, the protocol
// (Kafka GroupCoordinator.validateSyncGroup).
func (g *Group) validateSync(req *kmsg.SyncGroupRequest) int16 {
	if g.state == stateDead {
		return codeCoordinatorNotAvailable
	}
	var instanceID *string
	if req.Version >= 3 {
		instanceID = req.InstanceID
	}
	if code := g.checkMember(req.MemberID, instanceID); code != codeNone {
		return code
	}
	switch {
	case req.Generation != g.gen:
		return codeIllegalGeneration
	case req.ProtocolType != nil && *req.ProtocolType != g.protoTyp,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return codeInconsistentGroupProtocol
	}
	return codeNone
}

// completeSync takes the leader's assignment: members it leaves out get an empty one.
// The group is persisted, then Stable, and every member waiting is answered.
func (g *Group) completeSync(now time.Time, assignment []kmsg.SyncGroupRequestGroupAssignment) {
	for _, m := range g.members {
		m.assignment = []byte{}
	}
	for _, a := range assignment {
		if m := g.members[a.MemberID]; m != nil {
			m.assignment = a.MemberAssignment
		}
	}
	g.persist()
	g.setState(now, stateStable)
	for _, m := range g.ordered() {
		if m.sync != nil {
			// The wait kept the session alive; restart its timer now it ends.
			m.touch(now)
			g.answerSync(m, g.syncResult(m))
		}
	}
}

func (g *Group) syncResult(m *member) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ProtocolType = ptr(g.protoTyp)
	resp.Protocol = ptr(g.protocol)
	resp.MemberAssignment = m.assignment
	return resp
}

func syncError(code int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = code
	return resp
}
