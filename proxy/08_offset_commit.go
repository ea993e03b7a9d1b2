package proxy

// OffsetCommit, versions 0 to 9.
//
// v10 names topics by id; it is not advertised yet.
// Routed to the group's coordinator by the forwarding engine (group_forward.go):
// answered here if this proxy coordinates the group, else by the proxy that does.
// Authorization: READ on the group, and on each topic (TOPIC_AUTHORIZATION_FAILED for
// the partitions of a topic refused).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) offsetCommit(ctx context.Context, wr *wire.Request, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	// Partitions of topics the principal may not read are refused and the others
	// committed, as in Kafka.
	denied := deniedTopicsOf(ctx, p, acl.Read, req.Topics, func(t kmsg.OffsetCommitRequestTopic) string { return t.Topic })
	if len(denied) > 0 {
		var refused []kmsg.OffsetCommitResponseTopic
		kept := *req
		kept.Topics = nil
		for _, t := range req.Topics {
			if !denied[t.Topic] {
				kept.Topics = append(kept.Topics, t)
				continue
			}
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, rp := range t.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, sp)
			}
			refused = append(refused, rt)
		}
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		if len(kept.Topics) > 0 {
			got, err := p.commitOffsets(ctx, wr, &kept)
			if err != nil {
				return nil, err
			}
			resp = got.(*kmsg.OffsetCommitResponse)
		}
		resp.Topics = append(resp.Topics, refused...)
		return resp, nil
	}
	return p.commitOffsets(ctx, wr, req)
}

func (p *Proxy) commitOffsets(ctx context.Context, wr *wire.Request, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	return p.serveGroup(ctx, wr, oneGroup{
		req: req, group: req.Group, op: acl.Read,
		local: func(ctx context.Context, c *coordinator.Coordinator) kmsg.Response { return c.OffsetCommit(ctx, req) },
		codeOf: func(r kmsg.Response) int16 {
			for _, t := range r.(*kmsg.OffsetCommitResponse).Topics {
				for _, p := range t.Partitions {
					return p.ErrorCode // every partition carries a coordinator error alike
				}
			}
			return 0
		},
		failed: func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
			for _, rt := range req.Topics {
				st := kmsg.NewOffsetCommitResponseTopic()
				st.Topic = rt.Topic
				for _, rp := range rt.Partitions {
					sp := kmsg.NewOffsetCommitResponseTopicPartition()
					sp.Partition, sp.ErrorCode = rp.Partition, code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp
		},
	})
}
