package classic

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// persist hands the group's durable state to Persist, in order with the replies.
func (g *Group) persist() {
	if g.Persist == nil {
		return
	}
	v := g.metadataValue()
	g.emit(func() { g.Persist(v) })
}

// metadataValue is the group as Kafka stores it in __consumer_offsets
// (GroupMetadataValue v3: v3 adds the instance id, KIP-345). Each member's subscription
// is its metadata for the chosen protocol.
func (g *Group) metadataValue() kmsg.GroupMetadataValue {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.protoTyp
	v.Generation = g.gen
	v.Protocol = ptr(g.protocol)
	v.Leader = ptr(g.leader)
	v.CurrentStateTimestamp = g.stateAt.UnixMilli()
	for _, m := range g.ordered() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadata(g.protocol)
		vm.Assignment = m.assignment
		v.Members = append(v.Members, vm)
	}
	return v
}

// Restore rebuilds a group from its persisted value after a coordinator restart, as
// Kafka loads __consumer_offsets (GroupMetadata.loadGroup): Stable with its members and
// their assignments, or Empty. Members keep only the chosen protocol; their session
// timers start at now, so members that died with the old coordinator expire.
func Restore(id string, cfg Config, v kmsg.GroupMetadataValue, now time.Time) *Group {
	g := New(id, cfg)
	g.gen = v.Generation
	g.protoTyp = v.ProtocolType
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	g.setState(now, stateEmpty)
	for _, vm := range v.Members {
		m := &member{
			id:               vm.MemberID,
			instanceID:       vm.InstanceID,
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			assignment:       vm.Assignment,
		}
		m.touch(now)
		g.add(m, v.ProtocolType)
	}
	if v.Leader != nil && g.members[*v.Leader] != nil {
		g.leader = *v.Leader
	}
	if len(g.members) > 0 {
		g.setState(now, stateStable)
	}
	return g
}
