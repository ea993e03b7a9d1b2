package proxy

// DeleteGroups, versions 0 to 2.
//
// Only empty groups are deleted (NON_EMPTY_GROUP otherwise), with their offsets.
// Each group is routed to its coordinator by the forwarding engine (group_forward.go):
// answered here if this proxy coordinates it, else by the proxy that does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) deleteGroups(ctx context.Context, wr *wire.Request, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	type groupPart = part[string, kmsg.DeleteGroupsResponseGroup]
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(req.Groups))
	parts := make([]*groupPart, len(req.Groups))
	for i, g := range req.Groups {
		resp.Groups[i] = kmsg.NewDeleteGroupsResponseGroup()
		resp.Groups[i].Group = g
		parts[i] = &groupPart{topic: g, in: g, out: &resp.Groups[i]}
	}
	err := serveGroups(ctx, p, wr, manyGroups[string, kmsg.DeleteGroupsResponseGroup]{
		op: acl.Delete,
		newPiece: func() kmsg.Request {
			sub := kmsg.NewPtrDeleteGroupsRequest()
			sub.Version = req.Version
			return sub
		},
		addGroup: func(piece kmsg.Request, g string) {
			sub := piece.(*kmsg.DeleteGroupsRequest)
			sub.Groups = append(sub.Groups, g)
		},
		each: func(r kmsg.Response, fn func(string, *kmsg.DeleteGroupsResponseGroup)) {
			groups := r.(*kmsg.DeleteGroupsResponse).Groups
			for i := range groups {
				fn(groups[i].Group, &groups[i])
			}
		},
		codeOf:   func(g *kmsg.DeleteGroupsResponseGroup) int16 { return g.ErrorCode },
		failWith: func(g *kmsg.DeleteGroupsResponseGroup, code int16) { g.ErrorCode = code },
		local: func(ctx context.Context, c *coordinator.Coordinator, piece kmsg.Request) kmsg.Response {
			return c.DeleteGroups(ctx, piece.(*kmsg.DeleteGroupsRequest))
		},
	}, parts)
	return resp, err
}
