// Package coordinator runs Kafka consumer groups for the proxy tier: the classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), KIP-848's
// ConsumerGroupHeartbeat, and committed offsets.
//
// Durable state lives in the __consumer_offsets topic as Kafka lays it out: offset
// commits and group metadata keyed by group, in the partition abs(hash(group)) % N.
// Each partition this coordinator has loaded is a shard owned by one goroutine, which
// holds the partition's groups and offsets; requests, timers and retention all hand
// their work to that goroutine, so no group state is ever shared between goroutines.
//
//	request ──▶ Coordinator ──shard(group)──▶ shard loop ──▶ classic.Group / consumer.Group
//	                                              │              (deterministic, no I/O)
//	                                              └──▶ OffsetsLog.Append (acks=all) ──▶ replies
//
// The group rules themselves live in the subpackages classic (the classic protocol)
// and consumer (KIP-848); offsets holds the record format and the offsets table. This
// package is the thin layer that does the I/O: it never imports the proxy, and reads and
// writes __consumer_offsets through the OffsetsLog the proxy provides.
package coordinator
