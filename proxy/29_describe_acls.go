package proxy

// DescribeAcls, versions 0 to 3.
//
// Lists the bindings the filter selects (ANY and MATCH as in Kafka), grouped by
// resource. Authorization: DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED).
// Bindings are read from this proxy's routing view, which follows the Store within
// a second of any change.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) describeACLs(ctx context.Context, req *kmsg.DescribeACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if !p.allowed(ctx, acl.Describe, acl.Cluster, acl.ClusterName) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	f := acl.Filter{ResourceType: req.ResourceType, ResourceName: req.ResourceName, PatternType: req.ResourcePatternType,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType}
	if req.Version == 0 {
		f.PatternType = acl.Literal // v0 predates prefixed patterns (KIP-290)
	}
	if err := f.Validate(); err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, errorMessage(err)
		return resp, nil
	}
	index := map[[3]string]int{}
	for _, stored := range p.view.Snapshot().ACLs {
		b := BindingOf(stored)
		if !f.Matches(b) {
			continue
		}
		key := [3]string{b.ResourceType.String(), b.ResourceName, b.PatternType.String()}
		i, ok := index[key]
		if !ok {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			resp.Resources = append(resp.Resources, r)
			i = len(resp.Resources) - 1
			index[key] = i
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host, a.Operation, a.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, a)
	}
	return resp, nil
}

// BindingOf is a stored ACL as the authorizer reads it.
func BindingOf(a routing.ACL) acl.Binding {
	return acl.Binding{ResourceType: acl.ResourceType(a.ResourceType), ResourceName: a.ResourceName,
		PatternType: acl.PatternType(a.PatternType), Principal: a.Principal, Host: a.Host,
		Operation: acl.Operation(a.Operation), Permission: acl.Permission(a.Permission)}
}

// storedACL is a binding as the Store keeps it.
func storedACL(b acl.Binding) routing.ACL {
	return routing.ACL{ResourceType: int8(b.ResourceType), ResourceName: b.ResourceName, PatternType: int8(b.PatternType),
		Principal: b.Principal, Host: b.Host, Operation: int8(b.Operation), Permission: int8(b.Permission)}
}
