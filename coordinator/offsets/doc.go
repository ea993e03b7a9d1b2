// Package offsets is the byte format and in-memory replay of the compacted
// __consumer_offsets topic: it encodes offset commits and group metadata as Kafka
// does, packs them into v2 record batches, decodes batches read back from a
// partition, and keeps the committed-offsets Table a coordinator rebuilds by replay.
// It does no I/O; the coordinator produces the batches (acks=all) and fetches them.
//
// Records use kmsg's schemas and are byte-compatible with Kafka's. Every key starts
// with an int16 version that says which kind of record it is:
//
//	offset commit (key v1, value v3; value v1 when the commit has an ExpireTime)
//	  key   | int16 version=1 | string group | string topic | int32 partition |
//	  value | int16 version=3 | int64 offset | int32 leaderEpoch | string metadata |
//	        | int64 commitTimestamp (ms) |
//	  value v1 instead has no leaderEpoch and ends with int64 expireTimestamp (ms)
//
//	group metadata (key v2, value v3)
//	  key   | int16 version=2 | string group |
//	  value | int16 version=3 | string protocolType | int32 generation |
//	        | nullable string protocol | nullable string leader |
//	        | int64 currentStateTimestamp | [member] |
//	  member| string memberID | nullable string instanceID | string clientID |
//	        | string clientHost | int32 rebalanceTimeout | int32 sessionTimeout |
//	        | bytes subscription | bytes assignment |
//
//	tombstone: same key, null value (record value length -1)
//
// Strings are int16-length-prefixed, bytes int32-length-prefixed, all big-endian.
// Decode reads key versions 0 and 1 as offset commits (values v0 to v4) and 2 as
// group metadata (values v0 to v3; flexible v4 is refused, see checkOffsetValue);
// newer key versions (Kafka's KIP-848 group records, 3+) are skipped, as Kafka's
// classic coordinator does when it replays a partition.
//
// The batches are Kafka's v2 format, uncompressed, one per write:
//
//	baseOffset int64 | length int32 | partitionLeaderEpoch int32 | magic int8 = 2 |
//	crc uint32 (CRC-32C of attributes..end) | attributes int16 | lastOffsetDelta int32 |
//	firstTimestamp int64 | maxTimestamp int64 | producerId int64 = -1 |
//	producerEpoch int16 = -1 | baseSequence int32 = -1 | records count int32 | records
//
// Which __consumer_offsets partition holds a group is Partition(group, n), Kafka's
// rule: abs(group.hashCode()) % n, with Java's String.hashCode over UTF-16 units.
package offsets
