package proxy_test

import (
	"context"
	"hash/crc32"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/partitionlog/node"
	"github.com/strait-io/strait/proxy"
	"github.com/strait-io/strait/routing"
)

// Benchmarks of the relay path: a client's Produce and Fetch through a proxy to a node,
// over loopback sockets, as between processes. Allocations are the whole process's per
// request: client, proxy and node. They use exported APIs only, so the same file runs
// on older commits for before/after figures:
//
//	go test -run '^$' -bench 'Relay' -benchmem ./proxy/

// relayBench is a proxy in front of one node, serving topic "bench" with one partition.
type relayBench struct {
	client *wire.Client
}

func newRelayBench(b *testing.B) *relayBench {
	b.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	store, err := routing.NewMemStore("")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	nodeLn, proxyLn := listenLoopback(b), listenLoopback(b)
	if err := store.RegisterNode(ctx, routing.Node{ID: 1, Addr: nodeLn.Addr().String()}); err != nil {
		b.Fatal(err)
	}
	cache, err := routing.NewCache(ctx, store, 0, logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	n, err := node.New(node.Config{ID: 1, DataDir: b.TempDir(), ZeroCopy: true}, cache, logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	serveBench(b, &wire.Server{Handler: n, ZeroCopy: true}, nodeLn)
	controller := routing.NewController(store, routing.ControllerConfig{}, logger)
	if _, err := controller.CreateTopic(ctx, routing.TopicSpec{Name: "bench", Partitions: 1, ReplicationFactor: 1}); err != nil {
		b.Fatal(err)
	}
	if err := cache.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	if err := n.Reconcile(); err != nil {
		b.Fatal(err)
	}
	p, err := proxy.New(proxy.Config{AdvertisedAddr: proxyLn.Addr().String()}, cache, store, controller, logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	serveBench(b, &wire.Server{Handler: p, Versions: proxy.APIs().Versions}, proxyLn)
	cl, err := wire.Dial(ctx, proxyLn.Addr().String(), wire.ClientOptions{ClientID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cl.Close() })
	return &relayBench{client: cl}
}

func listenLoopback(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

func serveBench(b *testing.B, s *wire.Server, ln net.Listener) {
	go s.Serve(ln)
	b.Cleanup(func() { s.Close() })
}

// produce sends one acks=1 request with a batch of 10 records of 100 bytes.
func (rb *relayBench) produce(b *testing.B, batch []byte) {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := rb.client.Do(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	if code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		b.Fatalf("produce: error code %d", code)
	}
}

// BenchmarkRelayProduce: one produce request through the proxy to the node.
func BenchmarkRelayProduce(b *testing.B) {
	rb := newRelayBench(b)
	batch := benchBatch(10, 100)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rb.produce(b, batch)
	}
}

// BenchmarkRelayFetch: one fetch through the proxy, at the log's tail, of one batch.
func BenchmarkRelayFetch(b *testing.B) {
	rb := newRelayBench(b)
	batch := benchBatch(10, 100)
	const batches = 1000
	for range batches {
		rb.produce(b, batch)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 11, 0, 1, 1<<20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "bench"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = int64(i%batches)*10, int32(len(batch)), -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := rb.client.Do(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		if got := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]; got.ErrorCode != 0 || len(got.RecordBatches) == 0 {
			b.Fatalf("fetch at %d: error %d, %d bytes", rp.FetchOffset, got.ErrorCode, len(got.RecordBatches))
		}
	}
}

// benchBatch is a plain v2 batch of n records of size bytes each.
func benchBatch(n, size int) []byte {
	var recs []byte
	value := make([]byte, size)
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: value}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	bt := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(n), Records: recs,
	}
	bt.Length = int32(len(bt.AppendTo(nil)) - 12)
	bt.CRC = int32(crc32.Checksum(bt.AppendTo(nil)[21:], crc32.MakeTable(crc32.Castagnoli)))
	return bt.AppendTo(nil)
}
