package partitionlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifiedLog writes a closed log of several sealed segments to a temp dir and returns it.
func verifiedLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l := openLog(t, dir, smallCfg)
	appendN(t, l, 40, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustVerify(t *testing.T, dir string, opts VerifyOptions) VerifyResult {
	t.Helper()
	res, err := Verify(dir, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

// TestVerifyClean: a log written and closed by this package verifies clean, every byte
// checked, and progress is reported (here at every batch, and once at the end).
func TestVerifyClean(t *testing.T) {
	dir := verifiedLog(t)
	var calls []VerifyProgress
	res := mustVerify(t, dir, VerifyOptions{Progress: func(p VerifyProgress) { calls = append(calls, p) }, ProgressEvery: time.Nanosecond})
	if !res.OK() || res.Batches != 40 || res.Records != 120 || res.StartOffset != 0 || res.EndOffset != 120 || res.Segments < 3 {
		t.Fatalf("Verify = %+v", res)
	}
	end := calls[len(calls)-1]
	if len(calls) < 10 || !end.Done || end.BytesChecked != end.BytesTotal || end.BytesTotal != res.Bytes {
		t.Fatalf("%d progress calls, last %+v", len(calls), end)
	}
}

// TestVerifyFindsDamage: each kind of damage is reported, naming the file and position.
func TestVerifyFindsDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string) (file string, pos int64)
		want   string
	}{
		{"flipped byte in a sealed segment", func(t *testing.T, dir string) (string, int64) {
			p := segmentPath(dir, 0, logSuffix)
			b := readFile(t, p)
			h, _ := parseHeader(b)
			b[h.size()+headerSize+5] ^= 0x40 // a record byte of the second batch
			writeFile(t, p, b)
			return p, h.size()
		}, "crc"},
		{"truncated tail", func(t *testing.T, dir string) (string, int64) {
			bases := logBases(t, dir)
			p := segmentPath(dir, bases[len(bases)-1], logSuffix)
			b := readFile(t, p)
			writeFile(t, p, b[:len(b)-7])
			h, _ := parseHeader(b)
			return p, int64(len(b)) - h.size() // the last batch's start, all batches being the same size
		}, "available"},
		{"index entry pointing inside a batch", func(t *testing.T, dir string) (string, int64) {
			p := segmentPath(dir, 0, indexSuffix)
			b := readFile(t, p)
			b[7]++ // the first entry's position
			writeFile(t, p, b)
			return p, 0
		}, "no batch starts"},
		{"time index entry with another timestamp", func(t *testing.T, dir string) (string, int64) {
			p := segmentPath(dir, 0, timeIndexSuffix)
			b := readFile(t, p)
			b[7]-- // the first entry's timestamp
			writeFile(t, p, b)
			return p, 0
		}, "which has"},
		{"missing index of a sealed segment", func(t *testing.T, dir string) (string, int64) {
			p := segmentPath(dir, 0, indexSuffix)
			os.Remove(p)
			return p, -1
		}, "missing"},
		{"missing segment (a hole in the offsets)", func(t *testing.T, dir string) (string, int64) {
			bases := logBases(t, dir)
			for _, ext := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
				os.Remove(segmentPath(dir, bases[1], ext))
			}
			return segmentPath(dir, bases[2], logSuffix), 0
		}, "are missing"},
		{"corrupt log-start checkpoint", func(t *testing.T, dir string) (string, int64) {
			p := filepath.Join(dir, startOffsetCheckpointName)
			writeFile(t, p, []byte("0\nbanana\n"))
			return p, -1
		}, "corrupt checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := verifiedLog(t)
			file, pos := tt.damage(t, dir)
			res := mustVerify(t, dir, VerifyOptions{})
			for _, p := range res.Problems {
				if p.File == file && p.Position == pos && strings.Contains(p.Message, tt.want) {
					return
				}
			}
			t.Fatalf("no problem in %s at %d mentioning %q; found %v", file, pos, tt.want, res.Problems)
		})
	}
}

// TestVerifyCompactedGaps: a compacted log's offset gaps are fine, and the rest is checked.
func TestVerifyCompactedGaps(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallCfg)
	for round := range 4 {
		for k := range 10 {
			mustAppend(t, l, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: string(rune('a' + k)), value: "v"}}, baseTs: int64(1000 + round)}), 0)
		}
	}
	if _, err := l.Compact(time.Now(), CompactConfig{MinCleanableDirtyRatio: 0.01}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if res := mustVerify(t, dir, VerifyOptions{}); !res.OK() || !res.Compacted {
		t.Fatalf("compacted log: %v (compacted %v)", res.Problems, res.Compacted)
	}
}

func logBases(t *testing.T, dir string) []int64 {
	t.Helper()
	var out []int64
	for _, p := range segmentFiles(t, dir) {
		base, _ := parseSegmentName(filepath.Base(p))
		out = append(out, base)
	}
	return out
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
