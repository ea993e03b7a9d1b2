// Package txn is the transaction coordinator's state machine (KIP-98): the transactions
// of the transactional ids that hash onto one __transaction_state partition, as a
// deterministic type with no I/O. The runtime beside the group coordinator (package
// coordinator) feeds it requests, timer ticks and replayed records, writes the records it
// asks for with acks=all, answers the client once they are written, and sends the
// transaction markers it asks for to the partitions' leaders.
//
// A transactional id moves through Kafka's states:
//
//	           InitProducerId              AddPartitionsToTxn / AddOffsetsToTxn
//	Empty ──────────────────▶ Empty ─────────────────────────────────────▶ Ongoing
//	  ▲                                                                     │  │
//	  │ InitProducerId, AddPartitions (a new transaction)            EndTxn │  │ EndTxn(abort),
//	  │                                                              commit │  │ timeout, fencing
//	CompleteCommit ◀── markers written ── PrepareCommit ◀──────────────────┘  ▼
//	CompleteAbort  ◀── markers written ── PrepareAbort ◀── (PrepareEpochFence)
//	                                                                 Dead: expired, forgotten
//
// Every transition is written to __transaction_state (Kafka's TxnMetadataKey and
// TxnMetadataValue) before anything depends on it: a client hears of a new epoch, a
// commit or an added partition only once the record is acknowledged, and a coordinator
// that takes over replays the partition and finishes what was prepared, sending the
// markers again (markers are idempotent at the partitions: a second COMMIT of a finished
// transaction ends nothing).
//
// Fencing. InitProducerId bumps the producer epoch, so a zombie with the old epoch is
// refused everywhere: here with PRODUCER_FENCED, at the partitions with
// INVALID_PRODUCER_EPOCH once a marker at the new epoch reached them. An InitProducerId
// that finds a transaction ongoing fences its producer the way Kafka does: the epoch is
// bumped (PrepareEpochFence, which Strait writes together with the abort, so it is never
// held), the transaction aborted with markers at the new epoch, and the caller answered
// CONCURRENT_TRANSACTIONS until the abort completed; its retry then gets a further epoch.
// A transaction left open past its timeout is aborted the same way. Epoch exhaustion
// moves to a new producer id (KIP-360).
//
// KIP-890. Part 1: a partition leader asks, before the first transactional write of a
// producer in a partition, whether the partition is in the transaction (Verify, from
// AddPartitionsToTxn v4+ with VerifyOnly), so a late write cannot open a transaction
// nobody will end. Part 2: an EndTxn at v5+ (transaction version 2) bumps the epoch at
// every end and writes the markers with the new epoch, which the answer carries.
//
// See the transcripts in testdata/ for every rule, each citing its source.
package txn
