// Package classic runs one Kafka consumer group under the classic group protocol
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a deterministic state machine.
//
// A Group does no I/O and has no goroutines, timers or locks. Time comes in as the now
// argument of every call; the owner (a goroutine in package coordinator) calls Tick at
// NextDeadline. Requests that must wait — a JoinGroup until the rebalance completes, a
// follower's SyncGroup until the leader's arrives — take a reply callback, called once,
// possibly from inside a later call on the group. Durable changes go out through
// Group.Persist, in order with those replies, as the GroupMetadataValue that Kafka keeps
// in __consumer_offsets; Restore rebuilds a group from it.
//
// States (the names DescribeGroups reports) and what moves the group between them:
//
//	              first JoinGroup
//	 +-------+   ------------------>  +--------------------+ <-----------------------+
//	 | Empty |                        | PreparingRebalance |                         |
//	 +-------+  <------------------   +--------------------+ <---------+             |
//	   |  ^      join phase ends,        |                             |             |
//	   |  |      no member left          | all rejoined, or rebalance  | member      | member joins, leaves
//	   |  |      (generation++)          | timeout (generation++)      | joins,      | or expires; leader
//	   |  |                              v                             | leaves or   | or changed metadata
//	   |  |                     +---------------------+                | expires     | rejoins
//	   |  |                     | CompletingRebalance | ---------------+             |
//	   |  |                     +---------------------+                              |
//	   |  |                              | leader's SyncGroup (Persist)              |
//	   |  |                              v                                           |
//	   |  |                         +--------+                                       |
//	   |  |                         | Stable | --------------------------------------+
//	   |  |                         +--------+
//	   |  |
//	   |  +-- (Restore of a value with no members; Restore with members gives Stable)
//	   v
//	+------+
//	| Dead |   DeleteGroups of an Empty group; every request then fails
//	+------+
//
// Leaving Empty, the join phase first waits group.initial.rebalance.delay.ms (KIP-134).
// Static members (KIP-345) that restart rejoin a Stable group without a rebalance.
// Eager and cooperative (KIP-429) assignors need nothing from the coordinator: protocols
// are opaque bytes, and a cooperative member's second round is just a rejoin.
//
// The transcripts in testdata/ show each behaviour request by request; run
// go test -rewrite to regenerate them after a change and review the diff.
package classic
