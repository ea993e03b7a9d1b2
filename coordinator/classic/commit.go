package classic

// Checks that the owner makes for requests handled outside this package: offset
// commits and fetches, and group deletion.

// ValidateCommit answers whether an OffsetCommit or TxnOffsetCommit from this member may
// commit: 0, or the error code Kafka answers (GroupCoordinator.validateOffsetCommit):
//
//   - COORDINATOR_NOT_AVAILABLE for a Dead group (the client rediscovers the coordinator);
//   - a member commit (generation >= 0, or a member or instance id given) is checked like
//     a heartbeat: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION; in
//     CompletingRebalance it gets REBALANCE_IN_PROGRESS, since its assignment is not
//     known yet; during PreparingRebalance it may still commit, as members commit
//     before they rejoin;
//   - a simple commit (generation < 0, no member id: a consumer using assign, or an
//     admin tool) only when the group is Empty, else UNKNOWN_MEMBER_ID.
//
// Kafka lets a transactional commit make a simple commit in a non-empty group; this
// method does not know which it is, so the owner must skip the last rule for
// TxnOffsetCommit.
func (g *Group) ValidateCommit(memberID string, instanceID *string, generation int32) int16 {
	if g.state == stateDead {
		return codeCoordinatorNotAvailable
	}
	if generation < 0 && memberID == "" && instanceID == nil {
		if g.state != stateEmpty {
			return codeUnknownMemberID
		}
		return codeNone
	}
	if code := g.checkMember(memberID, instanceID); code != codeNone {
		return code
	}
	if generation != g.gen {
		return codeIllegalGeneration
	}
	if g.state == stateCompletingRebalance {
		return codeRebalanceInProgress
	}
	return codeNone
}

// ValidateOffsetFetch is for OffsetFetch v9+, which carries a member id and epoch.
// Kafka checks those only for KIP-848 consumer groups: for a classic group it accepts
// any (ClassicGroup.validateOffsetFetch), and fails only a Dead group, with
// GROUP_ID_NOT_FOUND. So does this.
func (g *Group) ValidateOffsetFetch(memberID string, memberEpoch int32) int16 {
	if g.state == stateDead {
		return codeGroupIDNotFound
	}
	return codeNone
}

// Delete marks the group Dead for DeleteGroups: NON_EMPTY_GROUP if it has members,
// GROUP_ID_NOT_FOUND if it is already Dead (Kafka ClassicGroup.validateDeleteGroup).
// The owner writes the group's tombstone and drops it.
func (g *Group) Delete() int16 {
	switch g.state {
	case stateDead:
		return codeGroupIDNotFound
	case stateEmpty:
		g.state = stateDead
		clear(g.pending)
		return codeNone
	}
	return codeNonEmptyGroup
}
