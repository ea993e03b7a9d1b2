package proxy

// InitProducerId, versions 0 to 5.
//
// Idempotent producers (no transactional id) get a fresh producer id at epoch 0, as
// Kafka gives them: a producer re-initialising with its old id and epoch (KIP-360)
// also gets a fresh id. Ids come from blocks reserved in the routing Store, so any
// proxy answers without asking anyone per call and no id is ever handed out twice.
//
// Authorization: an idempotent producer needs IDEMPOTENT_WRITE on the cluster or
// WRITE on some topic (KIP-679), else CLUSTER_AUTHORIZATION_FAILED; a transactional
// one WRITE on its transactional id.
//
// A transactional id goes to its transaction coordinator (transactions.go), here or on
// the proxy holding the id's __transaction_state lease: it bumps the id's epoch, fencing
// earlier producers, and aborts a transaction they left open (KIP-98, KIP-360).

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) initProducerID(ctx context.Context, wr *wire.Request, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil && !p.allowed(ctx, acl.Write, acl.TransactionalID, *req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	if req.TransactionalID == nil && !p.allowedQuietly(ctx, acl.IdempotentWrite, acl.Cluster, acl.ClusterName) && !p.allowedAny(ctx, acl.Write, acl.Topic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	if req.TransactionalID != nil {
		return p.initTransactionalProducer(ctx, wr, req)
	}
	id, err := p.producerIDs.next(ctx)
	if err != nil {
		p.logger.ErrorContext(ctx, "cannot allocate a producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code // retriable
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

func (p *Proxy) initTransactionalProducer(ctx context.Context, wr *wire.Request, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	answer := func(code int16, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = code, pid, epoch
		if req.Version < 4 && code == kerr.ProducerFenced.Code {
			resp.ErrorCode = kerr.InvalidProducerEpoch.Code // PRODUCER_FENCED is v4+
		}
		return resp
	}
	pid, epoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		pid, epoch = req.ProducerID, req.ProducerEpoch
	}
	return p.serveTxn(ctx, wr, oneTxn{
		req: req, id: *req.TransactionalID,
		local: func(ctx context.Context, t *coordinator.Transactions) kmsg.Response {
			r := t.InitProducerID(ctx, *req.TransactionalID, req.TransactionTimeoutMillis, pid, epoch)
			return answer(r.Code, r.ProducerID, r.Epoch)
		},
		codeOf: func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode },
		failed: func(code int16) kmsg.Response { return answer(code, -1, -1) },
	})
}

// producerIDBlockSize is how many ids one Store round trip reserves.
const producerIDBlockSize = 1000

// producerIDs hands out producer ids from blocks reserved in the Store.
type producerIDs struct {
	store routing.Store

	mu struct {
		sync.Mutex
		next, end int64
	}
}

func newProducerIDs(store routing.Store) *producerIDs { return &producerIDs{store: store} }

func (a *producerIDs) next(ctx context.Context) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.next == a.mu.end {
		first, err := a.store.AllocateProducerIDs(ctx, producerIDBlockSize)
		if err != nil {
			return 0, fmt.Errorf("reserve producer ids: %w", err)
		}
		a.mu.next, a.mu.end = first, first+producerIDBlockSize
	}
	id := a.mu.next
	a.mu.next++
	return id, nil
}
