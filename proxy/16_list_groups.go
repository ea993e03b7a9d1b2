package proxy

// ListGroups, versions 0 to 5.
//
// Lists the groups of the partitions this proxy coordinates; v4 filters by state, v5 by type.
// A proxy answers for the groups it coordinates, as a Kafka broker does; a sidecar,
// the client's whole cluster, gathers every live proxy's (group_forward.go).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/wire"
)

func (p *Proxy) listGroups(ctx context.Context, wr *wire.Request, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	return p.gatherGroups(ctx, wr, req)
}
