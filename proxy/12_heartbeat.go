package proxy

// Heartbeat, versions 0 to 4.
//
// Keeps a classic member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
// The group's coordinator (this proxy, if it holds the group's partition lease)
// answers; otherwise NOT_COORDINATOR sends the client to FindCoordinator again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	return c.Heartbeat(ctx, req), nil
}
