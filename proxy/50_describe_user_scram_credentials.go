package proxy

// DescribeUserScramCredentials, version 0 (KIP-554).
//
// Lists each user's SCRAM mechanisms and iterations, never the keys. No users named
// (null) means every user; an unknown user is RESOURCE_NOT_FOUND. Authorization:
// DESCRIBE on the cluster.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire/sasl"
)

func (p *Proxy) describeUserScramCredentials(ctx context.Context, req *kmsg.DescribeUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !p.allowed(ctx, acl.Describe, acl.Cluster, acl.ClusterName) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	creds, err := p.store.ScramCredentials(ctx)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = adminErrorCode(err), errorMessage(err)
		return resp, nil
	}
	byUser := map[string][]kmsg.DescribeUserSCRAMCredentialsResponseResultCredentialInfo{}
	var users []string
	for _, c := range creds {
		if _, ok := byUser[c.User]; !ok {
			users = append(users, c.User)
		}
		info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
		info.Mechanism, info.Iterations = scramMechanismCode(c.Mechanism), int32(c.Iterations)
		byUser[c.User] = append(byUser[c.User], info)
	}
	if req.Users != nil {
		users = users[:0]
		for _, u := range req.Users {
			users = append(users, u.Name)
		}
	}
	for _, u := range users {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User, r.CredentialInfos = u, byUser[u]
		if len(r.CredentialInfos) == 0 {
			r.ErrorCode = kerr.ResourceNotFound.Code
			r.ErrorMessage = kmsg.StringPtr("no SCRAM credentials for user " + u)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// SCRAM mechanisms as KIP-554 numbers them.
func scramMechanismCode(name string) int8 {
	switch name {
	case sasl.ScramSHA256:
		return 1
	case sasl.ScramSHA512:
		return 2
	}
	return 0
}

func scramMechanismName(code int8) (string, bool) {
	switch code {
	case 1:
		return sasl.ScramSHA256, true
	case 2:
		return sasl.ScramSHA512, true
	}
	return "", false
}
