package partitionlog

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Checkpoint and index files at Open: missing (fresh: the default), unreadable now (EMFILE,
// EIO: Open fails and nothing is rewritten, so a retry finds everything as it was), and
// corrupt (the contents do not parse: rebuilt when they can be, refused when no value is
// safe). The "Hardening" issue: EMFILE on a checkpoint was taken for corruption, which
// could bring deleted records back.

// deletedPrefix builds a log on fs at /p of segments at 0, 10, 20 and 30 whose first 15
// offsets DeleteRecordsBefore removed (so segment 0 is gone and the start is in the middle
// of segment 10), with high watermark 30. It opens and closes it once more, so that Open
// has nothing left to rewrite.
func deletedPrefix(t *testing.T, fs *memFS) Config {
	t.Helper()
	cfg := Config{SegmentBytes: 500, IndexIntervalBytes: 100, FS: fs}
	l := openWith(t, "/p", cfg, Hooks{})
	appendN(t, l, 20, 2)
	if _, err := l.DeleteRecordsBefore(15); err != nil {
		t.Fatal(err)
	}
	l.SetHighWatermark(30)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fs.files("/p", logSuffix); len(got) != 3 || got[0] != "00000000000000000010.log" {
		t.Fatalf("segments %v, want 10, 20, 30", got)
	}
	if err := openWith(t, "/p", cfg, Hooks{}).Close(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// failReads makes reads of files whose names end in suffix fail with err.
func failReads(op, suffix string, err error) func(string, string) error {
	return func(o, path string) error {
		if o == op && strings.HasSuffix(path, suffix) {
			return err
		}
		return nil
	}
}

// snapshotFiles returns the contents of every file in the directory.
func snapshotFiles(fs *memFS, dir string) map[string][]byte {
	out := map[string][]byte{}
	names, _ := fs.ReadDir(dir)
	for _, n := range names {
		b, _ := readFSFile(fs, filepath.Join(dir, n))
		out[n] = b
	}
	return out
}

// changedFiles names the files that differ between two snapshots.
func changedFiles(a, b map[string][]byte) []string {
	var out []string
	for n, x := range a {
		if y, ok := b[n]; !ok || !bytes.Equal(x, y) {
			out = append(out, n)
		}
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			out = append(out, n)
		}
	}
	return out
}

// TestOpenUnreadableFails: a checkpoint, index or segment that cannot be read now fails
// Open with the I/O error (not ErrCorruptCheckpoint), changes no file, and once the fault
// is gone Open finds the log as it was: the start offset DeleteRecords set, the high
// watermark, the epochs.
func TestOpenUnreadableFails(t *testing.T) {
	tests := []struct {
		name     string
		failRead func(string, string) error
	}{
		{"EMFILE opening log-start-offset", failReads("open", startOffsetCheckpointName, errTooMany)},
		{"EIO reading log-start-offset", failReads("read", startOffsetCheckpointName, errIO)},
		{"EMFILE opening high-watermark", failReads("open", highWatermarkName, errTooMany)},
		{"EIO reading leader-epoch-checkpoint", failReads("read", epochCheckpointName, errIO)},
		{"EMFILE opening a sealed segment's index", failReads("open", "00000000000000000010"+indexSuffix, errTooMany)},
		{"EIO reading a sealed segment's time index", failReads("read", "00000000000000000010"+timeIndexSuffix, errIO)},
		{"EIO reading the last segment", failReads("read", logSuffix, errIO)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newMemFS()
			cfg := deletedPrefix(t, fs)
			before := snapshotFiles(fs, "/p")
			fs.failRead = tt.failRead
			_, err := Open("/p", cfg, Hooks{}, nil)
			var errno syscall.Errno
			if err == nil || errors.Is(err, ErrCorruptCheckpoint) || !errors.As(err, &errno) {
				t.Fatalf("Open = %v, want the I/O error", err)
			}
			fs.failRead = nil
			if n := fs.openFiles(); n != 0 {
				t.Fatalf("a failed Open left %d files open", n)
			}
			if changed := changedFiles(before, snapshotFiles(fs, "/p")); len(changed) > 0 {
				t.Fatalf("a failed Open changed %v", changed)
			}
			l := openWith(t, "/p", cfg, Hooks{})
			if l.StartOffset() != 15 || l.EndOffset() != 40 || l.HighWatermark() != 30 {
				t.Fatalf("reopened: start %d end %d hw %d, want 15 40 30", l.StartOffset(), l.EndOffset(), l.HighWatermark())
			}
		})
	}
}

// TestOpenCorruptLogStartRefused: a corrupt log-start-offset checkpoint fails Open, naming
// the file and the way out; the start offset never moves back on its own. Removing the
// file is the operator's choice to start from the first segment.
func TestOpenCorruptLogStartRefused(t *testing.T) {
	fs := newMemFS()
	cfg := deletedPrefix(t, fs)
	path := filepath.Join("/p", startOffsetCheckpointName)
	writeMemFile(t, fs, path, []byte("0\n1x\n"))
	_, err := Open("/p", cfg, Hooks{}, nil)
	if !errors.Is(err, ErrCorruptCheckpoint) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("Open = %v, want ErrCorruptCheckpoint naming %s and what to do", err, path)
	}
	if err := fs.Remove(path); err != nil {
		t.Fatal(err)
	}
	l := openWith(t, "/p", cfg, Hooks{})
	if l.StartOffset() != 10 {
		t.Fatalf("start %d after removing the checkpoint, want the first segment's 10", l.StartOffset())
	}
}

// TestOpenCorruptRebuilt: corrupt files that can be rebuilt are: the epoch checkpoint from
// the batches' epochs, the high watermark as the log start (safe: too low only delays
// consumers), and a sealed segment's indexes from its batches.
func TestOpenCorruptRebuilt(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		check func(t *testing.T, l *Log, fs *memFS, want map[string][]byte)
	}{
		{"leader-epoch-checkpoint", epochCheckpointName, func(t *testing.T, l *Log, fs *memFS, want map[string][]byte) {
			if got := snapshotFiles(fs, "/p")[epochCheckpointName]; !bytes.Equal(got, want[epochCheckpointName]) {
				t.Fatalf("epoch checkpoint rebuilt as %q, want %q", got, want[epochCheckpointName])
			}
		}},
		{"high-watermark", highWatermarkName, func(t *testing.T, l *Log, _ *memFS, _ map[string][]byte) {
			if l.HighWatermark() != l.StartOffset() {
				t.Fatalf("high watermark %d, want the log start %d", l.HighWatermark(), l.StartOffset())
			}
		}},
		{"index", "00000000000000000010" + indexSuffix, func(t *testing.T, _ *Log, fs *memFS, want map[string][]byte) {
			if got := snapshotFiles(fs, "/p")["00000000000000000010"+indexSuffix]; !bytes.Equal(got, want["00000000000000000010"+indexSuffix]) {
				t.Fatal("index not rebuilt as it was")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newMemFS()
			cfg := deletedPrefix(t, fs)
			want := snapshotFiles(fs, "/p")
			writeMemFile(t, fs, filepath.Join("/p", tt.file), []byte("0\nnot what it should be\x00\x01"))
			l := openWith(t, "/p", cfg, Hooks{})
			if l.StartOffset() != 15 || l.EndOffset() != 40 {
				t.Fatalf("start %d end %d, want 15 40", l.StartOffset(), l.EndOffset())
			}
			tt.check(t, l, fs, want)
		})
	}
}

// TestCleanerCheckpointUnreadable: a cleaner checkpoint that cannot be read now fails the
// round (the cleaner retries); a corrupt one makes everything dirty.
func TestCleanerCheckpointUnreadable(t *testing.T) {
	fs := newMemFS()
	l := openWith(t, "/p", Config{SegmentBytes: 300, IndexIntervalBytes: 100, FS: fs}, Hooks{})
	for i := range 20 {
		mustAppend(t, l, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: "k", value: "v"}}, baseTs: int64(1000 + i)}), 0)
	}
	if err := writeCleanerCheckpoint(fs, "/p", 3); err != nil {
		t.Fatal(err)
	}
	fs.failRead = failReads("open", cleanerCheckpointName, errTooMany)
	if _, err := l.Compact(time.Now(), CompactConfig{MinCleanableDirtyRatio: 0.01}); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("Compact = %v, want EMFILE", err)
	}
	fs.failRead = nil
	writeMemFile(t, fs, filepath.Join("/p", cleanerCheckpointName), []byte("junk"))
	stats, err := l.Compact(time.Now(), CompactConfig{MinCleanableDirtyRatio: 0.01})
	if err != nil || stats.SegmentsIn == 0 || stats.RecordsRemoved == 0 {
		t.Fatalf("Compact with a corrupt checkpoint: %+v, %v", stats, err)
	}
}

func writeMemFile(t *testing.T, fs *memFS, path string, b []byte) {
	t.Helper()
	if err := writeFileAtomicFS(fs, filepath.Dir(path), filepath.Base(path), b); err != nil {
		t.Fatal(err)
	}
}
