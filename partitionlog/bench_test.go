package partitionlog

import (
	"bytes"
	"testing"
)

// BenchmarkAppend appends ~1.2 KiB batches of 10 records with 100-byte values; no fsync per
// append, as in Kafka's default.
func BenchmarkAppend(b *testing.B) {
	l := openLog(b, b.TempDir(), Config{})
	batch := makeBatch(b, batchSpec{records: 10, valueSize: 100})
	buf := make([]byte, len(batch))
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, batch)
		if _, err := l.Append(buf, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead fetches 1 MiB at a time from a ~64 MiB log at varying offsets, as
// consumers would.
func BenchmarkRead(b *testing.B) {
	l := openLog(b, b.TempDir(), Config{SegmentBytes: 16 << 20})
	batch := makeBatch(b, batchSpec{records: 10, valueSize: 100})
	all := bytes.Repeat(batch, 1000)
	for range 50 {
		if _, err := l.Append(bytes.Clone(all), 0); err != nil {
			b.Fatal(err)
		}
	}
	end := l.EndOffset()
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		res, err := l.Read(off, end, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(res.Records)))
		off = (off + 7919*10) % end
	}
}
