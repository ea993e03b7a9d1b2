package proxy

// ConsumerGroupDescribe, versions 0 to 1.
//
// KIP-848 groups with members, assignments and target assignments.
// The group's coordinator (this proxy, if it holds the group's partition lease)
// answers; otherwise NOT_COORDINATOR sends the client to FindCoordinator again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) consumerGroupDescribe(ctx context.Context, req *kmsg.ConsumerGroupDescribeRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	return c.ConsumerGroupDescribe(ctx, req), nil
}
