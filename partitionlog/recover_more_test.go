package partitionlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRebuildAnySegmentIndexes: Kafka's index files carry no checksum and are rebuilt from
// the .log when missing or malformed, for every segment; lookups must answer the same.
func TestRebuildAnySegmentIndexes(t *testing.T) {
	dir, _, _ := closedLog(t, smallCfg, 40)
	ref := reopen(t, copyDir(t, dir), smallCfg).l
	bases := allBases(ref)
	for _, base := range bases {
		for _, damage := range []struct {
			name string
			do   func(d string)
		}{
			{"deleted", func(d string) {
				os.Remove(segmentPath(d, base, indexSuffix))
				os.Remove(segmentPath(d, base, timeIndexSuffix))
			}},
			{"garbage", func(d string) {
				os.WriteFile(segmentPath(d, base, indexSuffix), bytes.Repeat([]byte{0x7f}, 24), 0o644)
				os.WriteFile(segmentPath(d, base, timeIndexSuffix), bytes.Repeat([]byte{0x7f}, 36), 0o644)
			}},
		} {
			t.Run(damage.name+"/"+segmentPath("", base, ""), func(t *testing.T) {
				d := copyDir(t, dir)
				damage.do(d)
				l := reopen(t, d, smallCfg).l
				for off := int64(0); off < 120; off += 7 {
					want, _ := ref.Read(off, 120, 300)
					got, err := l.Read(off, 120, 300)
					if err != nil || !bytes.Equal(got.Records, want.Records) {
						t.Fatalf("Read(%d) differs after rebuild: %v", off, err)
					}
				}
				for ts := int64(990); ts < 1400; ts += 13 {
					wo, wt, _ := ref.OffsetForTimestamp(ts)
					go2, gt, err := l.OffsetForTimestamp(ts)
					if err != nil || wo != go2 || wt != gt {
						t.Fatalf("OffsetForTimestamp(%d) = (%d, %d), want (%d, %d)", ts, go2, gt, wo, wt)
					}
				}
			})
		}
	}
}

// TestOpenResolvesHalfFinishedWork: a crash during a roll leaves an empty or header-less
// new segment; a crash during retention leaves *.deleted files. Open repairs both.
func TestOpenResolvesHalfFinishedWork(t *testing.T) {
	tests := []struct {
		name   string
		damage func(d string)
	}{
		{"empty new segment", func(d string) { os.WriteFile(segmentPath(d, 60, logSuffix), nil, 0o644) }},
		{"header-less new segment", func(d string) { os.WriteFile(segmentPath(d, 60, logSuffix), []byte{0, 0, 0, 1, 2}, 0o644) }},
		{"new segment without indexes", func(d string) {
			os.WriteFile(segmentPath(d, 60, logSuffix), nil, 0o644)
			os.Remove(segmentPath(d, 60, indexSuffix))
		}},
		{"leftover deleted files", func(d string) {
			for _, ext := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
				os.WriteFile(segmentPath(d, 999, ext)+deletedSuffix, []byte("old"), 0o644)
			}
		}},
	}
	dir, stored, _ := closedLog(t, Config{}, 20)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := copyDir(t, dir)
			tt.damage(d)
			l := reopen(t, d, Config{}).l
			if l.EndOffset() != 60 || !bytes.Equal(readAllBytes(t, l), bytes.Join(stored, nil)) {
				t.Fatalf("end %d, want 60 and the same batches", l.EndOffset())
			}
			if got := mustAppend(t, l, makeBatch(t, batchSpec{}), 0); got.BaseOffset != 60 {
				t.Fatalf("append at %d", got.BaseOffset)
			}
			if left, _ := filepath.Glob(filepath.Join(d, "*"+deletedSuffix)); len(left) > 0 {
				t.Fatalf("leftovers %v", left)
			}
		})
	}
}

// TestRecoverProgress: long recoveries report progress, at most every 500ms of the clock.
func TestRecoverProgress(t *testing.T) {
	dir, _, _ := closedLog(t, smallCfg, 40)
	clock := newClock()
	cfg := smallCfg
	cfg.Now = func() time.Time { clock.advance(100 * time.Millisecond); return clock.now() }
	var calls []int64
	var total int64
	reportedAt := []time.Time{}
	hooks := Hooks{OnRecoverProgress: func(_ string, checked, all int64) {
		calls, total = append(calls, checked), all
		reportedAt = append(reportedAt, clock.now())
	}}
	openWith(t, dir, cfg, hooks)
	if len(calls) < 2 || total != 2*dirLogBytes(t, dir) {
		t.Fatalf("%d progress calls, total %d (log bytes %d)", len(calls), total, dirLogBytes(t, dir))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i] < calls[i-1] || calls[i] > total || reportedAt[i].Sub(reportedAt[i-1]) < 500*time.Millisecond {
			t.Fatalf("progress %v at %v", calls, reportedAt)
		}
	}
}
