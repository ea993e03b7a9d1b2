package proxy

// LeaveGroup, versions 0 to 5.
//
// v3+ remove several members, by member or instance id (KIP-345).
// The group's coordinator (this proxy, if it holds the group's partition lease)
// answers; otherwise NOT_COORDINATOR sends the client to FindCoordinator again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) leaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	return c.LeaveGroup(ctx, req), nil
}
