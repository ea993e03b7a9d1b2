package proxy

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strait-io/strait/internal/acl"
	"github.com/strait-io/strait/internal/authz"
)

// Authorization. Every handler asks in one place whether the request's principal may
// do what it asks, as Kafka's KafkaApis does per API: cluster-wide APIs once, topic
// APIs per topic or partition before the forwarding engine sends anything
// (TOPIC_AUTHORIZATION_FAILED for the parts refused), group APIs per group
// (GROUP_AUTHORIZATION_FAILED). What a principal may not describe it does not see:
// Metadata leaves such topics out when listing all of them. Package authz says who
// asks, and audits denials.

// Authorizer decides requests; *acl.Authorizer satisfies it. A proxy without one
// allows everything.
type Authorizer = authz.Decider

// Denials hears of every denied operation, for metrics; nil hears nothing.
type Denials = authz.Denials

// allowed decides whether the request's principal may perform op on a resource, and
// writes an audit line when it may not.
func (p *Proxy) allowed(ctx context.Context, op acl.Operation, rt acl.ResourceType, name string) bool {
	return p.authz.Allowed(ctx, op, rt, name)
}

// allowedAny decides whether the principal may perform op on some resource of type rt.
func (p *Proxy) allowedAny(ctx context.Context, op acl.Operation, rt acl.ResourceType) bool {
	return p.authz.AllowedAny(ctx, op, rt)
}

// allowedQuietly decides without an audit line (Metadata's filtering).
func (p *Proxy) allowedQuietly(ctx context.Context, op acl.Operation, rt acl.ResourceType, name string) bool {
	return p.authz.AllowedQuietly(ctx, op, rt, name)
}

// authorizedParts answers the parts whose topic the principal may not op with
// TOPIC_AUTHORIZATION_FAILED and returns the others, for the engine to send.
func authorizedParts[In, Out any](ctx context.Context, p *Proxy, a adapter[In, Out], op acl.Operation, parts []*part[In, Out]) []*part[In, Out] {
	denied := p.authz.DeniedTopics(ctx, op, func(yield func(string) bool) {
		for _, pt := range parts {
			if !yield(pt.topic) {
				return
			}
		}
	})
	if denied == nil {
		return parts
	}
	kept := parts[:0]
	for _, pt := range parts {
		if !denied[pt.topic] {
			kept = append(kept, pt)
			continue
		}
		a.fail(pt.out, kerr.TopicAuthorizationFailed.Code, nil)
	}
	return kept
}

// deniedTopicsOf returns the topics named by items that the principal may not op, or nil.
func deniedTopicsOf[T any](ctx context.Context, p *Proxy, op acl.Operation, items []T, topic func(T) string) map[string]bool {
	return p.authz.DeniedTopics(ctx, op, func(yield func(string) bool) {
		for _, it := range items {
			if !yield(topic(it)) {
				return
			}
		}
	})
}
