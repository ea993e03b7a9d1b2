package partitionlog

import (
	"bytes"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSnapshotRoundTrip: encodeSnapshot and decodeSnapshot agree on every field, with the
// retained batches kept (sequences wrapping past MaxInt32 too), and a flipped byte fails
// the CRC (Kafka's ProducerStateManager snapshot layout, version 1).
func TestSnapshotRoundTrip(t *testing.T) {
	in := producerMap{
		3: {epoch: 2, coordinatorEpoch: -1, lastTimestamp: 1700, batches: []batchMeta{
			{firstSeq: 0, lastSeq: 4, baseOffset: 10, lastOffset: 14},
			{firstSeq: 5, lastSeq: 5, baseOffset: 20, lastOffset: 20},
		}},
		7: {epoch: 0, coordinatorEpoch: 9, lastTimestamp: -1, txnOngoing: true, txnFirst: 33},
		9: {epoch: 5, coordinatorEpoch: 1, lastTimestamp: 5, batches: []batchMeta{
			{firstSeq: math.MaxInt32 - 1, lastSeq: 1, baseOffset: 40, lastOffset: 43},
		}},
	}
	b := encodeSnapshot(in)
	out, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("decoded %+v\nwant %+v", out, in)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		if _, err := decodeSnapshot(c); err == nil {
			t.Fatalf("byte %d flipped: decoded without error", i)
		}
	}
	if _, err := decodeSnapshot(b[:len(b)-1]); err == nil {
		t.Fatal("a torn snapshot decoded")
	}
}

// txnWorkload appends n random steps to l: transactional batches of four producers (ids
// from pids+1, new to the log),
// idempotent and plain batches, COMMIT and ABORT markers (some at a bumped epoch, as
// KIP-890 writes them), and returns which producers end with a transaction open.
func txnWorkload(t testing.TB, l *Log, rng *rand.Rand, n int, pids int64) map[int64]bool {
	t.Helper()
	open := map[int64]bool{}
	seqs, epochs := map[int64]int32{}, map[int64]int16{}
	for step := range n {
		pid := pids + int64(1+rng.IntN(4))
		switch op := rng.IntN(10); {
		case op < 5:
			k := 1 + rng.IntN(3)
			mustAppendOpts(t, l, makeBatch(t, batchSpec{producerID: pid, epoch: epochs[pid], seq: seqs[pid], txn: true, records: k, baseTs: int64(step)}),
				AppendOptions{TransactionalID: "tx"})
			seqs[pid] += int32(k)
			open[pid] = true
		case op < 7 && !open[pid]:
			spec := batchSpec{records: 1 + rng.IntN(2), baseTs: int64(step)}
			if rng.IntN(2) == 0 {
				spec.producerID, spec.epoch, spec.seq = pid+10, epochs[pid+10], seqs[pid+10]
				seqs[pid+10] += int32(spec.records)
			}
			mustAppendOpts(t, l, makeBatch(t, spec), AppendOptions{})
		case op >= 7:
			if rng.IntN(3) == 0 {
				epochs[pid]++
				seqs[pid] = 0
			}
			mustAppendOpts(t, l, MarkerBatch(pid, epochs[pid], rng.IntN(2) == 0, int32(step/50), int64(step)), AppendOptions{FromCoordinator: true})
			open[pid] = false
		}
	}
	return open
}

// recoveredState is what Open rebuilds from batch headers or a snapshot.
type recoveredState struct {
	producers producerMap
	ongoing   map[int64]int64
	aborted   []AbortedTxn
	unrepl    []completedTxn
	epochs    epochCache
	lso       int64
}

func stateOf(l *Log) recoveredState {
	l.writer.Lock()
	defer l.writer.Unlock()
	l.mu.Lock()
	s := recoveredState{producers: cloneProducers(l.writer.producers), ongoing: l.mu.txns.ongoing, aborted: l.mu.txns.aborted,
		unrepl: l.mu.txns.unreplicated, epochs: l.mu.epochs}
	l.mu.Unlock()
	s.lso = l.LastStableOffset()
	return s
}

func cloneProducers(m producerMap) producerMap {
	out := producerMap{}
	for k, v := range m {
		v.batches = slices.Clip(v.batches)
		if len(v.batches) == 0 {
			v.batches = nil
		}
		out[k] = v
	}
	return out
}

// openCounting opens dir and reports whether producer state came from a snapshot, read
// from the debug log.
func openCounting(t *testing.T, dir string, cfg Config) (*Log, bool) {
	t.Helper()
	var buf bytes.Buffer
	l, err := Open(dir, cfg, Hooks{}, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return l, strings.Contains(buf.String(), "producer state loaded from a snapshot")
}

func producerSnapshots(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+snapshotSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func removeAll(t *testing.T, paths []string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSnapshotRecoveryEqualsScan: producer state, ongoing transactions with their first
// offsets, aborted transactions, unreplicated completions, epochs and the LSO that Open
// rebuilds from a snapshot and the batches after it equal what it rebuilds from every
// batch header, whichever snapshot it uses: the one Close wrote at the end, the one the
// last roll wrote (the end's is above the high watermark, or corrupt), or none.
func TestSnapshotRecoveryEqualsScan(t *testing.T) {
	cfg := Config{SegmentBytes: 900, IndexIntervalBytes: 128}
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 7))
		dir := t.TempDir()
		l := openLog(t, dir, cfg)
		open := txnWorkload(t, l, rng, 200+rng.IntN(200), 0)
		end := l.EndOffset()
		hw := end
		if seed%3 == 2 { // the end's snapshot is above the high watermark
			hw = end - 1 - int64(rng.IntN(5))
		}
		l.SetHighWatermark(hw)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		snaps := producerSnapshots(t, dir)
		if len(snaps) < 2 {
			t.Fatalf("seed %d: %d snapshots after rolls and Close", seed, len(snaps))
		}
		if seed%3 == 1 { // the end's snapshot is corrupt
			last := snaps[len(snaps)-1]
			b, _ := os.ReadFile(last)
			b[len(b)/2] ^= 1
			os.WriteFile(last, b, 0o644)
		}
		scanDir := copyDir(t, dir)
		removeAll(t, producerSnapshots(t, scanDir))

		fromSnap, used := openCounting(t, dir, cfg)
		if !used {
			t.Fatalf("seed %d: Open did not use a snapshot", seed)
		}
		fromScan, usedScan := openCounting(t, scanDir, cfg)
		if usedScan {
			t.Fatalf("seed %d: Open used a snapshot that was removed", seed)
		}
		got, want := stateOf(fromSnap), stateOf(fromScan)
		fromSnap.Close()
		fromScan.Close()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seed %d: from a snapshot:\n%+v\nfrom every header:\n%+v", seed, got, want)
		}
		for pid, isOpen := range open {
			if _, ongoing := want.ongoing[pid]; ongoing != isOpen {
				t.Fatalf("seed %d: producer %d ongoing %v, the workload left it open %v", seed, pid, ongoing, isOpen)
			}
		}
		for _, p := range producerSnapshots(t, dir) { // Open removed the corrupt one; Close wrote anew
			b, _ := os.ReadFile(p)
			if _, err := decodeSnapshot(b); err != nil {
				t.Fatalf("seed %d: a corrupt snapshot stayed: %v", seed, err)
			}
		}
	}
}

// TestSnapshotAfterCrashAndTruncation: a snapshot past the recovered end (the tail it
// described was torn off by a crash) or past a TruncateTo is never used for the batches
// written afterwards at the same offsets.
func TestSnapshotAfterCrashAndTruncation(t *testing.T) {
	cfg := Config{SegmentBytes: 900, IndexIntervalBytes: 128}
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	l := openLog(t, dir, cfg)
	txnWorkload(t, l, rng, 150, 0)
	l.SetHighWatermark(l.EndOffset())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash tore the tail: cut the last segment's .log in half.
	logs, _ := filepath.Glob(filepath.Join(dir, "*"+logSuffix))
	last := logs[len(logs)-1]
	fi, _ := os.Stat(last)
	if err := os.Truncate(last, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, cfg)
	for _, p := range producerSnapshots(t, dir) {
		if off, _ := parseSnapshotPath(p); off > l.EndOffset() {
			t.Fatalf("snapshot %s past the recovered end %d stayed", p, l.EndOffset())
		}
	}
	txnWorkload(t, l, rng, 60, 100)
	if err := l.TruncateTo(l.EndOffset() - 3); err != nil {
		t.Fatal(err)
	}
	for _, p := range producerSnapshots(t, dir) {
		if off, _ := parseSnapshotPath(p); off > l.EndOffset() {
			t.Fatalf("snapshot %s past the truncated end %d stayed", p, l.EndOffset())
		}
	}
	txnWorkload(t, l, rng, 60, 200)
	l.SetHighWatermark(l.EndOffset())
	l.Close()
	scanDir := copyDir(t, dir)
	removeAll(t, producerSnapshots(t, scanDir))
	a, _ := openCounting(t, dir, cfg)
	b, _ := openCounting(t, scanDir, cfg)
	defer a.Close()
	defer b.Close()
	if got, want := stateOf(a), stateOf(b); !reflect.DeepEqual(got, want) {
		t.Fatalf("from a snapshot:\n%+v\nfrom every header:\n%+v", got, want)
	}
}

func parseSnapshotPath(p string) (int64, bool) {
	offs, err := listSnapshots(osFS{}, filepath.Dir(p))
	if err != nil {
		return 0, false
	}
	for _, off := range offs {
		if segmentPath(filepath.Dir(p), off, snapshotSuffix) == p {
			return off, true
		}
	}
	return 0, false
}
