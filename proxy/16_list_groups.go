package proxy

// ListGroups, versions 0 to 5.
//
// Lists the groups of the partitions this proxy coordinates; v4 filters by state, v5 by type.
// The group's coordinator (this proxy, if it holds the group's partition lease)
// answers; otherwise NOT_COORDINATOR sends the client to FindCoordinator again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) listGroups(ctx context.Context, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	return c.ListGroups(ctx, req), nil
}
