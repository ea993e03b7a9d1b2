package consumer

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transcript tests: each testdata/*.txt file is a list of
// commands, each followed by "----" and the expected output, then a blank
// line. Lines starting with '#' are comments and say which rule of KIP-848 a
// step checks. `go test ./coordinator/consumer -rewrite` regenerates the
// outputs; review them as a diff.
var rewrite = flag.Bool("rewrite", false, "rewrite testdata transcripts with the actual output")

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runTranscript(t, file)
		})
	}
}

// step is one command of a transcript, or a run of comment/blank lines kept
// as they are on rewrite.
type step struct {
	line     int
	text     string // comment lines, when cmd is empty
	cmd      string
	expected string
}

func runTranscript(t *testing.T, file string) {
	steps := parseTranscript(t, file)
	h := newHarness()
	var out strings.Builder
	for _, s := range steps {
		if s.cmd == "" {
			out.WriteString(s.text)
			continue
		}
		got, err := h.run(s.cmd)
		if err != nil {
			t.Fatalf("%s:%d: %s: %v", file, s.line, s.cmd, err)
		}
		if err := checkInvariants(h.g); err != nil {
			t.Fatalf("%s:%d: %s: invariant: %v", file, s.line, s.cmd, err)
		}
		fmt.Fprintf(&out, "%s\n----\n%s", s.cmd, got)
		if !*rewrite && got != s.expected {
			t.Errorf("%s:%d: %s\n got:\n%s\nwant:\n%s", file, s.line, s.cmd, got, s.expected)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func parseTranscript(t *testing.T, file string) []step {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var steps []step
	var text strings.Builder
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			text.WriteString(line + "\n")
			continue
		}
		if text.Len() > 0 {
			steps = append(steps, step{text: text.String()})
			text.Reset()
		}
		s := step{line: n, cmd: line}
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: want ---- after the command", file, n)
		}
		n++
		var want []string
		for sc.Scan() {
			n++
			if sc.Text() == "" {
				break
			}
			want = append(want, sc.Text())
		}
		s.expected = strings.Join(want, "\n") + "\n"
		steps = append(steps, s, step{text: "\n"})
	}
	if text.Len() > 0 {
		steps = append(steps, step{text: text.String()})
	}
	return trimTrailingBlank(steps)
}

func trimTrailingBlank(steps []step) []step {
	for len(steps) > 0 && steps[len(steps)-1].cmd == "" && strings.TrimSpace(steps[len(steps)-1].text) == "" {
		steps = steps[:len(steps)-1]
	}
	return steps
}

// harness drives one Group through transcript commands.
type harness struct {
	g      *Group
	cfg    Config
	now    time.Time
	topics fakeTopics
	ids    int
}

func newHarness() *harness {
	h := &harness{now: epoch0, topics: fakeTopics{}}
	h.cfg = Config{NewMemberID: func() string { h.ids++; return fmt.Sprintf("gen-%d", h.ids) }}
	h.g = New("g", h.cfg)
	return h
}

func (h *harness) run(cmd string) (string, error) {
	fields := strings.Fields(cmd)
	name, args := fields[0], parseArgs(fields[1:])
	switch name {
	case "group":
		return h.newGroup(args)
	case "topic":
		return h.topic(args)
	case "heartbeat":
		return h.heartbeat(args)
	case "tick":
		return h.tick(args)
	case "describe":
		return h.describe(), nil
	case "members":
		return h.members(), nil
	case "commit", "fetch":
		return h.validate(name, args)
	case "delete":
		return codeName(h.g.Delete()) + "\n" + h.groupLine(), nil
	case "deadline":
		return h.deadline(), nil
	}
	return "", fmt.Errorf("unknown command %q", name)
}

// args are "key=value" pairs and bare positionals (key "" in order).
type args struct {
	pos []string
	kv  map[string]string
}

func parseArgs(fields []string) args {
	a := args{kv: map[string]string{}}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			a.kv[k] = v
		} else {
			a.pos = append(a.pos, f)
		}
	}
	return a
}

func (a args) int(key string, def int) (int, error) {
	v, ok := a.kv[key]
	if !ok {
		return def, nil
	}
	return strconv.Atoi(v)
}

// group max=N assignors=a,b rebalance=D session=D: replace the group.
func (h *harness) newGroup(a args) (string, error) {
	max, err := a.int("max", 0)
	if err != nil {
		return "", err
	}
	h.cfg.MaxSize = max
	if v, ok := a.kv["assignors"]; ok {
		h.cfg.Assignors = strings.Split(v, ",")
	}
	for key, dst := range map[string]*time.Duration{"rebalance": &h.cfg.RebalanceTimeout, "session": &h.cfg.SessionTimeout} {
		if v, ok := a.kv[key]; ok {
			if *dst, err = time.ParseDuration(v); err != nil {
				return "", err
			}
		}
	}
	if err := h.cfg.Validate(); err != nil {
		return err.Error() + "\n", nil
	}
	h.g = New("g", h.cfg)
	return "ok\n", nil
}

// topic NAME partitions=N (partitions=0 deletes it)
func (h *harness) topic(a args) (string, error) {
	n, err := a.int("partitions", 1)
	if err != nil || len(a.pos) != 1 {
		return "", fmt.Errorf("usage: topic NAME partitions=N")
	}
	if n == 0 {
		delete(h.topics, a.pos[0])
	} else {
		h.topics[a.pos[0]] = int32(n)
	}
	return "ok\n", nil
}

// heartbeat MEMBER epoch=N [subscribe=a,b] [regex=RE] [rebalance=D]
// [assignor=NAME] [owned=t:0,1;u:2] [instance=ID] [version=N]; MEMBER "-" is
// an empty member id. Fields not given are sent as "unchanged" (null / -1).
func (h *harness) heartbeat(a args) (string, error) {
	req, err := h.request(a)
	if err != nil {
		return "", err
	}
	resp := h.g.Heartbeat(h.now, req, h.topics)
	return formatResponse(resp) + h.groupLine(), nil
}

func (h *harness) request(a args) (*kmsg.ConsumerGroupHeartbeatRequest, error) {
	if len(a.pos) != 1 {
		return nil, fmt.Errorf("usage: heartbeat MEMBER epoch=N ...")
	}
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group = "g"
	if a.pos[0] != "-" {
		req.MemberID = a.pos[0]
	}
	epoch, err := a.int("epoch", 0)
	if err != nil {
		return nil, err
	}
	version, err := a.int("version", 1)
	if err != nil {
		return nil, err
	}
	req.MemberEpoch, req.Version = int32(epoch), int16(version)
	return req, fillOptional(req, a)
}

func fillOptional(req *kmsg.ConsumerGroupHeartbeatRequest, a args) error {
	if v, ok := a.kv["subscribe"]; ok {
		req.SubscribedTopicNames = []string{}
		if v != "" {
			req.SubscribedTopicNames = strings.Split(v, ",")
		}
	}
	if v, ok := a.kv["regex"]; ok {
		req.SubscribedTopicRegex = &v
	}
	if v, ok := a.kv["assignor"]; ok {
		req.ServerAssignor = &v
	}
	if v, ok := a.kv["instance"]; ok {
		req.InstanceID = &v
	}
	if v, ok := a.kv["rebalance"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		req.RebalanceTimeoutMillis = millis(d)
	}
	if v, ok := a.kv["owned"]; ok {
		owned, err := parseAssignment(v)
		if err != nil {
			return err
		}
		req.Topics = toRequestTopics(owned)
	}
	return nil
}

func toRequestTopics(a assignment) []kmsg.ConsumerGroupHeartbeatRequestTopic {
	out := []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, id := range a.topicIDs() {
		t := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		t.TopicID, t.Partitions = id, a[id]
		out = append(out, t)
	}
	return out
}

func fromResponse(r *kmsg.ConsumerGroupHeartbeatResponseAssignment) assignment {
	out := assignment{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			out.add(tp{t.TopicID, p})
		}
	}
	return out
}

func formatResponse(resp *kmsg.ConsumerGroupHeartbeatResponse) string {
	if resp.ErrorCode != 0 {
		return fmt.Sprintf("error %s: %s\n", codeName(resp.ErrorCode), *resp.ErrorMessage)
	}
	got := "unchanged"
	if resp.Assignment != nil {
		got = formatAssignment(fromResponse(resp.Assignment))
	}
	return fmt.Sprintf("member=%s epoch=%d interval=%dms assignment=%s\n",
		*resp.MemberID, resp.MemberEpoch, resp.HeartbeatIntervalMillis, got)
}

func (h *harness) groupLine() string {
	return fmt.Sprintf("group epoch=%d assignment-epoch=%d state=%s\n", h.g.groupEpoch, h.g.assignmentEpoch, h.g.State())
}

// tick D: the clock moves on by D and the group runs its timers.
func (h *harness) tick(a args) (string, error) {
	if len(a.pos) != 1 {
		return "", fmt.Errorf("usage: tick DURATION")
	}
	d, err := time.ParseDuration(a.pos[0])
	if err != nil {
		return "", err
	}
	before := h.g.sortedMembers()
	h.now = h.now.Add(d)
	h.g.Tick(h.now)
	var out strings.Builder
	for _, m := range before {
		if h.g.members[m.id] == nil {
			fmt.Fprintf(&out, "removed %s\n", m.id)
		}
	}
	return out.String() + h.groupLine(), nil
}

// members prints each member's reconciliation state, beyond what Describe shows.
func (h *harness) members() string {
	var out strings.Builder
	for _, m := range h.g.sortedMembers() {
		fmt.Fprintf(&out, "%s epoch=%d %s assigned=%s revoking=%s target=%s\n", m.id, m.epoch, m.state,
			formatAssignment(m.assigned), formatAssignment(m.revoking), formatAssignment(h.g.target[m.id]))
	}
	if out.Len() == 0 {
		return "no members\n"
	}
	return out.String()
}

func (h *harness) describe() string {
	d := h.g.Describe(h.topics)
	var out strings.Builder
	fmt.Fprintf(&out, "group=%s state=%s epoch=%d assignment-epoch=%d assignor=%s\n",
		d.Group, d.State, d.Epoch, d.AssignmentEpoch, d.AssignorName)
	for _, m := range d.Members {
		fmt.Fprintf(&out, "  %s epoch=%d instance=%s subscribe=%s regex=%s\n    assignment=%s\n    target=%s\n",
			m.MemberID, m.MemberEpoch, deref(m.InstanceID), strings.Join(m.SubscribedTopics, ","),
			deref(m.SubscribedTopicRegex), describeTopics(m.Assignment), describeTopics(m.TargetAssignment))
	}
	return out.String()
}

func describeTopics(a kmsg.Assignment) string {
	var parts []string
	for _, t := range a.TopicPartitions {
		parts = append(parts, fmt.Sprintf("%s:%v", t.Topic, t.Partitions))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// commit|fetch MEMBER epoch=N; MEMBER "-" is an empty member id.
func (h *harness) validate(kind string, a args) (string, error) {
	epoch, err := a.int("epoch", -1)
	if err != nil || len(a.pos) != 1 {
		return "", fmt.Errorf("usage: %s MEMBER epoch=N", kind)
	}
	id := strings.TrimPrefix(a.pos[0], "-")
	validate := h.g.ValidateCommit
	if kind == "fetch" {
		validate = h.g.ValidateOffsetFetch
	}
	return codeName(validate(id, int32(epoch))) + "\n", nil
}

func (h *harness) deadline() string {
	d, ok := h.g.NextDeadline()
	if !ok {
		return "none\n"
	}
	return fmt.Sprintf("in %s\n", d.Sub(h.now))
}
