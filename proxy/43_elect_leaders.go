package proxy

// ElectLeaders, versions 0 to 2.
//
// Preferred elections (type 0) give leadership back to each partition's first replica
// when it is live and in sync; unclean elections (type 1, v1+) pick any live replica
// for partitions whose in-sync replicas are all down, accepting the loss Kafka warns
// of. No partitions named (null) means every partition. Authorization: ALTER on the
// cluster (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) electLeaders(ctx context.Context, req *kmsg.ElectLeadersRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if !p.allowed(ctx, acl.Alter, acl.Cluster, acl.ClusterName) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	var only []routing.TopicPartition
	for _, t := range req.Topics {
		for _, part := range t.Partitions {
			only = append(only, routing.TopicPartition{Topic: t.Topic, Partition: part})
		}
	}
	if req.Topics == nil {
		only = nil
	} else if len(only) == 0 {
		return resp, nil
	}
	typ := routing.ElectionPreferred
	if req.Version >= 1 && req.ElectionType == 1 {
		typ = routing.ElectionUnclean
	}
	live, err := p.controller.LiveNodes(ctx)
	if err != nil {
		resp.ErrorCode = adminErrorCode(err)
		return resp, nil
	}
	results, err := p.controller.ElectLeaders(ctx, typ, live, only)
	if err != nil {
		resp.ErrorCode = adminErrorCode(err)
		return resp, nil
	}
	byTopic := map[string]int{}
	for _, r := range results {
		i, ok := byTopic[r.Topic]
		if !ok {
			t := kmsg.NewElectLeadersResponseTopic()
			t.Topic = r.Topic
			resp.Topics = append(resp.Topics, t)
			i = len(resp.Topics) - 1
			byTopic[r.Topic] = i
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition, rp.ErrorCode, rp.ErrorMessage = r.Partition, electionErrorCode(r.Err), errorMessage(r.Err)
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
	p.refreshAfter(ctx, len(results) > 0, "electing leaders")
	return resp, nil
}

func electionErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, routing.ErrElectionNotNeeded):
		return kerr.ElectionNotNeeded.Code
	case errors.Is(err, routing.ErrPreferredLeaderNotAvailable):
		return kerr.PreferredLeaderNotAvailable.Code
	case errors.Is(err, routing.ErrEligibleLeadersNotAvailable):
		return kerr.EligibleLeadersNotAvailable.Code
	case errors.Is(err, routing.ErrUnknownTopic), errors.Is(err, routing.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code
	default:
		return adminErrorCode(err)
	}
}
