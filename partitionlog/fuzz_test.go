package partitionlog

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// FuzzRecoverBatches feeds arbitrary bytes to the recovery scanner (STYLE item 9). It must
// never panic; it must stop inside the input; and the valid prefix it reports must scan back
// the same, with no error, as a log recovered to that point would.
func FuzzRecoverBatches(f *testing.F) {
	valid := batches(f, batchSpec{records: 3}, batchSpec{records: 1, producerID: 5, seq: 0}, batchSpec{control: true, producerID: 5})
	stampDense(valid)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])                                                       // torn last batch
	f.Add(valid[:headerSize-1])                                                       // torn header
	f.Add(append(bytes.Clone(valid), 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff)) // huge length
	f.Add(bytes.Repeat([]byte{0xff}, headerSize))                                     // maximal header
	f.Add([]byte{})
	late := makeBatch(f, batchSpec{})
	binary.BigEndian.PutUint64(late, math.MaxInt64) // no next offset after it
	f.Add(append(bytes.Clone(valid), late...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var first []batchHeader
		n, err := scanVerified(bytes.NewReader(data), int64(len(data)), 0, func(h batchHeader, _ int64) { first = append(first, h) })
		if n < 0 || n > int64(len(data)) || (err == nil) != (n == int64(len(data))) {
			t.Fatalf("scan = (%d, %v) over %d bytes", n, err, len(data))
		}
		var again []batchHeader
		n2, err := scanVerified(bytes.NewReader(data[:n]), n, 0, func(h batchHeader, _ int64) { again = append(again, h) })
		if err != nil || n2 != n || len(again) != len(first) {
			t.Fatalf("valid prefix of %d bytes rescanned as (%d, %v)", n, n2, err)
		}
		for i := range first {
			if first[i] != again[i] {
				t.Fatalf("batch %d differs on rescan: %+v vs %+v", i, first[i], again[i])
			}
		}
		// The read path's cheap walk must agree on the same bytes.
		if m, _, err := wholeBatches(data[:n], math.MaxInt64); err != nil || m != n {
			t.Fatalf("wholeBatches over valid prefix = (%d, %v), want %d", m, err, n)
		}
	})
}

// stampDense gives concatenated batches consecutive base offsets from 0, as a log holds them.
func stampDense(b []byte) {
	var next int64
	for len(b) > 0 {
		h, _ := parseHeader(b)
		binary.BigEndian.PutUint64(b, uint64(next))
		next += int64(h.LastOffsetDelta) + 1
		b = b[h.size():]
	}
}

// FuzzIndexDecoders: index files are untrusted input at Open.
func FuzzIndexDecoders(f *testing.F) {
	f.Add(encodeIndex([]indexEntry{{1, 100}, {5, 4200}}), encodeTimeIndex([]timeEntry{{10, 1}, {20, 5}}))
	f.Add([]byte{1, 2, 3}, bytes.Repeat([]byte{0xff}, 24))
	f.Fuzz(func(t *testing.T, ib, tb []byte) {
		if es, err := decodeIndex(ib, 1<<20, 1<<20); err == nil && !bytes.Equal(encodeIndex(es), ib) {
			t.Fatal("index does not round-trip")
		}
		if es, err := decodeTimeIndex(tb, 1<<20); err == nil && !bytes.Equal(encodeTimeIndex(es), tb) {
			t.Fatal("time index does not round-trip")
		}
	})
}
