package proxy

// ConsumerGroupHeartbeat, versions 0 to 1.
//
// KIP-848: the server assigns partitions (uniform or range) and revokes before it assigns.
// Routed to the group's coordinator by the forwarding engine (group_forward.go):
// answered here if this proxy coordinates the group, else by the proxy that does.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) consumerGroupHeartbeat(ctx context.Context, wr *wire.Request, req *kmsg.ConsumerGroupHeartbeatRequest) (kmsg.Response, error) {
	return p.serveGroup(ctx, wr, oneGroup{
		req: req, group: req.Group, op: acl.Read,
		local: func(ctx context.Context, c *coordinator.Coordinator) kmsg.Response {
			return c.ConsumerGroupHeartbeat(ctx, req)
		},
		codeOf: func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode },
		failed: func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.ErrorCode = code
			return resp
		},
	})
}
