package proxy

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

// Tests of fetching from a replica in the client's rack (KIP-392, 01_fetch.go) through
// the forwarding engine, against fake nodes whose fetch answers each test scripts.

// fetchNode is a node that answers Fetch requests: a record set naming itself for each
// partition, or the error code its script gives.
type fetchNode struct {
	id   int32
	addr string
	mu   sync.Mutex
	// answer returns the error code for a partition; nil answers every one with records.
	answer func(topic string, partition int32) int16
	got    []topicPartition // partitions received, in order
	racks  []string         // each request's Rack
}

func (n *fetchNode) serve(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	if _, ok := req.Body.(*kmsg.ApiVersionsRequest); ok { // the internal handshake
		return req.Body.ResponseKind(), nil
	}
	fetch, ok := req.Body.(*kmsg.FetchRequest)
	if !ok {
		return nil, errors.New("fake node: only fetch")
	}
	resp := fetch.ResponseKind().(*kmsg.FetchResponse)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.racks = append(n.racks, fetch.Rack)
	for _, rt := range fetch.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			n.got = append(n.got, topicPartition{rt.Topic, rp.Partition})
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			if n.answer != nil {
				sp.ErrorCode = n.answer(rt.Topic, rp.Partition)
			}
			if sp.ErrorCode == 0 {
				sp.HighWatermark = int64(n.id) * 100 // says who answered
				sp.RecordBatches = []byte{byte(n.id)}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (n *fetchNode) received() []topicPartition {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

func (n *fetchNode) requestRacks() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.racks)
}

// rackHarness is a proxy over fake fetch nodes 1, 2 and 3 in racks a, b and c, and a
// topic "t" whose partition i is led by node i+1 and replicated, in sync, on all three.
type rackHarness struct {
	store *routing.MemStore
	cache *routing.Cache
	proxy *Proxy
	nodes map[int32]*fetchNode
}

func newRackHarness(t *testing.T) *rackHarness {
	t.Helper()
	ctx := context.Background()
	h := &rackHarness{nodes: map[int32]*fetchNode{}}
	var err error
	if h.store, err = routing.NewMemStore(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.store.Close() })
	for id, rack := range map[int32]string{1: "a", 2: "b", 3: "c"} {
		ln := listen(t)
		n := &fetchNode{id: id, addr: ln.Addr().String()}
		serveWire(t, &wire.Server{Handler: wire.HandlerFunc(n.serve)}, ln)
		if err := h.store.RegisterNode(ctx, routing.Node{ID: id, Addr: n.addr, Rack: rack}); err != nil {
			t.Fatal(err)
		}
		h.nodes[id] = n
	}
	all := []int32{1, 2, 3}
	topic := routing.Topic{Name: "t", ID: routing.NewTopicID()}
	for i := range int32(3) {
		topic.Partitions = append(topic.Partitions, routing.Partition{Index: i, Replicas: all, ISR: all, Leader: i + 1})
	}
	if err := h.store.CreateTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if h.cache, err = routing.NewCache(ctx, h.store, 0, discardLogger()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.cache.Close)
	controller := routing.NewController(h.store, routing.ControllerConfig{}, discardLogger())
	if h.proxy, err = New(Config{AdvertisedAddr: "127.0.0.1:1"}, h.cache, h.store, controller, discardLogger()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.proxy.Close() })
	return h
}

// fetch asks the proxy, as a client in rack, for partitions of "t" from offset 0, and
// returns the answers in the request's order.
func (h *rackHarness) fetch(t *testing.T, rack string, partitions ...int32) []kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.Rack = 12, -1, rack
	req.MinBytes, req.MaxWaitMillis, req.MaxBytes = 1, 5000, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	for _, p := range partitions {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.FetchRequestTopic{rt}
	resp, err := h.proxy.fetch(context.Background(), req)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return resp.(*kmsg.FetchResponse).Topics[0].Partitions
}

// answeredBy is the node that answered each partition, by the high watermark it set.
func answeredBy(got []kmsg.FetchResponseTopicPartition) []int32 {
	var out []int32
	for _, sp := range got {
		out = append(out, int32(sp.HighWatermark/100))
	}
	return out
}

// TestFetchReadsFromTheClientsRack: a client that names its rack has every partition
// read from the in-sync replica in its rack, the leader's own rack keeps the leader,
// and a client in a rack without replicas, or in none, reads from leaders (KIP-392).
// The nodes are not told the rack (they would answer PreferredReadReplica, which means
// nothing to a proxy's clients), and the client never sees a preferred replica.
func TestFetchReadsFromTheClientsRack(t *testing.T) {
	h := newRackHarness(t)
	for _, tc := range []struct {
		rack string
		want []int32 // the node answering partitions 0, 1, 2
	}{
		{"b", []int32{2, 2, 2}},
		{"a", []int32{1, 1, 1}},
		{"z", []int32{1, 2, 3}},
		{"", []int32{1, 2, 3}},
	} {
		got := h.fetch(t, tc.rack, 0, 1, 2)
		if by := answeredBy(got); !slices.Equal(by, tc.want) {
			t.Errorf("rack %q: partitions answered by nodes %v; want %v", tc.rack, by, tc.want)
		}
		for _, sp := range got {
			if sp.ErrorCode != 0 || sp.PreferredReadReplica != -1 {
				t.Errorf("rack %q: partition %d error %d, preferred replica %d; want no error and no preferred replica",
					tc.rack, sp.Partition, sp.ErrorCode, sp.PreferredReadReplica)
			}
		}
	}
	for id, n := range h.nodes {
		for _, rack := range n.requestRacks() {
			if rack != "" {
				t.Errorf("node %d was told rack %q; want none", id, rack)
			}
		}
	}
}

// TestFetchFallsBackToTheLeader: what the replica in the client's rack cannot serve (a
// follower behind the client answers OFFSET_OUT_OF_RANGE; any error will do) is read
// from the leader within the same request, and the client sees no error; a replica
// the view shows out of the ISR, or one that cannot be reached, is passed over.
func TestFetchFallsBackToTheLeader(t *testing.T) {
	h := newRackHarness(t)
	h.nodes[2].answer = func(_ string, partition int32) int16 {
		switch partition {
		case 0:
			return kerr.OffsetOutOfRange.Code
		case 2:
			return kerr.KafkaStorageError.Code
		}
		return 0
	}
	start := time.Now()
	got := h.fetch(t, "b", 0, 1, 2)
	if by := answeredBy(got); !slices.Equal(by, []int32{1, 2, 3}) {
		t.Errorf("partitions answered by nodes %v; want 1, 2, 3: the leaders, where node 2 failed", by)
	}
	for _, sp := range got {
		if sp.ErrorCode != 0 {
			t.Errorf("partition %d: error %d reached the client", sp.Partition, sp.ErrorCode)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("answered after %v; want the leaders asked at once, not after a long poll or a view refresh", took)
	}
	if r := h.nodes[1].received(); !slices.Equal(r, []topicPartition{{"t", 0}}) {
		t.Errorf("node 1 received %v; want partition 0 once", r)
	}

	// Node 2 leaves partition 0's ISR: the client in rack b reads it from the leader.
	h.nodes[2].answer = nil
	snap, _ := h.store.Snapshot(context.Background())
	p, _ := snap.Partition("t", 0)
	prev := p.PartitionEpoch
	p.ISR = []int32{1, 3}
	p.PartitionEpoch++
	if err := h.store.UpdatePartition(context.Background(), "t", p, prev); err != nil {
		t.Fatal(err)
	}
	if err := h.cache.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if by := answeredBy(h.fetch(t, "b", 0)); by[0] != 1 {
		t.Errorf("partition 0 with node 2 out of its ISR: answered by node %d; want the leader, 1", by[0])
	}

	// A replica in rack d that nothing answers at.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if err := h.store.RegisterNode(context.Background(), routing.Node{ID: 4, Addr: dead, Rack: "d"}); err != nil {
		t.Fatal(err)
	}
	snap, _ = h.store.Snapshot(context.Background())
	p, _ = snap.Partition("t", 1)
	prev = p.PartitionEpoch
	p.Replicas, p.ISR = []int32{2, 4}, []int32{2, 4}
	p.PartitionEpoch++
	if err := h.store.UpdatePartition(context.Background(), "t", p, prev); err != nil {
		t.Fatal(err)
	}
	if err := h.cache.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.fetch(t, "d", 1); got[0].ErrorCode != 0 || answeredBy(got)[0] != 2 {
		t.Errorf("partition 1 for rack d, whose replica is unreachable: error %d from node %d; want records from the leader, 2",
			got[0].ErrorCode, answeredBy(got)[0])
	}
}
