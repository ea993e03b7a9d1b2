package proxy

// DeleteAcls, versions 0 to 3.
//
// Deletes the bindings each filter selects and lists them in the filter's result.
// Authorization: ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/authz"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) deleteACLs(ctx context.Context, req *kmsg.DeleteACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	if !p.allowed(ctx, acl.Alter, acl.Cluster, acl.ClusterName) {
		for i := range resp.Results {
			resp.Results[i].ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		return resp, nil
	}
	snap := p.view.Snapshot()
	deletedAny := false
	for i, rf := range req.Filters {
		f := acl.Filter{ResourceType: rf.ResourceType, ResourceName: rf.ResourceName, PatternType: rf.ResourcePatternType,
			Principal: rf.Principal, Host: rf.Host, Operation: rf.Operation, Permission: rf.PermissionType}
		if req.Version == 0 {
			f.PatternType = acl.Literal
		}
		if err := f.Validate(); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.InvalidRequest.Code, errorMessage(err)
			continue
		}
		var matching []routing.ACL
		for _, stored := range snap.ACLs {
			if f.Matches(BindingOf(stored)) {
				matching = append(matching, stored)
			}
		}
		deleted, err := p.store.DeleteACLs(ctx, matching)
		if err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = adminErrorCode(err), errorMessage(err)
			continue
		}
		deletedAny = deletedAny || len(deleted) > 0
		for _, d := range deleted {
			b := BindingOf(d)
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
		}
	}
	if deletedAny {
		principal, _, addr := authz.Who(ctx)
		p.logger.InfoContext(ctx, "audit: ACLs deleted", "principal", principal, "client", addr)
	}
	p.refreshAfter(ctx, deletedAny, "deleting ACLs")
	return resp, nil
}
