package classic

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt with the actual output")

// TestTranscripts runs the transcripts in testdata/: each case is a command, a line
// "----", and the expected output up to a blank line. Lines starting with # before a
// command are comments (they cite the Kafka behaviour the case checks).
//
// Member ids are deterministic: the client id (the member's name in the transcript)
// followed by a sequence number, e.g. m1-1; a static member's id starts with its
// instance id, as in Kafka.
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runTranscript(t, file)
		})
	}
}

type transcriptCase struct {
	prefix   []string // comments and blank lines before the command
	line     int
	command  string
	expected string
}

func parseTranscript(t *testing.T, file string) (cases []transcriptCase, trailer []string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var prefix []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l == "" || strings.HasPrefix(l, "#") {
			prefix = append(prefix, l)
			continue
		}
		c := transcriptCase{prefix: prefix, line: i + 1, command: l}
		prefix = nil
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command without ----", file, i+1)
		}
		i += 2
		var out []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			out = append(out, lines[i])
		}
		c.expected = strings.Join(out, "\n")
		cases = append(cases, c)
	}
	return cases, prefix
}

func runTranscript(t *testing.T, file string) {
	cases, trailer := parseTranscript(t, file)
	h := newHarness(Config{})
	var buf strings.Builder
	for _, c := range cases {
		got := strings.TrimRight(h.run(t, c.command), "\n")
		if !*rewrite && got != c.expected {
			t.Errorf("%s:%d: %s\nexpected:\n%s\ngot:\n%s", file, c.line, c.command, c.expected, got)
		}
		for _, p := range c.prefix {
			buf.WriteString(p + "\n")
		}
		fmt.Fprintf(&buf, "%s\n----\n%s\n\n", c.command, got)
	}
	for _, p := range trailer {
		buf.WriteString(p + "\n")
	}
	out := strings.TrimRight(buf.String(), "\n") + "\n"
	if *rewrite {
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// harness drives one Group from transcript commands and prints what it does.
type harness struct {
	g         *Group
	cfg       Config
	t0, now   time.Time
	seq       int
	ids       map[string]string // member name -> its current member id
	out       *strings.Builder
	persisted *kmsg.GroupMetadataValue
}

func newHarness(cfg Config) *harness {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &harness{cfg: cfg, t0: t0, now: t0, ids: map[string]string{}, out: new(strings.Builder)}
	h.setGroup(New("g", cfg))
	return h
}

func (h *harness) setGroup(g *Group) {
	h.g = g
	g.newUUID = func() string { h.seq++; return strconv.Itoa(h.seq) }
	g.Persist = func(v kmsg.GroupMetadataValue) {
		h.persisted = &v
		h.printf("persist: %s", formatValue(v))
	}
}

func (h *harness) printf(format string, args ...any) {
	fmt.Fprintf(h.out, format+"\n", args...)
}

// cmd is a parsed command: its name, positional arguments and key=value options.
type cmd struct {
	name string
	args []string
	opts map[string]string
}

func parseCmd(line string) cmd {
	fields := strings.Fields(line)
	c := cmd{name: fields[0], opts: map[string]string{}}
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			c.opts[k] = v
		} else {
			c.args = append(c.args, f)
		}
	}
	return c
}

func (c cmd) str(key, def string) string {
	if v, ok := c.opts[key]; ok {
		return v
	}
	return def
}

func (c cmd) int(key string, def int) int {
	v, ok := c.opts[key]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		panic(fmt.Sprintf("%s=%s: %v", key, v, err))
	}
	return n
}

func (c cmd) dur(key string, def time.Duration) time.Duration {
	v, ok := c.opts[key]
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		panic(fmt.Sprintf("%s=%s: %v", key, v, err))
	}
	return d
}

func (c cmd) strPtr(key string) *string {
	if v, ok := c.opts[key]; ok {
		return &v
	}
	return nil
}

// memberID is the member id a command sends for name: id= overrides, else the id
// the member was last given.
func (h *harness) memberID(c cmd, name string) string {
	return c.str("id", h.ids[name])
}

// resolve maps a member name to its current id; other strings are raw ids.
func (h *harness) resolve(name string) string {
	if id, ok := h.ids[name]; ok {
		return id
	}
	return name
}

func (h *harness) run(t *testing.T, line string) string {
	h.out.Reset()
	c := parseCmd(line)
	switch c.name {
	case "config":
		h.cfg = Config{
			InitialRebalanceDelay: c.dur("delay", 0),
			MinSessionTimeout:     c.dur("min", 0),
			MaxSessionTimeout:     c.dur("max", 0),
			MaxSize:               c.int("maxsize", 0),
		}
		h.setGroup(New("g", h.cfg))
	case "join":
		h.join(c)
	case "sync":
		h.sync(c)
	case "heartbeat":
		h.heartbeat(c)
	case "leave":
		h.leave(c)
	case "tick":
		h.now = h.now.Add(mustDur(c.args[0]))
		h.g.Tick(h.now)
	case "commit":
		id := h.memberID(c, c.args[0])
		if c.args[0] == "-" {
			id = ""
		}
		h.printf("commit: %s", codeName(h.g.ValidateCommit(id, c.strPtr("instance"), int32(c.int("gen", -1)))))
	case "fetch":
		h.printf("fetch: %s", codeName(h.g.ValidateOffsetFetch(h.memberID(c, c.args[0]), int32(c.int("epoch", -1)))))
	case "restore":
		h.setGroup(Restore("g", h.cfg, *h.persisted, h.now))
		h.printf("restored")
	case "delete":
		h.printf("delete: %s", codeName(h.g.Delete()))
	case "describe":
		h.describe()
		return h.out.String()
	default:
		t.Fatalf("unknown command %q", c.name)
	}
	h.status()
	return h.out.String()
}

func mustDur(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// join: join NAME [v=9] [id=ID] [instance=I] [type=consumer] [protocols=range,sticky:meta]
// [session=10s] [rebalance=30s]
func (h *harness) join(c cmd) {
	name := c.args[0]
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = int16(c.int("v", 9))
	req.Group = "g"
	req.MemberID = h.memberID(c, name)
	req.InstanceID = c.strPtr("instance")
	req.ProtocolType = c.str("type", "consumer")
	req.SessionTimeoutMillis = int32(c.dur("session", 10*time.Second).Milliseconds())
	req.RebalanceTimeoutMillis = int32(c.dur("rebalance", 30*time.Second).Milliseconds())
	for _, p := range strings.Split(c.str("protocols", "range"), ",") {
		if p == "" {
			continue
		}
		n, meta, _ := strings.Cut(p, ":")
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: []byte(meta)})
	}
	h.g.Join(h.now, req, name, "host-"+name, func(resp *kmsg.JoinGroupResponse) {
		if resp.ErrorCode == 0 || resp.ErrorCode == codeMemberIDRequired {
			h.ids[name] = resp.MemberID
		}
		h.printf("%s: join %s", name, formatJoin(resp))
	})
}

func formatJoin(r *kmsg.JoinGroupResponse) string {
	if r.ErrorCode != 0 {
		return fmt.Sprintf("%s member=%s", codeName(r.ErrorCode), r.MemberID)
	}
	s := fmt.Sprintf("gen=%d member=%s leader=%s protocol=%s", r.Generation, r.MemberID, r.LeaderID, deref(r.Protocol))
	if r.SkipAssignment {
		s += " skip-assignment"
	}
	if len(r.Members) > 0 {
		var ms []string
		for _, m := range r.Members {
			x := m.MemberID
			if m.InstanceID != nil {
				x += "(" + *m.InstanceID + ")"
			}
			if len(m.ProtocolMetadata) > 0 {
				x += ":" + string(m.ProtocolMetadata)
			}
			ms = append(ms, x)
		}
		s += " members=[" + strings.Join(ms, " ") + "]"
	}
	return s
}

// sync: sync NAME gen=N [assign=m1:a,m2:b] [v=5] [id=ID] [instance=I] [type=T] [protocol=P]
func (h *harness) sync(c cmd) {
	name := c.args[0]
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = int16(c.int("v", 5))
	req.Group = "g"
	req.MemberID = h.memberID(c, name)
	req.Generation = int32(c.int("gen", -1))
	req.InstanceID = c.strPtr("instance")
	req.ProtocolType = c.strPtr("type")
	req.Protocol = c.strPtr("protocol")
	if a := c.str("assign", ""); a != "" {
		for _, kv := range strings.Split(a, ",") {
			n, v, _ := strings.Cut(kv, ":")
			req.GroupAssignment = append(req.GroupAssignment,
				kmsg.SyncGroupRequestGroupAssignment{MemberID: h.resolve(n), MemberAssignment: []byte(v)})
		}
	}
	h.g.Sync(h.now, req, func(resp *kmsg.SyncGroupResponse) {
		if resp.ErrorCode != 0 {
			h.printf("%s: sync %s", name, codeName(resp.ErrorCode))
			return
		}
		h.printf("%s: sync assignment=%q protocol=%s", name, resp.MemberAssignment, deref(resp.Protocol))
	})
}

// heartbeat: heartbeat NAME gen=N [id=ID] [instance=I]
func (h *harness) heartbeat(c cmd) {
	name := c.args[0]
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.MemberID = h.memberID(c, name)
	req.Generation = int32(c.int("gen", -1))
	req.InstanceID = c.strPtr("instance")
	resp := h.g.Heartbeat(h.now, req)
	h.printf("%s: heartbeat %s", name, codeName(resp.ErrorCode))
}

// leave: leave WHO... [v=3], where WHO is NAME (its member id), @I (instance id only),
// or NAME@I (both).
func (h *harness) leave(c cmd) {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = int16(c.int("v", 3))
	for _, who := range c.args {
		name, inst, hasInst := strings.Cut(who, "@")
		m := kmsg.LeaveGroupRequestMember{}
		if name != "" {
			m.MemberID = h.resolve(name)
		}
		if hasInst {
			m.InstanceID = &inst
		}
		req.Members = append(req.Members, m)
	}
	if req.Version < 3 {
		req.MemberID = req.Members[0].MemberID
		req.Members = nil
	}
	resp := h.g.Leave(h.now, req)
	if req.Version < 3 {
		h.printf("leave: %s", codeName(resp.ErrorCode))
		return
	}
	var ms []string
	for _, m := range resp.Members {
		x := m.MemberID
		if m.InstanceID != nil {
			x += "@" + *m.InstanceID
		}
		ms = append(ms, x+" "+codeName(m.ErrorCode))
	}
	h.printf("leave: %s [%s]", codeName(resp.ErrorCode), strings.Join(ms, ", "))
}

// status prints the group after a command: state, generation, leader, members in join
// order, pending member ids, and when Tick is next due.
func (h *harness) status() {
	g := h.g
	s := fmt.Sprintf("state=%s gen=%d", g.State(), g.Generation())
	if g.leader != "" {
		s += " leader=" + g.leader
	}
	s += " members=[" + strings.Join(g.order, " ") + "]"
	if len(g.pending) > 0 {
		s += " pending=[" + strings.Join(sortedKeys(g.pending), " ") + "]"
	}
	var waiting []string
	for _, m := range g.ordered() {
		if m.join != nil {
			waiting = append(waiting, "join:"+m.id)
		}
		if m.sync != nil {
			waiting = append(waiting, "sync:"+m.id)
		}
	}
	if len(waiting) > 0 {
		s += " waiting=[" + strings.Join(waiting, " ") + "]"
	}
	if d, ok := g.NextDeadline(); ok {
		s += " next=+" + d.Sub(h.now).String()
	}
	h.printf("%s", s)
}

func (h *harness) describe() {
	d := h.g.Describe()
	h.printf("group=%s state=%s type=%s protocol=%s", d.Group, d.State, d.ProtocolType, d.Protocol)
	for _, m := range d.Members {
		h.printf("  %s instance=%s client=%s host=%s metadata=%q assignment=%q",
			m.MemberID, deref(m.InstanceID), m.ClientID, m.ClientHost, m.ProtocolMetadata, m.MemberAssignment)
	}
}

func formatValue(v kmsg.GroupMetadataValue) string {
	s := fmt.Sprintf("v%d gen=%d type=%s protocol=%s leader=%s", v.Version, v.Generation, v.ProtocolType, deref(v.Protocol), deref(v.Leader))
	var ms []string
	for _, m := range v.Members {
		x := m.MemberID
		if m.InstanceID != nil {
			x += "(" + *m.InstanceID + ")"
		}
		ms = append(ms, fmt.Sprintf("%s:%q", x, m.Assignment))
	}
	return s + " members=[" + strings.Join(ms, " ") + "]"
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func codeName(code int16) string {
	if code == 0 {
		return "OK"
	}
	var ke *kerr.Error
	if errors.As(kerr.ErrorForCode(code), &ke) {
		return ke.Message
	}
	return strconv.Itoa(int(code))
}

// TestCodesMatchKerr holds the package's error-code constants to franz-go's table.
func TestCodesMatchKerr(t *testing.T) {
	for code, want := range map[int16]*kerr.Error{
		codeCoordinatorNotAvailable:   kerr.CoordinatorNotAvailable,
		codeIllegalGeneration:         kerr.IllegalGeneration,
		codeInconsistentGroupProtocol: kerr.InconsistentGroupProtocol,
		codeUnknownMemberID:           kerr.UnknownMemberID,
		codeInvalidSessionTimeout:     kerr.InvalidSessionTimeout,
		codeRebalanceInProgress:       kerr.RebalanceInProgress,
		codeNonEmptyGroup:             kerr.NonEmptyGroup,
		codeGroupIDNotFound:           kerr.GroupIDNotFound,
		codeMemberIDRequired:          kerr.MemberIDRequired,
		codeGroupMaxSizeReached:       kerr.GroupMaxSizeReached,
		codeFencedInstanceID:          kerr.FencedInstanceID,
	} {
		if code != want.Code {
			t.Errorf("%s: code %d, kerr says %d", want.Message, code, want.Code)
		}
	}
}
