package node

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/routing"
)

// produce appends each partition's batches to its log. Until replication lands every
// partition has one replica, so acks=1 and acks=all are both answered after the append.
// acks=0 gets no response at all, as in Kafka.
func (s *Server) produce(_ context.Context, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	validAcks := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	snap := s.view.Snapshot()
	appended := false
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			if !validAcks {
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
			} else if err := s.produceOne(rt.Topic, rp.Partition, rp.Records, req.Acks, snap, &sp); err != nil {
				sp.ErrorCode = errorCode(err)
				msg := err.Error()
				sp.ErrorMessage = &msg
				s.logger.Debug("produce refused", "topic", rt.Topic, "partition", rp.Partition, "err", err)
			} else {
				appended = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if appended {
		s.appended.notify()
	}
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

func (s *Server) produceOne(topic string, index int32, records []byte, acks int16, snap *routing.Snapshot, out *kmsg.ProduceResponseTopicPartition) error {
	r, p, err := s.lookup(snap, topic, index)
	if err != nil {
		return err
	}
	if minISR := snap.Topics[topic].ConfigInt("min.insync.replicas"); acks == -1 && int64(len(p.ISR)) < minISR {
		return fmt.Errorf("%w: %s-%d has %d in-sync replicas, min.insync.replicas is %d", errNotEnoughReplicas, topic, index, len(p.ISR), minISR)
	}
	res, err := r.log.Append(records, p.LeaderEpoch)
	if err != nil {
		return fmt.Errorf("append to %s-%d: %w", topic, index, err)
	}
	out.BaseOffset = res.BaseOffset
	out.LogStartOffset = res.LogStartOffset
	out.LogAppendTime = res.LogAppendTime
	return nil
}
