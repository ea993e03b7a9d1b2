// Command conns opens many Kafka connections to one broker and reports how much memory
// the broker's process holds for each: idle ones (ApiVersions and Metadata, then
// nothing) or busy ones (each producing 1 KiB batches in a loop). It reads the broker's
// resident memory from /proc, so it must run on the broker's machine. See
// bench/proxy_cost.sh.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9092", "the broker")
	n := flag.Int("conns", 1000, "connections to open")
	busy := flag.Bool("busy", false, "each connection produces in a loop, instead of sitting idle")
	hold := flag.Duration("hold", 5*time.Second, "how long to keep the connections")
	pid := flag.Int("rss-pid", 0, "the broker's process id, whose memory to report per connection")
	topic := flag.String("topic", "conns", "topic the busy connections produce to (auto-created)")
	flag.Parse()

	before := rssKiB(*pid)
	var stop atomic.Bool
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, *n)
	for i := range *n {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			log.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
		call(rw, kmsg.NewPtrApiVersionsRequest(), 0)
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(4)
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = topic
		md.Topics, md.AllowAutoTopicCreation = []kmsg.MetadataRequestTopic{t}, true
		call(rw, md, 1)
		if *busy {
			wg.Go(func() {
				batch := oneBatch(1024)
				for id := int32(2); !stop.Load(); id++ {
					p := kmsg.NewPtrProduceRequest()
					p.SetVersion(7)
					p.Acks, p.TimeoutMillis = 1, 5000
					rt := kmsg.NewProduceRequestTopic()
					rt.Topic = *topic
					rp := kmsg.NewProduceRequestTopicPartition()
					rp.Records = batch
					rt.Partitions = []kmsg.ProduceRequestTopicPartition{rp}
					p.Topics = []kmsg.ProduceRequestTopic{rt}
					call(rw, p, id)
				}
			})
		}
	}
	// The most the broker held while the connections were open: Go returns memory to the
	// system lazily, so a single reading could land after a collection.
	during := 0
	for end := time.Now().Add(*hold); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		during = max(during, rssKiB(*pid))
	}
	stop.Store(true)
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	if *pid > 0 {
		fmt.Printf("%.1f\n", float64(during-before)/float64(*n))
	}
}

var format = kmsg.NewRequestFormatter(kmsg.FormatterClientID("conns"))

// call writes req and reads (and discards) its answer.
func call(rw *bufio.ReadWriter, req kmsg.Request, id int32) {
	if _, err := rw.Write(format.AppendRequest(nil, req, id)); err != nil || rw.Flush() != nil {
		log.Fatalf("write: %v", err)
	}
	var size [4]byte
	if _, err := io.ReadFull(rw, size[:]); err != nil {
		log.Fatalf("read: %v", err)
	}
	if _, err := rw.Discard(int(binary.BigEndian.Uint32(size[:]))); err != nil {
		log.Fatalf("read: %v", err)
	}
}

// oneBatch is a v2 batch of one record of size bytes.
func oneBatch(size int) []byte {
	r := kmsg.Record{Value: make([]byte, size)}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{Magic: 2, FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, NumRecords: 1, Records: r.AppendTo(nil), PartitionLeaderEpoch: -1}
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	b.CRC = int32(crc32.Checksum(b.AppendTo(nil)[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// rssKiB is a process's resident memory, 0 without a process.
func rssKiB(pid int) int {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		log.Fatalf("read the broker's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
