// Package proxy is Strait's client-facing tier: it speaks the Kafka protocol to any
// Kafka client, answers metadata and admin requests from the routing metadata, and
// forwards produce and fetch requests to the partition-log node that leads each
// partition, merging the nodes' answers into one response in the client's order.
//
// Each Kafka API lives in its own file named by key (00_produce.go, 01_fetch.go, ...),
// which opens with the versions it serves and where Strait differs from Kafka. The
// handler table in handlers.go is the one list of what the proxy serves; ApiVersions
// answers from it and a test holds the two together.
//
// The proxy keeps no partition data. In forward mode (the only mode so far) it
// presents itself as the single broker that leads every partition.
package proxy
