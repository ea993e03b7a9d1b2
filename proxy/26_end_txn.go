package proxy

// EndTxn, versions 0 to 5.
//
// Commits or aborts the producer's transaction at its coordinator (transactions.go): the
// Prepare state is written and the producer answered, then the markers are written to
// every partition of the transaction (27_write_txn_markers.go). v5+ is KIP-890 part 2:
// the epoch is bumped at every end and the answer carries the new one. Strait does not
// advertise the transaction.version feature, so clients use part 1 (they add partitions
// explicitly) and ask for v5 only if told otherwise.
// PRODUCER_FENCED exists from v2 (KIP-588); older versions get INVALID_PRODUCER_EPOCH.
// Authorization: WRITE on the transactional id.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) endTxn(ctx context.Context, wr *wire.Request, req *kmsg.EndTxnRequest) (kmsg.Response, error) {
	answer := func(code int16, pid int64, epoch int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = fencedCode(code, req.Version, 2), pid, epoch
		return resp
	}
	return p.serveTxn(ctx, wr, oneTxn{
		req: req, id: req.TransactionalID, op: acl.Write,
		local: func(ctx context.Context, t *coordinator.Transactions) kmsg.Response {
			r := t.EndTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, req.Version >= 5)
			return answer(r.Code, r.ProducerID, r.Epoch)
		},
		codeOf: func(r kmsg.Response) int16 { return r.(*kmsg.EndTxnResponse).ErrorCode },
		failed: func(code int16) kmsg.Response { return answer(code, -1, -1) },
	})
}
