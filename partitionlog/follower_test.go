package partitionlog

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// replicate copies leader's log into follower the way a fetcher does: fetch at the
// follower's end offset, up to the leader's end, maxBytes at a time, and append. With
// gaps, it uses AppendAsFollowerAt (compacted leaders); otherwise AppendAsFollower.
func replicate(t testing.TB, leader, follower *Log, maxBytes int32, gaps bool) {
	t.Helper()
	for follower.EndOffset() < leader.EndOffset() {
		off := follower.EndOffset()
		res, err := leader.Read(off, leader.EndOffset(), maxBytes)
		if err != nil {
			t.Fatalf("leader Read(%d): %v", off, err)
		}
		if len(res.Records) == 0 {
			t.Fatalf("leader Read(%d) empty below its end %d", off, leader.EndOffset())
		}
		if gaps {
			_, err = follower.AppendAsFollowerAt(off, res.Records)
		} else {
			_, err = follower.AppendAsFollower(res.Records)
		}
		if err != nil {
			t.Fatalf("AppendAsFollower at %d: %v", off, err)
		}
	}
}

// leaderWorkload appends plain, idempotent and control batches under three leader epochs
// and returns a retry of the last idempotent batch and where that batch went.
func leaderWorkload(t testing.TB, l *Log) (retry []byte, lastBase int64) {
	t.Helper()
	const pid = 7
	seq := int32(0)
	for i := range 30 {
		epoch := []int32{0, 3, 4}[i/10]
		spec := batchSpec{records: 1 + i%4, baseTs: int64(1000 + 10*i), valueSize: 20}
		switch {
		case i%5 == 0:
			spec.producerID, spec.seq = pid, seq
		case i == 17:
			spec = batchSpec{producerID: 9, control: true, baseTs: int64(1000 + 10*i)}
		}
		b := makeBatch(t, spec)
		res, err := l.Append(bytes.Clone(b), epoch, AppendOptions{FromCoordinator: spec.control})
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if spec.producerID == pid {
			retry, lastBase = b, res.BaseOffset
			seq += int32(spec.records)
		}
	}
	return retry, lastBase
}

// dirFiles returns the contents of dir's files whose names end in one of suffixes.
func dirFiles(t *testing.T, dir string, suffixes ...string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		for _, s := range suffixes {
			if strings.HasSuffix(e.Name(), s) {
				out[e.Name()] = readFile(t, filepath.Join(dir, e.Name()))
			}
		}
	}
	return out
}

func producersOf(l *Log) producerMap {
	l.writer.Lock()
	defer l.writer.Unlock()
	return maps.Clone(l.writer.producers)
}

// checkSameLog compares everything a follower must agree with its leader on. Without
// history, epoch history is compared only for the latest epoch: the leader's starts where
// it was first appended, the follower's at the first batch it got, which compaction may
// have removed (as in Kafka).
func checkSameLog(t *testing.T, leader, follower *Log, history bool) {
	t.Helper()
	if le, fe := leader.EndOffset(), follower.EndOffset(); le != fe {
		t.Fatalf("end offsets: leader %d, follower %d", le, fe)
	}
	if !bytes.Equal(readFrom(t, leader, leader.StartOffset()), readFrom(t, follower, follower.StartOffset())) {
		t.Fatal("follower's batches differ from the leader's")
	}
	if leader.LatestEpoch() != follower.LatestEpoch() {
		t.Fatalf("latest epoch: leader %d, follower %d", leader.LatestEpoch(), follower.LatestEpoch())
	}
	epochs := []int32{leader.LatestEpoch()}
	if history {
		epochs = []int32{-1, 0, 1, 2, 3, 4, 5, 6}
	}
	for _, e := range epochs {
		le, lo := leader.EndOffsetForEpoch(e)
		fe, fo := follower.EndOffsetForEpoch(e)
		if le != fe || lo != fo {
			t.Fatalf("EndOffsetForEpoch(%d): leader (%d, %d), follower (%d, %d)", e, le, lo, fe, fo)
		}
		ls, lok := leader.EpochStartOffset(e)
		fs, fok := follower.EpochStartOffset(e)
		if history && (ls != fs || lok != fok) {
			t.Fatalf("EpochStartOffset(%d): leader (%d, %v), follower (%d, %v)", e, ls, lok, fs, fok)
		}
	}
	if lp, fp := producersOf(leader), producersOf(follower); !reflect.DeepEqual(lp, fp) {
		t.Fatalf("producer state: leader %+v, follower %+v", lp, fp)
	}
}

// TestAppendAsFollowerMirrorsLeader: batches read from a leader and appended as they are
// (Kafka's UnifiedLog.appendAsFollower) give the same segment files byte for byte, the
// same end offset, the same OffsetForLeaderEpoch answers (KIP-101) and the same producer
// state, so a retry that reaches the follower after it becomes leader is a duplicate
// (KIP-98: the dedup window survives failover). All of it survives a reopen.
func TestAppendAsFollowerMirrorsLeader(t *testing.T) {
	ldir, fdir := t.TempDir(), t.TempDir()
	leader := openLog(t, ldir, smallCfg)
	retry, lastBase := leaderWorkload(t, leader)
	follower := openLog(t, fdir, smallCfg)

	ch := follower.Changed()
	replicate(t, leader, follower, 1, false) // one batch per fetch, as the leader appended them
	select {
	case <-ch:
	default:
		t.Fatal("Changed not signalled by AppendAsFollower")
	}
	checkSameLog(t, leader, follower, true)
	if n := len(segmentBases(t, follower)); n < 3 {
		t.Fatalf("only %d segments: the test wants rolls", n)
	}
	suffixes := []string{logSuffix, indexSuffix, timeIndexSuffix, epochCheckpointName}
	lf, ff := dirFiles(t, ldir, suffixes...), dirFiles(t, fdir, suffixes...)
	if !reflect.DeepEqual(lf, ff) {
		t.Fatalf("files differ: leader %d files, follower %d", len(lf), len(ff))
	}

	// Fetches of many batches at a time make the same log, rolled where they fit.
	follower2 := openLog(t, t.TempDir(), smallCfg)
	replicate(t, leader, follower2, 1500, false)
	checkSameLog(t, leader, follower2, true)

	follower.Close()
	follower = openLog(t, fdir, smallCfg)
	checkSameLog(t, leader, follower, true)
	res, err := follower.Append(retry, 5, AppendOptions{})
	if err != nil || !res.Duplicate || res.BaseOffset != lastBase {
		t.Fatalf("retry on the follower turned leader: %+v, %v; want duplicate of %d", res, err, lastBase)
	}
}

// TestAppendAsFollowerOffsets: a re-sent prefix is skipped; a batch above the end or
// straddling it is ErrOffsetGap and writes nothing; AppendAsFollowerAt accepts a gap the
// leader has (compaction) but not a stale fetch.
func TestAppendAsFollowerOffsets(t *testing.T) {
	leader := openLog(t, t.TempDir(), Config{})
	for range 5 {
		mustAppend(t, leader, makeBatch(t, batchSpec{records: 2}), 1)
	}
	all := readFrom(t, leader, 0)
	hs := decodeAll(t, all)
	upTo := func(n int) []byte { // the first n batches
		var size int64
		for _, h := range hs[:n] {
			size += h.size()
		}
		return all[:size]
	}

	f := openLog(t, t.TempDir(), Config{})
	if last, err := f.AppendAsFollower(upTo(3)); err != nil || last != 5 {
		t.Fatalf("first 3 batches: last %d, %v", last, err)
	}
	if last, err := f.AppendAsFollower(all); err != nil || last != 9 || f.EndOffset() != 10 {
		t.Fatalf("re-sent prefix and 2 more: last %d, end %d, %v", last, f.EndOffset(), err)
	}
	ch := f.Changed()
	if last, err := f.AppendAsFollower(all); err != nil || last != 9 {
		t.Fatalf("all again: last %d, %v", last, err)
	}
	select {
	case <-ch:
		t.Fatal("Changed signalled though nothing was appended")
	default:
	}
	if !bytes.Equal(readFrom(t, f, 0), all) {
		t.Fatal("follower differs from leader")
	}

	shifted := func(i int, base int64) []byte { // batch i (all are the same size) moved to base
		sz := int(hs[0].size())
		b := bytes.Clone(all[i*sz : (i+1)*sz])
		putBaseOffset(b, base) // outside the CRC
		return b
	}
	g := openLog(t, t.TempDir(), Config{})
	mustFollow(t, g, upTo(2)) // end 4
	for _, tc := range []struct {
		name    string
		records []byte
		at      int64 // fetch offset for AppendAsFollowerAt; -1: AppendAsFollower
		wantErr error
		wantEnd int64
	}{
		{"straddles the end", shifted(2, 3), -1, ErrOffsetGap, 4},
		{"gap above the end", shifted(2, 6), -1, ErrOffsetGap, 4},
		{"stale fetch", shifted(2, 6), 2, ErrOffsetGap, 4},
		{"straddles the fetch offset", shifted(2, 3), 4, ErrOffsetGap, 4},
		{"gap the leader has", shifted(2, 6), 4, nil, 8},
		{"then contiguous", shifted(3, 8), -1, nil, 10},
	} {
		var err error
		if tc.at < 0 {
			_, err = g.AppendAsFollower(tc.records)
		} else {
			_, err = g.AppendAsFollowerAt(tc.at, tc.records)
		}
		if !errors.Is(err, tc.wantErr) || g.EndOffset() != tc.wantEnd {
			t.Fatalf("%s: err %v, end %d; want %v, end %d", tc.name, err, g.EndOffset(), tc.wantErr, tc.wantEnd)
		}
	}
	if got := basesOf(readAll(t, g)); !slices.Equal(got, []int64{0, 2, 6, 8}) {
		t.Fatalf("bases %v", got)
	}
}

func mustFollow(t testing.TB, l *Log, records []byte) int64 {
	t.Helper()
	last, err := l.AppendAsFollower(records)
	if err != nil {
		t.Fatalf("AppendAsFollower: %v", err)
	}
	return last
}

// TestAppendAsFollowerValidates: framing and CRC are checked as for Append, offsets must
// increase, max.message.bytes does not apply (the leader accepted the batch), and a bad
// batch anywhere writes nothing.
func TestAppendAsFollowerValidates(t *testing.T) {
	at := func(base int64, spec batchSpec) []byte {
		b := makeBatch(t, spec)
		putBaseOffset(b, base)
		return b
	}
	good := at(0, batchSpec{records: 3})
	for _, tc := range []struct {
		name    string
		records []byte
		want    error
	}{
		{"empty", nil, ErrInvalidRecord},
		{"torn", good[:len(good)-1], ErrCorruptBatch},
		{"bad crc", func() []byte { b := bytes.Clone(good); b[len(b)-1] ^= 1; return b }(), ErrCorruptBatch},
		{"more records than offsets", recrc(bytes.Clone(good), func(b []byte) { b[offRecordsCount+3] = 4 }), ErrInvalidRecord},
		{"negative record count", recrc(bytes.Clone(good), func(b []byte) { b[offRecordsCount] = 0xff }), ErrInvalidRecord},
		{"negative base offset", at(-5, batchSpec{}), ErrInvalidRecord},
		{"offsets going back", slices.Concat(good, at(2, batchSpec{})), ErrInvalidRecord},
		{"bad second batch", slices.Concat(good, at(3, batchSpec{})[:40]), ErrCorruptBatch},
	} {
		f := openLog(t, t.TempDir(), Config{})
		if _, err := f.AppendAsFollower(tc.records); !errors.Is(err, tc.want) || f.EndOffset() != 0 {
			t.Errorf("%s: %v, end %d; want %v and nothing written", tc.name, err, f.EndOffset(), tc.want)
		}
	}

	f := openLog(t, t.TempDir(), Config{MaxMessageBytes: 200})
	big := makeBatch(t, batchSpec{valueSize: 500})
	if _, err := f.Append(bytes.Clone(big), 0, AppendOptions{}); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("Append of a big batch: %v", err)
	}
	if last := mustFollow(t, f, big); last != 0 {
		t.Fatalf("big batch as follower: last %d", last)
	}
}

// TestAppendAsFollowerCompacted: a compacted leader (Kafka's LogCleaner keeps offsets,
// drops records, keeps empty headers of retained producer batches and leaves gaps where
// whole batches went) replicates as it is, empty batches included, with its producer
// state: the last idempotent batch's retry is still a duplicate on the follower.
func TestAppendAsFollowerCompacted(t *testing.T) {
	leader := openLog(t, t.TempDir(), smallCfg)
	const pid = 5
	var lastBase int64
	for seq := range int32(8) {
		lastBase = mustAppend(t, leader, makeBatch(t, batchSpec{producerID: pid, seq: seq, baseTs: compactT0.UnixMilli()}), 2).BaseOffset
	}
	fillUpdates(t, leader, 40, 8)
	mustAppend(t, leader, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: "p1", value: "1"}, {key: "p2", value: "1"}, {key: "p3", value: "1"}}}), 2)
	mustAppend(t, leader, makeKeyedBatch(t, keyedSpec{recs: []kv{{key: "p2", value: "2"}}}), 2)
	rollWith(t, leader, "k") // makeBatch's key is "k": every producer record is superseded
	mustCompact(t, leader, compactT0, alwaysRun)

	hs := decodeAll(t, readFrom(t, leader, 0))
	empty, partial, gaps := 0, 0, 0
	for i, h := range hs {
		switch {
		case h.RecordsCount == 0:
			empty++
		case int64(h.RecordsCount) < int64(h.LastOffsetDelta)+1:
			partial++
		}
		if i > 0 && h.BaseOffset > hs[i-1].lastOffset()+1 {
			gaps++
		}
	}
	if empty == 0 || partial == 0 || gaps == 0 {
		t.Fatalf("compaction left %d empty, %d partial batches and %d gaps: the test wants all three", empty, partial, gaps)
	}

	for _, maxBytes := range []int32{1, 300, 1 << 20} {
		t.Run(fmt.Sprint("maxBytes", maxBytes), func(t *testing.T) {
			follower := openLog(t, t.TempDir(), smallCfg)
			replicate(t, leader, follower, maxBytes, true)
			checkSameLog(t, leader, follower, false)
			res, err := follower.Append(makeBatch(t, batchSpec{producerID: pid, seq: 7}), 3, AppendOptions{})
			if err != nil || !res.Duplicate || res.BaseOffset != lastBase {
				t.Fatalf("retry after compaction and failover: %+v, %v; want duplicate at %d", res, err, lastBase)
			}
		})
	}
}

// TestAppendAsFollowerCrash crashes a follower (only synced bytes and synced directory
// entries survive) at every mutating file operation while it replicates, syncs and rolls.
// Open recovers a prefix of the leader's log, at least what was synced, with epoch history
// and high watermark consistent with it, and replication then completes to an identical log
// (Kafka: a crashed replica truncates to its last valid batch and refetches).
func TestAppendAsFollowerCrash(t *testing.T) {
	leader := openLog(t, t.TempDir(), Config{SegmentBytes: 500, IndexIntervalBytes: 100})
	leaderWorkload(t, leader)
	want := readFrom(t, leader, 0)
	cfg := Config{SegmentBytes: 500, IndexIntervalBytes: 100}

	workload := func(fs *memFS, syncedEnd *int64) {
		c := cfg
		c.FS = fs
		f, err := Open("/f", c, Hooks{}, nil)
		if err != nil {
			return
		}
		defer f.Close()
		for i := 0; f.EndOffset() < leader.EndOffset(); i++ {
			res, err := leader.Read(f.EndOffset(), leader.EndOffset(), 1)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := f.AppendAsFollower(res.Records); err != nil {
				return
			}
			f.SetHighWatermark(f.EndOffset() - 1)
			if i%4 == 3 {
				if f.Sync() != nil {
					return
				}
				*syncedEnd = f.EndOffset()
			}
		}
	}
	probe := newMemFS()
	var syncedEnd int64
	workload(probe, &syncedEnd)
	total := probe.ops
	if total < 50 || syncedEnd < leader.EndOffset()-5 {
		t.Fatalf("workload: %d operations, synced to %d", total, syncedEnd)
	}
	for k := 1; k <= total; k++ {
		fs := newMemFS()
		var crashed *memFS
		var syncedEnd, syncedAtCrash int64
		fs.inject = func(_, _ string, n int) error {
			if n == k {
				crashed = fs.crashCloneLocked()
				syncedAtCrash = syncedEnd
			}
			if n >= k {
				return errIO
			}
			return nil
		}
		workload(fs, &syncedEnd)
		c := cfg
		c.FS = crashed
		f := openWith(t, "/f", c, Hooks{})
		got := readFrom(t, f, 0)
		switch {
		case !bytes.HasPrefix(want, got):
			t.Fatalf("op %d: recovered log is not a prefix of the leader's", k)
		case f.EndOffset() < syncedAtCrash:
			t.Fatalf("op %d: end %d below the synced %d", k, f.EndOffset(), syncedAtCrash)
		case f.HighWatermark() > f.EndOffset():
			t.Fatalf("op %d: high watermark %d above end %d", k, f.HighWatermark(), f.EndOffset())
		}
		for e := int32(0); e <= 4; e++ {
			start, ok := f.EpochStartOffset(e)
			lstart, lok := leader.EpochStartOffset(e)
			if ok != (lok && lstart < f.EndOffset()) || ok && start != lstart {
				t.Fatalf("op %d: epoch %d starts at (%d, %v), leader (%d, %v), end %d", k, e, start, ok, lstart, lok, f.EndOffset())
			}
		}
		replicate(t, leader, f, 1<<20, false)
		if !bytes.Equal(readFrom(t, f, 0), want) {
			t.Fatalf("op %d: log differs from the leader's after catching up", k)
		}
		f.Close()
	}
}

// TestHighWatermark: monotonic, clamped to the end, lowered only by TruncateTo, raised to
// the log start, persisted (at most every second, and at roll, Sync and Close) and
// clamped at Open, as Kafka's replication-offset-checkpoint.
func TestHighWatermark(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	cfg := Config{SegmentBytes: 400, IndexIntervalBytes: 100, Now: clock.now}
	l := openLog(t, dir, cfg)
	onDisk := func() int64 {
		t.Helper()
		off, found, err := readOffsetFile(osFS{}, dir, highWatermarkName)
		if err != nil || !found {
			return -1
		}
		return off
	}
	if hw := l.HighWatermark(); hw != 0 || onDisk() != -1 {
		t.Fatalf("fresh log: high watermark %d, file %d", hw, onDisk())
	}
	for range 10 {
		mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
	}
	steps := []struct {
		set, want, file int64
		advance         int // ms before the call
	}{
		{set: 4, want: 4, file: 4, advance: 2000},    // the last write (at a roll) is old
		{set: 2, want: 4, file: 4},                   // lower: ignored
		{set: 6, want: 6, file: 4, advance: 500},     // within a second: not written
		{set: 100, want: 10, file: 10, advance: 600}, // clamped to the end, a second passed
	}
	for i, s := range steps {
		clock.advance(time.Duration(s.advance) * time.Millisecond)
		l.SetHighWatermark(s.set)
		if got := l.HighWatermark(); got != s.want || onDisk() != s.file {
			t.Fatalf("step %d: SetHighWatermark(%d): %d, file %d; want %d, file %d", i, s.set, got, onDisk(), s.want, s.file)
		}
	}

	if err := l.TruncateTo(7); err != nil {
		t.Fatal(err)
	}
	if l.HighWatermark() != 7 || onDisk() != 7 {
		t.Fatalf("after TruncateTo(7): %d, file %d", l.HighWatermark(), onDisk())
	}
	l.SetHighWatermark(7)
	mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
	l.SetHighWatermark(8) // not due
	if onDisk() != 7 {
		t.Fatalf("file %d, want 7", onDisk())
	}
	if err := l.Sync(); err != nil || onDisk() != 8 {
		t.Fatalf("Sync: %v, file %d", err, onDisk())
	}
	base := activeBase(l)
	for activeBase(l) == base {
		l.SetHighWatermark(l.EndOffset()) // within the second: only the roll writes it
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 50}), 0)
	}
	if onDisk() != activeBase(l) {
		t.Fatalf("after roll at %d: file %d", activeBase(l), onDisk())
	}
	l.SetHighWatermark(l.EndOffset())
	end := l.EndOffset()
	l.Close()
	if onDisk() != end {
		t.Fatalf("after Close: file %d, want %d", onDisk(), end)
	}
	l = openLog(t, dir, cfg)
	if l.HighWatermark() != end {
		t.Fatalf("reopened: %d, want %d", l.HighWatermark(), end)
	}
	for range 3 {
		mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
	}
	if _, err := l.DeleteRecordsBefore(end + 2); err != nil || l.HighWatermark() != end+2 {
		t.Fatalf("DeleteRecordsBefore past it: %v, high watermark %d, want the new start %d", err, l.HighWatermark(), end+2)
	}
	end = l.EndOffset()
	l.Close()

	// A file past the recovered end (the tail was lost) is clamped, and Close writes that.
	if err := writeOffsetFile(osFS{}, dir, highWatermarkName, end+50); err != nil {
		t.Fatal(err)
	}
	if l = openLog(t, dir, cfg); l.HighWatermark() != end {
		t.Fatalf("reopened with file %d: %d, want %d", end+50, l.HighWatermark(), end)
	}
	l.Close()
	if l.SetHighWatermark(1); onDisk() != end {
		t.Fatalf("after Close and SetHighWatermark: file %d, want %d", onDisk(), end)
	}
}

// TestHighWatermarkConcurrent: SetHighWatermark and HighWatermark from other goroutines
// while the log appends, rolls, syncs, truncates and closes (run with -race); the value
// never passes the end or goes back except through TruncateTo.
func TestHighWatermarkConcurrent(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 600, IndexIntervalBytes: 100})
	done := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				l.SetHighWatermark(l.EndOffset())
				l.HighWatermark()
				l.mu.Lock() // one snapshot of both
				hw, end := l.highWatermarkLocked(), l.mu.end
				l.mu.Unlock()
				if hw > end {
					errs <- fmt.Errorf("high watermark %d above end %d", hw, end)
					return
				}
			}
		}()
	}
	for i := range 200 {
		mustAppend(t, l, makeBatch(t, batchSpec{valueSize: 30}), 0)
		switch {
		case i%50 == 49:
			if err := l.TruncateTo(l.EndOffset() - 3); err != nil {
				t.Fatal(err)
			}
		case i%20 == 0:
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	l.SetHighWatermark(l.EndOffset())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
