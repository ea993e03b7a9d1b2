package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseRequestHeader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		want    RequestHeader
		rest    int // bytes left after the header
		err     error
	}{
		{"v1 with client id", hdr(3, 1, 7, "ab", 5), RequestHeader{3, 1, 7, "ab"}, 5, nil},
		{"v1 null client id reads as empty", []byte{0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xff}, RequestHeader{3, 1, 7, ""}, 0, nil},
		{"v1 empty client id", hdr(3, 1, 7, "", 0), RequestHeader{3, 1, 7, ""}, 0, nil},
		{"v0: ControlledShutdown v0 has no client id", []byte{0, 7, 0, 0, 0, 0, 0, 9, 1, 2}, RequestHeader{7, 0, 9, ""}, 2, nil},
		{"empty", nil, RequestHeader{}, 0, errMalformed},
		{"shorter than key, version, correlation id", []byte{0, 3, 0, 1, 0, 0, 0}, RequestHeader{}, 0, errMalformed},
		{"client id length missing", []byte{0, 3, 0, 1, 0, 0, 0, 7, 0}, RequestHeader{3, 1, 7, ""}, 0, errMalformed},
		{"client id length past the end", []byte{0, 3, 0, 1, 0, 0, 0, 7, 0, 2, 'a'}, RequestHeader{3, 1, 7, ""}, 0, errMalformed},
		{"client id length below -1", []byte{0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xfe}, RequestHeader{3, 1, 7, ""}, 0, errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rest, err := parseRequestHeader(tc.payload)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if h != tc.want || len(rest) != tc.rest {
				t.Fatalf("got %+v with %d bytes left, want %+v with %d", h, len(rest), tc.want, tc.rest)
			}
		})
	}
}

// hdr encodes a v1 request header followed by pad zero bytes.
func hdr(key, version int16, corr int32, clientID string, pad int) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	return append(b, make([]byte, pad)...)
}

func TestDecodeBody(t *testing.T) {
	metadataV1 := metadataRequest(1, "t").AppendTo(nil)
	metadataV12 := metadataRequest(12, "t").AppendTo(nil)
	onlyMetadataV4to9 := func(key int16) (int16, int16, bool) { return 4, 9, key == 3 }
	for _, tc := range []struct {
		name     string
		h        RequestHeader
		rest     []byte
		versions versionsFunc
		err      error
	}{
		{"non-flexible", RequestHeader{Key: 3, Version: 1}, metadataV1, nil, nil},
		{"flexible, no header tags", RequestHeader{Key: 3, Version: 12}, append([]byte{0}, metadataV12...), nil, nil},
		{"flexible, header tags skipped", RequestHeader{Key: 3, Version: 12}, append([]byte{2, 0, 1, 'x', 5, 0}, metadataV12...), nil, nil},
		{"flexible, tag past the end", RequestHeader{Key: 3, Version: 12}, []byte{1, 0, 9, 'x'}, nil, errMalformed},
		{"flexible, bad uvarint", RequestHeader{Key: 3, Version: 12}, bytes.Repeat([]byte{0xff}, 11), nil, errMalformed},
		{"flexible, tags missing", RequestHeader{Key: 3, Version: 12}, nil, nil, errMalformed},
		{"truncated body", RequestHeader{Key: 3, Version: 1}, metadataV1[:len(metadataV1)-1], nil, errMalformed},
		{"unknown key", RequestHeader{Key: 9999}, nil, nil, errUnknownKey},
		{"negative key", RequestHeader{Key: -1}, nil, nil, errUnknownKey},
		{"version above kmsg's", RequestHeader{Key: 3, Version: 100}, metadataV1, nil, errUnsupportedVersion},
		{"negative version", RequestHeader{Key: 3, Version: -1}, metadataV1, nil, errUnsupportedVersion},
		{"below served range", RequestHeader{Key: 3, Version: 1}, metadataV1, onlyMetadataV4to9, errUnsupportedVersion},
		{"above served range", RequestHeader{Key: 3, Version: 12}, metadataV12, onlyMetadataV4to9, errUnsupportedVersion},
		{"key not served", RequestHeader{Key: 0, Version: 3}, nil, onlyMetadataV4to9, errUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := decodeBody(tc.h, tc.rest, clampVersions(tc.versions))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && (req.Key() != tc.h.Key || req.GetVersion() != tc.h.Version) {
				t.Fatalf("decoded key %d v%d", req.Key(), req.GetVersion())
			}
			if !errors.Is(err, errBadRequest) && err != nil {
				t.Fatalf("%v does not mark a bad request", err)
			}
		})
	}
}

// decodeBody decodes a request body as the server does, with no limit on what it may
// allocate.
func decodeBody(h RequestHeader, rest []byte, versions versionsFunc) (kmsg.Request, error) {
	req, _, err := decodeRequest(h, rest, rest, versions, math.MaxInt32, func(int64) error { return nil })
	return req, err
}

// A served range above kmsg's is cut to what kmsg can decode.
func TestClampVersions(t *testing.T) {
	v := clampVersions(func(int16) (int16, int16, bool) { return 0, 1000, true })
	if _, hi, ok := v(3); !ok || hi != kmsg.NewPtrMetadataRequest().MaxVersion() {
		t.Fatalf("max %d ok %v", hi, ok)
	}
	if _, _, ok := v(kmsg.MaxKey + 1); ok {
		t.Fatal("a key kmsg does not know is served")
	}
}

// Response headers: flexible versions carry a tag section, except ApiVersions (KIP-511).
func TestAppendResponseHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp kmsg.Response
		tags bool
	}{
		{"Metadata v8", versionedResp(kmsg.NewPtrMetadataResponse(), 8), false},
		{"Metadata v9 flexible", versionedResp(kmsg.NewPtrMetadataResponse(), 9), true},
		{"ApiVersions v2", versionedResp(kmsg.NewPtrApiVersionsResponse(), 2), false},
		{"ApiVersions v3 flexible: still header v0", versionedResp(kmsg.NewPtrApiVersionsResponse(), 3), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame, err := appendResponse([]byte("prefix"), 42, tc.resp)
			if err != nil {
				t.Fatal(err)
			}
			frame = frame[len("prefix"):]
			body := tc.resp.AppendTo(nil)
			want := 4 + len(body)
			if tc.tags {
				want++
			}
			if size := int(binary.BigEndian.Uint32(frame)); size != want || len(frame) != 4+want {
				t.Fatalf("size prefix %d, frame %d bytes; want payload %d", size, len(frame), want)
			}
			if corr, _ := correlationID(frame[4:]); corr != 42 {
				t.Fatalf("correlation id %d", corr)
			}
		})
	}
}

func versionedResp[R kmsg.Response](r R, v int16) R {
	r.SetVersion(v)
	return r
}

// A size prefix is checked before the payload is allocated: announcing 2 GiB costs
// nothing.
func TestReadFrameDoesNotAllocateAnnouncedSize(t *testing.T) {
	in := []byte{0x7f, 0xff, 0xff, 0xff, 1, 2, 3}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readFrame(bytes.NewReader(in), DefaultMaxRequestBytes)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errFrameSize) {
		t.Fatalf("err %v, want errFrameSize", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes for a rejected frame", grew)
	}
}

func TestReadFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
		err  error
	}{
		{"empty payload", []byte{0, 0, 0, 0}, []byte{}, nil},
		{"payload", []byte{0, 0, 0, 2, 'h', 'i', 'x'}, []byte("hi"), nil},
		{"at the limit", append([]byte{0, 0, 0, 8}, make([]byte, 8)...), make([]byte, 8), nil},
		{"over the limit", []byte{0, 0, 0, 9}, nil, errFrameSize},
		{"negative", []byte{0x80, 0, 0, 0}, nil, errFrameSize},
		{"nothing", nil, nil, io.EOF},
		{"truncated size", []byte{0, 0}, nil, io.ErrUnexpectedEOF},
		{"truncated payload", []byte{0, 0, 0, 3, 'a'}, nil, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readFrame(bytes.NewReader(tc.in), 8)
			if !errors.Is(err, tc.err) || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// FuzzReadRequest feeds arbitrary bytes to the server's decoder: it must never panic nor
// allocate past its limit, and whatever it accepts must encode and decode back the same.
func FuzzReadRequest(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	versions := clampVersions(nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		for {
			frame, err := readFrame(br, 1<<16)
			if err != nil {
				return
			}
			h, rest, err := parseRequestHeader(frame)
			if err != nil {
				continue
			}
			req, err := decodeBody(h, rest, versions)
			if err != nil {
				continue
			}
			checkReencodes(t, h, req)
		}
	})
}

// checkReencodes encodes a decoded request as a client would and decodes it again.
func checkReencodes(t *testing.T, h RequestHeader, req kmsg.Request) {
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID(h.ClientID)).AppendRequest(nil, req, h.CorrelationID)
	h2, rest, err := parseRequestHeader(frame[4:])
	if err != nil || h2 != h {
		t.Fatalf("header %+v re-read as %+v, %v", h, h2, err)
	}
	req2, err := decodeBody(h2, rest, clampVersions(nil))
	if err != nil {
		t.Fatalf("re-encoded %s v%d does not decode: %v", kmsg.NameForKey(h.Key), h.Version, err)
	}
	if a, b := req.AppendTo(nil), req2.AppendTo(nil); !bytes.Equal(a, b) {
		t.Fatalf("%s v%d changed on re-encoding:\n%x\n%x", kmsg.NameForKey(h.Key), h.Version, a, b)
	}
}

// fuzzSeeds are valid frames at several versions, flexible or not, two pipelined, and
// truncated and maximal ones.
func fuzzSeeds() [][]byte {
	format := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	var valid [][]byte
	for _, req := range []kmsg.Request{
		versioned(kmsg.NewPtrApiVersionsRequest(), 0),
		versioned(kmsg.NewPtrApiVersionsRequest(), 3),
		metadataRequest(1, "a"),
		metadataRequest(12, "a", "b"),
		produceRequest(3, 1, "p"),
		produceRequest(9, -1, "p"),
		versioned(kmsg.NewPtrFetchRequest(), 4),
		versioned(kmsg.NewPtrFetchRequest(), 13),
		versioned(kmsg.NewPtrControlledShutdownRequest(), 0),
	} {
		valid = append(valid, format.AppendRequest(nil, req, 1))
	}
	seeds := append([][]byte{}, valid...)
	seeds = append(seeds, append(slices.Clone(valid[2]), valid[3]...))
	for _, v := range valid {
		seeds = append(seeds, v[:len(v)/2], truncate(v, 1))
	}
	return append(seeds,
		[]byte{0x7f, 0xff, 0xff, 0xff},
		bytes.Repeat([]byte{0xff}, 64),
		append([]byte{0, 0, 0, 40}, bytes.Repeat([]byte{0x7f}, 40)...),
		nil,
	)
}
