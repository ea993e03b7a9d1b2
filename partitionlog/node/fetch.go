package node

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/routing"
)

// fetch reads each partition from its fetch offset and long-polls: while fewer than
// MinBytes are available it waits for the next append, up to MaxWaitMillis. A partition
// error answers at once, as in Kafka. Fetch sessions end at the proxy, so the node
// always answers full, sessionless fetches.
func (s *Server) fetch(ctx context.Context, req *kmsg.FetchRequest) kmsg.Response {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		appended := s.appended.wait() // taken before reading so no append slips between
		resp, size, failed := s.readFetch(req)
		wait := time.Until(deadline)
		if size >= int(req.MinBytes) || failed || wait <= 0 {
			return resp
		}
		timer := time.NewTimer(wait)
		select {
		case <-appended:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		if ctx.Err() != nil {
			return resp
		}
	}
}

// readFetch reads every requested partition once, keeping to the request's MaxBytes
// (beyond the first batch, which is always returned whole so consumers progress, KIP-74).
func (s *Server) readFetch(req *kmsg.FetchRequest) (resp *kmsg.FetchResponse, size int, failed bool) {
	resp = req.ResponseKind().(*kmsg.FetchResponse)
	snap := s.view.Snapshot()
	budget := req.MaxBytes
	if req.Version < 3 || budget <= 0 {
		budget = 1<<31 - 1
	}
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := s.readPartition(snap, rt.Topic, rp, min(rp.PartitionMaxBytes, budget), size == 0)
			n := len(sp.RecordBatches)
			size += n
			budget -= int32(n)
			failed = failed || sp.ErrorCode != 0
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, size, failed
}

func (s *Server) readPartition(snap *routing.Snapshot, topic string, rp kmsg.FetchRequestTopicPartition, maxBytes int32, first bool) kmsg.FetchResponseTopicPartition {
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
	sp.RecordBatches = []byte{} // never null: librdkafka rejects a null record set
	r, p, err := s.lookup(snap, topic, rp.Partition)
	if err == nil {
		err = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch)
	}
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return sp
	}
	if maxBytes <= 0 && !first {
		maxBytes = 0 // budget spent: report offsets, send no records
	}
	highWatermark := r.log.EndOffset() // one replica: everything written is committed
	sp.HighWatermark, sp.LastStableOffset = highWatermark, highWatermark
	sp.LogStartOffset = r.log.StartOffset()
	if maxBytes <= 0 {
		return sp
	}
	res, err := r.log.Read(rp.FetchOffset, highWatermark, maxBytes)
	if err != nil {
		sp.ErrorCode = errorCode(err)
		return sp
	}
	sp.RecordBatches = res.Records
	sp.LogStartOffset = res.LogStartOffset
	return sp
}
