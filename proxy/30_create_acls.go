package proxy

// CreateAcls, versions 0 to 3.
//
// Stores each valid binding (INVALID_REQUEST for one naming ANY, MATCH, or a
// principal not of the form Type:name). Every proxy applies them once its routing view
// refreshes, which a Store change triggers at once (pub/sub). Authorization: ALTER on
// the cluster (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/authz"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) createACLs(ctx context.Context, req *kmsg.CreateACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	if !p.allowed(ctx, acl.Alter, acl.Cluster, acl.ClusterName) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		return resp, nil
	}
	var valid []routing.ACL
	var at []int
	for i, c := range req.Creations {
		b := acl.Binding{ResourceType: c.ResourceType, ResourceName: c.ResourceName, PatternType: c.ResourcePatternType,
			Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType}
		if req.Version == 0 {
			b.PatternType = acl.Literal
		}
		if err := b.Validate(); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.InvalidRequest.Code, errorMessage(err)
			continue
		}
		valid, at = append(valid, storedACL(b)), append(at, i)
	}
	if err := p.store.CreateACLs(ctx, valid); err != nil {
		p.logger.WarnContext(ctx, "storing ACLs failed", "err", err)
		for _, i := range at {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = adminErrorCode(err), errorMessage(err)
		}
		return resp, nil
	}
	principal, _, addr := authz.Who(ctx)
	p.logger.InfoContext(ctx, "audit: ACLs created", "principal", principal, "client", addr, "count", len(valid))
	p.refreshAfter(ctx, len(valid) > 0, "creating ACLs")
	return resp, nil
}
