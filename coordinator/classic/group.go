package classic

import (
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's broker defaults for the group settings in Config.
const (
	DefaultInitialRebalanceDelay = 3 * time.Second  // group.initial.rebalance.delay.ms
	DefaultMinSessionTimeout     = 6 * time.Second  // group.min.session.timeout.ms
	DefaultMaxSessionTimeout     = 30 * time.Minute // group.max.session.timeout.ms

	// newMemberJoinTimeout bounds how long a member that has never completed a join may
	// wait in JoinGroup: its session cannot run (it has no member id to heartbeat with),
	// so Kafka gives it this fixed budget instead (NewMemberJoinTimeoutMs, KAFKA-9232).
	newMemberJoinTimeout = 5 * time.Minute
)

// Config holds the broker-side group settings. Zero fields take Kafka's defaults.
type Config struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms, default 3s.
	// Zero means the default; a negative value means no delay.
	InitialRebalanceDelay time.Duration
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms, default 6s
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms, default 30m
	MaxSize               int           // group.max.size, default unlimited (0)
}

func (c Config) withDefaults() Config {
	switch {
	case c.InitialRebalanceDelay == 0:
		c.InitialRebalanceDelay = DefaultInitialRebalanceDelay
	case c.InitialRebalanceDelay < 0:
		c.InitialRebalanceDelay = 0
	}
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	return c
}

// state is a group's place in the diagram in doc.go.
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s state) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}[s]
}

// Group is one classic group. Create with New; never used concurrently.
type Group struct {
	// Persist, when set, is called whenever the group's durable state changes (a
	// generation's assignment is complete and the group becomes Stable, a static member
	// is replaced without a rebalance, or the group becomes Empty) with the value Kafka
	// stores in __consumer_offsets (GroupMetadataValue v3). It is called in order with
	// the reply callbacks, so the owner can write it before later replies leave.
	Persist func(kmsg.GroupMetadataValue)

	id       string
	cfg      Config
	newUUID  func() string // replaced by tests for stable member ids
	outbox   []func()      // replies and Persist calls, delivered in order by flush
	state    state
	stateAt  time.Time // last transition; GroupMetadataValue.CurrentStateTimestamp
	gen      int32
	protoTyp string // set by the first member to join an empty group
	protocol string // chosen at each generation; "" while none
	leader   string

	members map[string]*member
	order   []string          // member ids in join order: Kafka's "first member" for the leader
	static  map[string]string // group.instance.id -> current member id (KIP-345)

	// pending holds member ids handed out with MEMBER_ID_REQUIRED (KIP-394) that have
	// not joined yet, with the time they expire (their session timeout). A rebalance
	// waits for them as for members.
	pending map[string]time.Time

	// pendingSync holds the members of this generation that have not sent SyncGroup;
	// at syncDeadline (the rebalance timeout after the join completed) they are removed
	// (Kafka 3.1+, KAFKA-13217), so a leader that never syncs cannot wedge the group.
	pendingSync  map[string]bool
	syncDeadline time.Time

	rb rebalance // valid while PreparingRebalance
}

// rebalance is the timer of the join phase: Kafka's DelayedJoin, or InitialDelayedJoin
// when the rebalance started from Empty (KIP-134).
type rebalance struct {
	deadline       time.Time
	initial        bool          // the initial delay: never completes early
	remaining      time.Duration // how much more the initial delay may be extended
	newMemberAdded bool          // a member joined during this delay: extend it
}

// member is one member of the group, with the requests it has waiting.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte
	deadline         time.Time // session expiry
	isNew            bool      // has not completed a join yet
	join             *waitingJoin
	sync             *waitingSync
}

type waitingJoin struct {
	version int16
	reply   func(*kmsg.JoinGroupResponse)
}

type waitingSync struct {
	version int16
	reply   func(*kmsg.SyncGroupResponse)
}

// New returns an Empty group at generation 0.
func New(id string, cfg Config) *Group {
	return &Group{
		id:          id,
		cfg:         cfg.withDefaults(),
		newUUID:     randomUUID,
		members:     make(map[string]*member),
		static:      make(map[string]string),
		pending:     make(map[string]time.Time),
		pendingSync: make(map[string]bool),
	}
}

// randomUUID returns a version-4 UUID in its usual text form, as Kafka's member ids
// carry (java.util.UUID.randomUUID).
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newMemberID makes a member id as Kafka does: "<group.instance.id>-<uuid>" for a
// static member, "<client.id>-<uuid>" otherwise.
func (g *Group) newMemberID(clientID string, instanceID *string) string {
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	return prefix + "-" + g.newUUID()
}

// emit queues an effect; flush delivers the queue in order. Every exported method
// flushes before it returns, so callbacks never run while the group is half updated
// and may even call back into it.
func (g *Group) emit(f func()) { g.outbox = append(g.outbox, f) }

func (g *Group) flush() {
	for len(g.outbox) > 0 {
		f := g.outbox[0]
		g.outbox = g.outbox[1:]
		f()
	}
}

func (g *Group) setState(now time.Time, s state) {
	g.state = s
	g.stateAt = now
}

// add makes m a member. The first member of an empty group fixes its protocol type,
// and the first member to join a leaderless group leads it (Kafka GroupMetadata.add).
func (g *Group) add(m *member, protocolType string) {
	if len(g.members) == 0 {
		g.protoTyp = protocolType
	}
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	delete(g.pending, m.id)
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
}

// remove drops a member and answers whatever it has waiting with UNKNOWN_MEMBER_ID,
// so that no request is left hanging. (Kafka answers a waiting JoinGroup so; it drops
// a waiting SyncGroup, which the client then times out.) The leadership passes to the
// oldest remaining member.
func (g *Group) remove(id string) {
	m, ok := g.members[id]
	delete(g.pending, id)
	if !ok {
		return
	}
	g.answerJoin(m, joinError(id, codeUnknownMemberID))
	g.answerSync(m, syncError(codeUnknownMemberID))
	delete(g.members, id)
	g.order = slices.DeleteFunc(g.order, func(x string) bool { return x == id })
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	delete(g.pendingSync, id)
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
}

// ordered returns the members in join order.
func (g *Group) ordered() []*member {
	ms := make([]*member, len(g.order))
	for i, id := range g.order {
		ms[i] = g.members[id]
	}
	return ms
}

// rebalanceTimeout is the longest rebalance timeout of any member: how long a
// rebalance waits for members to rejoin (Kafka GroupMetadata.rebalanceTimeoutMs).
func (g *Group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// answerJoin delivers a member's waiting JoinGroup, once.
func (g *Group) answerJoin(m *member, resp *kmsg.JoinGroupResponse) {
	if m.join == nil {
		return
	}
	w := m.join
	m.join = nil
	resp.Version = w.version
	fixJoinVersion(resp)
	g.emit(func() { w.reply(resp) })
}

// answerSync delivers a member's waiting SyncGroup, once.
func (g *Group) answerSync(m *member, resp *kmsg.SyncGroupResponse) {
	if m.sync == nil {
		return
	}
	w := m.sync
	m.sync = nil
	resp.Version = w.version
	g.emit(func() { w.reply(resp) })
}

// expirable reports whether m's session timer runs. Kafka considers a member waiting
// in JoinGroup or SyncGroup alive (its socket is muted while it waits) unless it has
// never joined, and restarts the timer when the wait ends (MemberMetadata.hasSatisfiedHeartbeat).
func (m *member) expirable() bool {
	return m.isNew || (m.join == nil && m.sync == nil)
}

// touch restarts m's session timer.
func (m *member) touch(now time.Time) { m.deadline = now.Add(m.sessionTimeout) }

// metadata returns m's metadata for protocol name.
func (m *member) metadata(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether m joined with exactly these protocols, in this order
// and with the same metadata (Kafka MemberMetadata.matches).
func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b kmsg.JoinGroupRequestProtocol) bool {
		return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
	})
}
