package proxy

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/routing"
)

// modeProxy is a proxy of c in mode, with broker id and rack; other proxies of the
// cluster are registered with leases so they count as live.
func modeProxy(t *testing.T, c *testCluster, mode Mode, id int32, rack string) *Proxy {
	t.Helper()
	controller := routing.NewController(c.store, routing.ControllerConfig{}, discardLogger())
	p, err := New(Config{BrokerID: id, AdvertisedAddr: fmt.Sprintf("127.0.0.1:%d", 20000+id), Rack: rack, Mode: mode},
		c.cache, c.store, controller, discardLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// registerProxy registers a live proxy (its lease held for ttl).
func registerProxy(t *testing.T, c *testCluster, id int32, rack string, ttl time.Duration) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.store.AcquireLease(ctx, routing.ProxyLeaseName(id), fmt.Sprintf("proxy-%d", id), ttl); err != nil {
		t.Fatal(err)
	}
	if err := c.store.RegisterProxy(ctx, routing.Proxy{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 20000+id), Rack: rack}); err != nil {
		t.Fatal(err)
	}
	if err := c.cache.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
}

func metadataOf(t *testing.T, p *Proxy, topic string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = []kmsg.MetadataRequestTopic{rt}
	resp, err := p.metadata(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.MetadataResponse)
}

func brokerIDs(resp *kmsg.MetadataResponse) []int32 {
	var ids []int32
	for _, b := range resp.Brokers {
		ids = append(ids, b.NodeID)
	}
	return ids
}

// TestMetadataByMode: what clients are told the cluster is, for each proxy mode
// (docs/architecture.md "Proxy modes").
func TestMetadataByMode(t *testing.T) {
	c := startCluster(t, withNodes(2))
	c.createTopic(t, "m", 60, nil)
	registerProxy(t, c, 1001, "", time.Minute)
	registerProxy(t, c, 1002, "", time.Minute)

	t.Run("forward: live proxies lead a share each", func(t *testing.T) {
		p := modeProxy(t, c, Forward, 1000, "")
		registerProxy(t, c, 1000, "", time.Minute)
		p.readMembers()
		resp := metadataOf(t, p, "m")
		// Proxy 0, the harness's, holds no lease: it is not live.
		if ids := brokerIDs(resp); !slices.Equal(ids, []int32{1000, 1001, 1002}) {
			t.Fatalf("brokers %v; want the live proxies [1000 1001 1002]", ids)
		}
		checkReplicasListed(t, resp)
		led := map[int32]int{}
		for _, part := range resp.Topics[0].Partitions {
			led[part.Leader]++
		}
		for _, id := range []int32{1000, 1001, 1002} {
			if led[id] < 8 {
				t.Errorf("leaders per proxy %v; want each of the three to lead a share of 60", led)
			}
		}
		// Every proxy tells clients the same leaders.
		other := modeProxy(t, c, Forward, 1001, "")
		other.readMembers()
		if again := metadataOf(t, other, "m"); !slices.EqualFunc(again.Topics[0].Partitions, resp.Topics[0].Partitions,
			func(a, b kmsg.MetadataResponseTopicPartition) bool { return a.Leader == b.Leader }) {
			t.Errorf("proxies 1000 and 1001 name different leaders for the same partitions")
		}
	})

	t.Run("forward: a proxy whose lease lapsed leaves", func(t *testing.T) {
		registerProxy(t, c, 1003, "", 50*time.Millisecond)
		p := modeProxy(t, c, Forward, 1000, "")
		time.Sleep(100 * time.Millisecond)
		p.readMembers()
		if ids := brokerIDs(metadataOf(t, p, "m")); slices.Contains(ids, 1003) {
			t.Errorf("brokers %v still list proxy 1003, whose lease lapsed", ids)
		}
	})

	t.Run("forward: proxies in this proxy's rack are preferred", func(t *testing.T) {
		registerProxy(t, c, 1004, "zone-b", time.Minute)
		p := modeProxy(t, c, Forward, 1005, "zone-b")
		registerProxy(t, c, 1005, "zone-b", time.Minute)
		p.readMembers()
		for _, part := range metadataOf(t, p, "m").Topics[0].Partitions {
			if part.Leader != 1004 && part.Leader != 1005 {
				t.Fatalf("partition %d led by %d; want a zone-b proxy (1004 or 1005)", part.Partition, part.Leader)
			}
		}
	})

	t.Run("sidecar: this proxy alone", func(t *testing.T) {
		p := modeProxy(t, c, Sidecar, 1000, "")
		resp := metadataOf(t, p, "m")
		if ids := brokerIDs(resp); !slices.Equal(ids, []int32{1000}) {
			t.Fatalf("brokers %v; want only the sidecar", ids)
		}
		checkReplicasListed(t, resp)
		for _, part := range resp.Topics[0].Partitions {
			if part.Leader != 1000 {
				t.Fatalf("partition %d led by %d; want the sidecar", part.Partition, part.Leader)
			}
		}
	})

	t.Run("redirect: nodes lead, proxies are listed for groups", func(t *testing.T) {
		p := modeProxy(t, c, Redirect, 1000, "")
		resp := metadataOf(t, p, "m")
		ids := brokerIDs(resp)
		if !slices.Contains(ids, 1) || !slices.Contains(ids, 2) || !slices.Contains(ids, 1000) {
			t.Fatalf("brokers %v; want nodes 1 and 2 and the proxies", ids)
		}
		checkReplicasListed(t, resp)
		snap := c.cache.Snapshot()
		for _, part := range resp.Topics[0].Partitions {
			want, _ := snap.Partition("m", part.Partition)
			if part.Leader != want.Leader {
				t.Fatalf("partition %d led by %d; want its leader node %d", part.Partition, part.Leader, want.Leader)
			}
		}
	})
}

// TestRendezvousMovesOnlyItsShare: when a proxy joins, only partitions it now wins
// change leader, and when it leaves only those it held move; the rest stay where they
// were (the property that makes rendezvous hashing worth its cost).
func TestRendezvousMovesOnlyItsShare(t *testing.T) {
	topic := routing.NewTopicID()
	before := []int32{1, 2, 3}
	after := []int32{1, 2, 3, 4}
	moved := 0
	for part := range int32(1000) {
		a, b := rendezvous(before, topic, part), rendezvous(after, topic, part)
		if a != b {
			moved++
			if b != 4 {
				t.Fatalf("partition %d moved from %d to %d when proxy 4 joined; only moves to 4 are allowed", part, a, b)
			}
		}
	}
	if moved < 150 || moved > 350 {
		t.Errorf("%d of 1000 partitions moved to the new proxy; want about a quarter", moved)
	}
}

// TestReplicasNameListedBrokers: in forward and sidecar modes Metadata lists proxies,
// so replicas and ISR are named by proxies (03_metadata.go): every id is a listed
// broker, the leader is a replica and in the ISR, the ISR is a subset of the replicas,
// and a shrunk ISR still shows as shorter. In redirect mode the node ids stay.
func TestReplicasNameListedBrokers(t *testing.T) {
	part := routing.Partition{Index: 4, Replicas: []int32{2, 3, 1}, ISR: []int32{2, 1}, Leader: 3}
	for _, tc := range []struct {
		name          string
		l             leaders
		leader        int32
		wantReplicas  []int32
		wantISR       []int32
		wantUnchanged bool
	}{
		{name: "forward, as many proxies as replicas",
			l: leaders{mode: Forward, listed: []int32{1000, 1001, 1002}}, leader: 1001,
			// node 3 (the leader) -> 1001, then 2 -> 1002, 1 -> 1000, in replica order.
			wantReplicas: []int32{1002, 1001, 1000}, wantISR: []int32{1002, 1000}},
		{name: "forward, fewer proxies than replicas",
			l: leaders{mode: Forward, listed: []int32{1000, 1001}}, leader: 1000,
			wantReplicas: []int32{1001, 1000}, wantISR: []int32{1001}},
		{name: "sidecar: one replica, the sidecar",
			l: leaders{mode: Sidecar, self: 7, listed: []int32{7}}, leader: 7,
			wantReplicas: []int32{7}, wantISR: []int32{}},
		{name: "redirect: the nodes themselves",
			l: leaders{mode: Redirect}, leader: 3, wantUnchanged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			replicas, isr := tc.l.replicas(part, tc.leader)
			if tc.wantUnchanged {
				if !slices.Equal(replicas, part.Replicas) || !slices.Equal(isr, part.ISR) {
					t.Fatalf("replicas %v isr %v; want the nodes' %v %v", replicas, isr, part.Replicas, part.ISR)
				}
				return
			}
			if !slices.Equal(replicas, tc.wantReplicas) || !slices.Equal(isr, tc.wantISR) {
				t.Fatalf("replicas %v isr %v; want %v %v", replicas, isr, tc.wantReplicas, tc.wantISR)
			}
			if !slices.Contains(replicas, tc.leader) {
				t.Errorf("leader %d is not among replicas %v", tc.leader, replicas)
			}
		})
	}

	// The real leader is in the ISR whenever the partition has one: the advertised
	// leader must be too.
	inSync := routing.Partition{Index: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 2}
	for _, listed := range [][]int32{{1000}, {1000, 1001}, {1000, 1001, 1002}, {1000, 1001, 1002, 1003}} {
		l := leaders{mode: Forward, listed: listed}
		for _, leader := range listed {
			replicas, isr := l.replicas(inSync, leader)
			if want := min(len(listed), 3); len(replicas) != want || len(isr) != want {
				t.Errorf("%d proxies: replicas %v isr %v; want %d of each", len(listed), replicas, isr, want)
			}
			if !slices.Contains(isr, leader) {
				t.Errorf("%d proxies, leader %d: not in ISR %v", len(listed), leader, isr)
			}
			for _, id := range replicas {
				if !slices.Contains(listed, id) {
					t.Errorf("replica %d is not a listed broker %v", id, listed)
				}
			}
		}
	}
}

// checkReplicasListed fails unless every leader, replica and ISR id in resp is a
// broker resp lists.
func checkReplicasListed(t *testing.T, resp *kmsg.MetadataResponse) {
	t.Helper()
	ids := brokerIDs(resp)
	for _, mt := range resp.Topics {
		for _, part := range mt.Partitions {
			for _, id := range slices.Concat([]int32{part.Leader}, part.Replicas, part.ISR) {
				if !slices.Contains(ids, id) {
					t.Fatalf("partition %d names broker %d (leader %d, replicas %v, isr %v); brokers listed: %v",
						part.Partition, id, part.Leader, part.Replicas, part.ISR, ids)
				}
			}
		}
	}
}
