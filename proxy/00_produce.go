package proxy

// Produce, versions 3 to 13.
//
// v3 is the first version with v2 record batches, the only format Strait stores.
// v13 names topics by id (KIP-516); the proxy resolves ids and forwards by name.
// Record batches pass through as bytes: the proxy never decodes records.
//
// Differences from Kafka: acks=0 is forwarded to the node as acks=1 and its answer
// dropped, so two acks=0 requests on one connection cannot be appended out of order
// while the proxy's connection to the node is shared and answers out of order.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) produce(ctx context.Context, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	byID := req.Version >= 13
	snap := p.view.Snapshot()
	if p.cfg.AutoCreateTopics && !byID {
		snap = p.autoCreate(ctx, snap, produceTopicNames(req))
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	slots := make(map[topicPartition]*kmsg.ProduceResponseTopicPartition)
	perNode := make(map[int32]kmsg.Request)
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
			r, rerr := route{}, err
			if rerr == nil {
				r, rerr = routeTo(snap, name, rp.Partition)
			}
			if rerr != nil {
				sp.ErrorCode = partitionErrorCode(rerr)
				continue
			}
			slots[topicPartition{name, rp.Partition}] = sp
			addProducePartition(perNode, r.node, req, name, rp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond+5*time.Second)
	defer cancel()
	for node, a := range p.sendAll(ctx, snap, perNode) {
		mergeProduce(slots, perNode[node].(*kmsg.ProduceRequest), a)
	}
	for _, sp := range slots {
		p.noteStale(sp.ErrorCode)
	}
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

type topicPartition struct {
	topic     string
	partition int32
}

// addProducePartition adds one partition's batches to the request for its leader node.
func addProducePartition(perNode map[int32]kmsg.Request, node int32, req *kmsg.ProduceRequest, topic string, rp kmsg.ProduceRequestTopicPartition) {
	sub, ok := perNode[node].(*kmsg.ProduceRequest)
	if !ok {
		sub = kmsg.NewPtrProduceRequest()
		sub.Version = 12
		sub.TransactionID = req.TransactionID
		sub.Acks = req.Acks
		if sub.Acks == 0 {
			sub.Acks = 1
		}
		sub.TimeoutMillis = req.TimeoutMillis
		perNode[node] = sub
	}
	if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != topic {
		st := kmsg.NewProduceRequestTopic()
		st.Topic = topic
		sub.Topics = append(sub.Topics, st)
	}
	st := &sub.Topics[len(sub.Topics)-1]
	sp := kmsg.NewProduceRequestTopicPartition()
	sp.Partition, sp.Records = rp.Partition, rp.Records
	st.Partitions = append(st.Partitions, sp)
}

// mergeProduce copies a node's per-partition answers into the client's response, or
// marks every partition sent to that node as failed.
func mergeProduce(slots map[topicPartition]*kmsg.ProduceResponseTopicPartition, sent *kmsg.ProduceRequest, a nodeAnswer) {
	if a.err != nil {
		for _, t := range sent.Topics {
			for _, part := range t.Partitions {
				sp := slots[topicPartition{t.Topic, part.Partition}]
				sp.ErrorCode, sp.ErrorMessage = partitionErrorCode(a.err), errorMessage(a.err)
			}
		}
		return
	}
	for _, t := range a.resp.(*kmsg.ProduceResponse).Topics {
		for _, part := range t.Partitions {
			if sp, ok := slots[topicPartition{t.Topic, part.Partition}]; ok {
				sp.ErrorCode, sp.ErrorMessage = part.ErrorCode, part.ErrorMessage
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = part.BaseOffset, part.LogAppendTime, part.LogStartOffset
				sp.ErrorRecords = part.ErrorRecords
			}
		}
	}
}

func produceTopicNames(req *kmsg.ProduceRequest) []string {
	names := make([]string, len(req.Topics))
	for i, t := range req.Topics {
		names[i] = t.Topic
	}
	return names
}
