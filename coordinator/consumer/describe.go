package consumer

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Describe answers ConsumerGroupDescribe (API key 69) for this group: its
// state and epochs, the assignor in use, and each member's subscription,
// current assignment and target assignment (KIP-848 "Admin APIs"). topics
// resolves topic ids to names; ids it does not know are shown without one.
func (g *Group) Describe(topics Topics) kmsg.ConsumerGroupDescribeResponseGroup {
	out := kmsg.NewConsumerGroupDescribeResponseGroup()
	out.Group = g.id
	out.State = g.State()
	out.Epoch = g.groupEpoch
	out.AssignmentEpoch = g.assignmentEpoch
	out.AssignorName = g.assignorName()
	for _, m := range g.sortedMembers() {
		out.Members = append(out.Members, g.describeMember(m, topics))
	}
	return out
}

func (g *Group) describeMember(m *member, topics Topics) kmsg.ConsumerGroupDescribeResponseGroupMember {
	d := kmsg.NewConsumerGroupDescribeResponseGroupMember()
	d.MemberID = m.id
	d.InstanceID = optional(m.instanceID)
	d.RackID = optional(m.rackID)
	d.MemberEpoch = m.epoch
	d.ClientID = m.clientID
	d.ClientHost = m.clientHost
	d.SubscribedTopics = slices.Clone(m.names)
	if d.SubscribedTopics == nil {
		d.SubscribedTopics = []string{}
	}
	d.SubscribedTopicRegex = optional(m.regex)
	// The current assignment includes partitions still being revoked: the
	// member holds them until it acknowledges (Kafka describes them alike).
	d.Assignment = describeAssignment(m.assigned.union(m.revoking), topics)
	d.TargetAssignment = describeAssignment(g.target[m.id], topics)
	d.MemberType = 1 // a consumer-protocol member, not a classic one (KIP-1099)
	return d
}

func describeAssignment(a assignment, topics Topics) kmsg.Assignment {
	out := kmsg.NewAssignment()
	out.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	for _, id := range a.topicIDs() {
		t := kmsg.NewAssignmentTopicPartition()
		t.TopicID, t.Partitions = id, slices.Clone(a[id])
		if topics != nil {
			t.Topic, _, _ = topics.ByID(id)
		}
		out.TopicPartitions = append(out.TopicPartitions, t)
	}
	return out
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
