package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/strait-io/strait/routing"
)

// Helpers for the replication tests (replication_test.go): replicated
// topics, partition state read from the routing metadata in Redis, finding the node that leads a
// partition, a pipelined acks=all producer that remembers what was
// acknowledged, Jepsen-style checks of what is read back, and a byte-level
// comparison of the replicas' segment files.

const (
	// replicationTimeout bounds one step of a replication test: an ISR
	// growing back after a restart, an election after a lease expires.
	replicationTimeout = 45 * time.Second
	// leaseTTL is how long a killed node's lease outlives it.
	leaseTTL = 10 * time.Second
	// fastISR shortens replica.lag.time.max.ms (30s by default) so ISRs
	// shrink and grow within seconds.
	fastISR = "--replica-lag-time-max=3s"
	// fastPreferredLeader shortens leader.imbalance.check.interval.seconds
	// (5m by default) so preferred leaders come back within seconds.
	fastPreferredLeader = "--leader-imbalance-check-interval=2s"
)

// startReplicatedCluster starts redis, three nodes and one proxy tuned so
// ISR changes and preferred-leader elections happen within seconds.
func startReplicatedCluster(t testing.TB) *Cluster {
	t.Helper()
	return StartCluster(t, ClusterNodes(3), Proxies(1), NodeArgs(fastISR), ProxyArgs(fastPreferredLeader))
}

// createReplicatedTopic creates topic with replication factor rf and
// min.insync.replicas minISR, failing the test on any error.
func createReplicatedTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32, rf int16, minISR int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	cfg := map[string]*string{"min.insync.replicas": kadm.StringPtr(strconv.Itoa(minISR))}
	resp, err := adm.CreateTopic(ctx, partitions, rf, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s (rf %d, min.insync.replicas %d): %v (%s)", topic, rf, minISR, err, resp.ErrMessage)
	}
}

// partitionState is one partition as the routing metadata in Redis holds it:
// Leader a node id, Replicas (in assignment order: the first is the preferred
// leader) and ISR (sorted) node ids. Metadata is not asked, since in forward
// mode it names proxies for all three (clients look replicas up among the
// listed brokers).
type partitionState struct {
	Partition     int32
	Leader, Epoch int32
	Replicas, ISR []int32
}

func (p partitionState) String() string {
	return fmt.Sprintf("p%d{leader %d epoch %d replicas %v isr %v}", p.Partition, p.Leader, p.Epoch, p.Replicas, p.ISR)
}

// partitionStates reads topic's partitions from the cluster's redis-server,
// the state the controller and nodes agreed on.
func partitionStates(ctx context.Context, c *Cluster, topic string) (map[int32]partitionState, error) {
	store, err := routing.NewRedisStore(ctx, c.RedisURL, c.Name, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("routing store at %s: %w", c.RedisURL, err)
	}
	defer store.Close()
	snap, err := store.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("routing snapshot for %s: %w", topic, err)
	}
	t, ok := snap.Topic(topic)
	if !ok {
		return nil, fmt.Errorf("topic %s is not in the routing metadata", topic)
	}
	out := make(map[int32]partitionState, len(t.Partitions))
	for _, p := range t.Partitions {
		out[p.Index] = partitionState{
			Partition: p.Index,
			Leader:    p.Leader,
			Epoch:     p.LeaderEpoch,
			Replicas:  slices.Clone(p.Replicas),
			ISR:       slices.Sorted(slices.Values(p.ISR)),
		}
	}
	return out, nil
}

// sortedStates renders states in partition order.
func sortedStates(states map[int32]partitionState) string {
	parts := slices.Sorted(func(yield func(int32) bool) {
		for p := range states {
			if !yield(p) {
				return
			}
		}
	})
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = states[p].String()
	}
	return strings.Join(s, " ")
}

// waitPartitions polls Metadata until topic has n partitions, each with a
// leader and each satisfying cond, and returns their states. It fails the
// test after timeout with the last reason and state.
func waitPartitions(t testing.TB, c *Cluster, topic string, n int, timeout time.Duration, cond func(partitionState) error) map[int32]partitionState {
	t.Helper()
	var states map[int32]partitionState
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := pollUntil(ctx, nil, func(ctx context.Context) error {
		// One slow answer must not use up the whole wait.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		if states, err = partitionStates(actx, c, topic); err != nil {
			return err
		}
		if len(states) != n {
			return fmt.Errorf("%d partitions, want %d", len(states), n)
		}
		for _, p := range states {
			if p.Leader < 0 {
				return fmt.Errorf("%s has no leader", tp{topic, p.Partition})
			}
			if err := cond(p); err != nil {
				return fmt.Errorf("%s: %w", tp{topic, p.Partition}, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: partitions not as wanted within %v: %v; last state: %s", topic, timeout, err, sortedStates(states))
	}
	return states
}

// waitISR waits until every partition of topic has an ISR of size replicas.
func waitISR(t testing.TB, c *Cluster, topic string, n, size int, timeout time.Duration) map[int32]partitionState {
	t.Helper()
	return waitPartitions(t, c, topic, n, timeout, func(p partitionState) error {
		if len(p.ISR) != size {
			return fmt.Errorf("ISR %v, want %d replicas", p.ISR, size)
		}
		return nil
	})
}

// epochChanges sums, over partitions, how much the leader epoch grew from
// before to after: the number of leader elections in between.
func epochChanges(before, after map[int32]partitionState) int {
	n := 0
	for p, a := range after {
		n += int(a.Epoch - before[p].Epoch)
	}
	return n
}

// nodeProber asks nodes directly which of them leads a partition: a node
// answers ListOffsets only for partitions it leads (Kafka answers
// NOT_LEADER_OR_FOLLOWER from a follower), so exactly one live node answers
// without error.
type nodeProber struct {
	nodes []*Process
	cls   []*kgo.Client // one per node, seeded with that node only
}

func newNodeProber(t testing.TB, c *Cluster) *nodeProber {
	t.Helper()
	np := &nodeProber{nodes: c.Nodes}
	for _, n := range c.Nodes {
		np.cls = append(np.cls, n.Client(t, kgo.DialTimeout(time.Second)))
	}
	return np
}

// leaderOf returns the id of the node that leads topic's partition (node
// ids are 1-based positions in Cluster.Nodes).
func (np *nodeProber) leaderOf(ctx context.Context, topic string, partition int32) (int32, error) {
	var leaders []int32
	var answers []string
	for i, n := range np.nodes {
		if !n.Running() {
			continue
		}
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.Timestamp = partition, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := req.RequestWith(rctx, np.cls[i].SeedBrokers()[0])
		cancel()
		code := int16(-1)
		if err == nil && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
			code = resp.Topics[0].Partitions[0].ErrorCode
		}
		answers = append(answers, fmt.Sprintf("%s: code %d err %v", n.Name(), code, err))
		if code == 0 {
			leaders = append(leaders, int32(i+1))
		}
	}
	if len(leaders) != 1 {
		return -1, fmt.Errorf("%s: %d nodes answer as leader %v (%s)", tp{topic, partition}, len(leaders), leaders, strings.Join(answers, "; "))
	}
	return leaders[0], nil
}

// mustLeaderOf polls leaderOf until one node answers, failing the test
// after timeout.
func (np *nodeProber) mustLeaderOf(t testing.TB, topic string, partition int32, timeout time.Duration) int32 {
	t.Helper()
	var id int32
	Eventually(t, timeout, func(ctx context.Context) error {
		var err error
		id, err = np.leaderOf(ctx, topic, partition)
		return err
	})
	return id
}

// pipelinedProducer produces unique keyed values ("k<i%keys>", "v%08d" of
// i) to one topic without waiting for each acknowledgement (up to
// maxInflight records outstanding), so retries after a failover overlap
// with new batches, as they do in applications. It records every
// acknowledged record, in the order the acknowledgements arrive.
type pipelinedProducer struct {
	cl       *kgo.Client
	topic    string
	keys     int
	inflight chan struct{}
	stop     chan struct{}
	done     chan struct{}

	mu     sync.Mutex
	next   int
	acked  []*kgo.Record
	failed int
	first  error
}

const (
	pipelinedPerTick = 10 // records per 10ms: about 1,000 a second
	maxInflight      = 500
)

func startPipelinedProducer(t testing.TB, cl *kgo.Client, topic string, keys int) *pipelinedProducer {
	p := &pipelinedProducer{
		cl: cl, topic: topic, keys: keys,
		inflight: make(chan struct{}, maxInflight),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go p.run()
	t.Cleanup(p.halt)
	return p
}

func (p *pipelinedProducer) run() {
	defer close(p.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		for range pipelinedPerTick {
			select {
			case <-p.stop:
				return
			case p.inflight <- struct{}{}:
			}
			p.mu.Lock()
			i := p.next
			p.next++
			p.mu.Unlock()
			r := &kgo.Record{
				Topic: p.topic,
				Key:   fmt.Appendf(nil, "k%d", i%p.keys),
				Value: fmt.Appendf(nil, "v%08d", i),
			}
			// The records' own context never ends: RecordDeliveryTimeout
			// bounds each one.
			p.cl.Produce(context.Background(), r, p.ack)
		}
	}
}

func (p *pipelinedProducer) ack(r *kgo.Record, err error) {
	<-p.inflight
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failed++
		if p.first == nil {
			p.first = fmt.Errorf("record %q at %s: %w", r.Value, time.Now().Format("15:04:05.000"), err)
		}
		return
	}
	p.acked = append(p.acked, r)
}

// halt stops producing new records; it may be called more than once.
func (p *pipelinedProducer) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// finish stops producing and waits up to timeout for every outstanding
// record to be acknowledged or to fail. It returns the records produced.
func (p *pipelinedProducer) finish(t testing.TB, timeout time.Duration) int {
	t.Helper()
	p.halt()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.cl.Flush(ctx); err != nil {
		t.Errorf("producer: outstanding records not acknowledged within %v of stopping: %v", timeout, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

// Acked returns the records acknowledged so far, in acknowledgement order.
func (p *pipelinedProducer) Acked() []*kgo.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked)
}

// Failed returns how many records failed and the first failure.
func (p *pipelinedProducer) Failed() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed, p.first
}

func (p *pipelinedProducer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// waitAcked waits until at least n records are acknowledged in total.
func (p *pipelinedProducer) waitAcked(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func(context.Context) error {
		if got := p.count(); got < n {
			failed, first := p.Failed()
			return fmt.Errorf("%d records acknowledged, want %d (%d failed; first: %v)", got, n, failed, first)
		}
		return nil
	})
}

// readTopicThrough reads every partition of topic from offset 0 up to its
// high watermark in hws, through proc (a proxy), with a fresh client per
// partition that never resets its offset.
func readTopicThrough(t testing.TB, proc *Process, topic string, hws map[int32]int64, timeout time.Duration) map[int32][]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := make(map[int32][]*kgo.Record, len(hws))
	for p, hw := range hws {
		if hw == 0 {
			continue
		}
		recs, err := readPartition(ctx, proc, topic, p, kgo.NewOffset().At(0), kgo.NoResetOffset(), hw)
		if err != nil {
			t.Fatalf("read %s up to its high watermark %d: %v", tp{topic, p}, hw, err)
		}
		out[p] = recs
	}
	return out
}

// checkAckedWrites is a Jepsen-style checker (as in Jepsen's Kafka analysis) over what
// was read back from each partition, from offset 0 to the high watermark,
// against what the producer had acknowledged:
//
//   - inconsistent-offsets: offsets are dense from 0 (invariant 2);
//   - duplicate: no value appears twice, acknowledged or not (the idempotent
//     producer's retries are written once: invariant 3);
//   - lost-write: every acknowledged record is read at the partition and
//     offset its acknowledgement gave, with the same key and value
//     (invariant 1);
//   - nonmonotonic-send: within a partition, acknowledgements came in
//     offset order;
//   - order: for each key, values are read in the order they were produced
//     (Kafka's per-partition order, kept across retries by idempotence).
//
// It reports every kind of violation (up to a few examples each) before
// failing the test.
func checkAckedWrites(t testing.TB, acked []*kgo.Record, got map[int32][]*kgo.Record) {
	t.Helper()
	const examples = 5
	var problems []string
	report := func(kind string, n *int, format string, args ...any) {
		*n++
		if *n <= examples {
			problems = append(problems, kind+": "+fmt.Sprintf(format, args...))
		}
	}
	var gaps, dups, lost, sends, order int

	where := make(map[string]string) // value → "p/offset"
	total := 0
	for p, recs := range got {
		last := make(map[string]int) // key → last value number read
		for i, r := range recs {
			total++
			if r.Offset != int64(i) {
				report("inconsistent-offsets", &gaps, "partition %d: record %d of the log has offset %d", p, i, r.Offset)
			}
			at := fmt.Sprintf("%d/%d", p, r.Offset)
			if prev, ok := where[string(r.Value)]; ok {
				report("duplicate", &dups, "value %q at %s and %s", r.Value, prev, at)
			}
			where[string(r.Value)] = at
			var v int
			if _, err := fmt.Sscanf(string(r.Value), "v%08d", &v); err != nil {
				continue // not a numbered value: no order to check
			}
			if prev, ok := last[string(r.Key)]; ok && v <= prev {
				report("order", &order, "key %q: value %d at %s after value %d", r.Key, v, at, prev)
			}
			last[string(r.Key)] = v
		}
	}
	lastAcked := make(map[int32]int64)
	for _, a := range acked {
		recs := got[a.Partition]
		switch {
		case a.Offset < 0 || a.Offset >= int64(len(recs)):
			report("lost-write", &lost, "value %q acknowledged at %d/%d, which is not below the high watermark %d", a.Value, a.Partition, a.Offset, len(recs))
		case !bytes.Equal(recs[a.Offset].Value, a.Value) || !bytes.Equal(recs[a.Offset].Key, a.Key):
			r := recs[a.Offset]
			report("lost-write", &lost, "value %q acknowledged at %d/%d, which holds key %q value %q", a.Value, a.Partition, a.Offset, r.Key, r.Value)
		}
		if prev, ok := lastAcked[a.Partition]; ok && a.Offset <= prev {
			report("nonmonotonic-send", &sends, "partition %d: offset %d acknowledged after offset %d", a.Partition, a.Offset, prev)
		}
		lastAcked[a.Partition] = a.Offset
	}
	t.Logf("read %d records; %d acknowledged; %d written but not acknowledged", total, len(acked), total-len(acked))
	if len(problems) > 0 {
		t.Fatalf("%d inconsistent offsets, %d duplicates, %d lost writes, %d nonmonotonic sends, %d out of order; examples:\n  %s",
			gaps, dups, lost, sends, order, strings.Join(problems, "\n  "))
	}
}

// diskBatch is one record batch (Kafka's v2 format) read from a segment
// file.
type diskBatch struct {
	base, last int64 // first and last offset
	epoch      int32 // partitionLeaderEpoch
	raw        []byte
	file       string
}

// v2 batch header positions (Kafka's DefaultRecordBatch).
const (
	batchLengthAt     = 8  // int32, counts the bytes after it
	batchEpochAt      = 12 // int32 partitionLeaderEpoch
	batchLastDeltaAt  = 23 // int32 lastOffsetDelta
	batchHeaderLength = 61
	batchLogOverhead  = 12 // baseOffset + batchLength
)

// readLogBatches returns, in offset order, the record batches of the
// partition directory dir whose base offset is below hw, reading every
// *.log segment in name (= base offset) order. A batch that runs past the
// end of its file is an error: the process was stopped cleanly, so no write
// may be torn.
func readLogBatches(dir string, hw int64) ([]diskBatch, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []diskBatch
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		for pos := 0; pos < len(b); {
			if len(b)-pos < batchHeaderLength {
				return nil, fmt.Errorf("%s: %d stray bytes at position %d", name, len(b)-pos, pos)
			}
			base := int64(binary.BigEndian.Uint64(b[pos:]))
			size := batchLogOverhead + int(int32(binary.BigEndian.Uint32(b[pos+batchLengthAt:])))
			if size < batchHeaderLength || pos+size > len(b) {
				return nil, fmt.Errorf("%s: batch at position %d (base offset %d) has length %d; file has %d bytes", name, pos, base, size, len(b))
			}
			if base >= hw {
				return out, nil
			}
			out = append(out, diskBatch{
				base:  base,
				last:  base + int64(int32(binary.BigEndian.Uint32(b[pos+batchLastDeltaAt:]))),
				epoch: int32(binary.BigEndian.Uint32(b[pos+batchEpochAt:])),
				raw:   b[pos : pos+size],
				file:  name,
			})
			pos += size
		}
	}
	return out, nil
}

// checkLogCovers checks that batches hold offsets 0 to hw-1 without gap or
// overlap (invariant 2, on disk).
func checkLogCovers(batches []diskBatch, hw int64) error {
	next := int64(0)
	for _, b := range batches {
		if b.base != next {
			return fmt.Errorf("batch at base offset %d (in %s) follows offset %d", b.base, b.file, next-1)
		}
		next = b.last + 1
	}
	if next < hw {
		return fmt.Errorf("batches end at offset %d, below the high watermark %d", next, hw)
	}
	return nil
}

// checkReplicaLogsIdentical compares, for each partition of topic, the
// batches below its high watermark in every node's segment files: they
// must be the same bytes at the same offsets (a follower stores the
// leader's batches byte for byte, leader epoch stamp included; invariant
// 2: every reader sees the same record at the same offset). The nodes must
// be stopped.
func checkReplicaLogsIdentical(t testing.TB, nodes []*Process, topic string, hws map[int32]int64) {
	t.Helper()
	for p, hw := range hws {
		var ref []diskBatch
		var refNode string
		for _, n := range nodes {
			dir := filepath.Join(n.DataDir(), fmt.Sprintf("%s-%d", topic, p))
			batches, err := readLogBatches(dir, hw)
			if err == nil {
				err = checkLogCovers(batches, hw)
			}
			if err != nil {
				t.Errorf("%s on %s: %v", tp{topic, p}, n.Name(), err)
				continue
			}
			if ref == nil {
				ref, refNode = batches, n.Name()
				continue
			}
			if err := sameBatches(ref, batches); err != nil {
				t.Errorf("%s below high watermark %d: %s and %s differ: %v", tp{topic, p}, hw, refNode, n.Name(), err)
			}
		}
		if ref != nil {
			t.Logf("%s: %d batches below high watermark %d identical on every replica", tp{topic, p}, len(ref), hw)
		}
	}
}

func sameBatches(a, b []diskBatch) error {
	for i := range min(len(a), len(b)) {
		x, y := a[i], b[i]
		if x.base != y.base || !bytes.Equal(x.raw, y.raw) {
			return fmt.Errorf("batch %d: base offset %d epoch %d (%d bytes) vs base offset %d epoch %d (%d bytes)",
				i, x.base, x.epoch, len(x.raw), y.base, y.epoch, len(y.raw))
		}
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d batches vs %d", len(a), len(b))
	}
	return nil
}

// oneRecordBatch encodes value as a v2 record batch of one record, without
// a producer id, with its CRC-32C, as a non-idempotent producer sends it.
func oneRecordBatch(value []byte) []byte {
	rec := kmsg.Record{Key: nil, Value: value, OffsetDelta: 0}
	body := rec.AppendTo(nil) // Length 0 encodes as one varint byte
	rec.Length = int32(len(body) - 1)
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		Magic:          2,
		FirstTimestamp: now,
		MaxTimestamp:   now,
		ProducerID:     -1,
		ProducerEpoch:  -1,
		FirstSequence:  -1,
		NumRecords:     1,
		Records:        rec.AppendTo(nil),
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[batchLengthAt:], uint32(len(raw)-batchLogOverhead))
	const crcAt, attributesAt = 17, 21
	binary.BigEndian.PutUint32(raw[crcAt:], crc32.Checksum(raw[attributesAt:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// produceRaw sends one Produce request with one record to cl's seed broker
// and returns the partition's error code and base offset, so a test sees
// the broker's own answer rather than the client's retry outcome. kgo
// sends the acks cl is configured with (kgo.RequiredAcks), and cl must cap
// Produce at v12 (produceByName): v13 names topics by id.
func produceRaw(ctx context.Context, cl *kgo.Client, topic string, partition int32, value []byte, timeout time.Duration) (int16, int64, error) {
	// Produce v13 names topics by id (KIP-516), and the client picks the newest version.
	meta, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return -1, -1, err
	}
	req := kmsg.NewPtrProduceRequest()
	req.TimeoutMillis = int32(timeout.Milliseconds())
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, meta.Topics[topic].ID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, oneRecordBatch(value)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return -1, -1, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return -1, -1, fmt.Errorf("produce: answer has %d topics", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset, nil
}

// produceByName caps Produce at v12, the last version that names topics,
// for clients that send produceRaw.
func produceByName() kgo.Opt {
	v := kversion.Stable()
	v.SetMaxKeyVersion(0, 12)
	return kgo.MaxVersions(v)
}
