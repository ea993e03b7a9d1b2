package consumer

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// fakeTopics is the metadata a test controls. A topic's id is its name's
// bytes, so transcripts stay readable and stable.
type fakeTopics map[string]int32

func topicID(name string) (id [16]byte) {
	copy(id[:], name)
	return id
}

func (f fakeTopics) ByName(name string) ([16]byte, int32, bool) {
	n, ok := f[name]
	return topicID(name), n, ok
}

func (f fakeTopics) ByID(id [16]byte) (string, int32, bool) {
	name := strings.TrimRight(string(id[:]), "\x00")
	n, ok := f[name]
	return name, n, ok
}

func (f fakeTopics) Names() []string {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// formatAssignment prints partitions as "orders:0,1 payments:2", topics by name.
func formatAssignment(a assignment) string {
	if a.size() == 0 {
		return "none"
	}
	var parts []string
	for id, ps := range a {
		nums := make([]string, len(ps))
		for i, p := range ps {
			nums[i] = fmt.Sprint(p)
		}
		parts = append(parts, strings.TrimRight(string(id[:]), "\x00")+":"+strings.Join(nums, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// parseAssignment reads "orders:0,1;payments:2" ("" is an empty set).
func parseAssignment(s string) (assignment, error) {
	out := assignment{}
	if s == "" {
		return out, nil
	}
	for _, topic := range strings.Split(s, ";") {
		name, nums, ok := strings.Cut(topic, ":")
		if !ok {
			return nil, fmt.Errorf("bad partitions %q", topic)
		}
		for _, n := range strings.Split(nums, ",") {
			var p int32
			if _, err := fmt.Sscan(n, &p); err != nil {
				return nil, err
			}
			out.add(tp{topicID(name), p})
		}
	}
	return out, nil
}

func codeName(code int16) string {
	if code == 0 {
		return "ok"
	}
	if err, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return err.Message
	}
	return fmt.Sprint(code)
}

// checkInvariants holds the group to what reconciliation promises: the owners
// index is exactly the members' assigned and revoking partitions, no partition
// is held by two members, and a member is never handed a partition outside its
// target once it is at the target epoch.
func checkInvariants(g *Group) error {
	seen := map[tp]string{}
	for _, m := range g.sortedMembers() {
		var err error
		m.assigned.union(m.revoking).each(func(p tp) {
			if other, dup := seen[p]; dup && err == nil {
				err = fmt.Errorf("partition %v held by %s and %s", p, other, m.id)
			}
			seen[p] = m.id
			if g.owners[p] != m.id && err == nil {
				err = fmt.Errorf("owners[%v] = %q, want %s", p, g.owners[p], m.id)
			}
		})
		if err != nil {
			return err
		}
		if m.assigned.overlaps(m.revoking) {
			return fmt.Errorf("%s: assigned and revoking overlap", m.id)
		}
		if m.epoch == g.assignmentEpoch && m.state != unrevoked && !m.assigned.subsetOf(g.target[m.id]) {
			return fmt.Errorf("%s holds partitions outside its target", m.id)
		}
	}
	if len(seen) != len(g.owners) {
		return fmt.Errorf("owners has %d entries, members hold %d", len(g.owners), len(seen))
	}
	return nil
}

func mustInvariants(t *testing.T, g *Group) {
	t.Helper()
	if err := checkInvariants(g); err != nil {
		t.Fatal(err)
	}
}

var epoch0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
