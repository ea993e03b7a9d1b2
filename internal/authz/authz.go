// Package authz applies the cluster's ACLs (package acl) to Kafka requests, the same
// way wherever a request is answered: by a proxy, or by a node a client talks to
// directly (redirect mode).
//
// Who asks is the request's origin (wire.Origin): the connection's own principal, or,
// for a request a node relayed or a proxy forwarded over an internal connection, the
// client's (wire trusts that only from internal peers). A request with no principal
// comes from Strait itself (`strait dev` calls in process, replication, the group and
// transaction coordinators) and is allowed. Every denial is written as an audit line
// with the principal and client address, and counted.
package authz

import (
	"context"
	"log/slog"
	"net"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

// Decider decides requests; *acl.Authorizer is one.
type Decider interface {
	Authorize(principal, host string, op acl.Operation, rt acl.ResourceType, name string) acl.Decision
	AuthorizeAny(principal, host string, op acl.Operation, rt acl.ResourceType) acl.Decision
}

// Denials hears of every denied operation, for metrics.
type Denials func(ctx context.Context, operation, resourceType string)

// Enforcer decides requests with a Decider and audits what it denies. A nil Enforcer,
// or one without a Decider, allows everything.
type Enforcer struct {
	decider Decider
	logger  *slog.Logger
	denials Denials
}

// New returns an Enforcer; nil when decider is nil (ACLs are not enforced).
func New(decider Decider, denials Denials, logger *slog.Logger) *Enforcer {
	if decider == nil {
		return nil
	}
	return &Enforcer{decider: decider, logger: logger, denials: denials}
}

// On reports whether ACLs are enforced.
func (e *Enforcer) On() bool { return e != nil }

// Who is the principal, host and address (host:port) of the client whose request ctx
// carries.
func Who(ctx context.Context) (principal, host, addr string) {
	o, _ := wire.OriginFrom(ctx)
	host, _, err := net.SplitHostPort(o.ClientAddr)
	if err != nil {
		host = o.ClientAddr
	}
	return o.Principal, host, o.ClientAddr
}

// Allowed decides whether the request's principal may perform op on a resource, and
// writes an audit line when it may not.
func (e *Enforcer) Allowed(ctx context.Context, op acl.Operation, rt acl.ResourceType, name string) bool {
	if e == nil {
		return true
	}
	principal, host, addr := Who(ctx)
	if principal == "" {
		return true
	}
	d := e.decider.Authorize(principal, host, op, rt, name)
	if !d.Allowed {
		e.denied(ctx, principal, addr, op, rt, name, d.Reason)
	}
	return d.Allowed
}

// AllowedAny decides whether the principal may perform op on some resource of type rt.
func (e *Enforcer) AllowedAny(ctx context.Context, op acl.Operation, rt acl.ResourceType) bool {
	if e == nil {
		return true
	}
	principal, host, addr := Who(ctx)
	if principal == "" {
		return true
	}
	d := e.decider.AuthorizeAny(principal, host, op, rt)
	if !d.Allowed {
		e.denied(ctx, principal, addr, op, rt, "*", d.Reason)
	}
	return d.Allowed
}

// AllowedQuietly decides without an audit line: Metadata filters what a principal may
// not see, which is no attempt to use it.
func (e *Enforcer) AllowedQuietly(ctx context.Context, op acl.Operation, rt acl.ResourceType, name string) bool {
	if e == nil {
		return true
	}
	principal, host, _ := Who(ctx)
	return principal == "" || e.decider.Authorize(principal, host, op, rt, name).Allowed
}

// DeniedTopics returns the topics of names the principal may not op, or nil; each is
// decided (and audited) once however often it occurs.
func (e *Enforcer) DeniedTopics(ctx context.Context, op acl.Operation, names func(yield func(string) bool)) map[string]bool {
	if e == nil {
		return nil
	}
	var denied map[string]bool
	decided := map[string]bool{}
	for name := range names {
		if decided[name] {
			continue
		}
		decided[name] = true
		if !e.Allowed(ctx, op, acl.Topic, name) {
			if denied == nil {
				denied = map[string]bool{}
			}
			denied[name] = true
		}
	}
	return denied
}

func (e *Enforcer) denied(ctx context.Context, principal, addr string, op acl.Operation, rt acl.ResourceType, name, reason string) {
	e.logger.InfoContext(ctx, "audit: operation denied; grant it with CreateAcls (kafka-acls --add) if it should be allowed",
		"principal", principal, "client", addr, "operation", op.String(), "resource_type", rt.String(), "resource", name, "reason", reason)
	if e.denials != nil {
		e.denials(ctx, op.String(), rt.String())
	}
}
