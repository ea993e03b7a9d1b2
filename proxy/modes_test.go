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
