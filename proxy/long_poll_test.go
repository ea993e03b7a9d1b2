package proxy

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchLongPoll: a Fetch at the log end waits for MinBytes up to MaxWaitMillis
// (Kafka's fetch.min.bytes / fetch.max.wait.ms) and answers as soon as data arrives,
// whether it asks the proxy or the leader node directly.
func TestFetchLongPoll(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "long-poll", 1, nil)
	for _, tc := range []struct {
		name string
		addr func() string
	}{
		{"proxy", func() string { return c.proxyAddr }},
		{"node", func() string { return c.nodes[0].addr }},
	} {
		t.Run(tc.name+": wakes on produce", func(t *testing.T) {
			producer := dial(t, c.proxyAddr)
			end := endOffset(t, producer, "long-poll", 0)
			fetcher := dial(t, tc.addr())
			type answer struct {
				fp      kmsg.FetchResponseTopicPartition
				elapsed time.Duration
			}
			done := make(chan answer, 1)
			go func() {
				start := time.Now()
				resp, err := fetcher.Do(t.Context(), fetchRequest("long-poll", 0, end, 1, 5000))
				if err != nil {
					t.Errorf("fetch: %v", err)
					close(done)
					return
				}
				done <- answer{resp.(*kmsg.FetchResponse).Topics[0].Partitions[0], time.Since(start)}
			}()
			time.Sleep(100 * time.Millisecond) // let the fetch reach the node and wait
			sp := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, producer, produceRequest("long-poll", -1, map[int32][]byte{0: makeBatch(batchSpec{value: "wake"})})))
			if sp.ErrorCode != 0 {
				t.Fatalf("produce: error %d", sp.ErrorCode)
			}
			a, ok := <-done
			if !ok {
				return
			}
			if a.elapsed >= 4*time.Second {
				t.Errorf("long poll answered after %v: it did not wake on the produce", a.elapsed)
			}
			if a.fp.ErrorCode != 0 || len(recordValues(t, a.fp.RecordBatches)) != 1 {
				t.Errorf("error %d, records %q; want the one produced", a.fp.ErrorCode, recordValues(t, a.fp.RecordBatches))
			}
		})
		t.Run(tc.name+": no data answers after MaxWaitMillis", func(t *testing.T) {
			cl := dial(t, tc.addr())
			end := endOffset(t, dial(t, c.proxyAddr), "long-poll", 0)
			start := time.Now()
			fp := onlyFetchPartition(t, do[*kmsg.FetchResponse](t, cl, fetchRequest("long-poll", 0, end, 1, 300)))
			elapsed := time.Since(start)
			if elapsed < 250*time.Millisecond || elapsed > 4*time.Second {
				t.Errorf("empty long poll of 300ms answered after %v", elapsed)
			}
			if fp.ErrorCode != 0 || len(fp.RecordBatches) != 0 || fp.HighWatermark != end {
				t.Errorf("error %d, %d bytes, high watermark %d; want 0, none, %d", fp.ErrorCode, len(fp.RecordBatches), fp.HighWatermark, end)
			}
		})
		t.Run(tc.name+": an error answers at once", func(t *testing.T) {
			cl := dial(t, tc.addr())
			start := time.Now()
			fp := onlyFetchPartition(t, do[*kmsg.FetchResponse](t, cl, fetchRequest("long-poll", 0, 1<<40, 1, 5000)))
			if elapsed := time.Since(start); elapsed >= 4*time.Second || fp.ErrorCode != kerr.OffsetOutOfRange.Code {
				t.Errorf("fetch past the end: error %d after %v; want OFFSET_OUT_OF_RANGE at once", fp.ErrorCode, elapsed)
			}
		})
	}
}

// TestFetchLongPollDoesNotBlockOtherClients: a fetch waiting on one client connection
// does not hold up another client's produce, although both share the proxy's
// connection to the node (which answers out of order).
func TestFetchLongPollDoesNotBlockOtherClients(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "busy", 1, nil)
	waiting := dial(t, c.proxyAddr)
	go waiting.Do(t.Context(), fetchRequest("busy", 0, 0, 1, 3000)) // answered, or cut at cleanup
	time.Sleep(50 * time.Millisecond)
	cl := dial(t, c.proxyAddr)
	start := time.Now()
	sp := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, produceRequest("busy", -1, map[int32][]byte{0: makeBatch(batchSpec{})})))
	if elapsed := time.Since(start); sp.ErrorCode != 0 || elapsed > 2*time.Second {
		t.Errorf("produce beside a waiting fetch: error %d after %v", sp.ErrorCode, elapsed)
	}
}

// TestFetchSessions: the proxy never creates fetch sessions (KIP-227); a request that
// names one gets FETCH_SESSION_ID_NOT_FOUND, and a full fetch is answered sessionless.
func TestFetchSessions(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "sessions", 1, nil)
	cl := dial(t, c.proxyAddr)

	req := fetchRequest("sessions", 0, 0, 0, 0)
	req.SessionID, req.SessionEpoch = 12345, 1
	if resp := do[*kmsg.FetchResponse](t, cl, req); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Errorf("unknown session: error %d, want %d", resp.ErrorCode, kerr.FetchSessionIDNotFound.Code)
	}

	req = fetchRequest("sessions", 0, 0, 0, 0)
	req.SessionID, req.SessionEpoch = 0, 0 // a client asking to create a session
	resp := do[*kmsg.FetchResponse](t, cl, req)
	if resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Errorf("session request: error %d, session %d; want a sessionless answer (0, 0)", resp.ErrorCode, resp.SessionID)
	}
}
