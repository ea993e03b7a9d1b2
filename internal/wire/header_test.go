package wire

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// headerRequests are requests of every header version: v0 (ControlledShutdown v0), v1,
// and v2 (flexible).
func headerRequests() []kmsg.Request {
	return []kmsg.Request{
		versioned(kmsg.NewPtrControlledShutdownRequest(), 0),
		versioned(kmsg.NewPtrApiVersionsRequest(), 0),
		versioned(kmsg.NewPtrApiVersionsRequest(), 3),
		metadataRequest(1, "a"),
		metadataRequest(12, "a", "b"),
		produceRequest(3, 1, "p"),
		produceRequest(12, -1, "p"),
		versioned(kmsg.NewPtrFetchRequest(), 12),
	}
}

// Without tags, appendRequest writes what kmsg's RequestFormatter writes, byte for byte,
// but for ControlledShutdown v0, where the formatter stops before the body and leaves the
// size unset (TestHeaderTagsRoundTrip reads ours back).
func TestAppendRequestMatchesKmsg(t *testing.T) {
	for _, req := range headerRequests() {
		if req.Key() == 7 && req.GetVersion() == 0 {
			continue
		}
		for _, clientID := range []string{"", "a-client"} {
			want := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)).AppendRequest(nil, req, 42)
			if got := appendRequest(nil, req, 42, clientID, false, Origin{}); !bytes.Equal(got, want) {
				t.Errorf("%s v%d, client id %q:\n got %x\nwant %x", kmsg.NameForKey(req.Key()), req.GetVersion(), clientID, got, want)
			}
		}
	}
}

// The internal declaration and an Origin written into a v2 header read back the same,
// and the body after them decodes; a v1 header has no room for them and they are
// dropped.
func TestHeaderTagsRoundTrip(t *testing.T) {
	origin := Origin{ClientID: "consumer-7", ClientAddr: "10.1.2.3:51234", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	for _, req := range headerRequests() {
		for _, declare := range []bool{false, true} {
			frame := appendRequest(nil, req, 7, "strait-proxy", declare, origin)
			h, tags, body, err := decodeFrameTags(frame)
			if err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
			}
			if h.CorrelationID != 7 || (h.ClientID != "strait-proxy" && !(req.Key() == 7 && req.GetVersion() == 0)) {
				t.Fatalf("header %+v", h)
			}
			if !bytes.Equal(body.AppendTo(nil), req.AppendTo(nil)) {
				t.Fatalf("%s v%d: body changed", kmsg.NameForKey(req.Key()), req.GetVersion())
			}
			got, err := tags.origin(Origin{})
			if err != nil {
				t.Fatal(err)
			}
			wantOrigin, wantInternal := Origin{}, uint64(0)
			if req.IsFlexible() {
				wantOrigin = origin
				if declare {
					wantInternal = internalProtocol
				}
			}
			if got != wantOrigin || tags.internal != wantInternal {
				t.Fatalf("%s v%d declare %v: read %+v internal %d, want %+v internal %d",
					kmsg.NameForKey(req.Key()), req.GetVersion(), declare, got, tags.internal, wantOrigin, wantInternal)
			}
		}
	}
}

// Tags fill only the fields they carry; the others keep the connection's.
func TestHeaderTagsPartialOrigin(t *testing.T) {
	frame := appendRequest(nil, metadataRequest(12), 1, "strait-proxy", false, Origin{ClientAddr: "1.2.3.4:5"})
	_, tags, _, err := decodeFrameTags(frame)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tags.origin(Origin{ClientID: "strait-proxy", ClientAddr: "9.9.9.9:9"})
	if want := (Origin{ClientID: "strait-proxy", ClientAddr: "1.2.3.4:5"}); err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

// An origin field longer than its bound is refused as malformed.
func TestHeaderTagsBounds(t *testing.T) {
	long := string(bytes.Repeat([]byte{'a'}, maxOriginClientAddr+1))
	_, tags, _, err := decodeFrameTags(appendRequest(nil, metadataRequest(12), 1, "x", false, Origin{ClientAddr: long}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tags.origin(Origin{}); err == nil {
		t.Fatal("an over-long client address was accepted")
	}
}

// decodeFrameTags decodes a whole frame as the server does, returning its header tags.
func decodeFrameTags(frame []byte) (RequestHeader, headerTags, kmsg.Request, error) {
	payload := frame[4:]
	h, rest, err := parseRequestHeader(payload)
	if err != nil {
		return h, headerTags{}, nil, err
	}
	body, tags, err := decodeRequest(h, payload, rest, clampVersions(nil), DefaultMaxNonRecordBytes, func(int64) error { return nil })
	return h, tags, body, err
}

// FuzzHeaderTags reads arbitrary bytes as a header's tagged fields: no panic, and what
// reads back as an origin and a declaration encodes and reads back the same.
func FuzzHeaderTags(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{2, 0, 1, 'x', 5, 0})
	f.Add(bytes.Repeat([]byte{0xff}, 11))
	for _, declare := range []bool{false, true} {
		frame := appendRequest(nil, metadataRequest(12), 1, "c", declare, Origin{ClientID: "id", ClientAddr: "h:1", TraceParent: "tp"})
		f.Add(frame[4+8+2+1:]) // past size, key, version, correlation id and client id "c"
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		tags, _, err := readHeaderTags(in)
		if err != nil {
			return
		}
		o, err := tags.origin(Origin{})
		if err != nil {
			return
		}
		declare := tags.internal >= internalProtocol
		frame := appendRequest(nil, metadataRequest(12), 1, "c", declare, o)
		_, again, _, err := decodeFrameTags(frame)
		if err != nil {
			t.Fatalf("re-encoded header does not decode: %v", err)
		}
		o2, err := again.origin(Origin{})
		if err != nil || o2 != o || (again.internal >= internalProtocol) != declare {
			t.Fatalf("origin %+v (declared %v) read back as %+v (internal %d), %v", o, declare, o2, again.internal, err)
		}
	})
}

// FuzzOriginRoundTrip writes any Origin within bounds and reads it back.
func FuzzOriginRoundTrip(f *testing.F) {
	f.Add("consumer-1", "127.0.0.1:9092", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", true)
	f.Add("", "", "", false)
	f.Fuzz(func(t *testing.T, clientID, addr, traceParent string, declare bool) {
		if len(clientID) > maxOriginClientID || len(addr) > maxOriginClientAddr || len(traceParent) > maxOriginTraceParent {
			return
		}
		want := Origin{ClientID: clientID, ClientAddr: addr, TraceParent: traceParent}
		_, tags, _, err := decodeFrameTags(appendRequest(nil, metadataRequest(12, "t"), 3, "proxy", declare, want))
		if err != nil {
			t.Fatal(err)
		}
		got, err := tags.origin(Origin{})
		if err != nil || got != want || (tags.internal == internalProtocol) != declare {
			t.Fatalf("wrote %+v declare %v, read %+v internal %d, %v", want, declare, got, tags.internal, err)
		}
	})
}
