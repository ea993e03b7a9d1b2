package proxy

// AddOffsetsToTxn, versions 0 to 4.
//
// Adds the group's __consumer_offsets partition (abs(hash(group)) % partitions) to the
// producer's transaction, so that the transaction's COMMIT or ABORT marker reaches the
// group coordinator, which holds the TxnOffsetCommit offsets until then (KIP-98, KIP-447).
// PRODUCER_FENCED exists from v2 (KIP-588); older versions get INVALID_PRODUCER_EPOCH.
// Authorization: WRITE on the transactional id, READ on the group.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) addOffsetsToTxn(ctx context.Context, wr *wire.Request, req *kmsg.AddOffsetsToTxnRequest) (kmsg.Response, error) {
	answer := func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		resp.ErrorCode = fencedCode(code, req.Version, 2)
		return resp
	}
	groups, err := p.coord()
	if err != nil {
		return nil, err
	}
	if req.Group == "" {
		return answer(kerr.InvalidGroupID.Code), nil
	}
	switch {
	case !p.allowed(ctx, acl.Write, acl.TransactionalID, req.TransactionalID):
		return answer(kerr.TransactionalIDAuthorizationFailed.Code), nil
	case !p.allowed(ctx, acl.Read, acl.Group, req.Group):
		return answer(kerr.GroupAuthorizationFailed.Code), nil
	}
	return p.serveTxn(ctx, wr, oneTxn{
		req: req, id: req.TransactionalID,
		local: func(ctx context.Context, t *coordinator.Transactions) kmsg.Response {
			return answer(t.AddOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, groups.Partitions()).Code)
		},
		codeOf: func(r kmsg.Response) int16 { return r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode },
		failed: answer,
	})
}
