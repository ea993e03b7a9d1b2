// Package node is a partition-log node's Kafka-protocol server: it holds the partitions
// that the routing metadata places on this node, each as a partitionlog.Log under
// <data-dir>/<topic>-<partition>/, and answers Produce, Fetch, ListOffsets,
// OffsetForLeaderEpoch and ApiVersions for them.
//
// Proxies forward client requests here over internal/wire, and followers replicate with
// the same Fetch requests, as Kafka brokers do. A consumer's Fetch (v11+) may be served
// by a follower too, and a leader may point a consumer at a follower in its rack
// (KIP-392, closest_replica.go).
//
// The node reconciles: it derives from the cached routing Snapshot which partitions it
// should hold, and a single loop opens the missing ones and closes and removes the ones
// it no longer holds. A request for a partition the loop has not opened yet opens it.
package node
