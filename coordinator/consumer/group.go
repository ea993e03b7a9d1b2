package consumer

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Topics is the metadata the assignor needs; the owner passes the routing view's answer.
type Topics interface {
	ByName(name string) (id [16]byte, partitions int32, ok bool)
	ByID(id [16]byte) (name string, partitions int32, ok bool)
	Names() []string // all topics, for regex subscriptions
}

// Config holds a group's settings. The zero value is usable: Validate fills the
// defaults Kafka ships with.
type Config struct {
	SessionTimeout    time.Duration // group.consumer.session.timeout.ms, default 45s
	HeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms, default 5s
	// RebalanceTimeout is how long a member may take to revoke partitions. Zero
	// means the member's own RebalanceTimeoutMillis, else 5m.
	RebalanceTimeout time.Duration
	Assignors        []string // server assignors offered, default ["uniform", "range"]; the first is the default
	MaxSize          int      // group.consumer.max.size, 0 = unlimited

	// NewMemberID makes a member id for a version-0 join that left it empty
	// (from v1 the client generates it). Default: 16 random bytes, base64url,
	// as Kafka's Uuid prints. Tests set it to get stable transcripts.
	NewMemberID func() string
}

const defaultRebalanceTimeout = 5 * time.Minute

// Validate fills defaults and rejects settings the group cannot honour.
func (c *Config) Validate() error {
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if len(c.Assignors) == 0 {
		c.Assignors = []string{"uniform", "range"}
	}
	if c.NewMemberID == nil {
		c.NewMemberID = randomMemberID
	}
	return c.check()
}

func (c *Config) check() error {
	if c.SessionTimeout < 0 || c.HeartbeatInterval < 0 || c.RebalanceTimeout < 0 || c.MaxSize < 0 {
		return errors.New("consumer: negative timeout or size")
	}
	// KIP-848: the heartbeat interval must be lower than the session timeout,
	// or every member would expire between two heartbeats.
	if c.HeartbeatInterval >= c.SessionTimeout {
		return errors.New("consumer: heartbeat interval must be less than the session timeout")
	}
	for _, name := range c.Assignors {
		if assignors[name] == nil {
			return fmt.Errorf("consumer: unknown assignor %q", name)
		}
	}
	return nil
}

func randomMemberID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Group is one KIP-848 consumer group. It is not safe for concurrent use: one
// goroutine owns it and feeds it requests and time.
type Group struct {
	id  string
	cfg Config

	dead            bool
	groupEpoch      int32
	assignmentEpoch int32 // the epoch of target; equals groupEpoch once computed

	members map[string]*member
	static  map[string]string     // instance id -> member id
	target  map[string]assignment // member id -> target assignment
	owners  map[tp]string         // partition -> member that holds it (assigned or revoking)
	topics  map[string]topicMeta  // subscribed topics as last seen; a change bumps the epoch
}

// topicMeta is what the group remembers of a subscribed topic.
type topicMeta struct {
	name       string
	id         [16]byte
	partitions int32
}

// New returns an empty group. It panics if cfg does not validate: the owner
// validates its Config once at start-up, so a panic here is a programming error.
func New(id string, cfg Config) *Group {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Group{
		id:      id,
		cfg:     cfg,
		members: map[string]*member{},
		static:  map[string]string{},
		target:  map[string]assignment{},
		owners:  map[tp]string{},
		topics:  map[string]topicMeta{},
	}
}

// GroupEpoch is the epoch of the group's membership and subscriptions.
func (g *Group) GroupEpoch() int32 { return g.groupEpoch }

// Empty reports whether the group has no members.
func (g *Group) Empty() bool { return len(g.members) == 0 }

// State names the group's state as KIP-848 and ConsumerGroupDescribe do.
func (g *Group) State() string {
	switch {
	case g.dead:
		return "Dead"
	case len(g.members) == 0:
		return "Empty"
	case g.groupEpoch > g.assignmentEpoch:
		return "Assigning"
	}
	for _, m := range g.members {
		if !m.reconciledTo(g.assignmentEpoch) {
			return "Reconciling"
		}
	}
	return "Stable"
}

// Delete marks an empty group Dead (DeleteGroups). A group with members
// answers NON_EMPTY_GROUP, as Kafka's ConsumerGroup.validateDeleteGroup does.
func (g *Group) Delete() int16 {
	if len(g.members) > 0 {
		return kerr.NonEmptyGroup.Code
	}
	g.dead = true
	return 0
}

// ValidateCommit checks an OffsetCommit (v9+) against the member's epoch, as
// Kafka's ConsumerGroup.validateOffsetCommit does: a negative epoch from a
// non-member (admin client, manual assignment) may commit only while the group
// is empty; a member must send exactly its current epoch, else STALE_MEMBER_EPOCH.
func (g *Group) ValidateCommit(memberID string, memberEpoch int32) int16 {
	if memberEpoch < 0 && len(g.members) == 0 {
		return 0
	}
	return g.validateMemberEpoch(memberID, memberEpoch)
}

// ValidateOffsetFetch checks an OffsetFetch (v9+). Unlike commits, a fetch
// without member id and with a negative epoch is always allowed: it cannot
// disturb the group (Kafka's ConsumerGroup.validateOffsetFetch).
func (g *Group) ValidateOffsetFetch(memberID string, memberEpoch int32) int16 {
	if memberID == "" && memberEpoch < 0 {
		return 0
	}
	return g.validateMemberEpoch(memberID, memberEpoch)
}

func (g *Group) validateMemberEpoch(memberID string, memberEpoch int32) int16 {
	m := g.members[memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case m.epoch != memberEpoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

// Tick removes members whose session expired and fences members that did not
// revoke within their rebalance timeout. Each removal bumps the group epoch
// and recomputes the target assignment, so the partitions can move.
func (g *Group) Tick(now time.Time) {
	for _, m := range g.sortedMembers() {
		if m.expired(now) {
			g.removeMember(m)
		}
	}
}

// NextDeadline is when Tick next has work: the earliest session or revocation
// deadline. ok is false when the group has no members.
func (g *Group) NextDeadline() (deadline time.Time, ok bool) {
	for _, m := range g.members {
		for _, d := range []time.Time{m.sessionDeadline, m.revokeDeadline} {
			if !d.IsZero() && (!ok || d.Before(deadline)) {
				deadline, ok = d, true
			}
		}
	}
	return deadline, ok
}

func (g *Group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	return ms
}

// addMember admits a new member (epoch 0, nothing owned).
func (g *Group) addMember(m *member) {
	g.members[m.id] = m
	if m.instanceID != "" {
		g.static[m.instanceID] = m.id
	}
}

// removeMember drops m and frees everything it held: KIP-848 fences a member
// that left, expired or failed to revoke, so its partitions can be reassigned
// at once. The group epoch moves because membership changed.
func (g *Group) removeMember(m *member) {
	g.release(m.assigned)
	g.release(m.revoking)
	delete(g.members, m.id)
	delete(g.target, m.id)
	if g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	g.refreshTopics(nil)
	g.bumpEpoch()
}

// replaceStatic gives a temporarily departed static member's place to the
// member rejoining under the same instance id (KIP-848 "Static membership": a
// restart within the session timeout causes no rebalance). The newcomer keeps
// the old member's target and subscription, so the group epoch does not move;
// it owns nothing yet, so the old holdings are released and handed straight
// back by reconciliation.
func (g *Group) replaceStatic(old, m *member) {
	g.release(old.assigned)
	delete(g.members, old.id)
	m.assignor, m.names, m.regex, m.re, m.resolved = old.assignor, old.names, old.regex, old.re, old.resolved
	m.rebalanceTimeout = old.rebalanceTimeout
	if t, ok := g.target[old.id]; ok {
		delete(g.target, old.id)
		g.target[m.id] = t
	}
	g.addMember(m)
}

// release frees partitions so that members waiting on them (UNRELEASED_PARTITIONS)
// can take them on their next heartbeat.
func (g *Group) release(a assignment) {
	a.each(func(p tp) { delete(g.owners, p) })
}

func (g *Group) claim(m *member, a assignment) {
	a.each(func(p tp) { g.owners[p] = m.id })
}

// bumpEpoch starts a new group epoch and computes its target assignment at
// once: Strait's assignors are fast and in-process, so the group never stays
// in Assigning (Kafka may offload the assignor and linger there).
func (g *Group) bumpEpoch() {
	g.groupEpoch++
	g.computeTarget()
}

func (g *Group) computeTarget() {
	assign := assignors[g.assignorName()]
	g.target = assign(g.assignInput())
	g.assignmentEpoch = g.groupEpoch
}

// assignorName picks the server assignor: the one most members ask for, ties
// broken by the configured order, else the configured default (Kafka's
// ConsumerGroup.computePreferredServerAssignor).
func (g *Group) assignorName() string {
	votes := map[string]int{}
	for _, m := range g.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := g.cfg.Assignors[0]
	for _, name := range g.cfg.Assignors {
		if votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

func (g *Group) assignInput() []assignMember {
	in := make([]assignMember, 0, len(g.members))
	for _, m := range g.sortedMembers() {
		am := assignMember{id: m.id, prev: g.target[m.id]}
		for _, name := range m.resolved {
			if t, ok := g.topics[name]; ok && t.partitions > 0 {
				am.topics = append(am.topics, t)
			}
		}
		in = append(in, am)
	}
	return in
}

// validAssignor reports whether name is one of the configured assignors.
func (g *Group) validAssignor(name string) bool {
	return slices.Contains(g.cfg.Assignors, name)
}
