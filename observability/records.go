package observability

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Producer-to-consumer tracing. A producer instrumented with OpenTelemetry writes the
// W3C traceparent of its send span into each record's headers; a Produce span that
// links to it lets an operator walk from the producer's trace into Strait's. Finding it
// means reading records, which the proxy otherwise never does, so it is done only when
// tracing is on, and cheaply: the headers of the first record of each batch (a
// producer's batch usually comes from one send loop, and one link per batch is enough
// to find it), of uncompressed batches only (decompressing to find a header would cost
// more than the rest of the request).

// recordLinkAttr marks a link as one to a record's trace, for recordLinkSampler.
const recordLinkAttr = "strait.link.source"

var recordLinkAttrs = []attribute.KeyValue{attribute.String(recordLinkAttr, "record")}

// maxRecordLinks bounds the links one request gets, whatever its number of batches.
const maxRecordLinks = 16

// ProduceRecordLinks returns links to the traces that the first record of each
// uncompressed batch of req names in a traceparent header.
func ProduceRecordLinks(req *kmsg.ProduceRequest) []trace.Link {
	var links []trace.Link
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			links = appendRecordLinks(links, p.Records)
			if len(links) >= maxRecordLinks {
				return links[:maxRecordLinks]
			}
		}
	}
	return links
}

func isRecordLink(l trace.Link) bool {
	for _, a := range l.Attributes {
		if a.Key == recordLinkAttr {
			return true
		}
	}
	return false
}

// Offsets in a v2 record batch header (Kafka's DefaultRecordBatch).
const (
	batchLengthAt     = 8
	batchMagicAt      = 16
	batchAttributesAt = 21
	batchRecordsAt    = 61 // after the record count
	batchOverhead     = 12 // base offset and length, not counted in the length
)

// appendRecordLinks appends a link for each batch in records whose first record has a
// valid traceparent header. Anything malformed ends the walk: the node validates
// batches, and a link is a hint.
func appendRecordLinks(links []trace.Link, records []byte) []trace.Link {
	for len(records) >= batchRecordsAt {
		size := batchOverhead + int(int32(binary.BigEndian.Uint32(records[batchLengthAt:])))
		if size < batchRecordsAt || size > len(records) || records[batchMagicAt] != 2 {
			return links
		}
		compressed := binary.BigEndian.Uint16(records[batchAttributesAt:])&0x07 != 0
		if !compressed {
			if tp, ok := firstRecordTraceParent(records[batchRecordsAt:size]); ok {
				if sc, ok := parseTraceParent(tp); ok {
					links = append(links, trace.Link{SpanContext: sc, Attributes: recordLinkAttrs})
				}
			}
		}
		records = records[size:]
	}
	return links
}

// firstRecordTraceParent reads the first record's headers for "traceparent", without
// copying: the record's length, attributes, timestamp and offset deltas, key and value
// are skipped.
func firstRecordTraceParent(b []byte) (string, bool) {
	r := varintReader{b: b}
	r.varint() // record length
	r.skip(1)  // attributes
	r.varint() // timestamp delta
	r.varint() // offset delta
	r.bytes()  // key
	r.bytes()  // value
	n := r.varint()
	for i := int64(0); i < n && !r.bad; i++ {
		key, value := r.bytes(), r.bytes()
		if !r.bad && string(key) == "traceparent" {
			return string(value), true
		}
	}
	return "", false
}

// varintReader reads Kafka's zigzag varints and varint-prefixed byte strings; once a
// read runs past the end it is bad, and every later read returns nothing.
type varintReader struct {
	b   []byte
	bad bool
}

func (r *varintReader) fail() {
	r.b, r.bad = nil, true
}

func (r *varintReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *varintReader) skip(n int) {
	if len(r.b) < n {
		r.fail()
		return
	}
	r.b = r.b[n:]
}

// bytes reads a varint length and that many bytes; a negative length is a null.
func (r *varintReader) bytes() []byte {
	n := r.varint()
	if r.bad || n < 0 {
		return nil
	}
	if int64(len(r.b)) < n {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
