package proxy

// DeleteGroups, versions 0 to 2.
//
// Only empty groups are deleted (NON_EMPTY_GROUP otherwise), with their offsets.
// The group's coordinator (this proxy, if it holds the group's partition lease)
// answers; otherwise NOT_COORDINATOR sends the client to FindCoordinator again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) deleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	return c.DeleteGroups(ctx, req), nil
}
