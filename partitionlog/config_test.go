package partitionlog

import (
	"errors"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"
)

// fakeClock is the injected Config.Now for tests that control time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openWith(t testing.TB, dir string, cfg Config, hooks Hooks) *Log {
	t.Helper()
	l, err := Open(dir, cfg, hooks, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestRollPolicy checks what starts a new segment, per Kafka's LogSegment.shouldRoll.
func TestRollPolicy(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		ts        []int64 // base timestamp of each one-record batch
		wantBases []int64
	}{
		// segment.bytes: a 78-byte batch; 3 fit in 250 bytes.
		{"segment.bytes rolls before the batch that would not fit", Config{SegmentBytes: 250}, []int64{1, 2, 3, 4, 5, 6, 7}, []int64{0, 3, 6}},
		// segment.ms: the incoming batch's max timestamp minus the first batch's (timeWaitedForRoll).
		{"segment.ms rolls when message time passes it", Config{SegmentMs: 100}, []int64{1000, 1050, 1100, 1101, 1150, 1202}, []int64{0, 3, 5}},
		{"segment.ms measures from the first batch, not the last", Config{SegmentMs: 100}, []int64{1000, 1099, 1099, 1101}, []int64{0, 3}},
		{"old timestamps alone do not roll", Config{}, []int64{1, 2, 3}, []int64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), tt.cfg)
			for _, ts := range tt.ts {
				mustAppend(t, l, makeBatch(t, batchSpec{baseTs: ts}), 0)
			}
			if got := allBases(l); !equalInts(got, tt.wantBases) {
				t.Fatalf("segment bases %v, want %v", got, tt.wantBases)
			}
			if got := len(readAll(t, l)); got != len(tt.ts) {
				t.Fatalf("read %d batches, want %d", got, len(tt.ts))
			}
		})
	}
}

func allBases(l *Log) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int64
	for _, s := range l.mu.segments {
		out = append(out, s.base)
	}
	return out
}

// TestLogAppendTime: under message.timestamp.type=LogAppendTime the broker sets
// maxTimestamp to its clock and attribute bit 3, recomputing the CRC (Kafka's LogValidator);
// the produce response carries the time.
func TestLogAppendTime(t *testing.T) {
	clock := newClock()
	l := openLog(t, t.TempDir(), Config{MessageTimestampType: LogAppendTime, Now: clock.now})
	in := makeBatch(t, batchSpec{records: 3, baseTs: 5})
	res := mustAppend(t, l, in, 0)
	want := clock.now().UnixMilli()
	if res.LogAppendTime != want {
		t.Fatalf("LogAppendTime %d, want %d", res.LogAppendTime, want)
	}
	hs := readAll(t, l) // decodeBatch verifies the CRC
	if h := hs[0]; !h.logAppendTime() || h.MaxTimestamp != want || h.BaseTimestamp != 5 {
		t.Fatalf("stored header %+v: want bit 3, maxTimestamp %d, baseTimestamp kept", h, want)
	}
	if off, ts, err := l.OffsetForTimestamp(want); err != nil || off != 0 || ts != want {
		t.Fatalf("OffsetForTimestamp = (%d, %d, %v), want (0, %d)", off, ts, err, want)
	}
	// CreateTime (the default) leaves the batch's bytes as the producer made them, but offsets.
	l2 := openLog(t, t.TempDir(), Config{Now: clock.now})
	in2 := makeBatch(t, batchSpec{records: 3, baseTs: 5})
	crc := crcOf(in2)
	if res := mustAppend(t, l2, in2, 0); res.LogAppendTime != -1 || crcOf(readAllBytes(t, l2)) != crc {
		t.Fatalf("CreateTime: LogAppendTime %d and the CRC must stay", res.LogAppendTime)
	}
}

func readAllBytes(t testing.TB, l *Log) []byte {
	t.Helper()
	res, err := l.Read(l.StartOffset(), l.EndOffset(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return res.Records
}

// TestSetConfig changes a running log: Kafka applies topic config changes to live logs.
func TestSetConfig(t *testing.T) {
	clock := newClock()
	l := openLog(t, t.TempDir(), Config{Now: clock.now})
	appendN(t, l, 5, 1)
	if err := l.SetConfig(Config{SegmentBytes: -1}); err == nil {
		t.Fatal("SetConfig accepted a negative SegmentBytes")
	}
	if err := l.SetConfig(Config{MessageTimestampType: "Whenever"}); err == nil {
		t.Fatal("SetConfig accepted an unknown timestamp type")
	}
	if got := allBases(l); len(got) != 1 {
		t.Fatalf("rejected SetConfig changed the log: %v", got)
	}
	if err := l.SetConfig(Config{SegmentBytes: 200, RetentionBytes: 1, MessageTimestampType: LogAppendTime}); err != nil {
		t.Fatal(err)
	}
	res := mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
	if got := allBases(l); !equalInts(got, []int64{0, 5}) {
		t.Fatalf("after SetConfig(SegmentBytes) bases %v, want [0 5]", got)
	}
	if res.LogAppendTime != clock.now().UnixMilli() {
		t.Fatalf("after SetConfig(LogAppendTime) the append got %d", res.LogAppendTime)
	}
	if n, err := l.EnforceRetention(clock.now()); err != nil || n != 1 || l.StartOffset() != 5 {
		t.Fatalf("retention after SetConfig(RetentionBytes): %d deleted, start %d, %v", n, l.StartOffset(), err)
	}
	l.Close()
	if err := l.SetConfig(Config{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetConfig after Close: %v", err)
	}
}

// TestFlushPolicy: flush.messages and flush.ms force an fsync of the active segment; by
// default nothing is synced per append (Kafka's default).
func TestFlushPolicy(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		step      time.Duration
		appends   int
		wantSyncs int
	}{
		{"default never syncs", Config{}, time.Second, 10, 0},
		{"flush.messages 3 (one record each)", Config{FlushMessages: 3}, 0, 10, 3},
		{"flush.ms 1000 at 400ms steps", Config{FlushMs: 1000}, 400 * time.Millisecond, 10, 3},
		// Kafka's defaults, as topics carry them: Long.MAX_VALUE must not overflow into
		// "due" when turned into a duration (it did, fsyncing every append).
		{"flush.ms and flush.messages at Long.MAX_VALUE", Config{FlushMs: math.MaxInt64, FlushMessages: math.MaxInt64}, time.Second, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, clock := newMemFS(), newClock()
			tt.cfg.FS, tt.cfg.Now = fs, clock.now
			l := openWith(t, "/p", tt.cfg, Hooks{})
			syncs := 0
			fs.inject = func(op, path string, _ int) error {
				if op == "sync" && path == segmentPath("/p", 0, logSuffix) {
					syncs++
				}
				return nil
			}
			for range tt.appends {
				clock.advance(tt.step)
				mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
			}
			if syncs != tt.wantSyncs {
				t.Fatalf("%d fsyncs of the segment, want %d", syncs, tt.wantSyncs)
			}
		})
	}
}
