package classic

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRandomInvariants drives groups of 3-5 simulated clients with random sequences of
// join, sync, heartbeat, leave and tick, and checks after every step that:
//
//   - the generation never decreases;
//   - in Stable, every member holds exactly what the leader assigned it in this
//     generation (empty if the leader left it out);
//   - no reply callback is called twice;
//   - once the group is Stable or Empty no request is left waiting.
func TestRandomInvariants(t *testing.T) {
	for seed := range uint64(300) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			newSim(t, seed).run(400)
		})
	}
}

type simClient struct {
	name    string
	id      string
	gen     int32
	leader  bool
	members []string // from the leader's JoinGroup answer
	meta    string
	inJoin  bool
	inSync  bool
}

type sim struct {
	t       *testing.T
	rng     *rand.Rand
	g       *Group
	now     time.Time
	clients []*simClient
	seq     int
	open    map[int]string // outstanding requests -> description
	lastGen int32
	// what the leader assigned, by generation
	assigned map[int32]map[string][]byte
	log      []string
}

func newSim(t *testing.T, seed uint64) *sim {
	s := &sim{
		t:        t,
		rng:      rand.New(rand.NewPCG(seed, seed*7+1)),
		now:      time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		open:     map[int]string{},
		assigned: map[int32]map[string][]byte{},
	}
	s.g = New("g", Config{InitialRebalanceDelay: time.Duration(s.rng.IntN(2)) * time.Second})
	uuid := 0
	s.g.newUUID = func() string { uuid++; return strconv.Itoa(uuid) }
	for i := range 3 + s.rng.IntN(3) {
		s.clients = append(s.clients, &simClient{name: fmt.Sprintf("c%d", i), meta: "a"})
	}
	return s
}

// token registers an outstanding request and returns the func that retires it,
// failing the test if it is retired twice.
func (s *sim) token(desc string) func() {
	s.seq++
	n := s.seq
	s.open[n] = desc
	return func() {
		if _, ok := s.open[n]; !ok {
			s.t.Fatalf("reply for %s delivered twice\n%s", desc, s.trace())
		}
		delete(s.open, n)
	}
}

func (s *sim) trace() string {
	var b bytes.Buffer
	for _, l := range s.log {
		b.WriteString(l + "\n")
	}
	return b.String()
}

func (s *sim) run(steps int) {
	for range steps {
		c := s.clients[s.rng.IntN(len(s.clients))]
		switch r := s.rng.IntN(10); {
		case r < 3:
			s.join(c)
		case r < 5:
			s.sync(c)
		case r < 7:
			s.heartbeat(c)
		case r < 8:
			s.leave(c)
		default:
			s.now = s.now.Add(time.Duration(s.rng.IntN(15000)) * time.Millisecond)
			s.log = append(s.log, "tick "+s.now.Format(time.TimeOnly))
			s.g.Tick(s.now)
		}
		s.check()
	}
}

func (s *sim) join(c *simClient) {
	if c.inJoin {
		return
	}
	if s.rng.IntN(4) == 0 {
		c.meta = string(rune('a' + s.rng.IntN(2))) // sometimes new metadata
	}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = int16(3 + s.rng.IntN(2))
	req.MemberID = c.id
	req.ProtocolType = "consumer"
	req.SessionTimeoutMillis = 10000
	req.RebalanceTimeoutMillis = int32(10000 + s.rng.IntN(20000))
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte(c.meta)}}
	s.log = append(s.log, fmt.Sprintf("join %s id=%q v%d", c.name, c.id, req.Version))
	c.inJoin = true
	done := s.token("join " + c.name)
	s.g.Join(s.now, req, c.name, "h", func(resp *kmsg.JoinGroupResponse) {
		done()
		c.inJoin = false
		s.log = append(s.log, fmt.Sprintf("  %s join reply err=%d gen=%d id=%s", c.name, resp.ErrorCode, resp.Generation, resp.MemberID))
		switch resp.ErrorCode {
		case 0:
			c.id, c.gen = resp.MemberID, resp.Generation
			c.leader = resp.LeaderID == resp.MemberID
			c.members = c.members[:0]
			for _, m := range resp.Members {
				c.members = append(c.members, m.MemberID)
			}
		case codeMemberIDRequired:
			c.id = resp.MemberID
		case codeUnknownMemberID:
			c.id, c.gen = "", 0
		}
	})
}

func (s *sim) sync(c *simClient) {
	if c.inSync || c.id == "" {
		return
	}
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 3
	req.MemberID = c.id
	req.Generation = c.gen
	var plan map[string][]byte
	if c.leader && len(c.members) > 0 {
		plan = map[string][]byte{}
		for _, id := range c.members {
			if s.rng.IntN(5) == 0 {
				continue // left out: gets an empty assignment
			}
			a := []byte(fmt.Sprintf("%s@%d", id, c.gen))
			plan[id] = a
			req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
		}
	}
	s.log = append(s.log, fmt.Sprintf("sync %s gen=%d leader=%v", c.name, c.gen, plan != nil))
	c.inSync = true
	done := s.token("sync " + c.name)
	before := s.g.state
	s.g.Sync(s.now, req, func(resp *kmsg.SyncGroupResponse) {
		done()
		c.inSync = false
		s.log = append(s.log, fmt.Sprintf("  %s sync reply err=%d", c.name, resp.ErrorCode))
	})
	if plan != nil && before == stateCompletingRebalance && s.g.state == stateStable && s.g.gen == c.gen {
		s.assigned[c.gen] = plan
	}
}

func (s *sim) heartbeat(c *simClient) {
	req := kmsg.NewPtrHeartbeatRequest()
	req.MemberID = c.id
	req.Generation = c.gen
	resp := s.g.Heartbeat(s.now, req)
	s.log = append(s.log, fmt.Sprintf("heartbeat %s err=%d", c.name, resp.ErrorCode))
}

func (s *sim) leave(c *simClient) {
	if c.id == "" {
		return
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 3
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: c.id}}
	s.g.Leave(s.now, req)
	s.log = append(s.log, "leave "+c.name)
	c.id, c.gen, c.leader = "", 0, false
}

func (s *sim) check() {
	g := s.g
	if g.gen < s.lastGen {
		s.t.Fatalf("generation went from %d to %d\n%s", s.lastGen, g.gen, s.trace())
	}
	s.lastGen = g.gen
	if g.state == stateStable {
		plan, ok := s.assigned[g.gen]
		if !ok {
			s.t.Fatalf("Stable at generation %d without a leader's assignment\n%s", g.gen, s.trace())
		}
		for id, m := range g.members {
			if !bytes.Equal(m.assignment, plan[id]) {
				s.t.Fatalf("member %s holds %q, leader assigned %q\n%s", id, m.assignment, plan[id], s.trace())
			}
		}
	}
	if (g.state == stateStable || g.state == stateEmpty) && len(s.open) > 0 {
		s.t.Fatalf("group %s with requests waiting: %v\n%s", g.state, s.open, s.trace())
	}
}
