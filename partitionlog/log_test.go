package partitionlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// smallCfg rolls often and indexes every batch or two, so few records exercise everything.
var smallCfg = Config{SegmentBytes: 1000, IndexIntervalBytes: 100}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAppendReadAcrossRoll(t *testing.T) {
	dir := t.TempDir()
	var rolls []int64
	l, err := Open(dir, smallCfg, Hooks{OnRoll: func(_ string, base int64) { rolls = append(rolls, base) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stored := appendN(t, l, 40, 3)
	if got := l.EndOffset(); got != 120 {
		t.Fatalf("EndOffset = %d, want 120", got)
	}
	if n := len(segmentFiles(t, dir)); n < 3 || n != len(rolls)+1 {
		t.Fatalf("%d segments, %d rolls: want several, one more segment than rolls", n, len(rolls))
	}
	res, err := l.Read(0, l.EndOffset(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join(stored, nil); !bytes.Equal(res.Records, want) {
		t.Fatalf("read %d bytes, want the %d appended", len(res.Records), len(want))
	}
	for i, h := range decodeAll(t, res.Records) {
		if h.BaseOffset != int64(3*i) {
			t.Fatalf("batch %d base %d, want %d (offsets must be dense)", i, h.BaseOffset, 3*i)
		}
	}
}

func TestReadLookups(t *testing.T) {
	l := openLog(t, t.TempDir(), smallCfg)
	stored := appendN(t, l, 40, 3)
	batchSize := int32(len(stored[0]))
	segBases := segmentBases(t, l)
	tests := []struct {
		name              string
		offset, maxOffset int64
		maxBytes          int32
		wantBases         []int64 // nil: check only the first
		wantFirst         int64
		wantErr           error
	}{
		{name: "start", offset: 0, maxOffset: 120, maxBytes: batchSize, wantBases: []int64{0}},
		{name: "mid batch returns the whole batch", offset: 31, maxOffset: 120, maxBytes: 2 * batchSize, wantBases: []int64{30, 33}},
		{name: "last record of a batch", offset: 119, maxOffset: 120, maxBytes: 1 << 20, wantBases: []int64{117}},
		{name: "first offset of second segment", offset: segBases[1], maxOffset: 120, maxBytes: batchSize, wantBases: []int64{segBases[1]}},
		{name: "just before a segment boundary", offset: segBases[1] - 1, maxOffset: 120, maxBytes: 2 * batchSize, wantBases: []int64{segBases[1] - 3, segBases[1]}},
		{name: "KIP-74 first batch whole despite maxBytes", offset: 4, maxOffset: 120, maxBytes: 1, wantBases: []int64{3}},
		{name: "KIP-74 with zero maxBytes", offset: 4, maxOffset: 120, maxBytes: 0, wantBases: []int64{3}},
		{name: "maxBytes cuts at a whole batch", offset: 0, maxOffset: 120, maxBytes: 2*batchSize + batchSize/2, wantBases: []int64{0, 3}},
		{name: "maxOffset stops before a batch at the bound", offset: 0, maxOffset: 6, maxBytes: 1 << 20, wantBases: []int64{0, 3}},
		{name: "maxOffset mid batch includes that batch", offset: 0, maxOffset: 7, maxBytes: 1 << 20, wantBases: []int64{0, 3, 6}},
		{name: "offset at maxOffset is empty", offset: 6, maxOffset: 6, maxBytes: 1 << 20, wantBases: []int64{}},
		{name: "offset at end is empty", offset: 120, maxOffset: 120, maxBytes: 1 << 20, wantBases: []int64{}},
		{name: "everything crosses segments", offset: 0, maxOffset: 120, maxBytes: 1 << 20, wantFirst: 0},
		{name: "past end", offset: 121, maxOffset: 121, maxBytes: 1 << 20, wantErr: ErrOffsetOutOfRange},
		{name: "negative", offset: -1, maxOffset: 120, maxBytes: 1 << 20, wantErr: ErrOffsetOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := l.Read(tt.offset, tt.maxOffset, tt.maxBytes)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if res.LogStartOffset != 0 || res.LogEndOffset != 120 {
				t.Errorf("offsets [%d, %d), want [0, 120)", res.LogStartOffset, res.LogEndOffset)
			}
			hs := decodeAll(t, res.Records)
			if tt.wantBases == nil {
				if len(hs) != 40 || hs[0].BaseOffset != tt.wantFirst {
					t.Fatalf("got %d batches, want all 40", len(hs))
				}
				return
			}
			if got := basesOf(hs); !equalInts(got, tt.wantBases) {
				t.Fatalf("bases %v, want %v", got, tt.wantBases)
			}
		})
	}
}

func segmentBases(t *testing.T, l *Log) []int64 {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var bases []int64
	for _, s := range l.mu.segments {
		bases = append(bases, s.base)
	}
	if len(bases) < 2 {
		t.Fatalf("want at least 2 segments, have %v", bases)
	}
	return bases
}

func basesOf(hs []batchHeader) []int64 {
	out := []int64{}
	for _, h := range hs {
		out = append(out, h.BaseOffset)
	}
	return out
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOffsetForTimestamp(t *testing.T) {
	l := openLog(t, t.TempDir(), smallCfg)
	// Batch i holds offsets 3i..3i+2 with timestamps 1000+10i .. 1000+10i+2.
	appendN(t, l, 40, 3)
	tests := []struct {
		name           string
		ts             int64
		wantOff, wantT int64
	}{
		{"before everything", 0, 0, 1000},
		{"exact first", 1000, 0, 1000},
		{"record inside a batch", 1011, 4, 1011},
		{"between batches", 1013, 6, 1020},
		{"in a later segment", 1300, 90, 1300},
		{"last record", 1392, 119, 1392},
		{"after everything", 1393, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off, ts, err := l.OffsetForTimestamp(tt.ts)
			if err != nil || off != tt.wantOff || ts != tt.wantT {
				t.Fatalf("OffsetForTimestamp(%d) = (%d, %d, %v), want (%d, %d, nil)", tt.ts, off, ts, err, tt.wantOff, tt.wantT)
			}
		})
	}
}

func TestReopenSameContents(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallCfg)
	appendN(t, l, 25, 2)
	before, err := l.Read(0, l.EndOffset(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(0, 1, 100); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}

	var truncated int64 = -1
	l2, err := Open(dir, smallCfg, Hooks{OnRecover: func(_ string, _ int, cut int64, _ time.Duration) { truncated = cut }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	after, err := l2.Read(0, l2.EndOffset(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Records, after.Records) || after.LogEndOffset != 50 || truncated != 0 {
		t.Fatalf("reopened: %d bytes end %d cut %d, want %d bytes end 50 cut 0", len(after.Records), after.LogEndOffset, truncated, len(before.Records))
	}
	if off, _, _ := l2.OffsetForTimestamp(1100); off != 20 {
		t.Fatalf("time index after reopen: offset %d, want 20", off)
	}
}

func TestAppendRejectsBadInputAtomically(t *testing.T) {
	good := func(t *testing.T) []byte { return makeBatch(t, batchSpec{records: 2}) }
	tests := []struct {
		name    string
		input   func(t *testing.T) []byte
		wantErr error
	}{
		{"empty", func(t *testing.T) []byte { return nil }, ErrInvalidRecord},
		{"crc mismatch in second batch", func(t *testing.T) []byte {
			b := batches(t, batchSpec{}, batchSpec{})
			b[len(b)-1] ^= 0xff
			return b
		}, ErrCorruptBatch},
		// Kafka's ProduceRequest.validateRecords: v3+ requests carry magic 2 only (INVALID_RECORD).
		{"magic 1", func(t *testing.T) []byte {
			b := good(t)
			b[offMagic] = 1
			return b
		}, ErrInvalidRecord},
		{"torn second batch", func(t *testing.T) []byte {
			b := append(good(t), good(t)...)
			return b[:len(b)-3]
		}, ErrCorruptBatch},
		{"trailing garbage", func(t *testing.T) []byte { return append(good(t), 1, 2, 3) }, ErrCorruptBatch},
		{"batchLength too small", func(t *testing.T) []byte {
			b := good(t)
			b[offBatchLength+3] = 10
			b[offBatchLength+2] = 0
			return b
		}, ErrCorruptBatch},
		{"records count disagrees with lastOffsetDelta", func(t *testing.T) []byte {
			return recrc(good(t), func(b []byte) { b[offRecordsCount+3] = 5 })
		}, ErrInvalidRecord},
		{"too large", func(t *testing.T) []byte { return makeBatch(t, batchSpec{valueSize: 2000}) }, ErrMessageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), Config{MaxMessageBytes: 1500})
			mustAppend(t, l, good(t), 0)
			in := tt.input(t)
			orig := bytes.Clone(in)
			if _, err := l.Append(in, 0, AppendOptions{}); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Append: %v, want %v", err, tt.wantErr)
			}
			if !bytes.Equal(in, orig) {
				t.Error("rejected input was modified")
			}
			if l.EndOffset() != 2 || len(readAll(t, l)) != 1 {
				t.Fatalf("log changed: end %d", l.EndOffset())
			}
		})
	}
}

// recrc edits a batch and recomputes its CRC, to build well-formed but invalid batches.
func recrc(b []byte, edit func([]byte)) []byte {
	edit(b)
	sum := crcOf(b)
	b[offCRC], b[offCRC+1], b[offCRC+2], b[offCRC+3] = byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum)
	return b
}

func TestChangedClosesOnAppend(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	ch := l.Changed()
	select {
	case <-ch:
		t.Fatal("closed before any append")
	default:
	}
	mustAppend(t, l, makeBatch(t, batchSpec{}), 0)
	select {
	case <-ch:
	default:
		t.Fatal("not closed after append")
	}
	if l.Changed() == ch {
		t.Fatal("no fresh channel after append")
	}
}

// TestConcurrentReadersAndAppender checks under -race that readers never see a partial
// batch or an offset beyond what was published.
func TestConcurrentReadersAndAppender(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 4000, IndexIntervalBytes: 200})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				end := l.EndOffset()
				res, err := l.Read(0, end, 1<<20)
				if err != nil {
					t.Error(err)
					return
				}
				var next int64
				for b := res.Records; len(b) > 0; {
					h, err := decodeBatch(b)
					if err != nil || h.BaseOffset != next || h.BaseOffset >= end {
						t.Errorf("bad batch at %d: %v", next, err)
						return
					}
					next = h.lastOffset() + 1
					b = b[h.size():]
				}
				l.OffsetForTimestamp(1100)
			}
		}()
	}
	appendN(t, l, 300, 2)
	close(stop)
	wg.Wait()
}

func TestFilesOnDisk(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallCfg)
	appendN(t, l, 10, 3)
	for _, name := range []string{"00000000000000000000.log", "00000000000000000000.index", "00000000000000000000.timeindex", epochCheckpointName} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
}
