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
//	  leader-epoch-checkpoint         "0\n<count>\n<epoch> <startOffset>\n..."
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
// preallocated nor mmapped: they grow by appends and are held in memory.
//
// # Guarantees
//
// Appends assign dense offsets and are all-or-nothing per call; an idempotent producer's
// retry is written once (KIP-98). Nothing is fsynced per append, as in Kafka: durability
// comes from replication. Roll and Close fsync; Sync is there for callers that want more.
// Open validates the last segment batch by batch and truncates a torn tail, rebuilds
// indexes that are missing or malformed, and rebuilds producer state from batch headers.
//
// Readers (Read, OffsetForTimestamp) snapshot the segment list under a short lock and read
// files without it: bytes below a published size never change until TruncateTo, which
// holds readers off while it cuts.
//
// See Example for Open, Append and Read.
//
// TODO: a narrow file seam (open, write, sync, truncate, rename; STYLE item 10) so tests can
// drop unsynced bytes and inject I/O errors; recovery tests now cut real files.
// TODO: producer-state .snapshot files and producer expiry; a clean-shutdown marker so
// Open need not re-validate the last segment; retention and compaction.
package partitionlog
