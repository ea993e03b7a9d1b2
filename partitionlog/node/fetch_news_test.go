package node

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchSessionLooksAtChangedPartitionsOnly: after its first passes a session's
// fetch looks only at the partitions whose replica marked a change, so a session of
// many idle partitions costs nothing per fetch; a long poll ends when a partition of
// its own changes, and a write elsewhere on the node is not news to it.
func TestFetchSessionLooksAtChangedPartitionsOnly(t *testing.T) {
	c := newTestCluster(t, 1, 2)
	const partitions = 300
	c.createTopic(t, "wide", partitions, 1)
	c.createTopic(t, "elsewhere", 1, 1)
	cl, fetcher := dial(t, c.nodes[1].addr), dial(t, c.nodes[1].addr) // a connection answers in order
	for i := range int32(partitions) {                                // opens every replica on node 1
		c.produceTo(t, cl, "wide", i, 1)
	}
	c.produceTo(t, cl, "elsewhere", 0, 1)

	fetch := func(id, epoch int32, maxWait int32, positions map[int32]int64) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 12, 2, maxWait, 1, 1<<20
		req.SessionID, req.SessionEpoch = id, epoch
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "wide"
		for i, off := range positions {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = i, off, 1<<20, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			req.Topics = []kmsg.FetchRequestTopic{rt}
		}
		resp, err := fetcher.Do(context.Background(), req)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		return resp.(*kmsg.FetchResponse)
	}
	answered := func(resp *kmsg.FetchResponse) map[int32]int {
		out := map[int32]int{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				out[rp.Partition] = len(rp.RecordBatches)
			}
		}
		return out
	}
	pending := func(id int32) int {
		sess, code := c.nodes[1].srv.sessions.get(id)
		if code != 0 {
			t.Fatalf("session %d: error %d", id, code)
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return len(sess.pending)
	}

	all := map[int32]int64{}
	for i := range int32(partitions) {
		all[i] = 1 // caught up
	}
	full := fetch(0, 0, 0, all)
	id := full.SessionID
	if got := len(answered(full)); id == 0 || got != partitions {
		t.Fatalf("full fetch: session %d, %d partitions answered; want a session and all %d", id, got, partitions)
	}
	if got := answered(fetch(id, 1, 0, nil)); len(got) != 0 {
		t.Fatalf("incremental fetch with nothing new answered %v", got)
	}
	if n := pending(id); n != 0 {
		t.Fatalf("a session with nothing new keeps %d partitions to look at, want 0", n)
	}

	type result struct {
		resp  *kmsg.FetchResponse
		after time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		resp := fetch(id, 2, 10_000, nil)
		done <- result{resp, time.Since(start)}
	}()
	time.Sleep(100 * time.Millisecond) // let it wait
	c.produceTo(t, cl, "elsewhere", 0, 1)
	select {
	case r := <-done:
		t.Fatalf("a write outside the session ended its long poll: answered %v", answered(r.resp))
	case <-time.After(200 * time.Millisecond):
	}
	c.produceTo(t, cl, "wide", 123, 1)
	r := <-done
	if got := answered(r.resp); len(got) != 1 || got[123] == 0 || r.after > 5*time.Second {
		t.Fatalf("after a write to partition 123 the long poll answered %v after %v; want partition 123 with records at once", got, r.after)
	}
	if n := pending(id); n != 1 {
		t.Fatalf("the session looks at %d partitions after one changed, want 1", n)
	}
}
