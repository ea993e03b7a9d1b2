package partitionlog_test

import (
	"fmt"
	"hash/crc32"
	"log"
	"os"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/partitionlog"
)

// Example opens a partition directory, appends a producer's batch and fetches it back.
func Example() {
	dir, err := os.MkdirTemp("", "partition-0")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	l, err := partitionlog.Open(dir, partitionlog.Config{}, partitionlog.Hooks{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	res, err := l.Append(oneRecordBatch("hello"), 0, partitionlog.AppendOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended at", res.BaseOffset, "end", l.EndOffset())

	read, err := l.Read(0, l.EndOffset(), 1<<20)
	if err != nil {
		log.Fatal(err)
	}
	var b kmsg.RecordBatch
	if err := b.ReadFrom(read.Records); err != nil {
		log.Fatal(err)
	}
	var r kmsg.Record
	if err := r.ReadFrom(b.Records); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read offset %d: %s\n", b.FirstOffset+int64(r.OffsetDelta), r.Value)
	// Output:
	// appended at 0 end 1
	// read offset 0: hello
}

// oneRecordBatch builds what a producer sends: a v2 batch with its CRC-32C.
func oneRecordBatch(value string) []byte {
	rec := kmsg.Record{Value: []byte(value)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	b := kmsg.RecordBatch{Magic: 2, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: rec.AppendTo(nil)}
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	raw := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}
