package proxy

// Fetch, versions 4 to 18.
//
// v13+ name topics by id (KIP-516); the proxy resolves ids and forwards by name at v12.
// Long polls (MaxWaitMillis, MinBytes) are honoured by the nodes. Partitions go to their
// leaders through the forwarding engine (engine.go): one whose leader moved is fetched
// from the new leader within the request's time, rather than answered
// NOT_LEADER_OR_FOLLOWER.
//
// A client that names its rack (client.rack, v11+) has each partition read, when its
// leader is in another rack, from an in-sync replica in the client's rack if there is
// one (KIP-392): the proxy chooses the replica itself, from its routing view, instead of
// answering PreferredReadReplica, since clients know only proxies. A partition that
// replica cannot serve (an error, or OFFSET_OUT_OF_RANGE from a follower behind the
// client) is read from the leader within the same request.
//
// Authorization: READ on each topic (TOPIC_AUTHORIZATION_FAILED per partition, with
// no records).
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

	"github.com/strait-io/strait/internal/acl"

	"github.com/strait-io/strait/routing"
)

type fetchPart = part[kmsg.FetchRequestTopicPartition, kmsg.FetchResponseTopicPartition]

func (p *Proxy) fetch(ctx context.Context, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.SessionID != 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	byID := req.Version >= 13
	snap := p.view.Snapshot()
	var parts []*fetchPart
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
			if err != nil {
				sp.ErrorCode = partitionErrorCode(err)
				continue
			}
			parts = append(parts, &fetchPart{topic: name, index: rp.Partition, in: rp, out: sp})
		}
		resp.Topics = append(resp.Topics, st)
	}
	parts = authorizedParts(ctx, p, fetchAdapter{req}, acl.Read, parts)
	// A fetch that found its leader moved may spend a few rounds finding the new one.
	forward(ctx, p, fetchAdapter{req}, parts, requestDeadline(time.Duration(req.MaxWaitMillis)*time.Millisecond+10*time.Second))
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			sp := &resp.Topics[i].Partitions[j]
			if sp.RecordBatches == nil {
				// Encoded as null otherwise; librdkafka rejects a null record set.
				sp.RecordBatches = []byte{}
			}
			sp.PreferredReadReplica = -1 // a node id means nothing to clients of proxies

		}
	}
	return resp, nil
}

// fetchAdapter forwards a Fetch request's partitions (engine.go).
type fetchAdapter struct{ req *kmsg.FetchRequest }

func (a fetchAdapter) piece() kmsg.Request {
	sub := kmsg.NewPtrFetchRequest()
	sub.Version = 12
	sub.ReplicaID = -1
	sub.MaxWaitMillis, sub.MinBytes, sub.MaxBytes = a.req.MaxWaitMillis, a.req.MinBytes, a.req.MaxBytes
	sub.IsolationLevel = a.req.IsolationLevel
	sub.SessionEpoch = -1 // sessionless: the node sees full fetches only
	// No Rack: the proxy picks the replica (prefer), and a leader told the client's rack
	// would answer a preferred replica instead of records.
	return sub
}

// prefer reads a partition, on the first round, from an in-sync replica in the client's
// rack when its leader is elsewhere (KIP-392).
func (a fetchAdapter) prefer(_ *Proxy, snap *routing.Snapshot, pt *fetchPart) (target, bool) {
	if a.req.Rack == "" {
		return target{}, false
	}
	p, ok := snap.Partition(pt.topic, pt.index)
	if !ok {
		return target{}, false
	}
	n, ok := snap.ReadReplicaInRack(p, a.req.Rack)
	return target{id: n.ID, addr: n.Addr}, ok
}

func (fetchAdapter) add(piece kmsg.Request, pt *fetchPart) {
	sub := piece.(*kmsg.FetchRequest)
	if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != pt.topic {
		st := kmsg.NewFetchRequestTopic()
		st.Topic = pt.topic
		sub.Topics = append(sub.Topics, st)
	}
	st := &sub.Topics[len(sub.Topics)-1]
	rp := pt.in
	sp := kmsg.NewFetchRequestTopicPartition()
	sp.Partition, sp.FetchOffset, sp.PartitionMaxBytes = rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes
	sp.CurrentLeaderEpoch, sp.LastFetchedEpoch, sp.LogStartOffset = rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset
	st.Partitions = append(st.Partitions, sp)
}

func (fetchAdapter) answers(resp kmsg.Response, each func(string, int32, *kmsg.FetchResponseTopicPartition)) {
	for _, t := range resp.(*kmsg.FetchResponse).Topics {
		for i := range t.Partitions {
			each(t.Topic, t.Partitions[i].Partition, &t.Partitions[i])
		}
	}
}

func (fetchAdapter) code(out *kmsg.FetchResponseTopicPartition) int16 { return out.ErrorCode }

func (fetchAdapter) fail(out *kmsg.FetchResponseTopicPartition, code int16, _ *string) {
	out.ErrorCode = code
}

// resendable: a fetch reads nothing away.
func (fetchAdapter) resendable(*fetchPart) bool { return true }

// sendRound gets each node's answer to its share of a fetch without letting a quiet
// node hold up data from a busy one: with several nodes it first asks them all without
// waiting, and only if none has data or an error long-polls them all, answering as soon
// as one has some. A retry round asks without waiting: the client's own next fetch
// long-polls.
func (a fetchAdapter) sendRound(ctx context.Context, p *Proxy, round int, pieces []*piece) []*piece {
	if round > 0 {
		for _, pc := range pieces {
			sub := pc.req.(*kmsg.FetchRequest)
			sub.MaxWaitMillis, sub.MinBytes = 0, 0
		}
	}
	if len(pieces) <= 1 || round > 0 || a.req.MaxWaitMillis <= 0 {
		return p.sendPieces(ctx, nil, round, pieces)
	}
	immediate := make([]*piece, len(pieces))
	for i, pc := range pieces {
		now := *pc.req.(*kmsg.FetchRequest)
		now.MaxWaitMillis, now.MinBytes = 0, 0
		immediate[i] = &piece{to: pc.to, req: &now, parts: pc.parts, round: round}
	}
	p.sendPieces(ctx, nil, round, immediate)
	if fetchedBytes(immediate) >= max(int(a.req.MinBytes), 1) || anyFailed(immediate) {
		return immediate // an error answers at once, as in Kafka, and may be retried elsewhere
	}
	done := make(chan int, len(pieces))
	for i, pc := range pieces {
		go func() {
			p.sendPiece(ctx, nil, pc)
			done <- i
		}()
	}
	answers := immediate
	for range pieces {
		select {
		case <-ctx.Done():
			return answers
		case i := <-done:
			if pieces[i].err == nil {
				answers[i] = pieces[i]
			}
			if fetchedBytes(pieces[i:i+1]) > 0 {
				return answers
			}
		}
	}
	return answers
}

// anyFailed reports whether a sent fetch piece failed, or answered an error for a
// partition.
func anyFailed(pieces []*piece) bool {
	for _, pc := range pieces {
		if pc.err != nil {
			return true
		}
		resp, ok := pc.resp.(*kmsg.FetchResponse)
		if !ok {
			continue
		}
		for _, t := range resp.Topics {
			for _, part := range t.Partitions {
				if part.ErrorCode != 0 {
					return true
				}
			}
		}
	}
	return false
}

// fetchedBytes counts the record bytes in sent fetch pieces.
func fetchedBytes(pieces []*piece) int {
	n := 0
	for _, pc := range pieces {
		if pc.err != nil || pc.resp == nil {
			continue
		}
		for _, t := range pc.resp.(*kmsg.FetchResponse).Topics {
			for _, part := range t.Partitions {
				n += len(part.RecordBatches)
			}
		}
	}
	return n
}
