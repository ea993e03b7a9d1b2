package node

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/partitionlog"
	"github.com/strait-io/strait/routing"
)

// testCluster is three node servers in one process, each with its own routing cache
// over one in-memory store, serving on loopback: replication runs over real
// connections, as between processes.
type testCluster struct {
	store *routing.MemStore
	nodes map[int32]*testNode
}

type testNode struct {
	id   int32
	addr string
	srv  *Server
	// Fetch requests being served now, and the most seen at once.
	fetching, maxFetching atomic.Int32
}

func newTestCluster(t *testing.T, ids ...int32) *testCluster {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store, err := routing.NewMemStore("")
	if err != nil {
		t.Fatalf("NewMemStore: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	c := &testCluster{store: store, nodes: map[int32]*testNode{}}
	listeners := map[int32]net.Listener{}
	for _, id := range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		listeners[id] = ln
		if err := store.RegisterNode(ctx, routing.Node{ID: id, Addr: ln.Addr().String()}); err != nil {
			t.Fatalf("RegisterNode: %v", err)
		}
	}
	for _, id := range ids {
		n := &testNode{id: id, addr: listeners[id].Addr().String()}
		cache, err := routing.NewCache(ctx, store, 0, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("NewCache: %v", err)
		}
		t.Cleanup(cache.Close)
		n.srv, err = New(Config{ID: id, DataDir: t.TempDir()}, cache, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { n.srv.Close() })
		go n.srv.Run(ctx)
		ws := &wire.Server{Handler: n.srv, Versions: APIs.Versions, Observe: n.observe}
		go ws.Serve(listeners[id])
		t.Cleanup(func() { ws.Close() })
		c.nodes[id] = n
	}
	return c
}

// observe counts the Fetch requests in flight.
func (n *testNode) observe(ctx context.Context, req *wire.Request) (context.Context, func(int, int, error)) {
	if req.Header.Key != 1 {
		return ctx, nil
	}
	now := n.fetching.Add(1)
	for m := n.maxFetching.Load(); now > m && !n.maxFetching.CompareAndSwap(m, now); m = n.maxFetching.Load() {
	}
	return ctx, func(int, int, error) { n.fetching.Add(-1) }
}

// createTopic writes a topic whose partitions are led round-robin by the nodes, each
// replicated on all of them with all in the ISR.
func (c *testCluster) createTopic(t *testing.T, name string, partitions int, ids ...int32) routing.Topic {
	t.Helper()
	topic := routing.Topic{Name: name, ID: routing.NewTopicID()}
	for i := range partitions {
		replicas := make([]int32, len(ids))
		for j := range ids {
			replicas[j] = ids[(i+j)%len(ids)]
		}
		topic.Partitions = append(topic.Partitions, routing.Partition{
			Index: int32(i), Replicas: replicas, ISR: replicas, Leader: replicas[0],
		})
	}
	if err := c.store.CreateTopic(context.Background(), topic); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	return topic
}

// produceTo sends an acks=all batch of n records to partition index of topic at its
// leader, retrying while the leader is not ready yet, and returns the base offset.
func (c *testCluster) produceTo(t *testing.T, cl *wire.Client, topic string, index int32, n int) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 12, -1, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: index, Records: makeBatch(n)}}}}
		got := do[*kmsg.ProduceResponse](t, cl, req).Topics[0].Partitions[0]
		if got.ErrorCode == 0 {
			return got.BaseOffset
		}
		if time.Now().After(deadline) {
			t.Fatalf("produce to %s-%d: error code %d", topic, index, got.ErrorCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReplicated waits until every node holds partition key up to end.
func (c *testCluster) waitReplicated(t *testing.T, key partitionKey, end int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for id, n := range c.nodes {
		for {
			n.srv.mu.Lock()
			r := n.srv.mu.partitions[key]
			n.srv.mu.Unlock()
			if r != nil && r.log.EndOffset() >= end {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d did not replicate %s-%d to offset %d", id, key.topic, key.index, end)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestOneFetcherPerLeader: a follower replicates all it follows from one leader with one
// Fetch at a time, as Kafka's replica fetcher thread does, so followers never hold more
// than a handful of requests in flight at a leader however many partitions they follow.
// (One goroutine and one long poll per partition filled the connection's read-ahead and
// stalled acks=all writes behind idle long polls once a node pair shared ~60 partitions.)
func TestOneFetcherPerLeader(t *testing.T) {
	c := newTestCluster(t, 1, 2, 3)
	const partitions = 150
	c.createTopic(t, "many", partitions, 1, 2, 3)
	clients := map[int32]*wire.Client{}
	for id, n := range c.nodes {
		clients[id] = dial(t, n.addr)
	}
	for i := range int32(partitions) {
		leader := int32(i%3) + 1
		base := c.produceTo(t, clients[leader], "many", i, 3)
		if base != 0 {
			t.Fatalf("partition %d: base offset %d, want 0", i, base)
		}
	}
	for i := range int32(partitions) {
		c.waitReplicated(t, partitionKey{"many", i}, 3)
	}
	for id, n := range c.nodes {
		// Two followers, each with one long poll, and while what they follow changes,
		// one being closed and one opening its successor session.
		t.Logf("node %d: at most %d fetches at once", id, n.maxFetching.Load())
		if got := n.maxFetching.Load(); got > 6 {
			t.Errorf("node %d served up to %d fetches at once; want at most 6 (3 per follower)", id, got)
		}
	}
}

// TestFollowersMoveToANewLeader: when the metadata moves a partition's leadership, the
// followers follow the new leader at the new epoch and the old leader becomes one of
// them: records written at the new leader reach every replica.
func TestFollowersMoveToANewLeader(t *testing.T) {
	c := newTestCluster(t, 1, 2, 3)
	topic := c.createTopic(t, "moving", 1, 1, 2, 3)
	cl1, cl2 := dial(t, c.nodes[1].addr), dial(t, c.nodes[2].addr)
	c.produceTo(t, cl1, "moving", 0, 5)
	c.waitReplicated(t, partitionKey{"moving", 0}, 5)

	p := topic.Partitions[0]
	p.Leader, p.LeaderEpoch, p.PartitionEpoch = 2, 1, 1
	if err := c.store.UpdatePartition(context.Background(), "moving", p, 0); err != nil {
		t.Fatalf("UpdatePartition: %v", err)
	}
	if base := c.produceTo(t, cl2, "moving", 0, 4); base != 5 {
		t.Fatalf("first write at the new leader got base offset %d, want 5", base)
	}
	c.waitReplicated(t, partitionKey{"moving", 0}, 9)
}

// TestFetchSessions drives the node's incremental fetch sessions (KIP-227) as a
// follower would: a full fetch opens a session; incremental fetches name only what
// moved and get only what has news; a wrong epoch or an unknown session is refused
// with the top-level errors that make a fetcher start over.
func TestFetchSessions(t *testing.T) {
	c := newTestCluster(t, 1, 2)
	c.createTopic(t, "s", 4, 1) // led by node 1, no followers
	cl := dial(t, c.nodes[1].addr)
	for i := range int32(4) {
		c.produceTo(t, cl, "s", i, 2)
	}

	fetch := func(id, epoch int32, parts map[int32]int64, forget ...int32) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 12, 2, 0, 1, 1<<20
		req.SessionID, req.SessionEpoch = id, epoch
		if len(parts) > 0 {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = "s"
			for i, off := range parts {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = i, off, 1<<20, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = []kmsg.FetchRequestTopic{rt}
		}
		if len(forget) > 0 {
			req.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "s", Partitions: forget}}
		}
		return do[*kmsg.FetchResponse](t, cl, req)
	}
	answered := func(resp *kmsg.FetchResponse) map[int32]int {
		t.Helper()
		if resp.ErrorCode != 0 {
			t.Fatalf("fetch in session %d: error %d", resp.SessionID, resp.ErrorCode)
		}
		out := map[int32]int{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				out[rp.Partition] = len(rp.RecordBatches)
			}
		}
		return out
	}

	full := fetch(0, 0, map[int32]int64{0: 0, 1: 0, 2: 2, 3: 2})
	if full.ErrorCode != 0 || full.SessionID == 0 {
		t.Fatalf("full fetch: error %d, session %d; want a new session", full.ErrorCode, full.SessionID)
	}
	if got := answered(full); len(got) != 4 || got[0] == 0 || got[2] != 0 {
		t.Fatalf("full fetch answered %v; want all four, records for 0 and 1 only", got)
	}
	id := full.SessionID

	// Partitions 0 and 1 moved to 2; nothing is new anywhere.
	if got := answered(fetch(id, 1, map[int32]int64{0: 2, 1: 2})); len(got) != 0 {
		t.Fatalf("incremental fetch with nothing new answered %v; want nothing", got)
	}
	c.produceTo(t, cl, "s", 3, 1)
	if got := answered(fetch(id, 2, nil)); len(got) != 1 || got[3] == 0 {
		t.Fatalf("after a write to partition 3, incremental fetch answered %v; want partition 3 with records", got)
	}
	// Forget partition 3: a new write there is no longer news for this session.
	fetch(id, 3, nil, 3)
	c.produceTo(t, cl, "s", 3, 1)
	if got := answered(fetch(id, 4, nil)); len(got) != 0 {
		t.Fatalf("after forgetting partition 3, incremental fetch answered %v; want nothing", got)
	}

	if resp := fetch(id, 9, nil); resp.ErrorCode != 71 { // INVALID_FETCH_SESSION_EPOCH
		t.Errorf("fetch at a wrong epoch: error %d, want 71", resp.ErrorCode)
	}
	if resp := fetch(id+1, 1, nil); resp.ErrorCode != 70 { // FETCH_SESSION_ID_NOT_FOUND
		t.Errorf("fetch in an unknown session: error %d, want 70", resp.ErrorCode)
	}
	// Closing the session (epoch -1) answers in full, without a session.
	if resp := fetch(id, -1, map[int32]int64{0: 0}); resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Errorf("closing fetch: error %d session %d; want 0, 0", resp.ErrorCode, resp.SessionID)
	}
	if resp := fetch(id, 5, nil); resp.ErrorCode != 70 {
		t.Errorf("fetch in a closed session: error %d, want 70", resp.ErrorCode)
	}
}

// TestFollowerAheadOfAppendedAdvancesHighWatermark: a follower can read a batch, write
// it and report its new end before the produce that appended the batch has told the
// leader state. That report must count: dropped as "past the leader's end", the high
// watermark waited for the follower's next move (seconds, with a producer waiting on
// acks=all and nothing else to write).
func TestFollowerAheadOfAppendedAdvancesHighWatermark(t *testing.T) {
	c := newTestCluster(t, 1, 2)
	c.createTopic(t, "ahead", 1, 1, 2)
	cl := dial(t, c.nodes[1].addr)
	key := partitionKey{"ahead", 0}
	c.produceTo(t, cl, key.topic, key.index, 1) // both replicas open, the ISR fetching
	c.waitReplicated(t, key, 1)

	leader := c.nodes[1].srv
	leader.mu.Lock()
	r := leader.mu.partitions[key]
	leader.mu.Unlock()
	snap := leader.view.Snapshot()
	p, _ := snap.Partition(key.topic, key.index)
	// The append, without the appended() that follows it in produce.
	if _, err := r.log.Append(makeBatch(3), p.LeaderEpoch, partitionlog.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	end := r.log.EndOffset()
	if _, err := r.followerFetched(2, end, trace.SpanContext{}); err != nil {
		t.Fatal(err)
	}
	if hw := r.highWatermark(); hw != end {
		t.Fatalf("high watermark %d after the only follower reported %d, the log's end; want %d", hw, end, end)
	}
}
