package consumer

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Property tests against naive models.

// randomMembers builds 1–8 members over 1–5 topics of 1–12 partitions, each
// subscribed to a random non-empty subset, sorted by id as computeTarget does.
func randomMembers(r *rand.Rand) []assignMember {
	var topics []topicMeta
	for i := range 1 + r.IntN(5) {
		name := fmt.Sprintf("t%d", i)
		topics = append(topics, topicMeta{name: name, id: topicID(name), partitions: int32(1 + r.IntN(12))})
	}
	members := make([]assignMember, 1+r.IntN(8))
	for i := range members {
		members[i].id = fmt.Sprintf("m%d", i)
		for len(members[i].topics) == 0 {
			for _, t := range topics {
				if r.IntN(2) == 0 {
					members[i].topics = append(members[i].topics, t)
				}
			}
		}
	}
	return members
}

// checkCoverage: every subscribed partition goes to exactly one member, and
// only to a member subscribed to its topic (KIP-848: the target assignment
// covers the subscribed partitions; Kafka's assignor contract).
func checkCoverage(members []assignMember, got map[string]assignment) error {
	owner := map[tp]string{}
	for _, m := range members {
		var err error
		got[m.id].each(func(p tp) {
			if !subscribesTo(m, p.topic) && err == nil {
				err = fmt.Errorf("%s got %v without subscribing", m.id, p)
			}
			if o, dup := owner[p]; dup && err == nil {
				err = fmt.Errorf("%v given to %s and %s", p, o, m.id)
			}
			owner[p] = m.id
		})
		if err != nil {
			return err
		}
	}
	for _, t := range allTopics(members) {
		for p := int32(0); p < t.partitions; p++ {
			if _, ok := owner[tp{t.id, p}]; !ok {
				return fmt.Errorf("%s-%d not assigned", t.name, p)
			}
		}
	}
	return nil
}

// checkUniformBalance: members with the same subscriptions differ by at most
// one partition (the "uniform" promise of KIP-848's default assignor).
func checkUniformBalance(members []assignMember, got map[string]assignment) error {
	bySubs := map[string][]int{}
	for _, m := range members {
		var names []string
		for _, t := range m.topics {
			names = append(names, t.name)
		}
		key := strings.Join(names, ",")
		bySubs[key] = append(bySubs[key], got[m.id].size())
	}
	for subs, counts := range bySubs {
		if slices.Max(counts)-slices.Min(counts) > 1 {
			return fmt.Errorf("members subscribed to %s have counts %v", subs, counts)
		}
	}
	return nil
}

// naiveRange is the range rule written out the slow way: for each topic and
// each subscriber k of m (by member id), partitions [k*n/m + min(k, n%m), ...).
func naiveRange(members []assignMember) map[string]assignment {
	out := emptyAssignments(members)
	for _, t := range allTopics(members) {
		subs := subscribers(members, t)
		n, m := int(t.partitions), len(subs)
		for k, s := range subs {
			start := k*(n/m) + min(k, n%m)
			size := n / m
			if k < n%m {
				size++
			}
			for p := start; p < start+size; p++ {
				out[s.id].add(tp{t.id, int32(p)})
			}
		}
	}
	return out
}

func TestAssignorProperties(t *testing.T) {
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 1))
		members := randomMembers(r)
		for name, assign := range assignors {
			got := assign(members)
			if err := checkCoverage(members, got); err != nil {
				t.Fatalf("seed %d %s: %v", seed, name, err)
			}
			if again := assign(members); !sameAssignments(got, again) {
				t.Fatalf("seed %d %s: not deterministic", seed, name)
			}
		}
		uniform := assignUniform(members)
		if err := checkUniformBalance(members, uniform); err != nil {
			t.Fatalf("seed %d uniform: %v", seed, err)
		}
		if !sameAssignments(assignRange(members), naiveRange(members)) {
			t.Fatalf("seed %d: range differs from the naive model", seed)
		}
		checkSticky(t, seed, r, members, uniform)
	}
}

// checkSticky: with the previous target as input, an unchanged group keeps
// its assignment exactly, and a changed group stays covered and balanced.
func checkSticky(t *testing.T, seed uint64, r *rand.Rand, members []assignMember, prev map[string]assignment) {
	t.Helper()
	for i := range members {
		members[i].prev = prev[members[i].id]
	}
	if again := assignUniform(members); !sameAssignments(again, prev) {
		t.Fatalf("seed %d: uniform moved partitions of an unchanged group", seed)
	}
	if len(members) > 1 && r.IntN(2) == 0 {
		members = slices.Delete(slices.Clone(members), 0, 1) // a member leaves
	}
	members = append(members, assignMember{id: "z-new", topics: members[0].topics})
	got := assignUniform(members)
	if err := checkCoverage(members, got); err != nil {
		t.Fatalf("seed %d sticky: %v", seed, err)
	}
	if err := checkUniformBalance(members, got); err != nil {
		t.Fatalf("seed %d sticky: %v", seed, err)
	}
}

func sameAssignments(a, b map[string]assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		if !x.equal(b[id]) {
			return false
		}
	}
	return true
}

// simClient is a well-behaved KIP-848 consumer: it owns exactly what its last
// received assignment says, reports it, and on an error drops everything.
type simClient struct {
	name     string
	instance string
	id       string // current member id
	joined   bool
	epoch    int32
	owns     assignment
	rejoins  int
}

// TestHeartbeatSequences drives random heartbeats, lost responses, leaves,
// static leaves, time and metadata changes, and checks after every step that
// no partition is owned by two members at once: neither as last sent in a
// response, nor as the clients actually believe (KIP-848 "revoke before
// assign"). Clients whose member the group has removed are zombies and are
// fenced on their next request; they are not counted.
// traceSim logs every step of every simulation, to debug a failing seed.
var traceSim = flag.Bool("trace-sim", false, "log each step of TestHeartbeatSequences")

func TestHeartbeatSequences(t *testing.T) {
	for seed := range uint64(300) {
		simulate(t, seed)
	}
}

func simulate(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 2))
	topics := fakeTopics{"a": 4, "b": 3, "c": 2}
	g := New("g", Config{})
	now := epoch0
	clients := make([]*simClient, 4)
	for i := range clients {
		clients[i] = &simClient{name: fmt.Sprintf("c%d", i)}
		if i%2 == 0 {
			clients[i].instance = fmt.Sprintf("i%d", i)
		}
	}
	lastSent := map[string]assignment{}
	for step := range 200 {
		c := clients[r.IntN(len(clients))]
		var what string
		switch k := r.IntN(20); {
		case k < 2:
			now = now.Add(time.Duration(r.IntN(20)) * time.Second)
			g.Tick(now)
			what = "tick"
		case k < 3:
			topics[[]string{"a", "b", "c"}[r.IntN(3)]] = int32(1 + r.IntN(6))
			what = "metadata"
		default:
			what = c.act(r, g, now, topics, lastSent)
		}
		if *traceSim {
			t.Logf("step %d %s", step, what)
			for _, cl := range clients {
				t.Logf("   client %s joined=%v epoch=%d owns=%s", cl.id, cl.joined, cl.epoch, formatAssignment(cl.owns))
			}
			for _, m := range g.sortedMembers() {
				t.Logf("   member %s epoch=%d %s assigned=%s revoking=%s", m.id, m.epoch, m.state, formatAssignment(m.assigned), formatAssignment(m.revoking))
			}
		}
		if err := checkInvariants(g); err != nil {
			t.Fatalf("seed %d step %d (%s): %v", seed, step, what, err)
		}
		if err := checkDisjoint(g, clients, lastSent); err != nil {
			t.Fatalf("seed %d step %d (%s): %v", seed, step, what, err)
		}
	}
}

// act makes the client do one random thing and says what.
func (c *simClient) act(r *rand.Rand, g *Group, now time.Time, topics Topics, lastSent map[string]assignment) string {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	if !c.joined {
		c.id = fmt.Sprintf("%s-%d", c.name, c.rejoins)
		req.MemberEpoch = joinEpoch
		req.RebalanceTimeoutMillis = int32(10000 + r.IntN(20000))
		req.SubscribedTopicNames = randomSubscription(r)
		if c.instance != "" {
			req.InstanceID = &c.instance
		}
	} else {
		switch k := r.IntN(20); {
		case k == 0:
			req.MemberEpoch = leaveEpoch
		case k == 1 && c.instance != "":
			req.MemberEpoch, req.InstanceID = staticLeaveEpoch, &c.instance
		case k == 2:
			req.MemberEpoch, req.SubscribedTopicNames = c.epoch, randomSubscription(r)
		default:
			req.MemberEpoch = c.epoch
		}
		if r.IntN(4) > 0 { // else "unchanged"
			req.Topics = toRequestTopics(c.owns)
		}
	}
	req.MemberID = c.id
	resp := g.Heartbeat(now, req, topics)
	if resp.ErrorCode == 0 && resp.Assignment != nil {
		lastSent[c.id] = fromResponse(resp.Assignment)
	}
	if r.IntN(8) == 0 && req.MemberEpoch >= 0 { // a leaving client is gone either way
		return fmt.Sprintf("%s epoch %d: response lost", c.id, req.MemberEpoch)
	}
	c.apply(req, resp)
	return fmt.Sprintf("%s epoch %d -> %d %s", c.id, req.MemberEpoch, resp.MemberEpoch, codeName(resp.ErrorCode))
}

func (c *simClient) apply(req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) {
	switch {
	case resp.ErrorCode == kerr.FencedMemberEpoch.Code || resp.ErrorCode == kerr.UnknownMemberID.Code || req.MemberEpoch < 0:
		c.joined, c.owns, c.epoch = false, assignment{}, 0
		c.rejoins++
	case resp.ErrorCode != 0:
	default:
		c.joined, c.epoch = true, resp.MemberEpoch
		if resp.Assignment != nil {
			c.owns = fromResponse(resp.Assignment)
		}
	}
}

func randomSubscription(r *rand.Rand) []string {
	var subs []string
	for _, name := range []string{"a", "b", "c"} {
		if r.IntN(2) == 0 {
			subs = append(subs, name)
		}
	}
	return subs
}

// checkDisjoint: among the group's members, what they were last sent and what
// their clients believe they own never overlap.
func checkDisjoint(g *Group, clients []*simClient, lastSent map[string]assignment) error {
	sent, believed := map[tp]string{}, map[tp]string{}
	for _, m := range g.sortedMembers() {
		if err := markAll(sent, lastSent[m.id], m.id, "sent"); err != nil {
			return err
		}
	}
	for _, c := range clients {
		if g.members[c.id] == nil || !c.joined {
			continue
		}
		if err := markAll(believed, c.owns, c.id, "owned"); err != nil {
			return err
		}
	}
	return nil
}

func markAll(seen map[tp]string, a assignment, id, what string) error {
	var err error
	a.each(func(p tp) {
		if other, dup := seen[p]; dup && err == nil {
			err = fmt.Errorf("%s-%d %s to both %s and %s", strings.TrimRight(string(p.topic[:]), "\x00"), p.part, what, other, id)
		}
		seen[p] = id
	})
	return err
}
