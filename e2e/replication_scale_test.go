package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAcksAllLatencyWithManyPartitions: with replication, the latency of one acks=all
// write must not grow with the number of partitions in the cluster. On `strait dev
// --nodes 3` with 300 idle RF=3 partitions besides the one written to, sequential
// acks=all writes are held to a generous bound on their median and 90th percentile
// (they take about a millisecond; when followers ran one long-poll fetch per
// partition, they took a second, queued behind idle long polls). Figures for 10, 300
// and 3,000 partitions come from `strait bench`, not from this test.
func TestAcksAllLatencyWithManyPartitions(t *testing.T) {
	const (
		idlePartitions = 300
		writes         = 200
		bound          = 50 * time.Millisecond
	)
	dev := StartDev(t, Nodes(3))
	adm := dev.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for topic, n := range map[string]int32{"idle": idlePartitions, "hot": 1} {
		resp, err := adm.CreateTopic(ctx, n, 3, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create topic %s with %d partitions (RF 3): %v", topic, n, err)
		}
	}
	cl := dev.Client(t, kgo.DefaultProduceTopic("hot"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	// The first writes wait for the partitions to open and the ISR to settle.
	for deadline := time.Now().Add(time.Minute); ; {
		err := cl.ProduceSync(ctx, kgo.StringRecord("warm-up")).FirstErr()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first acks=all write never succeeded: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := make([]time.Duration, 0, writes)
	for i := range writes {
		start := time.Now()
		if err := cl.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); err != nil {
			t.Fatalf("acks=all write %d: %v", i, err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	p50, p90 := took[len(took)/2], took[len(took)*9/10]
	t.Logf("%d acks=all writes with %d idle RF=3 partitions: p50 %v, p90 %v, max %v", writes, idlePartitions, p50, p90, took[len(took)-1])
	if p50 > bound || p90 > bound {
		t.Errorf("acks=all latency p50 %v, p90 %v with %d idle partitions; want both under %v", p50, p90, idlePartitions, bound)
	}
}
