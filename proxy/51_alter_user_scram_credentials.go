package proxy

// AlterUserScramCredentials, version 0 (KIP-554).
//
// Upserts store the salted keys derived from the salted password the client computed
// (the password never reaches the server); deletions remove one mechanism's
// credential (RESOURCE_NOT_FOUND if there is none). A user named twice in one request
// is DUPLICATE_RESOURCE; iterations outside 4096..16384 UNACCEPTABLE_CREDENTIAL.
// Authorization: ALTER on the cluster.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/authz"
	"github.com/strait-io/strait/internal/wire/sasl"
	"github.com/strait-io/strait/routing"
)

func (p *Proxy) alterUserScramCredentials(ctx context.Context, req *kmsg.AlterUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	seen := map[string]int{}
	for _, d := range req.Deletions {
		seen[d.Name]++
	}
	for _, u := range req.Upsertions {
		seen[u.Name]++
	}
	result := func(user string, code int16, msg string) {
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User, r.ErrorCode = user, code
		if msg != "" {
			r.ErrorMessage = &msg
		}
		resp.Results = append(resp.Results, r)
	}
	allowed := p.allowed(ctx, acl.Alter, acl.Cluster, acl.ClusterName)
	check := func(user string, mech int8) (string, bool) {
		name, ok := scramMechanismName(mech)
		switch {
		case !allowed:
			result(user, kerr.ClusterAuthorizationFailed.Code, "")
		case seen[user] > 1:
			result(user, kerr.DuplicateResource.Code, "the user is named more than once in the request")
		case user == "":
			result(user, kerr.UnacceptableCredential.Code, "empty user name")
		case !ok:
			result(user, kerr.UnsupportedSaslMechanism.Code, "unknown SCRAM mechanism")
		default:
			return name, true
		}
		return "", false
	}
	for _, d := range req.Deletions {
		mech, ok := check(d.Name, d.Mechanism)
		if !ok {
			continue
		}
		err := p.store.DeleteScramCredential(ctx, d.Name, mech)
		switch {
		case errors.Is(err, routing.ErrUnknownCredential):
			result(d.Name, kerr.ResourceNotFound.Code, "no "+mech+" credential for the user")
		case err != nil:
			result(d.Name, adminErrorCode(err), err.Error())
		default:
			result(d.Name, 0, "")
		}
	}
	for _, u := range req.Upsertions {
		mech, ok := check(u.Name, u.Mechanism)
		if !ok {
			continue
		}
		cred, err := sasl.CredentialFromSaltedPassword(mech, u.Salt, u.SaltedPassword, int(u.Iterations))
		if err != nil {
			result(u.Name, kerr.UnacceptableCredential.Code, err.Error())
			continue
		}
		err = p.store.PutScramCredential(ctx, routing.ScramCredential{User: u.Name, Mechanism: mech,
			Salt: cred.Salt, StoredKey: cred.StoredKey, ServerKey: cred.ServerKey, Iterations: cred.Iterations})
		if err != nil {
			result(u.Name, adminErrorCode(err), err.Error())
			continue
		}
		result(u.Name, 0, "")
	}
	if allowed && len(resp.Results) > 0 {
		principal, _, addr := authz.Who(ctx)
		p.logger.InfoContext(ctx, "audit: SCRAM credentials altered", "principal", principal, "client", addr,
			"upsertions", len(req.Upsertions), "deletions", len(req.Deletions))
	}
	return resp, nil
}
