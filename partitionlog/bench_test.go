package partitionlog

import (
	"bytes"
	"os"
	"path/filepath"
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
		if _, err := l.Append(buf, 0, AppendOptions{}); err != nil {
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
		if _, err := l.Append(bytes.Clone(all), 0, AppendOptions{}); err != nil {
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

// BenchmarkAppendVsRawWrite appends 1 MiB as 1 KiB batches per iteration next to plain
// sequential os.File writes of the same sizes, so the log's overhead over the disk shows in
// one run (MB/s of each sub-benchmark; no fsync in either, as in Kafka's default).
func BenchmarkAppendVsRawWrite(b *testing.B) {
	batch := makeBatch(b, batchSpec{records: 1, valueSize: 1024 - 61 - 12})
	const perOp = 1 << 20
	n := perOp / len(batch)
	b.Run("append", func(b *testing.B) {
		l := openLog(b, b.TempDir(), Config{SegmentBytes: 256 << 20})
		buf := make([]byte, len(batch))
		b.SetBytes(int64(n * len(batch)))
		for b.Loop() {
			for range n {
				copy(buf, batch)
				if _, err := l.Append(buf, 0, AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(int64(n * len(batch)))
		var written int64
		for b.Loop() {
			for range n {
				if written >= 256<<20 {
					f.Truncate(0) // same file sizes as the log's segments
					written = 0
				}
				if _, err := f.WriteAt(batch, written); err != nil {
					b.Fatal(err)
				}
				written += int64(len(batch))
			}
		}
	})
}

// BenchmarkReadSections plans the same 1 MiB fetches as BenchmarkRead without copying the
// bytes (what a sendfile fetch costs the log).
func BenchmarkReadSections(b *testing.B) {
	l := openLog(b, b.TempDir(), Config{SegmentBytes: 16 << 20})
	batch := makeBatch(b, batchSpec{records: 10, valueSize: 100})
	all := bytes.Repeat(batch, 1000)
	for range 50 {
		if _, err := l.Append(bytes.Clone(all), 0, AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	end := l.EndOffset()
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		secs, _, release, err := l.ReadSections(off, end, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for _, s := range secs {
			n += s.Length
		}
		release()
		b.SetBytes(n)
		off = (off + 7919*10) % end
	}
}
