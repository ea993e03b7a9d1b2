package node

import (
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
)

// txnBatch is a transactional batch of n records by producer pid at epoch, sequence seq.
func txnBatch(pid int64, epoch int16, seq int32, n int) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("txn")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: 0x10, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq,
		NumRecords: int32(n), Records: recs,
	}
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	b.CRC = int32(crc32.Checksum(b.AppendTo(nil)[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

func fetchIsolated(t *testing.T, cl *wire.Client, topic string, isolation int8) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxBytes, req.SessionEpoch, req.IsolationLevel = 12, -1, 1<<20, -1, isolation
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = 1<<20, -1, -1
	req.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{rp}}}
	return do[*kmsg.FetchResponse](t, cl, req).Topics[0].Partitions[0]
}

// TestTransactionsOnANode follows KIP-98 through a node: a transactional produce needs the
// request's transactional id, read_committed fetches and ListOffsets stop at the LSO while
// the transaction is open, and after an ABORT marker (WriteTxnMarkers, acks=all) the
// fetch returns the records with the aborted transaction for the consumer to drop.
func TestTransactionsOnANode(t *testing.T) {
	h := newNodeHarness(t)
	h.createTopic(t, "tx", 1, 0)
	h.reconcile(t, h.srv)
	cl := dial(t, h.addr)
	produce(t, cl, "tx", 2) // offsets 0-1, plain

	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 12, -1, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "tx", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: txnBatch(9, 0, 0, 3)}}}}
	if got := do[*kmsg.ProduceResponse](t, cl, req).Topics[0].Partitions[0]; got.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional batch without a transactional id: code %d", got.ErrorCode)
	}
	req.TransactionID = kmsg.StringPtr("app-1")
	if got := do[*kmsg.ProduceResponse](t, cl, req).Topics[0].Partitions[0]; got.ErrorCode != 0 || got.BaseOffset != 2 {
		t.Fatalf("transactional produce: %+v", got)
	}
	committed := fetchIsolated(t, cl, "tx", 1)
	if committed.LastStableOffset != 2 || committed.HighWatermark != 5 {
		t.Fatalf("read_committed while open: LSO %d HW %d, want 2 and 5", committed.LastStableOffset, committed.HighWatermark)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version, lo.IsolationLevel = 6, 1
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	lo.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "tx", Partitions: []kmsg.ListOffsetsRequestTopicPartition{rp}}}
	if got := do[*kmsg.ListOffsetsResponse](t, cl, lo).Topics[0].Partitions[0]; got.Offset != 2 {
		t.Fatalf("ListOffsets latest, read_committed: %d, want the LSO 2", got.Offset)
	}

	markers := kmsg.NewPtrWriteTxnMarkersRequest()
	markers.Version = 1
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = 9, 0, false
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "tx", Partitions: []int32{0}}}
	markers.Markers = []kmsg.WriteTxnMarkersRequestMarker{m}
	if got := do[*kmsg.WriteTxnMarkersResponse](t, cl, markers).Markers[0].Topics[0].Partitions[0]; got.ErrorCode != 0 {
		t.Fatalf("WriteTxnMarkers: code %d", got.ErrorCode)
	}
	committed = fetchIsolated(t, cl, "tx", 1)
	if committed.LastStableOffset != 6 || len(committed.AbortedTransactions) != 1 ||
		committed.AbortedTransactions[0].ProducerID != 9 || committed.AbortedTransactions[0].FirstOffset != 2 {
		t.Fatalf("read_committed after the abort: LSO %d, aborted %+v", committed.LastStableOffset, committed.AbortedTransactions)
	}
	if uncommitted := fetchIsolated(t, cl, "tx", 0); uncommitted.AbortedTransactions != nil && len(uncommitted.AbortedTransactions) > 0 {
		t.Fatalf("read_uncommitted gets no aborted list: %+v", uncommitted.AbortedTransactions)
	}

	dp := kmsg.NewPtrDescribeProducersRequest()
	dp.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "tx", Partitions: []int32{0}}}
	got := do[*kmsg.DescribeProducersResponse](t, cl, dp).Topics[0].Partitions[0]
	if len(got.ActiveProducers) != 1 || got.ActiveProducers[0].ProducerID != 9 || got.ActiveProducers[0].CurrentTxnStartOffset != -1 {
		t.Fatalf("DescribeProducers: %+v", got)
	}
}
