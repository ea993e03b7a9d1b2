package proxy

// JoinGroup, versions 0 to 9.
//
// Waits for the group's rebalance to complete, up to the rebalance timeout. v4+ new
// members first get MEMBER_ID_REQUIRED with their id (KIP-394); v5+ static members
// (KIP-345) rejoin without a rebalance.
// Routed to the group's coordinator by the forwarding engine (group_forward.go):
// answered here if this proxy coordinates the group, else by the proxy that does.

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) joinGroup(ctx context.Context, wr *wire.Request, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	// The real client: a request another proxy forwarded names it in its origin.
	host, _, _ := net.SplitHostPort(wr.Origin.ClientAddr)
	return p.serveGroup(ctx, wr, oneGroup{
		req: req, group: req.Group, op: acl.Read,
		local: func(ctx context.Context, c *coordinator.Coordinator) kmsg.Response {
			return c.JoinGroup(ctx, req, wr.Origin.ClientID, "/"+host)
		},
		codeOf: func(r kmsg.Response) int16 { return r.(*kmsg.JoinGroupResponse).ErrorCode },
		failed: func(code int16) kmsg.Response {
			resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode, resp.Generation = code, -1
			return resp
		},
	})
}
