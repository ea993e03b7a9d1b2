package proxy

// DescribeGroups, versions 0 to 5.
//
// Classic groups in full; KIP-848 groups by state (use ConsumerGroupDescribe for them).
// Each group is routed to its coordinator by the forwarding engine (group_forward.go):
// answered here if this proxy coordinates it, else by the proxy that does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) describeGroups(ctx context.Context, wr *wire.Request, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	type groupPart = part[string, kmsg.DescribeGroupsResponseGroup]
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Groups = make([]kmsg.DescribeGroupsResponseGroup, len(req.Groups))
	parts := make([]*groupPart, len(req.Groups))
	for i, g := range req.Groups {
		resp.Groups[i] = kmsg.NewDescribeGroupsResponseGroup()
		resp.Groups[i].Group = g
		parts[i] = &groupPart{topic: g, in: g, out: &resp.Groups[i]}
	}
	err := serveGroups(ctx, p, wr, manyGroups[string, kmsg.DescribeGroupsResponseGroup]{
		op: acl.Describe,
		newPiece: func() kmsg.Request {
			sub := kmsg.NewPtrDescribeGroupsRequest()
			sub.Version, sub.IncludeAuthorizedOperations = req.Version, req.IncludeAuthorizedOperations
			return sub
		},
		addGroup: func(piece kmsg.Request, g string) {
			sub := piece.(*kmsg.DescribeGroupsRequest)
			sub.Groups = append(sub.Groups, g)
		},
		each: func(r kmsg.Response, fn func(string, *kmsg.DescribeGroupsResponseGroup)) {
			groups := r.(*kmsg.DescribeGroupsResponse).Groups
			for i := range groups {
				fn(groups[i].Group, &groups[i])
			}
		},
		codeOf:   func(g *kmsg.DescribeGroupsResponseGroup) int16 { return g.ErrorCode },
		failWith: func(g *kmsg.DescribeGroupsResponseGroup, code int16) { g.ErrorCode = code },
		local: func(ctx context.Context, c *coordinator.Coordinator, piece kmsg.Request) kmsg.Response {
			return c.DescribeGroups(ctx, piece.(*kmsg.DescribeGroupsRequest))
		},
	}, parts)
	return resp, err
}
