package partitionlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEnforceRetention: Kafka's retention deletes whole sealed segments from the oldest,
// stopping at the first one kept, and never the active segment
// (UnifiedLog.deleteRetentionMsBreachedSegments, deleteRetentionSizeBreachedSegments).
func TestEnforceRetention(t *testing.T) {
	// 40 batches of 3 records; batch i has timestamps 1000+10i..+2. smallCfg gives 4 sealed
	// segments of 8 batches (24 offsets) and the active one.
	day := 24 * time.Hour
	tests := []struct {
		name        string
		cfg         Config
		now         time.Time
		wantDeleted int
		wantStart   int64
	}{
		{"retention.ms keeps everything newer", Config{RetentionMs: 1000}, time.UnixMilli(1500), 0, 0},
		// Segment 0 holds batches 0-7, largest timestamp 1072; 1072 + 100 < 1173.
		{"retention.ms deletes segments older than the limit", Config{RetentionMs: 100}, time.UnixMilli(1173), 1, 24},
		{"retention.ms never deletes the active segment", Config{RetentionMs: 1}, time.UnixMilli(1_000_000), -1, 108},
		{"retention.ms -1 keeps all", Config{RetentionMs: -1}, time.Now().Add(365 * day), 0, 0},
		{"retention.bytes keeps at least the limit", Config{RetentionBytes: 2000}, time.UnixMilli(0), -1, -1},
		{"retention.bytes larger than the log deletes nothing", Config{RetentionBytes: 1 << 20}, time.UnixMilli(0), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.SegmentBytes, cfg.IndexIntervalBytes = smallCfg.SegmentBytes, smallCfg.IndexIntervalBytes
			dir := t.TempDir()
			l := openLog(t, dir, cfg)
			stored := appendN(t, l, 40, 3)
			before := allBases(l)
			total := dirLogBytes(t, dir)
			n, err := l.EnforceRetention(tt.now)
			if err != nil {
				t.Fatal(err)
			}
			after := allBases(l)
			if tt.wantDeleted == -1 {
				tt.wantDeleted = len(before) - 1
			}
			if tt.cfg.RetentionBytes > 0 && tt.cfg.RetentionBytes < total {
				// Remaining >= the limit, and deleting one more would break it.
				remaining := dirLogBytes(t, dir)
				next := segmentSize(t, dir, after[0])
				if remaining < tt.cfg.RetentionBytes || (len(after) > 1 && remaining-next >= tt.cfg.RetentionBytes) {
					t.Fatalf("retention.bytes %d left %d bytes (first segment %d)", tt.cfg.RetentionBytes, remaining, next)
				}
				tt.wantDeleted, tt.wantStart = len(before)-len(after), after[0]
			}
			if n != tt.wantDeleted || len(after) != len(before)-n {
				t.Fatalf("deleted %d (segments %v -> %v), want %d", n, before, after, tt.wantDeleted)
			}
			if tt.wantStart == -1 || tt.wantDeleted == len(before)-1 {
				tt.wantStart = before[len(before)-1]
			}
			if l.StartOffset() != tt.wantStart || after[0] != tt.wantStart {
				t.Fatalf("start %d, first segment %d, want %d", l.StartOffset(), after[0], tt.wantStart)
			}
			if _, err := l.Read(tt.wantStart-1, 120, 100); tt.wantStart > 0 && !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read below the new start: %v", err)
			}
			hs := readAll(t, l)
			if len(hs) == 0 || hs[0].BaseOffset != tt.wantStart || len(hs) != len(stored)-int(tt.wantStart/3) {
				t.Fatalf("remaining batches from %d: %d", tt.wantStart, len(hs))
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*"+deletedSuffix)); len(left) > 0 {
				t.Fatalf("left %v", left)
			}
			// Reopen sees the same log.
			l.Close()
			l2 := openLog(t, dir, cfg)
			if l2.StartOffset() != tt.wantStart || l2.EndOffset() != 120 {
				t.Fatalf("reopened [%d, %d)", l2.StartOffset(), l2.EndOffset())
			}
		})
	}
}

func dirLogBytes(t *testing.T, dir string) int64 {
	var n int64
	for _, p := range segmentFiles(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func segmentSize(t *testing.T, dir string, base int64) int64 {
	fi, err := os.Stat(segmentPath(dir, base, logSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestDeleteRecordsBefore: KIP-107 moves the log start offset, persisted in a checkpoint,
// and deletes segments wholly below it; reads below it fail with OFFSET_OUT_OF_RANGE.
func TestDeleteRecordsBefore(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallCfg)
	appendN(t, l, 40, 3)
	if _, err := l.DeleteRecordsBefore(121); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	low, err := l.DeleteRecordsBefore(31) // mid batch 30..32, in the third segment
	if err != nil || low != 31 || l.StartOffset() != 31 {
		t.Fatalf("DeleteRecordsBefore(31) = %d, %v; start %d", low, err, l.StartOffset())
	}
	if low, err := l.DeleteRecordsBefore(10); err != nil || low != 31 {
		t.Fatalf("lower offset must not move the start back: %d, %v", low, err)
	}
	if bases := allBases(l); bases[0] > 31 || len(bases) > 1 && bases[1] <= 31 {
		t.Fatalf("segments %v: want those wholly below 31 deleted, the one holding it kept", bases)
	}
	check := func(l *Log) {
		t.Helper()
		if _, err := l.Read(30, 120, 100); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read at 30 below start 31: %v", err)
		}
		res, err := l.Read(31, 120, 1)
		if err != nil || res.LogStartOffset != 31 || decodeAll(t, res.Records)[0].BaseOffset != 30 {
			t.Fatalf("read at the start returns its whole batch: %v", err)
		}
		// Batch 10 (offsets 30..32) has timestamps 1100..1102: the lookup starts at 31.
		if off, ts, err := l.OffsetForTimestamp(0); err != nil || off != 31 || ts != 1101 {
			t.Fatalf("OffsetForTimestamp(0) = (%d, %d, %v), want (31, 1101)", off, ts, err)
		}
	}
	check(l)
	l.Close()
	l2 := openLog(t, dir, smallCfg)
	if l2.StartOffset() != 31 {
		t.Fatalf("reopened start %d, want 31 from the checkpoint", l2.StartOffset())
	}
	check(l2)
	// Everything: the active segment stays, empty of readable records.
	if low, err := l2.DeleteRecordsBefore(120); err != nil || low != 120 || len(allBases(l2)) != 1 {
		t.Fatalf("delete all: %d %v %v", low, err, allBases(l2))
	}
	if res, err := l2.Read(120, 120, 100); err != nil || len(res.Records) != 0 {
		t.Fatalf("read at end: %v", err)
	}
	if got := mustAppend(t, l2, makeBatch(t, batchSpec{}), 0); got.BaseOffset != 120 || got.LogStartOffset != 120 {
		t.Fatalf("append after deleting all: %+v", got)
	}
}

// TestStartCheckpointPastEnd: a crash can lose an unflushed tail that DeleteRecords had
// already passed; Open then restarts the log empty at the checkpoint, never reusing offsets
// (Kafka's truncateFullyAndStartAt).
func TestStartCheckpointPastEnd(t *testing.T) {
	dir, _, _ := closedLog(t, smallCfg, 5)
	if err := writeStartOffsetCheckpoint(osFS{}, dir, 100); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, dir, smallCfg)
	if l.StartOffset() != 100 || l.EndOffset() != 100 {
		t.Fatalf("log [%d, %d), want [100, 100)", l.StartOffset(), l.EndOffset())
	}
	if got := mustAppend(t, l, makeBatch(t, batchSpec{}), 0); got.BaseOffset != 100 {
		t.Fatalf("append at %d", got.BaseOffset)
	}
}
