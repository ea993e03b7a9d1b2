package proxy

// SyncGroup, versions 0 to 5.
//
// The leader's assignment is handed to every member; followers wait for it.
// The group's coordinator (this proxy, if it holds the group's partition lease)
// answers; otherwise NOT_COORDINATOR sends the client to FindCoordinator again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) syncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	return c.SyncGroup(ctx, req), nil
}
