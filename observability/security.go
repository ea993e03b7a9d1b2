package observability

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// SecurityMetrics counts what audit logs report: failed authentications and
// operations the authorizer denied. A nil *SecurityMetrics counts nothing.
type SecurityMetrics struct {
	tier         attribute.KeyValue
	authFailures metric.Int64Counter
	denials      metric.Int64Counter
}

// SecurityMetrics makes the counters strait.auth.failures and strait.authz.denials
// of a tier.
func (t *Telemetry) SecurityMetrics(tier string) (*SecurityMetrics, error) {
	m := t.Meter("github.com/strait-io/strait/observability")
	failures, err := m.Int64Counter("strait.auth.failures",
		metric.WithDescription("Failed authentications: TLS handshakes and SASL exchanges refused, by listener and mechanism."),
		metric.WithUnit("{failure}"))
	if err != nil {
		return nil, fmt.Errorf("create strait.auth.failures: %w", err)
	}
	denials, err := m.Int64Counter("strait.authz.denials",
		metric.WithDescription("Operations the authorizer denied, by operation and resource type."),
		metric.WithUnit("{denial}"))
	if err != nil {
		return nil, fmt.Errorf("create strait.authz.denials: %w", err)
	}
	return &SecurityMetrics{tier: attribute.String(TierAttr, tier), authFailures: failures, denials: denials}, nil
}

// AuthFailed counts one failed authentication.
func (m *SecurityMetrics) AuthFailed(ctx context.Context, listener, mechanism string) {
	if m == nil {
		return
	}
	m.authFailures.Add(ctx, 1, metric.WithAttributes(m.tier, attribute.String("listener", listener), attribute.String("mechanism", mechanism)))
}

// Denied counts one denied operation.
func (m *SecurityMetrics) Denied(ctx context.Context, operation, resourceType string) {
	if m == nil {
		return
	}
	m.denials.Add(ctx, 1, metric.WithAttributes(m.tier, attribute.String("operation", operation), attribute.String("resource_type", resourceType)))
}
