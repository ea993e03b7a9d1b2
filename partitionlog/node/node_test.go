package node

import (
	"context"
	"errors"
	"hash/crc32"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

// nodeHarness is node 1 of a cluster whose metadata lives in an in-memory store; node 2
// is registered but never served, so partitions it leads are led elsewhere.
type nodeHarness struct {
	store *routing.MemStore
	cache *routing.Cache
	dir   string
	addr  string
	srv   *Server
}

func newNodeHarness(t *testing.T) *nodeHarness {
	t.Helper()
	ctx := context.Background()
	h := &nodeHarness{dir: t.TempDir()}
	var err error
	if h.store, err = routing.NewMemStore(""); err != nil {
		t.Fatalf("NewMemStore: %v", err)
	}
	t.Cleanup(func() { h.store.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	h.addr = ln.Addr().String()
	for _, n := range []routing.Node{{ID: 1, Addr: h.addr}, {ID: 2, Addr: "127.0.0.1:1"}} {
		if err := h.store.RegisterNode(ctx, n); err != nil {
			t.Fatalf("RegisterNode: %v", err)
		}
	}
	if h.cache, err = routing.NewCache(ctx, h.store, 0, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(h.cache.Close)
	h.srv = h.newServer(t)
	ws := &wire.Server{Handler: h.srv, Versions: APIs.Versions}
	served := make(chan error, 1)
	go func() { served <- ws.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ws.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, wire.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return h
}

// newServer opens a node server on the harness's data directory, as a restart would.
func (h *nodeHarness) newServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{ID: 1, DataDir: h.dir}, h.cache, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// createTopic writes a one-partition topic led by leader at leaderEpoch straight into
// the store, and waits for the cache to see it.
func (h *nodeHarness) createTopic(t *testing.T, name string, leader, leaderEpoch int32) routing.TopicID {
	t.Helper()
	id := routing.NewTopicID()
	topic := routing.Topic{Name: name, ID: id, Partitions: []routing.Partition{{
		Index: 0, Replicas: []int32{leader}, ISR: []int32{leader}, Leader: leader, LeaderEpoch: leaderEpoch,
	}}}
	if err := h.store.CreateTopic(context.Background(), topic); err != nil {
		t.Fatalf("CreateTopic %s: %v", name, err)
	}
	h.refresh(t)
	return id
}

func (h *nodeHarness) deleteTopic(t *testing.T, name string) {
	t.Helper()
	if err := h.store.DeleteTopic(context.Background(), name); err != nil {
		t.Fatalf("DeleteTopic %s: %v", name, err)
	}
	h.refresh(t)
}

func (h *nodeHarness) refresh(t *testing.T) {
	t.Helper()
	if err := h.cache.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

func (h *nodeHarness) reconcile(t *testing.T, s *Server) {
	t.Helper()
	if err := s.Reconcile(); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
}

// partitionDir is where node 1 keeps partition 0 of topic.
func (h *nodeHarness) partitionDir(topic string) string {
	return filepath.Join(h.dir, topic+"-0")
}

// markerID reads the topic id a partition directory claims (partition.metadata, as
// Kafka writes it), or "" if there is none.
func markerID(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "partition.metadata"))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatalf("read marker: %v", err)
	}
	return string(b)
}

func dirExists(t *testing.T, dir string) bool {
	t.Helper()
	_, err := os.Stat(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("stat %s: %v", dir, err)
	}
	return err == nil
}

func dial(t *testing.T, addr string) *wire.Client {
	t.Helper()
	cl, err := wire.Dial(context.Background(), addr, wire.ClientOptions{ClientID: "strait-node-test"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func do[R kmsg.Response](t *testing.T, cl *wire.Client, req kmsg.Request) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp.(R)
}

// makeBatch encodes a plain v2 batch of n records with kmsg; the CRC-32C covers the
// bytes from attributes (offset 21) to the end.
func makeBatch(n int) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i), Value: []byte("value")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: now, MaxTimestamp: now + int64(n-1),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(n), Records: recs,
	}
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	b.CRC = int32(crc32.Checksum(b.AppendTo(nil)[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

func produce(t *testing.T, cl *wire.Client, topic string, records int) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 12, -1, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: makeBatch(records)}}}}
	return do[*kmsg.ProduceResponse](t, cl, req).Topics[0].Partitions[0]
}

func listEnd(t *testing.T, cl *wire.Client, topic string) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 6
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{rp}}}
	return do[*kmsg.ListOffsetsResponse](t, cl, req).Topics[0].Partitions[0]
}

// TestReconcileRemovesDeletedTopics: a node deletes the data of a topic that was
// deleted, and of one deleted and recreated under the same name, which Kafka tells
// apart by the topic id in partition.metadata (KIP-516).
func TestReconcileRemovesDeletedTopics(t *testing.T) {
	h := newNodeHarness(t)
	cl := dial(t, h.addr)

	t.Run("deleted topic", func(t *testing.T) {
		h.createTopic(t, "gone", 1, 0)
		h.reconcile(t, h.srv)
		if sp := produce(t, cl, "gone", 2); sp.ErrorCode != 0 {
			t.Fatalf("produce: error %d", sp.ErrorCode)
		}
		if !dirExists(t, h.partitionDir("gone")) {
			t.Fatalf("no directory for a partition placed here")
		}
		h.deleteTopic(t, "gone")
		h.reconcile(t, h.srv)
		if dirExists(t, h.partitionDir("gone")) {
			t.Errorf("directory of deleted topic still there")
		}
	})

	t.Run("deleted and recreated with the same name", func(t *testing.T) {
		h.createTopic(t, "again", 1, 0)
		h.reconcile(t, h.srv)
		if sp := produce(t, cl, "again", 3); sp.ErrorCode != 0 {
			t.Fatalf("produce: error %d", sp.ErrorCode)
		}
		h.deleteTopic(t, "again")
		id := h.createTopic(t, "again", 1, 0)
		h.reconcile(t, h.srv)
		if got, want := markerID(t, h.partitionDir("again")), "version: 0\ntopic_id: "+id.String()+"\n"; got != want {
			t.Errorf("partition.metadata %q, want %q", got, want)
		}
		if lo := listEnd(t, cl, "again"); lo.ErrorCode != 0 || lo.Offset != 0 {
			t.Errorf("recreated topic: end offset %d (error %d), want 0: the old records are gone", lo.Offset, lo.ErrorCode)
		}
	})

	t.Run("deleted and recreated while the node was down", func(t *testing.T) {
		h.createTopic(t, "while-down", 1, 0)
		h.createTopic(t, "stray", 1, 0)
		h.reconcile(t, h.srv)
		produce(t, cl, "while-down", 4)
		produce(t, cl, "stray", 1)
		if err := h.srv.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		h.deleteTopic(t, "while-down")
		h.deleteTopic(t, "stray")
		id := h.createTopic(t, "while-down", 1, 0)

		restarted := h.newServer(t)
		h.reconcile(t, restarted)
		if dirExists(t, h.partitionDir("stray")) {
			t.Errorf("directory of a topic deleted while the node was down is still there")
		}
		if got := markerID(t, h.partitionDir("while-down")); got != "version: 0\ntopic_id: "+id.String()+"\n" {
			t.Errorf("partition.metadata %q, want the new id %s", got, id)
		}
		r, _, err := restarted.lookup(h.cache.Snapshot(), "while-down", 0)
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if end := r.log.EndOffset(); end != 0 {
			t.Errorf("recreated topic holds %d records of the old one", end)
		}
	})
}

// TestLeaderEpochChecks: requests carrying the client's CurrentLeaderEpoch are checked
// against the partition's (KIP-320): older is FENCED_LEADER_EPOCH, newer is
// UNKNOWN_LEADER_EPOCH, equal or -1 (no check) is served.
func TestLeaderEpochChecks(t *testing.T) {
	h := newNodeHarness(t)
	h.createTopic(t, "epochs", 1, 3)
	cl := dial(t, h.addr)
	if sp := produce(t, cl, "epochs", 2); sp.ErrorCode != 0 {
		t.Fatalf("produce: error %d", sp.ErrorCode)
	}
	for _, tc := range []struct {
		epoch    int32
		wantCode int16
	}{
		{-1, 0},
		{3, 0},
		{2, kerr.FencedLeaderEpoch.Code},
		{0, kerr.FencedLeaderEpoch.Code},
		{4, kerr.UnknownLeaderEpoch.Code},
	} {
		fetch := kmsg.NewPtrFetchRequest()
		fetch.Version = 12
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.CurrentLeaderEpoch, fp.PartitionMaxBytes = tc.epoch, 1<<20
		fetch.Topics = []kmsg.FetchRequestTopic{{Topic: "epochs", Partitions: []kmsg.FetchRequestTopicPartition{fp}}}
		if got := do[*kmsg.FetchResponse](t, cl, fetch).Topics[0].Partitions[0]; got.ErrorCode != tc.wantCode {
			t.Errorf("Fetch with current epoch %d (partition at 3): error %d, want %d", tc.epoch, got.ErrorCode, tc.wantCode)
		} else if tc.wantCode == 0 && len(got.RecordBatches) == 0 {
			t.Errorf("Fetch with current epoch %d: no records", tc.epoch)
		}

		list := kmsg.NewPtrListOffsetsRequest()
		list.Version = 6
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.CurrentLeaderEpoch, lp.Timestamp = tc.epoch, -1
		list.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "epochs", Partitions: []kmsg.ListOffsetsRequestTopicPartition{lp}}}
		if got := do[*kmsg.ListOffsetsResponse](t, cl, list).Topics[0].Partitions[0]; got.ErrorCode != tc.wantCode {
			t.Errorf("ListOffsets with current epoch %d: error %d, want %d", tc.epoch, got.ErrorCode, tc.wantCode)
		} else if tc.wantCode == 0 && (got.Offset != 2 || got.LeaderEpoch != 3) {
			t.Errorf("ListOffsets latest: offset %d epoch %d, want 2 and 3", got.Offset, got.LeaderEpoch)
		}

		oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
		oe.Version, oe.ReplicaID = 4, -1
		op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		op.CurrentLeaderEpoch, op.LeaderEpoch = tc.epoch, 3
		oe.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "epochs", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{op}}}
		if got := do[*kmsg.OffsetForLeaderEpochResponse](t, cl, oe).Topics[0].Partitions[0]; got.ErrorCode != tc.wantCode {
			t.Errorf("OffsetForLeaderEpoch with current epoch %d: error %d, want %d", tc.epoch, got.ErrorCode, tc.wantCode)
		}
	}
}

// TestOffsetForLeaderEpoch: for the current leader epoch the answer is the log end
// offset (KIP-101); for an epoch older than the log's first, that epoch and where the
// first starts; for one newer than any, undefined (-1, -1), as LeaderEpochFileCache does.
func TestOffsetForLeaderEpoch(t *testing.T) {
	h := newNodeHarness(t)
	h.createTopic(t, "ofle", 1, 3)
	cl := dial(t, h.addr)
	ask := func(epoch int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.Version, req.ReplicaID = 4, -1
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = 3, epoch
		req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "ofle", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{rp}}}
		return do[*kmsg.OffsetForLeaderEpochResponse](t, cl, req).Topics[0].Partitions[0]
	}
	if got := ask(3); got.ErrorCode != 0 || got.LeaderEpoch != 3 || got.EndOffset != 0 {
		t.Errorf("empty log, current epoch: epoch %d end %d error %d, want 3, 0, 0", got.LeaderEpoch, got.EndOffset, got.ErrorCode)
	}
	for range 3 {
		if sp := produce(t, cl, "ofle", 2); sp.ErrorCode != 0 {
			t.Fatalf("produce: error %d", sp.ErrorCode)
		}
	}
	if got := ask(3); got.ErrorCode != 0 || got.LeaderEpoch != 3 || got.EndOffset != 6 {
		t.Errorf("current epoch: epoch %d end %d error %d, want 3, 6, 0", got.LeaderEpoch, got.EndOffset, got.ErrorCode)
	}
	if got := ask(2); got.ErrorCode != 0 || got.LeaderEpoch != 2 || got.EndOffset != 0 {
		t.Errorf("epoch before the log's first: epoch %d end %d error %d, want 2, 0 (where epoch 3 starts), 0", got.LeaderEpoch, got.EndOffset, got.ErrorCode)
	}
	if got := ask(7); got.ErrorCode != 0 || got.LeaderEpoch != -1 || got.EndOffset != -1 {
		t.Errorf("epoch after the latest: epoch %d end %d error %d, want -1, -1 (undefined), 0", got.LeaderEpoch, got.EndOffset, got.ErrorCode)
	}
}

// TestNotLeader: a node answers NOT_LEADER_OR_FOLLOWER for a partition another node
// leads, and UNKNOWN_TOPIC_OR_PARTITION for one that does not exist, so clients refresh
// their metadata.
func TestNotLeader(t *testing.T) {
	h := newNodeHarness(t)
	h.createTopic(t, "elsewhere", 2, 0)
	cl := dial(t, h.addr)
	for _, tc := range []struct {
		topic    string
		wantCode int16
	}{
		{"elsewhere", kerr.NotLeaderForPartition.Code},
		{"missing", kerr.UnknownTopicOrPartition.Code},
	} {
		if sp := produce(t, cl, tc.topic, 1); sp.ErrorCode != tc.wantCode {
			t.Errorf("produce to %s: error %d, want %d", tc.topic, sp.ErrorCode, tc.wantCode)
		}
		fetch := kmsg.NewPtrFetchRequest()
		fetch.Version = 12
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		fetch.Topics = []kmsg.FetchRequestTopic{{Topic: tc.topic, Partitions: []kmsg.FetchRequestTopicPartition{fp}}}
		if got := do[*kmsg.FetchResponse](t, cl, fetch).Topics[0].Partitions[0]; got.ErrorCode != tc.wantCode {
			t.Errorf("fetch from %s: error %d, want %d", tc.topic, got.ErrorCode, tc.wantCode)
		}
		if lo := listEnd(t, cl, tc.topic); lo.ErrorCode != tc.wantCode {
			t.Errorf("list offsets of %s: error %d, want %d", tc.topic, lo.ErrorCode, tc.wantCode)
		}
	}
	if dirExists(t, h.partitionDir("elsewhere")) {
		t.Errorf("node 1 created a directory for a partition it does not hold")
	}
}

// pinnedView serves whatever snapshot the test pins, to replay an interleaving of the
// node's reconcile loop and its request path deterministically.
type pinnedView struct {
	mu   sync.Mutex
	snap *routing.Snapshot
}

func (v *pinnedView) Snapshot() *routing.Snapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.snap
}

func (v *pinnedView) pin(s *routing.Snapshot) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.snap = s
}

func (v *pinnedView) Changed() <-chan struct{} { return make(chan struct{}) }

// TestReconcileFromAnOlderSnapshotKeepsNewerPartitions replays a race of `strait dev`:
// the reconcile loop reads snapshot S0, the topic is created (S1), the proxy forwards a
// produce the node serves from S1 (opening the partition), and then the loop, still
// working from S0, reaches its removal steps. A partition opened from a newer snapshot
// than the one Reconcile works from must survive: Kafka removes a partition only when
// the metadata says its topic was deleted, and never loses an acknowledged write
// (DESIGN invariant 1).
func TestReconcileFromAnOlderSnapshotKeepsNewerPartitions(t *testing.T) {
	ctx := context.Background()
	store, err := routing.NewMemStore("")
	if err != nil {
		t.Fatalf("NewMemStore: %v", err)
	}
	if err := store.RegisterNode(ctx, routing.Node{ID: 1, Addr: "127.0.0.1:1"}); err != nil {
		t.Fatalf("RegisterNode: %v", err)
	}
	s0, _ := store.Snapshot(ctx)
	topic := routing.Topic{Name: "fresh", ID: routing.NewTopicID(), Partitions: []routing.Partition{{Index: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}}
	if err := store.CreateTopic(ctx, topic); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	s1, _ := store.Snapshot(ctx)

	view := &pinnedView{snap: s1}
	dir := t.TempDir()
	srv, err := New(Config{ID: 1, DataDir: dir}, view, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	produceOne := func() kmsg.ProduceResponseTopicPartition {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 12, -1, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "fresh", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: makeBatch(1)}}}}
		resp, err := srv.ServeKafka(ctx, &wire.Request{Header: wire.RequestHeader{Key: 0, Version: 12}, Body: req})
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	if sp := produceOne(); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("first produce: error %d at %d", sp.ErrorCode, sp.BaseOffset)
	}

	view.pin(s0) // the loop's Reconcile took its snapshot before the topic existed
	reconcileErr := srv.Reconcile()
	view.pin(s1)

	sp := produceOne()
	if reconcileErr != nil || sp.ErrorCode != 0 || sp.BaseOffset != 1 || !dirExists(t, filepath.Join(dir, "fresh-0")) {
		t.Fatalf("Reconcile from a stale snapshot removed a partition opened from a newer one: "+
			"reconcile err %v; next produce error %d at base offset %d (want 1: the acknowledged record at 0 is gone)",
			reconcileErr, sp.ErrorCode, sp.BaseOffset)
	}
}
