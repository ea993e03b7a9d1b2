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
// Differences from Kafka: transactions are not supported yet; a transactional id gets
// INVALID_REQUEST and a log line that says so.

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) initProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
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
		p.logger.WarnContext(ctx, "refusing a transactional producer: Strait does not support transactions yet", "transactional_id", *req.TransactionalID)
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
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
