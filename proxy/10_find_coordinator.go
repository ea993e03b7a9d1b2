package proxy

// FindCoordinator, versions 0 to 6.
//
// A group's coordinator is the proxy holding the lease of its __consumer_offsets
// partition (abs(hash(group)) % partitions, as Kafka computes it). v4+ batch keys. A
// sidecar names itself for every group and forwards the group's requests to the
// coordinator when that is another proxy.
//
// Authorization: DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED) or transactional
// id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED). The coordinator is named by its address
// on the listener the client connected on.
//
// A transactional id's coordinator (key type 1) is the proxy holding the lease of its
// __transaction_state partition, found the same way (transactions.go).
//
// Differences from Kafka: share coordinators do not exist yet; asking for one gets
// COORDINATOR_NOT_AVAILABLE with a message that says so.

import (
	"context"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
)

func (p *Proxy) findCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		resp.Coordinators = append(resp.Coordinators, p.findOne(ctx, req.CoordinatorType, key))
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	return resp, nil
}

func (p *Proxy) findOne(ctx context.Context, kind int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key, c.NodeID = key, -1
	switch {
	case kind == 0 && !p.allowed(ctx, acl.Describe, acl.Group, key):
		c.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return c
	case kind == 1 && !p.allowed(ctx, acl.Describe, acl.TransactionalID, key):
		c.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return c
	case kind > 1:
		c.ErrorCode = kerr.CoordinatorNotAvailable.Code
		c.ErrorMessage = kmsg.StringPtr("Strait has no share coordinators yet")
		return c
	case key == "" && kind == 0:
		c.ErrorCode = kerr.InvalidGroupID.Code
		return c
	case key == "":
		c.ErrorCode = kerr.InvalidRequest.Code
		return c
	}
	owner, code := p.coordinatorOf(key)
	if kind == 1 {
		owner, code = p.txnCoordinatorOf(key)
	}
	if p.cfg.Mode == Sidecar {
		owner, code = p.self(), 0
	}
	addr, ok := owner.AdvertisedAddr(listenerOf(ctx))
	if code == 0 && !ok {
		code = kerr.CoordinatorNotAvailable.Code // the coordinator has no such listener
	}
	if code != 0 {
		c.ErrorCode = code
		return c
	}
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.ParseInt(port, 10, 32)
	if err != nil || perr != nil {
		c.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return c
	}
	c.NodeID, c.Host, c.Port = owner.ID, host, int32(n)
	return c
}
