package replica

import (
	"slices"
	"time"
)

// DefaultLagTimeMax is Kafka's default replica.lag.time.max.ms.
const DefaultLagTimeMax = 30 * time.Second

// Config tunes a Leader. The zero value is Kafka's defaults.
type Config struct {
	// LagTimeMax is how long a follower in the ISR may go without catching up before
	// the leader proposes to remove it (Kafka's replica.lag.time.max.ms). Zero or
	// negative means DefaultLagTimeMax.
	LagTimeMax time.Duration
}

func (c Config) withDefaults() Config {
	if c.LagTimeMax <= 0 {
		c.LagTimeMax = DefaultLagTimeMax
	}
	return c
}

// FollowerState describes one follower as the leader sees it.
type FollowerState struct {
	ID int32
	// End is the follower's log end offset: the offset of its latest fetch, -1 until
	// it fetches from this leader.
	End int64
	// LastCaughtUp is the last time the follower was known to hold everything the
	// leader held (Kafka's lastCaughtUpTimeMs).
	LastCaughtUp time.Time
	// InISR reports membership of the committed ISR; InMaximalISR also counts a
	// pending expansion.
	InISR, InMaximalISR bool
}

// follower is the leader's record of one remote replica.
type follower struct {
	end          int64
	lastCaughtUp time.Time
	// The leader's end offset and the time at the follower's previous fetch: a fetch
	// that reaches prevLeaderEnd proves the follower was caught up at prevFetchTime.
	prevLeaderEnd int64
	prevFetchTime time.Time
}

// Leader tracks the followers of one partition this node leads. It is a deterministic
// state machine: it starts no goroutines, does no I/O and takes no locks, and time is
// an argument. The caller serializes all calls.
type Leader struct {
	cfg   Config
	self  int32
	epoch int32
	// epochStart is the leader's end offset when it began leading: a follower must
	// reach it before it may join the ISR (Kafka's leaderEpochStartOffset).
	epochStart int64
	replicas   []int32
	isr        []int32 // committed
	pending    []int32 // the proposed ISR; meaningful only when hasPending
	hasPending bool
	end        int64
	hw         int64
	followers  map[int32]*follower
	clock      time.Time // latest time seen, for followers first met in Committed
}

// NewLeader starts leading at leaderEpoch with the committed ISR; localEnd is the
// leader's log end offset, which is also where its epoch starts, and highWatermark its
// checkpointed HW (clamped to [0, localEnd], as Kafka clamps a loaded HW to the log).
// Followers start with unknown end offsets (-1) and lastCaughtUp = now, so each gets
// the full lag time before it can be shrunk out. The leader counts itself in the ISR
// whether or not isr lists it.
func NewLeader(cfg Config, self int32, replicas, isr []int32, leaderEpoch int32, localEnd, highWatermark int64, now time.Time) *Leader {
	l := &Leader{
		cfg:        cfg.withDefaults(),
		self:       self,
		epoch:      leaderEpoch,
		epochStart: localEnd,
		replicas:   slices.Clone(replicas),
		isr:        slices.Clone(isr),
		end:        localEnd,
		hw:         min(max(highWatermark, 0), localEnd),
		followers:  make(map[int32]*follower),
		clock:      now,
	}
	l.track(replicas)
	l.track(isr)
	l.maybeAdvanceHW()
	return l
}

// track starts following any id it does not know yet.
func (l *Leader) track(ids []int32) {
	for _, id := range ids {
		if id == l.self || l.followers[id] != nil {
			continue
		}
		l.followers[id] = &follower{
			end:           -1,
			lastCaughtUp:  l.clock,
			prevLeaderEnd: l.end,
			prevFetchTime: l.clock,
		}
	}
}

func (l *Leader) observe(now time.Time) {
	if now.After(l.clock) {
		l.clock = now
	}
}

// LocalAppended records the leader's new log end offset. The end never moves back
// while leading; a smaller value is ignored.
func (l *Leader) LocalAppended(end int64, now time.Time) (hwAdvanced bool) {
	l.observe(now)
	l.end = max(l.end, end)
	return l.maybeAdvanceHW()
}

// FollowerFetched records a follower's fetch at fetchOffset (= its log end offset).
// A follower is caught up when it fetches at or past the leader's end offset as it is
// now (caught up now) or as it was at the follower's previous fetch (caught up then):
// Kafka's lastCaughtUpTimeMs rule. Fetches from the leader itself, from replicas the
// leader does not know, and at offsets outside [0, leader end] change nothing: the
// caller answers those with an error (OFFSET_OUT_OF_RANGE for an offset past the end).
func (l *Leader) FollowerFetched(id int32, fetchOffset int64, now time.Time) (hwAdvanced bool) {
	l.observe(now)
	f := l.followers[id]
	if f == nil || fetchOffset < 0 || fetchOffset > l.end {
		return false
	}
	switch {
	case fetchOffset >= l.end:
		f.lastCaughtUp = later(f.lastCaughtUp, now)
	case fetchOffset >= f.prevLeaderEnd:
		f.lastCaughtUp = later(f.lastCaughtUp, f.prevFetchTime)
	}
	f.prevLeaderEnd, f.prevFetchTime = l.end, now
	f.end = fetchOffset
	return l.maybeAdvanceHW()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// HighWatermark is the offset below which every record is held by every member of the
// maximal ISR. It never decreases.
func (l *Leader) HighWatermark() int64 { return l.hw }

// LogEnd is the leader's log end offset.
func (l *Leader) LogEnd() int64 { return l.end }

// LeaderEpoch is the epoch this leader leads in.
func (l *Leader) LeaderEpoch() int32 { return l.epoch }

// ISR is the committed ISR, in the order the store gave it.
func (l *Leader) ISR() []int32 { return slices.Clone(l.isr) }

// MaximalISR is the committed ISR followed by the members a pending change adds
// (KIP-497): the HW waits for them already, while members a pending change removes
// still count until the removal is committed.
func (l *Leader) MaximalISR() []int32 {
	m := slices.Clone(l.isr)
	if l.hasPending {
		for _, id := range l.pending {
			if !slices.Contains(m, id) {
				m = append(m, id)
			}
		}
	}
	return m
}

// Pending returns the proposed ISR awaiting its compare-and-set, if any.
func (l *Leader) Pending() (isr []int32, ok bool) {
	if !l.hasPending {
		return nil, false
	}
	return slices.Clone(l.pending), true
}

// maybeAdvanceHW raises the HW to the lowest end offset in the maximal ISR, the
// leader's own end included, if that is higher than the HW.
func (l *Leader) maybeAdvanceHW() bool {
	low := l.end
	for _, id := range l.MaximalISR() {
		if f := l.followers[id]; f != nil {
			low = min(low, f.end)
		}
	}
	if low <= l.hw {
		return false
	}
	l.hw = low
	return true
}

// Propose returns the ISR change to make now, if any and if none is pending. It
// removes ISR followers that are not at the leader's end and have not caught up for
// more than LagTimeMax (Kafka's maybeShrinkIsr rule), and adds replicas outside the
// ISR whose end has reached both the HW and the start of the leader's epoch (Kafka's
// isFollowerInSync rule). The leader itself never leaves. The proposal stays pending
// until Committed or Rejected; while pending, additions count towards the HW and
// removals do not.
func (l *Leader) Propose(now time.Time) (newISR []int32, ok bool) {
	l.observe(now)
	if l.hasPending {
		return nil, false
	}
	next := make([]int32, 0, len(l.replicas))
	changed := false
	for _, id := range l.isr {
		if l.outOfSync(id, now) {
			changed = true
			continue
		}
		next = append(next, id)
	}
	for _, id := range l.replicas {
		if !slices.Contains(l.isr, id) && l.canJoin(id, now) {
			next = append(next, id)
			changed = true
		}
	}
	if !changed {
		return nil, false
	}
	l.pending, l.hasPending = next, true
	return slices.Clone(next), true
}

// outOfSync reports whether ISR member id should leave: Kafka keeps a follower that
// is at the leader's end or caught up within LagTimeMax.
func (l *Leader) outOfSync(id int32, now time.Time) bool {
	f := l.followers[id]
	if f == nil { // the leader itself
		return false
	}
	return f.end != l.end && now.Sub(f.lastCaughtUp) > l.cfg.LagTimeMax
}

// canJoin reports whether replica id may join the ISR: it reached the HW and the
// leader's epoch start, and it is still fetching (caught up within LagTimeMax) — a
// replica that reached the HW and then died must not be proposed back in.
func (l *Leader) canJoin(id int32, now time.Time) bool {
	f := l.followers[id]
	return f != nil && f.end >= l.hw && f.end >= l.epochStart && now.Sub(f.lastCaughtUp) <= l.cfg.LagTimeMax
}

// Committed tells the leader the store now holds isr: its proposal won, or someone
// else's change did. Any pending proposal is settled. The HW may advance if a member
// that held it back left.
func (l *Leader) Committed(isr []int32) (hwAdvanced bool) {
	l.isr = slices.Clone(isr)
	l.pending, l.hasPending = nil, false
	l.track(isr)
	return l.maybeAdvanceHW()
}

// Rejected tells the leader its pending proposal lost; Propose may try again. The HW
// may advance if a proposed member that held it back is no longer counted.
func (l *Leader) Rejected() (hwAdvanced bool) {
	l.pending, l.hasPending = nil, false
	return l.maybeAdvanceHW()
}

// FollowerState returns what the leader knows of follower id.
func (l *Leader) FollowerState(id int32) (FollowerState, bool) {
	f := l.followers[id]
	if f == nil {
		return FollowerState{}, false
	}
	return FollowerState{
		ID:           id,
		End:          f.end,
		LastCaughtUp: f.lastCaughtUp,
		InISR:        slices.Contains(l.isr, id),
		InMaximalISR: slices.Contains(l.MaximalISR(), id),
	}, true
}

// Followers returns the state of every follower, in replica order and then in the
// order the ISR named any others.
func (l *Leader) Followers() []FollowerState {
	var out []FollowerState
	seen := map[int32]bool{}
	for _, id := range append(slices.Clone(l.replicas), l.isr...) {
		if seen[id] {
			continue
		}
		seen[id] = true
		if s, ok := l.FollowerState(id); ok {
			out = append(out, s)
		}
	}
	return out
}
