package proxy

// OffsetForLeaderEpoch, versions 2 to 4, for consumers (ReplicaID -1).
//
// Consumers ask where a leader epoch ended to detect truncation after a leader change
// (KIP-320); the leader node answers. Versions 0-1 predate CurrentLeaderEpoch and are
// used only between brokers.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) offsetForLeaderEpoch(ctx context.Context, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
	snap := p.view.Snapshot()
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	slots := make(map[topicPartition]*kmsg.OffsetForLeaderEpochResponseTopicPartition)
	perNode := make(map[int32]kmsg.Request)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			r, err := routeTo(snap, rt.Topic, rp.Partition)
			if err != nil {
				sp.ErrorCode = partitionErrorCode(err)
				continue
			}
			slots[topicPartition{rt.Topic, rp.Partition}] = sp
			sub, ok := perNode[r.node].(*kmsg.OffsetForLeaderEpochRequest)
			if !ok {
				sub = kmsg.NewPtrOffsetForLeaderEpochRequest()
				sub.Version = 4
				sub.ReplicaID = -1
				perNode[r.node] = sub
			}
			if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != rt.Topic {
				t := kmsg.NewOffsetForLeaderEpochRequestTopic()
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
			for _, t := range perNode[node].(*kmsg.OffsetForLeaderEpochRequest).Topics {
				for _, part := range t.Partitions {
					slots[topicPartition{t.Topic, part.Partition}].ErrorCode = partitionErrorCode(a.err)
				}
			}
			continue
		}
		for _, t := range a.resp.(*kmsg.OffsetForLeaderEpochResponse).Topics {
			for _, part := range t.Partitions {
				if sp, ok := slots[topicPartition{t.Topic, part.Partition}]; ok {
					*sp = part
				}
			}
		}
	}
	return resp, nil
}
