package partitionlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Decompression of record batches, for validating a producer's batches (validate.go),
// verifying a log (verify.go) and compacting one (compact_filter.go). Kafka's codecs, by
// attribute number: 1 gzip, 2 snappy, 3 lz4 (the LZ4 frame format), 4 zstd. Gzip, lz4 and
// zstd are read as streams through pooled readers, so a batch is checked in a fixed amount
// of memory whatever it expands to. Snappy is a block format: the block (or, in the xerial
// framing Java producers write, each chunk of at most a few tens of KiB) is decoded whole
// into a pooled buffer.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

// codecName names an attribute codec for messages.
func codecName(codec int16) string {
	switch codec {
	case codecNone:
		return "none"
	case codecGzip:
		return "gzip"
	case codecSnappy:
		return "snappy"
	case codecLZ4:
		return "lz4"
	case codecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", codec)
}

// decompressor holds one goroutine's readers and buffers; get one from decompressors and
// put it back when done with what it returned.
type decompressor struct {
	in     bytes.Reader
	src    plainReader // in, as a plain io.Reader (see plainReader)
	gzip   *gzip.Reader
	lz4    *lz4.Reader
	zstd   *zstd.Decoder
	xerial xerialReader
	block  []byte // a decoded snappy block
	window []byte // recordScanner's window over a stream
}

var decompressors = sync.Pool{New: func() any { return &decompressor{window: make([]byte, 64<<10)} }}

// maxPooledBlock bounds the snappy buffer a pooled decompressor keeps: a rare huge batch
// should not pin its memory forever.
const maxPooledBlock = 4 << 20

func getDecompressor() *decompressor { return decompressors.Get().(*decompressor) }

func putDecompressor(d *decompressor) {
	d.in.Reset(nil)
	d.xerial = xerialReader{block: d.xerial.block}
	if cap(d.block) > maxPooledBlock {
		d.block = nil
	}
	if cap(d.xerial.block) > maxPooledBlock {
		d.xerial.block = nil
	}
	decompressors.Put(d)
}

// open starts decompressing src, compressed with codec (1 to 4): either a stream to read
// or, for a raw snappy block, the decoded bytes (valid until d is put back or reused).
func (d *decompressor) open(codec int16, src []byte) (io.Reader, []byte, error) {
	d.in.Reset(src)
	d.src.r = &d.in
	switch codec {
	case codecGzip:
		if d.gzip == nil {
			d.gzip = new(gzip.Reader)
		}
		if err := d.gzip.Reset(&d.src); err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return d.gzip, nil, nil
	case codecSnappy:
		if isXerial(src) {
			if err := d.xerial.reset(src); err != nil {
				return nil, nil, err
			}
			return &d.xerial, nil, nil
		}
		b, err := decodeSnappyBlock(d.block[:0], src)
		if err != nil {
			return nil, nil, err
		}
		d.block = b
		return nil, b, nil
	case codecLZ4:
		if d.lz4 == nil {
			d.lz4 = lz4.NewReader(nil)
		}
		d.lz4.Reset(&d.src)
		return d.lz4, nil, nil
	case codecZstd:
		if d.zstd == nil {
			// One block in flight, no goroutines, and a window no producer at Kafka's
			// levels exceeds: a frame cannot make the broker allocate what it declares.
			z, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderMaxMemory(maxZstdWindow))
			if err != nil {
				return nil, nil, fmt.Errorf("zstd: %w", err)
			}
			d.zstd = z
		}
		if err := d.zstd.Reset(&d.src); err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return d.zstd, nil, nil
	}
	return nil, nil, fmt.Errorf("%w: %s", ErrUnsupportedCompression, codecName(codec))
}

// maxZstdWindow is 32 MiB: zstd's levels up to 19 use windows of at most 8 MiB, and 22 of
// 128 MiB only with --ultra, which no Kafka client sets.
const maxZstdWindow = 32 << 20

// plainReader hides bytes.Reader's Len, which would make the zstd decoder decode the whole
// input into memory at once instead of streaming it.
type plainReader struct{ r io.Reader }

func (p *plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// decompressAll returns the decompressed bytes of src in a new slice, for callers that
// keep them (compaction).
func decompressAll(codec int16, src []byte) ([]byte, error) {
	d := getDecompressor()
	defer putDecompressor(d)
	r, block, err := d.open(codec, src)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return bytes.Clone(block), nil
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", codecName(codec), err)
	}
	return out, nil
}

// Snappy. Java producers frame it as xerial's SnappyOutputStream does: an 8-byte magic, two
// 4-byte versions, then chunks of a 4-byte big-endian length and a snappy block; other
// clients (librdkafka, franz-go) send one raw block, which Kafka accepts too.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

func isXerial(b []byte) bool { return len(b) >= xerialHeaderSize && bytes.Equal(b[:8], xerialMagic) }

// maxSnappyExpansion bounds what a snappy block can decode to: its densest element is a
// 3-byte copy of 64 bytes. A block declaring more is corrupt, and is refused before its
// buffer is allocated.
const maxSnappyExpansion = 22

var errSnappyCorrupt = errors.New("snappy: corrupt input")

// decodeSnappyBlock decodes one standard snappy block into dst's storage. It refuses the
// s2 extensions klauspost's fast decoder would accept: consumers other than Go's could not
// read them.
func decodeSnappyBlock(dst, src []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil || n > maxSnappyExpansion*len(src) {
		return nil, errSnappyCorrupt
	}
	if cap(dst) < n {
		dst = make([]byte, 0, n)
	}
	out, err := snappy.DecodeStrict(dst[:n], src)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	return out, nil
}

// xerialReader streams the chunks of an xerial-framed snappy payload, decoding one at a time.
type xerialReader struct {
	src   []byte // chunks not decoded yet
	block []byte // storage of the current chunk
	out   []byte // what is left of it to read
}

func (x *xerialReader) reset(b []byte) error {
	x.src, x.out = b[xerialHeaderSize:], nil
	return nil
}

func (x *xerialReader) Read(p []byte) (int, error) {
	for len(x.out) == 0 {
		if len(x.src) == 0 {
			return 0, io.EOF
		}
		if len(x.src) < 4 {
			return 0, fmt.Errorf("snappy: torn xerial chunk length")
		}
		n := binary.BigEndian.Uint32(x.src)
		if uint64(n) > uint64(len(x.src)-4) {
			return 0, fmt.Errorf("snappy: xerial chunk of %d bytes, %d left", n, len(x.src)-4)
		}
		chunk := x.src[4 : 4+n]
		x.src = x.src[4+n:]
		b, err := decodeSnappyBlock(x.block[:0], chunk)
		if err != nil {
			return 0, err
		}
		x.block, x.out = b, b
	}
	n := copy(p, x.out)
	x.out = x.out[n:]
	return n, nil
}
