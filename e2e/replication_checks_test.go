package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Tests of the replication checkers (replication_helpers_test.go) on
// synthetic input, so that a failing replication test points at the system
// and not at its checks.

// byPartition groups records read in partition order into the map
// checkAckedWrites takes.
func byPartition(read []*kgo.Record) map[int32][]*kgo.Record {
	out := make(map[int32][]*kgo.Record)
	for _, r := range read {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

func TestCheckAckedWritesAcceptsValidLog(t *testing.T) {
	acked, read := fakeLog(5000, 50, 3)
	checkAckedWrites(t, acked, byPartition(read))
	// Records written but never acknowledged (the answer was lost) are
	// allowed.
	checkAckedWrites(t, acked[:len(acked)/2], byPartition(read))
}

func TestCheckAckedWritesRejectsViolations(t *testing.T) {
	// sameKey returns the positions in rs of two records of one key.
	sameKey := func(rs []*kgo.Record) (int, int) {
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				if string(rs[i].Key) == string(rs[j].Key) {
					return i, j
				}
			}
		}
		panic("no two records share a key")
	}
	for _, tc := range []struct {
		name   string
		mutate func(acked []*kgo.Record, got map[int32][]*kgo.Record) []*kgo.Record
		want   string
	}{
		{"gap", func(a []*kgo.Record, g map[int32][]*kgo.Record) []*kgo.Record {
			g[0] = slices.Delete(g[0], 5, 6)
			return a
		}, "inconsistent-offsets"},
		{"duplicate", func(a []*kgo.Record, g map[int32][]*kgo.Record) []*kgo.Record {
			dup := *g[1][3]
			dup.Offset = int64(len(g[1]))
			g[1] = append(g[1], &dup)
			return a
		}, "duplicate"},
		{"lost tail", func(a []*kgo.Record, g map[int32][]*kgo.Record) []*kgo.Record {
			g[2] = g[2][:len(g[2])-1]
			return a
		}, "lost-write"},
		{"overwritten", func(a []*kgo.Record, g map[int32][]*kgo.Record) []*kgo.Record {
			r := *g[0][7]
			r.Value = []byte("v99999999")
			g[0][7] = &r
			return a
		}, "lost-write"},
		{"reordered key", func(a []*kgo.Record, g map[int32][]*kgo.Record) []*kgo.Record {
			i, j := sameKey(g[0])
			x, y := *g[0][i], *g[0][j]
			x.Value, y.Value = y.Value, x.Value
			g[0][i], g[0][j] = &x, &y
			return nil // the acknowledgements no longer match; check order alone
		}, "order"},
		{"nonmonotonic send", func(a []*kgo.Record, g map[int32][]*kgo.Record) []*kgo.Record {
			var first, second int = -1, -1
			for i, r := range a {
				if r.Partition != 1 {
					continue
				}
				if first < 0 {
					first = i
				} else {
					second = i
					break
				}
			}
			a[first], a[second] = a[second], a[first]
			return a
		}, "nonmonotonic-send"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acked, read := fakeLog(1000, 10, 3)
			got := byPartition(read)
			acked = tc.mutate(acked, got)
			msg := expectFatal(t, func(tb testing.TB) { checkAckedWrites(tb, acked, got) })
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("failure %q does not mention %q", msg, tc.want)
			}
		})
	}
}

// fakeBatch returns a v2 batch header for offsets base..base+count-1 under
// epoch, followed by pad bytes of fill (a stand-in for records: the
// checkers read only the header).
func fakeBatch(base int64, count int, epoch int32, pad int, fill byte) []byte {
	b := make([]byte, batchHeaderLength+pad)
	binary.BigEndian.PutUint64(b, uint64(base))
	binary.BigEndian.PutUint32(b[batchLengthAt:], uint32(len(b)-batchLogOverhead))
	binary.BigEndian.PutUint32(b[batchEpochAt:], uint32(epoch))
	b[16] = 2 // magic
	binary.BigEndian.PutUint32(b[batchLastDeltaAt:], uint32(count-1))
	for i := batchHeaderLength; i < len(b); i++ {
		b[i] = fill
	}
	return b
}

// writeSegments writes a partition directory with one segment per element
// of segs, named by the base offset of its first batch.
func writeSegments(t *testing.T, segs ...[][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for _, seg := range segs {
		name := fmt.Sprintf("%020d.log", binary.BigEndian.Uint64(seg[0]))
		if err := os.WriteFile(filepath.Join(dir, name), slices.Concat(seg...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadLogBatches(t *testing.T) {
	seg0 := [][]byte{fakeBatch(0, 3, 0, 10, 'a'), fakeBatch(3, 2, 0, 5, 'b')}
	seg1 := [][]byte{fakeBatch(5, 5, 1, 20, 'c'), fakeBatch(10, 1, 1, 0, 'd')}
	dir := writeSegments(t, seg0, seg1)

	batches, err := readLogBatches(dir, 7)
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	for _, b := range batches {
		bases = append(bases, b.base)
	}
	if !slices.Equal(bases, []int64{0, 3, 5}) {
		t.Fatalf("batches below offset 7 start at %v, want [0 3 5]", bases)
	}
	if err := checkLogCovers(batches, 7); err != nil {
		t.Fatalf("covers: %v", err)
	}
	if batches[2].last != 9 || batches[2].epoch != 1 {
		t.Fatalf("last batch: last offset %d epoch %d, want 9 and 1", batches[2].last, batches[2].epoch)
	}

	// The same batches split into segments elsewhere compare equal.
	other := writeSegments(t, seg0[:1], [][]byte{seg0[1], seg1[0], seg1[1]})
	same, err := readLogBatches(other, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameBatches(batches, same); err != nil {
		t.Fatalf("same batches in other segments: %v", err)
	}

	// One byte of a record differs.
	diff := writeSegments(t, seg0, [][]byte{fakeBatch(5, 5, 1, 20, 'X'), seg1[1]})
	changed, err := readLogBatches(diff, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameBatches(batches, changed); err == nil || !strings.Contains(err.Error(), "base offset 5") {
		t.Fatalf("differing batch at offset 5: got %v", err)
	}

	// A replica that misses offsets below the high watermark.
	short := writeSegments(t, seg0)
	few, err := readLogBatches(short, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkLogCovers(few, 7); err == nil {
		t.Fatal("a log ending at offset 4 covers high watermark 7")
	}
	gap := writeSegments(t, seg0[:1], seg1)
	holes, err := readLogBatches(gap, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkLogCovers(holes, 7); err == nil {
		t.Fatal("a log without offsets 3-4 covers high watermark 7")
	}

	// A torn batch at the end of a segment.
	torn := writeSegments(t, [][]byte{seg0[0], seg0[1][:30]})
	if _, err := readLogBatches(torn, 7); err == nil {
		t.Fatal("a torn batch was read without error")
	}
}
