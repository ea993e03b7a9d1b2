package proxy

// ListOffsets, versions 1 to 6.
//
// Timestamps -1 (latest), -2 (earliest) and real timestamps are answered by the leader
// node, reached through the forwarding engine (engine.go). Versions 7+ add the special
// timestamps -3 (max timestamp) and -4/-5 (tiered storage), which Strait's logs do not
// track yet, so they are not advertised. Authorization: DESCRIBE on each topic.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
)

type listOffsetsPart = part[kmsg.ListOffsetsRequestTopicPartition, kmsg.ListOffsetsResponseTopicPartition]

func (p *Proxy) listOffsets(ctx context.Context, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	var parts []*listOffsetsPart
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			parts = append(parts, &listOffsetsPart{topic: rt.Topic, index: rp.Partition, in: rp, out: sp})
		}
		resp.Topics = append(resp.Topics, st)
	}
	parts = authorizedParts(ctx, p, listOffsetsAdapter{req}, acl.Describe, parts)
	forward(ctx, p, listOffsetsAdapter{req}, parts, requestDeadline(30*time.Second))
	return resp, nil
}

// listOffsetsAdapter forwards a ListOffsets request's partitions (engine.go).
type listOffsetsAdapter struct{ req *kmsg.ListOffsetsRequest }

func (a listOffsetsAdapter) piece() kmsg.Request {
	sub := kmsg.NewPtrListOffsetsRequest()
	sub.Version = 6
	sub.ReplicaID = -1
	sub.IsolationLevel = a.req.IsolationLevel
	return sub
}

func (listOffsetsAdapter) add(piece kmsg.Request, pt *listOffsetsPart) {
	sub := piece.(*kmsg.ListOffsetsRequest)
	if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != pt.topic {
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = pt.topic
		sub.Topics = append(sub.Topics, t)
	}
	last := &sub.Topics[len(sub.Topics)-1]
	last.Partitions = append(last.Partitions, pt.in)
}

func (listOffsetsAdapter) answers(resp kmsg.Response, each func(string, int32, *kmsg.ListOffsetsResponseTopicPartition)) {
	for _, t := range resp.(*kmsg.ListOffsetsResponse).Topics {
		for i := range t.Partitions {
			each(t.Topic, t.Partitions[i].Partition, &t.Partitions[i])
		}
	}
}

func (listOffsetsAdapter) code(out *kmsg.ListOffsetsResponseTopicPartition) int16 {
	return out.ErrorCode
}

func (listOffsetsAdapter) fail(out *kmsg.ListOffsetsResponseTopicPartition, code int16, _ *string) {
	out.ErrorCode = code
}

func (listOffsetsAdapter) resendable(*listOffsetsPart) bool { return true } // a read
