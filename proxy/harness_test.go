package proxy

// An in-process Strait cluster for the proxy's tests: an in-memory routing store, a
// cache, one or more partition-log nodes and a proxy, each served by its own
// wire.Server on a loopback port, wired as `strait dev` wires them.

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/partitionlog/node"
	"github.com/strait-io/strait/routing"
)

// clusterConfig is what startCluster can be told through options.
type clusterConfig struct {
	nodes                int
	autoCreate           bool
	defaultPartitions    int32
	maxClusterPartitions int
}

type clusterOption func(*clusterConfig)

// withNodes runs n partition-log nodes (default 1).
func withNodes(n int) clusterOption { return func(c *clusterConfig) { c.nodes = n } }

// withAutoCreate sets auto.create.topics.enable on the proxy (default off).
func withAutoCreate(on bool) clusterOption { return func(c *clusterConfig) { c.autoCreate = on } }

// withDefaultPartitions sets num.partitions for topics created without a count.
func withDefaultPartitions(n int32) clusterOption {
	return func(c *clusterConfig) { c.defaultPartitions = n }
}

// withMaxClusterPartitions caps the partition replicas of the cluster (max.partitions).
func withMaxClusterPartitions(n int) clusterOption {
	return func(c *clusterConfig) { c.maxClusterPartitions = n }
}

// testCluster is a running cluster; everything stops on t.Cleanup.
type testCluster struct {
	store     *routing.MemStore
	cache     *routing.Cache
	nodes     []*testNode
	proxy     *Proxy
	proxyAddr string
}

type testNode struct {
	id   int32
	addr string
	dir  string
	srv  *node.Server
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func startCluster(t *testing.T, opts ...clusterOption) *testCluster {
	t.Helper()
	cfg := clusterConfig{nodes: 1}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logger := discardLogger()
	c := &testCluster{}
	var err error
	if c.store, err = routing.NewMemStore(""); err != nil {
		t.Fatalf("NewMemStore: %v", err)
	}
	t.Cleanup(func() { c.store.Close() })
	listeners := make([]net.Listener, cfg.nodes)
	for i := range listeners {
		listeners[i] = listen(t)
		n := routing.Node{ID: int32(i + 1), Addr: listeners[i].Addr().String()}
		if err := c.store.RegisterNode(ctx, n); err != nil {
			t.Fatalf("RegisterNode: %v", err)
		}
	}
	if c.cache, err = routing.NewCache(ctx, c.store, 0, logger); err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(c.cache.Close)
	t.Cleanup(cancel) // runs before the cache closes: node Run loops stop first
	base := t.TempDir()
	for i, ln := range listeners {
		tn := &testNode{id: int32(i + 1), addr: ln.Addr().String(), dir: filepath.Join(base, fmt.Sprintf("node-%d", i+1))}
		if tn.srv, err = node.New(node.Config{ID: tn.id, DataDir: tn.dir}, c.cache, logger); err != nil {
			t.Fatalf("node.New: %v", err)
		}
		if err := tn.srv.Reconcile(); err != nil {
			t.Fatalf("Reconcile: %v", err)
		}
		runCtx, stopRun := context.WithCancel(context.Background())
		go tn.srv.Run(runCtx)
		t.Cleanup(stopRun)
		serveWire(t, &wire.Server{Handler: tn.srv, Logger: logger, Versions: node.APIs.Versions}, ln)
		t.Cleanup(func() { tn.srv.Close() }) // after the wire server stops (cleanups run LIFO)
		c.nodes = append(c.nodes, tn)
	}
	controller := routing.NewController(c.store, routing.ControllerConfig{
		DefaultPartitions: cfg.defaultPartitions, MaxClusterPartitions: cfg.maxClusterPartitions,
	}, logger)
	ln := listen(t)
	c.proxyAddr = ln.Addr().String()
	c.proxy, err = New(Config{BrokerID: 0, AdvertisedAddr: c.proxyAddr, AutoCreateTopics: cfg.autoCreate}, c.cache, c.store, controller, logger)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	t.Cleanup(func() { c.proxy.Close() })
	// As `strait dev` does: register the proxy and start its group coordinator, which
	// creates __consumer_offsets.
	if err := c.store.RegisterProxy(ctx, routing.Proxy{ID: 0, Addr: c.proxyAddr}); err != nil {
		t.Fatalf("RegisterProxy: %v", err)
	}
	if err := c.proxy.StartGroups(ctx, coordinator.Config{Partitions: 1}); err != nil {
		t.Fatalf("StartGroups: %v", err)
	}
	if err := c.proxy.StartTransactions(ctx, TransactionsConfig{Partitions: 1}); err != nil {
		t.Fatalf("StartTransactions: %v", err)
	}
	serveWire(t, &wire.Server{Handler: c.proxy, Logger: logger, Versions: APIs().Versions}, ln)
	return c
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}

// serveWire serves s on ln until the test ends, then shuts it down and checks Serve
// returned ErrServerClosed.
func serveWire(t *testing.T, s *wire.Server, ln net.Listener) {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown %s: %v", ln.Addr(), err)
		}
		if err := <-served; !errors.Is(err, wire.ErrServerClosed) {
			t.Errorf("Serve %s returned %v, want ErrServerClosed", ln.Addr(), err)
		}
	})
}

// dial opens a raw protocol connection to addr (the proxy or a node), closed at cleanup.
func dial(t *testing.T, addr string) *wire.Client {
	t.Helper()
	cl, err := wire.Dial(context.Background(), addr, wire.ClientOptions{ClientID: "strait-test"})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// do sends req (its version set by the caller) on cl and fails the test on a transport error.
func do[R kmsg.Response](t *testing.T, cl *wire.Client, req kmsg.Request) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := cl.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	r, ok := resp.(R)
	if !ok {
		t.Fatalf("%s v%d: answered with %T", kmsg.NameForKey(req.Key()), req.GetVersion(), resp)
	}
	return r
}

// kafkaClient returns a franz-go client seeded with the proxy, closed at cleanup. Its
// long polls are short: a server's Shutdown lets a fetch it already read run to its
// MaxWaitMillis, which would otherwise add kgo's 5s default to a test's cleanup.
func (c *testCluster) kafkaClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(c.proxyAddr), kgo.RetryTimeout(5 * time.Second), kgo.FetchMaxWait(300 * time.Millisecond)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (c *testCluster) admin(t *testing.T) *kadm.Client {
	t.Helper()
	return kadm.NewClient(c.kafkaClient(t))
}

// createTopic creates a topic through the proxy's CreateTopics and returns its id.
func (c *testCluster) createTopic(t *testing.T, name string, partitions int32, configs map[string]*string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, -1
	for k, v := range configs {
		rc := kmsg.NewCreateTopicsRequestTopicConfig()
		rc.Name, rc.Value = k, v
		rt.Configs = append(rt.Configs, rc)
	}
	req.Topics = append(req.Topics, rt)
	resp := do[*kmsg.CreateTopicsResponse](t, dial(t, c.proxyAddr), req)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic %q: error %d", name, code)
	}
	return resp.Topics[0].TopicID
}

// batchSpec describes a v2 record batch for raw Produce requests.
type batchSpec struct {
	records    int   // default 1
	baseTs     int64 // record i has timestamp baseTs+i; 0 means now
	idempotent bool  // carry producerID, epoch and seq; else -1s as a plain producer sends
	producerID int64
	epoch      int16
	seq        int32
	value      string // default "v"; record i gets value+i
}

// Byte offsets in a v2 record batch header (Kafka's DefaultRecordBatch).
const (
	batchLengthFieldEnd = 12 // base offset (8) + length (4)
	batchCRCOffset      = 17
	batchAttrOffset     = 21
)

// makeBatch encodes a v2 batch as a producer would: kmsg encodes, and the CRC-32C
// (Castagnoli) covers the bytes from attributes to the end.
func makeBatch(spec batchSpec) []byte {
	if spec.records == 0 {
		spec.records = 1
	}
	if spec.value == "" {
		spec.value = "v"
	}
	if spec.baseTs == 0 {
		spec.baseTs = time.Now().UnixMilli()
	}
	var recs []byte
	for i := range spec.records {
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Key: []byte("k"), Value: fmt.Appendf(nil, "%s%d", spec.value, i)}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // Length 0 encodes as one varint byte
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(spec.records - 1),
		FirstTimestamp:       spec.baseTs,
		MaxTimestamp:         spec.baseTs + int64(spec.records-1),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(spec.records),
		Records:              recs,
	}
	if spec.idempotent {
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = spec.producerID, spec.epoch, spec.seq
	}
	b.Length = int32(len(b.AppendTo(nil)) - batchLengthFieldEnd)
	out := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(out[batchAttrOffset:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// produceRequest builds a Produce v9 request (by name) of one batch per partition.
func produceRequest(topic string, acks int16, parts map[int32][]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p, records := range parts {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, records
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// fetchRequest builds a Fetch v12 request (by name, sessionless) for one partition.
func fetchRequest(topic string, partition int32, offset int64, minBytes, maxWaitMillis int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MinBytes, req.MaxWaitMillis = minBytes, maxWaitMillis
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// onlyProducePartition returns the single partition answer of a one-partition produce.
func onlyProducePartition(t *testing.T, resp *kmsg.ProduceResponse) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce answer has %d topics, want 1 with 1 partition: %+v", len(resp.Topics), resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

func onlyFetchPartition(t *testing.T, resp *kmsg.FetchResponse) kmsg.FetchResponseTopicPartition {
	t.Helper()
	if resp.ErrorCode != 0 {
		t.Fatalf("fetch: top-level error %d", resp.ErrorCode)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch answer has %d topics, want 1 with 1 partition: %+v", len(resp.Topics), resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

// endOffset asks the proxy for a partition's log end offset (ListOffsets latest).
func endOffset(t *testing.T, cl *wire.Client, topic string, partition int32) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 6
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := do[*kmsg.ListOffsetsResponse](t, cl, req)
	sp := resp.Topics[0].Partitions[0]
	if sp.ErrorCode != 0 {
		t.Fatalf("list end offset of %s-%d: error %d", topic, partition, sp.ErrorCode)
	}
	return sp.Offset
}

// recordValues decodes the records of fetched batches into their values.
func recordValues(t *testing.T, batches []byte) []string {
	t.Helper()
	var out []string
	for len(batches) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(batches); err != nil {
			t.Fatalf("decode fetched batch: %v", err)
		}
		recs := b.Records
		for range b.NumRecords {
			var r kmsg.Record
			n, err := readRecord(recs, &r)
			if err != nil {
				t.Fatalf("decode fetched record: %v", err)
			}
			out = append(out, string(r.Value))
			recs = recs[n:]
		}
		batches = batches[batchLengthFieldEnd+int(b.Length):]
	}
	return out
}

// readRecord decodes one varint-length-prefixed record and returns its encoded size.
func readRecord(b []byte, r *kmsg.Record) (int, error) {
	length, n := varint(b)
	if n <= 0 || int(length) < 0 || n+int(length) > len(b) {
		return 0, fmt.Errorf("bad record length prefix")
	}
	size := n + int(length)
	if err := r.ReadFrom(b[:size]); err != nil {
		return 0, err
	}
	return size, nil
}

// varint decodes a zigzag varint as Kafka records use.
func varint(b []byte) (int64, int) {
	var ux uint64
	var s uint
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		ux |= uint64(c&0x7f) << s
		if c < 0x80 {
			return int64(ux>>1) ^ -int64(ux&1), i + 1
		}
		s += 7
	}
	return 0, 0
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("split %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("port of %q: %v", addr, err)
	}
	return int32(n)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
