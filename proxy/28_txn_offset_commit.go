package proxy

// TxnOffsetCommit, versions 0 to 4.
//
// Routed to the group's coordinator like OffsetCommit (group_forward.go). The offsets are
// written in the producer's transaction and become the group's committed offsets only when
// the transaction commits (coordinator/txn_offsets.go, KIP-98); v3+ carry the member's
// generation, which fences a consumer that lost its partitions (KIP-447).
// v5+ belong to KIP-890 part 2 (offsets added to the transaction implicitly), which Strait
// does not advertise. PRODUCER_FENCED exists from v3 (KIP-588).
// Authorization: WRITE on the transactional id, READ on the group and on each topic
// (TOPIC_AUTHORIZATION_FAILED for the partitions of a topic refused).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) txnOffsetCommit(ctx context.Context, wr *wire.Request, req *kmsg.TxnOffsetCommitRequest) (kmsg.Response, error) {
	if !p.allowed(ctx, acl.Write, acl.TransactionalID, req.TransactionalID) {
		return p.txnOffsetsFailed(req, kerr.TransactionalIDAuthorizationFailed.Code), nil
	}
	denied := deniedTopicsOf(ctx, p, acl.Read, req.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) string { return t.Topic })
	if len(denied) == 0 {
		return p.commitTxnOffsets(ctx, wr, req)
	}
	// Partitions of topics the principal may not read are refused and the others
	// committed, as in Kafka.
	kept, refused := *req, *req
	kept.Topics, refused.Topics = nil, nil
	for _, t := range req.Topics {
		if denied[t.Topic] {
			refused.Topics = append(refused.Topics, t)
		} else {
			kept.Topics = append(kept.Topics, t)
		}
	}
	resp := p.txnOffsetsFailed(&refused, kerr.TopicAuthorizationFailed.Code).(*kmsg.TxnOffsetCommitResponse)
	if len(kept.Topics) == 0 {
		return resp, nil
	}
	got, err := p.commitTxnOffsets(ctx, wr, &kept)
	if err != nil {
		return nil, err
	}
	committed := got.(*kmsg.TxnOffsetCommitResponse)
	committed.Topics = append(committed.Topics, resp.Topics...)
	return committed, nil
}

// txnOffsetsFailed answers every partition of req with code.
func (p *Proxy) txnOffsetsFailed(req *kmsg.TxnOffsetCommitRequest, code int16) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, part := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = part.Partition, fencedCode(code, req.Version, 3)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (p *Proxy) commitTxnOffsets(ctx context.Context, wr *wire.Request, req *kmsg.TxnOffsetCommitRequest) (kmsg.Response, error) {
	return p.serveGroup(ctx, wr, oneGroup{
		req: req, group: req.Group, op: acl.Read,
		local: func(ctx context.Context, c *coordinator.Coordinator) kmsg.Response {
			resp := c.TxnOffsetCommit(ctx, req)
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					rp := &resp.Topics[i].Partitions[j]
					rp.ErrorCode = fencedCode(rp.ErrorCode, req.Version, 3)
				}
			}
			return resp
		},
		codeOf: func(r kmsg.Response) int16 {
			for _, t := range r.(*kmsg.TxnOffsetCommitResponse).Topics {
				for _, p := range t.Partitions {
					return p.ErrorCode
				}
			}
			return 0
		},
		failed: func(code int16) kmsg.Response { return p.txnOffsetsFailed(req, code) },
	})
}
