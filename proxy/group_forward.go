package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/coordinator"
	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
	"github.com/strait-io/strait/routing"
)

// Group-addressed requests go through the forwarding engine too (engine.go): each
// group is a part, routed to the proxy that holds its coordinator lease. Groups this
// proxy coordinates are answered in process; the others are forwarded to their
// coordinator, which is what lets a sidecar (which names itself every group's
// coordinator) serve an application that knows no other broker, and lets any proxy
// serve a client whose idea of the coordinator is out of date. A coordinator that
// moves meanwhile (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
// COORDINATOR_LOAD_IN_PROGRESS) is found again on a fresh view, as a moved leader is.
//
// A request another proxy forwarded here is never forwarded again: two proxies that
// disagree about a lease for a moment must not pass a request back and forth. It is
// answered here, NOT_COORDINATOR if this proxy does not coordinate the group, and the
// forwarding proxy retries.

var errNoCoordinator = errors.New("the group has no live coordinator")

// groupRouter routes parts keyed by group id to their coordinators.
type groupRouter struct {
	p       *Proxy
	noRelay bool // the request came from another proxy: answer here
}

func (g groupRouter) route(p *Proxy, snap *routing.Snapshot, group string) (target, error) {
	c := p.groups.Load()
	if c == nil || g.noRelay {
		return target{local: true}, nil
	}
	lease, ok := snap.Leases[coordinatorLeaseName(c.Partition(group))]
	switch {
	case !ok:
		return target{}, fmt.Errorf("%w: group %q's partition has no lease holder", errNoCoordinator, group)
	case lease.Holder == p.holder():
		return target{local: true}, nil
	}
	owner, code := p.coordinatorOf(group)
	if code != 0 {
		return target{}, fmt.Errorf("%w: group %q's coordinator %s is not a registered proxy", errNoCoordinator, group, lease.Holder)
	}
	return target{id: owner.ID, addr: owner.Addr}, nil
}

func (groupRouter) stale(code int16) bool {
	switch code {
	case kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code:
		return true
	}
	return false
}

// relayed reports whether a request came from another Strait process, over an
// internal connection, and so must not be forwarded again.
func relayed(wr *wire.Request) bool {
	return wr != nil && wr.Internal
}

// groupDeadline is how long a group request may take, retries included: a JoinGroup
// waits for its rebalance.
func groupDeadline(req kmsg.Request) time.Time {
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		return requestDeadline(time.Duration(max(r.RebalanceTimeoutMillis, r.SessionTimeoutMillis))*time.Millisecond + 30*time.Second)
	case *kmsg.SyncGroupRequest:
		return requestDeadline(5 * time.Minute) // waits for the leader's assignment, bounded by the rebalance
	}
	return requestDeadline(30 * time.Second)
}

// oneGroupPart is the single group of a request that names one.
type oneGroupPart = part[struct{}, kmsg.Response]

// oneGroup forwards a request that names one group (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, OffsetCommit, OffsetFetch before v8, OffsetDelete,
// ConsumerGroupHeartbeat): the whole request is the one piece.
type oneGroup struct {
	groupRouter
	op     acl.Operation // on the group, which the principal must be allowed
	req    kmsg.Request
	local  func(context.Context, *coordinator.Coordinator) kmsg.Response
	codeOf func(kmsg.Response) int16
	failed func(code int16) kmsg.Response
	group  string
}

func (a oneGroup) piece() kmsg.Request                         { return a.req }
func (oneGroup) add(kmsg.Request, *oneGroupPart)               {}
func (oneGroup) resendable(*oneGroupPart) bool                 { return true }
func (a oneGroup) code(out *kmsg.Response) int16               { return a.codeOf(*out) }
func (a oneGroup) fail(out *kmsg.Response, c int16, _ *string) { *out = a.failed(c) }

func (a oneGroup) answers(resp kmsg.Response, each func(string, int32, *kmsg.Response)) {
	each(a.group, 0, &resp)
}

func (a oneGroup) serveLocal(ctx context.Context, _ kmsg.Request) (kmsg.Response, error) {
	c, err := a.p.coord()
	if err != nil {
		return nil, err
	}
	return a.local(ctx, c), nil
}

// serveGroup answers a one-group request: in process if this proxy coordinates the
// group, else from its coordinator.
func (p *Proxy) serveGroup(ctx context.Context, wr *wire.Request, a oneGroup) (kmsg.Response, error) {
	if _, err := p.coord(); err != nil {
		return nil, err
	}
	if !p.allowed(ctx, a.op, acl.Group, a.group) {
		return a.failed(kerr.GroupAuthorizationFailed.Code), nil
	}
	a.groupRouter = groupRouter{p: p, noRelay: relayed(wr)}
	var out kmsg.Response
	pt := &oneGroupPart{topic: a.group, out: &out}
	forward(ctx, p, a, []*oneGroupPart{pt}, groupDeadline(a.req))
	return out, nil
}

// groupsPart is one group of a request that names several.
type groupsPart[In, Out any] = part[In, Out]

// ListGroups has no group to route by: every live proxy coordinates some. A proxy
// asked by a client answers for its own groups, as a Kafka broker does, except a
// sidecar, which is the client's whole cluster and so gathers every proxy's. A
// principal sees the groups it may DESCRIBE (all of them with DESCRIBE on the
// cluster), as in Kafka.
func (p *Proxy) gatherGroups(ctx context.Context, wr *wire.Request, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	c, err := p.coord()
	if err != nil {
		return nil, err
	}
	resp := c.ListGroups(ctx, req)
	if p.cfg.Mode != Sidecar || relayed(wr) || resp.ErrorCode != 0 {
		return p.describableGroups(ctx, resp), nil
	}
	snap := p.view.Snapshot()
	var pieces []*piece
	for _, px := range p.liveProxies(snap) {
		if px.ID != p.cfg.BrokerID {
			pieces = append(pieces, &piece{to: target{id: px.ID, addr: px.Addr}, req: req})
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, pc := range p.sendPieces(ctx, nil, 0, pieces) {
		if pc.err != nil {
			p.logger.WarnContext(ctx, "listing another proxy's groups failed; answering without them", "proxy", pc.to.id, "err", pc.err)
			continue
		}
		if other := pc.resp.(*kmsg.ListGroupsResponse); other.ErrorCode == 0 {
			resp.Groups = append(resp.Groups, other.Groups...)
		}
	}
	return p.describableGroups(ctx, resp), nil
}

// describableGroups leaves out the groups the principal may not describe.
func (p *Proxy) describableGroups(ctx context.Context, resp *kmsg.ListGroupsResponse) *kmsg.ListGroupsResponse {
	if p.allowedQuietly(ctx, acl.Describe, acl.Cluster, acl.ClusterName) {
		return resp
	}
	kept := resp.Groups[:0]
	for _, g := range resp.Groups {
		if p.allowedQuietly(ctx, acl.Describe, acl.Group, g.Group) {
			kept = append(kept, g)
		}
	}
	resp.Groups = kept
	return resp
}

// manyGroups forwards a request that names several groups (OffsetFetch v8+,
// DescribeGroups, DeleteGroups, ConsumerGroupDescribe): one piece per coordinator,
// each a request of the same kind naming that coordinator's groups.
type manyGroups[In, Out any] struct {
	groupRouter
	op       acl.Operation       // on each group, which the principal must be allowed
	newPiece func() kmsg.Request // the client's settings, no groups
	addGroup func(piece kmsg.Request, in In)
	each     func(resp kmsg.Response, fn func(group string, out *Out))
	codeOf   func(*Out) int16
	failWith func(*Out, int16)
	local    func(context.Context, *coordinator.Coordinator, kmsg.Request) kmsg.Response
}

func (a manyGroups[In, Out]) piece() kmsg.Request                       { return a.newPiece() }
func (a manyGroups[In, Out]) add(piece kmsg.Request, pt *part[In, Out]) { a.addGroup(piece, pt.in) }
func (a manyGroups[In, Out]) code(out *Out) int16                       { return a.codeOf(out) }
func (a manyGroups[In, Out]) fail(out *Out, c int16, _ *string)         { a.failWith(out, c) }
func (manyGroups[In, Out]) resendable(*part[In, Out]) bool              { return true }

func (a manyGroups[In, Out]) answers(resp kmsg.Response, each func(string, int32, *Out)) {
	a.each(resp, func(group string, out *Out) { each(group, 0, out) })
}

func (a manyGroups[In, Out]) serveLocal(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	c, err := a.p.coord()
	if err != nil {
		return nil, err
	}
	return a.local(ctx, c, req), nil
}

// serveGroups answers a request naming several groups, each from its coordinator.
func serveGroups[In, Out any](ctx context.Context, p *Proxy, wr *wire.Request, a manyGroups[In, Out], parts []*part[In, Out]) error {
	if _, err := p.coord(); err != nil {
		return err
	}
	a.groupRouter = groupRouter{p: p, noRelay: relayed(wr)}
	allowed := parts[:0]
	for _, pt := range parts {
		if p.allowed(ctx, a.op, acl.Group, pt.topic) {
			allowed = append(allowed, pt)
		} else {
			a.failWith(pt.out, kerr.GroupAuthorizationFailed.Code)
		}
	}
	forward(ctx, p, a, allowed, requestDeadline(30*time.Second))
	return nil
}
