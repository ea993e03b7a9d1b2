package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestLargeTopicKeepsNodesAlive: a topic of 2,000 partitions at RF 3 on three `strait
// node` processes over Redis must not cost the nodes their leases. Renewal once re-read
// every partition's copy of its whole topic every few seconds (quadratic in partitions):
// healthy nodes were declared dead, thousands of partitions went offline and a separate
// topic's acks=all producer got none of its writes acknowledged. For a minute after the
// topic is created, no leader may change (a node whose lease lapses loses its
// leaderships) and every acks=all write to another topic must be acknowledged.
func TestLargeTopicKeepsNodesAlive(t *testing.T) {
	const (
		partitions = 2000
		watch      = 60 * time.Second
	)
	c := StartCluster(t, ClusterNodes(3), Proxies(1))
	adm, cl := c.Admin(t, 0), c.Client(t, 0)
	createReplicatedTopic(t, adm, "side", 3, 3, 2)
	start := time.Now()
	createReplicatedTopic(t, adm, "wide", partitions, 3, 2)
	waitISR(t, c, "wide", partitions, 3, 3*time.Minute)
	t.Logf("%d partitions at RF 3 created in %v", partitions, time.Since(start).Round(time.Millisecond))

	before := leaderEpochs(t, cl, "wide")
	producer := startSteadyProducer(t, c.Client(t, 0, kgo.RequiredAcks(kgo.AllISRAcks())), "side", 30)
	time.Sleep(watch)
	producer.Stop()
	if failed, err := producer.Err(); failed > 0 {
		t.Errorf("%d acks=all writes to another topic failed while the wide topic was held: first %v", failed, err)
	}
	if acked := len(producer.Acked()); acked == 0 {
		t.Errorf("no acks=all write to another topic was acknowledged in %v", watch)
	}
	after := leaderEpochs(t, cl, "wide")
	moved := 0
	for p, epoch := range after {
		if epoch != before[p] {
			moved++
		}
	}
	if moved > 0 {
		t.Errorf("%d of %d partitions changed leader in %v with every node healthy: a node's lease lapsed", moved, partitions, watch)
	}
	t.Logf("%d acks=all writes acknowledged in %v; no leader changed", len(producer.Acked()), watch)
}

// leaderEpochs returns each partition's leader epoch as Metadata reports it.
func leaderEpochs(t testing.TB, cl *kgo.Client, topic string) map[int32]int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = []kmsg.MetadataRequestTopic{rt}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata for %s: %v", topic, err)
	}
	out := map[int32]int32{}
	for _, p := range resp.Topics[0].Partitions {
		out[p.Partition] = p.LeaderEpoch
	}
	return out
}

// TestPartitionLimits: CreateTopics and CreatePartitions beyond the partitions a node
// may hold (--max-node-partitions, Kafka's max.broker.partitions) are refused with
// POLICY_VIOLATION naming the setting, and counts Kafka refuses are refused with its
// codes: 0 partitions INVALID_PARTITIONS, replication factor 0 INVALID_REPLICATION_FACTOR
// (-1 takes the default, KIP-464).
func TestPartitionLimits(t *testing.T) {
	dev := StartDev(t, Args("--max-node-partitions", "60", "--offsets-partitions", "10"))
	cl := dev.Client(t)
	create := func(name string, partitions int32, rf int16) kmsg.CreateTopicsResponseTopic {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
		defer cancel()
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
		req.Topics = []kmsg.CreateTopicsRequestTopic{rt}
		req.TimeoutMillis = 10000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("CreateTopics %s: %v", name, err)
		}
		return resp.Topics[0]
	}
	for _, tc := range []struct {
		name       string
		partitions int32
		rf         int16
		want       error
		says       string
	}{
		{"too-wide", 100, -1, kerr.PolicyViolation, "--max-node-partitions"},
		{"zero-partitions", 0, -1, kerr.InvalidPartitions, ""},
		{"zero-rf", 1, 0, kerr.InvalidReplicationFactor, ""},
		{"fits", 40, -1, nil, ""},
		{"no-room-left", 30, -1, kerr.PolicyViolation, "--max-node-partitions"},
	} {
		st := create(tc.name, tc.partitions, tc.rf)
		msg := ""
		if st.ErrorMessage != nil {
			msg = *st.ErrorMessage
		}
		if err := kerr.ErrorForCode(st.ErrorCode); err != tc.want || !strings.Contains(msg, tc.says) {
			t.Errorf("create %s (%d partitions, RF %d): %v %q; want %v naming %q", tc.name, tc.partitions, tc.rf, err, msg, tc.want, tc.says)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "fits", 80
	req.Topics = []kmsg.CreatePartitionsRequestTopic{rt}
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("CreatePartitions: %v", err)
	}
	if got := resp.Topics[0]; got.ErrorCode != kerr.PolicyViolation.Code {
		t.Errorf("growing past the node's limit: error %d (%v), want POLICY_VIOLATION", got.ErrorCode, fmt.Sprint(got.ErrorMessage))
	}
}
