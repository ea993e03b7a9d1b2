package consumer

import (
	"slices"
	"sort"
)

// assignment is a set of partitions keyed by topic id: the unit KIP-848 moves
// between members. Partition slices are kept sorted and never empty, so that two
// equal sets compare equal and print the same.
type assignment map[[16]byte][]int32

// tp names one partition of one topic.
type tp struct {
	topic [16]byte
	part  int32
}

func (a assignment) has(topic [16]byte, part int32) bool {
	_, ok := slices.BinarySearch(a[topic], part)
	return ok
}

func (a assignment) size() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

// each calls fn for every partition in topic-id then partition order, so that
// callers that mutate shared state do it deterministically.
func (a assignment) each(fn func(p tp)) {
	for _, topic := range a.topicIDs() {
		for _, part := range a[topic] {
			fn(tp{topic, part})
		}
	}
}

func (a assignment) topicIDs() [][16]byte {
	ids := make([][16]byte, 0, len(a))
	for id := range a {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return string(ids[i][:]) < string(ids[j][:]) })
	return ids
}

// filter returns the partitions of a for which keep is true.
func (a assignment) filter(keep func(p tp) bool) assignment {
	out := assignment{}
	for topic, ps := range a {
		var kept []int32
		for _, part := range ps {
			if keep(tp{topic, part}) {
				kept = append(kept, part)
			}
		}
		if len(kept) > 0 {
			out[topic] = kept
		}
	}
	return out
}

func (a assignment) minus(b assignment) assignment {
	return a.filter(func(p tp) bool { return !b.has(p.topic, p.part) })
}

func (a assignment) intersect(b assignment) assignment {
	return a.filter(func(p tp) bool { return b.has(p.topic, p.part) })
}

func (a assignment) overlaps(b assignment) bool {
	return a.intersect(b).size() > 0
}

func (a assignment) subsetOf(b assignment) bool {
	return a.minus(b).size() == 0
}

func (a assignment) union(b assignment) assignment {
	out := assignment{}
	for _, src := range []assignment{a, b} {
		src.each(func(p tp) { out.add(p) })
	}
	return out
}

func (a assignment) equal(b assignment) bool {
	return a.size() == b.size() && a.subsetOf(b)
}

// add inserts p, keeping the topic's partitions sorted and unique.
func (a assignment) add(p tp) {
	ps := a[p.topic]
	i, found := slices.BinarySearch(ps, p.part)
	if !found {
		a[p.topic] = slices.Insert(ps, i, p.part)
	}
}
