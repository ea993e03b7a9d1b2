package proxy

import (
	"context"
	"encoding/binary"
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

// Tests of the forwarding engine (engine.go) against fake nodes: wire servers whose
// answers each test scripts, over one in-memory store, so splits, merges, retries on a
// moved leader and unknown outcomes are driven exactly.

// fakeNode is a node that answers Produce requests as its script says.
type fakeNode struct {
	id   int32
	addr string
	mu   sync.Mutex
	// answer returns the error code for one partition, or hangUp to close the
	// connection without answering; nil answers every partition with no error.
	answer func(topic string, partition int32, attempt int) int16
	got    []topicPartition // partitions received, in order
	calls  int              // produce requests received
	tries  map[topicPartition]int
}

const hangUp = -100

func (n *fakeNode) serve(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	if _, ok := req.Body.(*kmsg.ApiVersionsRequest); ok { // the internal handshake
		return req.Body.ResponseKind(), nil
	}
	produce, ok := req.Body.(*kmsg.ProduceRequest)
	if !ok {
		return nil, errors.New("fake node: only produce")
	}
	resp := produce.ResponseKind().(*kmsg.ProduceResponse)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls++
	for _, rt := range produce.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			tp := topicPartition{rt.Topic, rp.Partition}
			n.got = append(n.got, tp)
			n.tries[tp]++
			code := int16(0)
			if n.answer != nil {
				code = n.answer(rt.Topic, rp.Partition, n.tries[tp])
			}
			if code == hangUp {
				return nil, errors.New("fake node: hanging up") // closes the connection
			}
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			sp.BaseOffset = int64(n.id) * 1000 // says who answered
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (n *fakeNode) triesOf(topic string, partition int32) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.tries[topicPartition{topic, partition}]
}

func (n *fakeNode) requests() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls
}

func (n *fakeNode) received() []topicPartition {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

// engineHarness is a proxy over fake nodes 1..n.
type engineHarness struct {
	store *routing.MemStore
	cache *routing.Cache
	proxy *Proxy
	nodes map[int32]*fakeNode
}

func newEngineHarness(t *testing.T, nodes int) *engineHarness {
	t.Helper()
	ctx := context.Background()
	h := &engineHarness{nodes: map[int32]*fakeNode{}}
	var err error
	if h.store, err = routing.NewMemStore(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.store.Close() })
	for id := int32(1); id <= int32(nodes); id++ {
		ln := listen(t)
		n := &fakeNode{id: id, addr: ln.Addr().String(), tries: map[topicPartition]int{}}
		serveWire(t, &wire.Server{Handler: wire.HandlerFunc(n.serve)}, ln)
		if err := h.store.RegisterNode(ctx, routing.Node{ID: id, Addr: n.addr}); err != nil {
			t.Fatal(err)
		}
		h.nodes[id] = n
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

// topic creates a topic whose partition i is led by leaders[i].
func (h *engineHarness) topic(t *testing.T, name string, leaders ...int32) {
	t.Helper()
	topic := routing.Topic{Name: name, ID: routing.NewTopicID()}
	for i, l := range leaders {
		topic.Partitions = append(topic.Partitions, routing.Partition{Index: int32(i), Replicas: []int32{l}, ISR: []int32{l}, Leader: l})
	}
	if err := h.store.CreateTopic(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
	if err := h.cache.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// moveLeader makes node the leader of topic's partition, as the controller would.
func (h *engineHarness) moveLeader(t testing.TB, topic string, index, node int32) {
	snap, _ := h.store.Snapshot(context.Background())
	p, _ := snap.Partition(topic, index)
	prev := p.PartitionEpoch
	p.Leader, p.Replicas, p.ISR = node, []int32{node}, []int32{node}
	p.LeaderEpoch++
	p.PartitionEpoch++
	if err := h.store.UpdatePartition(context.Background(), topic, p, prev); err != nil {
		t.Errorf("move leader: %v", err)
	}
}

// produce sends a produce request naming partitions in order, each with one batch
// (idempotent or not), and returns the answers in the request's order.
func (h *engineHarness) produce(t *testing.T, topic string, idempotent bool, timeout time.Duration, partitions ...int32) []kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 12, -1, int32(timeout/time.Millisecond)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, batchHeader(idempotent)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	resp, err := h.proxy.produce(context.Background(), req)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return resp.(*kmsg.ProduceResponse).Topics[0].Partitions
}

// batchHeader is a record batch header, enough for the engine, which reads only the
// length and producer id.
func batchHeader(idempotent bool) []byte {
	b := make([]byte, 61)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	id := int64(-1)
	if idempotent {
		id = 7
	}
	binary.BigEndian.PutUint64(b[43:], uint64(id))
	return b
}

// TestEngineSplitsAndMergesInOrder: one piece per leader node, and every answer back in
// the client's order, whatever order the nodes answer in.
func TestEngineSplitsAndMergesInOrder(t *testing.T) {
	h := newEngineHarness(t, 3)
	h.topic(t, "t", 1, 2, 3, 1, 2, 3)
	order := []int32{5, 0, 3, 1, 4, 2}
	got := h.produce(t, "t", false, 5*time.Second, order...)
	for i, sp := range got {
		wantNode := int64(order[i]%3) + 1
		if sp.Partition != order[i] || sp.ErrorCode != 0 || sp.BaseOffset != wantNode*1000 {
			t.Errorf("answer %d: partition %d error %d from node %d; want partition %d from node %d",
				i, sp.Partition, sp.ErrorCode, sp.BaseOffset/1000, order[i], wantNode)
		}
	}
	for id, n := range h.nodes {
		if n.requests() != 1 || len(n.received()) != 2 {
			t.Errorf("node %d got %d requests with %v; want one request with its two partitions", id, n.requests(), n.received())
		}
	}
}

// TestEngineFollowsALeaderThatMovesMidRequest: a node that answers NOT_LEADER_OR_FOLLOWER
// because leadership moved while the request was in flight does not hand the error to
// the client: the engine waits for the fresh view and sends the partition to the new
// leader, and the partitions that succeeded are not sent again.
func TestEngineFollowsALeaderThatMovesMidRequest(t *testing.T) {
	h := newEngineHarness(t, 2)
	h.topic(t, "t", 1, 1)
	h.nodes[1].answer = func(topic string, partition int32, _ int) int16 {
		if partition == 0 {
			h.moveLeader(t, topic, 0, 2) // the controller moves it as the node refuses
			return kerr.NotLeaderForPartition.Code
		}
		return 0
	}
	got := h.produce(t, "t", false, 5*time.Second, 0, 1)
	if got[0].ErrorCode != 0 || got[0].BaseOffset != 2000 || got[1].ErrorCode != 0 || got[1].BaseOffset != 1000 {
		t.Fatalf("answers %+v; want partition 0 from node 2 and partition 1 from node 1, no errors", got)
	}
	if r := h.nodes[1].received(); len(r) != 2 {
		t.Errorf("node 1 received %v; want partitions 0 and 1 once each", r)
	}
}

// TestEngineGivesUpAtTheDeadline: a partition whose leader keeps refusing is answered
// with the last error once the request's time is spent, not retried for ever.
func TestEngineGivesUpAtTheDeadline(t *testing.T) {
	h := newEngineHarness(t, 1)
	h.topic(t, "t", 1)
	h.nodes[1].answer = func(string, int32, int) int16 { return kerr.NotLeaderForPartition.Code }
	start := time.Now()
	got := h.produce(t, "t", false, 1500*time.Millisecond, 0)
	if got[0].ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("error %d; want NOT_LEADER_OR_FOLLOWER after the deadline", got[0].ErrorCode)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("gave up after %v; want about the request's 1.5 s", took)
	}
	if tries := h.nodes[1].triesOf("t", 0); tries < 2 {
		t.Errorf("node asked %d times; want retries before giving up", tries)
	}
}

// TestEngineUnknownOutcome: when the connection breaks after a piece was sent, an
// idempotent batch is sent again (the node recognizes a duplicate by its sequence), and
// any other batch is answered REQUEST_TIMED_OUT rather than risk writing it twice.
func TestEngineUnknownOutcome(t *testing.T) {
	h := newEngineHarness(t, 1)
	h.topic(t, "t", 1, 1)
	h.nodes[1].answer = func(_ string, _ int32, attempt int) int16 {
		if attempt == 1 {
			return hangUp
		}
		return 0
	}
	if got := h.produce(t, "t", true, 5*time.Second, 0); got[0].ErrorCode != 0 {
		t.Errorf("idempotent batch after a broken connection: error %d; want it resent and answered", got[0].ErrorCode)
	}
	if got := h.produce(t, "t", false, 5*time.Second, 1); got[0].ErrorCode != kerr.RequestTimedOut.Code {
		t.Errorf("plain batch after a broken connection: error %d; want REQUEST_TIMED_OUT", got[0].ErrorCode)
	}
	if tries := h.nodes[1].triesOf("t", 1); tries != 1 {
		t.Errorf("plain batch sent %d times; want once", tries)
	}
}

// TestEngineUnreachableLeader: a leader that cannot be reached (nothing listens at its
// address) is a stale view too: once the controller moves the partition, the request
// goes to the new leader.
func TestEngineUnreachableLeader(t *testing.T) {
	h := newEngineHarness(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if err := h.store.RegisterNode(context.Background(), routing.Node{ID: 9, Addr: dead}); err != nil {
		t.Fatal(err)
	}
	h.topic(t, "t", 9)
	time.AfterFunc(200*time.Millisecond, func() { h.moveLeader(t, "t", 0, 1) })
	if got := h.produce(t, "t", false, 5*time.Second, 0); got[0].ErrorCode != 0 || got[0].BaseOffset != 1000 {
		t.Errorf("answer %+v; want node 1's, once the partition moved off the unreachable node", got[0])
	}
}
