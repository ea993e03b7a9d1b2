package proxy

// OffsetDelete, versions 0 to 0.
//
// Offsets of topics the group still consumes are kept (GROUP_SUBSCRIBED_TO_TOPIC).
// Routed to the group's coordinator by the forwarding engine (group_forward.go):
// answered here if this proxy coordinates the group, else by the proxy that does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) offsetDelete(ctx context.Context, wr *wire.Request, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	return p.serveGroup(ctx, wr, oneGroup{
		req: req, group: req.Group, op: acl.Delete,
		local:  func(ctx context.Context, c *coordinator.Coordinator) kmsg.Response { return c.OffsetDelete(ctx, req) },
		codeOf: func(r kmsg.Response) int16 { return r.(*kmsg.OffsetDeleteResponse).ErrorCode },
		failed: func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
			resp.ErrorCode = code
			return resp
		},
	})
}
