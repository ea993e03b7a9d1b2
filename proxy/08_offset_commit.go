package proxy

// OffsetCommit, versions 0 to 9.
//
// v10 names topics by id; it is not advertised yet.
// Routed to the group's coordinator by the forwarding engine (group_forward.go):
// answered here if this proxy coordinates the group, else by the proxy that does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) offsetCommit(ctx context.Context, wr *wire.Request, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
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
