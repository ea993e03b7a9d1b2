package offsets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	t0 = time.UnixMilli(1_700_000_000_123).UTC()
	t1 = t0.Add(time.Hour)
)

type got struct {
	Offset int64
	R      Record
}

func decodeAll(b []byte) ([]got, int64, error) {
	var out []got
	next, err := Decode(b, func(o int64, r Record) { out = append(out, got{o, r}) })
	return out, next, err
}

// at sets a batch's base offset, as the partition leader does on append.
func at(base int64, b []byte) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint64(b, uint64(base))
	return b
}

// withAttributes rewrites a batch's attributes and fixes its CRC.
func withAttributes(b []byte, attrs int16) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint16(b[attributesOffset:], uint16(attrs))
	binary.BigEndian.PutUint32(b[crcOffset:], crc32.Checksum(b[attributesOffset:], castagnoli))
	return b
}

func kv(k, v []byte) KV { return KV{k, v} }

func sampleGroup() kmsg.GroupMetadataValue {
	proto, leader, inst := "range", "m-1", "static-1"
	return kmsg.GroupMetadataValue{
		ProtocolType:          "consumer",
		Generation:            7,
		Protocol:              &proto,
		Leader:                &leader,
		CurrentStateTimestamp: t0.UnixMilli(),
		Members: []kmsg.GroupMetadataValueMember{
			{MemberID: "m-1", InstanceID: &inst, ClientID: "c", ClientHost: "/10.0.0.1",
				RebalanceTimeoutMillis: 60000, SessionTimeoutMillis: 45000,
				Subscription: []byte{0, 1, 2}, Assignment: []byte{3, 4}},
			{MemberID: "m-2", ClientID: "c", ClientHost: "/10.0.0.2",
				RebalanceTimeoutMillis: 60000, SessionTimeoutMillis: 45000,
				Subscription: []byte{5}, Assignment: []byte{6}},
		},
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	c := Commit{Offset: 42, LeaderEpoch: 3, Metadata: "meta", CommitTime: t0}
	cExp := Commit{Offset: 43, LeaderEpoch: 9, Metadata: "", CommitTime: t0, ExpireTime: t1}
	g := sampleGroup()
	b := Batch([]KV{
		kv(OffsetCommitRecord("g", "orders", 2, c)),
		kv(OffsetCommitRecord("g", "orders", 3, cExp)),
		kv(OffsetTombstone("g", "orders", 4)),
		kv(GroupMetadataRecord("g", g)),
		kv(GroupTombstone("g2")),
	}, t1)

	recs, next, err := decodeAll(at(100, b))
	if err != nil {
		t.Fatal(err)
	}
	wantG := g
	wantG.Version = 3
	cExpWant := cExp
	cExpWant.LeaderEpoch = -1 // value v1 has no leader epoch
	want := []got{
		{100, Record{Group: "g", Topic: "orders", Partition: 2, Commit: &c, IsOffset: true}},
		{101, Record{Group: "g", Topic: "orders", Partition: 3, Commit: &cExpWant, IsOffset: true}},
		{102, Record{Group: "g", Topic: "orders", Partition: 4, IsOffset: true}},
		{103, Record{Group: "g", Metadata: &wantG, IsGroup: true}},
		{104, Record{Group: "g2", IsGroup: true}},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", recs, want)
	}
	if next != 105 {
		t.Fatalf("next = %d, want 105", next)
	}
}

func TestBatchHeader(t *testing.T) {
	b := Batch([]KV{kv(GroupTombstone("g")), kv(GroupTombstone("h"))}, t0)
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if rb.FirstOffset != 0 || rb.Magic != 2 || rb.Attributes != 0 || rb.ProducerID != -1 ||
		rb.ProducerEpoch != -1 || rb.FirstSequence != -1 || rb.PartitionLeaderEpoch != -1 ||
		rb.LastOffsetDelta != 1 || rb.NumRecords != 2 ||
		rb.FirstTimestamp != t0.UnixMilli() || rb.MaxTimestamp != t0.UnixMilli() ||
		int(rb.Length) != len(b)-logOverhead {
		t.Fatalf("header %+v", rb)
	}
	if uint32(rb.CRC) != crc32.Checksum(b[attributesOffset:], castagnoli) {
		t.Fatal("bad crc")
	}
}

// TestRecordBytes pins the encoding to Kafka's schemas, written out by hand.
func TestRecordBytes(t *testing.T) {
	key, value := OffsetCommitRecord("g", "t", 2, Commit{Offset: 5, LeaderEpoch: 1, Metadata: "m", CommitTime: time.UnixMilli(258)})
	wantKey := []byte{0, 1, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 2}
	wantValue := []byte{0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 1, 'm', 0, 0, 0, 0, 0, 0, 1, 2}
	if !bytes.Equal(key, wantKey) || !bytes.Equal(value, wantValue) {
		t.Fatalf("offset commit\nkey   %x want %x\nvalue %x want %x", key, wantKey, value, wantValue)
	}
	_, value = OffsetCommitRecord("g", "t", 2, Commit{Offset: 5, CommitTime: time.UnixMilli(1), ExpireTime: time.UnixMilli(2)})
	wantValue = []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}
	if !bytes.Equal(value, wantValue) {
		t.Fatalf("offset commit v1 value %x want %x", value, wantValue)
	}
	key, value = GroupTombstone("gr")
	if !bytes.Equal(key, []byte{0, 2, 0, 2, 'g', 'r'}) || value != nil {
		t.Fatalf("group tombstone %x %x", key, value)
	}
	key, value = OffsetTombstone("g", "t", 2)
	if !bytes.Equal(key, wantKey) || value != nil {
		t.Fatalf("offset tombstone %x %x", key, value)
	}
}

// TestDecodeOlderKafkaVersions reads what older Kafka brokers wrote: key v0 and
// offset values v0 to v2.
func TestDecodeOlderKafkaVersions(t *testing.T) {
	k := kmsg.OffsetCommitKey{Version: 0, Group: "g", Topic: "t", Partition: 1}
	var kvs []KV
	for ver := int16(0); ver <= 2; ver++ {
		v := kmsg.OffsetCommitValue{Version: ver, Offset: int64(ver), LeaderEpoch: 99, Metadata: "x",
			CommitTimestamp: t0.UnixMilli(), ExpireTimestamp: t1.UnixMilli()}
		kvs = append(kvs, KV{k.AppendTo(nil), v.AppendTo(nil)})
	}
	recs, _, err := decodeAll(Batch(kvs, t0))
	if err != nil {
		t.Fatal(err)
	}
	want := []Commit{
		{Offset: 0, LeaderEpoch: -1, Metadata: "x", CommitTime: t0},
		{Offset: 1, LeaderEpoch: -1, Metadata: "x", CommitTime: t0, ExpireTime: t1},
		{Offset: 2, LeaderEpoch: -1, Metadata: "x", CommitTime: t0},
	}
	for i, w := range want {
		if !reflect.DeepEqual(*recs[i].R.Commit, w) {
			t.Errorf("value v%d: %+v, want %+v", i, *recs[i].R.Commit, w)
		}
	}
}

func threeBatches() ([]byte, [][]got) {
	c := func(o int64) Commit { return Commit{Offset: o, LeaderEpoch: 1, CommitTime: t0} }
	c1, c2, c3, c4 := c(1), c(2), c(3), c(4)
	b1 := at(0, Batch([]KV{kv(OffsetCommitRecord("g", "t", 0, c1)), kv(OffsetCommitRecord("g", "t", 1, c2))}, t0))
	b2 := at(2, Batch([]KV{kv(OffsetTombstone("g", "t", 0))}, t0))
	b3 := at(3, Batch([]KV{kv(OffsetCommitRecord("g", "t", 0, c3)), kv(OffsetCommitRecord("h", "u", 9, c4))}, t0))
	all := append(append(bytes.Clone(b1), b2...), b3...)
	per := [][]got{
		{{0, Record{Group: "g", Topic: "t", Partition: 0, Commit: &c1, IsOffset: true}},
			{1, Record{Group: "g", Topic: "t", Partition: 1, Commit: &c2, IsOffset: true}}},
		{{2, Record{Group: "g", Topic: "t", Partition: 0, IsOffset: true}}},
		{{3, Record{Group: "g", Topic: "t", Partition: 0, Commit: &c3, IsOffset: true}},
			{4, Record{Group: "h", Topic: "u", Partition: 9, Commit: &c4, IsOffset: true}}},
	}
	return all, per
}

func TestDecodeTruncatedTail(t *testing.T) {
	all, per := threeBatches()
	ends := []int{0}
	for len(ends) <= len(per) {
		last := ends[len(ends)-1]
		ends = append(ends, last+logOverhead+int(binary.BigEndian.Uint32(all[last+lengthOffset:])))
	}
	nexts := []int64{0, 2, 3, 5}
	for cut := 0; cut <= len(all); cut++ {
		complete := 0
		for complete < len(per) && ends[complete+1] <= cut {
			complete++
		}
		var want []got
		for _, p := range per[:complete] {
			want = append(want, p...)
		}
		recs, next, err := decodeAll(all[:cut])
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if !reflect.DeepEqual(recs, want) || next != nexts[complete] {
			t.Fatalf("cut %d: %d records, next %d; want %d records, next %d", cut, len(recs), next, len(want), nexts[complete])
		}
	}
}

func TestDecodeCorruption(t *testing.T) {
	all, per := threeBatches()
	second := logOverhead + int(binary.BigEndian.Uint32(all[lengthOffset:]))
	secondLen := logOverhead + int(binary.BigEndian.Uint32(all[second+lengthOffset:]))
	// Every bit the CRC covers, and the magic byte.
	positions := []int{second + magicOffset}
	for i := second + attributesOffset; i < second+secondLen; i++ {
		positions = append(positions, i)
	}
	for _, pos := range positions {
		for bit := range 8 {
			b := bytes.Clone(all)
			b[pos] ^= 1 << bit
			recs, next, err := decodeAll(b)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip byte %d bit %d: err %v, want ErrCorrupt", pos, bit, err)
			}
			if !reflect.DeepEqual(recs, per[0]) || next != 2 {
				t.Fatalf("flip byte %d bit %d: %d records, next %d; want the first batch, next 2", pos, bit, len(recs), next)
			}
		}
	}
	// The CRC field itself.
	b := bytes.Clone(all)
	b[second+crcOffset] ^= 0x80
	if _, _, err := decodeAll(b); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset 2") {
		t.Fatalf("crc flip: %v", err)
	}
}

func TestDecodeCompressedIsAnError(t *testing.T) {
	b := withAttributes(at(77, Batch([]KV{kv(GroupTombstone("g"))}, t0)), 4) // zstd
	_, next, err := decodeAll(b)
	if !errors.Is(err, ErrCompressed) || !strings.Contains(err.Error(), "offset 77") || next != 0 {
		t.Fatalf("next %d, err %v", next, err)
	}
}

func TestDecodeSkipsControlBatches(t *testing.T) {
	// A commit marker: key version 0 and type 1, value version 0 and coordinator epoch.
	marker := withAttributes(at(0, Batch([]KV{{[]byte{0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 5}}}, t0)), controlBit|0x10)
	data := append(marker, at(1, Batch([]KV{kv(GroupTombstone("g"))}, t0))...)
	recs, next, err := decodeAll(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := []got{{1, Record{Group: "g", IsGroup: true}}}; !reflect.DeepEqual(recs, want) || next != 2 {
		t.Fatalf("%+v next %d", recs, next)
	}
	// A control batch alone still moves next.
	if _, next, err := decodeAll(marker); err != nil || next != 1 {
		t.Fatalf("next %d err %v", next, err)
	}
}

func TestDecodeSkipsUnknownKeyVersions(t *testing.T) {
	// Key version 3 is Kafka's ConsumerGroupMetadataKey (KIP-848); any value goes.
	unknown := KV{[]byte{0, 3, 0, 1, 'g'}, []byte{0, 0, 1, 2, 3}}
	unknownTomb := KV{[]byte{0x7f, 0x7f}, nil}
	b := at(10, Batch([]KV{unknown, kv(GroupTombstone("g")), unknownTomb}, t0))
	recs, next, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []got{{11, Record{Group: "g", IsGroup: true}}}; !reflect.DeepEqual(recs, want) || next != 13 {
		t.Fatalf("%+v next %d", recs, next)
	}
}

func TestDecodeBadRecords(t *testing.T) {
	gkey, _ := GroupTombstone("g")
	okey, _ := OffsetTombstone("g", "t", 0)
	bad := map[string]KV{
		"null key":                     {nil, []byte{0}},
		"one-byte key":                 {[]byte{0}, nil},
		"short offset key":             {[]byte{0, 1, 0, 5, 'g'}, nil},
		"unknown offset value version": {okey, []byte{0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		"short offset value":           {okey, []byte{0, 3, 0}},
		"empty group value":            {gkey, []byte{}},
		"unknown group value version":  {gkey, []byte{0xff, 0xff}},
	}
	for name, r := range bad {
		b := append(at(0, Batch([]KV{kv(GroupTombstone("ok"))}, t0)), at(1, Batch([]KV{kv(GroupTombstone("x")), r}, t0))...)
		recs, next, err := decodeAll(b)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset 2") {
			t.Errorf("%s: err %v", name, err)
		}
		// Nothing of the bad batch reaches fn.
		if len(recs) != 1 || next != 1 {
			t.Errorf("%s: %d records, next %d", name, len(recs), next)
		}
	}
	// Magic other than 2.
	b := Batch([]KV{kv(GroupTombstone("g"))}, t0)
	b[magicOffset] = 1
	if _, _, err := decodeAll(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("magic 1: %v", err)
	}
	// A length below the header size, with the header there to read.
	b = Batch([]KV{kv(GroupTombstone("g"))}, t0)
	binary.BigEndian.PutUint32(b[lengthOffset:], 10)
	if _, _, err := decodeAll(b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short length: %v", err)
	}
}

// TestDecodeDoesNotAlias: a Record stays intact when the fetch buffer is reused.
func TestDecodeDoesNotAlias(t *testing.T) {
	b := Batch([]KV{kv(GroupMetadataRecord("g", sampleGroup()))}, t0)
	recs, _, err := decodeAll(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if m := recs[0].R.Metadata.Members[0]; !bytes.Equal(m.Subscription, []byte{0, 1, 2}) || !bytes.Equal(m.Assignment, []byte{3, 4}) {
		t.Fatalf("member aliased the buffer: %+v", m)
	}
}

func TestEncodersPanicOnOverlongStrings(t *testing.T) {
	long := strings.Repeat("x", MaxStringLen+1)
	for name, f := range map[string]func(){
		"metadata": func() { OffsetCommitRecord("g", "t", 0, Commit{Metadata: long}) },
		"group":    func() { GroupTombstone(long) },
		"member": func() {
			GroupMetadataRecord("g", kmsg.GroupMetadataValue{Members: []kmsg.GroupMetadataValueMember{{ClientHost: long}}})
		},
		"empty": func() { Batch(nil, t0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
	// MaxStringLen itself fits and round-trips.
	ok := strings.Repeat("y", MaxStringLen)
	recs, _, err := decodeAll(Batch([]KV{kv(OffsetCommitRecord("g", "t", 0, Commit{Metadata: ok, CommitTime: t0}))}, t0))
	if err != nil || recs[0].R.Commit.Metadata != ok {
		t.Fatalf("max metadata: %v", err)
	}
}

func TestDecodeFlexibleValues(t *testing.T) {
	okey, _ := OffsetTombstone("g", "t", 0)
	gkey, _ := GroupTombstone("g")
	v4 := kmsg.OffsetCommitValue{Version: 4, Offset: 9, LeaderEpoch: 2, Metadata: "m", CommitTimestamp: t0.UnixMilli(), TopicID: [16]byte{1}}
	recs, _, err := decodeAll(Batch([]KV{{okey, v4.AppendTo(nil)}}, t0))
	if err != nil {
		t.Fatal(err)
	}
	if c := *recs[0].R.Commit; c != (Commit{Offset: 9, LeaderEpoch: 2, Metadata: "m", CommitTime: t0}) {
		t.Fatalf("v4: %+v", c)
	}

	// A tag count of 2^32-1 with nothing behind it: kmsg alone would loop 2^32 times.
	hang := append((&kmsg.OffsetCommitValue{Version: 4, Metadata: "m"}).AppendTo(nil)[:2+8+4+2+8], 0xff, 0xff, 0xff, 0xff, 0x0f)
	start := time.Now()
	if _, _, err := decodeAll(Batch([]KV{{okey, hang}}, t0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("huge tag count: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("huge tag count took %v", d)
	}

	g4 := sampleGroup()
	g4.Version = 4
	if _, _, err := decodeAll(Batch([]KV{{gkey, g4.AppendTo(nil)}}, t0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("group value v4: %v", err)
	}
}
