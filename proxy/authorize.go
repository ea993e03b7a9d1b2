package proxy

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/wire"
)

// Authorization. Every handler asks in one place whether the request's principal may
// do what it asks, as Kafka's KafkaApis does per API: cluster-wide APIs once, topic
// APIs per topic or partition before the forwarding engine sends anything
// (TOPIC_AUTHORIZATION_FAILED for the parts refused), group APIs per group
// (GROUP_AUTHORIZATION_FAILED). What a principal may not describe it does not see:
// Metadata leaves such topics out when listing all of them.
//
// The principal is the request's origin's: the connection's own, or, for a request a
// node relayed or another proxy forwarded over an internal connection, the client's
// (wire trusts that only from internal peers). A request with no principal comes from
// this process itself (`strait dev` calls in process) and is allowed.

// Authorizer decides requests; *acl.Authorizer satisfies it. A proxy without one
// allows everything.
type Authorizer interface {
	Authorize(principal, host string, op acl.Operation, rt acl.ResourceType, name string) acl.Decision
	AuthorizeAny(principal, host string, op acl.Operation, rt acl.ResourceType) acl.Decision
}

// Denials hears of every denied operation, for metrics; nil hears nothing.
type Denials func(ctx context.Context, operation, resourceType string)

// who is the principal and host of the request ctx carries.
func who(ctx context.Context) (principal, host, addr string) {
	o, _ := wire.OriginFrom(ctx)
	host, _, err := net.SplitHostPort(o.ClientAddr)
	if err != nil {
		host = o.ClientAddr
	}
	return o.Principal, host, o.ClientAddr
}

// allowed decides whether the request's principal may perform op on a resource, and
// writes an audit line when it may not.
func (p *Proxy) allowed(ctx context.Context, op acl.Operation, rt acl.ResourceType, name string) bool {
	if p.cfg.Authorizer == nil {
		return true
	}
	principal, host, addr := who(ctx)
	if principal == "" {
		return true
	}
	d := p.cfg.Authorizer.Authorize(principal, host, op, rt, name)
	if !d.Allowed {
		p.denied(ctx, principal, addr, op, rt, name, d.Reason)
	}
	return d.Allowed
}

// allowedAny decides whether the principal may perform op on some resource of type rt.
func (p *Proxy) allowedAny(ctx context.Context, op acl.Operation, rt acl.ResourceType) bool {
	if p.cfg.Authorizer == nil {
		return true
	}
	principal, host, addr := who(ctx)
	if principal == "" {
		return true
	}
	d := p.cfg.Authorizer.AuthorizeAny(principal, host, op, rt)
	if !d.Allowed {
		p.denied(ctx, principal, addr, op, rt, "*", d.Reason)
	}
	return d.Allowed
}

// allowedQuietly decides without an audit line: Metadata filters what a principal may
// not see, which is no attempt to use it.
func (p *Proxy) allowedQuietly(ctx context.Context, op acl.Operation, rt acl.ResourceType, name string) bool {
	if p.cfg.Authorizer == nil {
		return true
	}
	principal, host, _ := who(ctx)
	return principal == "" || p.cfg.Authorizer.Authorize(principal, host, op, rt, name).Allowed
}

func (p *Proxy) denied(ctx context.Context, principal, addr string, op acl.Operation, rt acl.ResourceType, name, reason string) {
	p.logger.InfoContext(ctx, "audit: operation denied; grant it with CreateAcls (kafka-acls --add) if it should be allowed",
		"principal", principal, "client", addr, "operation", op.String(), "resource_type", rt.String(), "resource", name, "reason", reason)
	if p.cfg.Denials != nil {
		p.cfg.Denials(ctx, op.String(), rt.String())
	}
}

// authorizedParts answers the parts whose topic the principal may not op with
// TOPIC_AUTHORIZATION_FAILED and returns the others, for the engine to send.
func authorizedParts[In, Out any](ctx context.Context, p *Proxy, a adapter[In, Out], op acl.Operation, parts []*part[In, Out]) []*part[In, Out] {
	if p.cfg.Authorizer == nil {
		return parts
	}
	decided := map[string]bool{}
	kept := parts[:0]
	for _, pt := range parts {
		ok, seen := decided[pt.topic]
		if !seen {
			ok = p.allowed(ctx, op, acl.Topic, pt.topic)
			decided[pt.topic] = ok
		}
		if ok {
			kept = append(kept, pt)
			continue
		}
		a.fail(pt.out, kerr.TopicAuthorizationFailed.Code, nil)
	}
	return kept
}

// deniedTopicsOf returns the topics named by items that the principal may not op, or nil.
func deniedTopicsOf[T any](ctx context.Context, p *Proxy, op acl.Operation, items []T, topic func(T) string) map[string]bool {
	if p.cfg.Authorizer == nil {
		return nil
	}
	var denied map[string]bool
	decided := map[string]bool{}
	for _, it := range items {
		name := topic(it)
		if _, seen := decided[name]; seen {
			continue
		}
		decided[name] = true
		if !p.allowed(ctx, op, acl.Topic, name) {
			if denied == nil {
				denied = map[string]bool{}
			}
			denied[name] = true
		}
	}
	return denied
}
