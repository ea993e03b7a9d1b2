package proxy

// DeleteRecords, versions 0 to 2.
//
// Advances each partition's log start offset (the leader node does it); offset -1
// means the high watermark. Segments wholly below the new start are deleted; reads
// below it get OFFSET_OUT_OF_RANGE.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) deleteRecords(ctx context.Context, req *kmsg.DeleteRecordsRequest) (kmsg.Response, error) {
	snap := p.view.Snapshot()
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	slots := make(map[topicPartition]*kmsg.DeleteRecordsResponseTopicPartition)
	perNode := make(map[int32]kmsg.Request)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			r, err := routeTo(snap, rt.Topic, rp.Partition)
			if err != nil {
				sp.ErrorCode = partitionErrorCode(err)
				continue
			}
			slots[topicPartition{rt.Topic, rp.Partition}] = sp
			sub, ok := perNode[r.node].(*kmsg.DeleteRecordsRequest)
			if !ok {
				sub = kmsg.NewPtrDeleteRecordsRequest()
				sub.Version, sub.TimeoutMillis = 2, req.TimeoutMillis
				perNode[r.node] = sub
			}
			if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != rt.Topic {
				t := kmsg.NewDeleteRecordsRequestTopic()
				t.Topic = rt.Topic
				sub.Topics = append(sub.Topics, t)
			}
			last := &sub.Topics[len(sub.Topics)-1]
			last.Partitions = append(last.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond+5*time.Second)
	defer cancel()
	for node, a := range p.sendAll(ctx, snap, perNode) {
		if a.err != nil {
			for _, t := range perNode[node].(*kmsg.DeleteRecordsRequest).Topics {
				for _, part := range t.Partitions {
					slots[topicPartition{t.Topic, part.Partition}].ErrorCode = partitionErrorCode(a.err)
				}
			}
			continue
		}
		for _, t := range a.resp.(*kmsg.DeleteRecordsResponse).Topics {
			for _, part := range t.Partitions {
				if sp, ok := slots[topicPartition{t.Topic, part.Partition}]; ok {
					*sp = part
				}
			}
		}
	}
	return resp, nil
}
