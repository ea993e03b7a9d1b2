package partitionlog

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kv is a test record: tomb writes a null value (a tombstone), noKey a null key.
type kv struct {
	key, value  string
	tomb, noKey bool
}

// keyedSpec describes a batch of keyed records.
type keyedSpec struct {
	recs       []kv
	baseTs     int64 // record i gets baseTs + i
	producerID int64 // 0: none
	seq        int32
	codec      kgo.CompressionCodec // zero: none
	txn        bool                 // transactional (needs producerID)
}

// makeKeyedBatch encodes a v2 batch with kmsg, as makeBatch does, with chosen keys.
func makeKeyedBatch(t testing.TB, spec keyedSpec) []byte {
	t.Helper()
	var recs []byte
	for i, r := range spec.recs {
		rec := kmsg.Record{TimestampDelta64: int64(i), TimestampDelta: int32(i), OffsetDelta: int32(i)}
		if !r.noKey {
			rec.Key = []byte(r.key)
		}
		if !r.tomb {
			rec.Value = []byte(r.value)
		}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		recs = rec.AppendTo(recs)
	}
	n := len(spec.recs)
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: spec.baseTs, MaxTimestamp: spec.baseTs + int64(n-1),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: recs,
	}
	if spec.producerID != 0 {
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = spec.producerID, 0, spec.seq
	}
	if spec.txn {
		b.Attributes |= attrTransactional
	}
	if spec.codec != (kgo.CompressionCodec{}) {
		c, err := kgo.DefaultCompressor(spec.codec)
		if err != nil {
			t.Fatal(err)
		}
		out, used := c.Compress(new(bytes.Buffer), recs)
		b.Records = bytes.Clone(out)
		b.Attributes = int16(used)
	}
	b.Length = int32(len(b.AppendTo(nil)) - logOverhead)
	out := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(out[offAttributes:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// gotRecord is a record read back from the log.
type gotRecord struct {
	offset    int64
	key       string
	value     string
	tomb      bool
	noKey     bool
	timestamp int64
}

// readRecords reads the whole log, checking every batch's CRC, and returns its records
// and batch headers.
func readRecords(t testing.TB, l *Log) ([]gotRecord, []batchHeader) {
	t.Helper()
	res, err := l.Read(l.StartOffset(), l.EndOffset(), 1<<30)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	var out []gotRecord
	b := res.Records
	hs := decodeAll(t, b)
	for _, h := range hs {
		recs, err := decodeRecords(b[:h.size()], h)
		if err != nil {
			t.Fatalf("batch %d: %v", h.BaseOffset, err)
		}
		for _, r := range recs {
			out = append(out, gotRecord{
				offset: h.BaseOffset + int64(r.rec.OffsetDelta), key: string(r.rec.Key), value: string(r.rec.Value),
				tomb: r.rec.Value == nil, noKey: r.rec.Key == nil, timestamp: h.BaseTimestamp + r.rec.TimestampDelta64,
			})
		}
		b = b[h.size():]
	}
	return out, hs
}

// expectCompacted is the naive model: below end only the latest record of each key (and
// keyless records) stays; from end on, everything.
func expectCompacted(all []gotRecord, end int64) []gotRecord {
	latest := map[string]int64{}
	for _, r := range all {
		if r.offset < end && !r.noKey {
			latest[r.key] = r.offset
		}
	}
	var out []gotRecord
	for _, r := range all {
		if r.offset >= end || r.noKey || latest[r.key] == r.offset {
			out = append(out, r)
		}
	}
	return out
}

func activeBase(l *Log) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.segments[len(l.mu.segments)-1].base
}

func mustCompact(t testing.TB, l *Log, now time.Time, cfg CompactConfig) CompactStats {
	t.Helper()
	st, err := l.Compact(now, cfg)
	if err != nil {
		t.Fatalf("Compact: %v", err)
	}
	return st
}

var (
	compactT0 = time.UnixMilli(1_700_000_000_000)
	alwaysRun = CompactConfig{MinCleanableDirtyRatio: 1e-9}
)

// fillUpdates appends rounds of updates to nKeys keys, several records per batch.
func fillUpdates(t testing.TB, l *Log, rounds, nKeys int) {
	t.Helper()
	for r := range rounds {
		var recs []kv
		for k := range nKeys {
			if (r+k)%3 == 0 {
				recs = append(recs, kv{key: fmt.Sprintf("key-%02d", k), value: fmt.Sprintf("v%d", r)})
			}
		}
		mustAppend(t, l, makeKeyedBatch(t, keyedSpec{recs: recs, baseTs: compactT0.UnixMilli() - 1000 + int64(r)}), 0)
	}
}

// TestCompactKeepsLatestPerKey: Kafka's core guarantee (LogCleaner): below the active
// segment at least, here exactly, the latest record per key survives; offsets and order
// are kept; the active segment is untouched; reopening reads the same.
func TestCompactKeepsLatestPerKey(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallCfg)
	fillUpdates(t, l, 60, 8)
	mustAppend(t, l, makeKeyedBatch(t, keyedSpec{recs: []kv{{noKey: true, value: "keyless"}}}), 0)
	fillUpdates(t, l, 5, 8)
	before, _ := readRecords(t, l)
	end := activeBase(l)
	activeBefore := readFrom(t, l, end)
	if n := len(segmentBases(t, l)); n < 4 {
		t.Fatalf("only %d segments", n)
	}

	st := mustCompact(t, l, compactT0, CompactConfig{})
	want := expectCompacted(before, end)
	if st.SegmentsIn == 0 || st.RecordsRemoved != int64(len(before)-len(want)) {
		t.Fatalf("stats %+v, want %d records removed", st, len(before)-len(want))
	}
	check := func(l *Log) {
		t.Helper()
		got, hs := readRecords(t, l)
		if !slices.Equal(got, want) {
			t.Fatalf("after compaction:\n got %v\nwant %v", got, want)
		}
		for i := 1; i < len(hs); i++ {
			if hs[i].BaseOffset <= hs[i-1].lastOffset() {
				t.Fatalf("batch offsets not increasing: %d after %d", hs[i].BaseOffset, hs[i-1].lastOffset())
			}
		}
		if !bytes.Equal(readFrom(t, l, end), activeBefore) {
			t.Fatal("active segment changed")
		}
		if l.StartOffset() != 0 || l.EndOffset() != before[len(before)-1].offset+1 {
			t.Fatalf("start %d end %d changed", l.StartOffset(), l.EndOffset())
		}
	}
	check(l)
	if cp, err := readCleanerCheckpoint(osFS{}, dir); err != nil || cp != end {
		t.Fatalf("cleaner checkpoint %d, %v; want %d", cp, err, end)
	}
	l.Close()
	check(openLog(t, dir, smallCfg))
}

func readFrom(t testing.TB, l *Log, offset int64) []byte {
	t.Helper()
	res, err := l.Read(offset, l.EndOffset(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return res.Records
}

// rollWith appends batches of one key until the log rolls, so what came before is sealed.
func rollWith(t testing.TB, l *Log, key string) {
	t.Helper()
	base := activeBase(l)
	for activeBase(l) == base {
		mustAppend(t, l, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: key, value: strings.Repeat("x", 100)}}, baseTs: compactT0.UnixMilli()}), 0)
	}
}

// TestCompactTombstones: a tombstone is kept until delete.retention.ms after the round
// that first cleaned it (KIP-534 delete horizon in the batch's base timestamp), then
// removed; its record timestamp reads the same while the horizon is set.
func TestCompactTombstones(t *testing.T) {
	l := openLog(t, t.TempDir(), smallCfg)
	ts := compactT0.UnixMilli() - 5000
	mustAppend(t, l, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: "a", value: "1"}, {key: "b", value: "1"}}, baseTs: ts}), 0)
	mustAppend(t, l, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: "a", tomb: true}}, baseTs: ts + 10}), 0)
	rollWith(t, l, "filler")
	cfg := alwaysRun
	cfg.DeleteRetention = time.Hour

	tombstone := func() (gotRecord, bool) {
		got, _ := readRecords(t, l)
		for _, r := range got {
			if r.key == "a" {
				return r, true
			}
		}
		return gotRecord{}, false
	}
	mustCompact(t, l, compactT0, cfg)
	r, ok := tombstone()
	if !ok || !r.tomb || r.offset != 2 || r.timestamp != ts+10 {
		t.Fatalf("after first round: %+v %v, want the tombstone at 2 with timestamp %d", r, ok, ts+10)
	}
	_, hs := readRecords(t, l)
	if hs[1].Attributes&attrDeleteHorizon == 0 || hs[1].BaseTimestamp != compactT0.Add(time.Hour).UnixMilli() {
		t.Fatalf("tombstone batch %+v: want delete horizon now+1h", hs[1])
	}

	rollWith(t, l, "filler2")
	mustCompact(t, l, compactT0.Add(59*time.Minute), cfg)
	if r, ok := tombstone(); !ok || !r.tomb {
		t.Fatal("tombstone removed before its horizon")
	}

	rollWith(t, l, "filler3")
	mustCompact(t, l, compactT0.Add(time.Hour), cfg)
	if r, ok := tombstone(); ok {
		t.Fatalf("tombstone %+v kept past its horizon", r)
	}
	got, _ := readRecords(t, l)
	if got[0].key != "b" || got[0].value != "1" {
		t.Fatalf("key b lost: %+v", got[0])
	}
}

// TestCompactIdempotentEmptyHeaders: a producer's batches whose records are all superseded
// keep empty headers while producer state retains them (Kafka keeps the last one), so a
// retry of the last batch is still a duplicate after reopen, and sequences continue.
func TestCompactIdempotentEmptyHeaders(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallCfg)
	const pid = 5
	var bases []int64
	for seq := range int32(8) {
		res := mustAppend(t, l, makeBatch(t, batchSpec{producerID: pid, seq: seq, baseTs: compactT0.UnixMilli()}), 0)
		bases = append(bases, res.BaseOffset)
	}
	rollWith(t, l, "k") // makeBatch's key is "k": every producer record is superseded
	mustCompact(t, l, compactT0, alwaysRun)

	_, hs := readRecords(t, l)
	var kept []batchHeader
	for _, h := range hs {
		if h.ProducerID == pid {
			kept = append(kept, h)
		}
	}
	if len(kept) != batchesToRetain {
		t.Fatalf("%d producer headers kept, want the %d retained: %+v", len(kept), batchesToRetain, kept)
	}
	for i, h := range kept {
		if h.RecordsCount != 0 || h.BaseSequence != int32(3+i) || h.BaseOffset != bases[3+i] || h.LastOffsetDelta != 0 {
			t.Fatalf("header %d: %+v, want an empty batch at %d with sequence %d", i, h, bases[3+i], 3+i)
		}
	}
	l.Close()
	l = openLog(t, dir, smallCfg)
	res, err := l.Append(makeBatch(t, batchSpec{producerID: pid, seq: 7}), 0, AppendOptions{})
	if err != nil || !res.Duplicate || res.BaseOffset != bases[7] {
		t.Fatalf("retry of the last batch after compaction and reopen: %+v %v, want duplicate at %d", res, err, bases[7])
	}
	if _, err := l.Append(makeBatch(t, batchSpec{producerID: pid, seq: 8}), 0, AppendOptions{}); err != nil {
		t.Fatalf("next sequence: %v", err)
	}
}

// TestCompactConcurrentAppends: appends keep landing while rounds run (the writer lock is
// held only to plan and publish); nothing appended is lost.
func TestCompactConcurrentAppends(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 2000, IndexIntervalBytes: 100})
	const n = 400
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			recs := []kv{{key: fmt.Sprintf("unique-%d", i), value: "u"}, {key: fmt.Sprintf("hot-%d", i%5), value: fmt.Sprint(i)}}
			if _, err := l.Append(makeKeyedBatch(t, keyedSpec{recs: recs, baseTs: compactT0.UnixMilli()}), 0, AppendOptions{}); err != nil {
				t.Errorf("Append %d: %v", i, err)
				return
			}
		}
	})
	rounds := 0
	wg.Go(func() {
		for l.EndOffset() < 2*n {
			st, err := l.Compact(compactT0, alwaysRun)
			if err != nil && !errors.Is(err, ErrCompactionAborted) {
				t.Errorf("Compact: %v", err)
				return
			}
			if st.SegmentsIn > 0 {
				rounds++
			}
		}
	})
	wg.Wait()
	mustCompact(t, l, compactT0, alwaysRun)
	got, _ := readRecords(t, l)
	seen := map[string]bool{}
	for i, r := range got {
		seen[r.key] = true
		if i > 0 && r.offset <= got[i-1].offset {
			t.Fatalf("offsets not increasing at %d", r.offset)
		}
	}
	for i := range n {
		if !seen[fmt.Sprintf("unique-%d", i)] {
			t.Fatalf("record unique-%d lost", i)
		}
	}
	if rounds == 0 {
		t.Log("no round overlapped the appends")
	}
	if l.EndOffset() != 2*n {
		t.Fatalf("end %d, want %d", l.EndOffset(), 2*n)
	}
}

// TestCompactDirtyRatio: a round runs only when dirty / cleanable bytes reaches
// min.cleanable.dirty.ratio; the cleaner checkpoint marks what was cleaned.
func TestCompactDirtyRatio(t *testing.T) {
	l := openLog(t, t.TempDir(), smallCfg)
	for range 10 {
		rollWith(t, l, "k")
	}
	if st := mustCompact(t, l, compactT0, CompactConfig{}); st.SegmentsIn == 0 || st.DirtyRatio != 1 {
		t.Fatalf("first round: %+v, want it to run with ratio 1", st)
	}
	if st := mustCompact(t, l, compactT0, alwaysRun); st.SegmentsIn != 0 || st.DirtyRatio != 0 {
		t.Fatalf("nothing dirty: %+v, want no round", st)
	}
	for range 12 {
		mustAppend(t, l, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: "k", value: strings.Repeat("y", 100)}}}), 0)
	}
	rollWith(t, l, "k")
	st := mustCompact(t, l, compactT0, CompactConfig{MinCleanableDirtyRatio: 0.99})
	if st.SegmentsIn != 0 || st.DirtyRatio <= 0 || st.DirtyRatio >= 0.99 {
		t.Fatalf("ratio %v below 0.99: %+v, want no round", st.DirtyRatio, st)
	}
	if st := mustCompact(t, l, compactT0, CompactConfig{MinCleanableDirtyRatio: st.DirtyRatio}); st.SegmentsIn == 0 {
		t.Fatalf("ratio at the threshold: %+v, want a round", st)
	}
}

// TestCompactMinLag: segments with records newer than min.compaction.lag.ms stay dirty
// and uncleaned (KIP-58).
func TestCompactMinLag(t *testing.T) {
	l := openLog(t, t.TempDir(), smallCfg)
	for range 4 {
		rollWith(t, l, "k") // timestamps compactT0
	}
	cfg := alwaysRun
	cfg.MinCompactionLag = time.Hour
	if st := mustCompact(t, l, compactT0.Add(30*time.Minute), cfg); st.SegmentsIn != 0 {
		t.Fatalf("records younger than the lag were cleaned: %+v", st)
	}
	if st := mustCompact(t, l, compactT0.Add(time.Hour), cfg); st.SegmentsIn == 0 {
		t.Fatalf("records as old as the lag were not cleaned: %+v", st)
	}
}

// TestCompactCompressed: compressed batches are decompressed, filtered and recompressed
// with their own codec (gzip, snappy, lz4, zstd); a batch left empty is written as an
// uncompressed empty header or dropped.
func TestCompactCompressed(t *testing.T) {
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		attr  int16
	}{
		{"gzip", kgo.GzipCompression(), 1}, {"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3}, {"zstd", kgo.ZstdCompression(), 4},
	}
	for _, c := range codecs {
		name, codec := c.name, c.codec
		t.Run(name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), smallCfg)
			spec := func(v string) keyedSpec {
				return keyedSpec{codec: codec, baseTs: compactT0.UnixMilli(), recs: []kv{
					{key: "a", value: v}, {key: "b-" + v, value: v}, {key: "c", value: v},
				}}
			}
			mustAppend(t, l, makeKeyedBatch(t, spec("1")), 0)
			mustAppend(t, l, makeKeyedBatch(t, spec("2")), 0)
			rollWith(t, l, "filler")
			before, _ := readRecords(t, l)
			mustCompact(t, l, compactT0, alwaysRun)
			got, hs := readRecords(t, l)
			if want := expectCompacted(before, activeBase(l)); !slices.Equal(got, want) {
				t.Fatalf("got %v\nwant %v", got, want)
			}
			if hs[0].RecordsCount != 1 || hs[0].LastOffsetDelta != 2 || hs[0].Attributes&attrCompressionMask != c.attr {
				t.Fatalf("first batch %+v: want 1 record spanning 3 offsets, codec %d", hs[0], c.attr)
			}
		})
	}
}

// TestCompactCrashAtEachStep stops a round after each step, as a crash would, then
// resolves leftovers and reopens: the log reads exactly as before the round or exactly as
// after it, never a mix, never a loss.
func TestCompactCrashAtEachStep(t *testing.T) {
	cfg := Config{SegmentBytes: 600, IndexIntervalBytes: 100}
	build := func(dir string) {
		l := openLog(t, dir, cfg)
		for i := range 40 {
			recs := []kv{{key: fmt.Sprintf("u-%d", i), value: "unique"}, {key: fmt.Sprintf("hot-%d", i%3), value: fmt.Sprint(i)}}
			mustAppend(t, l, makeKeyedBatch(t, keyedSpec{recs: recs, baseTs: compactT0.UnixMilli()}), 0)
		}
		l.Close()
	}
	read := func(dir string) []byte {
		l := openLog(t, dir, cfg)
		defer l.Close()
		return readFrom(t, l, l.StartOffset())
	}
	refDir := t.TempDir()
	build(refDir)
	oldBytes := read(refDir)
	l := openLog(t, refDir, cfg)
	if st := mustCompact(t, l, compactT0, alwaysRun); st.SegmentsOut < 2 {
		t.Fatalf("want several output segments to crash between, got %+v", st)
	}
	l.Close()
	newBytes := read(refDir)
	if bytes.Equal(oldBytes, newBytes) {
		t.Fatal("compaction changed nothing")
	}

	steps := []struct {
		step    string
		nth     int
		wantNew bool
	}{
		{"cleaned", 1, false},
		{"swap-rename", 1, false},
		{"swapped", 1, true},
		{"published", 1, true},
		{"deleted-old", 1, true},
		{"final-rename", 1, true},
		{"finished", 1, true},
	}
	for _, s := range steps {
		t.Run(fmt.Sprintf("%s#%d", s.step, s.nth), func(t *testing.T) {
			dir := t.TempDir()
			build(dir)
			l := openLog(t, dir, cfg)
			seen := 0
			compactStepHook = func(step string) error {
				if step == s.step {
					if seen++; seen == s.nth {
						return errors.New("crash")
					}
				}
				return nil
			}
			t.Cleanup(func() { compactStepHook = nil })
			if _, err := l.Compact(compactT0, alwaysRun); !errors.Is(err, errCrashedAtStep) {
				t.Fatalf("Compact: %v, want the simulated crash", err)
			}
			compactStepHook = nil
			l.Close()
			if err := resolveCompactionLeftovers(osFS{}, dir); err != nil {
				t.Fatalf("resolveCompactionLeftovers: %v", err)
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, "*.*[dp]")) // .cleaned, .swap
			if len(leftovers) > 0 {
				t.Fatalf("leftovers: %v", leftovers)
			}
			got := read(dir)
			switch {
			case bytes.Equal(got, newBytes):
				if !s.wantNew {
					t.Fatal("read the new contents before the commit point")
				}
			case bytes.Equal(got, oldBytes):
				if s.wantNew {
					t.Fatal("read the old contents after the commit point")
				}
			default:
				t.Fatalf("read neither the old (%d bytes) nor the new (%d bytes) contents: %d bytes", len(oldBytes), len(newBytes), len(got))
			}
			// The log is usable: another round succeeds and reads the compacted contents.
			l = openLog(t, dir, cfg)
			mustCompact(t, l, compactT0, alwaysRun)
			if !bytes.Equal(readFrom(t, l, 0), newBytes) {
				t.Fatal("compacting after recovery does not give the compacted contents")
			}
		})
	}
}

// TestResolveCompactionLeftoversMixed: a crash in the middle of the .cleaned -> .swap
// renames leaves both kinds; the round had not committed, so both go.
func TestResolveCompactionLeftoversMixed(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"00000000000000000000.log.swap", "00000000000000000010.log.cleaned", "00000000000000000000.log"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := resolveCompactionLeftovers(osFS{}, dir); err != nil {
		t.Fatal(err)
	}
	names, _ := osFS{}.ReadDir(dir)
	if !slices.Equal(names, []string{"00000000000000000000.log"}) {
		t.Fatalf("left %v, want only the old segment", names)
	}
}

// TestCompactAbortedByTruncation: the TruncateTo hook aborts a round in progress and
// lowers the cleaner checkpoint.
func TestCompactAbortedByTruncation(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallCfg)
	fillUpdates(t, l, 40, 4)
	mustCompact(t, l, compactT0, alwaysRun)
	fillUpdates(t, l, 40, 4)
	compactStepHook = func(step string) error {
		if step == "cleaned" {
			l.writer.Lock()
			defer l.writer.Unlock()
			return l.abortCompactionWriterLocked(3)
		}
		return nil
	}
	t.Cleanup(func() { compactStepHook = nil })
	before := readFrom(t, l, 0)
	if _, err := l.Compact(compactT0, alwaysRun); !errors.Is(err, ErrCompactionAborted) {
		t.Fatalf("Compact: %v, want ErrCompactionAborted", err)
	}
	if !bytes.Equal(readFrom(t, l, 0), before) {
		t.Fatal("an aborted round changed the log")
	}
	if cp, err := readCleanerCheckpoint(osFS{}, dir); err != nil || cp != 3 {
		t.Fatalf("checkpoint %d %v, want 3", cp, err)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*.cleaned")); len(names) > 0 {
		t.Fatalf("aborted round left %v", names)
	}
}

func TestCompactConfigValidation(t *testing.T) {
	for _, c := range []CompactConfig{{MinCleanableDirtyRatio: 1.5}, {DeleteRetention: -1}, {MinCompactionLag: -1}, {MaxCleanableOffset: -1}} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c, err := CompactConfig{}.withDefaults()
	if err != nil || c.DeleteRetention != 24*time.Hour || c.MinCleanableDirtyRatio != 0.5 || c.MinCompactionLag != 0 {
		t.Fatalf("defaults %+v %v", c, err)
	}
}
