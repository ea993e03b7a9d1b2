package proxy

// OffsetDelete, versions 0 to 0.
//
// Offsets of topics the group still consumes are kept (GROUP_SUBSCRIBED_TO_TOPIC).
// The group's coordinator (this proxy, if it holds the group's partition lease)
// answers; otherwise NOT_COORDINATOR sends the client to FindCoordinator again.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (p *Proxy) offsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	return c.OffsetDelete(ctx, req), nil
}
