package partitionlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestTruncateTo(t *testing.T) {
	tests := []struct {
		name     string
		offset   int64
		wantEnd  int64
		wantSegs int // 0: unchanged
		wantErr  error
	}{
		{name: "at a batch boundary", offset: 30, wantEnd: 30},
		{name: "mid batch drops the whole batch", offset: 31, wantEnd: 30},
		{name: "at end is a no-op", offset: 120, wantEnd: 120},
		{name: "to zero", offset: 0, wantEnd: 0, wantSegs: 1},
		{name: "below start", offset: -1, wantEnd: 120, wantErr: ErrOffsetOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, smallCfg)
			for i := range 40 {
				mustAppend(t, l, makeBatch(t, batchSpec{producerID: 9, seq: int32(3 * i), records: 3, baseTs: int64(1000 + 10*i)}), int32(i/10))
			}
			if err := l.TruncateTo(tt.offset); !errors.Is(err, tt.wantErr) {
				t.Fatalf("TruncateTo: %v, want %v", err, tt.wantErr)
			}
			if l.EndOffset() != tt.wantEnd {
				t.Fatalf("end %d, want %d", l.EndOffset(), tt.wantEnd)
			}
			if tt.wantSegs > 0 && len(segmentFiles(t, dir)) != tt.wantSegs {
				t.Fatalf("%d segments, want %d", len(segmentFiles(t, dir)), tt.wantSegs)
			}
			checkTruncated(t, l, dir, tt.wantEnd)
		})
	}
}

// checkTruncated verifies what TruncateTo promises, then that the log carries on and
// survives a reopen.
func checkTruncated(t *testing.T, l *Log, dir string, end int64) {
	t.Helper()
	if hs := readAll(t, l); len(hs) != int(end/3) {
		t.Fatalf("%d batches, want %d", len(hs), end/3)
	}
	for _, s := range segmentFiles(t, dir) {
		base, _ := parseSegmentName(filepath.Base(s))
		if base > end {
			t.Fatalf("segment %s past the end %d survived", s, end)
		}
	}
	latest := int32(end/3-1) / 10
	if end == 0 {
		latest = -1
	}
	if e, off := l.EndOffsetForEpoch(latest); latest >= 0 && (e != latest || off != end) {
		t.Fatalf("EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", latest, e, off, latest, end)
	}
	// Producer state was rebuilt: the batch after the cut is next in sequence again.
	seq := int32(end)
	if res := mustAppend(t, l, makeBatch(t, batchSpec{producerID: 9, seq: seq, records: 3}), 10); res.BaseOffset != end {
		t.Fatalf("append after truncate at %d", res.BaseOffset)
	}
	if off, _, _ := l.OffsetForTimestamp(1000); end > 0 && off != 0 {
		t.Fatalf("OffsetForTimestamp after truncate: %d", off)
	}
	l.Close()
	l2 := openLog(t, dir, smallCfg)
	if l2.EndOffset() != end+3 {
		t.Fatalf("after reopen end %d, want %d", l2.EndOffset(), end+3)
	}
	if _, err := os.Stat(filepath.Join(dir, epochCheckpointName)); err != nil {
		t.Fatal(err)
	}
}

// TestTruncateWhileReading runs readers against a log that is repeatedly cut and regrown;
// under -race they must see either the old or the new log, never torn state.
func TestTruncateWhileReading(t *testing.T) {
	l := openLog(t, t.TempDir(), smallCfg)
	appendN(t, l, 30, 3)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			if err := l.TruncateTo(int64(3 * (i % 10))); err != nil {
				t.Error(err)
				return
			}
			appendN(t, l, 5, 3)
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		res, err := l.Read(0, l.EndOffset(), 1<<20)
		if err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatal(err)
		}
		decodeAll(t, res.Records)
	}
}
