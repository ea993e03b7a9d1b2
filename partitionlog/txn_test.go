package partitionlog

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMarkerBatchRoundTrip: the markers MarkerBatch builds are what parseMarker reads, and
// a log takes them from a coordinator (Kafka's EndTransactionMarker layout).
func TestMarkerBatchRoundTrip(t *testing.T) {
	for _, commit := range []bool{true, false} {
		b := MarkerBatch(7, 3, commit, 42, 1000)
		h, err := decodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseMarker(b, h)
		if err != nil || !m.known || m.commit != commit || m.coordinatorEpoch != 42 {
			t.Fatalf("commit=%v: parsed %+v, %v", commit, m, err)
		}
		l := openLog(t, t.TempDir(), Config{})
		if _, err := l.Append(b, 0, AppendOptions{FromCoordinator: true}); err != nil {
			t.Fatalf("append marker: %v", err)
		}
	}
}

// TestTransactionRules: a producer's plain batch inside its open transaction is refused
// (INVALID_TXN_STATE), a marker of an older epoch is refused (INVALID_PRODUCER_EPOCH), and
// an abort is indexed and invisible below the LSO until the marker is replicated (KIP-98).
func TestTransactionRules(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	opts := AppendOptions{TransactionalID: "tx"}
	mustAppendOpts(t, l, makeBatch(t, batchSpec{producerID: 5, epoch: 1, seq: 0, txn: true, records: 3}), opts)
	if _, err := l.Append(makeBatch(t, batchSpec{producerID: 5, epoch: 1, seq: 3}), 0, AppendOptions{}); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("plain batch inside a transaction: %v, want ErrInvalidTxnState", err)
	}
	l.SetHighWatermark(l.EndOffset())
	if got := l.LastStableOffset(); got != 0 {
		t.Fatalf("LSO with a transaction open at 0: %d", got)
	}
	if _, err := l.Append(MarkerBatch(5, 0, false, 0, 1), 0, AppendOptions{FromCoordinator: true}); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("marker of an older epoch: %v", err)
	}
	mustAppendOpts(t, l, MarkerBatch(5, 1, false, 0, 1), AppendOptions{FromCoordinator: true})
	if got := l.LastStableOffset(); got != 0 {
		t.Fatalf("LSO before the abort marker is replicated: %d, want 0", got)
	}
	l.SetHighWatermark(l.EndOffset())
	if got := l.LastStableOffset(); got != 4 {
		t.Fatalf("LSO after: %d, want 4", got)
	}
	want := []AbortedTxn{{ProducerID: 5, FirstOffset: 0, LastOffset: 3, LastStableOffset: 4}}
	if got := l.AbortedTransactions(0, 4); !slices.Equal(got, want) {
		t.Fatalf("aborted: %+v, want %+v", got, want)
	}
	// KIP-890: the next transaction at a bumped epoch starts at sequence 0.
	mustAppendOpts(t, l, makeBatch(t, batchSpec{producerID: 5, epoch: 2, seq: 0, txn: true}), opts)
}

func mustAppendOpts(t testing.TB, l *Log, b []byte, opts AppendOptions) AppendResult {
	t.Helper()
	res, err := l.Append(b, 0, opts)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

// txnModel is the naive model of a partition's transactions: every transaction with its
// first offset and its marker's (-1 while open), in order of their first batch.
type txnModel struct {
	txns []modelTxn
	open map[int64]int // producer id -> index in txns
}

type modelTxn struct {
	pid         int64
	first, last int64 // last -1 while ongoing
	aborted     bool
}

func (m *txnModel) data(pid, offset int64) {
	if _, ok := m.open[pid]; !ok {
		m.open[pid] = len(m.txns)
		m.txns = append(m.txns, modelTxn{pid: pid, first: offset, last: -1})
	}
}

func (m *txnModel) end(pid, offset int64, abort bool) {
	if i, ok := m.open[pid]; ok {
		m.txns[i].last, m.txns[i].aborted = offset, abort
		delete(m.open, pid)
	}
}

// lso is min(hw, the first offset of every transaction open or whose marker is at or past hw).
func (m *txnModel) lso(hw int64) int64 {
	out := hw
	for _, x := range m.txns {
		if x.last < 0 || x.last >= hw {
			out = min(out, x.first)
		}
	}
	return out
}

// aborted lists the aborted transactions overlapping [from, upper), by marker.
func (m *txnModel) aborted(from, upper int64) [][3]int64 {
	var out [][3]int64
	for _, x := range m.txns {
		if x.aborted && x.last >= from && x.first < upper {
			out = append(out, [3]int64{x.pid, x.first, x.last})
		}
	}
	slices.SortFunc(out, func(a, b [3]int64) int { return int(a[2] - b[2]) })
	return out
}

func (m *txnModel) truncate(end int64) {
	kept := m.txns[:0]
	m.open = map[int64]int{}
	for _, x := range m.txns {
		switch {
		case x.first >= end:
			continue
		case x.last >= end:
			x.last, x.aborted = -1, false
		}
		if x.last < 0 {
			m.open[x.pid] = len(kept)
		}
		kept = append(kept, x)
	}
	m.txns = kept
}

func trimmed(as []AbortedTxn) [][3]int64 {
	var out [][3]int64
	for _, a := range as {
		out = append(out, [3]int64{a.ProducerID, a.FirstOffset, a.LastOffset})
	}
	return out
}

// TestTransactionsAgainstModel is a property test: random transactional,
// idempotent and plain writes, COMMIT and ABORT markers, high-watermark moves, reopens
// and truncations, after each of which the LSO and the aborted transactions a fetch sees
// match the naive model, and the .txnindex files hold the aborted transactions.
func TestTransactionsAgainstModel(t *testing.T) {
	abortsSeen := 0
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		dir := t.TempDir()
		cfg := Config{SegmentBytes: 600, IndexIntervalBytes: 64}
		l := openLog(t, dir, cfg)
		m := &txnModel{open: map[int64]int{}}
		seqs := map[int64]int32{}
		epochs := map[int64]int16{}
		hw := int64(0)
		for step := range 300 {
			pid := int64(1 + rng.IntN(4))
			_, open := m.open[pid]
			switch op := rng.IntN(12); {
			case op < 5: // transactional data
				n := 1 + rng.IntN(3)
				b := makeBatch(t, batchSpec{producerID: pid, epoch: epochs[pid], seq: seqs[pid], txn: true, records: n})
				res := mustAppendOpts(t, l, b, AppendOptions{TransactionalID: "tx"})
				seqs[pid] += int32(n)
				m.data(pid, res.BaseOffset)
			case op < 7 && !open: // plain batches, idempotent or not
				spec := batchSpec{records: 1 + rng.IntN(2)}
				if rng.IntN(2) == 0 {
					spec.producerID, spec.epoch, spec.seq = pid, epochs[pid], seqs[pid]
					seqs[pid] += int32(spec.records)
				}
				mustAppendOpts(t, l, makeBatch(t, spec), AppendOptions{})
			case op < 10: // a marker; with a bumped epoch sometimes (KIP-890)
				abort := rng.IntN(2) == 0
				if rng.IntN(3) == 0 {
					epochs[pid]++
					seqs[pid] = 0
				}
				res := mustAppendOpts(t, l, MarkerBatch(pid, epochs[pid], !abort, 0, int64(step)), AppendOptions{FromCoordinator: true})
				m.end(pid, res.BaseOffset, abort)
			case op == 10: // reopen
				l.Close()
				l = openLog(t, dir, cfg)
				hw = l.HighWatermark()
			default: // truncate a little
				end := l.EndOffset()
				to := max(end-int64(rng.IntN(4)), l.StartOffset())
				if err := l.TruncateTo(to); err != nil {
					t.Fatal(err)
				}
				to = l.EndOffset() // whole batches go
				m.truncate(to)
				hw = min(hw, to)
				for p := range seqs { // the producers' view after a truncation: restart them
					epochs[p]++
					seqs[p] = 0
				}
			}
			if rng.IntN(3) == 0 {
				hw = hw + int64(rng.IntN(int(l.EndOffset()-hw)+1))
				l.SetHighWatermark(hw)
			}
			hw = l.HighWatermark()
			if got, want := l.LastStableOffset(), m.lso(hw); got != want {
				t.Fatalf("seed %d step %d: LSO %d, model %d (hw %d)", seed, step, got, want, hw)
			}
			from := int64(rng.IntN(int(l.EndOffset() + 1)))
			upper := from + int64(rng.IntN(int(l.EndOffset()-from)+1))
			if got, want := trimmed(l.AbortedTransactions(from, upper)), m.aborted(from, upper); !slices.Equal(got, want) {
				t.Fatalf("seed %d step %d: aborted in [%d, %d): %v, model %v", seed, step, from, upper, got, want)
			}
		}
		l.Close()
		if got, want := trimmed(readTxnIndexFiles(t, dir)), m.aborted(0, math.MaxInt64); !slices.Equal(got, want) {
			t.Fatalf("seed %d: .txnindex files hold %v, model %v", seed, got, want)
		}
		abortsSeen += len(m.aborted(0, math.MaxInt64))
	}
	if abortsSeen < 50 {
		t.Fatalf("only %d aborted transactions in all: the workload does not test the index", abortsSeen)
	}
}

// readTxnIndexFiles concatenates the entries of dir's .txnindex files in segment order.
func readTxnIndexFiles(t *testing.T, dir string) []AbortedTxn {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []AbortedTxn
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), txnIndexSuffix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		es, err := decodeTxnIndex(b)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out = append(out, es...)
	}
	return out
}

// TestReadNextOffset: Read and ReadSections say where the batches they return end, which
// bounds the aborted transactions a fetch sends.
func TestReadNextOffset(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 300})
	for range 10 {
		mustAppend(t, l, makeBatch(t, batchSpec{records: 3}), 0)
	}
	for from := int64(0); from < 30; from += 4 {
		res, err := l.Read(from, 30, 150)
		if err != nil {
			t.Fatal(err)
		}
		if want := nextOffsetAfter(res.Records); res.NextOffset != want {
			t.Fatalf("Read from %d: NextOffset %d, want %d", from, res.NextOffset, want)
		}
		_, meta, release, err := l.ReadSections(from, 30, 150)
		if err != nil {
			t.Fatal(err)
		}
		release()
		if meta.NextOffset != res.NextOffset {
			t.Fatalf("ReadSections from %d: NextOffset %d, Read says %d", from, meta.NextOffset, res.NextOffset)
		}
	}
}

// TestCompactTransactions: the cleaner drops an aborted transaction's records, which
// supersede nothing, compacts committed transactional records like others, keeps markers,
// and never cleans past an open transaction (Kafka's LogCleaner with the txn index).
func TestCompactTransactions(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 200})
	txn := AppendOptions{TransactionalID: "tx"}
	coord := AppendOptions{FromCoordinator: true}
	put := func(key, value string, pid int64, seq int32, isTxn bool) {
		t.Helper()
		opts := AppendOptions{}
		if isTxn {
			opts = txn
		}
		mustAppendOpts(t, l, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: key, value: value}}, producerID: pid, seq: seq, txn: isTxn}), opts)
	}
	put("a", "a1", 0, 0, false)
	put("a", "a2-aborted", 1, 0, true) // aborted: must not hide a1
	put("b", "b1-committed", 2, 0, true)
	mustAppendOpts(t, l, MarkerBatch(1, 0, false, 0, 1), coord)
	mustAppendOpts(t, l, MarkerBatch(2, 0, true, 0, 1), coord)
	put("b", "b2", 0, 0, false) // supersedes the committed b1
	put("c", "c1-open", 3, 0, true)
	for i := range 8 {
		put("pad", fmt.Sprint(i), 0, 0, false)
	}
	l.SetHighWatermark(l.EndOffset())
	if _, err := l.Compact(time.Now(), CompactConfig{MinCleanableDirtyRatio: 0.01}); err != nil {
		t.Fatal(err)
	}
	recs, hs := readRecords(t, l)
	var values []string
	for _, r := range recs {
		values = append(values, r.value)
	}
	for _, want := range []string{"a1", "b2", "c1-open"} {
		if !slices.Contains(values, want) {
			t.Errorf("%q went: %v", want, values)
		}
	}
	for _, gone := range []string{"a2-aborted", "b1-committed"} {
		if slices.Contains(values, gone) {
			t.Errorf("%q stayed: %v", gone, values)
		}
	}
	markers := 0
	for _, h := range hs {
		if h.isControl() {
			markers++
		}
	}
	if markers != 2 {
		t.Errorf("%d markers after compaction, want 2", markers)
	}
}

// TestCompactRemovesFinishedMarkers: as Kafka's cleaner does (KIP-98, KIP-534), a marker
// whose transaction kept no record (aborted, or committed and superseded) gets a delete
// horizon, stays until a round past it, then goes, its aborted-transaction entry with it;
// a marker whose transaction still has records stays. Nothing is left that a rebuild of
// producer state would take for an open transaction.
func TestCompactRemovesFinishedMarkers(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 300, Now: func() time.Time { return compactT0.Add(48 * time.Hour) }}
	l := openLog(t, dir, cfg)
	coord := AppendOptions{FromCoordinator: true}
	txnPut := func(pid int64, key, value string) {
		t.Helper()
		mustAppendOpts(t, l, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: key, value: value}}, producerID: pid, txn: true, baseTs: compactT0.UnixMilli()}),
			AppendOptions{TransactionalID: "tx"})
	}
	txnPut(1, "a", "aborted")
	abortAt := mustAppendOpts(t, l, MarkerBatch(1, 0, false, 0, compactT0.UnixMilli()), coord).BaseOffset
	txnPut(2, "b", "superseded")
	mustAppendOpts(t, l, MarkerBatch(2, 0, true, 0, compactT0.UnixMilli()), coord)
	txnPut(3, "c", "kept")
	keptAt := mustAppendOpts(t, l, MarkerBatch(3, 0, true, 0, compactT0.UnixMilli()), coord).BaseOffset
	mustAppend(t, l, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: "b", value: "latest"}}, baseTs: compactT0.UnixMilli()}), 0)
	markers := func() []int64 {
		_, hs := readRecords(t, l)
		var out []int64
		for _, h := range hs {
			if h.isControl() {
				out = append(out, h.BaseOffset)
			}
		}
		return out
	}
	round := func(now time.Time) {
		t.Helper()
		rollWith(t, l, "pad") // something dirty, or the round has nothing to do
		l.SetHighWatermark(l.EndOffset())
		mustCompact(t, l, now, alwaysRun)
	}
	all := markers()
	if len(all) != 3 {
		t.Fatalf("markers before compaction: %v", all)
	}
	// While producer state retains a producer's last batches their headers stay, and so
	// do their transactions' markers; once the producers expire, neither is needed.
	round(compactT0)
	if got := markers(); !slices.Equal(got, all) {
		t.Fatalf("markers while their producers' batches are retained: %v, want %v", got, all)
	}
	if n, err := l.ExpireProducers(DefaultProducerIDExpiration); err != nil || n != 3 {
		t.Fatalf("expired %d producers (%v), want 3", n, err)
	}
	round(compactT0)
	if got := markers(); !slices.Equal(got, all) {
		t.Fatalf("markers after the first round: %v, want all three %v until their horizon", got, all)
	}
	if got := l.AbortedTransactions(0, l.EndOffset()); len(got) != 1 {
		t.Fatalf("aborted transactions before the horizon: %+v", got)
	}
	round(compactT0.Add(23 * time.Hour))
	if got := markers(); !slices.Equal(got, all) {
		t.Fatalf("markers before delete.retention.ms passed: %v, want %v", got, all)
	}
	round(compactT0.Add(25 * time.Hour))
	if got := markers(); !slices.Equal(got, []int64{keptAt}) {
		t.Fatalf("markers past the horizon: %v, want only %d, whose transaction's record stays (ABORT was at %d)", got, keptAt, abortAt)
	}
	if got := l.AbortedTransactions(0, l.EndOffset()); len(got) != 0 {
		t.Fatalf("aborted transactions after their marker went: %+v", got)
	}
	recs, _ := readRecords(t, l)
	var values []string
	for _, r := range recs {
		values = append(values, r.value)
	}
	if !slices.Contains(values, "kept") || slices.Contains(values, "aborted") || slices.Contains(values, "superseded") {
		t.Fatalf("records after compaction: %v", values)
	}
	// Reopened from every header: no transaction open, the LSO at the high watermark,
	// and no .txnindex entry left.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	removeAll(t, producerSnapshots(t, dir))
	l = openLog(t, dir, cfg)
	if lso, hw := l.LastStableOffset(), l.HighWatermark(); lso != hw {
		t.Fatalf("after reopening: LSO %d, high watermark %d", lso, hw)
	}
	if got := readTxnIndexFiles(t, dir); len(got) != 0 {
		t.Fatalf(".txnindex entries left: %+v", got)
	}
}
