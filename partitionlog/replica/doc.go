// Package replica holds a partition leader's high-watermark (HW) and in-sync replica
// (ISR) rules as a deterministic state machine: no goroutines, no I/O, no locks, and
// time passed in. The node owns one Leader per partition it leads, calls it under its
// own lock, carries out the ISR changes it proposes by compare-and-set in the metadata
// store, and reports the outcome with Committed or Rejected.
//
// # The rules
//
//   - The HW is the lowest log end offset over the maximal ISR, the leader included,
//     and never decreases. Consumers read below it; acks=all completes once it passes
//     a batch. A follower outside the ISR does not hold it back.
//   - A follower is caught up at time t if it fetched at or past the leader's end
//     offset as of t (Kafka's lastCaughtUpTimeMs). An ISR follower that is behind the
//     leader's end and has not caught up for more than LagTimeMax
//     (replica.lag.time.max.ms) is proposed for removal (Kafka's maybeShrinkIsr).
//   - A follower outside the ISR whose end has reached the HW and the offset where
//     this leader's epoch began is proposed for addition (Kafka's maybeExpandIsr).
//   - At most one change is pending (KIP-497's AlterPartition, here a compare-and-set
//     on the store). While it is pending the HW uses the maximal ISR: the committed ISR
//     plus the members being added. A removal does not count until committed, so a
//     leader that cannot reach the store never shrinks the ISR to itself and never
//     acknowledges alone (the way Jepsen's analysis of Kafka 0.8 lost writes).
//   - The leader itself never leaves. With ISR = {leader} the HW follows its end.
//
// # A timeline
//
// Replicas 1 (leader), 2 and 3; ISR {1,2,3}; LagTimeMax 30s.
//
//	time  event                      ends (1 2 3)   ISR        HW
//	 0s   leader appends to 10       10  -1  -1     {1,2,3}     0
//	 1s   2 fetches at 10            10  10  -1     {1,2,3}     0   3 holds the HW
//	 2s   3 fetches at 4             10  10   4     {1,2,3}     4
//	31s   propose: drop 3            10  10   4     {1,2,3}*    4   * pending {1,2}:
//	                                                                  3 still counts
//	31s   committed {1,2}            10  10   4     {1,2}      10   3 no longer counts
//	40s   3 fetches at 10            10  10  10     {1,2}      10
//	40s   propose: add 3             10  10  10     {1,2,3}*   10   maximal ISR {1,2,3}
//	41s   leader appends to 15       15  10  10     {1,2,3}*   10   3 counts already
//	41s   committed {1,2,3}          15  10  10     {1,2,3}    10
//
// # Testing
//
// The transcripts in testdata/ drive a Leader command by command (regenerate them with
// go test -rewrite and review the diff); a property test holds it to a naive model;
// example_test.go shows how a node drives it.
package replica
