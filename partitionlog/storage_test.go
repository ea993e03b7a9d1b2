package partitionlog

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// crashWorkload appends batches to a log on fs, syncing, rolling and deleting as it goes,
// and reports through synced how many leading batches were acknowledged and then made
// durable (a returned Sync, or a roll, which syncs the old segment), and through start the
// log start offset after the last completed retention pass. It stops at the first error.
func crashWorkload(t *testing.T, fs *memFS, stored *[][]byte, synced *int, start *int64) {
	cfg := Config{SegmentBytes: 500, IndexIntervalBytes: 100, RetentionBytes: 1200, FS: fs}
	l, err := Open("/p", cfg, Hooks{}, nil)
	if err != nil {
		return
	}
	defer l.Close()
	for i := range 24 {
		b := makeBatch(t, batchSpec{records: 1 + i%3, baseTs: int64(1000 + i)})
		if _, err := l.Append(b, int32(i/8), AppendOptions{}); err != nil {
			return
		}
		*stored = append(*stored, b)
		if i%4 == 3 {
			if l.Sync() != nil {
				return
			}
			*synced = len(*stored)
		}
		if i%6 == 5 {
			if _, err := l.EnforceRetention(time.Now()); err != nil {
				return
			}
			*start = l.StartOffset()
		}
	}
}

// TestCrashAtEveryOperation crashes (keeping only synced bytes and directory entries made
// durable by a directory sync) at every mutating file operation of a workload of appends,
// syncs, rolls and retention deletions. After Open: offsets are dense, every batch synced
// before the crash is there byte for byte unless retention had deleted it, and the log
// takes appends (Kafka: recovery truncates to the last valid batch; a crashed replica
// re-syncs the rest).
func TestCrashAtEveryOperation(t *testing.T) {
	// Count the operations of an undisturbed run.
	probe := newMemFS()
	var stored [][]byte
	var synced int
	var start int64
	crashWorkload(t, probe, &stored, &synced, &start)
	total := probe.ops
	if total < 100 || synced != 24 {
		t.Fatalf("workload: %d operations, %d synced", total, synced)
	}
	for k := 1; k <= total; k++ {
		t.Run(fmt.Sprint("op", k), func(t *testing.T) {
			fs := newMemFS()
			var crashed *memFS
			var stored [][]byte
			var synced, syncedAtCrash int
			var start, startAtCrash int64
			fs.inject = func(_, _ string, n int) error {
				if n == k {
					crashed = fs.crashCloneLocked()
					syncedAtCrash, startAtCrash = synced, start
				}
				if n >= k {
					return errIO // the machine is gone: nothing after the crash happens
				}
				return nil
			}
			crashWorkload(t, fs, &stored, &synced, &start)
			if crashed == nil {
				t.Fatal("no crash")
			}
			checkRecovered(t, crashed, stored, syncedAtCrash, startAtCrash)
		})
	}
}

// checkRecovered opens the crashed filesystem and checks the log against what was appended.
func checkRecovered(t *testing.T, fs *memFS, stored [][]byte, synced int, minStart int64) {
	t.Helper()
	l := openWith(t, "/p", Config{SegmentBytes: 500, IndexIntervalBytes: 100, FS: fs}, Hooks{})
	if l.StartOffset() < minStart {
		t.Fatalf("start %d went back below %d", l.StartOffset(), minStart)
	}
	res, err := l.Read(l.StartOffset(), l.EndOffset(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	hs := decodeAll(t, res.Records)
	next := l.StartOffset()
	var pos int64
	var offsetOf []int64 // first offset of each stored batch
	var o int64
	for _, b := range stored {
		offsetOf = append(offsetOf, o)
		h, _ := parseHeader(b)
		o += int64(h.LastOffsetDelta) + 1
	}
	for _, h := range hs {
		if h.BaseOffset > next || h.lastOffset() < next {
			t.Fatalf("offsets not dense: batch at %d, expected one holding %d", h.BaseOffset, next)
		}
		i := 0
		for i < len(offsetOf) && offsetOf[i] != h.BaseOffset {
			i++
		}
		if i == len(offsetOf) || !bytes.Equal(res.Records[pos:pos+h.size()], stored[i]) {
			t.Fatalf("batch at %d differs from what was appended there", h.BaseOffset)
		}
		next = h.lastOffset() + 1
		pos += h.size()
	}
	if synced > 0 && l.EndOffset() < offsetOf[synced-1]+int64(stored[synced-1][offRecordsCount+3]) {
		t.Fatalf("end %d: lost batches synced before the crash (%d synced)", l.EndOffset(), synced)
	}
	if l.EndOffset() != next {
		t.Fatalf("end %d, read up to %d", l.EndOffset(), next)
	}
	if got := mustAppend(t, l, makeBatch(t, batchSpec{}), 9); got.BaseOffset != next {
		t.Fatalf("append after recovery at %d, want %d", got.BaseOffset, next)
	}
	if left := fs.files("/p", deletedSuffix); len(left) > 0 {
		t.Fatalf("leftovers %v", left)
	}
}

// crashCloneLocked is crashClone for use inside inject, which runs with fs.mu held.
func (fs *memFS) crashCloneLocked() *memFS {
	fs.mu.Unlock()
	defer fs.mu.Lock()
	return fs.crashClone()
}

// TestStorageErrors: a failed write or fsync fails the log (KAFKA_STORAGE_ERROR, Kafka
// takes the log directory offline): appends fail from then on, the failed batch is not
// visible, reads keep working, other logs are unaffected, and a reopen recovers.
func TestStorageErrors(t *testing.T) {
	tests := []struct {
		name   string
		inject func(string, string, int) error
		action func(l *Log) error
	}{
		{"ENOSPC writing the log", failOp("write", logSuffix, 1, errNoSpace), func(l *Log) error {
			_, err := l.Append(makeBatch(t, batchSpec{records: 5}), 0, AppendOptions{})
			return err
		}},
		{"ENOSPC writing the index", failOp("write", indexSuffix, 1, errNoSpace), func(l *Log) error {
			_, err := l.Append(makeBatch(t, batchSpec{records: 5, valueSize: 300}), 0, AppendOptions{})
			return err
		}},
		{"EIO on fsync", failOp("sync", logSuffix, 1, errIO), func(l *Log) error { return l.Sync() }},
		{"ENOSPC creating the next segment", failOp("open", logSuffix, 1, errNoSpace), func(l *Log) error {
			_, err := l.Append(makeBatch(t, batchSpec{valueSize: 600}), 0, AppendOptions{})
			return err
		}},
		{"EIO on fsync at roll", failOp("sync", logSuffix, 1, errIO), func(l *Log) error {
			_, err := l.Append(makeBatch(t, batchSpec{valueSize: 600}), 0, AppendOptions{})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newMemFS()
			cfg := Config{SegmentBytes: 1000, IndexIntervalBytes: 100, FS: fs}
			l, err := Open("/p", cfg, Hooks{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			other := openWith(t, "/q", cfg, Hooks{})
			appendN(t, l, 6, 2)
			before := readAllBytes(t, l)
			end := l.EndOffset()
			fs.inject = tt.inject
			if err := tt.action(l); !errors.Is(err, ErrStorage) {
				t.Fatalf("got %v, want ErrStorage", err)
			}
			fs.inject = nil
			if l.EndOffset() != end || !bytes.Equal(readAllBytes(t, l), before) {
				t.Fatalf("failed write became visible: end %d, want %d", l.EndOffset(), end)
			}
			if _, err := l.Append(makeBatch(t, batchSpec{}), 0, AppendOptions{}); !errors.Is(err, ErrStorage) {
				t.Fatalf("append after failure: %v, want ErrStorage", err)
			}
			if _, err := l.DeleteRecordsBefore(2); !errors.Is(err, ErrStorage) {
				t.Fatalf("DeleteRecordsBefore after failure: %v", err)
			}
			if off, _, err := l.OffsetForTimestamp(0); err != nil || off != 0 {
				t.Fatalf("lookup after failure: %d %v", off, err)
			}
			mustAppend(t, other, makeBatch(t, batchSpec{}), 0)
			l.Close()
			l2 := openWith(t, "/p", cfg, Hooks{})
			if l2.EndOffset() < end || !bytes.Equal(readAllBytes(t, l2)[:len(before)], before) {
				t.Fatalf("reopened: end %d, want at least %d with the same bytes", l2.EndOffset(), end)
			}
			mustAppend(t, l2, makeBatch(t, batchSpec{}), 0)
			checkDense(t, l2)
		})
	}
}

func checkDense(t *testing.T, l *Log) {
	t.Helper()
	next := l.StartOffset()
	for _, h := range readAll(t, l) {
		if h.BaseOffset != next {
			t.Fatalf("batch at %d, want %d", h.BaseOffset, next)
		}
		next = h.lastOffset() + 1
	}
	if next != l.EndOffset() {
		t.Fatalf("read to %d, end %d", next, l.EndOffset())
	}
}
