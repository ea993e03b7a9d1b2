package partitionlog

import (
	"testing"
)

// After compaction offsets have gaps. A fetch at an offset inside a gap gets the next
// batch that still exists, as Kafka's LogSegment.read does (it looks up the first batch
// whose last offset is >= the fetch offset), so consumers step over the gap.
func TestReadInCompactionGaps(t *testing.T) {
	l := openLog(t, t.TempDir(), smallCfg)
	fillUpdates(t, l, 60, 8)
	rollWith(t, l, "roll")
	mustCompact(t, l, compactT0, CompactConfig{})
	end := l.EndOffset()
	for offset := int64(0); offset < end; offset++ {
		res, err := l.Read(offset, end, 1)
		if err != nil {
			t.Fatalf("Read(%d): %v", offset, err)
		}
		hs := decodeAll(t, res.Records)
		if len(hs) == 0 || hs[0].lastOffset() < offset {
			t.Fatalf("Read(%d) in a compaction gap returned %d batches, first %+v; want the batch holding or following it", offset, len(hs), hs)
		}
		sections, _, release, err := l.ReadSections(offset, end, 1)
		if err != nil {
			t.Fatalf("ReadSections(%d): %v", offset, err)
		}
		if len(sections) == 0 {
			t.Fatalf("ReadSections(%d) returned no sections", offset)
		}
		release()
	}
}
