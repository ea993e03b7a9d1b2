package proxy

// Fetch, versions 4 to 18.
//
// v13+ name topics by id (KIP-516); the proxy resolves ids and forwards by name at v12.
// Long polls (MaxWaitMillis, MinBytes) are honoured by the nodes.
//
// Differences from Kafka:
//   - Fetch sessions (KIP-227) end here, and the proxy does not create them: it answers
//     SessionID 0, which tells clients to keep sending full fetch requests. A request
//     naming a session it never created gets FETCH_SESSION_ID_NOT_FOUND, after which
//     clients start over.
//   - When a request spans several nodes, the proxy first asks them all without
//     waiting; only if none has data does it long-poll them all, answering as soon as
//     one has data (the others' partitions are answered from the first pass). A
//     long poll's answer that arrives after that is dropped: fetches read nothing
//     away, so the client simply asks again.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/routing"
)

func (p *Proxy) fetch(ctx context.Context, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.SessionID != 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	byID := req.Version >= 13
	snap := p.view.Snapshot()
	slots := make(map[topicPartition]*kmsg.FetchResponseTopicPartition)
	perNode := make(map[int32]kmsg.Request)
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		name, err := topicName(snap, rt.Topic, rt.TopicID, byID)
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			r, rerr := route{}, err
			if rerr == nil {
				r, rerr = routeTo(snap, name, rp.Partition)
			}
			if rerr != nil {
				sp.ErrorCode = partitionErrorCode(rerr)
				continue
			}
			slots[topicPartition{name, rp.Partition}] = sp
			addFetchPartition(perNode, r.node, req, name, rp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(req.MaxWaitMillis)*time.Millisecond+30*time.Second)
	defer cancel()
	for node, a := range p.fetchNodes(ctx, snap, req, perNode) {
		mergeFetch(slots, perNode[node].(*kmsg.FetchRequest), a)
	}
	for _, sp := range slots {
		p.noteStale(sp.ErrorCode)
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if sp := &resp.Topics[i].Partitions[j]; sp.RecordBatches == nil {
				// Encoded as null otherwise; librdkafka rejects a null record set.
				sp.RecordBatches = []byte{}
			}
		}
	}
	return resp, nil
}

// addFetchPartition adds one partition to the request for its leader node.
func addFetchPartition(perNode map[int32]kmsg.Request, node int32, req *kmsg.FetchRequest, topic string, rp kmsg.FetchRequestTopicPartition) {
	sub, ok := perNode[node].(*kmsg.FetchRequest)
	if !ok {
		sub = kmsg.NewPtrFetchRequest()
		sub.Version = 12
		sub.ReplicaID = -1
		sub.MaxWaitMillis, sub.MinBytes, sub.MaxBytes = req.MaxWaitMillis, req.MinBytes, req.MaxBytes
		sub.IsolationLevel = req.IsolationLevel
		sub.SessionEpoch = -1 // sessionless: the node sees full fetches only
		sub.Rack = req.Rack
		perNode[node] = sub
	}
	if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != topic {
		st := kmsg.NewFetchRequestTopic()
		st.Topic = topic
		sub.Topics = append(sub.Topics, st)
	}
	st := &sub.Topics[len(sub.Topics)-1]
	sp := kmsg.NewFetchRequestTopicPartition()
	sp.Partition, sp.FetchOffset, sp.PartitionMaxBytes = rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes
	sp.CurrentLeaderEpoch, sp.LastFetchedEpoch, sp.LogStartOffset = rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset
	st.Partitions = append(st.Partitions, sp)
}

func mergeFetch(slots map[topicPartition]*kmsg.FetchResponseTopicPartition, sent *kmsg.FetchRequest, a nodeAnswer) {
	if a.err != nil {
		for _, t := range sent.Topics {
			for _, part := range t.Partitions {
				slots[topicPartition{t.Topic, part.Partition}].ErrorCode = partitionErrorCode(a.err)
			}
		}
		return
	}
	for _, t := range a.resp.(*kmsg.FetchResponse).Topics {
		for _, part := range t.Partitions {
			if sp, ok := slots[topicPartition{t.Topic, part.Partition}]; ok {
				*sp = part
			}
		}
	}
}

// fetchNodes gets each node's answer to its share of a fetch without letting a quiet
// node hold up data from a busy one.
func (p *Proxy) fetchNodes(ctx context.Context, snap *routing.Snapshot, req *kmsg.FetchRequest, perNode map[int32]kmsg.Request) map[int32]nodeAnswer {
	if len(perNode) <= 1 || req.MaxWaitMillis <= 0 {
		return p.sendAll(ctx, snap, perNode)
	}
	immediate := make(map[int32]kmsg.Request, len(perNode))
	for node, r := range perNode {
		now := *r.(*kmsg.FetchRequest)
		now.MaxWaitMillis, now.MinBytes = 0, 0
		immediate[node] = &now
	}
	answers := p.sendAll(ctx, snap, immediate)
	if fetchedBytes(answers) >= max(int(req.MinBytes), 1) {
		return answers
	}
	results := make(chan nodeResult, len(perNode))
	for node, r := range perNode {
		go func() {
			resp, err := p.send(ctx, snap, node, r)
			results <- nodeResult{node, nodeAnswer{resp, err}}
		}()
	}
	for range perNode {
		select {
		case <-ctx.Done():
			return answers
		case res := <-results:
			if res.err == nil {
				answers[res.node] = res.nodeAnswer
			}
			if fetchedBytes(map[int32]nodeAnswer{res.node: res.nodeAnswer}) > 0 {
				return answers
			}
		}
	}
	return answers
}

type nodeResult struct {
	node int32
	nodeAnswer
}

// fetchedBytes counts the record bytes in fetch answers.
func fetchedBytes(answers map[int32]nodeAnswer) int {
	n := 0
	for _, a := range answers {
		if a.err != nil {
			continue
		}
		for _, t := range a.resp.(*kmsg.FetchResponse).Topics {
			for _, part := range t.Partitions {
				n += len(part.RecordBatches)
			}
		}
	}
	return n
}
