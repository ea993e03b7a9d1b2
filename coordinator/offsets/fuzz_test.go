package offsets

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fixCRCs rewrites the CRC of every complete batch in b, so that the fuzzer reaches
// the record, key and value decoders behind the CRC check.
func fixCRCs(b []byte) []byte {
	b = bytes.Clone(b)
	for rest := b; len(rest) >= batchHeaderLen; {
		size := logOverhead + int(int32(binary.BigEndian.Uint32(rest[lengthOffset:])))
		if size < batchHeaderLen || size > len(rest) {
			break
		}
		binary.BigEndian.PutUint32(rest[crcOffset:], crc32.Checksum(rest[attributesOffset:size], castagnoli))
		rest = rest[size:]
	}
	return b
}

// FuzzDecode: Decode never panics; a decodable stream followed by anything decodes
// to its own records first; and a byte prefix of any input yields a prefix of that
// input's records.
func FuzzDecode(f *testing.F) {
	valid, _ := threeBatches()
	g := sampleGroup()
	rich := Batch([]KV{
		kv(OffsetCommitRecord("g", "orders", 2, Commit{Offset: 1, LeaderEpoch: 2, Metadata: "m", CommitTime: t0})),
		kv(OffsetCommitRecord("g", "orders", 3, Commit{Offset: 1, CommitTime: t0, ExpireTime: t1})),
		kv(GroupMetadataRecord("g", g)),
		kv(GroupTombstone("g")),
		{[]byte{0, 3, 0, 0}, []byte{1}},
	}, t0)
	control := withAttributes(at(9, Batch([]KV{{[]byte{0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 5}}}, t0)), controlBit)
	long := strings.Repeat("z", MaxStringLen)
	maximal := at(math.MaxInt64-10, Batch([]KV{
		kv(OffsetCommitRecord("g", "t", math.MaxInt32, Commit{Offset: math.MaxInt64, LeaderEpoch: math.MaxInt32, Metadata: long})),
	}, t0))
	hugeLen := bytes.Clone(rich)
	binary.BigEndian.PutUint32(hugeLen[lengthOffset:], math.MaxInt32)
	hugeCount := bytes.Clone(rich)
	binary.BigEndian.PutUint32(hugeCount[batchHeaderLen-4:], math.MaxInt32)
	hugeMembers := Batch([]KV{kv(GroupMetadataRecord("g", kmsg.GroupMetadataValue{}))}, t0)
	binary.BigEndian.PutUint32(hugeMembers[len(hugeMembers)-5:], math.MaxInt32) // members count; 1 header byte follows

	for _, seed := range [][]byte{
		nil, valid, rich, control, maximal, hugeLen, fixCRCs(hugeCount), fixCRCs(hugeMembers),
		valid[:len(valid)-1], valid[:logOverhead], valid[:batchHeaderLen+3],
		append(bytes.Clone(rich), control...), bytes.Repeat([]byte{0xff}, batchHeaderLen+8),
	} {
		f.Add(seed, false, uint16(len(seed)/2))
		f.Add(seed, true, uint16(len(seed)/3))
	}

	validRecs, validNext, err := decodeAll(valid)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, fix bool, cut uint16) {
		if fix {
			data = fixCRCs(data)
		}
		full, _, fullErr := decodeAll(data)

		prefix, _, _ := decodeAll(data[:min(int(cut), len(data))])
		if len(prefix) > len(full) || (len(prefix) > 0 && !reflect.DeepEqual(prefix, full[:len(prefix)])) {
			t.Fatalf("prefix of %d bytes gave %d records, not a prefix of the full %d (err %v)", cut, len(prefix), len(full), fullErr)
		}

		_, fullNext, _ := decodeAll(data)
		after, next, err := decodeAll(append(bytes.Clone(valid), data...))
		if !reflect.DeepEqual(after, append(slices.Clone(validRecs), full...)) {
			t.Fatalf("valid stream followed by %d bytes: %d records, want %d + %d", len(data), len(after), len(validRecs), len(full))
		}
		if (err == nil) != (fullErr == nil) || (fullNext != 0 && next != fullNext) || (fullNext == 0 && next != validNext && next != 0) {
			t.Fatalf("valid stream followed by %d bytes: next %d err %v; alone next %d err %v", len(data), next, err, fullNext, fullErr)
		}
	})
}
