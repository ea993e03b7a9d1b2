package proxy

// OffsetForLeaderEpoch, versions 2 to 4, for consumers (ReplicaID -1).
//
// Consumers ask where a leader epoch ended to detect truncation after a leader change
// (KIP-320); the leader node answers, reached through the forwarding engine
// (engine.go). Versions 0-1 predate CurrentLeaderEpoch and are used only between
// brokers. Authorization: DESCRIBE on each topic.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
)

type epochPart = part[kmsg.OffsetForLeaderEpochRequestTopicPartition, kmsg.OffsetForLeaderEpochResponseTopicPartition]

func (p *Proxy) offsetForLeaderEpoch(ctx context.Context, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	var parts []*epochPart
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetForLeaderEpochResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			parts = append(parts, &epochPart{topic: rt.Topic, index: rp.Partition, in: rp, out: sp})
		}
		resp.Topics = append(resp.Topics, st)
	}
	parts = authorizedParts(ctx, p, epochAdapter{}, acl.Describe, parts)
	forward(ctx, p, epochAdapter{}, parts, requestDeadline(30*time.Second))
	return resp, nil
}

// epochAdapter forwards an OffsetForLeaderEpoch request's partitions (engine.go).
type epochAdapter struct{}

func (epochAdapter) piece() kmsg.Request {
	sub := kmsg.NewPtrOffsetForLeaderEpochRequest()
	sub.Version = 4
	sub.ReplicaID = -1
	return sub
}

func (epochAdapter) add(piece kmsg.Request, pt *epochPart) {
	sub := piece.(*kmsg.OffsetForLeaderEpochRequest)
	if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != pt.topic {
		t := kmsg.NewOffsetForLeaderEpochRequestTopic()
		t.Topic = pt.topic
		sub.Topics = append(sub.Topics, t)
	}
	last := &sub.Topics[len(sub.Topics)-1]
	last.Partitions = append(last.Partitions, pt.in)
}

func (epochAdapter) answers(resp kmsg.Response, each func(string, int32, *kmsg.OffsetForLeaderEpochResponseTopicPartition)) {
	for _, t := range resp.(*kmsg.OffsetForLeaderEpochResponse).Topics {
		for i := range t.Partitions {
			each(t.Topic, t.Partitions[i].Partition, &t.Partitions[i])
		}
	}
}

func (epochAdapter) code(out *kmsg.OffsetForLeaderEpochResponseTopicPartition) int16 {
	return out.ErrorCode
}

func (epochAdapter) fail(out *kmsg.OffsetForLeaderEpochResponseTopicPartition, code int16, _ *string) {
	out.ErrorCode = code
}

func (epochAdapter) resendable(*epochPart) bool { return true } // a read
