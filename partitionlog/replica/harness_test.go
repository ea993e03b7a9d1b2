package replica

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// t0 is time zero in transcripts; at=5s means t0 plus five seconds.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// harness runs transcript commands against one Leader:
//
//	new self=1 replicas=1,2,3 isr=1,2,3 end=0 hw=0 [epoch=0] [lag=30s] [at=0s]
//	append end=10 [at=...]
//	fetch 2 offset=10 [at=...]
//	propose [at=...]
//	commit isr=1,2
//	reject
//	state
//
// Commands without at= happen at the latest time given. After every command it checks
// that the HW never decreased and never passed the leader's end.
type harness struct {
	l      *Leader
	now    time.Time
	prevHW int64
}

func (h *harness) do(t *testing.T, c cmd) string {
	t.Helper()
	if at, ok := c.kv["at"]; ok {
		h.now = t0.Add(dur(t, c, at))
	}
	if c.name != "new" && h.l == nil {
		t.Fatalf("%s: %s before new", c.pos, c.name)
	}
	out := h.run(t, c)
	if h.l.HighWatermark() < h.prevHW {
		t.Errorf("%s: HW went back from %d to %d", c.pos, h.prevHW, h.l.HighWatermark())
	}
	if h.l.HighWatermark() > h.l.LogEnd() {
		t.Errorf("%s: HW %d past the leader's end %d", c.pos, h.l.HighWatermark(), h.l.LogEnd())
	}
	h.prevHW = h.l.HighWatermark()
	return out
}

func (h *harness) run(t *testing.T, c cmd) string {
	switch c.name {
	case "new":
		if _, ok := c.kv["at"]; !ok {
			h.now = t0
		}
		cfg := Config{}
		if lag, ok := c.kv["lag"]; ok {
			cfg.LagTimeMax = dur(t, c, lag)
		}
		h.l = NewLeader(cfg, int32(num(t, c, c.kv["self"])), ids(t, c, c.kv["replicas"]),
			ids(t, c, c.kv["isr"]), int32(num(t, c, orDefault(c.kv["epoch"], "0"))),
			num(t, c, c.kv["end"]), num(t, c, c.kv["hw"]), h.now)
		h.prevHW = h.l.HighWatermark()
		return h.state()
	case "append":
		return hw(h.l, h.l.LocalAppended(num(t, c, c.kv["end"]), h.now))
	case "fetch":
		if len(c.args) != 1 {
			t.Fatalf("%s: fetch wants one replica id", c.pos)
		}
		id := int32(num(t, c, c.args[0]))
		return hw(h.l, h.l.FollowerFetched(id, num(t, c, c.kv["offset"]), h.now))
	case "propose":
		pending, wasPending := h.l.Pending()
		isr, ok := h.l.Propose(h.now)
		switch {
		case ok:
			return "proposed isr=" + join(isr) + " maximal=" + join(h.l.MaximalISR())
		case wasPending:
			return "no proposal: isr=" + join(pending) + " pending"
		default:
			return "no change"
		}
	case "commit":
		return hw(h.l, h.l.Committed(ids(t, c, c.kv["isr"])))
	case "reject":
		return hw(h.l, h.l.Rejected())
	case "state":
		return h.state()
	}
	t.Fatalf("%s: unknown command %q", c.pos, c.name)
	return ""
}

func (h *harness) state() string {
	l := h.l
	var b strings.Builder
	pending := "-"
	if p, ok := l.Pending(); ok {
		pending = join(p)
	}
	fmt.Fprintf(&b, "epoch=%d end=%d hw=%d\n", l.LeaderEpoch(), l.LogEnd(), l.HighWatermark())
	fmt.Fprintf(&b, "isr=%s maximal=%s pending=%s\n", join(l.ISR()), join(l.MaximalISR()), pending)
	for _, f := range l.Followers() {
		member := "out"
		switch {
		case f.InISR:
			member = "isr"
		case f.InMaximalISR:
			member = "joining"
		}
		fmt.Fprintf(&b, "%d: end=%d caught-up=%s %s\n", f.ID, f.End, f.LastCaughtUp.Sub(t0), member)
	}
	return b.String()
}

func hw(l *Leader, advanced bool) string {
	if advanced {
		return fmt.Sprintf("hw=%d (advanced)", l.HighWatermark())
	}
	return fmt.Sprintf("hw=%d", l.HighWatermark())
}

func join(ids []int32) string {
	if len(ids) == 0 {
		return "-"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

func ids(t *testing.T, c cmd, s string) []int32 {
	t.Helper()
	if s == "" || s == "-" {
		return nil
	}
	var out []int32
	for _, f := range strings.Split(s, ",") {
		out = append(out, int32(num(t, c, f)))
	}
	return out
}

func num(t *testing.T, c cmd, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: bad number %q: %v", c.pos, s, err)
	}
	return n
}

func dur(t *testing.T, c cmd, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: bad duration %q: %v", c.pos, s, err)
	}
	return d
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
