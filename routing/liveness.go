package routing

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"time"
)

// NodeLeaseName names the lease a partition-log node holds while it is alive:
// "node/<id>". The node renews it well within its TTL; a node that dies stops renewing
// and its lease expires.
func NodeLeaseName(id int32) string { return "node/" + strconv.Itoa(int(id)) }

// LiveNodes returns a func reporting whether a node is live in snap at now: its lease
// NodeLeaseName(id) exists and expires after now. Only registered nodes count.
//
// Take snap from the Store, not from a Cache: renewing a lease moves only its expiry,
// which bumps no version, so a cached snapshot keeps the expiry of the lease's last
// change of holder and shows every node dead one TTL after it started.
//
// Clocks: a RedisStore sets expiries by the Redis server's clock, a MemStore by this
// process's; now comes from the caller's. A caller whose clock runs ahead of Redis's by
// d sees nodes die d early (a spurious failover), one that runs behind sees them die d
// late (a longer outage). Keep clocks in sync (NTP) well within the lease TTL.
func LiveNodes(snap *Snapshot, now time.Time) func(int32) bool {
	live := make(map[int32]bool, len(snap.Nodes))
	for id := range snap.Nodes {
		if l, ok := snap.Leases[NodeLeaseName(id)]; ok && l.ExpiresAt.After(now) {
			live[id] = true
		}
	}
	return func(id int32) bool { return live[id] }
}

// ProxyLeaseName names the lease a proxy holds on its broker id while it is alive:
// "proxy-id/<id>".
func ProxyLeaseName(id int32) string { return "proxy-id/" + strconv.Itoa(int(id)) }

// LiveProxies returns the registered proxies whose lease ProxyLeaseName(id) expires
// after now, in id order. Take snap from the Store, as for LiveNodes.
func LiveProxies(snap *Snapshot, now time.Time) []Proxy {
	var live []Proxy
	for _, id := range slices.Sorted(maps.Keys(snap.Proxies)) {
		if l, ok := snap.Leases[ProxyLeaseName(id)]; ok && l.ExpiresAt.After(now) {
			live = append(live, snap.Proxies[id])
		}
	}
	return live
}

// LiveNodes reads the Store and reports which nodes are live now, by the controller's
// clock (see the package function LiveNodes for the caveats).
func (c *Controller) LiveNodes(ctx context.Context) (func(int32) bool, error) {
	snap, err := c.store.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return LiveNodes(snap, c.cfg.Now()), nil
}
