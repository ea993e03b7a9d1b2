package proxy

// WriteTxnMarkers, versions 0 to 1.
//
// The transaction coordinator's way to end a transaction in each partition it wrote to
// (KIP-98): a COMMIT or ABORT control batch per partition. The coordinator (a proxy) sends
// a transaction's markers through the forwarding engine, one piece per partition leader;
// markers for __consumer_offsets partitions go to the group coordinator holding the
// partition's lease instead, which writes them and then applies or drops the pending
// transactional offsets, as Kafka's group coordinator does on the broker that leads the
// partition. A proxy serves this API to other proxies, for those group markers, and
// forwards any other partition to its leader. Authorization: CLUSTER_ACTION on the
// cluster, which only the cluster's own processes hold.
//
// Differences from Kafka: a partition whose topic was deleted (UNKNOWN_TOPIC_OR_PARTITION
// after the engine's retries) counts as written, so a deleted topic cannot hold a
// transaction open forever; Kafka's marker channel drops such partitions the same way.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/coordinator/txn"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

type markerPart = part[struct{}, kmsg.WriteTxnMarkersResponseMarkerTopicPartition]

// markersAdapter forwards one transaction's markers to the partitions' leaders (engine.go).
type markersAdapter struct {
	marker kmsg.WriteTxnMarkersRequestMarker
}

func (a markersAdapter) piece() kmsg.Request {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	m := a.marker
	m.Topics = nil
	req.Markers = []kmsg.WriteTxnMarkersRequestMarker{m}
	return req
}

func (markersAdapter) add(piece kmsg.Request, pt *markerPart) {
	m := &piece.(*kmsg.WriteTxnMarkersRequest).Markers[0]
	if n := len(m.Topics); n == 0 || m.Topics[n-1].Topic != pt.topic {
		t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		t.Topic = pt.topic
		m.Topics = append(m.Topics, t)
	}
	last := &m.Topics[len(m.Topics)-1]
	last.Partitions = append(last.Partitions, pt.index)
}

func (markersAdapter) answers(resp kmsg.Response, each func(string, int32, *kmsg.WriteTxnMarkersResponseMarkerTopicPartition)) {
	for _, m := range resp.(*kmsg.WriteTxnMarkersResponse).Markers {
		for _, t := range m.Topics {
			for i := range t.Partitions {
				each(t.Topic, t.Partitions[i].Partition, &t.Partitions[i])
			}
		}
	}
}

func (markersAdapter) code(out *kmsg.WriteTxnMarkersResponseMarkerTopicPartition) int16 {
	return out.ErrorCode
}

func (markersAdapter) fail(out *kmsg.WriteTxnMarkersResponseMarkerTopicPartition, code int16, _ *string) {
	out.ErrorCode = code
}

// resendable: a marker written twice ends nothing the second time.
func (markersAdapter) resendable(*markerPart) bool { return true }

// markerWriter is the transaction coordinator's coordinator.MarkerWriter.
type markerWriter struct{ p *Proxy }

func (w markerWriter) WriteMarkers(ctx context.Context, mk *txn.Markers, coordinatorEpoch int32) error {
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = mk.ProducerID, mk.Epoch, mk.Commit, coordinatorEpoch
	var data []*markerPart
	var groupPartitions []int32
	for _, tp := range mk.Partitions {
		if tp.Topic == coordinator.OffsetsTopic {
			groupPartitions = append(groupPartitions, tp.Partition)
			continue
		}
		out := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
		data = append(data, &markerPart{topic: tp.Topic, index: tp.Partition, out: &out})
	}
	forward(ctx, w.p, markersAdapter{m}, data, requestDeadline(30*time.Second))
	for _, pt := range data {
		if code := pt.out.ErrorCode; code != 0 && code != kerr.UnknownTopicOrPartition.Code {
			return fmt.Errorf("marker to %s-%d: %w", pt.topic, pt.index, kerr.ErrorForCode(code))
		}
	}
	for _, partition := range groupPartitions {
		if code := w.p.groupMarker(ctx, partition, m); code != 0 {
			return fmt.Errorf("marker to %s-%d: %w", coordinator.OffsetsTopic, partition, kerr.ErrorForCode(code))
		}
	}
	return nil
}

// groupMarker has the group coordinator of a __consumer_offsets partition write a marker
// there: in process when this proxy holds its lease, else by asking the proxy that does.
func (p *Proxy) groupMarker(ctx context.Context, partition int32, m kmsg.WriteTxnMarkersRequestMarker) int16 {
	owner, code := p.leaseHolder(coordinatorLeaseName(partition))
	if code != 0 {
		return code
	}
	if owner.ID == p.cfg.BrokerID {
		c, err := p.coord()
		if err != nil {
			return kerr.CoordinatorNotAvailable.Code
		}
		return c.WriteTxnMarker(ctx, partition, m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch)
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: coordinator.OffsetsTopic, Partitions: []int32{partition}}}
	req.Markers = []kmsg.WriteTxnMarkersRequestMarker{m}
	resp, err := p.nodes.Do(ctx, owner.Addr, req)
	if err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	for _, rm := range resp.(*kmsg.WriteTxnMarkersResponse).Markers {
		for _, t := range rm.Topics {
			for _, rp := range t.Partitions {
				return rp.ErrorCode
			}
		}
	}
	return kerr.UnknownServerError.Code
}

// writeTxnMarkers serves WriteTxnMarkers from another proxy's transaction coordinator:
// __consumer_offsets partitions by this proxy's group coordinator, the others by their
// leaders.
func (p *Proxy) writeTxnMarkers(ctx context.Context, wr *wire.Request, req *kmsg.WriteTxnMarkersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	// Only the cluster's own coordinators may end transactions (CLUSTER_ACTION).
	refused := !p.allowed(ctx, acl.ClusterAction, acl.Cluster, acl.ClusterName)
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		var data []*markerPart
		for _, t := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(t.Partitions))
			for i, index := range t.Partitions {
				rp := &rt.Partitions[i]
				*rp = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = index
				switch {
				case refused:
					rp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
					continue
				case t.Topic != coordinator.OffsetsTopic:
					data = append(data, &markerPart{topic: t.Topic, index: index, out: rp})
					continue
				}
				c, err := p.coord()
				if err != nil {
					rp.ErrorCode = kerr.CoordinatorNotAvailable.Code
					continue
				}
				rp.ErrorCode = c.WriteTxnMarker(ctx, index, m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch)
			}
			rm.Topics = append(rm.Topics, rt)
		}
		forward(ctx, p, markersAdapter{m}, data, requestDeadline(30*time.Second))
		resp.Markers = append(resp.Markers, rm)
	}
	return resp, nil
}

// AppendTransactional writes a transaction's offset commits (coordinator.TxnLog).
func (l offsetsLog) AppendTransactional(ctx context.Context, partition int32, transactionalID string, batch []byte) error {
	return appendInternal(ctx, l.p, coordinator.OffsetsTopic, partition, batch, &transactionalID)
}

// WriteMarker writes a transaction marker to a __consumer_offsets partition's leader
// (coordinator.TxnLog).
func (l offsetsLog) WriteMarker(ctx context.Context, partition int32, pid int64, epoch int16, commit bool, coordinatorEpoch int32) error {
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, commit, coordinatorEpoch
	out := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
	pt := &markerPart{topic: coordinator.OffsetsTopic, index: partition, out: &out}
	forward(ctx, l.p, markersAdapter{m}, []*markerPart{pt}, requestDeadline(30*time.Second))
	return kerr.ErrorForCode(out.ErrorCode)
}
