package proxy

// JoinGroup, versions 0 to 9.
//
// Waits for the group's rebalance to complete, up to the rebalance timeout. v4+ new
// members first get MEMBER_ID_REQUIRED with their id (KIP-394); v5+ static members
// (KIP-345) rejoin without a rebalance.
// The group's coordinator (this proxy, if it holds the group's partition lease)
// answers; otherwise NOT_COORDINATOR sends the client to FindCoordinator again.

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) joinGroup(ctx context.Context, wr *wire.Request, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	host := ""
	if wr.RemoteAddr != nil {
		host, _, _ = net.SplitHostPort(wr.RemoteAddr.String())
	}
	return c.JoinGroup(ctx, req, wr.Header.ClientID, "/"+host), nil
}
