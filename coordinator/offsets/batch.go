package offsets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors returned by Decode, wrapped with the offset of the batch at fault; test them
// with errors.Is. A coordinator that meets either while replaying cannot trust its
// Table and should give up the partition (Kafka code at the edge: CORRUPT_MESSAGE).
var (
	// ErrCorrupt marks a batch that fails its CRC, is not magic 2, or whose records,
	// keys or values do not parse.
	ErrCorrupt = errors.New("corrupt __consumer_offsets batch")
	// ErrCompressed marks a compressed batch. Strait never writes one here.
	ErrCompressed = errors.New("compressed __consumer_offsets batch")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Layout of a v2 batch header. The CRC covers attributes to the end.
const (
	lengthOffset     = 8
	magicOffset      = 16
	crcOffset        = 17
	attributesOffset = 21
	logOverhead      = 12 // baseOffset + length
	headerAfterLen   = 49 // from partitionLeaderEpoch to the records count
	batchHeaderLen   = logOverhead + headerAfterLen

	compressionMask  = 0x07
	transactionalBit = 0x10
	controlBit       = 0x20
)

// KV is one record's key and value; a nil Value is a tombstone.
type KV struct{ Key, Value []byte }

// Batch builds one uncompressed v2 record batch holding records in order: magic 2,
// baseOffset 0 and partitionLeaderEpoch -1 (the leader assigns both), producerId,
// producerEpoch and baseSequence -1, both timestamps now (CreateTime), CRC-32C set.
// It panics if records is empty: Kafka rejects empty batches.
func Batch(records []KV, now time.Time) []byte {
	if len(records) == 0 {
		panic("offsets: Batch of no records")
	}
	var recs []byte
	for i, kv := range records {
		r := kmsg.Record{OffsetDelta: int32(i), Key: kv.Key, Value: kv.Value}
		// Length is a varint of everything after it; with Length 0 it is one byte.
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	ts := now.UnixMilli()
	b := kmsg.RecordBatch{
		Length:               int32(headerAfterLen + len(recs)),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(records) - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(records)),
		Records:              recs,
	}
	out := b.AppendTo(make([]byte, 0, batchHeaderLen+len(recs)))
	binary.BigEndian.PutUint32(out[crcOffset:], crc32.Checksum(out[attributesOffset:], castagnoli))
	return out
}

// TxnBatch is Batch for a transaction's offset commits (TxnOffsetCommit, KIP-98): the
// batch carries the producer's id and epoch, sequence seq and the transactional bit, so a
// replay holds its records until the producer's COMMIT or ABORT marker.
func TxnBatch(records []KV, producerID int64, epoch int16, seq int32, now time.Time) []byte {
	out := Batch(records, now)
	be := binary.BigEndian
	be.PutUint16(out[attributesOffset:], transactionalBit)
	be.PutUint64(out[producerIDOffset:], uint64(producerID))
	be.PutUint16(out[producerIDOffset+8:], uint16(epoch))
	be.PutUint32(out[producerIDOffset+10:], uint32(seq))
	be.PutUint32(out[crcOffset:], crc32.Checksum(out[attributesOffset:], castagnoli))
	return out
}

// producerIDOffset is where a v2 batch header holds producerId, then epoch and base sequence.
const producerIDOffset = 43

// BatchInfo is what DecodeBatches says of each batch before its records.
type BatchInfo struct {
	BaseOffset, LastOffset int64
	ProducerID             int64
	ProducerEpoch          int16
	BaseSequence           int32
	Transactional          bool
	// Control: an end-transaction marker; Commit says which (COMMIT or ABORT).
	Control, Commit bool
}

// Decode walks concatenated v2 record batches as read from a __consumer_offsets
// partition and calls fn, in log order, for every record it understands with that
// record's offset. Control batches and records whose key version it does not know
// (Kafka's newer group records, key versions 3 and up) are skipped. A batch is checked
// whole before fn sees any of its records, so fn never sees part of a bad batch.
//
// A truncated final batch (a fetch cut at its byte limit) is ignored. next is the
// offset after the last complete batch, control batches included, or 0 if there is
// none; the caller fetches from there. On error next still covers the batches before
// the bad one, whose records fn has seen.
//
// Errors wrap ErrCorrupt (CRC mismatch, magic other than 2, records, keys or values
// that do not parse, a null or short key, an unknown value version under a known key)
// or ErrCompressed (a compressed batch), naming the batch's base offset.
func Decode(batches []byte, fn func(offset int64, r Record)) (next int64, err error) {
	return DecodeBatches(batches, nil, fn)
}

// DecodeBatches is Decode that also calls onBatch (when not nil) for every whole batch,
// control batches included, before fn sees its records: a replay needs the producer and
// transactional bit of offset commits, and the markers that decide them.
func DecodeBatches(batches []byte, onBatch func(BatchInfo), fn func(offset int64, r Record)) (next int64, err error) {
	type decoded struct {
		offset int64
		r      Record
	}
	var pending []decoded
	for len(batches) >= logOverhead {
		base := int64(binary.BigEndian.Uint64(batches))
		length := int32(binary.BigEndian.Uint32(batches[lengthOffset:]))
		if length < headerAfterLen {
			return next, fmt.Errorf("%w: batch at offset %d: length %d is below the header's %d", ErrCorrupt, base, length, headerAfterLen)
		}
		size := logOverhead + int(length)
		if len(batches) < size {
			break // truncated tail
		}
		raw := batches[:size]
		batches = batches[size:]

		if magic := int8(raw[magicOffset]); magic != 2 {
			return next, fmt.Errorf("%w: batch at offset %d: magic %d, want 2", ErrCorrupt, base, magic)
		}
		want := binary.BigEndian.Uint32(raw[crcOffset:])
		if got := crc32.Checksum(raw[attributesOffset:], castagnoli); got != want {
			return next, fmt.Errorf("%w: batch at offset %d: crc %08x, header says %08x", ErrCorrupt, base, got, want)
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			return next, fmt.Errorf("%w: batch at offset %d: %v", ErrCorrupt, base, err)
		}
		if b.Attributes&compressionMask != 0 {
			return next, fmt.Errorf("%w: batch at offset %d: codec %d", ErrCompressed, base, b.Attributes&compressionMask)
		}
		if b.LastOffsetDelta < 0 {
			return next, fmt.Errorf("%w: batch at offset %d: lastOffsetDelta %d", ErrCorrupt, base, b.LastOffsetDelta)
		}
		info := BatchInfo{BaseOffset: base, LastOffset: base + int64(b.LastOffsetDelta), ProducerID: b.ProducerID,
			ProducerEpoch: b.ProducerEpoch, BaseSequence: b.FirstSequence, Transactional: b.Attributes&transactionalBit != 0}
		if b.Attributes&controlBit != 0 {
			info.Control, info.Commit = true, controlCommits(b.Records)
			if onBatch != nil {
				onBatch(info)
			}
			next = base + int64(b.LastOffsetDelta) + 1
			continue
		}

		pending = pending[:0]
		recs := b.Records
		if b.NumRecords < 0 {
			return next, fmt.Errorf("%w: batch at offset %d: %d records", ErrCorrupt, base, b.NumRecords)
		}
		for i := int32(0); i < b.NumRecords; i++ {
			l, n := binary.Varint(recs)
			if n <= 0 || l < 0 || l > int64(len(recs)-n) {
				return next, fmt.Errorf("%w: batch at offset %d: record %d of %d does not fit", ErrCorrupt, base, i, b.NumRecords)
			}
			var kr kmsg.Record
			if err := kr.ReadFrom(recs[:n+int(l)]); err != nil {
				return next, fmt.Errorf("%w: batch at offset %d: record %d: %v", ErrCorrupt, base, i, err)
			}
			recs = recs[n+int(l):]
			if kr.OffsetDelta < 0 || kr.OffsetDelta > b.LastOffsetDelta {
				return next, fmt.Errorf("%w: batch at offset %d: record %d has offset delta %d, last is %d", ErrCorrupt, base, i, kr.OffsetDelta, b.LastOffsetDelta)
			}
			offset := base + int64(kr.OffsetDelta)
			r, ok, err := decodeRecord(kr.Key, kr.Value)
			if err != nil {
				return next, fmt.Errorf("%w: record at offset %d: %v", ErrCorrupt, offset, err)
			}
			if ok {
				pending = append(pending, decoded{offset, r})
			}
		}
		if len(recs) != 0 {
			return next, fmt.Errorf("%w: batch at offset %d: %d bytes after its %d records", ErrCorrupt, base, len(recs), b.NumRecords)
		}
		if onBatch != nil {
			onBatch(info)
		}
		for _, d := range pending {
			fn(d.offset, d.r)
		}
		next = base + int64(b.LastOffsetDelta) + 1
	}
	return next, nil
}

// controlCommits reads a control batch's record key (version int16, type int16): type 1
// is COMMIT. Anything unreadable counts as an abort, which applies nothing.
func controlCommits(recs []byte) bool {
	var r kmsg.Record
	l, n := binary.Varint(recs)
	if n <= 0 || l < 0 || l > int64(len(recs)-n) || r.ReadFrom(recs[:n+int(l)]) != nil || len(r.Key) < 4 {
		return false
	}
	return binary.BigEndian.Uint16(r.Key[2:]) == 1
}
