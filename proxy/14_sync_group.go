package proxy

// SyncGroup, versions 0 to 5.
//
// The leader's assignment is handed to every member; followers wait for it.
// Routed to the group's coordinator by the forwarding engine (group_forward.go):
// answered here if this proxy coordinates the group, else by the proxy that does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) syncGroup(ctx context.Context, wr *wire.Request, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	return p.serveGroup(ctx, wr, oneGroup{
		req: req, group: req.Group, op: acl.Read,
		local:  func(ctx context.Context, c *coordinator.Coordinator) kmsg.Response { return c.SyncGroup(ctx, req) },
		codeOf: func(r kmsg.Response) int16 { return r.(*kmsg.SyncGroupResponse).ErrorCode },
		failed: func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
			resp.ErrorCode = code
			return resp
		},
	})
}
