package wire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Strait's own tagged fields of a request header (header v2, flexible versions; see
// doc.go). Apache Kafka defines no request header tags; these numbers sit far above any
// it is likely to, and every Kafka reader skips tags it does not know.
const (
	// tagInternal, on a connection's first request (an ApiVersions), declares the
	// connection Strait-internal. Its value is a uvarint: the version of this internal
	// protocol, 1.
	tagInternal = 10000
	// tagClientID, tagClientAddr and tagTraceParent carry a request's Origin: the real
	// client behind a proxy. They are read on internal connections only.
	tagClientID    = 10001
	tagClientAddr  = 10002
	tagTraceParent = 10003
	// tagPrincipal carries the client's authenticated principal ("User:alice"), and
	// tagListener the name of the listener it connected on; read, like the others,
	// only from internal peers the Server trusts (Security.InternalPeer).
	tagPrincipal = 10004
	tagListener  = 10005
)

// internalProtocol is the version a Client declares in tagInternal.
const internalProtocol = 1

// Bounds on the Origin fields a peer may send: a client id as long as the header's own
// (an int16 length), an address or a traceparent (55 bytes in W3C version 00) far under
// what any real one needs.
const (
	maxOriginClientID    = math.MaxInt16
	maxOriginClientAddr  = 512
	maxOriginTraceParent = 512
	maxOriginPrincipal   = 4096 // a certificate's subject can be long
	maxOriginListener    = 256
)

// headerTags are the Strait tags read from a request header. The values point into the
// frame: nothing is copied until a connection that may use them does.
type headerTags struct {
	internal    uint64 // the internal protocol version declared; 0 when not declared
	clientID    []byte
	clientAddr  []byte
	traceParent []byte
	principal   []byte
	listener    []byte
}

// origin returns base with each field the tags carry put in its place.
func (t headerTags) origin(base Origin) (Origin, error) {
	for _, f := range []struct {
		name  string
		value []byte
		limit int
		dst   *string
	}{
		{"client id", t.clientID, maxOriginClientID, &base.ClientID},
		{"client address", t.clientAddr, maxOriginClientAddr, &base.ClientAddr},
		{"traceparent", t.traceParent, maxOriginTraceParent, &base.TraceParent},
		{"principal", t.principal, maxOriginPrincipal, &base.Principal},
		{"listener", t.listener, maxOriginListener, &base.Listener},
	} {
		if len(f.value) > f.limit {
			return base, fmt.Errorf("%w: origin %s of %d bytes (at most %d)", errMalformed, f.name, len(f.value), f.limit)
		}
		if len(f.value) > 0 {
			*f.dst = string(f.value)
		}
	}
	return base, nil
}

// readHeaderTags reads a request header's tagged fields: a uvarint count, then per field
// a uvarint tag, a uvarint size and that many bytes. Tags other than Strait's are skipped.
func readHeaderTags(b []byte) (headerTags, []byte, error) {
	var t headerTags
	count, b, err := readUvarint(b)
	if err != nil {
		return t, nil, err
	}
	for ; count > 0; count-- {
		var tag, size uint64
		if tag, b, err = readUvarint(b); err != nil {
			return t, nil, err
		}
		if size, b, err = readUvarint(b); err != nil {
			return t, nil, err
		}
		if size > uint64(len(b)) {
			return t, nil, fmt.Errorf("%w: tagged field of %d bytes with %d left", errMalformed, size, len(b))
		}
		value := b[:size:size]
		b = b[size:]
		switch tag {
		case tagInternal:
			if t.internal, _, err = readUvarint(value); err != nil {
				return t, nil, err
			}
		case tagClientID:
			t.clientID = value
		case tagClientAddr:
			t.clientAddr = value
		case tagTraceParent:
			t.traceParent = value
		case tagPrincipal:
			t.principal = value
		case tagListener:
			t.listener = value
		}
	}
	return t, b, nil
}

// skipTags skips a tagged-field section, as of a response header, which has none of
// Strait's.
func skipTags(b []byte) ([]byte, error) {
	_, rest, err := readHeaderTags(b)
	return rest, err
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad uvarint in tagged fields", errMalformed)
	}
	return v, b[n:], nil
}

// appendRequest appends req as a whole frame with correlation id corr: size, header,
// body. The header is v0 for ControlledShutdown v0, v2 (with tagged fields) when req is
// flexible, v1 otherwise, as kmsg's RequestFormatter writes them; unlike it, a v2 header
// carries Strait's tags: the internal declaration when declare is set, and origin's
// non-empty fields. A header v1 has no room for them: they are dropped.
func appendRequest(dst []byte, req kmsg.Request, corr int32, clientID string, declare bool, origin Origin) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // size, filled in below
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if req.Key() != 7 || req.GetVersion() != 0 { // ControlledShutdown v0: no client id
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
		dst = append(dst, clientID...)
	}
	if req.IsFlexible() {
		dst = appendHeaderTags(dst, declare, origin)
	}
	dst = req.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// appendHeaderTags appends the tagged fields of a v2 header, in ascending tag order as
// the protocol wants them.
func appendHeaderTags(dst []byte, declare bool, o Origin) []byte {
	fields := []struct {
		tag   uint64
		value string
	}{
		{tagClientID, o.ClientID},
		{tagClientAddr, o.ClientAddr},
		{tagTraceParent, o.TraceParent},
		{tagPrincipal, o.Principal},
		{tagListener, o.Listener},
	}
	count := 0
	if declare {
		count++
	}
	for _, f := range fields {
		if f.value != "" {
			count++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(count))
	if declare {
		version := binary.AppendUvarint(nil, internalProtocol)
		dst = appendTag(dst, tagInternal, string(version))
	}
	for _, f := range fields {
		if f.value != "" {
			dst = appendTag(dst, f.tag, f.value)
		}
	}
	return dst
}

func appendTag(dst []byte, tag uint64, value string) []byte {
	dst = binary.AppendUvarint(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}
