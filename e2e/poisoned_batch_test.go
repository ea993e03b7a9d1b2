package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestPoisonedBatchesRefused sends, between good batches, each batch a Kafka broker's log
// validator refuses (the "Hardening" issue's list: a gzip attribute over plain records,
// codec 7, a record count that lies by 2^31, a lastOffsetDelta that lies, scrambled
// records under a valid CRC, a CRC that does not match, a control batch and a
// transactional batch from an ordinary producer, a null key on a compacted topic), as raw
// produce requests through `strait dev`. Each gets Kafka's code (CORRUPT_MESSAGE only for
// the bad CRC, which clients retry; INVALID_RECORD, UNSUPPORTED_COMPRESSION_TYPE and
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED otherwise) and, where records are to blame, their
// indexes in RecordErrors (KIP-467). A franz-go consumer then reads every good record at
// dense offsets, and `strait log verify` finds the stopped node's data clean.
func TestPoisonedBatchesRefused(t *testing.T) {
	const (
		topic     = "poisoned"
		compacted = "poisoned-compacted"
		timeout   = 30 * time.Second
	)
	p := StartDev(t)
	adm := p.Admin(t)
	createTopicWithConfigs(t, adm, topic, 1, nil)
	createTopicWithConfigs(t, adm, compacted, 1, map[string]string{"cleanup.policy": "compact"})
	// Raw requests at Kafka 3.9's versions: Produce v11, topics named, RecordErrors there.
	raw := p.Client(t, kgo.MaxVersions(kversion.V3_9_0()))
	producer := p.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))

	plain := poisonRecords(5)
	tests := []struct {
		name    string
		topic   string
		batch   []byte
		want    *kerr.Error
		records []int32
	}{
		{"gzip attribute over plain records", topic, poisonBatch(plain, 1, 5, nil), kerr.InvalidRecord, nil},
		{"compression codec 7", topic, poisonBatch(plain, 7, 5, nil), kerr.UnsupportedCompressionType, nil},
		{"record count lies by 2^31", topic, poisonBatch(plain, 0, math.MaxInt32, nil), kerr.InvalidRecord, []int32{5}},
		{"lastOffsetDelta lies", topic, poisonBatch(plain, 0, 5, func(b *kmsg.RecordBatch) { b.LastOffsetDelta = 1 << 30 }), kerr.InvalidRecord, nil},
		{"scrambled records under a valid CRC", topic, poisonBody(scramble(encodePoison(plain)), 0, 5, nil), kerr.InvalidRecord, []int32{0}},
		{"CRC mismatch", topic, func() []byte {
			b := poisonBatch(plain, 0, 5, nil)
			b[len(b)-1] ^= 0xff
			return b
		}(), kerr.CorruptMessage, nil},
		{"control batch from a producer", topic, poisonBatch(plain, 0x20, 5, nil), kerr.InvalidRecord, nil},
		{"transactional batch without a transactional id", topic, poisonBatch(plain, 0x10, 5, func(b *kmsg.RecordBatch) {
			b.ProducerID, b.ProducerEpoch, b.FirstSequence = 99, 0, 0
		}), kerr.TransactionalIDAuthorizationFailed, nil},
		{"null keys on a compacted topic", compacted, poisonBatch(withoutKeys(1, 3), 0, 5, nil), kerr.InvalidRecord, []int32{1, 3}},
	}

	goodByTopic := map[string][]string{} // values produced and acknowledged, in order
	produceGood := func(topic string, round int) {
		t.Helper()
		var recs []*kgo.Record
		for i := range 10 {
			v := fmt.Sprintf("%s-good-%d-%d", topic, round, i)
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)})
			goodByTopic[topic] = append(goodByTopic[topic], v)
		}
		produceAll(t, producer, recs, timeout)
	}
	for round, tt := range tests {
		produceGood(tt.topic, round)
		t.Run(tt.name, func(t *testing.T) {
			part := producePoison(t, raw, tt.topic, tt.batch, timeout)
			if got := kerr.ErrorForCode(part.ErrorCode); got != tt.want {
				t.Fatalf("error %v (%s), want %v", got, deref(part.ErrorMessage), tt.want)
			}
			if part.ErrorMessage == nil || *part.ErrorMessage == "" {
				t.Error("no ErrorMessage says what is wrong")
			}
			var blamed []int32
			for _, r := range part.ErrorRecords {
				blamed = append(blamed, r.RelativeOffset)
				if deref(r.ErrorMessage) == "" {
					t.Errorf("RecordErrors entry %d has no message", r.RelativeOffset)
				}
			}
			if !slices.Equal(blamed, tt.records) {
				t.Fatalf("RecordErrors %v, want %v (%s)", blamed, tt.records, deref(part.ErrorMessage))
			}
		})
	}
	produceGood(topic, len(tests))
	produceGood(compacted, len(tests))

	for _, name := range []string{topic, compacted} {
		want := goodByTopic[name]
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		recs, err := readPartition(ctx, p, name, 0, kgo.NewOffset().AtStart(), kgo.NewOffset().AtStart(), int64(len(want)))
		cancel()
		if err != nil {
			t.Fatalf("consume %s: %v", name, err)
		}
		for i, r := range recs {
			if r.Offset != int64(i) || i >= len(want) || string(r.Value) != want[i] {
				t.Fatalf("%s: record %d at offset %d is %q, want %q at %d: a refused batch left a trace", name, i, r.Offset, r.Value, want[min(i, len(want)-1)], i)
			}
		}
	}

	p.Stop()
	out, err := exec.Command(StraitBin(t), "log", "verify", p.DataDir()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 with problems") {
		t.Fatalf("strait log verify %s: %v\n%s", p.DataDir(), err, out)
	}
}

// producePoison sends one raw produce request (acks=all) of batch to partition 0 of topic and
// returns the partition's answer.
func producePoison(t *testing.T, cl *kgo.Client, topic string, batch []byte, timeout time.Duration) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, int32(timeout/time.Millisecond)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce to %s: answer %+v", topic, resp)
	}
	return resp.Topics[0].Partitions[0]
}

// poisonRecords returns n keyed records as a producer encodes them.
func poisonRecords(n int) []kmsg.Record {
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i), Key: fmt.Appendf(nil, "k%d", i), Value: []byte("poison")}
	}
	return recs
}

// withoutKeys is poisonRecords(5) with the records at idx keyless.
func withoutKeys(idx ...int) []kmsg.Record {
	recs := poisonRecords(5)
	for _, i := range idx {
		recs[i].Key = nil
	}
	return recs
}

// poisonBatch encodes recs in a v2 batch with attributes attrs, declaring count records,
// with a CRC that matches: a batch a producer could have sent on purpose.
func poisonBatch(recs []kmsg.Record, attrs int16, count int32, edit func(*kmsg.RecordBatch)) []byte {
	return poisonBody(encodePoison(recs), attrs, count, edit)
}

// encodePoison encodes recs as a producer does, filling in each Length.
func encodePoison(recs []kmsg.Record) []byte {
	var body []byte
	for _, r := range recs {
		r.Length = 0
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	return body
}

// poisonBody wraps encoded records in a batch header with a matching CRC.
func poisonBody(body []byte, attrs int16, count int32, edit func(*kmsg.RecordBatch)) []byte {
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: attrs, LastOffsetDelta: count - 1,
		FirstTimestamp: now, MaxTimestamp: now + 4, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: count, Records: body,
	}
	if edit != nil {
		edit(&rb)
	}
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// scramble changes every byte: records no parser can read.
func scramble(b []byte) []byte {
	out := bytes.Clone(b)
	for i := range out {
		out[i] = out[i]*131 + 7
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
