package proxy

// DescribeProducers, version 0 (KIP-664).
//
// What each partition's leader knows of the producers writing to it: epoch, last sequence
// and timestamp, coordinator epoch, and where an open transaction started. Partitions go
// to their leaders through the forwarding engine (engine.go). Authorization: READ on
// each topic.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
)

type describeProducersPart = part[int32, kmsg.DescribeProducersResponseTopicPartition]

func (p *Proxy) describeProducers(ctx context.Context, req *kmsg.DescribeProducersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	var parts []*describeProducersPart
	for _, t := range req.Topics {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.DescribeProducersResponseTopicPartition, len(t.Partitions))
		for i, index := range t.Partitions {
			rp := &rt.Partitions[i]
			*rp = kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = index
			parts = append(parts, &describeProducersPart{topic: t.Topic, index: index, in: index, out: rp})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	parts = authorizedParts(ctx, p, describeProducersAdapter{}, acl.Read, parts)
	forward(ctx, p, describeProducersAdapter{}, parts, requestDeadline(30*time.Second))
	return resp, nil
}

// describeProducersAdapter forwards DescribeProducers' partitions (engine.go).
type describeProducersAdapter struct{}

func (describeProducersAdapter) piece() kmsg.Request { return kmsg.NewPtrDescribeProducersRequest() }

func (describeProducersAdapter) add(piece kmsg.Request, pt *describeProducersPart) {
	sub := piece.(*kmsg.DescribeProducersRequest)
	if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != pt.topic {
		t := kmsg.NewDescribeProducersRequestTopic()
		t.Topic = pt.topic
		sub.Topics = append(sub.Topics, t)
	}
	last := &sub.Topics[len(sub.Topics)-1]
	last.Partitions = append(last.Partitions, pt.index)
}

func (describeProducersAdapter) answers(resp kmsg.Response, each func(string, int32, *kmsg.DescribeProducersResponseTopicPartition)) {
	for _, t := range resp.(*kmsg.DescribeProducersResponse).Topics {
		for i := range t.Partitions {
			each(t.Topic, t.Partitions[i].Partition, &t.Partitions[i])
		}
	}
}

func (describeProducersAdapter) code(out *kmsg.DescribeProducersResponseTopicPartition) int16 {
	return out.ErrorCode
}

func (describeProducersAdapter) fail(out *kmsg.DescribeProducersResponseTopicPartition, code int16, msg *string) {
	out.ErrorCode, out.ErrorMessage = code, msg
}

func (describeProducersAdapter) resendable(*describeProducersPart) bool { return true } // a read
