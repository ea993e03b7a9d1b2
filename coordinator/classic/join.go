package classic

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup, versions 0-9.
//
//   - v1 adds the rebalance timeout (v0 rebalances within the session timeout).
//   - v4 (KIP-394): a member without an id is first answered MEMBER_ID_REQUIRED with
//     one, and remembered as pending until it joins with it.
//   - v5 (KIP-345): group.instance.id, static membership.
//   - v7: the response carries the protocol type; v9 (KIP-814): SkipAssignment, which a
//     static leader rejoining a Stable group gets with the member list.

// joinReq is a JoinGroup request with its version differences settled.
type joinReq struct {
	version          int16
	memberID         string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	reply            func(*kmsg.JoinGroupResponse)
}

func newJoinReq(req *kmsg.JoinGroupRequest, clientID, clientHost string, reply func(*kmsg.JoinGroupResponse)) *joinReq {
	j := &joinReq{
		version:          req.Version,
		memberID:         req.MemberID,
		clientID:         clientID,
		clientHost:       clientHost,
		sessionTimeout:   time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		rebalanceTimeout: time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		protocolType:     req.ProtocolType,
		protocols:        req.Protocols,
		reply:            reply,
	}
	if req.Version == 0 {
		j.rebalanceTimeout = j.sessionTimeout
	}
	if req.Version >= 5 {
		j.instanceID = req.InstanceID
	}
	return j
}

// Join handles a JoinGroup request. reply is called exactly once, now or when the
// rebalance completes (from inside a later call).
func (g *Group) Join(now time.Time, req *kmsg.JoinGroupRequest, clientID, clientHost string, reply func(*kmsg.JoinGroupResponse)) {
	defer g.flush()
	j := newJoinReq(req, clientID, clientHost, reply)
	if code := g.validateJoin(j); code != codeNone {
		g.replyJoin(j, joinError(j.memberID, code))
		return
	}
	if j.memberID == "" {
		g.joinNewMember(now, j)
	} else {
		g.joinKnownMember(now, j)
	}
	g.maybeCompleteJoin(now)
}

// validateJoin applies the checks Kafka makes before looking at the member, in
// Kafka's order (GroupCoordinator.handleJoinGroup, doNewMemberJoinGroup).
func (g *Group) validateJoin(j *joinReq) int16 {
	switch {
	case j.sessionTimeout < g.cfg.MinSessionTimeout || j.sessionTimeout > g.cfg.MaxSessionTimeout:
		return codeInvalidSessionTimeout
	case !g.acceptJoiningMember(j.memberID):
		// Kafka drops a known member it turns away, as it is over the limit anyway.
		g.remove(j.memberID)
		j.memberID = ""
		return codeGroupMaxSizeReached
	case g.state == stateDead:
		return codeCoordinatorNotAvailable
	case !g.supportsProtocols(j.protocolType, j.protocols):
		return codeInconsistentGroupProtocol
	}
	return codeNone
}

// acceptJoiningMember applies group.max.size (KIP-389) as Kafka does: while preparing
// a rebalance it counts the members that have rejoined, so that the last to rejoin of
// an oversized group are the ones turned away; otherwise it counts all members.
func (g *Group) acceptJoiningMember(id string) bool {
	if g.cfg.MaxSize <= 0 {
		return true
	}
	m, known := g.members[id]
	switch g.state {
	case statePreparingRebalance:
		return (known && m.join != nil) || g.numAwaitingJoin() < g.cfg.MaxSize
	case stateCompletingRebalance, stateStable:
		return known || len(g.members) < g.cfg.MaxSize
	}
	return true
}

func (g *Group) numAwaitingJoin() int {
	n := 0
	for _, m := range g.members {
		if m.join != nil {
			n++
		}
	}
	return n
}

// joinNewMember handles a join without a member id.
func (g *Group) joinNewMember(now time.Time, j *joinReq) {
	id := g.newMemberID(j.clientID, j.instanceID)
	switch {
	case j.instanceID != nil && g.static[*j.instanceID] != "":
		g.replaceStaticMember(now, j, id)
	case j.instanceID == nil && j.version >= 4:
		// KIP-394: hand out the id first, so that a client that times out and retries
		// does not leave defunct members behind. The pending id expires with the session.
		g.pending[id] = now.Add(j.sessionTimeout)
		g.replyJoin(j, joinError(id, codeMemberIDRequired))
	default:
		g.addMemberAndRebalance(now, j, id)
	}
}

// joinKnownMember handles a join with a member id (Kafka doCurrentMemberJoinGroup).
func (g *Group) joinKnownMember(now time.Time, j *joinReq) {
	if _, ok := g.pending[j.memberID]; ok && j.instanceID == nil {
		g.addMemberAndRebalance(now, j, j.memberID)
		return
	}
	if code := g.checkMember(j.memberID, j.instanceID); code != codeNone {
		g.replyJoin(j, joinError(j.memberID, code))
		return
	}
	m := g.members[j.memberID]
	switch g.state {
	case statePreparingRebalance:
		g.updateMemberAndRebalance(now, m, j)
	case stateCompletingRebalance:
		if !m.sameProtocols(j.protocols) {
			g.updateMemberAndRebalance(now, m, j)
			return
		}
		// It lost the response to its join: send this generation's again.
		g.replyJoin(j, g.joinResult(m.id, m.id == g.leader))
	case stateStable:
		// The leader's rejoin rebalances even with unchanged metadata: it is how a
		// leader reacts to changes that do not show in metadata (new partitions), and
		// how cooperative members start their second phase (KIP-429). A follower whose
		// metadata did not change just gets the generation back and syncs.
		if m.id == g.leader || !m.sameProtocols(j.protocols) {
			g.updateMemberAndRebalance(now, m, j)
			return
		}
		g.replyJoin(j, g.joinResult(m.id, false))
	default:
		g.replyJoin(j, joinError(j.memberID, codeUnknownMemberID))
	}
}

// checkMember validates a request's member id and instance id (Kafka
// validateCurrentMember): an instance id mapped to another member id is fenced
// (KIP-345); an unknown instance or member id is unknown.
func (g *Group) checkMember(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case !ok:
			return codeUnknownMemberID
		case cur != memberID:
			return codeFencedInstanceID
		}
		return codeNone
	}
	if g.members[memberID] == nil {
		return codeUnknownMemberID
	}
	return codeNone
}

// addMemberAndRebalance adds a member that waits for the rebalance it starts or joins.
func (g *Group) addMemberAndRebalance(now time.Time, j *joinReq, id string) {
	m := &member{
		id:               id,
		instanceID:       j.instanceID,
		clientID:         j.clientID,
		clientHost:       j.clientHost,
		sessionTimeout:   j.sessionTimeout,
		rebalanceTimeout: j.rebalanceTimeout,
		protocols:        j.protocols,
		isNew:            true,
		deadline:         now.Add(newMemberJoinTimeout),
		join:             &waitingJoin{version: j.version, reply: j.reply},
	}
	if g.state == statePreparingRebalance && g.gen == 0 {
		g.rb.newMemberAdded = true // extends the initial delay (KIP-134)
	}
	g.add(m, j.protocolType)
	g.maybePrepareRebalance(now)
}

// updateMemberAndRebalance records a known member's new join and rebalances.
func (g *Group) updateMemberAndRebalance(now time.Time, m *member, j *joinReq) {
	g.updateMember(m, j)
	g.maybePrepareRebalance(now)
}

// updateMember takes a rejoining member's protocols, timeouts and reply. A join it
// still had waiting is superseded (a client has one JoinGroup in flight, so the old
// one was abandoned); it is answered REBALANCE_IN_PROGRESS, where Kafka drops it.
func (g *Group) updateMember(m *member, j *joinReq) {
	g.answerJoin(m, joinError(m.id, codeRebalanceInProgress))
	m.protocols = j.protocols
	m.sessionTimeout = j.sessionTimeout
	m.rebalanceTimeout = j.rebalanceTimeout
	m.join = &waitingJoin{version: j.version, reply: j.reply}
}

// replaceStaticMember handles a known group.instance.id joining without a member id:
// a restarted static member (KIP-345). It takes a new member id and keeps the old one's
// place and assignment; requests still waiting under the old id are fenced.
func (g *Group) replaceStaticMember(now time.Time, j *joinReq, newID string) {
	oldID := g.static[*j.instanceID]
	oldLeader := g.leader
	m := g.members[oldID]
	g.answerJoin(m, joinError(oldID, codeFencedInstanceID))
	g.answerSync(m, syncError(codeFencedInstanceID))
	g.renameMember(m, newID)
	g.updateMember(m, j)
	m.touch(now) // with the new session timeout
	switch g.state {
	case stateStable:
		g.rejoinStableStatic(now, m, oldLeader)
	case stateCompletingRebalance:
		// The leader may be assigning to the old id already; the new id would get
		// nothing, so rebalance (Kafka updateStaticMemberAndRebalance).
		g.prepareRebalance(now)
	}
}

// renameMember moves m to a new member id, keeping its place in the join order.
func (g *Group) renameMember(m *member, newID string) {
	oldID := m.id
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	for i, id := range g.order {
		if id == oldID {
			g.order[i] = newID
		}
	}
	g.static[*m.instanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
}

// rejoinStableStatic answers a restarted static member of a Stable group without a
// rebalance when the group's protocol would not change (Kafka 2.4+, KAFKA-8816): the
// new member id is persisted and the member syncs to get its old assignment.
//
// A restarted leader is not told it leads, so that it does not compute an assignment
// the Stable group would not hand out: below v9 it gets the old leader id and no
// members; from v9 (KIP-814) it gets the members with SkipAssignment, so it can still
// watch the metadata of the group.
func (g *Group) rejoinStableStatic(now time.Time, m *member, oldLeader string) {
	if g.selectProtocol() != g.protocol {
		g.prepareRebalance(now)
		return
	}
	g.persist()
	isLeader := m.id == g.leader
	skip := isLeader && m.join.version >= 9
	resp := g.joinResult(m.id, skip)
	resp.SkipAssignment = skip
	if !skip {
		resp.LeaderID = oldLeader
	}
	g.answerJoin(m, resp)
}

// joinResult is the JoinGroup answer for the current generation, with the member list
// if withMembers (the leader's).
func (g *Group) joinResult(memberID string, withMembers bool) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Generation = g.gen
	resp.ProtocolType = ptr(g.protoTyp)
	resp.Protocol = ptr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = memberID
	if withMembers {
		for _, o := range g.ordered() {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = o.id
			rm.InstanceID = o.instanceID
			rm.ProtocolMetadata = o.metadata(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

// joinError is Kafka's JoinGroup answer for an error: no generation, no protocol.
func joinError(memberID string, code int16) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.ErrorCode = code
	resp.MemberID = memberID
	return resp
}

// replyJoin answers a join that never waited.
func (g *Group) replyJoin(j *joinReq, resp *kmsg.JoinGroupResponse) {
	resp.Version = j.version
	fixJoinVersion(resp)
	g.emit(func() { j.reply(resp) })
}

// fixJoinVersion settles the fields whose form depends on the version: the protocol
// name is nullable only from v7, where the protocol type appears.
func fixJoinVersion(resp *kmsg.JoinGroupResponse) {
	if resp.Version < 7 {
		resp.ProtocolType = nil
		if resp.Protocol == nil {
			none := ""
			resp.Protocol = &none
		}
	}
}

// ptr returns a pointer to s, or nil for "" (Kafka's None).
func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
