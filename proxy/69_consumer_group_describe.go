package proxy

// ConsumerGroupDescribe, versions 0 to 1.
//
// KIP-848 groups with members, assignments and target assignments.
// Each group is routed to its coordinator by the forwarding engine (group_forward.go):
// answered here if this proxy coordinates it, else by the proxy that does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) consumerGroupDescribe(ctx context.Context, wr *wire.Request, req *kmsg.ConsumerGroupDescribeRequest) (kmsg.Response, error) {
	type groupPart = part[string, kmsg.ConsumerGroupDescribeResponseGroup]
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	resp.Groups = make([]kmsg.ConsumerGroupDescribeResponseGroup, len(req.Groups))
	parts := make([]*groupPart, len(req.Groups))
	for i, g := range req.Groups {
		resp.Groups[i] = kmsg.NewConsumerGroupDescribeResponseGroup()
		resp.Groups[i].Group = g
		parts[i] = &groupPart{topic: g, in: g, out: &resp.Groups[i]}
	}
	err := serveGroups(ctx, p, wr, manyGroups[string, kmsg.ConsumerGroupDescribeResponseGroup]{
		op: acl.Describe,
		newPiece: func() kmsg.Request {
			sub := kmsg.NewPtrConsumerGroupDescribeRequest()
			sub.Version, sub.IncludeAuthorizedOperations = req.Version, req.IncludeAuthorizedOperations
			return sub
		},
		addGroup: func(piece kmsg.Request, g string) {
			sub := piece.(*kmsg.ConsumerGroupDescribeRequest)
			sub.Groups = append(sub.Groups, g)
		},
		each: func(r kmsg.Response, fn func(string, *kmsg.ConsumerGroupDescribeResponseGroup)) {
			groups := r.(*kmsg.ConsumerGroupDescribeResponse).Groups
			for i := range groups {
				fn(groups[i].Group, &groups[i])
			}
		},
		codeOf:   func(g *kmsg.ConsumerGroupDescribeResponseGroup) int16 { return g.ErrorCode },
		failWith: func(g *kmsg.ConsumerGroupDescribeResponseGroup, code int16) { g.ErrorCode = code },
		local: func(ctx context.Context, c *coordinator.Coordinator, piece kmsg.Request) kmsg.Response {
			return c.ConsumerGroupDescribe(ctx, piece.(*kmsg.ConsumerGroupDescribeRequest))
		},
	}, parts)
	return resp, err
}
