package proxy

// DescribeGroups, versions 0 to 5.
//
// Classic groups in full; KIP-848 groups by state (use ConsumerGroupDescribe for them).
// The group's coordinator (this proxy, if it holds the group's partition lease)
// answers; otherwise NOT_COORDINATOR sends the client to FindCoordinator again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) describeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	return c.DescribeGroups(ctx, req), nil
}
