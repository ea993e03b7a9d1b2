package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Tests of replication (docs/architecture.md "The request path", "Control"): topics
// with replication factor 3 on three `strait node` processes, real SIGKILL
// crashes and restarts, and Kafka's rules for the ISR, the high watermark,
// acks=all, leader election and leader epochs.

// TestReplicationSurvivesNodeKills runs a pipelined idempotent acks=all
// producer while the test kills nodes one at a time with SIGKILL and
// restarts them: in some rounds the leader of a partition is killed and the
// test waits for the controller to elect a new one from the ISR (its leader
// epoch bumps) before restarting it; in others the node comes back after 3s,
// before its lease expires. After each round every ISR must be whole again
// (the restarted node truncated its divergent tail to the leader's epoch
// boundary and caught up: KIP-101/KIP-279). At the end preferred leaders
// are back (Kafka's auto.leader.rebalance.enable), and:
//
//   - read through the proxy, every partition from 0 to its high watermark
//     passes the Jepsen checkers of checkAckedWrites: no lost acknowledged
//     write (invariant 1: one failure at a time with RF 3 and
//     min.insync.replicas 2), no duplicate (invariant 3), dense offsets and
//     produce order (invariant 2);
//   - on disk, with the nodes stopped, the three replicas of each partition
//     hold the same batches, byte for byte, below the high watermark
//     (invariant 2: every reader sees the same record at the same offset).
//
// With one node down the ISR keeps two replicas, so no acks=all write may
// fail (a liveness check, reported separately).
func TestReplicationSurvivesNodeKills(t *testing.T) {
	const (
		topic      = "replication-kills"
		partitions = 3
		keys       = 60
		rounds     = 4
		bounce     = 3 * time.Second // how long a node stays down in a quick round
	)
	c := startReplicatedCluster(t)
	adm := c.Admin(t, 0)
	createReplicatedTopic(t, adm, topic, partitions, 3, 2)
	initial := waitISR(t, c, topic, partitions, 3, replicationTimeout)
	for _, p := range initial {
		if !slices.Equal(slices.Sorted(slices.Values(p.Replicas)), []int32{1, 2, 3}) {
			t.Fatalf("%s: replicas %v, want every node [1 2 3] (RF 3)", tp{topic, p.Partition}, p.Replicas)
		}
	}
	t.Logf("initial: %s", sortedStates(initial))
	prober := newNodeProber(t, c)

	producer := startPipelinedProducer(t, c.Client(t, 0,
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent by default
		kgo.RecordDeliveryTimeout(90*time.Second),
		kgo.MetadataMinAge(250*time.Millisecond),
	), topic, keys)
	producer.waitAcked(t, 500, clusterTimeout)

	for round := range rounds {
		failover := round%2 == 0
		part := int32(round % partitions)
		victim := prober.mustLeaderOf(t, topic, part, replicationTimeout)
		var led []int32 // partitions the victim leads
		for p := range int32(partitions) {
			if id, err := prober.leaderOf(context.Background(), topic, p); err == nil && id == victim {
				led = append(led, p)
			}
		}
		before := waitISR(t, c, topic, partitions, 3, replicationTimeout)
		node := c.Nodes[victim-1]
		acked := producer.count()
		node.Kill()
		killed := time.Now()
		if failover {
			// The controller removes the node from the ISRs once its lease
			// expires and elects new leaders from the ISR, bumping their
			// leader epochs.
			after := waitPartitions(t, c, topic, partitions, leaseTTL+replicationTimeout, func(p partitionState) error {
				if slices.Contains(p.ISR, victim) {
					return fmt.Errorf("ISR %v still holds killed node %d", p.ISR, victim)
				}
				if slices.Contains(led, p.Partition) && p.Epoch <= before[p.Partition].Epoch {
					return fmt.Errorf("leader epoch still %d after its leader, node %d, was killed", p.Epoch, victim)
				}
				return nil
			})
			t.Logf("round %d: killed node %d (leader of %v); %v later: %s",
				round, victim, led, time.Since(killed).Round(time.Millisecond), sortedStates(after))
			// acks=all goes on with two replicas in every ISR.
			producer.waitAcked(t, producer.count()+200, replicationTimeout)
		} else {
			time.Sleep(bounce) // the producer keeps writing meanwhile
			t.Logf("round %d: killed node %d (leader of %v); restarting it after %v", round, victim, led, bounce)
		}
		node.Restart(t)
		restarted := time.Now()
		back := waitISR(t, c, topic, partitions, 3, replicationTimeout)
		t.Logf("round %d: node %d back in every ISR %v after its restart; %d records acknowledged during the round: %s",
			round, victim, time.Since(restarted).Round(time.Millisecond), producer.count()-acked, sortedStates(back))
	}
	producer.waitAcked(t, producer.count()+200, replicationTimeout)
	produced := producer.finish(t, time.Minute)
	acked := producer.Acked()
	if failed, first := producer.Failed(); failed > 0 {
		// Liveness, not safety: report it and check what was written.
		t.Errorf("%d of %d records failed although at most one replica was down at a time; first: %v", failed, produced, first)
	}

	final := waitISR(t, c, topic, partitions, 3, replicationTimeout)
	if err := waitPreferredLeaders(prober, topic, final, 20*time.Second); err != nil {
		t.Errorf("preferred leaders not restored within 20s (--leader-imbalance-check-interval 2s): %v", err)
	}
	final = waitISR(t, c, topic, partitions, 3, replicationTimeout)
	t.Logf("final: %s; %d leader elections in all (leader epoch increments)", sortedStates(final), epochChanges(initial, final))

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	hws, err := endOffsets(ctx, adm, topic)
	cancel()
	if err != nil {
		t.Fatalf("high watermarks: %v", err)
	}
	t.Logf("produced %d records, %d acknowledged; high watermarks %v", produced, len(acked), sortedOffsets(hws))
	got := readTopicThrough(t, c.Proxies[0], topic, hws, time.Minute)
	checkAckedWrites(t, acked, got)

	// Quiesce the files: SIGTERM every node (exit code 0 expected).
	for _, n := range c.Nodes {
		n.Stop()
	}
	checkReplicaLogsIdentical(t, c.Nodes, topic, hws)
}

// waitPreferredLeaders polls until every partition in states is led by its
// preferred replica, the first of its assignment (Kafka's
// auto.leader.rebalance.enable), asking the nodes themselves who leads.
func waitPreferredLeaders(prober *nodeProber, topic string, states map[int32]partitionState, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return pollUntil(ctx, nil, func(ctx context.Context) error {
		for p, s := range states {
			id, err := prober.leaderOf(ctx, topic, p)
			if err != nil {
				return err
			}
			if len(s.Replicas) == 0 {
				return fmt.Errorf("%s has no replicas", tp{topic, p})
			}
			if id != s.Replicas[0] {
				return fmt.Errorf("%s is led by node %d; replicas %v prefer node %d", tp{topic, p}, id, s.Replicas, s.Replicas[0])
			}
		}
		return nil
	})
}

// TestNotEnoughReplicasWhenTwoOfThreeDown kills two of three nodes. Once
// the ISR of every partition has shrunk to the survivor, an acks=all
// produce fails with NOT_ENOUGH_REPLICAS and appends nothing, while acks=1
// succeeds; once both nodes are back, every ISR grows back to three within
// 20s and acks=all works again. Nothing acknowledged — not even the acks=1
// writes taken by a lone leader — is lost.
//
// Checks: Kafka's min.insync.replicas (Kafka 0.9, before KIPs: the leader
// refuses with NOT_ENOUGH_REPLICAS before appending); the lesson of
// Jepsen's Kafka 0.8 analysis: a leader alone in its
// ISR must not acknowledge acks=all writes; ISR expansion once a follower
// has caught up (replica.lag.time.max.ms); invariant 1.
func TestNotEnoughReplicasWhenTwoOfThreeDown(t *testing.T) {
	const (
		topic      = "replication-not-enough"
		partitions = 3
	)
	c := startReplicatedCluster(t)
	adm := c.Admin(t, 0)
	createReplicatedTopic(t, adm, topic, partitions, 3, 2)
	waitISR(t, c, topic, partitions, 3, replicationTimeout)

	manual := kgo.RecordPartitioner(kgo.ManualPartitioner())
	allAcks := c.Client(t, 0, manual, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(clusterTimeout))
	var acked []*kgo.Record
	produceEach := func(cl *kgo.Client, label string) {
		t.Helper()
		recs := make([]*kgo.Record, partitions)
		for p := range recs {
			recs[p] = &kgo.Record{Topic: topic, Partition: int32(p), Key: []byte(label), Value: fmt.Appendf(nil, "%s-%d", label, p)}
		}
		produceAll(t, cl, recs, clusterTimeout)
		acked = append(acked, recs...)
	}
	produceEach(allAcks, "before")

	survivor, down := int32(1), []*Process{c.Nodes[1], c.Nodes[2]}
	for _, n := range down {
		n.Kill()
	}
	killed := time.Now()
	shrunk := waitPartitions(t, c, topic, partitions, leaseTTL+replicationTimeout, func(p partitionState) error {
		if !slices.Equal(p.ISR, []int32{survivor}) {
			return fmt.Errorf("ISR %v, want [%d] (the only live node)", p.ISR, survivor)
		}
		return nil
	})
	t.Logf("ISR of every partition is [%d] %v after two nodes were killed: %s",
		survivor, time.Since(killed).Round(time.Millisecond), sortedStates(shrunk))

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	ends, err := endOffsets(ctx, adm, topic)
	cancel()
	if err != nil {
		t.Fatalf("end offsets: %v", err)
	}
	strict := c.Client(t, 0, manual, produceByName(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(1), // NOT_ENOUGH_REPLICAS is retriable: let it surface
		kgo.RecordDeliveryTimeout(20*time.Second),
	)
	for p := range int32(partitions) {
		ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
		err := strict.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "rejected-%d", p)}).FirstErr()
		cancel()
		if !errors.Is(err, kerr.NotEnoughReplicas) {
			t.Errorf("acks=all produce (kgo, RecordRetries(1)) to %s with ISR [%d] and min.insync.replicas 2: got %v, want NOT_ENOUGH_REPLICAS", tp{topic, p}, survivor, err)
		}
		// The broker's own answer, without the client's retries.
		ctx, cancel = context.WithTimeout(context.Background(), clusterTimeout)
		code, _, err := produceRaw(ctx, strict, topic, p, fmt.Appendf(nil, "rejected-raw-%d", p), 5*time.Second)
		cancel()
		if err != nil || code != kerr.NotEnoughReplicas.Code {
			t.Errorf("acks=all Produce to %s with ISR [%d] and min.insync.replicas 2: error code %d (%v), err %v; want %d (NOT_ENOUGH_REPLICAS)",
				tp{topic, p}, survivor, code, kerr.ErrorForCode(code), err, kerr.NotEnoughReplicas.Code)
		}
	}
	// Kafka checks min.insync.replicas before appending: nothing was written.
	checkEndOffsets(t, adm, topic, ends, clusterTimeout)

	leaderOnly := c.Client(t, 0, manual, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	produceEach(leaderOnly, "acks1")
	for _, r := range acked[len(acked)-partitions:] {
		if r.Offset != ends[r.Partition] {
			t.Errorf("acks=1 record %q written at offset %d, want %d (the log end)", r.Value, r.Offset, ends[r.Partition])
		}
	}

	for _, n := range down {
		n.Restart(t)
	}
	restarted := time.Now()
	grown := waitISR(t, c, topic, partitions, 3, 20*time.Second)
	t.Logf("every ISR back to 3 replicas %v after the restarts: %s", time.Since(restarted).Round(time.Millisecond), sortedStates(grown))
	produceEach(allAcks, "after")

	ctx, cancel = context.WithTimeout(context.Background(), clusterTimeout)
	hws, err := endOffsets(ctx, adm, topic)
	cancel()
	if err != nil {
		t.Fatalf("high watermarks: %v", err)
	}
	got := readTopicThrough(t, c.Proxies[0], topic, hws, clusterTimeout)
	for p, recs := range got {
		for _, r := range recs {
			if strings.HasPrefix(string(r.Value), "rejected") {
				t.Errorf("%s offset %d holds %q, a write refused with NOT_ENOUGH_REPLICAS", tp{topic, p}, r.Offset, r.Value)
			}
		}
	}
	checkAckedWrites(t, acked, got)
}

// TestLeaderEpochFencing kills the leader of a one-partition RF 3 topic and
// waits for the new leader's epoch. Then, through the proxy (KIP-320):
// a Fetch v12 with the old CurrentLeaderEpoch gets FENCED_LEADER_EPOCH, one
// with a future epoch UNKNOWN_LEADER_EPOCH, one with the current epoch reads
// everything acknowledged before the crash; ListOffsets reports the new
// epoch and fences the old one; OffsetForLeaderEpoch says the old epoch ends
// where the new one starts, at the old leader's last acknowledged offset
// (KIP-101/KIP-279: the point a diverged replica truncates to).
func TestLeaderEpochFencing(t *testing.T) {
	const (
		topic = "replication-epochs"
		n     = 100
	)
	c := startReplicatedCluster(t)
	adm := c.Admin(t, 0)
	createReplicatedTopic(t, adm, topic, 1, 3, 2)
	waitISR(t, c, topic, 1, 3, replicationTimeout)

	producer := c.Client(t, 0, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: 0, Value: fmt.Appendf(nil, "v%08d", i)}
	}
	produceAll(t, producer, recs, clusterTimeout)

	prober := newNodeProber(t, c)
	victim := prober.mustLeaderOf(t, topic, 0, replicationTimeout)
	before := waitISR(t, c, topic, 1, 3, replicationTimeout)[0]
	c.Nodes[victim-1].Kill()
	killed := time.Now()
	after := waitPartitions(t, c, topic, 1, leaseTTL+replicationTimeout, func(p partitionState) error {
		if p.Epoch <= before.Epoch || slices.Contains(p.ISR, victim) {
			return fmt.Errorf("%v, want a leader epoch above %d and killed node %d out of the ISR", p, before.Epoch, victim)
		}
		return nil
	})[0]
	old, cur := before.Epoch, after.Epoch
	t.Logf("killed leader node %d; %v later Metadata says %v (was %v)", victim, time.Since(killed).Round(time.Millisecond), after, before)

	// Pin Fetch to v12, the last version that names topics (v13 uses ids).
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(1, 12)
	raw := c.Client(t, 0, kgo.MaxVersions(versions))

	expectCode := func(what string, want int16, do func(context.Context) (int16, error)) {
		t.Helper()
		var got int16
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := pollUntil(ctx, nil, func(ctx context.Context) error {
			var err error
			if got, err = do(ctx); err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("error code %d (%v)", got, kerr.ErrorForCode(got))
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: want error code %d (%v), got: %v", what, want, kerr.ErrorForCode(want), err)
		}
	}
	var fetched fetchResult
	expectCode(fmt.Sprintf("Fetch v12 with the current leader epoch %d", cur), 0, func(ctx context.Context) (int16, error) {
		var err error
		fetched, err = fetchV12(ctx, raw, topic, 0, cur)
		if err == nil && fetched.code == 0 && fetched.hw != n {
			// The new leader's high watermark reaches the old one once
			// the other follower has fetched under the new epoch.
			err = fmt.Errorf("high watermark %d, want %d", fetched.hw, n)
		}
		return fetched.code, err
	})
	if fetched.code == 0 && (fetched.version != 12 || fetched.bytes == 0) {
		t.Errorf("Fetch with the current epoch: version %d, %d record bytes; want v12 and records", fetched.version, fetched.bytes)
	}
	expectCode(fmt.Sprintf("Fetch v12 with the old leader epoch %d", old), kerr.FencedLeaderEpoch.Code, func(ctx context.Context) (int16, error) {
		r, err := fetchV12(ctx, raw, topic, 0, old)
		return r.code, err
	})
	expectCode(fmt.Sprintf("Fetch v12 with the future leader epoch %d", cur+1), kerr.UnknownLeaderEpoch.Code, func(ctx context.Context) (int16, error) {
		r, err := fetchV12(ctx, raw, topic, 0, cur+1)
		return r.code, err
	})

	// ListOffsets (v4+ carries CurrentLeaderEpoch and answers the epoch).
	var listed kmsg.ListOffsetsResponseTopicPartition
	expectCode("ListOffsets latest without an epoch", 0, func(ctx context.Context) (int16, error) {
		var err error
		listed, err = listLatest(ctx, raw, topic, 0, -1)
		if err == nil && listed.ErrorCode == 0 && listed.Offset != n {
			err = fmt.Errorf("latest offset %d, want %d", listed.Offset, n)
		}
		return listed.ErrorCode, err
	})
	if listed.ErrorCode == 0 && (listed.LeaderEpoch != cur || listed.Offset != n) {
		t.Errorf("ListOffsets latest: offset %d, leader epoch %d; want %d and the new epoch %d", listed.Offset, listed.LeaderEpoch, n, cur)
	}
	expectCode(fmt.Sprintf("ListOffsets with the old leader epoch %d", old), kerr.FencedLeaderEpoch.Code, func(ctx context.Context) (int16, error) {
		r, err := listLatest(ctx, raw, topic, 0, old)
		return r.ErrorCode, err
	})

	// OffsetForLeaderEpoch: where the old epoch ends (KIP-101/KIP-279).
	var ended kmsg.OffsetForLeaderEpochResponseTopicPartition
	expectCode(fmt.Sprintf("OffsetForLeaderEpoch for epoch %d", old), 0, func(ctx context.Context) (int16, error) {
		var err error
		ended, err = epochEnd(ctx, raw, topic, 0, cur, old)
		return ended.ErrorCode, err
	})
	if ended.ErrorCode == 0 && (ended.EndOffset != n || ended.LeaderEpoch > old) {
		t.Errorf("OffsetForLeaderEpoch for epoch %d: epoch %d ends at %d; want an epoch up to %d ending at %d (the new leader's first offset)",
			old, ended.LeaderEpoch, ended.EndOffset, old, n)
	}
}

// fetchResult is what fetchV12 read.
type fetchResult struct {
	version int16
	code    int16
	hw      int64
	bytes   int
}

// fetchV12 sends one Fetch (pinned to v12 by cl's MaxVersions) for
// partition from offset 0 with the given CurrentLeaderEpoch, outside any
// fetch session, to cl's seed broker.
func fetchV12(ctx context.Context, cl *kgo.Client, topic string, partition, epoch int32) (fetchResult, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 100
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionID, req.SessionEpoch = 0, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.FetchOffset = partition, epoch, 0
	rp.LastFetchedEpoch, rp.LogStartOffset, rp.PartitionMaxBytes = -1, -1, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return fetchResult{}, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fetchResult{}, fmt.Errorf("fetch: top-level error %w", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fetchResult{}, fmt.Errorf("fetch: answer has %d topics", len(resp.Topics))
	}
	fp := resp.Topics[0].Partitions[0]
	return fetchResult{version: resp.Version, code: fp.ErrorCode, hw: fp.HighWatermark, bytes: len(fp.RecordBatches)}, nil
}

// listLatest sends one ListOffsets (latest) with the given
// CurrentLeaderEpoch to cl's seed broker.
func listLatest(ctx context.Context, cl *kgo.Client, topic string, partition, epoch int32) (kmsg.ListOffsetsResponseTopicPartition, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.Timestamp = partition, epoch, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return kmsg.ListOffsetsResponseTopicPartition{}, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return kmsg.ListOffsetsResponseTopicPartition{}, fmt.Errorf("list offsets: answer has %d topics", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0], nil
}

// epochEnd sends one OffsetForLeaderEpoch as a consumer (ReplicaID -1) to
// cl's seed broker: where does leaderEpoch end, asked under current.
func epochEnd(ctx context.Context, cl *kgo.Client, topic string, partition, current, leaderEpoch int32) (kmsg.OffsetForLeaderEpochResponseTopicPartition, error) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = partition, current, leaderEpoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return kmsg.OffsetForLeaderEpochResponseTopicPartition{}, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return kmsg.OffsetForLeaderEpochResponseTopicPartition{}, fmt.Errorf("offset for leader epoch: answer has %d topics", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0], nil
}
