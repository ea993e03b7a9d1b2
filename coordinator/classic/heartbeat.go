package classic

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat, versions 0-4. v3 adds the instance id (KIP-345).

// Heartbeat handles a Heartbeat request. A valid heartbeat restarts the member's
// session timer in every state; while a rebalance is being prepared it answers
// REBALANCE_IN_PROGRESS, which is how members learn that they must rejoin
// (Kafka GroupCoordinator.handleHeartbeat).
func (g *Group) Heartbeat(now time.Time, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	defer g.flush()
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = req.Version
	resp.ErrorCode = g.heartbeat(now, req)
	return resp
}

func (g *Group) heartbeat(now time.Time, req *kmsg.HeartbeatRequest) int16 {
	if g.state == stateDead {
		return codeCoordinatorNotAvailable
	}
	var instanceID *string
	if req.Version >= 3 {
		instanceID = req.InstanceID
	}
	if code := g.checkMember(req.MemberID, instanceID); code != codeNone {
		return code
	}
	if req.Generation != g.gen {
		return codeIllegalGeneration
	}
	g.members[req.MemberID].touch(now)
	if g.state == statePreparingRebalance {
		return codeRebalanceInProgress
	}
	// In CompletingRebalance the member has its JoinGroup answer and may heartbeat
	// before it syncs: that is fine.
	return codeNone
}
