package consumer

import (
	"regexp"
	"time"
)

// memberState is where a member is in its reconciliation (KIP-848's
// ConsumerGroupMember states).
type memberState int8

const (
	// stable: the member holds exactly its target at the target epoch.
	stable memberState = iota
	// unrevoked: the member was told to give up partitions and has not yet
	// acknowledged it; its epoch does not advance until it does.
	unrevoked
	// unreleased: the member is at the target epoch but waits for partitions
	// that another member still holds.
	unreleased
)

func (s memberState) String() string {
	return [...]string{"STABLE", "UNREVOKED_PARTITIONS", "UNRELEASED_PARTITIONS"}[s]
}

// Epochs a member sends that are not epochs (KIP-848).
const (
	joinEpoch        = 0
	leaveEpoch       = -1
	staticLeaveEpoch = -2
)

type member struct {
	id         string
	instanceID string
	rackID     string
	clientID   string
	clientHost string

	epoch     int32
	prevEpoch int32 // accepted once more if the response that moved epoch was lost
	state     memberState

	rebalanceTimeout time.Duration // as the member asked; Config may override
	assignor         string        // requested server assignor, "" for the group default
	names            []string      // SubscribedTopicNames, sorted
	regex            string        // SubscribedTopicRegex, "" for none
	re               *regexp.Regexp
	resolved         []string // names plus regex matches, sorted: the real subscription

	assigned assignment // what the member was last told it may own
	revoking assignment // what it was told to give up and still holds

	sessionDeadline time.Time
	revokeDeadline  time.Time // zero unless unrevoked
}

func newMember(id string) *member {
	return &member{id: id, assigned: assignment{}, revoking: assignment{}}
}

// reconciledTo reports whether the member has caught up with the target
// assignment of epoch e (Kafka's ConsumerGroupMember.isReconciledTo). A static
// member away with epoch -2 has not: the group stays Reconciling until it
// returns or its session expires.
func (m *member) reconciledTo(e int32) bool {
	return m.state == stable && m.epoch == e
}

func (m *member) expired(now time.Time) bool {
	if !now.Before(m.sessionDeadline) {
		return true
	}
	return !m.revokeDeadline.IsZero() && !now.Before(m.revokeDeadline)
}
