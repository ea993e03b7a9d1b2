package proxy

// Produce, versions 3 to 13.
//
// v3 is the first version with v2 record batches, the only format Strait stores.
// v13 names topics by id (KIP-516); the proxy resolves ids and forwards by name.
// Record batches pass through as bytes: the proxy never decodes records.
//
// Partitions go to their leader nodes through the forwarding engine (engine.go): a
// leader that moves or dies while the request is in flight is found again on a fresh
// routing view within the request's TimeoutMillis. A batch whose node may have received
// it before the connection broke is sent again only if it is idempotent (its producer
// id and sequence let the node recognize a duplicate); other such batches are answered
// REQUEST_TIMED_OUT, which producers retry as Kafka's would.
//
// Authorization: WRITE on each topic (TOPIC_AUTHORIZATION_FAILED per partition) and,
// for a transactional producer, WRITE on its transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED for every partition), as Kafka checks.
//
// Differences from Kafka: acks=0 is forwarded to the node as acks=1 and its answer
// dropped, so two acks=0 requests on one connection cannot be appended out of order
// while the proxy's connection to the node is shared and answers out of order.

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
)

type producePart = part[kmsg.ProduceRequestTopicPartition, kmsg.ProduceResponseTopicPartition]

func (p *Proxy) produce(ctx context.Context, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	byID := req.Version >= 13
	snap := p.view.Snapshot()
	if p.cfg.AutoCreateTopics && !byID {
		snap = p.autoCreate(ctx, snap, produceTopicNames(req))
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var parts []*producePart
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		name, err := topicName(snap, rt.Topic, rt.TopicID, byID)
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			if err != nil {
				sp.ErrorCode = partitionErrorCode(err)
				continue
			}
			parts = append(parts, &producePart{topic: name, index: rp.Partition, in: rp, out: sp})
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.TransactionID != nil && !p.allowed(ctx, acl.Write, acl.TransactionalID, *req.TransactionID) {
		for _, pt := range parts {
			pt.out.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		}
		parts = nil
	}
	parts = authorizedParts(ctx, p, produceAdapter{req}, acl.Write, parts)
	forward(ctx, p, produceAdapter{req}, parts, requestDeadline(time.Duration(req.TimeoutMillis)*time.Millisecond))
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

// produceAdapter forwards a Produce request's partitions (engine.go).
type produceAdapter struct{ req *kmsg.ProduceRequest }

func (a produceAdapter) piece() kmsg.Request {
	sub := kmsg.NewPtrProduceRequest()
	sub.Version = 12
	sub.TransactionID = a.req.TransactionID
	sub.Acks = a.req.Acks
	if sub.Acks == 0 {
		sub.Acks = 1
	}
	sub.TimeoutMillis = a.req.TimeoutMillis
	return sub
}

func (produceAdapter) add(piece kmsg.Request, pt *producePart) {
	sub := piece.(*kmsg.ProduceRequest)
	if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != pt.topic {
		st := kmsg.NewProduceRequestTopic()
		st.Topic = pt.topic
		sub.Topics = append(sub.Topics, st)
	}
	st := &sub.Topics[len(sub.Topics)-1]
	sp := kmsg.NewProduceRequestTopicPartition()
	sp.Partition, sp.Records = pt.index, pt.in.Records
	st.Partitions = append(st.Partitions, sp)
}

func (produceAdapter) answers(resp kmsg.Response, each func(string, int32, *kmsg.ProduceResponseTopicPartition)) {
	for _, t := range resp.(*kmsg.ProduceResponse).Topics {
		for i := range t.Partitions {
			each(t.Topic, t.Partitions[i].Partition, &t.Partitions[i])
		}
	}
}

func (produceAdapter) code(out *kmsg.ProduceResponseTopicPartition) int16 { return out.ErrorCode }

func (produceAdapter) fail(out *kmsg.ProduceResponseTopicPartition, code int16, msg *string) {
	out.ErrorCode, out.ErrorMessage = code, msg
}

// resendable: a batch may be appended twice only if the node can tell the second from
// the first, which the producer id and sequence of an idempotent batch let it do.
func (produceAdapter) resendable(pt *producePart) bool { return idempotentBatches(pt.in.Records) }

// idempotentBatches reports whether every v2 batch in records carries a producer id,
// read from the batch header without decoding records (offset 43: after base offset,
// length, partition leader epoch, magic, CRC, attributes, last offset delta and the two
// timestamps).
func idempotentBatches(records []byte) bool {
	const producerIDAt, lengthAt = 43, 8
	if len(records) == 0 {
		return false
	}
	for len(records) > 0 {
		if len(records) < producerIDAt+8 {
			return false
		}
		if int64(binary.BigEndian.Uint64(records[producerIDAt:])) < 0 {
			return false
		}
		size := 12 + int(int32(binary.BigEndian.Uint32(records[lengthAt:])))
		if size <= 12 || size > len(records) {
			return false
		}
		records = records[size:]
	}
	return true
}

type topicPartition struct {
	topic     string
	partition int32
}

func produceTopicNames(req *kmsg.ProduceRequest) []string {
	names := make([]string, len(req.Topics))
	for i, t := range req.Topics {
		names[i] = t.Topic
	}
	return names
}
