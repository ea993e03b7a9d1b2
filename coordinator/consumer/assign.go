package consumer

import "sort"

// An assignor computes the target assignment of a group epoch from its
// members' subscriptions (KIP-848 "server-side assignors"). It must be
// deterministic: the same input gives the same output, whatever the map
// iteration order, so that a restarted coordinator computes the same target.
type assignor func(members []assignMember) map[string]assignment

// assignMember is one member as an assignor sees it.
type assignMember struct {
	id     string
	topics []topicMeta // subscribed topics that exist, sorted by name
	prev   assignment  // its previous target, for stickiness
}

var assignors = map[string]assignor{
	"uniform": assignUniform,
	"range":   assignRange,
}

// assignRange is Kafka's RangeAssignor done per topic: the members subscribed
// to a topic, sorted by member id, take consecutive ranges of its partitions,
// and the first n%m of them one extra. Topics with the same partition count
// and subscribers line up (co-partitioning), which is what range is chosen for.
func assignRange(members []assignMember) map[string]assignment {
	out := emptyAssignments(members)
	for _, t := range allTopics(members) {
		subs := subscribers(members, t)
		per, extra := int(t.partitions)/len(subs), int(t.partitions)%len(subs)
		next := int32(0)
		for i, m := range subs {
			n := per
			if i < extra {
				n++
			}
			for k := 0; k < n; k++ {
				out[m.id].add(tp{t.id, next})
				next++
			}
		}
	}
	return out
}

// assignUniform spreads all subscribed partitions as evenly as possible,
// keeping each partition with its previous owner when balance allows
// (KIP-848's "uniform" assignor: sticky, balanced, rack-unaware here).
//
// Three passes: keep what each member had and may still have; give each
// remaining partition to the least-loaded member that may take it, most
// constrained partitions first; then move partitions from a member to an
// eligible one with at least two fewer until none can move. The last pass ends
// (the sum of squared counts falls with every move) and leaves any two members
// with the same subscriptions within one partition of each other.
func assignUniform(members []assignMember) map[string]assignment {
	u := newUniform(members)
	u.keepSticky()
	u.placeRemaining()
	u.balance()
	return u.result()
}

// uniform is the working state of one assignUniform run.
type uniform struct {
	members  []assignMember
	parts    []tp               // every subscribed partition, in (partition, topic name) order
	eligible map[[16]byte][]int // topic -> indexes of subscribed members
	owner    map[tp]int
	counts   []int
}

func newUniform(members []assignMember) *uniform {
	u := &uniform{
		members:  members,
		eligible: map[[16]byte][]int{},
		owner:    map[tp]int{},
		counts:   make([]int, len(members)),
	}
	topics := allTopics(members)
	for _, t := range topics {
		for i, m := range members {
			if subscribesTo(m, t.id) {
				u.eligible[t.id] = append(u.eligible[t.id], i)
			}
		}
	}
	// Partition-major order (every topic's partition 0, then 1, ...) spreads
	// each topic over the members when partitions are placed or moved.
	for p := int32(0); ; p++ {
		added := false
		for _, t := range topics {
			if p < t.partitions {
				u.parts, added = append(u.parts, tp{t.id, p}), true
			}
		}
		if !added {
			return u
		}
	}
}

func (u *uniform) keepSticky() {
	for _, p := range u.parts {
		for _, i := range u.eligible[p.topic] {
			if u.members[i].prev.has(p.topic, p.part) {
				u.give(p, i)
				break
			}
		}
	}
}

func (u *uniform) placeRemaining() {
	var rest []tp
	for _, p := range u.parts {
		if _, ok := u.owner[p]; !ok {
			rest = append(rest, p)
		}
	}
	sort.SliceStable(rest, func(i, j int) bool {
		return len(u.eligible[rest[i].topic]) < len(u.eligible[rest[j].topic])
	})
	for _, p := range rest {
		u.give(p, u.leastLoaded(p))
	}
}

func (u *uniform) balance() {
	for moved := true; moved; {
		moved = false
		for k := len(u.parts) - 1; k >= 0; k-- {
			p := u.parts[k]
			from, to := u.owner[p], u.leastLoaded(p)
			if u.counts[from] >= u.counts[to]+2 {
				u.counts[from]--
				u.give(p, to)
				moved = true
			}
		}
	}
}

// leastLoaded is the eligible member with the fewest partitions; ties go to
// the lowest member id, for determinism.
func (u *uniform) leastLoaded(p tp) int {
	best := -1
	for _, i := range u.eligible[p.topic] {
		if best < 0 || u.counts[i] < u.counts[best] {
			best = i
		}
	}
	return best
}

func (u *uniform) give(p tp, i int) {
	u.owner[p] = i
	u.counts[i]++
}

func (u *uniform) result() map[string]assignment {
	out := emptyAssignments(u.members)
	for _, p := range u.parts {
		out[u.members[u.owner[p]].id].add(p)
	}
	return out
}

func emptyAssignments(members []assignMember) map[string]assignment {
	out := make(map[string]assignment, len(members))
	for _, m := range members {
		out[m.id] = assignment{}
	}
	return out
}

// allTopics lists the topics any member subscribes to, sorted by name.
func allTopics(members []assignMember) []topicMeta {
	seen := map[[16]byte]bool{}
	var out []topicMeta
	for _, m := range members {
		for _, t := range m.topics {
			if !seen[t.id] {
				seen[t.id] = true
				out = append(out, t)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// subscribers lists the members subscribed to t, in member-id order (the
// input is sorted by id).
func subscribers(members []assignMember, t topicMeta) []assignMember {
	var out []assignMember
	for _, m := range members {
		if subscribesTo(m, t.id) {
			out = append(out, m)
		}
	}
	return out
}

func subscribesTo(m assignMember, id [16]byte) bool {
	for _, t := range m.topics {
		if t.id == id {
			return true
		}
	}
	return false
}
