package proxy

// DeleteRecords, versions 0 to 2.
//
// Advances each partition's log start offset (the leader node does it, reached through
// the forwarding engine, engine.go); offset -1 means the high watermark. Segments
// wholly below the new start are deleted; reads below it get OFFSET_OUT_OF_RANGE.
// Authorization: DELETE on each topic.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
)

type deleteRecordsPart = part[kmsg.DeleteRecordsRequestTopicPartition, kmsg.DeleteRecordsResponseTopicPartition]

func (p *Proxy) deleteRecords(ctx context.Context, req *kmsg.DeleteRecordsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	var parts []*deleteRecordsPart
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			parts = append(parts, &deleteRecordsPart{topic: rt.Topic, index: rp.Partition, in: rp, out: sp})
		}
		resp.Topics = append(resp.Topics, st)
	}
	parts = authorizedParts(ctx, p, deleteRecordsAdapter{req}, acl.Delete, parts)
	forward(ctx, p, deleteRecordsAdapter{req}, parts, requestDeadline(time.Duration(req.TimeoutMillis)*time.Millisecond))
	return resp, nil
}

// deleteRecordsAdapter forwards a DeleteRecords request's partitions (engine.go).
type deleteRecordsAdapter struct{ req *kmsg.DeleteRecordsRequest }

func (a deleteRecordsAdapter) piece() kmsg.Request {
	sub := kmsg.NewPtrDeleteRecordsRequest()
	sub.Version, sub.TimeoutMillis = 2, a.req.TimeoutMillis
	return sub
}

func (deleteRecordsAdapter) add(piece kmsg.Request, pt *deleteRecordsPart) {
	sub := piece.(*kmsg.DeleteRecordsRequest)
	if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != pt.topic {
		t := kmsg.NewDeleteRecordsRequestTopic()
		t.Topic = pt.topic
		sub.Topics = append(sub.Topics, t)
	}
	last := &sub.Topics[len(sub.Topics)-1]
	last.Partitions = append(last.Partitions, pt.in)
}

func (deleteRecordsAdapter) answers(resp kmsg.Response, each func(string, int32, *kmsg.DeleteRecordsResponseTopicPartition)) {
	for _, t := range resp.(*kmsg.DeleteRecordsResponse).Topics {
		for i := range t.Partitions {
			each(t.Topic, t.Partitions[i].Partition, &t.Partitions[i])
		}
	}
}

func (deleteRecordsAdapter) code(out *kmsg.DeleteRecordsResponseTopicPartition) int16 {
	return out.ErrorCode
}

func (deleteRecordsAdapter) fail(out *kmsg.DeleteRecordsResponseTopicPartition, code int16, _ *string) {
	out.ErrorCode = code
}

// resendable: moving the log start to the same offset twice is moving it once.
func (deleteRecordsAdapter) resendable(*deleteRecordsPart) bool { return true }
