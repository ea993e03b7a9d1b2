package main

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/partitionlog"
)

// TestLogVerify runs `strait log verify` over a data directory holding one partition:
// clean, then with a byte flipped in its segment, which must fail naming the file and the
// byte position.
func TestLogVerify(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "node-1", "orders-0")
	l, err := partitionlog.Open(dir, partitionlog.Config{}, partitionlog.Hooks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.Append(oneRecordBatch("hello"), 0, partitionlog.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	var out, progress bytes.Buffer
	if err := runLogVerify([]string{data}, &out, &progress); err != nil {
		t.Fatalf("clean log: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ok   "+dir+": 1 segments, 3 batches, 3 records, offsets [0, 3)") {
		t.Fatalf("clean log: output %q", out.String())
	}

	seg := filepath.Join(dir, "00000000000000000000.log")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	second := len(b) / 3
	b[second+70] ^= 1 // inside the second batch's records
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = runLogVerify([]string{dir}, &out, &progress)
	if err == nil || !strings.Contains(out.String(), "FAIL "+dir) || !strings.Contains(out.String(), seg+" at byte "+strconv.Itoa(second)) {
		t.Fatalf("flipped byte: %v\n%s", err, out.String())
	}
}

// oneRecordBatch is a producer's batch of one keyed record.
func oneRecordBatch(value string) []byte {
	r := kmsg.Record{Key: []byte("k"), Value: []byte(value)}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	rb := kmsg.RecordBatch{Magic: 2, PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: 1, Records: r.AppendTo(nil)}
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}
