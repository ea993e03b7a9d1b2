package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Tests of Strait as it is deployed: redis-server, `strait node` and
// `strait proxy` as separate processes (docs/architecture.md, "Process shapes" and
// "Control").

// TestClusterProduceOneProxyConsumeOther creates a topic through one proxy,
// sees it through another within a second (the metadata change is published
// to every cache at once), produces through the first and consumes
// everything through the second.
//
// Checks: docs/architecture.md "Control" (every change is published so caches refresh at
// once); invariant 2 (dense offsets, every reader sees the same record at the
// same offset); Kafka's per-partition order under the idempotent producer;
// Kafka's round-robin placement puts partitions on every live broker.
func TestClusterProduceOneProxyConsumeOther(t *testing.T) {
	const (
		topic      = "cluster-two-proxies"
		partitions = 6
		n          = 20_000
		keys       = 500
	)
	c := StartCluster(t, ClusterNodes(3), Proxies(2))
	// franz-go answers metadata requests from its cache for MetadataMinAge; keep it
	// short so the poll below sees what proxy 1 says, not what it said a moment ago.
	adm0, adm1 := c.Admin(t, 0), c.Admin(t, 1, kgo.MetadataMinAge(10*time.Millisecond))
	// Connect to proxy 1 before the topic exists, so the 1s below measures
	// propagation and not the client's first connection.
	if _, err := describeTopic(context.Background(), adm1, topic); err == nil {
		t.Fatalf("topic %s exists before it was created", topic)
	}

	createTopic(t, adm0, topic, partitions, clusterTimeout)
	created := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := pollUntil(ctx, nil, func(ctx context.Context) error {
		d, err := describeTopic(ctx, adm1, topic)
		if err == nil && len(d.Partitions) != partitions {
			err = fmt.Errorf("%d partitions, want %d", len(d.Partitions), partitions)
		}
		return err
	})
	cancel()
	if err != nil {
		t.Fatalf("topic created through proxy 0 not visible through proxy 1 within 1s: %v", err)
	}
	t.Logf("topic visible through proxy 1 %v after its creation through proxy 0", time.Since(created))

	waitTopicReady(t, adm1, topic, partitions, clusterTimeout)
	states := placement(t, c, topic)
	checkReplicasSpread(t, topic, states, []int32{1, 2, 3}, 1)
	t.Logf("placement: %v", partitionsByNode(states))

	producer := c.Client(t, 0,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default
	)
	recs := keyedRecords(n, keys)
	start := time.Now()
	produceAll(t, producer, recs, clusterTimeout)
	t.Logf("produced %d records through proxy 0 in %v", n, time.Since(start))

	consumer := c.Client(t, 1,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	start = time.Now()
	got := consumeAll(t, consumer, n, clusterTimeout)
	t.Logf("consumed %d records through proxy 1 in %v", len(got), time.Since(start))
	consumer.Close()

	counts := checkDenseOffsets(t, got)
	checkProducedOrder(t, got, n, keys)
	checkSameRecords(t, recs, got)
	checkEndOffsets(t, adm1, topic, perPartition(counts, topic), clusterTimeout)
}

// TestClusterNodeRestartKeepsPartitions kills a node with SIGKILL and
// restarts it on the same data directory and ports: it takes its
// partitions back, every record acknowledged before the crash is read
// again, and its partitions take writes again.
//
// Checks: docs/architecture.md "Nodes reconcile" (a restart re-runs the loop and
// reopens the local partitions); invariant 1 with RF 1 (no replica failed for
// good, so nothing acknowledged is lost); invariant 2.
func TestClusterNodeRestartKeepsPartitions(t *testing.T) {
	const (
		topic      = "cluster-node-restart"
		partitions = 6
		n          = 6_000
		keys       = 300
		victim     = 2 // node id
		more       = 600
	)
	c := StartCluster(t, ClusterNodes(3), Proxies(1))
	adm := c.Admin(t, 0)
	createTopic(t, adm, topic, partitions, clusterTimeout)
	waitTopicReady(t, adm, topic, partitions, clusterTimeout)
	byNode := partitionsByNode(placement(t, c, topic))
	owned := byNode[victim]
	if len(owned) == 0 {
		t.Fatalf("node %d holds no partition of %s: %v", victim, topic, byNode)
	}

	producer := c.Client(t, 0, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	recs := keyedRecords(n, keys)
	produceAll(t, producer, recs, clusterTimeout)
	producer.Close()

	node := c.Nodes[victim-1]
	node.Kill()
	restarted := time.Now()
	node.Restart(t)
	t.Logf("node %d ready %v after restart; it holds partitions %v", victim, time.Since(restarted), owned)
	waitTopicReady(t, adm, topic, partitions, clusterTimeout)

	consumer := c.Client(t, 0,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	got := consumeAll(t, consumer, n, clusterTimeout)
	consumer.Close()
	checkDenseOffsets(t, got)
	checkProducedOrder(t, got, n, keys)
	checkSameRecords(t, recs, got)

	// Writes to the restarted node's partitions go on from its log end.
	producer = c.Client(t, 0,
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	extra := make([]*kgo.Record, more)
	for i := range extra {
		extra[i] = &kgo.Record{
			Partition: owned[i%len(owned)],
			Key:       fmt.Appendf(nil, "after-%d", i),
			Value:     fmt.Appendf(nil, "after-%d", i),
		}
	}
	produceAll(t, producer, extra, clusterTimeout)
	end := endsOf(recs)
	for _, r := range extra {
		if r.Offset != end[r.Partition] {
			t.Fatalf("record %q written at %s offset %d, want %d (right after the log end)",
				r.Value, tp{topic, r.Partition}, r.Offset, end[r.Partition])
		}
		end[r.Partition]++
	}
	checkEndOffsets(t, adm, topic, end, clusterTimeout)
}

// TestClusterRedisOutage kills redis-server under a steady producer, checks
// that Strait degrades as it should (writes to existing partitions go on;
// /readyz says Redis is unreachable; topic creation fails instead of
// hanging), then restarts Redis empty and checks that Strait rebuilds its
// metadata by itself: processes re-register, nodes republish their topics
// with the same ids, proxies retake their coordinator leases.
//
// Checks: docs/architecture.md "Control" (leases and registrations in the Store) and
// "Nodes reconcile"; invariant 1 (no acknowledged write lost across the
// outage); invariant 4 (committed offsets survive: they live in
// __consumer_offsets on the nodes, not in Redis).
func TestClusterRedisOutage(t *testing.T) {
	const (
		topic      = "cluster-redis-outage"
		partitions = 3
		keys       = 100
		group      = "outage-group"
		outage     = 3 * time.Second // writes must go on at least this long
	)
	c := StartCluster(t, ClusterNodes(2), Proxies(2),
		ProxyArgs(fastRebalance, "--offsets-partitions=4"))
	adm0, adm1 := c.Admin(t, 0), c.Admin(t, 1)
	createTopic(t, adm0, topic, partitions, clusterTimeout)
	before := waitTopicReady(t, adm0, topic, partitions, clusterTimeout)
	waitTopicReady(t, adm1, topic, partitions, clusterTimeout)

	producer := c.Client(t, 0, kgo.RequiredAcks(kgo.AllISRAcks()))
	steady := startSteadyProducer(t, producer, topic, keys)
	steady.waitAcked(t, time.Time{}, 1000, clusterTimeout)
	committed := commitSome(t, c, 1, group, topic, 500)
	t.Logf("group %s committed %v before the outage", group, sortedOffsets(committed))

	// Outage.
	c.Redis.Kill()
	down := time.Now()
	t.Logf("redis-server killed; %d records acknowledged so far", len(steady.Acked()))

	waitReadyz(t, down.Add(10*time.Second), http.StatusServiceUnavailable, "redis", c.Proxies[0])
	t.Logf("proxy-1 /readyz said 503 naming Redis %v into the outage", time.Since(down))

	createDuringOutage(t, c, topic+"-during")

	// Writes go on for at least `outage`.
	if wait := time.Until(down.Add(outage)); wait > 0 {
		time.Sleep(wait) // the producer keeps writing meanwhile
	}
	steady.waitAcked(t, down.Add(outage), 1, 10*time.Second)
	up := time.Now()
	if n := steady.AckedBetween(down, up); n == 0 {
		t.Fatalf("no record acknowledged during the %v Redis outage", up.Sub(down))
	} else {
		t.Logf("%d records acknowledged during the %v outage", n, up.Sub(down))
	}

	// Redis comes back empty.
	c.Redis.Restart(t)
	up = time.Now()
	recovered := up.Add(15 * time.Second)
	waitReadyz(t, recovered, http.StatusOK, "", c.Straits()...)
	t.Logf("every process ready %v after Redis restarted", time.Since(up))

	for i, adm := range []*kadm.Client{adm0, adm1} {
		Eventually(t, max(time.Until(recovered), time.Millisecond), func(ctx context.Context) error {
			d, err := topicReady(ctx, adm, topic, partitions)
			if err != nil {
				return fmt.Errorf("proxy %d: %w", i, err)
			}
			if d.ID != before.ID {
				return fmt.Errorf("proxy %d: topic %s has id %v, had %v before the outage", i, topic, d.ID, before.ID)
			}
			return nil
		})
	}
	Eventually(t, max(time.Until(recovered), time.Millisecond), func(ctx context.Context) error {
		got, err := committedOffsets(ctx, adm0, group, topic)
		if err != nil {
			return err
		}
		if !equalOffsets(got, committed) {
			return fmt.Errorf("group %s committed %v, want %v", group, sortedOffsets(got), sortedOffsets(committed))
		}
		return nil
	})
	newTopic := topic + "-after"
	Eventually(t, max(time.Until(recovered), time.Millisecond), func(ctx context.Context) error {
		resp, err := adm1.CreateTopic(ctx, 2, 1, nil, newTopic)
		if err == nil {
			err = resp.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) { // an earlier attempt went through
			err = nil
		}
		return err
	})
	t.Logf("recovered %v after Redis restarted", time.Since(up))

	// Writes after the outage, then read everything back.
	steady.waitAcked(t, up, 100, clusterTimeout)
	steady.Stop()
	if failed, err := steady.Err(); failed > 0 {
		t.Fatalf("%d records failed; first: %v", failed, err)
	}
	acked := steady.Acked()
	consumer := c.Client(t, 1,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	got := consumeAll(t, consumer, len(acked), clusterTimeout)
	consumer.Close()
	counts := checkDenseOffsets(t, got)
	checkProducedOrder(t, got, len(acked), keys)
	checkSameRecords(t, acked, got)
	checkEndOffsets(t, adm1, topic, perPartition(counts, topic), clusterTimeout)
}

// createDuringOutage checks that CreateTopics without Redis returns an
// error — a retriable one, as Kafka answers when its controller is
// unavailable — within 10s, instead of succeeding or hanging.
func createDuringOutage(t testing.TB, c *Cluster, topic string) {
	t.Helper()
	adm := c.Admin(t, 0)
	adm.SetTimeoutMillis(5000) // the server's budget for the request
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
	took := time.Since(start)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		t.Fatalf("CreateTopics %s succeeded while Redis was down", topic)
	case took > 10*time.Second || errors.Is(err, context.DeadlineExceeded):
		t.Fatalf("CreateTopics %s while Redis was down: no answer within %v (%v)", topic, took.Round(time.Millisecond), err)
	}
	var ke *kerr.Error
	if errors.As(err, &ke) && !ke.Retriable {
		t.Fatalf("CreateTopics %s while Redis was down: %v (%s), want a retriable error", topic, err, resp.ErrMessage)
	}
	t.Logf("CreateTopics while Redis was down failed after %v: %v (%s)", took.Round(time.Millisecond), err, resp.ErrMessage)
}

// TestClusterStartWithoutRedisFailsFast starts a node and a proxy pointed at
// a port where no Redis listens: each must exit non-zero within 10s with a
// message naming the Redis URL, rather than wait or serve without metadata.
func TestClusterStartWithoutRedisFailsFast(t *testing.T) {
	bin := StraitBin(t)
	url := "redis://" + FreeAddr(t) // nothing listens there
	node := startProcess(t, Spec{Name: "node-1", Path: bin, Args: []string{"node",
		"--id", "1",
		"--listen", FreeAddr(t),
		"--data-dir", t.TempDir(),
		"--redis", url,
		"--admin", FreeAddr(t),
	}})
	listen := FreeAddr(t)
	proxy := startProcess(t, Spec{Name: "proxy-1", Path: bin, Args: []string{"proxy",
		"--listen", listen,
		"--advertise", listen,
		"--redis", url,
		"--admin", FreeAddr(t),
	}})
	// Wait for both before judging either, so a failure reports both.
	deadline := time.Now().Add(10 * time.Second)
	procs := []*Process{node, proxy}
	codes := make([]int, len(procs))
	exited := make([]bool, len(procs))
	for i, p := range procs {
		codes[i], exited[i] = p.Wait(max(time.Until(deadline), time.Millisecond))
	}
	for i, p := range procs {
		switch code := codes[i]; {
		case !exited[i]:
			t.Errorf("%s still runs 10s after start without Redis at %s", p.Name(), url)
		case code == 0:
			t.Errorf("%s exited with code 0 without Redis at %s", p.Name(), url)
		case !hasLineWith(p.Log(), url):
			t.Errorf("%s exited with code %d, but its output does not name %s", p.Name(), code, url)
		default:
			t.Logf("%s exited with code %d naming %s", p.Name(), code, url)
		}
	}
}
