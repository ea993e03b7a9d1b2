package replica

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// model is a naive restatement of the rules: it keeps every fetch and recomputes
// everything from that history on each step.
type model struct {
	lag        time.Duration
	self       int32
	replicas   []int32
	start      time.Time
	startEnd   int64 // leader end at start = epoch start
	end        int64
	hw         int64
	isr        []int32
	pending    []int32 // nil when none
	hasPending bool
	fetches    map[int32][]fetchRecord
}

type fetchRecord struct {
	at         time.Time
	offset     int64
	leaderEnd  int64 // the leader's end when the fetch arrived
	wasCurrent bool  // offset reached the leader's end at the time
}

func (m *model) followerEnd(id int32) int64 {
	if fs := m.fetches[id]; len(fs) > 0 {
		return fs[len(fs)-1].offset
	}
	return -1
}

func (m *model) maximal() []int32 {
	out := slices.Clone(m.isr)
	for _, id := range m.pending {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// settleHW applies "HW = max(HW, min end over maximal ISR, leader included)".
func (m *model) settleHW() {
	low := m.end
	for _, id := range m.maximal() {
		if id != m.self {
			low = min(low, m.followerEnd(id))
		}
	}
	m.hw = max(m.hw, low)
}

// lastCaughtUp recomputes Kafka's lastCaughtUpTimeMs from the whole fetch history:
// a fetch at or past the leader's end proves the follower caught up then; one at or
// past the leader's end as of the previous fetch (or the leader's start) proves it
// caught up at that previous fetch.
func (m *model) lastCaughtUp(id int32) time.Time {
	best := m.start
	prevAt, prevEnd := m.start, m.startEnd
	for _, f := range m.fetches[id] {
		switch {
		case f.offset >= f.leaderEnd:
			best = later(best, f.at)
		case f.offset >= prevEnd:
			best = later(best, prevAt)
		}
		prevAt, prevEnd = f.at, f.leaderEnd
	}
	return best
}

func (m *model) expectedProposal(now time.Time) ([]int32, bool) {
	if m.hasPending {
		return nil, false
	}
	var next []int32
	changed := false
	for _, id := range m.isr {
		if id != m.self && m.followerEnd(id) != m.end && now.Sub(m.lastCaughtUp(id)) > m.lag {
			changed = true
			continue
		}
		next = append(next, id)
	}
	for _, id := range m.replicas {
		e := m.followerEnd(id)
		if id != m.self && !slices.Contains(m.isr, id) && e >= m.hw && e >= m.startEnd && now.Sub(m.lastCaughtUp(id)) <= m.lag {
			next = append(next, id)
			changed = true
		}
	}
	if !changed {
		return nil, false
	}
	return next, true
}

// TestLeaderMatchesModel drives a Leader and the naive model through random appends,
// fetches, time steps and proposals settled at random, and checks after every step:
// the HW is the running max of the minimum end over the maximal ISR (KIP-497), it
// never passes the leader's end nor decreases, proposals match the model, and every
// follower a proposal removes had not caught up in the last LagTimeMax
// (replica.lag.time.max.ms, Kafka's maybeShrinkIsr).
func TestLeaderMatchesModel(t *testing.T) {
	for seed := range uint64(300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkAgainstModel(t, seed) })
	}
}

func checkAgainstModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	lag := 10 * time.Second
	n := 1 + rng.IntN(5)
	replicas := make([]int32, n)
	for i := range replicas {
		replicas[i] = int32(i + 1)
	}
	self := replicas[rng.IntN(n)]
	randomISR := func() []int32 {
		var isr []int32
		for _, id := range replicas {
			if id == self || rng.IntN(2) == 0 {
				isr = append(isr, id)
			}
		}
		return isr
	}
	now := t0
	end := rng.Int64N(20)
	hw := rng.Int64N(25)
	isr := randomISR()
	l := NewLeader(Config{LagTimeMax: lag}, self, replicas, isr, 3, end, hw, now)
	m := &model{lag: lag, self: self, replicas: replicas, start: now, startEnd: end, end: end,
		hw: min(hw, end), isr: isr, fetches: map[int32][]fetchRecord{}}
	m.settleHW()

	var trace []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d after:\n  %s\n%s", seed, joinLines(trace), fmt.Sprintf(format, args...))
	}
	check := func(prevHW int64) {
		t.Helper()
		got := l.HighWatermark()
		switch {
		case got != m.hw:
			fail("HW %d, model %d (maximal %v)", got, m.hw, m.maximal())
		case got < prevHW:
			fail("HW went back from %d to %d", prevHW, got)
		case got > l.LogEnd():
			fail("HW %d past the leader's end %d", got, l.LogEnd())
		case !slices.Equal(l.MaximalISR(), m.maximal()):
			fail("maximal ISR %v, model %v", l.MaximalISR(), m.maximal())
		}
	}
	check(m.hw)

	for range 200 {
		prevHW := l.HighWatermark()
		switch op := rng.IntN(10); {
		case op < 2: // time passes
			// Whole seconds half the time, so steps land exactly on LagTimeMax.
			step := time.Duration(rng.IntN(8)) * time.Second
			if rng.IntN(2) == 0 {
				step += time.Duration(rng.IntN(1000)) * time.Millisecond
			}
			now = now.Add(step)
			trace = append(trace, fmt.Sprintf("at %s", now.Sub(t0)))
		case op < 4:
			m.end += rng.Int64N(5)
			trace = append(trace, fmt.Sprintf("append end=%d", m.end))
			advanced := l.LocalAppended(m.end, now)
			m.settleHW()
			if advanced != (m.hw > prevHW) {
				fail("LocalAppended reported advanced=%v", advanced)
			}
		case op < 7:
			id := replicas[rng.IntN(n)]
			off := rng.Int64N(m.end + 1)
			if rng.IntN(20) == 0 {
				off = m.end + 1 + rng.Int64N(3) // out of range: ignored
			}
			trace = append(trace, fmt.Sprintf("fetch %d offset=%d", id, off))
			advanced := l.FollowerFetched(id, off, now)
			if id != self && off <= m.end {
				m.fetches[id] = append(m.fetches[id], fetchRecord{at: now, offset: off,
					leaderEnd: m.end, wasCurrent: off >= m.end})
			}
			m.settleHW()
			if advanced != (m.hw > prevHW) {
				fail("FollowerFetched reported advanced=%v", advanced)
			}
		case op < 9:
			want, wantOK := m.expectedProposal(now)
			got, ok := l.Propose(now)
			trace = append(trace, fmt.Sprintf("propose -> %v %v", got, ok))
			if ok != wantOK || !slices.Equal(got, want) {
				fail("Propose = %v %v, model %v %v", got, ok, want, wantOK)
			}
			if ok {
				m.checkShrinkLagged(fail, got, now)
				m.pending, m.hasPending = got, true
			}
		default: // settle, or someone else's change
			var advanced bool
			switch r := rng.IntN(10); {
			case m.hasPending && r < 6:
				trace = append(trace, "commit ours")
				advanced = l.Committed(m.pending)
				m.isr = m.pending
			case m.hasPending && r < 9:
				trace = append(trace, "reject")
				advanced = l.Rejected()
			default:
				m.isr = randomISR()
				trace = append(trace, fmt.Sprintf("commit theirs %v", m.isr))
				advanced = l.Committed(m.isr)
			}
			m.pending, m.hasPending = nil, false
			m.settleHW()
			if advanced != (m.hw > prevHW) {
				fail("settling reported advanced=%v", advanced)
			}
		}
		check(prevHW)
	}
}

// checkShrinkLagged checks, from the raw history, that each follower the proposal
// drops made no fetch reaching the leader's then-current end within LagTimeMax of now
// and is not at the leader's end now.
func (m *model) checkShrinkLagged(fail func(string, ...any), proposal []int32, now time.Time) {
	for _, id := range m.isr {
		if slices.Contains(proposal, id) {
			continue
		}
		if id == m.self {
			fail("the leader proposed to remove itself")
		}
		if m.followerEnd(id) == m.end {
			fail("removed %d, which is at the leader's end", id)
		}
		if now.Sub(m.start) <= m.lag {
			fail("removed %d within LagTimeMax of becoming leader", id)
		}
		for _, f := range m.fetches[id] {
			if f.wasCurrent && now.Sub(f.at) <= m.lag {
				fail("removed %d, caught up at %s", id, f.at.Sub(t0))
			}
		}
	}
}

func joinLines(s []string) string {
	if len(s) > 40 {
		s = append([]string{"..."}, s[len(s)-40:]...)
	}
	return strings.Join(s, "\n  ")
}
