// Package partitionlog stores one partition's log on disk, in Kafka's own formats: it
// appends producers' record batches, serves fetches from them, and recovers after a crash.
//
// # Disk layout
//
// A partition is a directory of segments, each named by the offset of its first record
// (20 digits), plus the leader-epoch history:
//
//	<topic>-<partition>/
//	  00000000000000000000.log        v2 record batches, byte for byte as a Kafka broker stores them
//	  00000000000000000000.index      sparse offset index
//	  00000000000000000000.timeindex  sparse time index
//	  00000000000000004213.log        next segment: base offset 4213 ...
//	  00000000000000004213.index
//	  00000000000000004213.timeindex
//	  00000000000000004213.txnindex   aborted transactions whose ABORT markers it holds (txnindex.go)
//	  00000000000000004213.snapshot   producer state once offsets below 4213 were written (snapshot.go)
//	  leader-epoch-checkpoint         "0\n<count>\n<epoch> <startOffset>\n..."
//	  log-start-offset                "0\n<offset>\n", written by DeleteRecordsBefore
//	  high-watermark                  "0\n<offset>\n", SetHighWatermark's value (Kafka keeps it
//	                                  in replication-offset-checkpoint, one file per broker)
//	  00000000000000000000.log.deleted  a segment retention is deleting (removed by Open)
//
//	.log        | batch | batch | batch | ...           each batch: 61-byte header + records
//	               baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 = 2 |
//	               crc u32 (CRC-32C of attributes..end) | attributes i16 | lastOffsetDelta i32 |
//	               baseTimestamp i64 | maxTimestamp i64 | producerId i64 | producerEpoch i16 |
//	               baseSequence i32 | recordsCount i32 | records...
//	.index      | relOffset u32 | position u32 | ...    one per ~IndexIntervalBytes of log
//	.timeindex  | maxTimestamp i64 | relOffset u32 | ... largest timestamp so far, and where
//
// Offsets in the indexes are relative to the segment's base. The active (last) segment
// takes appends; a segment rolls when the next write would pass SegmentBytes, an index is
// full, or relative offsets would overflow. Unlike Kafka, index files are neither
// preallocated nor mmapped: indexes are held in memory, and their files are written whole
// when a segment is sealed and when the log closes (Open rebuilds the last segment's
// indexes from its .log anyway).
//
// # Descriptors
//
// A process may hold tens of thousands of partitions, so open files are bounded per
// process, not per partition (filecache.go): a segment's .log is opened on first use and
// closed again when the cache needs the slot and nobody is using it; index files are only
// open while read or written. An idle partition holds one descriptor at most, none once
// others need it; a file a reader holds (a zero-copy fetch being sent) stays open.
//
// # Guarantees
//
// Appends assign dense offsets and are all-or-nothing per call; an idempotent producer's
// retry is written once (KIP-98). A producer's batches are read record by record before
// they are stored, as Kafka's log validator reads them (validate.go), so nothing stored
// stops a consumer or the cleaner. Roll and Close fsync; Sync is there for callers that
// want more. Open validates the last segment batch by batch and truncates a torn tail,
// rebuilds indexes and checkpoints that are missing or malformed, finishes interrupted
// deletions, and rebuilds producer state from the latest usable producer-state snapshot
// (written at each roll and at Close) and the batch headers after it, or from every batch
// header when there is none. A file it cannot read now (EMFILE, EIO) is never taken for a
// corrupt one: Open fails, and can be retried. Verify checks a partition directory without
// changing it, for operators (`strait log verify`).
//
// # Transactions
//
// Transactional batches (KIP-98) are accepted when the produce request names a
// transactional id; the transaction coordinator's COMMIT and ABORT markers come with
// AppendOptions.FromCoordinator (MarkerBatch builds them). The log tracks each producer's
// open transaction, so LastStableOffset, the bound of read_committed fetches, stays below
// every undecided record, and keeps the aborted transactions (AbortedTransactions) that a
// read_committed fetch returns with its records, mirrored to Kafka's .txnindex files
// (txn.go, txnindex.go). Compaction drops aborted records, removes a marker whose
// transaction kept no batch once delete.retention.ms passed since it was first found so,
// and never passes the first unstable offset.
//
// # Flushing, and what a crash can lose
//
// By default nothing is fsynced per append, as in Kafka (flush.messages and flush.ms are
// effectively infinite): durability comes from replication, since an acks=all write is on
// every ISR replica before it is acknowledged, and a replica that crashed truncates and
// refetches before it rejoins the ISR. The price: when a machine (not just the process)
// crashes, a single-replica topic can lose acknowledged writes that were not yet flushed by
// a roll, Sync, Close, or the kernel. FlushMessages and FlushMs trade append latency and
// throughput for a smaller window; Sync flushes on demand.
//
// # Failures
//
// A failed write, fsync or roll (a full disk, a dying device) puts the log in a failed state:
// appends get ErrStorage (KAFKA_STORAGE_ERROR) until the log is reopened, while reads and
// lookups keep serving what was published before. The failed batch is never published, and
// Open truncates it. Other logs are unaffected.
//
// # Replication
//
// A follower appends the leader's batches with AppendAsFollower (AppendAsFollowerAt for
// compacted topics), which keeps their offsets and leader epochs, replays producer state
// and extends the epoch history as the leader did. After a leader change it asks the
// leader where its LatestEpoch ends (OffsetForLeaderEpoch), turns the answer into an
// offset with DivergencePoint and cuts its log there with TruncateTo (KIP-101, KIP-279).
// The high watermark the replication layer computes is kept by SetHighWatermark and
// survives a restart.
//
// # Retention and deletion
//
// EnforceRetention (retention.ms, retention.bytes) and DeleteRecordsBefore (KIP-107) remove
// whole sealed segments, never the active one: rename to *.deleted, sync the directory,
// publish the shorter segment list (publishSegmentsLocked, the one publish step, meant for
// compaction too), remove the files.
//
// # Readers
//
// Readers (Read, ReadSections, OffsetForTimestamp) snapshot the segment list under a short
// lock, take a reference on the segments they read and read files without a lock: bytes
// below a published size never change until TruncateTo, which holds Read off while it cuts.
// A removed segment's file is closed when its last reader releases it, so a ReadSections
// caller may sendfile from it after retention removed it.
//
// All file operations go through Config.FS; tests use an in-memory FS that
// drops unsynced bytes at a simulated crash and injects I/O errors.
//
// See Example for Open, Append and Read.
//
// Producers that wrote nothing for producer.id.expiration.ms and have no transaction open
// are forgotten by ExpireProducers, which nodes call periodically (KIP-854).
//
// TODO: a clean-shutdown marker so Open need not re-validate the last segment.
package partitionlog
