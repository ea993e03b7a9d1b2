package partitionlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzRecoverBatches feeds arbitrary bytes to the recovery scanner. It must
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

// FuzzValidateBatch feeds producer batches with arbitrary record bytes, attributes and
// record counts (the header and CRC made valid, so validation reaches the records) to the
// leader's validator (validate.go). It must never panic, and what it accepts must be
// readable by consumers: franz-go decompresses the records to the same bytes, kmsg decodes
// exactly the declared number of records, numbered 0, 1, 2 ..., and the stored-batch rules
// Verify uses accept the batch too. The streaming scanner (compressed batches) must judge
// plain records as the in-place one does.
func FuzzValidateBatch(f *testing.F) {
	recs := plainRecords(6)
	recs[2].Headers = []kmsg.Header{{Key: "h", Value: []byte("v")}}
	plain := encodeRecords(recs)
	for codec := int16(0); codec <= codecZstd; codec++ {
		body := plain
		if codec != codecNone {
			var err error
			if body, err = compressRecords(plain, codec); err != nil {
				f.Fatal(err)
			}
		}
		f.Add(body, codec, int32(6))
		f.Add(body[:len(body)/2], codec, int32(6)) // truncated
		f.Add(scramble(body), codec, int32(6))     // scrambled
		f.Add(body, codec, int32(5))               // a count that lies
	}
	f.Add(xerialFrame(plain, 64), int16(codecSnappy), int32(6))
	f.Add(plain, int16(7), int32(6))
	f.Add([]byte{}, int16(0), int32(1))
	cfg, _ := Config{}.withDefaults()
	decompress := kgo.DefaultDecompressor()
	f.Fuzz(func(t *testing.T, body []byte, attrs int16, count int32) {
		batch := rawBatch(body, attrs, count, nil)
		if h, _ := parseHeader(batch); count >= 0 {
			rules := recordRules{producer: true, compacted: attrs&0x100 != 0}
			inPlace := recordScanner{b: body}
			streamed := recordScanner{src: bytes.NewReader(body), buf: make([]byte, 16)}
			ts1, err1 := rules.scan(&inPlace, h, 0)
			ts2, err2 := rules.scan(&streamed, h, 0)
			if (err1 == nil) != (err2 == nil) || ts1 != ts2 {
				t.Fatalf("in place: %d, %v; streamed: %d, %v", ts1, err1, ts2, err2)
			}
		}
		hs, err := checkProduced(batch, cfg, AppendOptions{Compacted: attrs&0x100 != 0})
		if err != nil {
			var ve *ValidationError
			if !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrMessageTooLarge) && !errors.As(err, &ve) {
				t.Fatalf("refusal %v is neither corrupt, too large nor a ValidationError", err)
			}
			return
		}
		h := hs[0]
		if codec := h.Attributes & attrCompressionMask; codec != codecNone {
			ours, err1 := decompressAll(codec, body)
			theirs, err2 := decompress.Decompress(body, kgo.CompressionCodecType(codec))
			if err1 != nil || err2 != nil || !bytes.Equal(ours, theirs) {
				t.Fatalf("accepted %s records franz-go reads differently: %v, %v", codecName(codec), err1, err2)
			}
		}
		got, err := decodeRecords(batch, h)
		if err != nil || int32(len(got)) != count {
			t.Fatalf("accepted batch of %d records decodes as %d: %v", count, len(got), err)
		}
		for i, r := range got {
			if r.rec.OffsetDelta != int32(i) {
				t.Fatalf("record %d has offset delta %d", i, r.rec.OffsetDelta)
			}
		}
		if _, err := scanRecords(batch, h, recordRules{}, 0); err != nil {
			t.Fatalf("accepted from a producer, refused as stored: %v", err)
		}
	})
}
