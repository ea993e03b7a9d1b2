package proxy

// DescribeTopicPartitions, version 0 (KIP-966).
//
// Kafka 3.7+ admin clients describe topics with it instead of Metadata. Topics are
// answered in name order, all of them when none is named; at most
// ResponsePartitionLimit partitions (2,000 when unset or larger, Kafka's
// max.request.partition.size.limit) go in one answer, and NextCursor says where the
// next request resumes. Leaders, replicas and ISR are named as Metadata names them
// (03_metadata.go), so every id is a broker the cluster's Metadata lists. Strait has no
// eligible leader replicas (KIP-966's ELR is a KRaft controller feature): those lists are
// empty. A cursor naming a topic the request does not name gets INVALID_REQUEST, as
// in Kafka.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/routing"
)

// maxDescribedPartitions is Kafka's max.request.partition.size.limit default.
const maxDescribedPartitions = 2000

func (p *Proxy) describeTopicPartitions(_ context.Context, req *kmsg.DescribeTopicPartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	snap := p.view.Snapshot()
	names := describedTopicNames(snap, req)
	if c := req.Cursor; c != nil && len(req.Topics) > 0 && !slices.Contains(names, c.Topic) {
		for _, name := range names {
			resp.Topics = append(resp.Topics, describedTopicError(name, kerr.InvalidRequest.Code))
		}
		return resp, nil
	}
	limit := int(req.ResponsePartitionLimit)
	if limit <= 0 || limit > maxDescribedPartitions {
		limit = maxDescribedPartitions
	}
	leaders := p.leaders(snap)
	for _, name := range names {
		first := int32(0)
		if c := req.Cursor; c != nil {
			if name < c.Topic {
				continue
			}
			if name == c.Topic {
				first = max(c.Partition, 0)
			}
		}
		t, ok := snap.Topic(name)
		if !ok {
			resp.Topics = append(resp.Topics, describedTopicError(name, kerr.UnknownTopicOrPartition.Code))
			continue
		}
		if limit == 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: first}
			return resp, nil
		}
		dt, next := describeTopicPartitions(t, first, limit, leaders)
		resp.Topics = append(resp.Topics, dt)
		limit -= len(dt.Partitions)
		if next >= 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: next}
			return resp, nil
		}
	}
	return resp, nil
}

// describedTopicNames returns the topics to describe, in name order without
// duplicates: the named ones, or every topic when none is named.
func describedTopicNames(snap *routing.Snapshot, req *kmsg.DescribeTopicPartitionsRequest) []string {
	if len(req.Topics) == 0 {
		return snap.TopicNames()
	}
	names := make([]string, 0, len(req.Topics))
	for _, rt := range req.Topics {
		names = append(names, rt.Topic)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// describeTopicPartitions describes up to limit of t's partitions from first on, and
// returns the index of the first one left out, or -1 when none is.
func describeTopicPartitions(t *routing.Topic, first int32, limit int, leaders leaders) (kmsg.DescribeTopicPartitionsResponseTopic, int32) {
	dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	name := t.Name
	dt.Topic, dt.TopicID = &name, t.ID
	dt.IsInternal = routing.IsInternalTopic(t.Name)
	for _, part := range t.Partitions {
		if part.Index < first {
			continue
		}
		if len(dt.Partitions) == limit {
			return dt, part.Index
		}
		dp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
		dp.Partition = part.Index
		dp.LeaderID = leaders.of(t.ID, part)
		dp.LeaderEpoch = part.LeaderEpoch
		dp.Replicas, dp.ISR = leaders.replicas(part, dp.LeaderID)
		dp.EligibleLeaderReplicas, dp.LastKnownELR, dp.OfflineReplicas = []int32{}, []int32{}, []int32{}
		if dp.LeaderID < 0 {
			dp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		dt.Partitions = append(dt.Partitions, dp)
	}
	return dt, -1
}

func describedTopicError(name string, code int16) kmsg.DescribeTopicPartitionsResponseTopic {
	dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	dt.Topic, dt.ErrorCode = &name, code
	return dt
}
