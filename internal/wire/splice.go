package wire

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FileRange is bytes of an open file that a response carries as they are.
//
// The file is read with explicit offsets (pread, sendfile with an offset), never through
// its current position, so one *os.File may back many ranges and connections at once.
type FileRange struct {
	File   *os.File
	Offset int64
	Length int64
}

// Spliced is a response some of whose byte fields are sent from files: a Fetch response's
// RecordBatches, copied from segment files, go to the socket with sendfile when the Server's
// ZeroCopy is set and the connection is TCP, and are copied into the frame otherwise.
//
// The handler builds the kmsg response with each such field set to Placeholder(i) and lists
// the file ranges for placeholder i in Ranges[i]; several ranges are sent one after the
// other, and none make an empty (not null) field. Every placeholder 0..len(Ranges)-1 must
// appear exactly once, in an ordinary bytes field (not inside a tagged field, whose own
// size would then be wrong); anything else fails the request and closes the connection, as
// a handler error does.
//
// The files' bytes must not change until Release is called. Release, when set, is called
// exactly once, after the ranges were last read: once the response was written or copied,
// or when it is dropped (the connection failed or closed, the handler returned an error as
// well, or the response was malformed).
type Spliced struct {
	kmsg.Response
	Ranges  [][]FileRange
	Release func()
}

// markerLen is the size of a placeholder: a per-process random prefix and an index.
const (
	markerPrefixLen = 16
	markerLen       = markerPrefixLen + 4
)

// markerPrefix starts every placeholder. It is random per process, so neither record bytes
// nor a peer can produce it by anything but a 2^-128 chance.
var markerPrefix = func() [markerPrefixLen]byte {
	var p [markerPrefixLen]byte
	rand.Read(p[:]) // never fails (crypto/rand panics rather than return an error)
	return p
}()

// Placeholder returns the marker a Spliced response puts in the byte field that Ranges[i]
// fills.
func Placeholder(i int) []byte {
	if i < 0 || i > math.MaxInt32 {
		panic(fmt.Sprintf("wire: placeholder index %d out of range", i))
	}
	b := make([]byte, markerLen)
	copy(b, markerPrefix[:])
	binary.BigEndian.PutUint32(b[markerPrefixLen:], uint32(i))
	return b
}

// splicedFrame is a response frame in parts: encoded bytes and file ranges, alternating as
// the fields fall. size is the whole frame's, with its size prefix.
type splicedFrame struct {
	parts []framePart
	size  int
}

// framePart is either bytes (file.File == nil) or a file range.
type framePart struct {
	bytes []byte
	file  FileRange
}

// placeholderAt is one placeholder found in an encoded frame: the field (its length
// prefix and the marker) spans frame[start:end].
type placeholderAt struct {
	index      int
	start, end int
}

// spliceFrame cuts frame, a whole encoded response frame of sp, at its placeholders and
// puts sp's file ranges in their place, with the field lengths and the frame size fixed.
func spliceFrame(frame []byte, sp *Spliced) (*splicedFrame, error) {
	name := kmsg.NameForKey(sp.Key())
	found, err := findPlaceholders(frame, len(sp.Ranges), sp.IsFlexible())
	if err != nil {
		return nil, fmt.Errorf("wire: spliced %s response: %w", name, err)
	}
	// Each field's new length prefix goes into buf, after the bytes before it, so that every
	// bytes part is one slice of buf; buf never grows, so the slices stay valid.
	buf := make([]byte, 0, len(frame)+len(found)*binary.MaxVarintLen32)
	sf := &splicedFrame{size: len(frame)}
	prev := 0
	for _, p := range found {
		total, err := rangesLength(sp.Ranges[p.index])
		if err != nil {
			return nil, fmt.Errorf("wire: spliced %s response, placeholder %d: %w", name, p.index, err)
		}
		from := len(buf)
		buf = append(buf, frame[prev:p.start]...)
		if sp.IsFlexible() {
			buf = binary.AppendUvarint(buf, uint64(total)+1)
		} else {
			buf = binary.BigEndian.AppendUint32(buf, uint32(total))
		}
		sf.parts = append(sf.parts, framePart{bytes: buf[from:]})
		for _, r := range sp.Ranges[p.index] {
			if r.Length > 0 {
				sf.parts = append(sf.parts, framePart{file: r})
			}
		}
		sf.size += len(buf) - from - (p.start - prev) - (p.end - p.start) + int(total)
		prev = p.end
	}
	sf.parts = append(sf.parts, framePart{bytes: append(buf, frame[prev:]...)[len(buf):]})
	if sf.size-4 > math.MaxInt32 {
		return nil, fmt.Errorf("wire: spliced %s response of %d bytes does not fit a frame", name, sf.size-4)
	}
	binary.BigEndian.PutUint32(sf.parts[0].bytes, uint32(sf.size-4))
	return sf, nil
}

// findPlaceholders finds, in order, the fields of frame holding placeholders 0..n-1, each
// exactly once and preceded by its length prefix: an int32, or a uvarint of length+1 when
// flexible. Any other occurrence of the marker prefix is an error.
func findPlaceholders(frame []byte, n int, flexible bool) ([]placeholderAt, error) {
	seen := make([]bool, n)
	found := make([]placeholderAt, 0, n)
	prefixLen := 4
	if flexible {
		prefixLen = 1 // uvarint(markerLen+1) is one byte
	}
	for off := 0; ; {
		i := bytes.Index(frame[off:], markerPrefix[:])
		if i < 0 {
			break
		}
		at := off + i
		if at+markerLen > len(frame) {
			return nil, errors.New("truncated placeholder")
		}
		index := int(binary.BigEndian.Uint32(frame[at+markerPrefixLen:]))
		switch {
		case index >= n:
			return nil, fmt.Errorf("placeholder %d with %d ranges", index, n)
		case seen[index]:
			return nil, fmt.Errorf("placeholder %d appears twice", index)
		case at-prefixLen < off || !hasLengthPrefix(frame[at-prefixLen:at], flexible):
			return nil, fmt.Errorf("placeholder %d is not a whole bytes field", index)
		}
		seen[index] = true
		found = append(found, placeholderAt{index: index, start: at - prefixLen, end: at + markerLen})
		off = at + markerLen
	}
	if len(found) != n {
		for i, ok := range seen {
			if !ok {
				return nil, fmt.Errorf("placeholder %d not found", i)
			}
		}
	}
	return found, nil
}

// hasLengthPrefix reports whether p is the length prefix of a marker-sized bytes field.
func hasLengthPrefix(p []byte, flexible bool) bool {
	if flexible {
		return len(p) == 1 && p[0] == markerLen+1
	}
	return len(p) == 4 && binary.BigEndian.Uint32(p) == markerLen
}

// rangesLength checks ranges and returns their total length, which must fit a bytes field.
func rangesLength(ranges []FileRange) (int64, error) {
	var total int64
	for _, r := range ranges {
		switch {
		case r.Offset < 0 || r.Length < 0:
			return 0, fmt.Errorf("file range at %d of %d bytes", r.Offset, r.Length)
		case r.File == nil && r.Length > 0:
			return 0, errors.New("file range without a file")
		}
		total += r.Length
		if total > math.MaxInt32 {
			return 0, fmt.Errorf("file ranges of more than %d bytes", math.MaxInt32)
		}
	}
	return total, nil
}

// flatten copies the whole frame, file ranges included, into one buffer: what is written
// when the bytes cannot (or, with ZeroCopy off, should not) go from file to socket.
func (sf *splicedFrame) flatten() ([]byte, error) {
	out := make([]byte, 0, sf.size)
	for _, p := range sf.parts {
		if p.file.File == nil {
			out = append(out, p.bytes...)
			continue
		}
		n := len(out)
		out = out[:n+int(p.file.Length)]
		if err := readRange(out[n:], p.file); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readRange reads r, all of which must exist, into dst.
func readRange(dst []byte, r FileRange) error {
	if _, err := r.File.ReadAt(dst, r.Offset); err != nil {
		return fmt.Errorf("wire: read %d bytes at %d of %s: %w", r.Length, r.Offset, r.File.Name(), noEOF(err))
	}
	return nil
}

// memoryBytes is what the frame holds in memory: its bytes parts, not its file ranges.
func (sf *splicedFrame) memoryBytes() int64 {
	var n int64
	for _, p := range sf.parts {
		n += int64(len(p.bytes))
	}
	return n
}

// writeTo writes the frame to bw, the connection's buffered writer over nc, sending the
// file ranges from file to socket. Buffered bytes are flushed before each range, so the
// frame's parts leave in order.
func (sf *splicedFrame) writeTo(bw *bufio.Writer, nc net.Conn) error {
	for _, p := range sf.parts {
		if p.file.File == nil {
			if _, err := bw.Write(p.bytes); err != nil {
				return err
			}
			continue
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := sendFile(nc, p.file); err != nil {
			return err
		}
	}
	return nil
}
