package proxy

// AddPartitionsToTxn, versions 0 to 5.
//
// v0-3 come from producers: the partitions join the producer's transaction at its
// coordinator (transactions.go), here or on the proxy holding the id's lease. v4+ batch
// several transactions and come from partition leaders verifying a producer's first
// transactional write (KIP-890 part 1, VerifyOnly); each transaction is answered by its
// coordinator.
//
// PRODUCER_FENCED exists from v2 (KIP-588); older versions get INVALID_PRODUCER_EPOCH.
//
// Authorization: v0-3 need WRITE on the transactional id and on every topic; v4+, sent
// by brokers, CLUSTER_ACTION on the cluster.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/coordinator/txn"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

// fencedCode answers PRODUCER_FENCED as INVALID_PRODUCER_EPOCH to versions older than
// since, which predate it (KIP-588).
func fencedCode(code int16, version, since int16) int16 {
	if code == kerr.ProducerFenced.Code && version < since {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

func (p *Proxy) addPartitionsToTxn(ctx context.Context, wr *wire.Request, req *kmsg.AddPartitionsToTxnRequest) (kmsg.Response, error) {
	if req.Version >= 4 {
		return p.addPartitionsToTxnBatch(ctx, wr, req)
	}
	// answerEach answers each topic's partitions with codeOf(topic).
	answerEach := func(codeOf func(topic string) int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, part := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = part, fencedCode(codeOf(t.Topic), req.Version, 2)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	answer := func(code int16) kmsg.Response { return answerEach(func(string) int16 { return code }) }
	if !p.allowed(ctx, acl.Write, acl.TransactionalID, req.TransactionalID) {
		return answer(kerr.TransactionalIDAuthorizationFailed.Code), nil
	}
	// As in Kafka, a topic the principal may not write fails the whole request: its
	// partitions with TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED.
	denied := map[string]bool{}
	for _, t := range req.Topics {
		if _, seen := denied[t.Topic]; !seen {
			denied[t.Topic] = !p.allowed(ctx, acl.Write, acl.Topic, t.Topic)
		}
	}
	for _, refused := range denied {
		if refused {
			return answerEach(func(topic string) int16 {
				if denied[topic] {
					return kerr.TopicAuthorizationFailed.Code
				}
				return kerr.OperationNotAttempted.Code
			}), nil
		}
	}
	var tps []txn.TopicPartition
	snap := p.view.Snapshot()
	for _, t := range req.Topics {
		for _, part := range t.Partitions {
			if _, ok := snap.Partition(t.Topic, part); !ok {
				return answer(kerr.UnknownTopicOrPartition.Code), nil
			}
			tps = append(tps, txn.TopicPartition{Topic: t.Topic, Partition: part})
		}
	}
	return p.serveTxn(ctx, wr, oneTxn{
		req: req, id: req.TransactionalID,
		local: func(ctx context.Context, t *coordinator.Transactions) kmsg.Response {
			return answer(t.AddPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, tps).Code)
		},
		codeOf: func(r kmsg.Response) int16 {
			for _, t := range r.(*kmsg.AddPartitionsToTxnResponse).Topics {
				for _, p := range t.Partitions {
					return p.ErrorCode
				}
			}
			return 0
		},
		failed: answer,
	})
}

// addPartitionsToTxnBatch answers v4+: each transaction by its coordinator.
func (p *Proxy) addPartitionsToTxnBatch(ctx context.Context, wr *wire.Request, req *kmsg.AddPartitionsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if !p.allowed(ctx, acl.ClusterAction, acl.Cluster, acl.ClusterName) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	for _, tr := range req.Transactions {
		one := kmsg.NewPtrAddPartitionsToTxnRequest()
		one.Version, one.Transactions = req.Version, []kmsg.AddPartitionsToTxnRequestTransaction{tr}
		answer := func(codes []int16) kmsg.Response {
			r := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
			rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
			rt.TransactionalID = tr.TransactionalID
			i := 0
			for _, t := range tr.Topics {
				top := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				top.Topic = t.Topic
				for _, part := range t.Partitions {
					rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
					rp.Partition, rp.ErrorCode = part, codes[min(i, len(codes)-1)]
					top.Partitions = append(top.Partitions, rp)
					i++
				}
				rt.Topics = append(rt.Topics, top)
			}
			r.Transactions = []kmsg.AddPartitionsToTxnResponseTransaction{rt}
			return r
		}
		var tps []txn.TopicPartition
		for _, t := range tr.Topics {
			for _, part := range t.Partitions {
				tps = append(tps, txn.TopicPartition{Topic: t.Topic, Partition: part})
			}
		}
		if len(tps) == 0 {
			continue
		}
		got, err := p.serveTxn(ctx, wr, oneTxn{
			req: one, id: tr.TransactionalID,
			local: func(ctx context.Context, t *coordinator.Transactions) kmsg.Response {
				if tr.VerifyOnly {
					return answer(t.Verify(ctx, tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tps))
				}
				return answer([]int16{t.AddPartitions(ctx, tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tps).Code})
			},
			codeOf: func(r kmsg.Response) int16 {
				if r := r.(*kmsg.AddPartitionsToTxnResponse); r.ErrorCode != 0 {
					return r.ErrorCode
				}
				for _, t := range r.(*kmsg.AddPartitionsToTxnResponse).Transactions {
					for _, top := range t.Topics {
						for _, p := range top.Partitions {
							return p.ErrorCode
						}
					}
				}
				return 0
			},
			failed: func(code int16) kmsg.Response { return answer([]int16{code}) },
		})
		if err != nil {
			return nil, err
		}
		resp.Transactions = append(resp.Transactions, got.(*kmsg.AddPartitionsToTxnResponse).Transactions...)
	}
	return resp, nil
}
