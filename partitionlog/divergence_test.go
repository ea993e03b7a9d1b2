package partitionlog

import (
	"bytes"
	"testing"
)

// run is n one-record batches appended under leader epoch epoch.
type run struct {
	epoch int32
	n     int
}

func logOfRuns(t *testing.T, runs ...run) *Log {
	t.Helper()
	l := openLog(t, t.TempDir(), Config{})
	for _, r := range runs {
		for range r.n {
			mustAppend(t, l, makeBatch(t, batchSpec{}), r.epoch)
		}
	}
	return l
}

// TestDivergencePoint drives a follower through the fetcher's truncation against a leader
// as Kafka does: ask the leader where the follower's latest epoch ends
// (OffsetForLeaderEpoch, answered by the leader's EndOffsetForEpoch), truncate to
// DivergencePoint, and ask again until nothing is cut (KIP-279's loop). The follower then
// holds a prefix of the leader's log, and fetching the rest makes the two identical.
func TestDivergencePoint(t *testing.T) {
	tests := []struct {
		name             string
		leader, follower []run
		followerHW       int64
		first            int64 // DivergencePoint of the first round
		final            int64 // follower's end after the loop
	}{
		{
			// KIP-101 scenario 1: truncating to the high watermark on restart would lose
			// m2, which the leader has; the epoch answer keeps it.
			name:   "KIP-101 scenario 1: no truncation below the leader's epoch end",
			leader: []run{{0, 2}}, follower: []run{{0, 2}}, followerHW: 1,
			first: 2, final: 2,
		},
		{
			// KIP-101 scenario 2: after both crash, B leads epoch 1 from offset 1 and
			// writes m3; A, back as follower, must drop its m2 at offset 1.
			name:   "KIP-101 scenario 2: replicas diverged after multiple hard failures",
			leader: []run{{0, 1}, {1, 1}}, follower: []run{{0, 2}},
			first: 1, final: 1,
		},
		{
			name:   "old leader lost its uncommitted tail",
			leader: []run{{0, 5}, {2, 3}}, follower: []run{{0, 5}, {1, 5}},
			first: 5, final: 5,
		},
		{
			name:   "follower behind in the leader's epoch: nothing to cut",
			leader: []run{{0, 8}}, follower: []run{{0, 4}},
			first: 4, final: 4,
		},
		{
			name:   "follower ahead in an older epoch",
			leader: []run{{0, 8}, {1, 4}}, follower: []run{{0, 12}},
			first: 8, final: 8,
		},
		{
			// KIP-279: the follower led epoch 3 briefly; the leader answers epoch 2, which
			// the follower never saw, so it cuts at its own end of epoch 1.
			name:   "KIP-279: two leaders with divergent epochs",
			leader: []run{{0, 3}, {1, 3}, {2, 2}, {4, 3}}, follower: []run{{0, 3}, {1, 3}, {3, 4}},
			first: 6, final: 6,
		},
		{
			// KIP-279's motivating case: the follower missed epoch 1 entirely, so its
			// end of epoch 0 (10) is past the leader's (8); only a second round finds 8.
			name:   "KIP-279: follower missed an epoch, two rounds",
			leader: []run{{0, 8}, {1, 7}, {3, 5}}, follower: []run{{0, 10}, {2, 10}},
			first: 10, final: 8,
		},
		{
			name:   "follower's history starts above the leader's answer",
			leader: []run{{1, 3}, {3, 4}}, follower: []run{{2, 5}},
			first: 0, final: 0,
		},
		{
			// No epoch history (batches written without a leader epoch): the leader
			// answers (-1, -1) and the pre-KIP-101 rule applies, truncate to the high
			// watermark.
			name:   "no epoch history: truncate to the high watermark",
			leader: []run{{-1, 5}}, follower: []run{{-1, 5}}, followerHW: 3,
			first: 3, final: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leader, f := logOfRuns(t, tc.leader...), logOfRuns(t, tc.follower...)
			f.SetHighWatermark(tc.followerHW)
			for round := 0; ; round++ {
				if round > 10 {
					t.Fatal("truncation does not converge")
				}
				epoch, end := leader.EndOffsetForEpoch(f.LatestEpoch())
				p := f.DivergencePoint(epoch, end)
				if round == 0 && p != tc.first {
					t.Fatalf("first round: leader answered (%d, %d), point %d, want %d", epoch, end, p, tc.first)
				}
				if p > f.EndOffset() {
					t.Fatalf("point %d above the log end %d", p, f.EndOffset())
				}
				if p == f.EndOffset() {
					break
				}
				if err := f.TruncateTo(p); err != nil {
					t.Fatal(err)
				}
				if _, ok := f.EpochStartOffset(f.LatestEpoch()); f.LatestEpoch() >= 0 && !ok {
					t.Fatal("latest epoch missing from the history after truncation")
				}
			}
			if f.EndOffset() != tc.final {
				t.Fatalf("after truncation the follower ends at %d, want %d", f.EndOffset(), tc.final)
			}
			if f.HighWatermark() > f.EndOffset() {
				t.Fatalf("high watermark %d above end %d", f.HighWatermark(), f.EndOffset())
			}
			all := readFrom(t, leader, 0)
			if got := readFrom(t, f, 0); !bytes.HasPrefix(all, got) {
				t.Fatal("follower is not a prefix of the leader after truncation")
			}
			replicate(t, leader, f, 1<<20, false)
			if !bytes.Equal(readFrom(t, f, 0), all) || f.LatestEpoch() != leader.LatestEpoch() {
				t.Fatal("follower differs from the leader after catching up")
			}
		})
	}
}

// TestDivergencePointAnswers checks the rules one answer at a time, including those a
// leader of another version may send (KIP-101 without KIP-279: no epoch in the answer).
func TestDivergencePointAnswers(t *testing.T) {
	f := logOfRuns(t, run{1, 4}, run{3, 4}, run{5, 4}) // [1@0, 3@4, 5@8], end 12
	f.SetHighWatermark(6)
	for _, tc := range []struct {
		name  string
		epoch int32
		end   int64
		want  int64
	}{
		{"same epoch, leader ahead", 5, 20, 12},
		{"same epoch, leader behind", 5, 10, 10},
		{"older epoch the follower has", 3, 7, 7},
		{"older epoch, follower's end lower", 3, 9, 8},
		{"epoch the follower lacks: its end of the one below", 4, 11, 8},
		{"epoch below the follower's history", 0, 2, 0},
		{"undefined epoch (pre-KIP-279 leader)", -1, 9, 9},
		{"undefined epoch past the end", -1, 30, 12},
		{"undefined answer: high watermark", -1, -1, 6},
	} {
		if got := f.DivergencePoint(tc.epoch, tc.end); got != tc.want {
			t.Errorf("%s: DivergencePoint(%d, %d) = %d, want %d", tc.name, tc.epoch, tc.end, got, tc.want)
		}
	}
	if e := f.LatestEpoch(); e != 5 {
		t.Fatalf("LatestEpoch %d", e)
	}
	if s, ok := f.EpochStartOffset(3); !ok || s != 4 {
		t.Fatalf("EpochStartOffset(3) = %d, %v", s, ok)
	}
	if _, ok := f.EpochStartOffset(2); ok {
		t.Fatal("EpochStartOffset(2) found")
	}
	if e := logOfRuns(t).LatestEpoch(); e != -1 {
		t.Fatalf("empty log: LatestEpoch %d", e)
	}
}
