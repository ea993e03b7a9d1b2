package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceKey is the one API whose frames may be large: its record batches are kept as
// slices of the frame, not decoded.
const produceKey = 0

// decodeAmplification bounds the bytes kmsg allocates per byte it decodes into structs,
// and is what a request's decoding is charged against the budgets before it starts.
//
// kmsg (v1.15.1 and later) refuses an array longer than the bytes left divided by its
// element's smallest encoding, so an array of structs costs at most its element's size
// over that encoding: up to 32 bytes per byte for the requests kmsg knows (a []string of
// empty compact strings: 16). Strings are copied, one byte per byte. The costliest input
// is unknown tagged fields, which kmsg keeps in a map per struct: a flexible struct
// carrying one two-byte tag allocates a map of about 300 bytes, 70 to 80 bytes per byte
// of input (measured by TestDecodeAmplification). 128 leaves room for a change of map
// layout in a later Go.
//
// Record batches are not copied, which is why a Produce frame may be large while every
// other request, and a Produce request's bytes besides its records, stay under
// Limits.MaxNonRecordBytes: 1 MiB of them can cost 128 MiB to decode.
const decodeAmplification = 128

// decodeRequest decodes the body of a request whose header h was read from payload, rest
// being what follows the header, and returns it with the header's tags (none unless the
// request is flexible). Before kmsg allocates anything, reserve is asked for what
// decoding may allocate: decodeAmplification bytes for each byte that is not a record
// batch, the header's tags included. A request with more than maxNonRecord such bytes is
// refused. Errors from reserve are returned as they are; every other error marks a bad
// request.
func decodeRequest(h RequestHeader, payload, rest []byte, versions versionsFunc, maxNonRecord int, reserve func(int64) error) (kmsg.Request, headerTags, error) {
	var tags headerTags
	req, err := requestFor(h, versions)
	if err != nil {
		return nil, tags, err
	}
	if req.IsFlexible() {
		if tags, rest, err = readHeaderTags(rest); err != nil {
			return nil, tags, err
		}
	}
	nonRecord := len(payload) - recordBytes(req, rest)
	if nonRecord > maxNonRecord {
		return nil, tags, fmt.Errorf("%w: %s v%d of %d bytes, %d of them besides record batches (at most %d)",
			errFrameSize, kmsg.NameForKey(h.Key), h.Version, len(payload), nonRecord, maxNonRecord)
	}
	if err := reserve(decodeAmplification * int64(nonRecord)); err != nil {
		return nil, tags, err
	}
	if err := req.ReadFrom(rest); err != nil {
		return nil, tags, fmt.Errorf("%w: %s v%d body: %v", errMalformed, kmsg.NameForKey(h.Key), h.Version, err)
	}
	return req, tags, nil
}

// recordBytes returns how many bytes of body are record batches: none but in a Produce
// request, and none in one whose layout does not hold together (kmsg will refuse it).
func recordBytes(req kmsg.Request, body []byte) int {
	if req.Key() != produceKey {
		return 0
	}
	n, err := produceRecordBytes(req.GetVersion(), body)
	if err != nil {
		return 0
	}
	return n
}

// produceRecordBytes walks a Produce request body (after the header) at version v, as kmsg
// lays it out, and returns how many of its bytes are record batches. It allocates nothing
// and does work in proportion to the bytes: every element it visits takes at least one
// byte. It accepts whatever kmsg decodes, which FuzzProduceRecordBytes checks.
func produceRecordBytes(v int16, body []byte) (int, error) {
	r := layoutReader{b: body, flexible: v >= 9}
	if v >= 3 {
		r.nullableString() // transactional id
	}
	r.skip(2 + 4) // acks, timeout
	records := 0
	for topics := r.arrayLen(); topics > 0 && r.err == nil; topics-- {
		if v >= 13 {
			r.skip(16) // topic id
		} else {
			r.string()
		}
		for partitions := r.arrayLen(); partitions > 0 && r.err == nil; partitions-- {
			r.skip(4) // partition
			records += r.nullableBytes()
			r.tags()
		}
		r.tags()
	}
	r.tags()
	return records, r.err
}

var errLayout = errors.New("does not hold together")

// layoutReader steps over Kafka's primitive encodings, remembering the first failure.
// Lengths are read as kmsg reads them: 32-bit uvarints holding length+1 when flexible,
// int16 (strings) or int32 (arrays, bytes) otherwise, negative meaning null or empty.
type layoutReader struct {
	b        []byte
	flexible bool
	err      error
}

func (r *layoutReader) skip(n int) {
	r.take(n)
}

// take returns the next n bytes, or nil once the input failed.
func (r *layoutReader) take(n int) []byte {
	if r.err == nil && (n < 0 || n > len(r.b)) {
		r.err = fmt.Errorf("%w: %d bytes wanted, %d left", errLayout, n, len(r.b))
	}
	if r.err != nil {
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

// length reads a length: a uvarint of length+1 when flexible, else an int16 or int32
// (width 2 or 4).
func (r *layoutReader) length(width int) int {
	if r.flexible {
		return int(r.uvarint()) - 1
	}
	b := r.take(width)
	switch {
	case b == nil:
		return 0
	case width == 2:
		return int(int16(binary.BigEndian.Uint16(b)))
	default:
		return int(int32(binary.BigEndian.Uint32(b)))
	}
}

func (r *layoutReader) uvarint() uint32 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > math.MaxUint32 {
		r.err = fmt.Errorf("%w: bad uvarint", errLayout)
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

func (r *layoutReader) arrayLen() int { return r.length(4) }

// string steps over a non-nullable string.
func (r *layoutReader) string() { r.skip(r.length(2)) }

// nullableString steps over a nullable string.
func (r *layoutReader) nullableString() {
	if n := r.length(2); n > 0 {
		r.skip(n)
	}
}

// nullableBytes steps over nullable bytes and returns their length (0 for null).
func (r *layoutReader) nullableBytes() int {
	n := r.length(4)
	if n < 0 {
		return 0
	}
	r.skip(n)
	return n
}

// tags steps over a tagged-field section, when flexible.
func (r *layoutReader) tags() {
	if !r.flexible {
		return
	}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		r.uvarint() // tag
		r.skip(int(r.uvarint()))
	}
}
