package partitionlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Validation of a producer's batches before Append stores them, after Kafka's LogValidator
// (validateBatch, validateRecord): the header and CRC say the bytes arrived as the producer
// sent them, not that a consumer can read them, and a batch a consumer cannot read stops
// every consumer of the partition for good at its offset (and the cleaner, on a compacted
// topic). So every record is read, decompressing as needed, before anything is written:
//
//   - the batch: magic 2, a record count above zero that matches lastOffsetDelta + 1, no
//     control batch (markers are the coordinator's, and must be end-transaction markers:
//     txn.go), no transactional batch unless the request names a transactional id, a base
//     sequence for an idempotent producer, a codec of 0 to 4;
//   - each record: varint lengths that are minimal enough to fit (5 bytes for 32-bit
//     fields) and stay inside the record, offset deltas 0, 1, 2 ..., key, value and header
//     lengths of -1 (null; never for a header key) or more, and the record's declared length
//     matching its fields; the records exactly filling the batch, as many as its header says;
//   - the topic: a key on every record of a compacted topic; timestamps by
//     message.timestamp.type (below).
//
// A CRC or framing failure of the batch itself is ErrCorruptBatch (CORRUPT_MESSAGE, which
// clients retry, since the bytes may have been damaged on the way); anything wrong inside a
// batch whose CRC holds is what the producer meant to send, and retrying cannot help:
// ErrInvalidRecord (INVALID_RECORD), ErrInvalidTimestamp, ErrUnsupportedCompression or
// ErrTransactionalIDRequired, as a *ValidationError naming the records to blame (KIP-467).
//
// Timestamps follow Kafka: under CreateTime a record's timestamp is the batch's base plus
// its delta (the batch's maxTimestamp when the producer set LogAppendTime, which must then
// not be -1), and the stored maxTimestamp becomes the largest of them, recomputing the CRC
// when the producer's differs (Kafka's setMaxTimestamp). Under LogAppendTime a producer may
// not set the LogAppendTime bit itself (INVALID_TIMESTAMP); Append stamps the time.
//
// Uncompressed batches are read in place, in one pass and without allocating; compressed
// ones stream through pooled decompressors (codec.go).

// AppendOptions says what Append cannot learn from the batches: what the produce request
// and the topic's configuration say about them.
type AppendOptions struct {
	// Compacted: the topic's cleanup.policy contains compact, so every record needs a key.
	Compacted bool
	// TransactionalID is the produce request's transactional id, "" when it names none.
	// Without one, transactional batches are refused (ErrTransactionalIDRequired). With
	// one they are accepted: checking that the producer is in a transaction is the
	// transaction coordinator's work.
	TransactionalID string
	// FromCoordinator: the batches are a coordinator's, not a producer's: transaction
	// markers, which Kafka writes with AppendOrigin.COORDINATOR. Control and transactional
	// batches, and markers' missing base sequence, are then allowed.
	FromCoordinator bool
}

// RecordError is one record Append refused: a produce response's RecordErrors entry
// (KIP-467's BatchIndex and BatchIndexErrorMessage).
type RecordError struct {
	// Index counts the records of the partition's batches in the request from 0. A produce
	// request carries one batch per partition, so it is the record's index in its batch.
	Index   int32
	Message string
}

// ValidationError is why Append refused a producer's batches. Err is the sentinel that
// says which Kafka error it is (ErrInvalidRecord, ErrInvalidTimestamp,
// ErrUnsupportedCompression, ErrTransactionalIDRequired); Records names the records to
// blame when some are, and Reason what is wrong when no single record is.
type ValidationError struct {
	Err     error
	Batch   int64 // byte position of the batch in the records given to Append
	Reason  string
	Records []RecordError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: batch at byte %d", e.Err, e.Batch)
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	// Kafka's message lists the first three.
	for i, r := range e.Records {
		if i == 3 {
			fmt.Fprintf(&b, " (%d records refused in all)", len(e.Records))
			break
		}
		fmt.Fprintf(&b, "; record %d: %s", r.Index, r.Message)
	}
	return b.String()
}

func (e *ValidationError) Unwrap() error { return e.Err }

// checkProduced validates a produce request's bytes for one partition (one or more whole
// batches, nothing else) and returns their headers, with maxTimestamp and attributes as
// they are to be stored under CreateTime (stampBatches writes them). Records are not
// modified.
func checkProduced(records []byte, cfg Config, opts AppendOptions) ([]batchHeader, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no record batches", ErrInvalidRecord)
	}
	rules := recordRules{producer: true, compacted: opts.Compacted, logAppendTime: cfg.MessageTimestampType == LogAppendTime}
	var hs []batchHeader
	var first int32 // index of the batch's first record among the request's
	for pos := 0; pos < len(records); {
		h, err := decodeProducedBatch(records[pos:])
		if err == nil && h.size() > int64(cfg.MaxMessageBytes) {
			err = fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, h.size(), cfg.MaxMessageBytes)
		}
		var maxTs int64
		if err == nil {
			maxTs, err = checkProducedBatch(records[pos:pos+int(h.size())], h, opts, rules, first)
		}
		if err != nil {
			return nil, batchError(err, pos)
		}
		if !rules.logAppendTime {
			h.MaxTimestamp, h.Attributes = maxTs, h.Attributes&^attrLogAppendTime
		}
		hs = append(hs, h)
		first += h.RecordsCount
		pos += int(h.size())
	}
	return hs, nil
}

// batchError places err at the batch at byte pos: in a ValidationError's Batch, or in the
// message. Kept apart so the hot loop takes no address.
func batchError(err error, pos int) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		ve.Batch = int64(pos)
		return err
	}
	return fmt.Errorf("batch at byte %d: %w", pos, err)
}

// decodeProducedBatch parses the batch at the start of b and checks what makes it corrupt
// (its length, its CRC) or unreadable as v2 (its magic, which Kafka refuses in a produce
// request with INVALID_RECORD). The rest is checkProducedBatch's.
func decodeProducedBatch(b []byte) (batchHeader, error) {
	h, err := parseHeader(b)
	switch {
	case err != nil:
		return h, err
	case h.BatchLength < minBatchLength:
		return h, fmt.Errorf("%w: batchLength %d below minimum %d", ErrCorruptBatch, h.BatchLength, minBatchLength)
	case h.size() > int64(len(b)):
		return h, fmt.Errorf("%w: batch of %d bytes, only %d available", ErrCorruptBatch, h.size(), len(b))
	case h.Magic != magicV2:
		return h, &ValidationError{Err: ErrInvalidRecord, Reason: fmt.Sprintf("magic %d: produce requests carry v2 batches only", h.Magic)}
	}
	return h, checkCRC(h, b[:h.size()])
}

// checkProducedBatch applies Kafka's checks of a client's batch (validateBatch), then reads
// its records.
func checkProducedBatch(b []byte, h batchHeader, opts AppendOptions, rules recordRules, first int32) (int64, error) {
	refuse := func(err error, format string, args ...any) (int64, error) {
		return -1, &ValidationError{Err: err, Reason: fmt.Sprintf(format, args...)}
	}
	switch codec := h.Attributes & attrCompressionMask; {
	case h.RecordsCount <= 0:
		return refuse(ErrInvalidRecord, "record count %d: a producer's batch holds at least one record", h.RecordsCount)
	case int64(h.RecordsCount) != int64(h.LastOffsetDelta)+1:
		return refuse(ErrInvalidRecord, "record count %d but lastOffsetDelta %d: a producer's batch spans one offset per record", h.RecordsCount, h.LastOffsetDelta)
	case h.isControl() && !opts.FromCoordinator:
		return refuse(ErrInvalidRecord, "control batch: producers may not write control records")
	case h.Attributes&attrTransactional != 0 && opts.TransactionalID == "" && !opts.FromCoordinator:
		return refuse(ErrTransactionalIDRequired, "transactional batch (producer id %d) in a produce request without a transactional id", h.ProducerID)
	case h.ProducerID >= 0 && h.BaseSequence < 0 && !opts.FromCoordinator:
		return refuse(ErrInvalidRecord, "base sequence %d in a batch of producer id %d", h.BaseSequence, h.ProducerID)
	case codec > codecZstd:
		return refuse(ErrUnsupportedCompression, "compression codec %d: Kafka's are 0 (none) to 4 (zstd)", codec)
	}
	return scanRecords(b, h, rules, first)
}

// recordRules are the record checks that depend on who wrote the batch.
type recordRules struct {
	// producer: a producer's fresh batch (Append): offset deltas are 0, 1, 2 ..., and the
	// topic's rules apply. Otherwise a batch as a log stores it (Verify): compaction may
	// have removed records, so deltas only increase within the batch's offset range.
	producer      bool
	compacted     bool // keys required (producer batches)
	logAppendTime bool // the topic's message.timestamp.type is LogAppendTime (producer batches)
}

// scanRecords reads every record of the batch b (header h), decompressing as needed, and
// checks them by rules. first is the index of its first record among the request's, for
// RecordErrors. It returns the largest record timestamp (-1 when none has one).
func scanRecords(b []byte, h batchHeader, rules recordRules, first int32) (int64, error) {
	sc := recordScanner{b: b[headerSize:h.size()]}
	if codec := h.Attributes & attrCompressionMask; codec != codecNone {
		d := getDecompressor()
		defer putDecompressor(d)
		r, block, err := d.open(codec, sc.b)
		switch {
		case errors.Is(err, ErrUnsupportedCompression):
			return -1, &ValidationError{Err: ErrUnsupportedCompression, Reason: err.Error()}
		case err != nil:
			return -1, &ValidationError{Err: ErrInvalidRecord, Reason: fmt.Sprintf("records do not decompress as %s: %v", codecName(codec), err)}
		case r != nil:
			sc = recordScanner{src: r, buf: d.window}
		default:
			sc = recordScanner{b: block}
		}
	}
	return rules.scan(&sc, h, first)
}

// scan reads h.RecordsCount records from sc and checks that nothing follows them.
func (rules recordRules) scan(sc *recordScanner, h batchHeader, first int32) (int64, error) {
	if h.RecordsCount < 0 {
		return -1, &ValidationError{Err: ErrInvalidRecord, Reason: fmt.Sprintf("negative record count %d", h.RecordsCount)}
	}
	var refused []RecordError
	kind := ErrInvalidRecord
	maxTs := int64(-1)
	prevDelta := int64(-1)
	lat := h.logAppendTime()
	for i := range h.RecordsCount {
		rec, err := sc.next()
		if err != nil && i == 0 && sc.consumed() == 0 && sc.err != nil {
			return -1, &ValidationError{Err: ErrInvalidRecord, Reason: "records do not decompress: " + sc.err.Error()}
		}
		if err != nil {
			if errors.Is(err, errNoMoreRecords) {
				err = fmt.Errorf("missing: the batch holds %d records, its header says %d", i, h.RecordsCount)
			}
			return -1, &ValidationError{Err: ErrInvalidRecord, Records: append(refused, RecordError{first + i, err.Error()})}
		}
		if msg := rules.checkOffset(rec.offsetDelta, prevDelta, i, h); msg != "" {
			refused = append(refused, RecordError{first + i, msg})
		}
		prevDelta = rec.offsetDelta
		ts := h.BaseTimestamp + rec.timestampDelta
		if lat {
			ts = h.MaxTimestamp
		}
		if rules.producer && rules.compacted && rec.keyLength < 0 {
			refused = append(refused, RecordError{first + i, "compacted topic cannot accept a record without a key"})
		}
		if rules.producer && lat && (rules.logAppendTime || ts == -1) {
			kind = ErrInvalidTimestamp
			refused = append(refused, RecordError{first + i, "timestamp type LogAppendTime set by the producer: only the broker sets it"})
		}
		maxTs = max(maxTs, ts)
	}
	if !sc.atEnd() {
		return -1, &ValidationError{Err: ErrInvalidRecord, Records: append(refused, RecordError{first + h.RecordsCount,
			fmt.Sprintf("bytes follow the last record: the header says %d records", h.RecordsCount)})}
	}
	if sc.err != nil {
		return -1, &ValidationError{Err: ErrInvalidRecord, Records: append(refused, RecordError{first + h.RecordsCount, "decompressing past the last record: " + sc.err.Error()})}
	}
	if len(refused) > 0 {
		return -1, &ValidationError{Err: kind, Records: refused}
	}
	return maxTs, nil
}

// checkOffset says what is wrong with the offsetDelta of record i, "" when nothing.
func (rules recordRules) checkOffset(delta, prev int64, i int32, h batchHeader) string {
	switch {
	case rules.producer && delta != int64(i):
		return fmt.Sprintf("offset delta %d, want %d: a producer numbers its records 0, 1, 2 ...", delta, i)
	case !rules.producer && (delta <= prev || delta > int64(h.LastOffsetDelta)):
		return fmt.Sprintf("offset delta %d after %d, outside (%d, %d]", delta, prev, prev, h.LastOffsetDelta)
	}
	return ""
}

// recordFields is what the checks need of one record; key and value bytes are skipped.
type recordFields struct {
	timestampDelta int64
	offsetDelta    int64
	keyLength      int64
}

// errNoMoreRecords: the input ended where a record should start.
var errNoMoreRecords = errors.New("no more records")

// field names a record field in messages, and says how wide its varint may be.
type field uint8

const (
	fieldLength field = iota
	fieldTimestampDelta
	fieldOffsetDelta
	fieldKey
	fieldValue
	fieldHeaderCount
	fieldHeaderKey
	fieldHeaderValue
)

var fieldNames = [...]string{"length", "timestampDelta", "offsetDelta", "key length", "value length",
	"header count", "header key length", "header value length"}

func (f field) String() string { return fieldNames[f] }

// recordScanner reads v2 records from a byte slice (uncompressed batches, snappy blocks)
// or from a stream through a window of buf (other codecs). It moves an index rather than
// reslicing, which keeps the hot path free of pointer writes.
//
//	record: length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
//	        keyLength varint | key | valueLength varint | value |
//	        headerCount varint | (headerKeyLength varint | key | headerValueLength varint | value)*
type recordScanner struct {
	b    []byte    // bytes in hand; b[i:] are unread
	i    int       //
	off  int64     // bytes consumed before b[0]
	src  io.Reader // where more come from; nil when b holds everything
	buf  []byte    // b's storage when streaming
	done bool      // src is exhausted
	err  error     // src failed (not io.EOF)
}

// consumed counts the bytes read so far.
func (s *recordScanner) consumed() int64 { return s.off + int64(s.i) }

// next reads and checks one record: from a slice first by fastRecord, which only says
// whether the record is sound, and by record, which says what is wrong, when it is not or
// when the bytes come from a stream.
func (s *recordScanner) next() (recordFields, error) {
	if s.src == nil {
		if rec, next, ok := fastRecord(s.b, s.i); ok {
			s.i = next
			return rec, nil
		}
	}
	return s.record()
}

// fastRecord parses the record at b[i:] with the checks of record, building no error: ok
// is false when any fails. It returns the index after the record.
func fastRecord(b []byte, i int) (rec recordFields, next int, ok bool) {
	length, j := varintAt(b, i, 5)
	if j < 0 || length < 0 || int64(len(b)-j) < length {
		return rec, 0, false
	}
	end := j + int(length)
	r := b[:end] // every read below stays inside the record, which fails past its end
	j++          // attributes
	if rec.timestampDelta, j = varintAt(r, j, binary.MaxVarintLen64); j < 0 {
		return rec, 0, false
	}
	if rec.offsetDelta, j = varintAt(r, j, 5); j < 0 {
		return rec, 0, false
	}
	if rec.keyLength, j = skipBytesAt(r, j, true); j < 0 {
		return rec, 0, false
	}
	if _, j = skipBytesAt(r, j, true); j < 0 {
		return rec, 0, false
	}
	headers, j := varintAt(r, j, 5)
	if j < 0 || headers < 0 {
		return rec, 0, false
	}
	for range headers {
		if _, j = skipBytesAt(r, j, false); j < 0 {
			return rec, 0, false
		}
		if _, j = skipBytesAt(r, j, true); j < 0 {
			return rec, 0, false
		}
	}
	return rec, end, j == end
}

// skipBytesAt skips the length-prefixed field at b[i:], of length -1 (when nullable) or
// more, returning its length and the index after it, or -1.
func skipBytesAt(b []byte, i int, nullable bool) (int64, int) {
	n, j := varintAt(b, i, 5)
	switch {
	case j < 0 || n < -1 || n == -1 && !nullable || n > int64(len(b)-j):
		return 0, -1
	case n > 0:
		j += int(n)
	}
	return n, j
}

// varintAt decodes the zigzag varint at b[i:] of at most maxLen bytes (5 means a 32-bit
// field, whose value must also fit), returning it and the index after it, or -1.
func varintAt(b []byte, i, maxLen int) (int64, int) {
	if uint(i) < uint(len(b)) {
		if x := b[i]; x < 0x80 { // lengths below 64: most fields; inlined
			return int64(x>>1) ^ -int64(x&1), i + 1
		}
	}
	return varintAtSlow(b, i, maxLen)
}

func varintAtSlow(b []byte, i, maxLen int) (int64, int) {
	if i+1 < len(b) && b[i+1] < 0x80 { // below 8192: record and value lengths
		u := uint64(b[i]&0x7f) | uint64(b[i+1])<<7
		return int64(u>>1) ^ -int64(u&1), i + 2
	}
	var u uint64
	for k := 0; k < maxLen && i < len(b); k++ {
		c := b[i]
		i++
		u |= uint64(c&0x7f) << (7 * k)
		if c < 0x80 {
			v := int64(u>>1) ^ -int64(u&1)
			if maxLen == 5 && int64(int32(v)) != v {
				return 0, -1
			}
			return v, i
		}
	}
	return 0, -1
}

// record reads and checks one record's framing, saying what is wrong.
func (s *recordScanner) record() (recordFields, error) {
	var rec recordFields
	if s.atEnd() {
		if s.err != nil {
			return rec, s.streamError()
		}
		return rec, errNoMoreRecords
	}
	length, err := s.varint(fieldLength)
	if err != nil {
		return rec, err
	}
	if length < 0 {
		return rec, fmt.Errorf("negative record length %d", length)
	}
	end := s.consumed() + length
	if !s.skip(1) { // attributes: unused in v2
		return rec, s.short("attributes")
	}
	if rec.timestampDelta, err = s.varint(fieldTimestampDelta); err != nil {
		return rec, err
	}
	if rec.offsetDelta, err = s.varint(fieldOffsetDelta); err != nil {
		return rec, err
	}
	if rec.keyLength, err = s.bytesField(fieldKey, end); err != nil {
		return rec, err
	}
	if _, err = s.bytesField(fieldValue, end); err != nil {
		return rec, err
	}
	headers, err := s.varint(fieldHeaderCount)
	if err != nil {
		return rec, err
	}
	if headers < 0 {
		return rec, fmt.Errorf("negative header count %d", headers)
	}
	for range headers {
		if s.consumed() >= end {
			return rec, fmt.Errorf("%d headers overrun the record's %d bytes", headers, length)
		}
		if _, err := s.bytesField(fieldHeaderKey, end); err != nil {
			return rec, err
		}
		if _, err := s.bytesField(fieldHeaderValue, end); err != nil {
			return rec, err
		}
	}
	if n := s.consumed(); n != end {
		return rec, fmt.Errorf("record length %d, but its fields take %d bytes", length, length+n-end)
	}
	return rec, nil
}

// bytesField reads a length-prefixed field and skips its bytes, which must end by end.
// Its length is -1 (null; never for a header key) or more.
func (s *recordScanner) bytesField(f field, end int64) (int64, error) {
	n, err := s.varint(f)
	switch {
	case err != nil:
		return 0, err
	case n < -1 || n == -1 && f == fieldHeaderKey:
		return 0, fmt.Errorf("%v %d", f, n)
	case n > end-s.consumed():
		return 0, fmt.Errorf("%v %d overruns the record by %d bytes", f, n, n-(end-s.consumed()))
	case n > 0 && !s.skip(n):
		return 0, s.short(f.String())
	}
	return n, nil
}

// varint reads a zigzag varint as Kafka reads field f: 32 bits (at most 5 bytes, in range)
// but for the timestamp delta, 64. Most are one byte (lengths below 64), which stays inline.
func (s *recordScanner) varint(f field) (int64, error) {
	if i := s.i; i < len(s.b) && s.b[i] < 0x80 {
		x := s.b[i]
		s.i = i + 1
		return int64(x>>1) ^ -int64(x&1), nil
	}
	return s.varintSlow(f)
}

func (s *recordScanner) varintSlow(f field) (int64, error) {
	if s.src != nil && len(s.b)-s.i < binary.MaxVarintLen64 {
		s.refill(binary.MaxVarintLen64)
	}
	maxLen := 5
	if f == fieldTimestampDelta {
		maxLen = binary.MaxVarintLen64
	}
	v, k := binary.Varint(s.b[s.i:])
	switch {
	case k == 0:
		return 0, s.short(f.String())
	case k < 0 || k > maxLen:
		return 0, fmt.Errorf("%v: varint longer than %d bytes", f, maxLen)
	case maxLen == 5 && int64(int32(v)) != v:
		return 0, fmt.Errorf("%v %d does not fit 32 bits", f, v)
	}
	s.i += k
	return v, nil
}

// skip consumes n bytes; false when the input ends first.
func (s *recordScanner) skip(n int64) bool {
	if n <= int64(len(s.b)-s.i) {
		s.i += int(n)
		return true
	}
	return s.skipSlow(n)
}

func (s *recordScanner) skipSlow(n int64) bool {
	for n > 0 {
		if s.i == len(s.b) && !s.refill(1) {
			return false
		}
		k := min(n, int64(len(s.b)-s.i))
		s.i += int(k)
		n -= k
	}
	return true
}

// atEnd reports whether no byte is left.
func (s *recordScanner) atEnd() bool { return s.i == len(s.b) && !s.refill(1) }

// refill reads from src until at least want bytes are in hand or it is exhausted, and
// reports whether they are.
func (s *recordScanner) refill(want int) bool {
	if s.src == nil || s.done {
		return len(s.b)-s.i >= want
	}
	s.off += int64(s.i)
	m := copy(s.buf, s.b[s.i:])
	for empty := 0; m < want && !s.done; {
		n, err := s.src.Read(s.buf[m:])
		m += n
		if n == 0 {
			empty++
		}
		switch {
		case err == io.EOF:
			s.done = true
		case err != nil:
			s.done, s.err = true, err
		case empty > 100:
			s.done, s.err = true, io.ErrNoProgress
		}
	}
	s.b, s.i = s.buf[:m], 0
	return m >= want
}

// short explains why field could not be read: the input ended, or decompressing failed.
func (s *recordScanner) short(field string) error {
	if s.err != nil {
		return fmt.Errorf("%s: %w", field, s.streamError())
	}
	return fmt.Errorf("%s: the batch ends inside the record", field)
}

func (s *recordScanner) streamError() error {
	return fmt.Errorf("decompressing: %w", s.err)
}
