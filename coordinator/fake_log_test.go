package coordinator

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/strait-io/strait/coordinator/classic"
	"github.com/strait-io/strait/coordinator/offsets"
	"github.com/strait-io/strait/routing"
)

// memLog is an in-memory __consumer_offsets: per partition, the record batches
// appended so far, concatenated as a partition log would hold them. Append assigns
// offsets as a leader does; Read serves whole batches from an offset.
type memLog struct {
	mu struct {
		sync.Mutex
		parts     map[int32][]byte
		hw        map[int32]int64
		appendErr error         // returned by Append while set; nothing is written
		readGate  chan struct{} // while non-nil, Read waits for it to close
		appends   int           // successful appends
	}
}

// v2 batch header fields memLog reads or writes.
const (
	batchBaseOffset      = 0
	batchLength          = 8
	batchLastOffsetDelta = 23
	batchLogOverhead     = 12
)

func newMemLog() *memLog {
	l := &memLog{}
	l.mu.parts = make(map[int32][]byte)
	l.mu.hw = make(map[int32]int64)
	return l
}

// Append implements OffsetsLog: it rewrites the batch's base offset to the
// partition's high watermark and advances it past the batch's records.
func (l *memLog) Append(_ context.Context, partition int32, batch []byte) error {
	if len(batch) < batchLastOffsetDelta+4 {
		return fmt.Errorf("memLog: short batch of %d bytes", len(batch))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.appendErr != nil {
		return l.mu.appendErr
	}
	b := append([]byte(nil), batch...)
	base := l.mu.hw[partition]
	binary.BigEndian.PutUint64(b[batchBaseOffset:], uint64(base))
	lastDelta := int64(binary.BigEndian.Uint32(b[batchLastOffsetDelta:]))
	l.mu.parts[partition] = append(l.mu.parts[partition], b...)
	l.mu.hw[partition] = base + lastDelta + 1
	l.mu.appends++
	return nil
}

// Read implements OffsetsLog: the batches holding offset and later, whole, up to
// maxBytes (at least one batch), and the high watermark.
func (l *memLog) Read(ctx context.Context, partition int32, offset int64, maxBytes int32) ([]byte, int64, error) {
	l.mu.Lock()
	gate := l.mu.readGate
	l.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	data, hw := l.mu.parts[partition], l.mu.hw[partition]
	var out []byte
	for len(data) >= batchLogOverhead {
		size := batchLogOverhead + int(binary.BigEndian.Uint32(data[batchLength:]))
		batch := data[:size]
		data = data[size:]
		base := int64(binary.BigEndian.Uint64(batch[batchBaseOffset:]))
		last := base + int64(binary.BigEndian.Uint32(batch[batchLastOffsetDelta:]))
		if last < offset {
			continue
		}
		if len(out) > 0 && len(out)+size > int(maxBytes) {
			break
		}
		out = append(out, batch...)
	}
	return out, hw, nil
}

func (l *memLog) setAppendErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.appendErr = err
}

// blockReads makes Read wait until the returned release is called.
func (l *memLog) blockReads() (release func()) {
	gate := make(chan struct{})
	l.mu.Lock()
	l.mu.readGate = gate
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.mu.readGate = nil
			l.mu.Unlock()
			close(gate)
		})
	}
}

func (l *memLog) appendCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.appends
}

// records decodes everything written to a partition, in log order.
func (l *memLog) records(t *testing.T, partition int32) []offsets.Record {
	t.Helper()
	l.mu.Lock()
	data := append([]byte(nil), l.mu.parts[partition]...)
	l.mu.Unlock()
	var out []offsets.Record
	if _, err := offsets.Decode(data, func(_ int64, r offsets.Record) { out = append(out, r) }); err != nil {
		t.Fatalf("decode partition %d: %v", partition, err)
	}
	return out
}

func TestMemLogAssignsOffsetsAndReadsWholeBatches(t *testing.T) {
	l := newMemLog()
	ctx := context.Background()
	now := time.Now()
	k1, v1 := offsets.OffsetCommitRecord("g", "t", 0, offsets.Commit{Offset: 1, LeaderEpoch: -1, CommitTime: now})
	k2, v2 := offsets.OffsetCommitRecord("g", "t", 1, offsets.Commit{Offset: 2, LeaderEpoch: -1, CommitTime: now})
	first := offsets.Batch([]offsets.KV{{Key: k1, Value: v1}, {Key: k2, Value: v2}}, now)
	second := offsets.Batch([]offsets.KV{{Key: k1, Value: v1}}, now)
	for _, b := range [][]byte{first, second} {
		if err := l.Append(ctx, 0, b); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		offset     int64
		maxBytes   int32
		wantBytes  int
		wantOffset []int64
	}{
		{"all from 0", 0, 1 << 20, len(first) + len(second), []int64{0, 1, 2}},
		{"at least one batch past maxBytes", 0, 1, len(first), []int64{0, 1}},
		{"offset inside the first batch returns it whole", 1, 1 << 20, len(first) + len(second), []int64{0, 1, 2}},
		{"from the second batch", 2, 1 << 20, len(second), []int64{2}},
		{"at the high watermark", 3, 1 << 20, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, hw, err := l.Read(ctx, 0, tc.offset, tc.maxBytes)
			if err != nil || hw != 3 || len(got) != tc.wantBytes {
				t.Fatalf("Read = %d bytes, hw %d, %v; want %d bytes, hw 3", len(got), hw, err, tc.wantBytes)
			}
			var offs []int64
			if _, err := offsets.Decode(got, func(o int64, _ offsets.Record) { offs = append(offs, o) }); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(offs) != fmt.Sprint(tc.wantOffset) {
				t.Fatalf("record offsets %v, want %v", offs, tc.wantOffset)
			}
		})
	}
}

// fakeView serves one fixed routing snapshot.
type fakeView struct{ snap *routing.Snapshot }

func (v fakeView) Snapshot() *routing.Snapshot { return v.snap }

// newView returns a view holding the named topics with their partition counts.
func newView(t *testing.T, topics map[string]int) fakeView {
	t.Helper()
	store, err := routing.NewMemStore("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, n := range topics {
		topic := routing.Topic{Name: name, ID: routing.NewTopicID()}
		for i := range n {
			topic.Partitions = append(topic.Partitions, routing.Partition{Index: int32(i), Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})
		}
		if err := store.CreateTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return fakeView{snap}
}

// testTopics are the topics most tests commit to and consume.
var testTopics = map[string]int{"orders": 2, "payments": 1}

// testConfig keeps every wait short: no initial rebalance delay, and session
// timeouts down to a millisecond allowed.
func testConfig() Config {
	return Config{
		Partitions: 1,
		Classic:    classic.Config{InitialRebalanceDelay: -1, MinSessionTimeout: time.Millisecond},
	}
}

// startCoordinator returns a coordinator over log with partitions loaded and
// ready, closed when the test ends.
func startCoordinator(t *testing.T, cfg Config, log OffsetsLog, view Snapshots, partitions ...int32) *Coordinator {
	t.Helper()
	c, err := New(cfg, log, view, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, p := range partitions {
		c.Load(p)
	}
	eventually(t, "partitions loaded", func() error { return c.Loaded() })
	return c
}

// eventually polls cond until it returns nil, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 5s: %v", what, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testCtx is a context that ends with the test or after 10s.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
