package partitionlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Byte offsets of the fields of a v2 record batch header (Kafka's DefaultRecordBatch). Only
// the header is parsed on the hot path; records stay opaque bytes.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordsCount    = 57

	headerSize = 61
	// logOverhead is what precedes batchLength's count: baseOffset and batchLength itself.
	logOverhead = 12
	// minBatchLength is batchLength for a batch with no record bytes.
	minBatchLength = headerSize - logOverhead

	magicV2 = 2

	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the decoded fixed part of a v2 record batch.
type batchHeader struct {
	BaseOffset      int64
	BatchLength     int32
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordsCount    int32
}

// parseHeader decodes the 61-byte header at the start of b. It checks only that b is long
// enough; validity is checkHeader's job.
func parseHeader(b []byte) (batchHeader, error) {
	if len(b) < headerSize {
		return batchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrCorruptBatch, len(b), headerSize)
	}
	be := binary.BigEndian
	return batchHeader{
		BaseOffset:      int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:     int32(be.Uint32(b[offBatchLength:])),
		LeaderEpoch:     int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:           int8(b[offMagic]),
		CRC:             be.Uint32(b[offCRC:]),
		Attributes:      int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:   int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:    int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(be.Uint32(b[offBaseSequence:])),
		RecordsCount:    int32(be.Uint32(b[offRecordsCount:])),
	}, nil
}

// size is the batch's total size on disk, including baseOffset and batchLength.
func (h batchHeader) size() int64 { return logOverhead + int64(h.BatchLength) }

// lastOffset is the offset of the batch's last record.
func (h batchHeader) lastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// lastSequence is the sequence of the batch's last record; sequences wrap to 0 after
// MaxInt32 (Kafka's DefaultRecordBatch.incrementSequence).
func (h batchHeader) lastSequence() int32 {
	return incrementSequence(h.BaseSequence, h.LastOffsetDelta)
}

func (h batchHeader) isControl() bool     { return h.Attributes&attrControl != 0 }
func (h batchHeader) compressed() bool    { return h.Attributes&attrCompressionMask != 0 }
func (h batchHeader) logAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

func incrementSequence(seq, delta int32) int32 {
	if seq > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - seq) - 1
	}
	return seq + delta
}

// checkHeader validates what can be known from the header alone, given avail bytes from the
// batch start: a sane length that fits, magic 2, and a non-negative offset range.
func checkHeader(h batchHeader, avail int64) error {
	switch {
	case h.BatchLength < minBatchLength:
		return fmt.Errorf("%w: batchLength %d below minimum %d", ErrCorruptBatch, h.BatchLength, minBatchLength)
	case h.size() > avail:
		return fmt.Errorf("%w: batch of %d bytes, only %d available", ErrCorruptBatch, h.size(), avail)
	case h.Magic != magicV2:
		return fmt.Errorf("%w: magic %d, want %d", ErrCorruptBatch, h.Magic, magicV2)
	case h.LastOffsetDelta < 0:
		return fmt.Errorf("%w: negative lastOffsetDelta %d", ErrCorruptBatch, h.LastOffsetDelta)
	}
	return nil
}

// checkCRC verifies the CRC-32C over attributes..end; b is exactly one batch.
func checkCRC(h batchHeader, b []byte) error {
	if got := crc32.Checksum(b[offAttributes:], castagnoli); got != h.CRC {
		return fmt.Errorf("%w: crc %#08x, computed %#08x", ErrCorruptBatch, h.CRC, got)
	}
	return nil
}

// decodeBatch parses and fully validates the batch at the start of b, returning its header.
// Bytes after the batch are ignored.
func decodeBatch(b []byte) (batchHeader, error) {
	h, err := parseHeader(b)
	if err != nil {
		return h, err
	}
	if err := checkHeader(h, int64(len(b))); err != nil {
		return h, err
	}
	return h, checkCRC(h, b[:h.size()])
}

// splitFollowerBatches validates a replica fetch's bytes for one partition: whole batches
// as the leader stores them, which checkProduced would partly reject. CRC and framing are
// checked as usual, but the base offsets are kept, so they must be valid and increase from
// batch to batch (gaps are allowed: compaction leaves them); a compacted batch may hold
// fewer records than its offset range, down to none (compact_filter.go keeps such empty
// headers); max.message.bytes does not apply, since the leader accepted them.
func splitFollowerBatches(records []byte) ([]batchHeader, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no record batches", ErrInvalidRecord)
	}
	var hs []batchHeader
	next := int64(0)
	for pos := 0; pos < len(records); {
		h, err := decodeBatch(records[pos:])
		if err != nil {
			return nil, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		switch {
		case h.RecordsCount < 0 || int64(h.RecordsCount) > int64(h.LastOffsetDelta)+1:
			return nil, fmt.Errorf("%w: batch at byte %d has %d records but lastOffsetDelta %d", ErrInvalidRecord, pos, h.RecordsCount, h.LastOffsetDelta)
		case h.BaseOffset < next || h.BaseOffset >= math.MaxInt64-int64(h.LastOffsetDelta):
			return nil, fmt.Errorf("%w: batch at byte %d has base offset %d, want at least %d", ErrInvalidRecord, pos, h.BaseOffset, next)
		}
		hs = append(hs, h)
		next = h.lastOffset() + 1
		pos += int(h.size())
	}
	return hs, nil
}

// crcOf computes the CRC-32C of a whole batch b, over attributes..end.
func crcOf(b []byte) uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }

// putBaseOffset and putLeaderEpoch rewrite fields outside the CRC, so the batch stays valid.
func putBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off)) }
func putLeaderEpoch(b []byte, e int32)  { binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(e)) }

// putTimestamps sets a whole batch b's attributes and maxTimestamp, recomputing the CRC
// only when they changed, and returns the CRC.
func putTimestamps(b []byte, attrs int16, maxTs int64) uint32 {
	be := binary.BigEndian
	if int16(be.Uint16(b[offAttributes:])) != attrs || int64(be.Uint64(b[offMaxTimestamp:])) != maxTs {
		be.PutUint16(b[offAttributes:], uint16(attrs))
		be.PutUint64(b[offMaxTimestamp:], uint64(maxTs))
		be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	}
	return be.Uint32(b[offCRC:])
}

// putLogAppendTime stamps a whole batch b with the broker's time: maxTimestamp = t and the
// timestamp-type attribute bit set, then recomputes the CRC they are covered by. It returns
// the new attributes, maxTimestamp and CRC for the caller's header.
func putLogAppendTime(b []byte, t int64) (int16, int64, uint32) {
	be := binary.BigEndian
	attrs := int16(be.Uint16(b[offAttributes:])) | attrLogAppendTime
	be.PutUint16(b[offAttributes:], uint16(attrs))
	be.PutUint64(b[offMaxTimestamp:], uint64(t))
	crc := crc32.Checksum(b[offAttributes:], castagnoli)
	be.PutUint32(b[offCRC:], crc)
	return attrs, t, crc
}
