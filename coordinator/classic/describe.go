package classic

import "github.com/twmb/franz-go/pkg/kmsg"

// Describe answers DescribeGroups for this group. As in Kafka (GroupMetadata.summary),
// the protocol and each member's metadata and assignment are shown only when the group
// is Stable; in other states they are in flux.
func (g *Group) Describe() kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = g.id
	d.State = g.state.String()
	d.ProtocolType = g.protoTyp
	stable := g.state == stateStable
	if stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.ordered() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		if stable {
			dm.ProtocolMetadata = m.metadata(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// State returns the group's state as DescribeGroups names it: "Empty",
// "PreparingRebalance", "CompletingRebalance", "Stable" or "Dead".
func (g *Group) State() string { return g.state.String() }

// ProtocolType returns the protocol type of the group ("consumer", "connect", ...),
// set by the first member to join it; "" for a group never joined.
func (g *Group) ProtocolType() string { return g.protoTyp }

// Generation returns the current generation; 0 for a group never rebalanced.
func (g *Group) Generation() int32 { return g.gen }

// Leader returns the member id of the leader; "" if none.
func (g *Group) Leader() string { return g.leader }

// Protocol returns the protocol chosen for the current generation; "" if none.
func (g *Group) Protocol() string { return g.protocol }
