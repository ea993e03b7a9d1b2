package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"

	"github.com/strait-io/strait/partitionlog"
	"github.com/strait-io/strait/routing"
)

// produce appends each partition's batches to its log. acks=1 is answered after the
// leader's append; acks=all once every in-sync replica has the batch (the high
// watermark passed it), refused up front with NOT_ENOUGH_REPLICAS while the ISR is
// smaller than min.insync.replicas, and answered NOT_ENOUGH_REPLICAS_AFTER_APPEND if it
// shrank below it meanwhile, as Kafka does. acks=0 gets no response at all.
func (s *Server) produce(ctx context.Context, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	validAcks := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	snap := s.view.Snapshot()
	var waits []func()
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			if !validAcks {
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
				continue
			}
			wait, err := s.produceOne(ctx, rt.Topic, rp.Partition, rp.Records, req, snap, sp)
			if err != nil {
				s.refuse(ctx, sp, rt.Topic, err)
				continue
			}
			if wait != nil {
				topic := rt.Topic
				waits = append(waits, func() {
					if err := wait(ctx); err != nil {
						s.refuse(ctx, sp, topic, err)
					}
				})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	s.readable.notify() // consumers and followers long-polling for these batches
	// Every partition was appended first, so followers replicate them all at once.
	for _, wait := range waits {
		wait()
	}
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

// refuse puts err in a partition's answer, with the records a validation blamed in
// RecordErrors (KIP-467).
func (s *Server) refuse(ctx context.Context, sp *kmsg.ProduceResponseTopicPartition, topic string, err error) {
	sp.ErrorCode = errorCode(err)
	msg := err.Error()
	sp.ErrorMessage = &msg
	var ve *partitionlog.ValidationError
	if errors.As(err, &ve) {
		for _, r := range ve.Records {
			rec := kmsg.NewProduceResponseTopicPartitionErrorRecord()
			rec.RelativeOffset, rec.ErrorMessage = r.Index, kmsg.StringPtr(r.Message)
			sp.ErrorRecords = append(sp.ErrorRecords, rec)
		}
	}
	s.logger.DebugContext(ctx, "produce refused", "topic", topic, "partition", sp.Partition, "err", err)
}

// produceOne appends to one partition; for acks=all it returns how to wait until the
// batch is committed. A traced request gets a span for the append and one for the wait.
func (s *Server) produceOne(ctx context.Context, topic string, index int32, records []byte, req *kmsg.ProduceRequest, snap *routing.Snapshot, out *kmsg.ProduceResponseTopicPartition) (func(context.Context) error, error) {
	_, span := startPartitionSpan(ctx, "append", topic, index)
	defer span.End()
	wait, err := s.appendOne(topic, index, records, req, snap, out)
	if span.IsRecording() {
		span.SetAttributes(attribute.Int(recordsBytesAttr, len(records)), attribute.Int64(baseOffsetAttr, out.BaseOffset))
		endWithError(span, err)
	}
	return wait, err
}

// appendOne is produceOne's work.
func (s *Server) appendOne(topic string, index int32, records []byte, req *kmsg.ProduceRequest, snap *routing.Snapshot, out *kmsg.ProduceResponseTopicPartition) (func(context.Context) error, error) {
	r, p, err := s.lookup(snap, topic, index)
	if err != nil {
		return nil, err
	}
	if s.cfg.Fenced != nil && s.cfg.Fenced() {
		return nil, fmt.Errorf("%w: this node lost its registration lease, so another may lead %s-%d now", errNotLeader, topic, index)
	}
	minISR := snap.Topics[topic].ConfigInt("min.insync.replicas")
	if err := checkISR(r, req.Acks, minISR, errNotEnoughReplicas); err != nil {
		return nil, fmt.Errorf("%s-%d: %w", topic, index, err)
	}
	// Transactional batches need the request's transactional id, as in Kafka; whether the
	// producer is in a transaction is the coordinator's to say (KIP-890 verification).
	opts := partitionlog.AppendOptions{Compacted: snap.Topics[topic].Compacted()}
	if req.TransactionID != nil {
		opts.TransactionalID = *req.TransactionID
	}
	res, err := r.log.Append(records, p.LeaderEpoch, opts)
	if err != nil {
		return nil, fmt.Errorf("append to %s-%d: %w", topic, index, err)
	}
	r.appended(r.log.EndOffset())
	out.BaseOffset = res.BaseOffset
	out.LogStartOffset = res.LogStartOffset
	out.LogAppendTime = res.LogAppendTime
	if req.Acks != -1 {
		return nil, nil
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	return func(ctx context.Context) error {
		_, span := startPartitionSpan(ctx, "acks=all wait", topic, index)
		defer span.End()
		err := r.waitCommitted(ctx, res.LastOffset, timeout, span)
		endWithError(span, err)
		if err != nil {
			return fmt.Errorf("%s-%d: %w", topic, index, err)
		}
		if err := checkISR(r, req.Acks, minISR, errNotEnoughReplicasAfterAppend); err != nil {
			return fmt.Errorf("%s-%d: %w", topic, index, err)
		}
		return nil
	}, nil
}

// checkISR refuses an acks=all write while the ISR is smaller than min.insync.replicas.
func checkISR(r *replica, acks int16, minISR int64, refusal error) error {
	if acks != -1 {
		return nil
	}
	isr, err := r.leaderISR()
	if err != nil {
		return err
	}
	if int64(len(isr)) < minISR {
		return fmt.Errorf("%w: %d in-sync replicas %v, min.insync.replicas is %d", refusal, len(isr), isr, minISR)
	}
	return nil
}
