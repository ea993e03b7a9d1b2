package proxy

// TxnOffsetCommit, versions 0 to 4.
//
// Routed to the group's coordinator like OffsetCommit (group_forward.go). The offsets are
// written in the producer's transaction and become the group's committed offsets only when
// the transaction commits (coordinator/txn_offsets.go, KIP-98); v3+ carry the member's
// generation, which fences a consumer that lost its partitions (KIP-447).
// v5+ belong to KIP-890 part 2 (offsets added to the transaction implicitly), which Strait
// does not advertise. PRODUCER_FENCED exists from v3 (KIP-588).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) txnOffsetCommit(ctx context.Context, wr *wire.Request, req *kmsg.TxnOffsetCommitRequest) (kmsg.Response, error) {
	failed := func(code int16) kmsg.Response {
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
	return p.serveGroup(ctx, wr, oneGroup{
		req: req, group: req.Group,
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
		failed: failed,
	})
}
