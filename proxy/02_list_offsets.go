package proxy

// ListOffsets, versions 1 to 6.
//
// Timestamps -1 (latest), -2 (earliest) and real timestamps are answered by the leader
// node. Versions 7+ add the special timestamps -3 (max timestamp) and -4/-5 (tiered
// storage), which Strait's logs do not track yet, so they are not advertised.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) listOffsets(ctx context.Context, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	snap := p.view.Snapshot()
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	slots := make(map[topicPartition]*kmsg.ListOffsetsResponseTopicPartition)
	perNode := make(map[int32]kmsg.Request)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			r, err := routeTo(snap, rt.Topic, rp.Partition)
			if err != nil {
				sp.ErrorCode = partitionErrorCode(err)
				continue
			}
			slots[topicPartition{rt.Topic, rp.Partition}] = sp
			sub, ok := perNode[r.node].(*kmsg.ListOffsetsRequest)
			if !ok {
				sub = kmsg.NewPtrListOffsetsRequest()
				sub.Version = 6
				sub.ReplicaID = -1
				sub.IsolationLevel = req.IsolationLevel
				perNode[r.node] = sub
			}
			if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != rt.Topic {
				t := kmsg.NewListOffsetsRequestTopic()
				t.Topic = rt.Topic
				sub.Topics = append(sub.Topics, t)
			}
			last := &sub.Topics[len(sub.Topics)-1]
			last.Partitions = append(last.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for node, a := range p.sendAll(ctx, snap, perNode) {
		if a.err != nil {
			for _, t := range perNode[node].(*kmsg.ListOffsetsRequest).Topics {
				for _, part := range t.Partitions {
					slots[topicPartition{t.Topic, part.Partition}].ErrorCode = partitionErrorCode(a.err)
				}
			}
			continue
		}
		for _, t := range a.resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, part := range t.Partitions {
				if sp, ok := slots[topicPartition{t.Topic, part.Partition}]; ok {
					*sp = part
				}
			}
		}
	}
	return resp, nil
}
