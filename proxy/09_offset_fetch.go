package proxy

// OffsetFetch, versions 0 to 9.
//
// v8+ fetch several groups at once; v10 (topic ids) is not advertised yet.
// Each group is routed to its coordinator by the forwarding engine (group_forward.go):
// answered here if this proxy coordinates it, else by the proxy that does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) offsetFetch(ctx context.Context, wr *wire.Request, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	if req.Version < 8 {
		return p.serveGroup(ctx, wr, oneGroup{
			req: req, group: req.Group, op: acl.Describe,
			local:  func(ctx context.Context, c *coordinator.Coordinator) kmsg.Response { return c.OffsetFetch(ctx, req) },
			codeOf: offsetFetchCode,
			failed: func(code int16) kmsg.Response {
				resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
				resp.ErrorCode = code
				return resp
			},
		})
	}
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.Groups = make([]kmsg.OffsetFetchResponseGroup, len(req.Groups))
	parts := make([]*part[kmsg.OffsetFetchRequestGroup, kmsg.OffsetFetchResponseGroup], len(req.Groups))
	for i, g := range req.Groups {
		resp.Groups[i] = kmsg.NewOffsetFetchResponseGroup()
		resp.Groups[i].Group = g.Group
		parts[i] = &part[kmsg.OffsetFetchRequestGroup, kmsg.OffsetFetchResponseGroup]{topic: g.Group, in: g, out: &resp.Groups[i]}
	}
	err := serveGroups(ctx, p, wr, manyGroups[kmsg.OffsetFetchRequestGroup, kmsg.OffsetFetchResponseGroup]{
		op: acl.Describe,
		newPiece: func() kmsg.Request {
			sub := kmsg.NewPtrOffsetFetchRequest()
			sub.Version, sub.RequireStable = req.Version, req.RequireStable
			return sub
		},
		addGroup: func(piece kmsg.Request, g kmsg.OffsetFetchRequestGroup) {
			sub := piece.(*kmsg.OffsetFetchRequest)
			sub.Groups = append(sub.Groups, g)
		},
		each: func(r kmsg.Response, fn func(string, *kmsg.OffsetFetchResponseGroup)) {
			groups := r.(*kmsg.OffsetFetchResponse).Groups
			for i := range groups {
				fn(groups[i].Group, &groups[i])
			}
		},
		codeOf:   func(g *kmsg.OffsetFetchResponseGroup) int16 { return g.ErrorCode },
		failWith: func(g *kmsg.OffsetFetchResponseGroup, code int16) { g.ErrorCode = code },
		local: func(ctx context.Context, c *coordinator.Coordinator, piece kmsg.Request) kmsg.Response {
			return c.OffsetFetch(ctx, piece.(*kmsg.OffsetFetchRequest))
		},
	}, parts)
	return resp, err
}

// offsetFetchCode is a one-group answer's error: top-level from v2, else per partition.
func offsetFetchCode(r kmsg.Response) int16 {
	resp := r.(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			return p.ErrorCode
		}
	}
	return 0
}
