package consumer

import (
	"maps"
	"regexp"
	"slices"
	"sort"
)

// refreshTopics re-resolves every member's subscription (explicit names plus
// regex matches) and the metadata of the subscribed topics. It reports whether
// anything the assignor reads changed: KIP-848 bumps the group epoch when a
// subscribed topic appears, disappears or changes its partition count.
//
// With topics nil (Tick has no metadata), the last snapshot stands in, so a
// removal only drops topics nobody subscribes to any more.
func (g *Group) refreshTopics(topics Topics) bool {
	if topics == nil {
		topics = snapshot(g.topics)
	}
	names := topics.Names()
	matches := map[string][]string{} // per distinct regex: resolve each once
	changed := false
	for _, m := range g.sortedMembers() {
		resolved := resolve(m, names, matches)
		if !slices.Equal(resolved, m.resolved) {
			m.resolved, changed = resolved, true
		}
	}
	next := g.subscribedMeta(topics)
	if !maps.Equal(next, g.topics) {
		g.topics, changed = next, true
	}
	return changed
}

// subscribedMeta looks up every topic some member subscribes to. A topic that
// does not exist yet is left out; it joins the snapshot when created.
func (g *Group) subscribedMeta(topics Topics) map[string]topicMeta {
	out := map[string]topicMeta{}
	for _, m := range g.members {
		for _, name := range m.resolved {
			if _, done := out[name]; done {
				continue
			}
			if id, n, ok := topics.ByName(name); ok {
				out[name] = topicMeta{name: name, id: id, partitions: n}
			}
		}
	}
	return out
}

// resolve returns the member's explicit names plus the topics its regex
// matches, sorted and unique. KIP-848 regexes are RE2 (Kafka uses RE2/J), which
// is what Go's regexp implements; compileRegex anchors them to the whole name.
func resolve(m *member, names []string, cache map[string][]string) []string {
	out := slices.Clone(m.names)
	if m.re != nil {
		hits, ok := cache[m.regex]
		if !ok {
			hits = matching(m.re, names)
			cache[m.regex] = hits
		}
		out = append(out, hits...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// compileRegex anchors a subscription regex: Kafka matches whole topic names
// (Java's Matcher.matches), where Go's MatchString finds substrings.
func compileRegex(s string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + s + `)$`)
}

func matching(re *regexp.Regexp, names []string) []string {
	var hits []string
	for _, n := range names {
		if re.MatchString(n) {
			hits = append(hits, n)
		}
	}
	return hits
}

// snapshot serves the group's last-seen metadata as Topics.
type snapshot map[string]topicMeta

func (s snapshot) ByName(name string) ([16]byte, int32, bool) {
	t, ok := s[name]
	return t.id, t.partitions, ok
}

func (s snapshot) ByID(id [16]byte) (string, int32, bool) {
	for _, t := range s {
		if t.id == id {
			return t.name, t.partitions, true
		}
	}
	return "", 0, false
}

func (s snapshot) Names() []string {
	return slices.Sorted(maps.Keys(s))
}
