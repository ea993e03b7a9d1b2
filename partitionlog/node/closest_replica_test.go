package node

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

// Tests of consumers fetching from the closest replica (KIP-392, closest_replica.go).

// consumerFetch is a consumer's Fetch (replica id -1) of partition 0 of topic at offset,
// from a client in rack, at version.
func consumerFetch(topic string, version int16, rack string, offset int64, currentEpoch int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.Rack = version, -1, 1<<20, rack
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = offset, 1<<20, currentEpoch
	req.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{rp}}}
	return req
}

// batchAt is makeBatch(n) with base offset base, as a leader would have assigned it (the
// CRC does not cover the base offset).
func batchAt(base int64, n int) []byte {
	b := makeBatch(n)
	binary.BigEndian.PutUint64(b[:8], uint64(base))
	return b
}

// TestFollowerReadsUpToItsHighWatermark: a follower serves consumers of Fetch v11+ as
// KIP-392 has it: records up to its own high watermark; no records, and no error, for
// an offset past the high watermark but within its log; OFFSET_OUT_OF_RANGE past its
// log end, after which the client goes back to the leader. It checks the client's
// leader epoch against the partition's, as the leader does, and leaves older consumers
// and replica fetches to the leader.
func TestFollowerReadsUpToItsHighWatermark(t *testing.T) {
	h := newNodeHarness(t)
	// Node 2 leads at epoch 3 and is never served: node 1 follows and fetches nothing,
	// so its log holds what the test writes and its high watermark stays where set.
	topic := routing.Topic{Name: "near", ID: routing.NewTopicID(), Partitions: []routing.Partition{{
		Index: 0, Replicas: []int32{2, 1}, ISR: []int32{2, 1}, Leader: 2, LeaderEpoch: 3,
	}}}
	if err := h.store.CreateTopic(context.Background(), topic); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	h.refresh(t)
	h.reconcile(t, h.srv)
	r := h.srv.openPartitions()[partitionKey{"near", 0}]
	first, second := batchAt(0, 3), batchAt(3, 2)
	for _, b := range [][]byte{first, second} {
		if _, err := r.log.AppendAsFollower(b); err != nil {
			t.Fatalf("AppendAsFollower: %v", err)
		}
	}
	r.log.SetHighWatermark(3) // the leader has told it offsets 0-2 are committed
	cl := dial(t, h.addr)

	for _, tc := range []struct {
		name      string
		offset    int64
		epoch     int32
		wantCode  int16
		wantBytes int
	}{
		{"below the high watermark", 0, 3, 0, len(first)},
		{"at the high watermark, within the log", 3, 3, 0, 0},
		{"at the log end", 5, -1, 0, 0},
		{"past the log end", 6, 3, kerr.OffsetOutOfRange.Code, 0},
		{"an older leader epoch", 0, 2, kerr.FencedLeaderEpoch.Code, 0},
		{"a newer leader epoch", 0, 4, kerr.UnknownLeaderEpoch.Code, 0},
	} {
		got := do[*kmsg.FetchResponse](t, cl, consumerFetch("near", 12, "", tc.offset, tc.epoch)).Topics[0].Partitions[0]
		if got.ErrorCode != tc.wantCode || len(got.RecordBatches) != tc.wantBytes {
			t.Errorf("%s (offset %d, epoch %d): error %d, %d record bytes; want error %d, %d bytes",
				tc.name, tc.offset, tc.epoch, got.ErrorCode, len(got.RecordBatches), tc.wantCode, tc.wantBytes)
		}
		if tc.wantCode == 0 && (got.HighWatermark != 3 || got.PreferredReadReplica != -1) {
			t.Errorf("%s: high watermark %d, preferred replica %d; want the follower's own 3, and none",
				tc.name, got.HighWatermark, got.PreferredReadReplica)
		}
	}

	older := do[*kmsg.FetchResponse](t, cl, consumerFetch("near", 10, "", 0, 3)).Topics[0].Partitions[0]
	if older.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("Fetch v10 at a follower: error %d; want NOT_LEADER_OR_FOLLOWER (KIP-392 is v11+)", older.ErrorCode)
	}
	replicaFetch := consumerFetch("near", 12, "", 0, 3)
	replicaFetch.ReplicaID = 3
	if got := do[*kmsg.FetchResponse](t, cl, replicaFetch).Topics[0].Partitions[0]; got.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("replica fetch at a follower: error %d; want NOT_LEADER_OR_FOLLOWER (replicas fetch from the leader)", got.ErrorCode)
	}
	if st := h.srv.ConsumerReadStats(); st.AsFollower == 0 || st.AsLeader != 0 {
		t.Errorf("read stats %+v; want reads as follower only", st)
	}
}

// TestFollowerLongPollWakesOnItsHighWatermark: a consumer long-polling a follower at its
// high watermark is answered once the follower learns of a higher one from the leader,
// without waiting out MaxWaitMillis.
func TestFollowerLongPollWakesOnItsHighWatermark(t *testing.T) {
	c := newTestCluster(t, 1, 2, 3)
	c.createTopic(t, "wake", 1, 1, 2, 3)
	leader, follower := dial(t, c.nodes[1].addr), dial(t, c.nodes[2].addr)
	c.produceTo(t, leader, "wake", 0, 2)
	waitFollowerHighWatermark(t, c.nodes[2], partitionKey{"wake", 0}, 2)

	type answer struct {
		fp    kmsg.FetchResponseTopicPartition
		after time.Duration
	}
	done := make(chan answer, 1)
	go func() {
		req := consumerFetch("wake", 12, "", 2, -1)
		req.MinBytes, req.MaxWaitMillis = 1, 8000
		start := time.Now()
		resp, err := follower.Do(context.Background(), req)
		if err != nil {
			t.Errorf("long poll at the follower: %v", err)
			close(done)
			return
		}
		done <- answer{resp.(*kmsg.FetchResponse).Topics[0].Partitions[0], time.Since(start)}
	}()
	time.Sleep(100 * time.Millisecond) // let it wait
	c.produceTo(t, leader, "wake", 0, 3)
	a, ok := <-done
	if !ok {
		return
	}
	if a.fp.ErrorCode != 0 || len(a.fp.RecordBatches) == 0 || a.after > 5*time.Second {
		t.Errorf("long poll at the follower: error %d, %d record bytes after %v; want the new records within a few fetch rounds",
			a.fp.ErrorCode, len(a.fp.RecordBatches), a.after)
	}
}

// waitFollowerHighWatermark waits until n's replica of key has high watermark hw.
func waitFollowerHighWatermark(t *testing.T, n *testNode, key partitionKey, hw int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := n.srv.openPartitions()[key]; r != nil && r.log.HighWatermark() >= hw {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: the high watermark of %s-%d did not reach %d", n.id, key.topic, key.index, hw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLeaderAnswersPreferredReadReplica: a leader asked by a consumer in a rack where an
// in-sync follower lives names that follower as PreferredReadReplica, with no records,
// at once (KIP-392, KAFKA-13767), with or without a fetch session; a consumer in the
// leader's rack, in a rack without replicas or without a rack reads from the leader.
// A follower out of the ISR is never preferred (KAFKA-14372), and the follower
// itself serves the client that was sent to it.
func TestLeaderAnswersPreferredReadReplica(t *testing.T) {
	c := newTestCluster(t, 1, 2, 3)
	for id, rack := range map[int32]string{1: "a", 2: "b", 3: "c"} {
		if err := c.store.RegisterNode(context.Background(), routing.Node{ID: id, Addr: c.nodes[id].addr, Rack: rack}); err != nil {
			t.Fatalf("RegisterNode: %v", err)
		}
	}
	c.createTopic(t, "racks", 1, 1, 2, 3) // led by 1
	leader := dial(t, c.nodes[1].addr)
	c.produceTo(t, leader, "racks", 0, 4)
	c.waitReplicated(t, partitionKey{"racks", 0}, 4)
	waitFollowerHighWatermark(t, c.nodes[2], partitionKey{"racks", 0}, 4)

	// ask fetches from offset 0; a long poll asks for more than there is, so that only
	// a redirect answers it early.
	ask := func(cl *wire.Client, rack string, session, longPoll bool) (kmsg.FetchResponseTopicPartition, time.Duration) {
		t.Helper()
		req := consumerFetch("racks", 12, rack, 0, -1)
		if longPoll {
			req.MinBytes, req.MaxWaitMillis = 1<<20, 3000
		}
		if session {
			req.SessionEpoch = 0
		}
		start := time.Now()
		return do[*kmsg.FetchResponse](t, cl, req).Topics[0].Partitions[0], time.Since(start)
	}
	// Until the racks reach the leader's view and the followers report their ends.
	waitFor(t, "the leader to name node 2 for rack b", func() bool {
		got, _ := ask(leader, "b", false, false)
		return got.PreferredReadReplica == 2
	})
	for _, tc := range []struct {
		rack      string
		session   bool
		preferred int32
	}{
		{"b", false, 2},
		{"b", true, 2},
		{"c", false, 3},
		{"a", false, -1},
		{"z", false, -1},
		{"", false, -1},
	} {
		got, took := ask(leader, tc.rack, tc.session, tc.preferred >= 0)
		switch {
		case got.ErrorCode != 0 || got.PreferredReadReplica != tc.preferred:
			t.Errorf("rack %q (session %v): error %d, preferred replica %d; want %d",
				tc.rack, tc.session, got.ErrorCode, got.PreferredReadReplica, tc.preferred)
		case tc.preferred >= 0 && (len(got.RecordBatches) != 0 || took > 2*time.Second || got.HighWatermark != 4):
			t.Errorf("rack %q: redirected with %d record bytes after %v, high watermark %d; want no records, at once, 4",
				tc.rack, len(got.RecordBatches), took, got.HighWatermark)
		case tc.preferred < 0 && len(got.RecordBatches) == 0:
			t.Errorf("rack %q: no records from the leader", tc.rack)
		}
	}

	if got, _ := ask(dial(t, c.nodes[2].addr), "b", false, false); got.ErrorCode != 0 || got.PreferredReadReplica != -1 || len(got.RecordBatches) == 0 {
		t.Errorf("rack b at node 2: error %d, preferred replica %d, %d record bytes; want records from the follower",
			got.ErrorCode, got.PreferredReadReplica, len(got.RecordBatches))
	}
	if st := c.nodes[1].srv.ConsumerReadStats(); st.Redirected == 0 || st.AsLeader == 0 {
		t.Errorf("leader's read stats %+v; want redirects and reads", st)
	}

	snap, _ := c.store.Snapshot(context.Background())
	p, _ := snap.Partition("racks", 0)
	prev := p.PartitionEpoch
	p.ISR = []int32{1, 3}
	p.PartitionEpoch++
	if err := c.store.UpdatePartition(context.Background(), "racks", p, prev); err != nil {
		t.Fatalf("UpdatePartition: %v", err)
	}
	waitFor(t, "the leader to stop naming node 2, out of the ISR", func() bool {
		got, _ := ask(leader, "b", false, false)
		return got.PreferredReadReplica == -1 && len(got.RecordBatches) > 0
	})
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
