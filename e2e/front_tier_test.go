package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Tests of the front tier (docs/architecture.md "Proxy modes", "One forwarding engine"): proxies
// in forward mode behind one seed list with one of them killed, a leader node killed
// under a raw idempotent producer that must see no error, and a sidecar.

// TestForwardTierSurvivesProxyKill: three proxies in forward mode behind one seed list;
// 20 producers and a 6-member consumer group spread across them; one proxy is
// SIGKILLed midway. Clients carry on through the others, no acknowledged record is
// lost, the group ends with every record consumed and committed (zero lag), and
// Metadata stops listing the dead proxy.
func TestForwardTierSurvivesProxyKill(t *testing.T) {
	const (
		topic     = "ingress"
		group     = "ingress-readers"
		producers = 20
		members   = 6
	)
	c := StartCluster(t, ClusterNodes(3), Proxies(3), NodeArgs(fastISR))
	seeds := c.ProxyAddrs()
	adm := kadm.NewClient(newClient(t, seeds))
	createReplicatedTopic(t, adm, topic, 6, 3, 2)

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		read  = map[string]bool{}
		fails []error
	)
	ctx, stop := context.WithCancel(context.Background()) // producers
	consuming, stopConsuming := context.WithCancel(context.Background())
	defer stopConsuming()
	var wg sync.WaitGroup
	for i := range producers {
		cl := newClient(t, seeds, kgo.DefaultProduceTopic(topic))
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				value := fmt.Sprintf("p%02d-%06d", i, n)
				err := cl.ProduceSync(context.Background(), kgo.StringRecord(value)).FirstErr()
				mu.Lock()
				if err != nil {
					fails = append(fails, fmt.Errorf("%s: %w", value, err))
				} else {
					acked[value] = true
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	for range members {
		cl := newClient(t, seeds, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
		go func() {
			for {
				fs := cl.PollFetches(consuming)
				if consuming.Err() != nil {
					return
				}
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					read[string(r.Value)] = true
					mu.Unlock()
				})
			}
		}()
	}

	time.Sleep(5 * time.Second)
	victim := c.Proxies[1]
	victim.Kill()
	t.Logf("killed %s at %s", victim.Name(), victim.Addr())
	time.Sleep(15 * time.Second)
	stop()
	wg.Wait()

	mu.Lock()
	if len(fails) > 0 {
		t.Errorf("%d produce calls failed; first: %v", len(fails), fails[0])
	}
	total := len(acked)
	mu.Unlock()
	if total < producers*100 {
		t.Fatalf("only %d records acknowledged in 20 s by %d producers", total, producers)
	}
	// Every acknowledged record is in the log.
	inLog := map[string]*kgo.Record{}
	ends, err := endOffsets(context.Background(), kadm.NewClient(newClient(t, []string{c.Proxies[0].Addr()})), topic)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(0)
	for _, e := range ends {
		n += e
	}
	for _, r := range consumeAll(t, newClient(t, []string{c.Proxies[0].Addr()}, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), int(n), 60*time.Second) {
		inLog[string(r.Value)] = r
	}
	lost := 0
	mu.Lock()
	for v := range acked {
		if inLog[v] == nil {
			lost++
		}
	}
	mu.Unlock()
	if lost > 0 {
		t.Fatalf("%d acknowledged records are not in the log", lost)
	}
	// The group (its members still running) consumes every acknowledged record.
	Eventually(t, 90*time.Second, func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		var missing []string
		for v := range acked {
			if !read[v] {
				r := inLog[v]
				missing = append(missing, fmt.Sprintf("%s@%d/%d", v, r.Partition, r.Offset))
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return fmt.Errorf("%d of %d acknowledged records not read by the group yet: %v", len(missing), len(acked), missing[:min(len(missing), 20)])
		}
		return nil
	})
	checkCommittedAtEnd(t, kadm.NewClient(newClient(t, []string{c.Proxies[0].Addr()})), group, topic, 90*time.Second)

	Eventually(t, 30*time.Second, func(ctx context.Context) error {
		meta, err := kadm.NewClient(newClient(t, []string{c.Proxies[0].Addr()})).BrokerMetadata(ctx)
		if err != nil {
			return err
		}
		for _, b := range meta.Brokers {
			if fmt.Sprintf("%s:%d", b.Host, b.Port) == victim.Addr() {
				return fmt.Errorf("metadata still lists the killed proxy %d at %s", b.NodeID, victim.Addr())
			}
		}
		if len(meta.Brokers) != 2 {
			return fmt.Errorf("metadata lists %d brokers, want the 2 live proxies", len(meta.Brokers))
		}
		return nil
	})
	t.Logf("%d records acknowledged and read; the dead proxy left Metadata", total)
}

// TestFailoverMaskedFromRawProducer: a raw kmsg producer sends idempotent produce
// requests through a proxy while the partition's leader node is SIGKILLed. The proxy
// re-routes each request to the new leader within the request's timeout: the client
// sees no error code at all, only latency, and every acknowledged record is read back
// exactly once.
func TestFailoverMaskedFromRawProducer(t *testing.T) {
	const topic = "masked"
	c := StartCluster(t, ClusterNodes(3), Proxies(1), NodeArgs(fastISR))
	adm := c.Admin(t, 0)
	createReplicatedTopic(t, adm, topic, 1, 3, 2)
	waitISR(t, c, topic, 1, 3, replicationTimeout)
	leader := newNodeProber(t, c).mustLeaderOf(t, topic, 0, replicationTimeout)

	cl := c.Client(t, 0, produceByName())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pid, epoch := initProducerID(t, ctx, cl)
	var acked []string
	seq := int32(0)
	slowest := time.Duration(0)
	for round := 0; round < 60; round++ {
		if round == 20 {
			c.Nodes[leader-1].Kill()
			t.Logf("killed the leader, node %d", leader)
		}
		values := []string{fmt.Sprintf("r%03d-a", round), fmt.Sprintf("r%03d-b", round)}
		start := time.Now()
		code, err := produceIdempotent(ctx, cl, topic, pid, epoch, seq, values)
		if err != nil {
			t.Fatalf("round %d: produce request failed: %v", round, err)
		}
		if code != 0 {
			t.Fatalf("round %d: the client saw error code %d; the proxy should have hidden the failover", round, code)
		}
		slowest = max(slowest, time.Since(start))
		seq += int32(len(values))
		acked = append(acked, values...)
	}
	t.Logf("60 idempotent produce requests across the failover, no error; slowest %v", slowest)

	got := consumeAll(t, c.Client(t, 0, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), len(acked), 60*time.Second)
	var values []string
	for _, r := range got {
		values = append(values, string(r.Value))
	}
	if !slices.Equal(values, acked) {
		t.Fatalf("read back %d records, want the %d acknowledged ones once each, in order:\ngot  %s\nwant %s",
			len(values), len(acked), strings.Join(values, " "), strings.Join(acked, " "))
	}
}

// TestSidecarApplication: an application configured with only the sidecar's address
// produces and consumes as a group member while its group's coordinator lease is held
// by another proxy, which the sidecar forwards its group requests to.
func TestSidecarApplication(t *testing.T) {
	const topic, group, records = "app-events", "app", 200
	// The first proxy starts first and takes every coordinator lease.
	c := StartCluster(t, ClusterNodes(1), Proxies(2), ProxyArgsAt(1, "--mode", "sidecar"))
	sidecar := c.Proxies[1]
	app := func(opts ...kgo.Opt) *kgo.Client { return newClient(t, []string{sidecar.Addr()}, opts...) }
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	meta, err := kadm.NewClient(app()).BrokerMetadata(ctx)
	if err != nil || len(meta.Brokers) != 1 || fmt.Sprintf("%s:%d", meta.Brokers[0].Host, meta.Brokers[0].Port) != sidecar.Addr() {
		t.Fatalf("sidecar's metadata: %+v, %v; want the sidecar as the only broker", meta.Brokers, err)
	}
	producer := app(kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	for i := range records {
		if err := producer.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
			t.Fatalf("produce through the sidecar: %v", err)
		}
	}
	consumer := app(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for n := 0; n < records; {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the group member read %d of %d records through the sidecar", n, records)
		}
		n += fs.NumRecords()
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit through the sidecar: %v", err)
	}
	// The other proxy coordinates the group and holds the commits.
	coordinatorAdm := c.Admin(t, 0)
	checkCommittedAtEnd(t, coordinatorAdm, group, topic, 30*time.Second)
	described, err := coordinatorAdm.DescribeGroups(ctx, group)
	if err != nil || described[group].Coordinator.NodeID == 0 || len(described[group].Members) != 1 {
		t.Fatalf("describe %s at the coordinator: %+v, %v; want one member", group, described[group], err)
	}
}

// newClient is a franz-go client seeded with seeds, closed when the test ends.
func newClient(t testing.TB, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// initProducerID asks for an idempotent producer id, as a producer does at start.
func initProducerID(t testing.TB, ctx context.Context, cl *kgo.Client) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v, error code %d", err, resp.ErrorCode)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// produceIdempotent sends one acks=all Produce request holding one idempotent batch
// of values at sequence seq to partition 0, straight to cl's seed broker (no client
// retries), and returns the partition's error code.
func produceIdempotent(ctx context.Context, cl *kgo.Client, topic string, pid int64, epoch int16, seq int32, values []string) (int16, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 60_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, idempotentBatch(pid, epoch, seq, values)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return -1, err
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}

// idempotentBatch encodes values as a v2 batch of an idempotent producer.
func idempotentBatch(pid int64, epoch int16, seq int32, values []string) []byte {
	var records []byte
	for i, v := range values {
		rec := kmsg.Record{Value: []byte(v), OffsetDelta: int32(i)}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		records = rec.AppendTo(records)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		Magic: 2, FirstTimestamp: now, MaxTimestamp: now, LastOffsetDelta: int32(len(values) - 1),
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq,
		NumRecords: int32(len(values)), Records: records,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[batchLengthAt:], uint32(len(raw)-batchLogOverhead))
	const crcAt, attributesAt = 17, 21
	binary.BigEndian.PutUint32(raw[crcAt:], crc32.Checksum(raw[attributesAt:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
