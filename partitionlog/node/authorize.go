package node

// Authorization of ordinary clients. In redirect mode clients produce and fetch on a
// node's listener, so the node applies the cluster's ACLs to its own APIs as a proxy
// does and as Kafka's KafkaApis does: WRITE on each topic produced to (and on the
// transactional id of a transactional produce), READ on each topic fetched or whose
// producers are described, DESCRIBE for ListOffsets and OffsetForLeaderEpoch, DELETE for
// DeleteRecords, each refused per topic with TOPIC_AUTHORIZATION_FAILED;
// CLUSTER_ACTION for what only brokers send (WriteTxnMarkers, a follower's Fetch or
// OffsetForLeaderEpoch). The APIs it relays reach a proxy with the client's principal,
// and the proxy decides them (Metadata leaves out what the principal may not describe).
//
// Requests from internal peers are not decided again: a proxy decided what it
// forwarded, and replication and the coordinators act for the cluster itself.
//
// A client's fetches are answered without a fetch session (KIP-227 lets a broker
// decline one, answering session id 0), so that every fetch names the partitions it
// reads and each is decided.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

// authorized answers a client's request for one of the node's own APIs, with the
// parts its principal may not touch refused.
func (s *Server) authorized(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	a := s.cfg.Authz
	switch body := req.Body.(type) {
	case *kmsg.ProduceRequest:
		code := kerr.TopicAuthorizationFailed.Code
		var denied []kmsg.ProduceRequestTopic
		if body.TransactionID != nil && !a.Allowed(ctx, acl.Write, acl.TransactionalID, *body.TransactionID) {
			code, denied, body.Topics = kerr.TransactionalIDAuthorizationFailed.Code, body.Topics, nil
		} else {
			body.Topics, denied = splitTopics(ctx, s, -1, acl.Write, body.Topics, func(t kmsg.ProduceRequestTopic) string { return t.Topic })
		}
		resp, err := s.produce(ctx, body)
		if err != nil || resp == nil { // acks=0 is not answered
			return resp, err
		}
		pr := resp.(*kmsg.ProduceResponse)
		for _, t := range denied {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = -1, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			pr.Topics = append(pr.Topics, rt)
		}
		return pr, nil
	case *kmsg.FetchRequest:
		body.SessionID, body.SessionEpoch, body.ForgottenTopics = 0, -1, nil
		var denied []kmsg.FetchRequestTopic
		body.Topics, denied = splitTopics(ctx, s, body.ReplicaID, acl.Read, body.Topics, func(t kmsg.FetchRequestTopic) string { return t.Topic })
		resp := s.fetch(ctx, body)
		fr, _ := resp.(*kmsg.FetchResponse)
		if sp, ok := resp.(*wire.Spliced); ok { // record bytes stay in files (ZeroCopy)
			fr = sp.Response.(*kmsg.FetchResponse)
		}
		for _, t := range denied {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
				rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
				rp.RecordBatches = []byte{}
				rt.Partitions = append(rt.Partitions, rp)
			}
			fr.Topics = append(fr.Topics, rt)
		}
		return resp, nil
	case *kmsg.ListOffsetsRequest:
		kept, denied := splitTopics(ctx, s, -1, acl.Describe, body.Topics, func(t kmsg.ListOffsetsRequestTopic) string { return t.Topic })
		body.Topics = kept
		resp := s.listOffsets(body).(*kmsg.ListOffsetsResponse)
		for _, t := range denied {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.Offset, rp.Timestamp = p.Partition, kerr.TopicAuthorizationFailed.Code, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	case *kmsg.OffsetForLeaderEpochRequest:
		var denied []kmsg.OffsetForLeaderEpochRequestTopic
		body.Topics, denied = splitTopics(ctx, s, body.ReplicaID, acl.Describe, body.Topics, func(t kmsg.OffsetForLeaderEpochRequestTopic) string { return t.Topic })
		resp := s.offsetForLeaderEpoch(body).(*kmsg.OffsetForLeaderEpochResponse)
		for _, t := range denied {
			rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = p.Partition, kerr.TopicAuthorizationFailed.Code, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	case *kmsg.DeleteRecordsRequest:
		kept, denied := splitTopics(ctx, s, -1, acl.Delete, body.Topics, func(t kmsg.DeleteRecordsRequestTopic) string { return t.Topic })
		body.Topics = kept
		resp := s.deleteRecords(body).(*kmsg.DeleteRecordsResponse)
		for _, t := range denied {
			rt := kmsg.NewDeleteRecordsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewDeleteRecordsResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.LowWatermark = p.Partition, kerr.TopicAuthorizationFailed.Code, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	case *kmsg.DescribeProducersRequest:
		kept, denied := splitTopics(ctx, s, -1, acl.Read, body.Topics, func(t kmsg.DescribeProducersRequestTopic) string { return t.Topic })
		body.Topics = kept
		resp := s.describeProducers(body).(*kmsg.DescribeProducersResponse)
		for _, t := range denied {
			rt := kmsg.NewDescribeProducersResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewDescribeProducersResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	case *kmsg.WriteTxnMarkersRequest:
		if !a.Allowed(ctx, acl.ClusterAction, acl.Cluster, acl.ClusterName) {
			resp := body.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
			for _, m := range body.Markers {
				rm := kmsg.NewWriteTxnMarkersResponseMarker()
				rm.ProducerID = m.ProducerID
				for _, t := range m.Topics {
					rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
					rt.Topic = t.Topic
					for _, p := range t.Partitions {
						rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
						rp.Partition, rp.ErrorCode = p, kerr.ClusterAuthorizationFailed.Code
						rt.Partitions = append(rt.Partitions, rp)
					}
					rm.Topics = append(rm.Topics, rt)
				}
				resp.Markers = append(resp.Markers, rm)
			}
			return resp, nil
		}
	}
	return s.serve(ctx, req)
}

// splitTopics separates the topics the principal may op from those it may not. A
// request naming a replica (replica >= 0) is a follower's, which needs CLUSTER_ACTION
// for all its topics.
func splitTopics[T any](ctx context.Context, s *Server, replica int32, op acl.Operation, topics []T, name func(T) string) (kept, denied []T) {
	if replica >= 0 && !s.cfg.Authz.Allowed(ctx, acl.ClusterAction, acl.Cluster, acl.ClusterName) {
		return nil, topics
	}
	refused := s.cfg.Authz.DeniedTopics(ctx, op, func(yield func(string) bool) {
		for _, t := range topics {
			if !yield(name(t)) {
				return
			}
		}
	})
	if refused == nil {
		return topics, nil
	}
	for _, t := range topics {
		if refused[name(t)] {
			denied = append(denied, t)
		} else {
			kept = append(kept, t)
		}
	}
	return kept, denied
}
