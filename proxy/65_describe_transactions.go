package proxy

// DescribeTransactions, version 0 (KIP-664).
//
// Each transactional id is described by its coordinator (transactions.go), here or on the
// proxy holding its lease: state, producer id and epoch, timeout, start and partitions.
// Authorization: DESCRIBE on each transactional id.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) describeTransactions(ctx context.Context, wr *wire.Request, req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		one := kmsg.NewPtrDescribeTransactionsRequest()
		one.Version, one.TransactionalIDs = req.Version, []string{id}
		failed := func(code int16) kmsg.Response {
			r := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
			st := kmsg.NewDescribeTransactionsResponseTransactionState()
			st.TransactionalID, st.ErrorCode, st.ProducerID, st.ProducerEpoch = id, code, -1, -1
			r.TransactionStates = []kmsg.DescribeTransactionsResponseTransactionState{st}
			return r
		}
		got, err := p.serveTxn(ctx, wr, oneTxn{
			req: one, id: id, op: acl.Describe,
			local: func(ctx context.Context, t *coordinator.Transactions) kmsg.Response {
				tx, code := t.Describe(ctx, id)
				if code != 0 {
					return failed(code)
				}
				r := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
				st := kmsg.NewDescribeTransactionsResponseTransactionState()
				st.TransactionalID, st.State, st.TimeoutMillis = id, tx.State.String(), tx.TimeoutMs
				st.ProducerID, st.ProducerEpoch, st.StartTimestamp = tx.ProducerID, tx.Epoch, -1
				if !tx.Start.IsZero() {
					st.StartTimestamp = tx.Start.UnixMilli()
				}
				for _, tp := range tx.Partitions {
					if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != tp.Topic {
						top := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
						top.Topic = tp.Topic
						st.Topics = append(st.Topics, top)
					}
					last := &st.Topics[len(st.Topics)-1]
					last.Partitions = append(last.Partitions, tp.Partition)
				}
				r.TransactionStates = []kmsg.DescribeTransactionsResponseTransactionState{st}
				return r
			},
			codeOf: func(r kmsg.Response) int16 {
				for _, st := range r.(*kmsg.DescribeTransactionsResponse).TransactionStates {
					return st.ErrorCode
				}
				return 0
			},
			failed: failed,
		})
		if err != nil {
			return nil, err
		}
		resp.TransactionStates = append(resp.TransactionStates, got.(*kmsg.DescribeTransactionsResponse).TransactionStates...)
	}
	return resp, nil
}
