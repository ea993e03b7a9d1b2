package proxy

// CreatePartitions, versions 0 to 3.
//
// Grows a topic; partitions are never removed. Explicit assignments place the new
// partitions only, as in Kafka. Growth that would take a node or the cluster past its
// partition limit (KIP-578) is POLICY_VIOLATION. Authorization: ALTER on each topic.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
)

func (p *Proxy) createPartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := make(map[string]int)
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	changed := false
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if seen[rt.Topic] > 1 {
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = kmsg.StringPtr("topic " + rt.Topic + " appears more than once in the request")
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !p.allowed(ctx, acl.Alter, acl.Topic, rt.Topic) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		var assignment [][]int32
		for _, a := range rt.Assignment {
			assignment = append(assignment, a.Replicas)
		}
		if err := p.controller.CreatePartitions(ctx, rt.Topic, rt.Count, assignment, req.ValidateOnly); err != nil {
			st.ErrorCode, st.ErrorMessage = adminErrorCode(err), errorMessage(err)
		} else {
			changed = changed || !req.ValidateOnly
		}
		resp.Topics = append(resp.Topics, st)
	}
	p.refreshAfter(ctx, changed, "creating partitions")
	return resp, nil
}
