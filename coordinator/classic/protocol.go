package classic

import "github.com/twmb/franz-go/pkg/kmsg"

// supportsProtocols reports whether a member joining with this protocol type and these
// protocols can be in the group: any non-empty offer starts an empty group; otherwise
// the type must match and at least one protocol must be one every member supports
// (Kafka GroupMetadata.supportsProtocols). Else INCONSISTENT_GROUP_PROTOCOL.
func (g *Group) supportsProtocols(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if g.state == stateEmpty {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protoTyp {
		return false
	}
	for _, p := range ps {
		if g.supportedByAll(p.Name) {
			return true
		}
	}
	return false
}

// supportedByAll reports whether every member offers protocol name.
func (g *Group) supportedByAll(name string) bool {
	for _, m := range g.members {
		if !offers(m, name) {
			return false
		}
	}
	return true
}

func offers(m *member, name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

// selectProtocol picks the generation's protocol as Kafka does
// (GroupMetadata.selectProtocol): among the protocols every member supports, each
// member votes for the first in its own order of preference, and the most votes win.
// Kafka breaks a tie by hash-map order; here the tie goes to the protocol the oldest
// member prefers, so that the choice is deterministic.
func (g *Group) selectProtocol() string {
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supportedByAll(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	for _, p := range g.members[g.order[0]].protocols {
		if votes[p.Name] > bestVotes {
			best, bestVotes = p.Name, votes[p.Name]
		}
	}
	return best
}
