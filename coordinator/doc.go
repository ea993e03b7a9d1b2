// Package coordinator will run Kafka consumer groups for the proxy tier: the classic
// group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and KIP-848's
// ConsumerGroupHeartbeat, plus committed offsets, kept as records in the compacted
// __consumer_offsets topic.
//
// It is empty in the walking skeleton. It will import routing and observability only,
// and reach __consumer_offsets through a small interface that the proxy satisfies with
// its forwarding path, so that it never imports the proxy.
package coordinator
