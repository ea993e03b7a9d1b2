package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/strait-io/strait/partitionlog"
	"github.com/strait-io/strait/routing"
)

// markerTimeout bounds how long a marker waits to be replicated to every in-sync replica.
const markerTimeout = 30 * time.Second

// writeTxnMarkers appends each transaction marker a transaction coordinator sends (KIP-98:
// the COMMIT or ABORT control batch that ends a producer's transaction in a partition) to
// the partitions it names, and answers once each is on every in-sync replica, as Kafka
// appends markers with acks=all. Markers of one request are appended first and waited for
// together, so followers replicate them in one round.
func (s *Server) writeTxnMarkers(ctx context.Context, req *kmsg.WriteTxnMarkersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	snap := s.view.Snapshot()
	var waits []func()
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(t.Partitions))
			for i, index := range t.Partitions {
				rp := &rt.Partitions[i]
				*rp = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = index
				wait, err := s.appendMarker(snap, t.Topic, index, m)
				if err != nil {
					rp.ErrorCode = errorCode(err)
					s.logger.Debug("transaction marker refused", "topic", t.Topic, "partition", index, "producer_id", m.ProducerID, "err", err)
					continue
				}
				waits = append(waits, func() {
					if err := wait(ctx); err != nil {
						rp.ErrorCode = errorCode(err)
					}
				})
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	s.readable.notify() // read_committed consumers waiting at the LSO
	var wg sync.WaitGroup
	for _, wait := range waits {
		wg.Go(wait)
	}
	wg.Wait()
	return resp
}

// appendMarker writes one marker as the partition's leader and returns how to wait until
// it is replicated.
func (s *Server) appendMarker(snap *routing.Snapshot, topic string, index int32, m kmsg.WriteTxnMarkersRequestMarker) (func(context.Context) error, error) {
	r, p, err := s.lookup(snap, topic, index)
	if err != nil {
		return nil, err
	}
	if s.cfg.Fenced != nil && s.cfg.Fenced() {
		return nil, fmt.Errorf("%w: this node lost its registration lease", errNotLeader)
	}
	batch := partitionlog.MarkerBatch(m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch, time.Now().UnixMilli())
	res, err := r.log.Append(batch, p.LeaderEpoch, partitionlog.AppendOptions{FromCoordinator: true})
	if err != nil {
		return nil, fmt.Errorf("marker for producer %d to %s-%d: %w", m.ProducerID, topic, index, err)
	}
	r.appended(r.log.EndOffset())
	return func(ctx context.Context) error {
		return r.waitCommitted(ctx, res.LastOffset, markerTimeout, trace.SpanFromContext(ctx))
	}, nil
}

// describeProducers answers what each partition knows of its active producers (KIP-664).
func (s *Server) describeProducers(req *kmsg.DescribeProducersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	snap := s.view.Snapshot()
	for _, t := range req.Topics {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		for _, index := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = index
			r, _, err := s.lookup(snap, t.Topic, index)
			if err != nil {
				rp.ErrorCode = errorCode(err)
				if rp.ErrorCode == kerr.NotLeaderForPartition.Code {
					rp.ErrorMessage = kmsg.StringPtr(err.Error())
				}
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			for _, ps := range r.log.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = ps.ProducerID, int32(ps.ProducerEpoch), ps.LastSequence
				ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = ps.LastTimestamp, ps.CoordinatorEpoch, ps.TxnStartOffset
				rp.ActiveProducers = append(rp.ActiveProducers, ap)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
