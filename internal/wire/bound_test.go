package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// tagBomb is the 25-byte ApiVersions v3 request whose body announces 0x0fffffff tagged
// fields and carries none. kmsg before v1.15.1 looped that many times on the exhausted
// input: seconds of CPU per request.
func tagBomb() []byte {
	b := []byte{0, 0, 0, 0}               // size, set below
	b = append(b, 0, 18, 0, 3)            // ApiVersions v3
	b = append(b, 0, 0, 0, 1)             // correlation id
	b = append(b, 0, 2, 'c', 'l', 0)      // client id "cl", no header tags
	b = append(b, 2, 'a', 2, '1')         // software name "a", version "1"
	b = append(b, 0xff, 0xff, 0xff, 0x7f) // tag count 0x0fffffff
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func TestTagBombIs25Bytes(t *testing.T) {
	if n := len(tagBomb()); n != 25 {
		t.Fatalf("tag bomb of %d bytes", n)
	}
}

// decodeFrame decodes a whole frame (size prefix included) as the server does, and
// returns what decoding reserved.
func decodeFrame(frame []byte) (req kmsg.Request, reserved int64, err error) {
	if len(frame) < 4 {
		return nil, 0, errMalformed
	}
	payload := frame[4:]
	h, rest, err := parseRequestHeader(payload)
	if err != nil {
		return nil, 0, err
	}
	req, _, err = decodeRequest(h, payload, rest, clampVersions(nil), DefaultMaxNonRecordBytes, func(n int64) error {
		reserved += n
		return nil
	})
	return req, reserved, err
}

// allocated returns the bytes f allocates on the heap. Only reliable with nothing else
// running: the fuzzer runs its body on one goroutine.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// decodeSlack covers the allocations of decoding that do not grow with the input: the
// request struct, a first tag map, an error message.
const decodeSlack = 16 << 10

// FuzzDecodeBound decodes any frame through the server's path and checks that decoding
// allocates no more than it reserved from the budgets, plus a constant: no request makes
// the server allocate out of proportion to its bytes.
func FuzzDecodeBound(f *testing.F) {
	for _, seed := range boundSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var reserved int64
		var err error
		got := allocated(func() { _, reserved, err = decodeFrame(frame) })
		if reserved > decodeAmplification*int64(len(frame)) {
			t.Fatalf("reserved %d for a frame of %d bytes", reserved, len(frame))
		}
		if got > uint64(reserved)+decodeSlack {
			t.Fatalf("decoding %d bytes allocated %d, reserved %d (err %v)", len(frame), got, reserved, err)
		}
	})
}

// boundSeeds are valid frames, truncated ones, and the costliest shapes known.
func boundSeeds() [][]byte {
	seeds := fuzzSeeds()
	seeds = append(seeds, tagBomb())
	for _, worst := range worstShapes() {
		seeds = append(seeds, frameOf(worst.key, worst.version, worst.body(4<<10)))
	}
	return seeds
}

// frameOf frames body as a request with a flexible (v2) header when the request is.
func frameOf(key, version int16, body []byte) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = append(b, 0, 0, 0, 1, 0xff, 0xff) // correlation id, null client id
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// worstShape is a request body built to cost kmsg as much memory per byte as possible.
type worstShape struct {
	name         string
	key, version int16
	body         func(n int) []byte // about n bytes
}

func worstShapes() []worstShape {
	return []worstShape{
		{"unknown tags on every Produce topic", 0, 9, func(n int) []byte {
			b := []byte{0, 0xff, 0xff, 0, 0, 0, 0} // null transactional id, acks, timeout
			topics := n / 5
			b = binary.AppendUvarint(b, uint64(topics+1))
			for range topics {
				b = append(b, 1, 1, 1, 5, 0) // "", no partitions, one tag 5 of 0 bytes
			}
			return append(b, 0)
		}},
		{"many distinct tags on ApiVersions", 18, 3, func(n int) []byte {
			b := []byte{2, 'a', 2, '1'}
			tags := n / 3
			b = binary.AppendUvarint(b, uint64(tags))
			for i := range tags {
				b = binary.AppendUvarint(b, uint64(i))
				b = append(b, 0)
			}
			return b
		}},
		{"empty strings in FindCoordinator keys", 10, 4, func(n int) []byte {
			b := binary.AppendUvarint([]byte{0}, uint64(n+1))
			return append(append(b, bytes.Repeat([]byte{1}, n)...), 0)
		}},
		{"unknown tags on every Metadata topic", 3, 12, func(n int) []byte {
			topics := n / 20
			b := binary.AppendUvarint(nil, uint64(topics+1))
			for range topics {
				b = append(b, make([]byte, 16)...) // topic id
				b = append(b, 0, 1, 5, 0)          // null name, one tag
			}
			return append(b, 0, 0, 0, 0)
		}},
		{"unknown tags on every CreateTopics config", 19, 5, func(n int) []byte {
			configs := n / 5
			b := []byte{2}                  // one topic
			b = append(b, 2, 't')           // name
			b = append(b, 0, 0, 0, 1, 0, 1) // partitions, replication factor
			b = append(b, 1)                // no assignments
			b = binary.AppendUvarint(b, uint64(configs+1))
			for range configs {
				b = append(b, 1, 0, 1, 5, 0) // "", null value, one tag
			}
			return append(b, 0, 0, 0, 0, 0, 0, 0)
		}},
	}
}

// The costliest shapes known stay under decodeAmplification bytes allocated per byte
// decoded. Run with -v to see the figures.
func TestDecodeAmplification(t *testing.T) {
	for _, w := range worstShapes() {
		t.Run(w.name, func(t *testing.T) {
			frame := frameOf(w.key, w.version, w.body(512<<10))
			var err error
			got := allocated(func() { _, _, err = decodeFrame(frame) })
			if err != nil {
				t.Fatalf("does not decode: %v", err)
			}
			perByte := float64(got) / float64(len(frame))
			t.Logf("%d bytes allocated %d: %.1f per byte", len(frame), got, perByte)
			if perByte > decodeAmplification {
				t.Fatalf("%.1f bytes allocated per byte, over decodeAmplification %d", perByte, decodeAmplification)
			}
		})
	}
}

// A Produce request may be large for its record batches, never for the rest: a frame
// whose bytes besides records pass MaxNonRecordBytes is refused before kmsg sees it.
func TestDecodeRequestNonRecordLimit(t *testing.T) {
	records := produceRequest(9, 1, "t")
	records.Topics[0].Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: make([]byte, 2<<20)}}
	structure := worstShapes()[0]
	for _, tc := range []struct {
		name  string
		frame []byte
		err   error
	}{
		{"2 MiB of records", kmsg.NewRequestFormatter().AppendRequest(nil, records, 1), nil},
		{"2 MiB of topics", frameOf(structure.key, structure.version, structure.body(2<<20)), errFrameSize},
		{"2 MiB Metadata", frameOf(3, 12, make([]byte, 2<<20)), errFrameSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := decodeFrame(tc.frame); !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
}

// FuzzProduceRecordBytes holds produceRecordBytes to kmsg: whatever kmsg decodes, the
// walk accepts, finding exactly the record bytes kmsg found.
func FuzzProduceRecordBytes(f *testing.F) {
	for _, v := range []int16{3, 8, 9, 12, 13} {
		req := produceRequest(v, 1, "topic")
		req.TransactionID = kmsg.StringPtr("txn")
		req.Topics[0].Partitions = []kmsg.ProduceRequestTopicPartition{
			{Partition: 0, Records: []byte("batch")},
			{Partition: 1, Records: nil},
		}
		f.Add(v, req.AppendTo(nil))
	}
	f.Add(int16(9), worstShapes()[0].body(64))
	f.Fuzz(func(t *testing.T, v int16, body []byte) {
		if v < 0 || v > kmsg.NewPtrProduceRequest().MaxVersion() {
			return
		}
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(v)
		if req.ReadFrom(body) != nil {
			return
		}
		want := 0
		for _, topic := range req.Topics {
			for _, p := range topic.Partitions {
				want += len(p.Records)
			}
		}
		got, err := produceRecordBytes(v, body)
		if err != nil || got != want {
			t.Fatalf("v%d: walk found %d record bytes (err %v), kmsg %d", v, got, err, want)
		}
	})
}

// BenchmarkDecodeTagBomb shows the 25-byte tag bomb refused in about a microsecond,
// instead of seconds.
func BenchmarkDecodeTagBomb(b *testing.B) {
	frame := tagBomb()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeFrame(frame); !errors.Is(err, errMalformed) {
			b.Fatalf("err %v, want errMalformed", err)
		}
	}
}

// A plain frame read holds what arrived, not what was announced.
func TestReadFrameGrowsAsBytesArrive(t *testing.T) {
	in := append([]byte{0x06, 0x40, 0, 0}, make([]byte, 1000)...) // 100 MiB announced, 1000 sent
	var err error
	got := allocated(func() { _, err = readFrame(bytes.NewReader(in), math.MaxInt32) })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v, want ErrUnexpectedEOF", err)
	}
	if got > 1<<20 {
		t.Fatalf("allocated %d bytes for 1000 received", got)
	}
}
