package consumer

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client identifies where a heartbeat came from (request header client id and
// the peer's address). KIP-848 shows both in ConsumerGroupDescribe; the
// heartbeat itself does not carry them.
type Client struct {
	ID   string
	Host string
}

// Heartbeat handles ConsumerGroupHeartbeat (API key 68, v0–v1) for this group.
// topics is the metadata view the assignor and regex subscriptions read.
func (g *Group) Heartbeat(now time.Time, req *kmsg.ConsumerGroupHeartbeatRequest, topics Topics) *kmsg.ConsumerGroupHeartbeatResponse {
	return g.HeartbeatFrom(now, Client{}, req, topics)
}

// HeartbeatFrom is Heartbeat, recording which client sent it for Describe.
func (g *Group) HeartbeatFrom(now time.Time, client Client, req *kmsg.ConsumerGroupHeartbeatRequest, topics Topics) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	resp.Version = req.Version
	resp.HeartbeatIntervalMillis = millis(g.cfg.HeartbeatInterval)
	if err := g.heartbeat(now, client, req, topics, resp); err != nil {
		resp.ErrorCode = err.code.Code
		resp.ErrorMessage = &err.msg
	}
	return resp
}

// hbError is a heartbeat failure: a Kafka code and the message KIP-848 asks
// the coordinator to explain it with.
type hbError struct {
	code *kerr.Error
	msg  string
}

func fail(code *kerr.Error, format string, args ...any) *hbError {
	return &hbError{code, fmt.Sprintf(format, args...)}
}

func (g *Group) heartbeat(now time.Time, client Client, req *kmsg.ConsumerGroupHeartbeatRequest, topics Topics, resp *kmsg.ConsumerGroupHeartbeatResponse) *hbError {
	re, err := g.validate(req)
	if err != nil {
		return err
	}
	if g.dead { // a deleted group is recreated by its next member, as in Kafka
		*g = *New(g.id, g.cfg)
	}
	switch req.MemberEpoch {
	case leaveEpoch:
		return g.leave(req, resp)
	case staticLeaveEpoch:
		return g.staticLeave(now, req, resp)
	}
	m, joined, lost, err := g.admit(req)
	if err != nil {
		return err
	}
	assignorChanged := m.update(req, re, client)
	m.sessionDeadline = now.Add(g.cfg.SessionTimeout)
	if subsChanged := g.refreshTopics(topics); joined || assignorChanged || subsChanged {
		g.bumpEpoch()
	}
	g.respond(now, m, req, lost, resp)
	return nil
}

// validate checks what KIP-848 requires of the request before any state is
// touched, and compiles the regex subscription if one is sent.
func (g *Group) validate(req *kmsg.ConsumerGroupHeartbeatRequest) (*regexp.Regexp, *hbError) {
	switch {
	case req.MemberEpoch < staticLeaveEpoch:
		return nil, fail(kerr.InvalidRequest, "MemberEpoch %d is invalid.", req.MemberEpoch)
	case req.MemberID == "" && (req.MemberEpoch != joinEpoch || req.Version >= 1):
		// From v1 the client generates its member id (KIP-1082).
		return nil, fail(kerr.InvalidRequest, "MemberId can't be empty.")
	case req.MemberEpoch == staticLeaveEpoch && req.InstanceID == nil:
		return nil, fail(kerr.InvalidRequest, "InstanceId can't be null.")
	case req.MemberEpoch == joinEpoch:
		if err := validateJoin(req); err != nil {
			return nil, err
		}
	}
	if a := req.ServerAssignor; a != nil && *a != "" && !g.validAssignor(*a) {
		return nil, fail(kerr.UnsupportedAssignor, "ServerAssignor %s is not supported. Supported assignors: %v.", *a, g.cfg.Assignors)
	}
	return compileRequestRegex(req)
}

// validateJoin: a join (epoch 0) is a full request, since the coordinator may
// know nothing of the member (KIP-848 "Joining the group").
func validateJoin(req *kmsg.ConsumerGroupHeartbeatRequest) *hbError {
	switch {
	case req.RebalanceTimeoutMillis == -1:
		return fail(kerr.InvalidRequest, "RebalanceTimeoutMs must be provided in first request.")
	case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
		return fail(kerr.InvalidRequest, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
	case len(req.Topics) > 0:
		return fail(kerr.InvalidRequest, "TopicPartitions must be empty when (re-)joining.")
	}
	return nil
}

func compileRequestRegex(req *kmsg.ConsumerGroupHeartbeatRequest) (*regexp.Regexp, *hbError) {
	if req.SubscribedTopicRegex == nil || *req.SubscribedTopicRegex == "" {
		return nil, nil
	}
	re, err := compileRegex(*req.SubscribedTopicRegex)
	if err != nil {
		return nil, fail(kerr.InvalidRegularExpression, "SubscribedTopicRegex %q is not a valid regular expression: %v.", *req.SubscribedTopicRegex, err)
	}
	return re, nil
}

// leave handles epoch -1: the member leaves for good and its partitions move.
func (g *Group) leave(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *hbError {
	m, err := g.leaving(req)
	if err != nil {
		return err
	}
	g.removeMember(m)
	resp.MemberID, resp.MemberEpoch = &m.id, leaveEpoch
	return nil
}

// staticLeave handles epoch -2: a static member goes away meaning to come back
// (a restart). It keeps its assignment, reserved for its instance id, until
// its session times out; partitions it was already giving up are freed now,
// since the departing client no longer consumes them (KIP-848 "Static
// membership").
func (g *Group) staticLeave(now time.Time, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *hbError {
	m, err := g.leaving(req)
	if err != nil {
		return err
	}
	if m.instanceID != *req.InstanceID {
		return fail(kerr.FencedInstanceID, "InstanceId %s does not match member %s.", *req.InstanceID, m.id)
	}
	g.release(m.revoking)
	m.revoking, m.revokeDeadline, m.state = assignment{}, time.Time{}, stable
	m.epoch = staticLeaveEpoch
	m.sessionDeadline = now.Add(g.cfg.SessionTimeout)
	resp.MemberID, resp.MemberEpoch = &m.id, staticLeaveEpoch
	return nil
}

// leaving finds the member a leave names, by member id or else instance id.
func (g *Group) leaving(req *kmsg.ConsumerGroupHeartbeatRequest) (*member, *hbError) {
	if m := g.members[req.MemberID]; m != nil {
		return m, nil
	}
	if req.InstanceID != nil {
		if m := g.members[g.static[*req.InstanceID]]; m != nil {
			return m, nil
		}
	}
	return nil, fail(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.id)
}

// admit finds or creates the member a (non-leave) heartbeat speaks for and
// checks its epoch. joined reports a new membership; lost reports a member
// that came back with its previous epoch because our last response was lost.
func (g *Group) admit(req *kmsg.ConsumerGroupHeartbeatRequest) (m *member, joined, lost bool, err *hbError) {
	if req.MemberEpoch == joinEpoch {
		m, joined, err = g.join(req)
		return m, joined, false, err
	}
	m = g.members[req.MemberID]
	if m == nil {
		return nil, false, false, fail(kerr.UnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.id)
	}
	lost, err = checkEpoch(m, req.MemberEpoch, ownedOf(req))
	return m, false, lost, err
}

// checkEpoch accepts the member's current epoch, or its previous one when the
// response that moved it on may have been lost and what it says it owns is
// still within its assignment (Kafka's throwIfConsumerGroupMemberEpochIsInvalid).
// Anything else is a zombie: FENCED_MEMBER_EPOCH, and the member must rejoin.
func checkEpoch(m *member, epoch int32, owned assignment) (lost bool, err *hbError) {
	switch {
	case epoch == m.epoch:
		return false, nil
	case epoch < m.epoch && epoch == m.prevEpoch && owned != nil && owned.subsetOf(m.assigned):
		return true, nil
	}
	return false, fail(kerr.FencedMemberEpoch, "The member epoch %d does not match the expected epoch %d. The member must abandon all its partitions and rejoin.", epoch, m.epoch)
}

// join handles epoch 0: a new member, a static member taking back its place,
// or a known member starting over (it owns nothing now, so whatever it held
// is released).
func (g *Group) join(req *kmsg.ConsumerGroupHeartbeatRequest) (*member, bool, *hbError) {
	id := req.MemberID
	if id == "" { // v0 only: the coordinator names the member
		id = g.cfg.NewMemberID()
	}
	if req.InstanceID != nil && *req.InstanceID != "" {
		if m, done, err := g.joinStatic(id, *req.InstanceID); done || err != nil {
			return m, false, err
		}
	}
	if m := g.members[id]; m != nil {
		g.restart(m)
		return m, false, nil
	}
	if g.cfg.MaxSize > 0 && len(g.members) >= g.cfg.MaxSize {
		return nil, false, fail(kerr.GroupMaxSizeReached, "The consumer group has reached its maximum capacity of %d members.", g.cfg.MaxSize)
	}
	m := newMember(id)
	if req.InstanceID != nil {
		m.instanceID = *req.InstanceID
	}
	g.addMember(m)
	return m, true, nil
}

// joinStatic lets a static member replace the one that left with epoch -2
// under the same instance id; a live holder makes it UNRELEASED_INSTANCE_ID.
func (g *Group) joinStatic(id, instance string) (m *member, done bool, err *hbError) {
	holder, ok := g.static[instance]
	if !ok || holder == id {
		return nil, false, nil
	}
	old := g.members[holder]
	if old.epoch != staticLeaveEpoch {
		return nil, false, fail(kerr.UnreleasedInstanceID, "Static member %s with instance id %s cannot join the group because the instance id is owned by member %s.", id, instance, holder)
	}
	m = newMember(id)
	m.instanceID = instance
	g.replaceStatic(old, m)
	return m, true, nil
}

// restart resets a known member that sent epoch 0: the client has dropped
// everything, so nothing it held needs revoking.
func (g *Group) restart(m *member) {
	g.release(m.assigned)
	g.release(m.revoking)
	m.assigned, m.revoking = assignment{}, assignment{}
	m.state, m.revokeDeadline = stable, time.Time{}
	m.epoch, m.prevEpoch = 0, 0
}

// update applies the fields a heartbeat sends only when they change (null or
// -1 means unchanged, KIP-848). It reports whether the requested assignor
// changed; subscription changes are found by refreshTopics.
func (m *member) update(req *kmsg.ConsumerGroupHeartbeatRequest, re *regexp.Regexp, client Client) (assignorChanged bool) {
	if req.RebalanceTimeoutMillis != -1 {
		m.rebalanceTimeout = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.RackID != nil {
		m.rackID = *req.RackID
	}
	if client != (Client{}) {
		m.clientID, m.clientHost = client.ID, client.Host
	}
	if req.SubscribedTopicNames != nil {
		m.names = sortedUnique(req.SubscribedTopicNames)
	}
	if req.SubscribedTopicRegex != nil {
		m.regex, m.re = *req.SubscribedTopicRegex, re
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor = *req.ServerAssignor
		return true
	}
	return false
}

// respond reconciles the member towards its target and fills the response.
// The assignment is sent only when it changed, when the request was a full
// one (the client may have lost its state), or when our last response was
// lost (Kafka's ConsumerGroupHeartbeat handling).
func (g *Group) respond(now time.Time, m *member, req *kmsg.ConsumerGroupHeartbeatRequest, lost bool, resp *kmsg.ConsumerGroupHeartbeatResponse) {
	before := m.assigned
	g.reconcile(now, m, ownedOf(req))
	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	if lost || isFull(req) || !before.equal(m.assigned) {
		resp.Assignment = wireAssignment(m.assigned)
	}
}

// isFull: a request with every "sent when changed" field set, as a joining
// member or one recovering from an error sends (Kafka's isFullRequest).
func isFull(req *kmsg.ConsumerGroupHeartbeatRequest) bool {
	subscribed := req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil
	return req.MemberEpoch == joinEpoch || (req.RebalanceTimeoutMillis != -1 && subscribed && req.Topics != nil)
}

// ownedOf reads the partitions the member says it owns; nil means unchanged.
func ownedOf(req *kmsg.ConsumerGroupHeartbeatRequest) assignment {
	if req.Topics == nil {
		return nil
	}
	out := assignment{}
	for _, t := range req.Topics {
		for _, part := range t.Partitions {
			out.add(tp{t.TopicID, part})
		}
	}
	return out
}

func wireAssignment(a assignment) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	out := &kmsg.ConsumerGroupHeartbeatResponseAssignment{}
	out.Default()
	out.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, id := range a.topicIDs() {
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = id, slices.Clone(a[id])
		out.Topics = append(out.Topics, t)
	}
	return out
}

func sortedUnique(names []string) []string {
	out := slices.Clone(names)
	sort.Strings(out)
	return slices.Compact(out)
}

func millis(d time.Duration) int32 { return int32(d / time.Millisecond) }
