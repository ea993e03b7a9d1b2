package partitionlog

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEpochCheckpointAndEndOffsetForEpoch(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{})
	mustAppend(t, l, makeBatch(t, batchSpec{records: 3}), 1) // epoch 1: 0..2
	mustAppend(t, l, makeBatch(t, batchSpec{records: 2}), 1) // 3..4
	mustAppend(t, l, makeBatch(t, batchSpec{records: 2}), 3) // epoch 3: 5..6
	mustAppend(t, l, makeBatch(t, batchSpec{records: 1}), 5) // epoch 5: 7
	if got, want := string(readFile(t, filepath.Join(dir, epochCheckpointName))), "0\n3\n1 0\n3 5\n5 7\n"; got != want {
		t.Fatalf("checkpoint %q, want %q", got, want)
	}
	if hs := readAll(t, l); hs[0].LeaderEpoch != 1 || hs[2].LeaderEpoch != 3 {
		t.Fatalf("batches not stamped with the leader epoch: %+v", hs)
	}
	check := func(l *Log) {
		t.Helper()
		tests := []struct {
			epoch     int32
			wantEpoch int32
			wantEnd   int64
		}{
			{5, 5, 8}, // latest: the log end offset
			{3, 3, 7}, // ends where epoch 5 starts
			{4, 3, 7}, // unknown epoch: largest below it (KIP-279)
			{1, 1, 5},
			{0, 0, 0},   // below the first: Kafka answers (requested, first start)
			{6, -1, -1}, // above the latest: undefined, as Kafka
			{-1, -1, -1},
		}
		for _, tt := range tests {
			if e, off := l.EndOffsetForEpoch(tt.epoch); e != tt.wantEpoch || off != tt.wantEnd {
				t.Errorf("EndOffsetForEpoch(%d) = (%d, %d), want (%d, %d)", tt.epoch, e, off, tt.wantEpoch, tt.wantEnd)
			}
		}
	}
	check(l)
	l.Close()
	check(openLog(t, dir, Config{}))

	// Without the checkpoint the history is rebuilt from the batch headers.
	os.Remove(filepath.Join(dir, epochCheckpointName))
	check(openLog(t, dir, Config{}))
}

func TestParseEpochCheckpointRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "1\n0\n", "0\n2\n1 0\n", "0\n1\nx y\n", "0\n2\n3 5\n1 9\n"} {
		if _, err := parseEpochCheckpoint([]byte(in)); err == nil {
			t.Errorf("parseEpochCheckpoint(%q): no error", in)
		}
	}
}
