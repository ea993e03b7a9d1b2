// Package routing holds Strait's cluster metadata: which topics exist, how each
// partition is placed on partition-log nodes, who leads it and at which leader epoch,
// and which nodes are alive.
//
// The metadata lives in a Store (in-process for `strait dev`, Redis for a cluster).
// Every change bumps a version and notifies subscribers. Processes never read the
// Store on the request path: they read an immutable Snapshot from a Cache that
// refreshes itself when the Store announces a change.
//
//	           writes (CAS on version/epoch)
//	Controller ─────────────────────────────▶ Store ──notify──▶ Cache ──Snapshot()──▶ proxy, node
//
// A Snapshot is never modified once published, so readers share it without locks.
package routing
