package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMaxRequestBytes bounds a frame when no limit is configured; it matches Kafka's
// socket.request.max.bytes.
const DefaultMaxRequestBytes = 100 << 20 // 100 MiB

// apiVersionsKey is special-cased twice: its response header never carries tagged fields,
// and a too-new version is answered rather than refused (KIP-511).
const apiVersionsKey = 18

// errBadRequest marks input a peer should not have sent. The server logs it at Warn and
// closes the connection; every more specific error below wraps it.
var errBadRequest = errors.New("bad request")

var (
	errFrameSize          = fmt.Errorf("%w: frame size", errBadRequest)
	errMalformed          = fmt.Errorf("%w: malformed", errBadRequest)
	errUnknownKey         = fmt.Errorf("%w: unknown api key", errBadRequest)
	errUnsupportedVersion = fmt.Errorf("%w: unsupported version", errBadRequest)
)

// RequestHeader is the part of a request frame before its body.
type RequestHeader struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string // "" when null
}

// readFrame reads one size-prefixed frame and returns its payload. The size is checked
// against limit before anything is allocated, and the payload's buffer grows as bytes
// arrive, so a peer cannot make us allocate what it merely announces.
func readFrame(r io.Reader, limit int32) ([]byte, error) {
	var prefix [4]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(prefix[:]))
	if size < 0 || size > limit {
		return nil, fmt.Errorf("%w %d outside [0, %d]", errFrameSize, size, limit)
	}
	payload, err := readPayload(r, int(size), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return payload, nil
}

// readPayload reads a payload of size bytes, of which start holds the first ones already.
// Its buffer starts at initialFrameBytes and doubles up to size as bytes arrive. Before
// each buffer is allocated, reserve (when not nil) is asked for its bytes; once a
// smaller buffer is dropped, release gives them back. On error, the buffer last
// reserved is the caller's to release: its capacity is returned with the error.
func readPayload(r io.Reader, size int, start []byte, reserve func(n int) error, release func(n int)) ([]byte, error) {
	buf, err := growFrame(nil, min(size, initialFrameBytes), reserve, release)
	if err != nil {
		return nil, err
	}
	buf = append(buf, start...)
	for len(buf) < size {
		if len(buf) == cap(buf) {
			if buf, err = growFrame(buf, min(2*cap(buf), size), reserve, release); err != nil {
				return buf, err
			}
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil && len(buf) < size {
			return buf, noEOF(err)
		}
	}
	return buf, nil
}

// growFrame moves buf into a new buffer of capacity n, reserving it first and releasing
// buf's once copied. If the reservation fails, buf is returned as it was.
func growFrame(buf []byte, n int, reserve func(int) error, release func(int)) ([]byte, error) {
	if reserve != nil {
		if err := reserve(n); err != nil {
			return buf, err
		}
	}
	grown := append(make([]byte, 0, n), buf...)
	if release != nil && cap(buf) > 0 {
		release(cap(buf))
	}
	return grown, nil
}

// noEOF turns an EOF inside a frame into ErrUnexpectedEOF: the peer hung up mid-message.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseRequestHeader reads the fields every header version shares, and the client id when
// the header has one. It returns the rest of the payload, which starts with the header's
// tagged fields when the request is flexible: only kmsg knows which versions those are.
func parseRequestHeader(payload []byte) (RequestHeader, []byte, error) {
	var h RequestHeader
	if len(payload) < 8 {
		return h, nil, fmt.Errorf("%w: header of %d bytes", errMalformed, len(payload))
	}
	h.Key = int16(binary.BigEndian.Uint16(payload))
	h.Version = int16(binary.BigEndian.Uint16(payload[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(payload[4:]))
	rest := payload[8:]
	if h.Key == 7 && h.Version == 0 { // ControlledShutdown v0: header v0, no client id
		return h, rest, nil
	}
	id, rest, err := readNullableString(rest)
	h.ClientID = id
	return h, rest, err
}

// readNullableString reads an int16-length string; -1 is null and reads as "".
func readNullableString(b []byte) (string, []byte, error) {
	if len(b) < 2 {
		return "", nil, fmt.Errorf("%w: client id length truncated", errMalformed)
	}
	n := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n < -1 || int(n) > len(b) {
		return "", nil, fmt.Errorf("%w: client id length %d with %d bytes left", errMalformed, n, len(b))
	}
	if n == -1 {
		return "", b, nil
	}
	return string(b[:n]), b[n:], nil
}

// requestFor returns an empty request of h's key at h's version, after checking that
// versions serves them. The version is checked before the body is looked at, so that an
// unsupported ApiVersions request is recognised without its body being parsed.
func requestFor(h RequestHeader, versions versionsFunc) (kmsg.Request, error) {
	req := kmsg.RequestForKey(h.Key)
	lo, hi, ok := versions(h.Key)
	if req == nil || !ok {
		return nil, fmt.Errorf("%w %d", errUnknownKey, h.Key)
	}
	if h.Version < lo || h.Version > hi {
		return nil, fmt.Errorf("%w %d for %s (key %d), serving %d..%d",
			errUnsupportedVersion, h.Version, kmsg.NameForKey(h.Key), h.Key, lo, hi)
	}
	req.SetVersion(h.Version)
	return req, nil
}

// appendResponse appends resp as a whole frame answering correlation id corr.
func appendResponse(dst []byte, corr int32, resp kmsg.Response) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // size, filled in below
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if hasResponseTags(resp.Key(), resp.IsFlexible()) {
		dst = append(dst, 0) // header v1: no tagged fields
	}
	dst = resp.AppendTo(dst)
	size := len(dst) - start - 4
	if size > math.MaxInt32 {
		return nil, fmt.Errorf("wire: %s response of %d bytes does not fit a frame", kmsg.NameForKey(resp.Key()), size)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(size))
	return dst, nil
}

// hasResponseTags reports whether a response header is v1 (with tagged fields). ApiVersions
// always answers with header v0 (KIP-511).
func hasResponseTags(key int16, flexible bool) bool {
	return flexible && key != apiVersionsKey
}

// decodeResponse decodes a response payload (the frame without its size) answering req,
// at req's version (see responseVersion for the one exception).
func decodeResponse(payload []byte, req kmsg.Request) (kmsg.Response, error) {
	if len(payload) < 4 {
		return nil, fmt.Errorf("%w: response of %d bytes", errMalformed, len(payload))
	}
	body := payload[4:]
	resp := req.ResponseKind()
	resp.SetVersion(responseVersion(req, body))
	if hasResponseTags(req.Key(), resp.IsFlexible()) {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%w: %s v%d response body: %v", errMalformed, kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// responseVersion is req's version, except for an ApiVersions request the server found
// too new: its answer, UNSUPPORTED_VERSION, is at version 0 (KIP-511). Every ApiVersions
// version starts with the error code, so it can be read before the version is known.
func responseVersion(req kmsg.Request, body []byte) int16 {
	if req.Key() == apiVersionsKey && len(body) >= 2 && int16(binary.BigEndian.Uint16(body)) == errUnsupportedVersionCode {
		return 0
	}
	return req.GetVersion()
}

// correlationID reads the correlation id that starts every response payload.
func correlationID(payload []byte) (int32, error) {
	if len(payload) < 4 {
		return 0, fmt.Errorf("%w: response of %d bytes", errMalformed, len(payload))
	}
	return int32(binary.BigEndian.Uint32(payload)), nil
}
