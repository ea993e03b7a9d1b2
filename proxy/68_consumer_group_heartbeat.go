package proxy

// ConsumerGroupHeartbeat, versions 0 to 1.
//
// KIP-848: the server assigns partitions (uniform or range) and revokes before it assigns.
// The group's coordinator (this proxy, if it holds the group's partition lease)
// answers; otherwise NOT_COORDINATOR sends the client to FindCoordinator again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) consumerGroupHeartbeat(ctx context.Context, req *kmsg.ConsumerGroupHeartbeatRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	return c.ConsumerGroupHeartbeat(ctx, req), nil
}
