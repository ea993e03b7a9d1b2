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

// BenchmarkOpenProducerState opens a ~130 MiB log of 1.5 million small batches (a tenth
// of them from idempotent producers) in 16 MiB segments, after a clean Close: "snapshot"
// loads the producer-state snapshot Close wrote, "scan" removes it first, so Open reads
// every batch header as it did before snapshots. Both validate the last segment.
func BenchmarkOpenProducerState(b *testing.B) {
	dir := b.TempDir()
	cfg := Config{SegmentBytes: 16 << 20}
	l := openLog(b, dir, cfg)
	plain := makeBatch(b, batchSpec{records: 1, valueSize: 20})
	seqs := map[int64]int32{}
	for i := range 1500 {
		var buf []byte
		for j := range 1000 {
			if j%10 != 0 {
				buf = append(buf, plain...)
				continue
			}
			pid := int64(1 + (i*100+j/10)%500)
			buf = append(buf, makeBatch(b, batchSpec{records: 1, valueSize: 20, producerID: pid, seq: seqs[pid]})...)
			seqs[pid]++
		}
		if _, err := l.Append(buf, 0, AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	l.SetHighWatermark(l.EndOffset())
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	open := func(b *testing.B, removeSnapshots bool) {
		for b.Loop() {
			b.StopTimer()
			if removeSnapshots {
				snaps, _ := filepath.Glob(filepath.Join(dir, "*"+snapshotSuffix))
				for _, p := range snaps {
					os.Remove(p)
				}
			}
			b.StartTimer()
			l, err := Open(dir, cfg, Hooks{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if got := len(l.Producers()); got != 500 {
				b.Fatalf("%d producers, want 500", got)
			}
			l.Close()
			b.StartTimer()
		}
	}
	b.Run("snapshot", func(b *testing.B) { open(b, false) })
	b.Run("scan", func(b *testing.B) { open(b, true) })
}
