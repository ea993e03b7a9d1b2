package partitionlog

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// copyDir clones a closed partition directory, so each crash case starts from the same bytes.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// closedLog writes n batches of 3 records under cfg, closes, and returns the directory, the
// stored batches and the path of the last segment.
func closedLog(t *testing.T, cfg Config, n int) (string, [][]byte, string) {
	t.Helper()
	dir := t.TempDir()
	l := openLog(t, dir, cfg)
	stored := appendN(t, l, n, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, dir)
	return dir, stored, segs[len(segs)-1]
}

type recovered struct {
	l         *Log
	truncated int64
}

func reopen(t *testing.T, dir string, cfg Config) recovered {
	t.Helper()
	var r recovered
	hooks := Hooks{OnRecover: func(_ string, _ int, cut int64, _ time.Duration) { r.truncated = cut }}
	l, err := Open(dir, cfg, hooks, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	r.l = l
	return r
}

// TestRecoverTornTailAtEveryByte cuts the last segment at every byte of its last batch, as a
// crash mid-write would (Kafka: recovery truncates to the last valid batch).
func TestRecoverTornTailAtEveryByte(t *testing.T) {
	for _, cfg := range []Config{smallCfg, {}} {
		dir, stored, lastSeg := closedLog(t, cfg, 20)
		info, err := os.Stat(lastSeg)
		if err != nil {
			t.Fatal(err)
		}
		size := info.Size()
		lastLen := int64(len(stored[len(stored)-1]))
		for cut := size - lastLen; cut < size; cut++ {
			d := copyDir(t, dir)
			seg := filepath.Join(d, filepath.Base(lastSeg))
			if err := os.Truncate(seg, cut); err != nil {
				t.Fatal(err)
			}
			r := reopen(t, d, cfg)
			if r.l.EndOffset() != 57 || r.truncated != cut-(size-lastLen) {
				t.Fatalf("cut at %d: end %d truncated %d, want end 57 truncated %d", cut, r.l.EndOffset(), r.truncated, cut-(size-lastLen))
			}
			res, err := r.l.Read(0, 57, 1<<20)
			if err != nil || !bytes.Equal(res.Records, bytes.Join(stored[:19], nil)) {
				t.Fatalf("cut at %d: earlier batches changed (err %v)", cut, err)
			}
			if got := mustAppend(t, r.l, makeBatch(t, batchSpec{records: 2}), 0); got.BaseOffset != 57 || r.l.EndOffset() != 59 {
				t.Fatalf("cut at %d: append after recovery at %d, end %d", cut, got.BaseOffset, r.l.EndOffset())
			}
			if st, _ := os.Stat(seg); st.Size() != size-lastLen+int64(len(makeBatch(t, batchSpec{records: 2}))) {
				t.Fatalf("cut at %d: segment size %d after append", cut, st.Size())
			}
		}
	}
}

func TestRecoverTruncatesCorruption(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(t *testing.T, seg string, stored [][]byte)
		wantEnd  int64
		wantKeep int // batches kept
	}{
		{"bad crc in last batch", func(t *testing.T, seg string, stored [][]byte) {
			flipByte(t, seg, -5)
		}, 57, 19},
		{"bad crc in second to last batch truncates both", func(t *testing.T, seg string, stored [][]byte) {
			flipByte(t, seg, -int64(len(stored[19]))-5)
		}, 54, 18},
		{"garbage after last batch", func(t *testing.T, seg string, stored [][]byte) {
			appendBytes(t, seg, bytes.Repeat([]byte{0xab}, 100))
		}, 60, 20},
		{"zeros after last batch (preallocated tail)", func(t *testing.T, seg string, stored [][]byte) {
			appendBytes(t, seg, make([]byte, 4096))
		}, 60, 20},
		{"copy of a batch with a stale offset", func(t *testing.T, seg string, stored [][]byte) {
			appendBytes(t, seg, stored[19])
		}, 60, 20},
	}
	dir, stored, lastSeg := closedLog(t, Config{}, 20)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := copyDir(t, dir)
			tt.damage(t, filepath.Join(d, filepath.Base(lastSeg)), stored)
			r := reopen(t, d, Config{})
			if r.l.EndOffset() != tt.wantEnd {
				t.Fatalf("end %d, want %d", r.l.EndOffset(), tt.wantEnd)
			}
			if got := readAll(t, r.l); len(got) != tt.wantKeep {
				t.Fatalf("%d batches, want %d", len(got), tt.wantKeep)
			}
		})
	}
}

func flipByte(t *testing.T, path string, fromEnd int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[int64(len(b))+fromEnd] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, extra []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(extra); err != nil {
		t.Fatal(err)
	}
}

// TestRebuildInactiveIndexes damages the first segment's indexes, which Open keeps unless
// missing or malformed; a rebuild must reproduce them byte for byte.
func TestRebuildInactiveIndexes(t *testing.T) {
	dir, _, _ := closedLog(t, smallCfg, 40)
	idx := segmentPath(dir, 0, indexSuffix)
	tidx := segmentPath(dir, 0, timeIndexSuffix)
	wantIdx, wantTime := readFile(t, idx), readFile(t, tidx)
	if len(wantIdx) == 0 || len(wantTime) == 0 {
		t.Fatal("test needs non-empty indexes in the first segment")
	}
	garbage := bytes.Repeat([]byte{0xff}, len(wantIdx))
	tests := []struct {
		name   string
		damage func(t *testing.T, d string)
	}{
		{"missing index", func(t *testing.T, d string) { os.Remove(segmentPath(d, 0, indexSuffix)) }},
		{"missing time index", func(t *testing.T, d string) { os.Remove(segmentPath(d, 0, timeIndexSuffix)) }},
		{"garbage index", func(t *testing.T, d string) { os.WriteFile(segmentPath(d, 0, indexSuffix), garbage, 0o644) }},
		{"index of odd size", func(t *testing.T, d string) {
			os.WriteFile(segmentPath(d, 0, indexSuffix), wantIdx[:len(wantIdx)-3], 0o644)
		}},
		{"index pointing at the wrong batch", func(t *testing.T, d string) {
			b := bytes.Clone(wantIdx)
			b[len(b)-5]++ // last entry's relative offset
			os.WriteFile(segmentPath(d, 0, indexSuffix), b, 0o644)
		}},
		{"garbage time index", func(t *testing.T, d string) { os.WriteFile(segmentPath(d, 0, timeIndexSuffix), garbage[:12], 0o644) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := copyDir(t, dir)
			tt.damage(t, d)
			r := reopen(t, d, smallCfg)
			if !bytes.Equal(readFile(t, segmentPath(d, 0, indexSuffix)), wantIdx) ||
				!bytes.Equal(readFile(t, segmentPath(d, 0, timeIndexSuffix)), wantTime) {
				t.Fatal("rebuilt indexes differ from the originals")
			}
			if res, err := r.l.Read(31, 120, 1); err != nil || decodeAll(t, res.Records)[0].BaseOffset != 30 {
				t.Fatalf("read via rebuilt index: %v", err)
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenRemovesLeftovers(t *testing.T) {
	dir, _, _ := closedLog(t, Config{}, 2)
	for _, name := range []string{"leader-epoch-checkpoint.tmp", "00000000000000000099.index"} {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
	}
	reopen(t, dir, Config{})
	for _, name := range []string{"leader-epoch-checkpoint.tmp", "00000000000000000099.index"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s not removed", name)
		}
	}
}

// TestScanVerifiedPrefix is the fuzz property on a fixed input: a log followed by junk scans
// back to exactly the log.
func TestScanVerifiedPrefix(t *testing.T) {
	good := batches(t, batchSpec{records: 2}, batchSpec{records: 3})
	putBaseOffset(good[len(makeBatch(t, batchSpec{records: 2})):], 2)
	n, err := scanVerified(bytes.NewReader(append(bytes.Clone(good), 9, 9, 9)), int64(len(good)+3), 0, func(batchHeader, int64) {})
	if n != int64(len(good)) || err == nil {
		t.Fatalf("scan = (%d, %v), want (%d, error)", n, err, len(good))
	}
	var _ io.ReaderAt = bytes.NewReader(nil)
}
