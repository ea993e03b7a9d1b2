// Package consumer runs one KIP-848 consumer group ("the next generation of
// the consumer rebalance protocol") as a deterministic state machine: no
// goroutines, timers, I/O or locks. Requests and the current time come in as
// arguments; the owner (package coordinator) serialises calls on one
// goroutine and calls Tick at NextDeadline.
//
// # Epochs
//
// The group epoch counts changes to what the assignment depends on: members
// joining or leaving, subscriptions, the requested assignor, and the
// partition counts of subscribed topics. Each bump is followed at once by a
// new target assignment, computed by the server assignor ("uniform" or
// "range", assign.go); the target assignment epoch is the group epoch it was
// computed for.
//
// Each member has its own member epoch: the target epoch it has reconciled
// to. It sends it with every ConsumerGroupHeartbeat. Epoch 0 joins, -1 leaves,
// -2 is a static member's temporary leave. Any other epoch that is not the
// member's current one (or its previous one, if our last response was lost)
// is a zombie's, answered FENCED_MEMBER_EPOCH. Offset commits carry the member
// epoch too (ValidateCommit), so a zombie cannot commit either.
//
// # Revoke before assign
//
// A partition is never given to a member while another still holds it. A
// member whose target drops partitions is first told to give them up; only
// when a later heartbeat shows it no longer owns them does it move to the new
// epoch, and only then can the new owner take them (reconcile.go). With m1
// owning orders 0-5 and m2 joining, six partitions, uniform assignor:
//
//	time  request                        group  m1                           m2
//	 t0   m2 epoch=0 (join)              2      epoch 1, owns 0-5            epoch 2, gets {} (3-5 held)
//	 t1   m1 epoch=1 owned=0-5           2      told {0,1,2}; revoking 3-5   waiting (UNRELEASED)
//	 t2   m2 epoch=2                     2      still holds 3-5              still waiting
//	 t3   m1 epoch=1 owned=0-2 (ack)     2      epoch 2, owns 0-2            3-5 now free
//	 t4   m2 epoch=2                     2                                   gets {3,4,5}
//
// m1 stays at epoch 1 between t1 and t3 (UNREVOKED_PARTITIONS); if it does not
// acknowledge within its rebalance timeout, Tick removes it so the partitions
// can move. A member that stops heartbeating for the session timeout is
// removed too. Either removal bumps the group epoch.
//
// # Files
//
// group.go holds the group, its configuration and timers; heartbeat.go the
// request handling; subscription.go topic and regex resolution; reconcile.go
// the per-member steps above; assign.go the assignors; describe.go
// ConsumerGroupDescribe. The transcripts in testdata/ walk through each rule;
// regenerate them with `go test ./coordinator/consumer -rewrite`.
package consumer
