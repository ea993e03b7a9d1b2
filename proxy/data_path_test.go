package proxy

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
)

// TestProduceConsumeWithKgo: an idempotent acks=all producer and a consumer, both
// franz-go, across 4 partitions: every record comes back equal and in partition order.
func TestProduceConsumeWithKgo(t *testing.T) {
	c := startCluster(t)
	const topic, partitions, perPartition = "kgo-roundtrip", 4, 25
	c.createTopic(t, topic, partitions, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	producer := c.kafkaClient(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var sent []*kgo.Record
	for i := range partitions * perPartition {
		sent = append(sent, &kgo.Record{
			Partition: int32(i % partitions),
			Key:       fmt.Appendf(nil, "key-%d", i),
			Value:     fmt.Appendf(nil, "value-%d", i),
			Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte{byte(i)}}},
		})
	}
	if err := producer.ProduceSync(ctx, sent...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for i, r := range sent {
		if want := int64(i / partitions); r.Offset != want {
			t.Fatalf("record %d acknowledged at %d-%d, want offset %d", i, r.Partition, r.Offset, want)
		}
	}

	consumer := c.kafkaClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := make(map[int32][]*kgo.Record)
	for n := 0; n < len(sent); {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", n, len(sent), err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			n++
		})
	}
	for p := range int32(partitions) {
		recs := got[p]
		if len(recs) != perPartition {
			t.Errorf("partition %d: %d records, want %d", p, len(recs), perPartition)
			continue
		}
		for j, r := range recs {
			want := sent[j*partitions+int(p)]
			if r.Offset != int64(j) || string(r.Key) != string(want.Key) || string(r.Value) != string(want.Value) ||
				len(r.Headers) != 1 || r.Headers[0].Value[0] != want.Headers[0].Value[0] {
				t.Errorf("partition %d offset %d: got %s=%s at %d, want %s=%s", p, j, r.Key, r.Value, r.Offset, want.Key, want.Value)
			}
		}
	}

	// ListOffsets through kadm: earliest 0, latest the record count.
	adm := c.admin(t)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListStartOffsets: %v", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	for p := range int32(partitions) {
		s, _ := starts.Lookup(topic, p)
		e, _ := ends.Lookup(topic, p)
		if s.Err != nil || e.Err != nil || s.Offset != 0 || e.Offset != perPartition {
			t.Errorf("partition %d: start %d (%v), end %d (%v); want 0, %d", p, s.Offset, s.Err, e.Offset, e.Err, perPartition)
		}
	}
}

// TestListOffsetsByTimestamp: ListOffsets with a timestamp answers the first offset whose
// record timestamp is at or after it (KIP-79), -1 past the last record; kadm turns that
// into the end offset.
func TestListOffsetsByTimestamp(t *testing.T) {
	c := startCluster(t)
	cl := dial(t, c.proxyAddr)
	c.createTopic(t, "by-time", 1, nil)
	for _, ts := range []int64{1000, 2000, 3000} { // two records each: ts, ts+1
		sp := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, produceRequest("by-time", -1, map[int32][]byte{0: makeBatch(batchSpec{records: 2, baseTs: ts})})))
		if sp.ErrorCode != 0 {
			t.Fatalf("produce at %d: error %d: %v", ts, sp.ErrorCode, deref(sp.ErrorMessage))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := c.admin(t)
	for _, tc := range []struct {
		milli int64
		want  int64
	}{
		{0, 0}, {1000, 0}, {1001, 1}, {1500, 2}, {2001, 3}, {3001, 5}, {3002, 6}, {9999, 6},
	} {
		listed, err := adm.ListOffsetsAfterMilli(ctx, tc.milli, "by-time")
		if err != nil {
			t.Fatalf("ListOffsetsAfterMilli(%d): %v", tc.milli, err)
		}
		if o, _ := listed.Lookup("by-time", 0); o.Err != nil || o.Offset != tc.want {
			t.Errorf("after %d ms: offset %d (%v), want %d", tc.milli, o.Offset, o.Err, tc.want)
		}
	}
	// Raw: a timestamp past every record gets offset -1 and timestamp -1, as in Kafka.
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 6
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "by-time"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = 9999
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	sp := do[*kmsg.ListOffsetsResponse](t, cl, req).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 || sp.Offset != -1 || sp.Timestamp != -1 {
		t.Errorf("timestamp past the end: error %d offset %d timestamp %d, want 0 -1 -1", sp.ErrorCode, sp.Offset, sp.Timestamp)
	}
}

// TestProduceErrors covers per-partition produce answers at the protocol level.
func TestProduceErrors(t *testing.T) {
	c := startCluster(t)
	cl := dial(t, c.proxyAddr)
	c.createTopic(t, "produce-errors", 1, nil)

	corrupt := makeBatch(batchSpec{records: 3})
	corrupt[len(corrupt)-1] ^= 0xff // last byte of the last record's value: the CRC no longer matches
	truncated := makeBatch(batchSpec{records: 3})
	truncated = truncated[:len(truncated)-4]

	for _, tc := range []struct {
		name      string
		acks      int16
		partition int32
		records   []byte
		wantCode  int16
	}{
		{"acks=2: INVALID_REQUIRED_ACKS", 2, 0, makeBatch(batchSpec{}), kerr.InvalidRequiredAcks.Code},
		{"acks=-2: INVALID_REQUIRED_ACKS", -2, 0, makeBatch(batchSpec{}), kerr.InvalidRequiredAcks.Code},
		{"CRC mismatch: CORRUPT_MESSAGE", -1, 0, corrupt, kerr.CorruptMessage.Code},
		{"truncated batch: CORRUPT_MESSAGE", -1, 0, truncated, kerr.CorruptMessage.Code},
		{"partition past the topic's count: UNKNOWN_TOPIC_OR_PARTITION", 1, 7, makeBatch(batchSpec{}), kerr.UnknownTopicOrPartition.Code},
		{"negative partition: UNKNOWN_TOPIC_OR_PARTITION", 1, -1, makeBatch(batchSpec{}), kerr.UnknownTopicOrPartition.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := endOffset(t, cl, "produce-errors", 0)
			sp := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, produceRequest("produce-errors", tc.acks, map[int32][]byte{tc.partition: tc.records})))
			if sp.Partition != tc.partition || sp.ErrorCode != tc.wantCode {
				t.Fatalf("partition %d: error %d (%v), want %d", sp.Partition, sp.ErrorCode, kerr.ErrorForCode(sp.ErrorCode), tc.wantCode)
			}
			if sp.BaseOffset != -1 {
				t.Errorf("refused batch answered base offset %d, want -1", sp.BaseOffset)
			}
			if after := endOffset(t, cl, "produce-errors", 0); after != before {
				t.Errorf("refused batch moved the end offset from %d to %d", before, after)
			}
		})
	}

	t.Run("unknown topic, auto-create off: UNKNOWN_TOPIC_OR_PARTITION", func(t *testing.T) {
		sp := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, produceRequest("no-such-topic", 1, map[int32][]byte{0: makeBatch(batchSpec{})})))
		if sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("error %d, want %d", sp.ErrorCode, kerr.UnknownTopicOrPartition.Code)
		}
	})
	t.Run("unknown topic id (v13, KIP-516): UNKNOWN_TOPIC_ID", func(t *testing.T) {
		req := produceRequest("", 1, map[int32][]byte{0: makeBatch(batchSpec{})})
		req.Version = 13
		req.Topics[0].TopicID = [16]byte{4, 5, 6}
		sp := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, req))
		if sp.ErrorCode != kerr.UnknownTopicID.Code {
			t.Errorf("error %d, want %d", sp.ErrorCode, kerr.UnknownTopicID.Code)
		}
	})
}

// TestProduceAcksZero: acks=0 gets no answer, and the records are written.
func TestProduceAcksZero(t *testing.T) {
	c := startCluster(t)
	cl := dial(t, c.proxyAddr)
	c.createTopic(t, "acks0", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		resp, err := cl.Do(ctx, produceRequest("acks0", 0, map[int32][]byte{0: makeBatch(batchSpec{records: 2, value: fmt.Sprintf("z%d-", i)})}))
		if err != nil || resp != nil {
			t.Fatalf("acks=0 produce: %v, %v; want no answer", resp, err)
		}
	}
	waitEndOffset(t, dial(t, c.proxyAddr), "acks0", 0, 6)
	sp := onlyFetchPartition(t, do[*kmsg.FetchResponse](t, cl, fetchRequest("acks0", 0, 0, 1, 1000)))
	want := []string{"z0-0", "z0-1", "z1-0", "z1-1", "z2-0", "z2-1"}
	if got := recordValues(t, sp.RecordBatches); !slices.Equal(got, want) {
		t.Errorf("read back %v, want %v (in order)", got, want)
	}
}

// waitEndOffset polls ListOffsets until the partition's end offset reaches want.
func waitEndOffset(t *testing.T, cl *wire.Client, topic string, partition int32, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := endOffset(t, cl, topic, partition)
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("%s-%d end offset %d, want %d", topic, partition, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFetchErrors covers per-partition fetch answers at the protocol level.
func TestFetchErrors(t *testing.T) {
	c := startCluster(t)
	cl := dial(t, c.proxyAddr)
	c.createTopic(t, "fetch-errors", 1, nil)
	sp := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, produceRequest("fetch-errors", -1, map[int32][]byte{0: makeBatch(batchSpec{records: 2})})))
	if sp.ErrorCode != 0 {
		t.Fatalf("produce: error %d", sp.ErrorCode)
	}
	for _, tc := range []struct {
		name      string
		topic     string
		partition int32
		offset    int64
		wantCode  int16
	}{
		{"at the log end: no error, no records", "fetch-errors", 0, 2, 0},
		{"past the log end: OFFSET_OUT_OF_RANGE", "fetch-errors", 0, 3, kerr.OffsetOutOfRange.Code},
		{"negative offset: OFFSET_OUT_OF_RANGE", "fetch-errors", 0, -5, kerr.OffsetOutOfRange.Code},
		{"partition past the topic's count: UNKNOWN_TOPIC_OR_PARTITION", "fetch-errors", 3, 0, kerr.UnknownTopicOrPartition.Code},
		{"unknown topic: UNKNOWN_TOPIC_OR_PARTITION", "nope", 0, 0, kerr.UnknownTopicOrPartition.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := onlyFetchPartition(t, do[*kmsg.FetchResponse](t, cl, fetchRequest(tc.topic, tc.partition, tc.offset, 0, 0)))
			if fp.Partition != tc.partition || fp.ErrorCode != tc.wantCode {
				t.Fatalf("partition %d: error %d (%v), want %d", fp.Partition, fp.ErrorCode, kerr.ErrorForCode(fp.ErrorCode), tc.wantCode)
			}
			if len(fp.RecordBatches) != 0 {
				t.Errorf("%d bytes of records, want none", len(fp.RecordBatches))
			}
			if tc.wantCode == 0 && fp.HighWatermark != 2 {
				t.Errorf("high watermark %d, want 2", fp.HighWatermark)
			}
		})
	}
	t.Run("unknown topic id (v13, KIP-516): UNKNOWN_TOPIC_ID", func(t *testing.T) {
		req := fetchRequest("", 0, 0, 0, 0)
		req.Version = 13
		req.Topics[0].TopicID = [16]byte{7}
		if fp := onlyFetchPartition(t, do[*kmsg.FetchResponse](t, cl, req)); fp.ErrorCode != kerr.UnknownTopicID.Code {
			t.Errorf("error %d, want %d", fp.ErrorCode, kerr.UnknownTopicID.Code)
		}
	})
}

// TestIdempotentProduce: a retried batch (same producer id, epoch and sequence) is
// written once and both answers carry its base offset (KIP-98, invariant 3); a gap in
// sequence numbers gets OUT_OF_ORDER_SEQUENCE_NUMBER.
func TestIdempotentProduce(t *testing.T) {
	c := startCluster(t)
	cl := dial(t, c.proxyAddr)
	c.createTopic(t, "idempotent", 1, nil)
	// Something before, so the duplicate's base offset is not trivially 0.
	if sp := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, produceRequest("idempotent", -1, map[int32][]byte{0: makeBatch(batchSpec{})}))); sp.ErrorCode != 0 {
		t.Fatalf("plain produce: error %d: %s", sp.ErrorCode, deref(sp.ErrorMessage))
	}

	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	init.TransactionTimeoutMillis = -1
	ip := do[*kmsg.InitProducerIDResponse](t, cl, init)
	if ip.ErrorCode != 0 || ip.ProducerID < 0 || ip.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId: error %d, id %d, epoch %d", ip.ErrorCode, ip.ProducerID, ip.ProducerEpoch)
	}
	batch := makeBatch(batchSpec{records: 3, idempotent: true, producerID: ip.ProducerID, epoch: ip.ProducerEpoch, seq: 0})
	first := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, produceRequest("idempotent", -1, map[int32][]byte{0: batch})))
	retry := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, produceRequest("idempotent", -1, map[int32][]byte{0: batch})))
	if first.ErrorCode != 0 || retry.ErrorCode != 0 {
		t.Fatalf("errors %d and %d, want none", first.ErrorCode, retry.ErrorCode)
	}
	if first.BaseOffset != 1 || retry.BaseOffset != first.BaseOffset {
		t.Errorf("base offsets %d then %d, want 1 both times", first.BaseOffset, retry.BaseOffset)
	}
	if end := endOffset(t, cl, "idempotent", 0); end != 4 {
		t.Errorf("end offset %d after a retried 3-record batch, want 4 (written once)", end)
	}

	gap := makeBatch(batchSpec{idempotent: true, producerID: ip.ProducerID, epoch: ip.ProducerEpoch, seq: 5})
	if sp := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, produceRequest("idempotent", -1, map[int32][]byte{0: gap}))); sp.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Errorf("sequence 5 after 0..2: error %d, want %d", sp.ErrorCode, kerr.OutOfOrderSequenceNumber.Code)
	}
	next := makeBatch(batchSpec{idempotent: true, producerID: ip.ProducerID, epoch: ip.ProducerEpoch, seq: 3})
	if sp := onlyProducePartition(t, do[*kmsg.ProduceResponse](t, cl, produceRequest("idempotent", -1, map[int32][]byte{0: next}))); sp.ErrorCode != 0 || sp.BaseOffset != 4 {
		t.Errorf("sequence 3 after 0..2: error %d at %d, want written at 4", sp.ErrorCode, sp.BaseOffset)
	}
}

// TestInitProducerIDTransactional: a transactional id gets a producer id at epoch 0 from
// its coordinator, and the next InitProducerId bumps the epoch, fencing the first (KIP-98).
func TestInitProducerIDTransactional(t *testing.T) {
	c := startCluster(t)
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.TransactionalID = kmsg.StringPtr("tx")
	req.TransactionTimeoutMillis = 60_000
	var resp *kmsg.InitProducerIDResponse
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp = do[*kmsg.InitProducerIDResponse](t, dial(t, c.proxyAddr), req)
		if resp.ErrorCode != kerr.CoordinatorLoadInProgress.Code || time.Now().After(deadline) {
			break
		}
	}
	if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 {
		t.Fatalf("transactional InitProducerId: error %d, id %d, epoch %d", resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch)
	}
	again := do[*kmsg.InitProducerIDResponse](t, dial(t, c.proxyAddr), req)
	if again.ErrorCode != 0 || again.ProducerID != resp.ProducerID || again.ProducerEpoch != 1 {
		t.Fatalf("second InitProducerId: error %d, id %d, epoch %d; want %d at epoch 1", again.ErrorCode, again.ProducerID, again.ProducerEpoch, resp.ProducerID)
	}
}
