package partitionlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Tests of the leader's batch validation (validate.go), after Kafka's LogValidator: what a
// producer may not store, and what Append answers.

// plainRecords returns n records as a producer writes them: keyed, offset deltas 0..n-1,
// timestamp deltas 0..n-1.
func plainRecords(n int) []kmsg.Record {
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Key: fmt.Appendf(nil, "k%d", i), Value: bytes.Repeat([]byte{'v'}, 20+i)}
	}
	return recs
}

// encodeRecords encodes recs with kmsg, filling in each Length.
func encodeRecords(recs []kmsg.Record) []byte {
	var out []byte
	for _, r := range recs {
		r.Length = 0
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		out = r.AppendTo(out)
	}
	return out
}

// rawBatch wraps records bytes (already compressed if attrs says so) in a v2 header for
// count records, with a valid CRC. edit may change the header before the CRC is computed.
func rawBatch(body []byte, attrs int16, count int32, edit func(*kmsg.RecordBatch)) []byte {
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: attrs, LastOffsetDelta: count - 1,
		FirstTimestamp: 1000, MaxTimestamp: 1000 + int64(count) - 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: count, Records: body,
	}
	if edit != nil {
		edit(&rb)
	}
	rb.Length = int32(minBatchLength + len(rb.Records))
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return out
}

// producedBatch is a valid producer's batch of recs compressed with codec (franz-go's
// compressors, as a client would).
func producedBatch(t testing.TB, codec int16, recs []kmsg.Record) []byte {
	t.Helper()
	body := encodeRecords(recs)
	if codec != codecNone {
		var err error
		if body, err = compressRecords(body, codec); err != nil {
			t.Fatal(err)
		}
	}
	return rawBatch(body, codec, int32(len(recs)), nil)
}

// xerialFrame frames body as Java producers' snappy does, in chunks of chunk bytes.
func xerialFrame(body []byte, chunk int) []byte {
	out := append(slices.Clone(xerialMagic), 0, 0, 0, 1, 0, 0, 0, 1)
	for len(body) > 0 {
		n := min(chunk, len(body))
		block := snappy.Encode(nil, body[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		body = body[n:]
	}
	return out
}

// TestValidateAcceptsEveryCodec: valid batches of each codec Kafka has (and Java's xerial
// snappy framing) are stored byte for byte and read back with the same records.
func TestValidateAcceptsEveryCodec(t *testing.T) {
	recs := plainRecords(50)
	inputs := map[string][]byte{}
	for codec := int16(0); codec <= codecZstd; codec++ {
		inputs[codecName(codec)] = producedBatch(t, codec, recs)
	}
	inputs["snappy (xerial framing)"] = rawBatch(xerialFrame(encodeRecords(recs), 300), codecSnappy, 50, nil)
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), Config{})
			res, err := l.Append(bytes.Clone(in), 3, AppendOptions{Compacted: true})
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			got := readFrom(t, l, 0)
			h, _ := parseHeader(got)
			if res.BaseOffset != 0 || l.EndOffset() != 50 || !bytes.Equal(got[offAttributes:], in[offAttributes:]) {
				t.Fatalf("stored batch differs from the producer's past the leader epoch")
			}
			kept, err := decodeRecords(got, h)
			if err != nil || len(kept) != 50 || string(kept[49].rec.Key) != "k49" {
				t.Fatalf("records read back: %d, %v", len(kept), err)
			}
		})
	}
}

// TestValidateRefuses holds Append to Kafka's answers for batches it must not store (the
// "Hardening" issue's list): the sentinel (so the Kafka code), the records blamed
// (KIP-467 RecordErrors), and nothing written or modified.
func TestValidateRefuses(t *testing.T) {
	recs := plainRecords(5)
	plain := encodeRecords(recs)
	withRecord := func(i int, edit func(*kmsg.Record)) []byte {
		rs := slices.Clone(recs)
		edit(&rs[i])
		return rawBatch(encodeRecords(rs), 0, 5, nil)
	}
	tests := []struct {
		name    string
		opts    AppendOptions
		cfg     Config
		input   []byte
		want    error
		records []int32 // RecordErrors indexes; nil when the batch as a whole is refused
	}{
		{name: "gzip attribute over plain records", input: rawBatch(plain, codecGzip, 5, nil), want: ErrInvalidRecord},
		{name: "snappy attribute over plain records", input: rawBatch(plain, codecSnappy, 5, nil), want: ErrInvalidRecord},
		{name: "lz4 attribute over plain records", input: rawBatch(plain, codecLZ4, 5, nil), want: ErrInvalidRecord},
		{name: "zstd attribute over plain records", input: rawBatch(plain, codecZstd, 5, nil), want: ErrInvalidRecord},
		{name: "compression codec 7", input: rawBatch(plain, 7, 5, nil), want: ErrUnsupportedCompression},
		{name: "compression codec 5", input: rawBatch(plain, 5, 5, nil), want: ErrUnsupportedCompression},
		{name: "record count and lastOffsetDelta lie together (end offset +2^31)", input: rawBatch(plain, 0, math.MaxInt32, nil),
			want: ErrInvalidRecord, records: []int32{5}},
		{name: "lastOffsetDelta lies", input: rawBatch(plain, 0, 5, func(b *kmsg.RecordBatch) { b.LastOffsetDelta = 1 << 30 }), want: ErrInvalidRecord},
		{name: "record count below the records", input: rawBatch(plain, 0, 3, nil), want: ErrInvalidRecord, records: []int32{3}},
		{name: "no records", input: rawBatch(nil, 0, 0, nil), want: ErrInvalidRecord},
		{name: "scrambled records", input: rawBatch(scramble(plain), 0, 5, nil), want: ErrInvalidRecord, records: []int32{0}},
		{name: "compressed, fewer records than the header says", input: rawBatch(mustCompress(t, encodeRecords(recs[:4]), codecLZ4), codecLZ4, 5, nil),
			want: ErrInvalidRecord, records: []int32{4}},
		{name: "compressed, scrambled inside", input: rawBatch(mustCompress(t, scramble(plain), codecZstd), codecZstd, 5, nil),
			want: ErrInvalidRecord, records: []int32{0}},
		{name: "record length overruns the batch", input: rawBatch(plain[:len(plain)-4], 0, 5, nil), want: ErrInvalidRecord, records: []int32{4}},
		{name: "offset delta out of order", input: withRecord(2, func(r *kmsg.Record) { r.OffsetDelta = 7 }), want: ErrInvalidRecord, records: []int32{2}},
		{name: "negative header key length", input: patchable(withRecord(1, func(r *kmsg.Record) { r.Headers = []kmsg.Header{{Key: "h"}} })).patchHeaderKey(t),
			want: ErrInvalidRecord, records: []int32{1}},
		{name: "control batch from a producer", input: rawBatch(plain, attrControl, 5, nil), want: ErrInvalidRecord},
		{name: "transactional batch without a transactional id", input: rawBatch(plain, attrTransactional, 5, func(b *kmsg.RecordBatch) {
			b.ProducerID, b.ProducerEpoch, b.FirstSequence = 4, 0, 0
		}), want: ErrTransactionalIDRequired},
		{name: "idempotent batch without a base sequence", input: rawBatch(plain, 0, 5, func(b *kmsg.RecordBatch) { b.ProducerID, b.ProducerEpoch = 4, 0 }),
			want: ErrInvalidRecord},
		{name: "null keys on a compacted topic", opts: AppendOptions{Compacted: true},
			input: rawBatch(encodeRecords(nullKeys(recs, 1, 3)), 0, 5, nil), want: ErrInvalidRecord, records: []int32{1, 3}},
		{name: "null keys on a compacted topic, gzip", opts: AppendOptions{Compacted: true},
			input: rawBatch(mustCompress(t, encodeRecords(nullKeys(recs, 0)), codecGzip), codecGzip, 5, nil), want: ErrInvalidRecord, records: []int32{0}},
		{name: "LogAppendTime set by the producer under LogAppendTime", cfg: Config{MessageTimestampType: LogAppendTime},
			input: rawBatch(plain, attrLogAppendTime, 5, nil), want: ErrInvalidTimestamp, records: []int32{0, 1, 2, 3, 4}},
		{name: "LogAppendTime without a timestamp under CreateTime",
			input: rawBatch(plain, attrLogAppendTime, 5, func(b *kmsg.RecordBatch) { b.MaxTimestamp = -1 }), want: ErrInvalidTimestamp, records: []int32{0, 1, 2, 3, 4}},
		{name: "bytes after the last compressed record", input: rawBatch(append(mustCompress(t, plain, codecGzip), 1, 2, 3), codecGzip, 5, nil),
			want: ErrInvalidRecord, records: []int32{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), tt.cfg)
			good := producedBatch(t, codecNone, recs)
			mustAppend(t, l, bytes.Clone(good), 0)
			in := tt.input
			orig := bytes.Clone(in)
			_, err := l.Append(in, 0, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Append: %v, want %v", err, tt.want)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Append: %v is not a *ValidationError", err)
			}
			var got []int32
			for _, r := range ve.Records {
				got = append(got, r.Index)
				if r.Message == "" {
					t.Errorf("record %d refused without a message", r.Index)
				}
			}
			if !slices.Equal(got, tt.records) {
				t.Fatalf("records blamed %v, want %v (%v)", got, tt.records, err)
			}
			if !bytes.Equal(in, orig) || l.EndOffset() != 5 {
				t.Fatalf("refused batch changed something: end %d", l.EndOffset())
			}
		})
	}
}

// patchable lets a table build a batch and then break it in ways kmsg cannot encode.
type patchable []byte

// patchHeaderKey turns the header key length of the batch's only header (a one-byte
// varint 2, for "h") into -1.
func (b patchable) patchHeaderKey(t *testing.T) []byte {
	t.Helper()
	body := bytes.Clone(b[headerSize:])
	i := bytes.Index(body, []byte{2, 'h'})
	if i < 0 {
		t.Fatal("no header key to patch")
	}
	body[i] = 1 // zigzag -1
	h, _ := parseHeader(b)
	return rawBatch(body, h.Attributes, h.RecordsCount, nil)
}

func scramble(b []byte) []byte {
	out := bytes.Clone(b)
	for i := range out {
		out[i] = out[i]*131 + 7
	}
	return out
}

func nullKeys(recs []kmsg.Record, which ...int) []kmsg.Record {
	out := slices.Clone(recs)
	for _, i := range which {
		out[i].Key = nil
	}
	return out
}

func mustCompress(t testing.TB, b []byte, codec int16) []byte {
	t.Helper()
	out, err := compressRecords(b, codec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestValidateAllowsWhatKafkaAllows: what a producer may send is stored.
func TestValidateAllowsWhatKafkaAllows(t *testing.T) {
	recs := plainRecords(4)
	tests := []struct {
		name  string
		opts  AppendOptions
		input []byte
	}{
		{"null keys when the topic is not compacted", AppendOptions{}, rawBatch(encodeRecords(nullKeys(recs, 0, 1, 2, 3)), 0, 4, nil)},
		{"null values on a compacted topic (tombstones)", AppendOptions{Compacted: true}, func() []byte {
			rs := slices.Clone(recs)
			rs[2].Value = nil
			return rawBatch(encodeRecords(rs), 0, 4, nil)
		}()},
		{"headers with null values", AppendOptions{}, func() []byte {
			rs := slices.Clone(recs)
			rs[1].Headers = []kmsg.Header{{Key: "a", Value: nil}, {Key: "", Value: []byte("x")}}
			return rawBatch(encodeRecords(rs), 0, 4, nil)
		}()},
		{"transactional batch with a transactional id", AppendOptions{TransactionalID: "tx"}, rawBatch(encodeRecords(recs), attrTransactional, 4, func(b *kmsg.RecordBatch) {
			b.ProducerID, b.ProducerEpoch, b.FirstSequence = 4, 0, 0
		})},
		{"a marker from a coordinator", AppendOptions{FromCoordinator: true}, rawBatch(encodeRecords([]kmsg.Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}}), attrControl|attrTransactional, 1, func(b *kmsg.RecordBatch) {
			b.ProducerID, b.ProducerEpoch = 4, 0
		})},
		{"negative timestamps", AppendOptions{}, rawBatch(encodeRecords(recs), 0, 4, func(b *kmsg.RecordBatch) { b.FirstTimestamp, b.MaxTimestamp = -1, -1 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), Config{})
			if _, err := l.Append(tt.input, 0, tt.opts); err != nil {
				t.Fatalf("Append: %v", err)
			}
		})
	}
}

// TestValidateFixesMaxTimestamp: under CreateTime the stored maxTimestamp is the largest
// record timestamp, whatever the producer wrote, with the CRC recomputed (Kafka's
// setMaxTimestamp); retention and the time index then see the truth.
func TestValidateFixesMaxTimestamp(t *testing.T) {
	recs := plainRecords(3)
	for _, lie := range []int64{-1, 5, 1 << 50} {
		l := openLog(t, t.TempDir(), Config{})
		in := rawBatch(encodeRecords(recs), 0, 3, func(b *kmsg.RecordBatch) { b.MaxTimestamp = lie })
		mustAppend(t, l, in, 0)
		h := decodeAll(t, readFrom(t, l, 0))[0]
		if h.MaxTimestamp != 1002 {
			t.Fatalf("producer's maxTimestamp %d stored as %d, want 1002", lie, h.MaxTimestamp)
		}
		if off, ts, err := l.OffsetForTimestamp(1002); err != nil || off != 2 || ts != 1002 {
			t.Fatalf("OffsetForTimestamp(1002) = %d, %d, %v", off, ts, err)
		}
	}
}

// TestValidateRecordIndexAcrossBatches: with several batches in one request, RecordErrors
// count records from the first batch's first.
func TestValidateRecordIndexAcrossBatches(t *testing.T) {
	recs := plainRecords(3)
	in := append(producedBatch(t, codecNone, recs), rawBatch(encodeRecords(nullKeys(recs, 2)), 0, 3, nil)...)
	l := openLog(t, t.TempDir(), Config{})
	_, err := l.Append(in, 0, AppendOptions{Compacted: true})
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Records) != 1 || ve.Records[0].Index != 5 || ve.Batch == 0 {
		t.Fatalf("Append: %v, want record 5 of the second batch refused", err)
	}
}

// BenchmarkValidate measures checkProduced alone on ~1.2 KiB batches of 10 records, per
// codec: what validation adds to an append.
func BenchmarkValidate(b *testing.B) {
	recs := make([]kmsg.Record, 10)
	for i := range recs {
		recs[i] = kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Key: []byte("k"), Value: bytes.Repeat([]byte{byte('a' + i)}, 100)}
	}
	cfg, _ := Config{}.withDefaults()
	for codec := int16(0); codec <= codecZstd; codec++ {
		batch := producedBatch(b, codec, recs)
		b.Run(codecName(codec), func(b *testing.B) {
			b.SetBytes(int64(len(encodeRecords(recs))))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := checkProduced(batch, cfg, AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
