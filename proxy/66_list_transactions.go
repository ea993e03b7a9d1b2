package proxy

// ListTransactions, versions 0 to 1 (KIP-664).
//
// A proxy lists the transactions of the __transaction_state partitions it coordinates, as
// a Kafka broker does; a sidecar, the client's whole cluster, gathers every live proxy's.
// Filters: states, producer ids, and (v1) transactions running longer than a duration.
// A principal sees the transactional ids it may DESCRIBE, as in Kafka.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) listTransactions(ctx context.Context, wr *wire.Request, req *kmsg.ListTransactionsRequest) (kmsg.Response, error) {
	t, err := p.transactions()
	if err != nil {
		return nil, err
	}
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	now := time.Now()
	for _, tx := range t.List(ctx) {
		switch {
		case len(req.StateFilters) > 0 && !slices.Contains(req.StateFilters, tx.State.String()):
			continue
		case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, tx.ProducerID):
			continue
		case req.DurationFilterMillis > 0 && (tx.Start.IsZero() || now.Sub(tx.Start).Milliseconds() < req.DurationFilterMillis):
			continue
		case !p.allowedQuietly(ctx, acl.Describe, acl.TransactionalID, tx.ID):
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = tx.ID, tx.ProducerID, tx.State.String()
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	if p.cfg.Mode != Sidecar || relayed(wr) {
		return resp, nil
	}
	var pieces []*piece
	for _, px := range p.liveProxies(p.view.Snapshot()) {
		if px.ID != p.cfg.BrokerID {
			pieces = append(pieces, &piece{to: target{id: px.ID, addr: px.Addr}, req: req})
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, pc := range p.sendPieces(ctx, nil, 0, pieces) {
		if pc.err == nil {
			resp.TransactionStates = append(resp.TransactionStates, pc.resp.(*kmsg.ListTransactionsResponse).TransactionStates...)
		}
	}
	return resp, nil
}
