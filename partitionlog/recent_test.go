package partitionlog

import (
	"slices"
	"testing"
)

// TestRecentBatchesPlanAsHeadersDo: reads planned from the active segment's in-memory
// tail (recent.go) are the reads the batch headers on disk give, at every offset and
// budget, across a roll, and after a truncation empties the tail.
func TestRecentBatchesPlanAsHeadersDo(t *testing.T) {
	fs := newMemFS()
	l := openWith(t, "/p", Config{FS: fs, SegmentBytes: 16 << 10, IndexIntervalBytes: 1024}, Hooks{})
	for i := range 400 {
		mustAppend(t, l, makeBatch(t, batchSpec{records: 1 + i%3}), 0)
	}
	check := func(when string) {
		t.Helper()
		if active := l.mu.segments[len(l.mu.segments)-1]; len(active.recent) == 0 {
			t.Fatalf("%s: the active segment keeps no recent batches", when)
		}
		end := l.EndOffset()
		for _, budget := range []int64{1, 500, 4096, 1 << 20} {
			for offset := l.StartOffset(); offset < end; offset += 7 {
				with := planSpans(t, l, offset, end, budget, false)
				without := planSpans(t, l, offset, end, budget, true)
				if !slices.Equal(with, without) {
					t.Fatalf("%s: offset %d, budget %d: planned %v with the recent batches, %v from headers", when, offset, budget, with, without)
				}
			}
		}
	}
	check("after appends and a roll")
	if n := len(l.mu.segments); n < 2 {
		t.Fatalf("%d segments: the test wants a roll", n)
	}
	if err := l.TruncateTo(l.EndOffset() - 50); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		mustAppend(t, l, makeBatch(t, batchSpec{records: 2}), 0)
	}
	check("after a truncation and appends past it")
}

type plannedSpan struct {
	base   int64
	pos, n int64
}

// planSpans plans a read, with the segments' recent batches or, with fromHeaders,
// without them, as a log with no tail in memory would.
func planSpans(t *testing.T, l *Log, offset, maxOffset, maxBytes int64, fromHeaders bool) []plannedSpan {
	t.Helper()
	v, err := l.snapshot(offset, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range v.segs {
			s.release()
		}
	}()
	if fromHeaders {
		v.recents = make([][]batchSpan, len(v.segs))
	}
	spans, _, err := v.plan(offset, maxOffset, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	var out []plannedSpan
	for _, sp := range spans {
		out = append(out, plannedSpan{sp.s.base, sp.pos, sp.n})
	}
	return out
}
