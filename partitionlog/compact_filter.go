package partitionlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The key map is a full-key map (map[string]int64), not a hash map like Kafka's
// SkimpyOffsetMap (MD5 digests in a fixed buffer): it is exact, so no collision can ever
// drop a live record, and keys of compacted topics (consumer offsets, group and table
// state) are short, so memory stays near what 128-bit digests would use.
// TODO: bound it like log.cleaner.dedupe.buffer.size and clean in several passes when the
// dirty section has more keys than fit.

// keyMap maps each key to the offset of its latest record in the dirty segments.
type keyMap map[string]int64

// keyedRecord is one decoded record and its encoded bytes.
type keyedRecord struct {
	rec kmsg.Record
	raw []byte
}

// decodeRecords returns the records of batch b (header h), decompressing them if needed.
func decodeRecords(b []byte, h batchHeader) ([]keyedRecord, error) {
	recs := b[headerSize:h.size()]
	if codec := h.Attributes & attrCompressionMask; codec != 0 {
		var err error
		if recs, err = decompressAll(codec, recs); err != nil {
			return nil, fmt.Errorf("%w: batch at offset %d: %w", ErrCorruptBatch, h.BaseOffset, err)
		}
	}
	out := make([]keyedRecord, 0, max(h.RecordsCount, 0))
	for len(recs) > 0 {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 0 || int64(len(recs)-n) < length {
			return nil, fmt.Errorf("%w: batch at offset %d: bad record length", ErrCorruptBatch, h.BaseOffset)
		}
		raw := recs[:n+int(length)]
		recs = recs[len(raw):]
		var r kmsg.Record
		if err := r.ReadFrom(raw); err != nil {
			return nil, fmt.Errorf("%w: batch at offset %d: %w", ErrCorruptBatch, h.BaseOffset, err)
		}
		out = append(out, keyedRecord{rec: r, raw: raw})
	}
	if len(out) != int(h.RecordsCount) {
		return nil, fmt.Errorf("%w: batch at offset %d holds %d records, header says %d", ErrCorruptBatch, h.BaseOffset, len(out), h.RecordsCount)
	}
	return out, nil
}

// abortedSet answers whether a transactional batch belongs to an aborted transaction:
// producer id -> its aborted transactions, ascending.
type abortedSet map[int64][]AbortedTxn

func newAbortedSet(aborted []AbortedTxn) abortedSet {
	s := abortedSet{}
	for _, a := range aborted {
		s[a.ProducerID] = append(s[a.ProducerID], a)
	}
	return s
}

// holds reports whether h is a transactional data batch of an aborted transaction.
func (s abortedSet) holds(h batchHeader) bool {
	if h.Attributes&attrTransactional == 0 || h.isControl() {
		return false
	}
	for _, a := range s[h.ProducerID] {
		if a.FirstOffset <= h.BaseOffset && h.BaseOffset <= a.LastOffset {
			return true
		}
	}
	return false
}

// addBatch records the keys of batch b in m. Control batches and aborted transactions'
// batches add nothing (see compact.go on transactions).
func (m keyMap) addBatch(b []byte, h batchHeader, aborted abortedSet) error {
	if h.isControl() || aborted.holds(h) {
		return nil
	}
	recs, err := decodeRecords(b, h)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.rec.Key != nil {
			m[string(r.rec.Key)] = h.BaseOffset + int64(r.rec.OffsetDelta)
		}
	}
	return nil
}

// batchFilter decides, record by record, what a round keeps.
type batchFilter struct {
	keys     keyMap
	now      int64          // the round's clock, Unix ms
	horizon  int64          // now + delete retention: the horizon given to newly cleaned tombstones
	retained map[int64]bool // last offsets of batches producer state keeps
	aborted  abortedSet     // aborted transactions: their records all go
	// txnKept: producer id -> whether a batch of its transaction under way in the round
	// (read since its last marker) was written out. A marker ending a transaction of
	// which nothing was written is removable (see markerFilter).
	txnKept map[int64]bool
	// removedAborts: the offsets of the ABORT markers this round removes, whose aborted
	// transactions leave the index.
	removedAborts []int64
}

// filter returns batch b as it should be written (b itself when nothing changes), or nil
// when the whole batch goes, and how many records were removed. A record goes when a later
// record has its key, or when it is a tombstone whose batch's delete horizon has passed.
// keepEmpty keeps a header even when every record goes (the range's last batch, so the
// cleaned range still ends where it did).
//
// A batch whose surviving tombstones are all their key's latest record, and which has no
// delete horizon yet, gets one (KIP-534): now + DeleteRetention. Such a round drops every
// earlier record of those keys, so removing the tombstone later cannot resurrect a value.
func (f *batchFilter) filter(b []byte, h batchHeader, keepEmpty bool) ([]byte, int, error) {
	if h.isControl() {
		return f.markerFilter(b, h, keepEmpty)
	}
	out, removed, err := f.dataFilter(b, h, keepEmpty)
	if out != nil && h.Attributes&attrTransactional != 0 {
		if f.txnKept == nil {
			f.txnKept = map[int64]bool{}
		}
		f.txnKept[h.ProducerID] = true
	}
	return out, removed, err
}

// markerFilter decides about a control batch as Kafka's cleaner does (KIP-98, KIP-534): a
// marker whose transaction kept no batch in the log (its records were all compacted away,
// or aborted, or it had none here) is removable. It first gets a delete horizon, now +
// delete.retention.ms, so that a read_committed consumer that read the transaction's
// records before they went still finds the marker; a round after the horizon removes it,
// and an ABORT's entry leaves the aborted-transaction index with it. A marker whose
// transaction kept a batch stays as it is: without it, a rebuild of producer state would
// take that batch's transaction for one still open.
func (f *batchFilter) markerFilter(b []byte, h batchHeader, keepEmpty bool) ([]byte, int, error) {
	kept := f.txnKept[h.ProducerID]
	delete(f.txnKept, h.ProducerID)
	switch {
	case kept:
		return b, 0, nil
	case h.Attributes&attrDeleteHorizon == 0:
		recs, err := decodeRecords(b, h)
		if err != nil {
			return nil, 0, err
		}
		out, err := rebuildBatch(h, recs, true, f.horizon)
		return out, 0, err
	case h.BaseTimestamp > f.now || keepEmpty:
		return b, 0, nil
	}
	if m, err := parseMarker(b, h); err == nil && m.known && !m.commit {
		f.removedAborts = append(f.removedAborts, h.BaseOffset)
	}
	return nil, int(h.RecordsCount), nil
}

// dataFilter is filter for a batch of records (not a marker).
func (f *batchFilter) dataFilter(b []byte, h batchHeader, keepEmpty bool) ([]byte, int, error) {
	recs, err := decodeRecords(b, h)
	if err != nil {
		return nil, 0, err
	}
	if f.aborted.holds(h) {
		if !keepEmpty && !(h.ProducerID >= 0 && f.retained[h.lastOffset()]) {
			return nil, len(recs), nil
		}
		out, err := rebuildBatch(h, nil, false, 0)
		return out, len(recs), err
	}
	hasHorizon := h.Attributes&attrDeleteHorizon != 0
	kept := make([]keyedRecord, 0, len(recs))
	tombstones, eligible := 0, true
	for _, r := range recs {
		off := h.BaseOffset + int64(r.rec.OffsetDelta)
		if r.rec.Key != nil {
			latest, inMap := f.keys[string(r.rec.Key)]
			if inMap && latest > off {
				continue
			}
			if r.rec.Value == nil {
				if hasHorizon && h.BaseTimestamp <= f.now {
					continue
				}
				tombstones++
				eligible = eligible && inMap && latest == off
			}
		}
		kept = append(kept, r)
	}
	removed := len(recs) - len(kept)
	setHorizon := !hasHorizon && tombstones > 0 && eligible
	switch {
	case len(kept) == 0 && !keepEmpty && !(h.ProducerID >= 0 && f.retained[h.lastOffset()]):
		return nil, removed, nil // an empty header an earlier round kept goes once unneeded
	case removed == 0 && !setHorizon:
		return b, 0, nil
	}
	out, err := rebuildBatch(h, kept, setHorizon, f.horizon)
	return out, removed, err
}

// rebuildBatch encodes a batch with the header fields of h and the records kept: same base
// offset, leader epoch, producer id, epoch and base sequence, attributes, lastOffsetDelta
// (so the batch still spans its offsets and the next one follows), and max timestamp;
// recordsCount is the number kept, as in Kafka's cleaned batches. A compressed batch is
// recompressed with its codec; an empty one is written uncompressed, as Kafka writes empty
// headers. With setHorizon the base timestamp becomes the delete horizon and record
// timestamp deltas are re-encoded against it.
func rebuildBatch(h batchHeader, kept []keyedRecord, setHorizon bool, horizon int64) ([]byte, error) {
	attrs, baseTs := h.Attributes, h.BaseTimestamp
	if setHorizon {
		attrs, baseTs = attrs|attrDeleteHorizon, horizon
	}
	var body []byte
	for _, r := range kept {
		if !setHorizon {
			body = append(body, r.raw...)
			continue
		}
		rec := r.rec
		d := h.BaseTimestamp + rec.TimestampDelta64 - baseTs
		rec.TimestampDelta64, rec.TimestampDelta = d, int32(d)
		rec.Length = 0
		rec.Length = int32(len(rec.AppendTo(nil)) - 1) // a zero Length is one varint byte
		body = rec.AppendTo(body)
	}
	if len(kept) == 0 {
		attrs &^= attrCompressionMask
	} else if codec := attrs & attrCompressionMask; codec != 0 {
		var err error
		if body, err = compressRecords(body, codec); err != nil {
			return nil, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          h.BaseOffset,
		Length:               int32(minBatchLength + len(body)),
		PartitionLeaderEpoch: h.LeaderEpoch,
		Magic:                magicV2,
		Attributes:           attrs,
		LastOffsetDelta:      h.LastOffsetDelta,
		FirstTimestamp:       baseTs,
		MaxTimestamp:         h.MaxTimestamp,
		ProducerID:           h.ProducerID,
		ProducerEpoch:        h.ProducerEpoch,
		FirstSequence:        h.BaseSequence,
		NumRecords:           int32(len(kept)),
		Records:              body,
	}
	out := rb.AppendTo(make([]byte, 0, headerSize+len(body)))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return out, nil
}

// Records are decompressed as Append validated them (codec.go), so the cleaner reads
// whatever the leader accepted. Compressors come from franz-go's kgo, which writes what
// Kafka brokers accept; attribute codec numbers equal kgo's CompressionCodecType values
// (1 gzip, 2 snappy, 3 lz4, 4 zstd).
var (
	compressors = map[int16]func() (kgo.Compressor, error){
		1: sync.OnceValues(func() (kgo.Compressor, error) { return kgo.DefaultCompressor(kgo.GzipCompression()) }),
		2: sync.OnceValues(func() (kgo.Compressor, error) { return kgo.DefaultCompressor(kgo.SnappyCompression()) }),
		3: sync.OnceValues(func() (kgo.Compressor, error) { return kgo.DefaultCompressor(kgo.Lz4Compression()) }),
		4: sync.OnceValues(func() (kgo.Compressor, error) { return kgo.DefaultCompressor(kgo.ZstdCompression()) }),
	}
)

func compressRecords(b []byte, codec int16) ([]byte, error) {
	get := compressors[codec]
	if get == nil {
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
	c, err := get()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	out, used := c.Compress(&buf, b)
	if used != kgo.CompressionCodecType(codec) {
		return nil, fmt.Errorf("compressing with codec %d failed", codec)
	}
	return bytes.Clone(out), nil
}
