package partitionlog

import (
	"bytes"
	"hash/crc32"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchSpec describes a test batch; zero fields mean a plain, non-idempotent batch.
type batchSpec struct {
	records    int   // default 1
	valueSize  int   // default 10
	baseTs     int64 // base timestamp; record i gets baseTs + i
	producerID int64 // 0 means none (-1 on the wire); use pid() for a real id
	epoch      int16
	seq        int32
	control    bool // a COMMIT marker (abort for an ABORT one)
	abort      bool
	txn        bool // a transactional batch
}

// makeBatch encodes a v2 batch the way a producer would, using kmsg for the encoding and
// computing the CRC-32C over attributes..end.
func makeBatch(t testing.TB, spec batchSpec) []byte {
	t.Helper()
	if spec.records == 0 {
		spec.records = 1
	}
	if spec.valueSize == 0 {
		spec.valueSize = 10
	}
	var recs []byte
	for i := range spec.records {
		recs = appendRecord(recs, int32(i), int64(i), bytes.Repeat([]byte{byte('a' + i%26)}, spec.valueSize))
	}
	if spec.control || spec.abort {
		spec.records = 1
		typ := byte(markerCommit)
		if spec.abort {
			typ = markerAbort
		}
		r := kmsg.Record{Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 0}}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(nil)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(spec.records - 1),
		FirstTimestamp:       spec.baseTs,
		MaxTimestamp:         spec.baseTs + int64(spec.records-1),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(spec.records),
		Records:              recs,
	}
	if spec.producerID != 0 {
		b.ProducerID, b.ProducerEpoch, b.FirstSequence = spec.producerID, spec.epoch, spec.seq
	}
	if spec.control || spec.abort {
		b.Attributes |= attrControl | attrTransactional
		b.FirstSequence = -1
	}
	if spec.txn {
		b.Attributes |= attrTransactional
	}
	b.Length = int32(len(b.AppendTo(nil)) - logOverhead)
	out := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(out[offAttributes:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// appendRecord encodes one record with kmsg; Length must be the size of what follows it.
func appendRecord(dst []byte, offsetDelta int32, tsDelta int64, value []byte) []byte {
	r := kmsg.Record{TimestampDelta64: tsDelta, OffsetDelta: offsetDelta, Key: []byte("k"), Value: value}
	r.Length = int32(len(r.AppendTo(nil)) - 1) // a zero Length is one varint byte
	return r.AppendTo(dst)
}

// batches concatenates n single-spec batches, as a produce request may carry.
func batches(t testing.TB, specs ...batchSpec) []byte {
	var out []byte
	for _, s := range specs {
		out = append(out, makeBatch(t, s)...)
	}
	return out
}

// openLog opens dir with cfg and registers Close (ignoring ErrClosed for tests that close).
func openLog(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg, Hooks{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustAppend(t testing.TB, l *Log, records []byte, epoch int32) AppendResult {
	t.Helper()
	res, err := l.Append(records, epoch, AppendOptions{})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// decodeAll parses a Read result into headers, checking each batch fully.
func decodeAll(t testing.TB, b []byte) []batchHeader {
	t.Helper()
	var hs []batchHeader
	for len(b) > 0 {
		h, err := decodeBatch(b)
		if err != nil {
			t.Fatalf("decoding read result: %v", err)
		}
		hs = append(hs, h)
		b = b[h.size():]
	}
	return hs
}

// readAll reads the whole log from its start.
func readAll(t testing.TB, l *Log) []batchHeader {
	t.Helper()
	res, err := l.Read(l.StartOffset(), l.EndOffset(), 1<<30)
	if err != nil {
		t.Fatalf("Read all: %v", err)
	}
	return decodeAll(t, res.Records)
}

// appendN appends n batches of recs records each and returns their raw bytes as stored.
func appendN(t testing.TB, l *Log, n, recs int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		b := makeBatch(t, batchSpec{records: recs, baseTs: int64(1000 + i*10)})
		mustAppend(t, l, b, 0)
		out = append(out, b)
	}
	return out
}
