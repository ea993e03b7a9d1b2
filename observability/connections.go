package observability

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ListenerStats is what a Kafka listener reports about its connections and the memory
// they hold: counts since it started, and gauges now. cmd/strait fills it from
// internal/wire's ServerStats, as this package imports no other Strait package.
type ListenerStats struct {
	OpenConnections  int64
	HeldBytes        int64 // requests read or being read, and answers not yet written
	InFlightRequests int64 // requests read and not yet answered
	// Times a connection stopped reading: it had as many requests in flight as it may
	// (--max-inflight-requests-per-connection), or as many bytes
	// (--max-inflight-bytes-per-connection), or the memory budget was spent.
	PausedInFlightRequests int64
	PausedInFlightBytes    int64
	PausedMemoryBudget     int64
	// Connections the listener closed: idle, a request not received in time, answers
	// not taken in time, a malformed or oversized request, and those it refused on
	// accept because it served --max-connections.
	ClosedIdle           int64
	ClosedReadTimeout    int64
	ClosedWriteTimeout   int64
	ClosedBadRequest     int64
	ClosedMaxConnections int64
}

// UpstreamStats is what a pool of connections to other Strait processes reports.
type UpstreamStats struct {
	Conns      map[string]int // open connections per peer address
	Dials      int64
	DialErrors int64
}

// MemoryBudgetStats is what a process's memory budget for requests and answers reports.
type MemoryBudgetStats struct {
	Limit int64
	Used  int64 // may pass Limit, by answers and by one request per otherwise empty connection
	Waits int64 // times a reader waited for it
}

// Label keys of the connection metrics.
const (
	listenerLabel = "listener"
	reasonLabel   = "reason"
	peerLabel     = "peer"
)

// connInstruments are the asynchronous instruments ObserveListener and ObserveMemoryBudget
// report through, created once per Telemetry.
type connInstruments struct {
	open, held, inFlight    metric.Int64ObservableUpDownCounter
	closed, pauses          metric.Int64ObservableCounter
	budgetLimit, budgetUsed metric.Int64ObservableGauge
	budgetWaits             metric.Int64ObservableCounter
	upstream                metric.Int64ObservableUpDownCounter
	dials, dialErrors       metric.Int64ObservableCounter
}

func newConnInstruments(m metric.Meter) (connInstruments, error) {
	var ci connInstruments
	var err error
	wrap := func(name string, err error) error { return fmt.Errorf("observability: create %s: %w", name, err) }
	if ci.open, err = m.Int64ObservableUpDownCounter("strait.connections.open",
		metric.WithDescription("Kafka connections open, by tier and listener."),
		metric.WithUnit("{connection}")); err != nil {
		return ci, wrap("strait.connections.open", err)
	}
	if ci.held, err = m.Int64ObservableUpDownCounter("strait.connections.held",
		metric.WithDescription("Bytes Kafka connections hold: requests read or being read, what decoding them may allocate, answers not yet written."),
		metric.WithUnit("By")); err != nil {
		return ci, wrap("strait.connections.held", err)
	}
	if ci.inFlight, err = m.Int64ObservableUpDownCounter("strait.connections.inflight_requests",
		metric.WithDescription("Kafka requests read and not yet answered, on all connections of a listener."),
		metric.WithUnit("{request}")); err != nil {
		return ci, wrap("strait.connections.inflight_requests", err)
	}
	if ci.closed, err = m.Int64ObservableCounter("strait.connections.closed",
		metric.WithDescription("Kafka connections the server closed, by reason: idle, request_read_timeout, write_timeout, bad_request, max_connections (refused on accept)."),
		metric.WithUnit("{connection}")); err != nil {
		return ci, wrap("strait.connections.closed", err)
	}
	if ci.pauses, err = m.Int64ObservableCounter("strait.connections.read_pauses",
		metric.WithDescription("Times a Kafka connection stopped being read, by reason: max_inflight_requests, max_inflight_bytes, memory_budget."),
		metric.WithUnit("{pause}")); err != nil {
		return ci, wrap("strait.connections.read_pauses", err)
	}
	if ci.upstream, err = m.Int64ObservableUpDownCounter("strait.upstream.connections",
		metric.WithDescription("Internal connections open to other Strait processes, by peer address."),
		metric.WithUnit("{connection}")); err != nil {
		return ci, wrap("strait.upstream.connections", err)
	}
	if ci.dials, err = m.Int64ObservableCounter("strait.upstream.dials",
		metric.WithDescription("Internal connections dialed to other Strait processes."),
		metric.WithUnit("{connection}")); err != nil {
		return ci, wrap("strait.upstream.dials", err)
	}
	if ci.dialErrors, err = m.Int64ObservableCounter("strait.upstream.dial_errors",
		metric.WithDescription("Internal connections to other Strait processes that could not be dialed."),
		metric.WithUnit("{connection}")); err != nil {
		return ci, wrap("strait.upstream.dial_errors", err)
	}
	if ci.budgetLimit, err = m.Int64ObservableGauge("strait.memory_budget.limit",
		metric.WithDescription("The process's memory budget for requests read and answers not yet written."),
		metric.WithUnit("By")); err != nil {
		return ci, wrap("strait.memory_budget.limit", err)
	}
	if ci.budgetUsed, err = m.Int64ObservableGauge("strait.memory_budget.used",
		metric.WithDescription("Bytes of the memory budget held now; may pass the limit (see --memory-budget)."),
		metric.WithUnit("By")); err != nil {
		return ci, wrap("strait.memory_budget.used", err)
	}
	if ci.budgetWaits, err = m.Int64ObservableCounter("strait.memory_budget.waits",
		metric.WithDescription("Times a connection waited for the memory budget before reading more."),
		metric.WithUnit("{wait}")); err != nil {
		return ci, wrap("strait.memory_budget.waits", err)
	}
	return ci, nil
}

// ObserveListener reports a Kafka listener's connections as metrics, reading stats at
// each collection: strait.connections.open, .held, .inflight_requests, .closed and
// .read_pauses (by reason), labelled with the tier and the listener's name (e.g.
// "proxy", "node-1"), which tells apart the listeners of one process (`strait dev`).
func (t *Telemetry) ObserveListener(tier, listener string, stats func() ListenerStats) error {
	ci := &t.conns
	labels := []attribute.KeyValue{attribute.String(tierLabel, tier), attribute.String(listenerLabel, listener)}
	both := metric.WithAttributeSet(attribute.NewSet(labels...))
	reason := func(r string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(append(labels[:len(labels):len(labels)], attribute.String(reasonLabel, r))...))
	}
	idle, readTimeout, writeTimeout, badRequest := reason("idle"), reason("request_read_timeout"), reason("write_timeout"), reason("bad_request")
	maxConns, maxRequests, maxBytes, budget := reason("max_connections"), reason("max_inflight_requests"), reason("max_inflight_bytes"), reason("memory_budget")
	_, err := t.Meter(instrumentationName).RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := stats()
		o.ObserveInt64(ci.open, s.OpenConnections, both)
		o.ObserveInt64(ci.held, s.HeldBytes, both)
		o.ObserveInt64(ci.inFlight, s.InFlightRequests, both)
		o.ObserveInt64(ci.pauses, s.PausedInFlightRequests, maxRequests)
		o.ObserveInt64(ci.pauses, s.PausedInFlightBytes, maxBytes)
		o.ObserveInt64(ci.pauses, s.PausedMemoryBudget, budget)
		o.ObserveInt64(ci.closed, s.ClosedIdle, idle)
		o.ObserveInt64(ci.closed, s.ClosedReadTimeout, readTimeout)
		o.ObserveInt64(ci.closed, s.ClosedWriteTimeout, writeTimeout)
		o.ObserveInt64(ci.closed, s.ClosedBadRequest, badRequest)
		o.ObserveInt64(ci.closed, s.ClosedMaxConnections, maxConns)
		return nil
	}, ci.open, ci.held, ci.inFlight, ci.pauses, ci.closed)
	if err != nil {
		return fmt.Errorf("observability: observe listener %s: %w", listener, err)
	}
	return nil
}

// ObserveMemoryBudget reports the process's memory budget as metrics, reading stats at
// each collection: strait.memory_budget.limit, .used and .waits.
func (t *Telemetry) ObserveMemoryBudget(stats func() MemoryBudgetStats) error {
	ci := &t.conns
	_, err := t.Meter(instrumentationName).RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := stats()
		o.ObserveInt64(ci.budgetLimit, s.Limit)
		o.ObserveInt64(ci.budgetUsed, s.Used)
		o.ObserveInt64(ci.budgetWaits, s.Waits)
		return nil
	}, ci.budgetLimit, ci.budgetUsed, ci.budgetWaits)
	if err != nil {
		return fmt.Errorf("observability: observe memory budget: %w", err)
	}
	return nil
}

// ObserveUpstream reports a pool of internal connections (a proxy's to the nodes) as
// metrics, reading stats at each collection: strait.upstream.connections by peer
// address, and strait.upstream.dials and .dial_errors, labelled with the tier.
func (t *Telemetry) ObserveUpstream(tier string, stats func() UpstreamStats) error {
	ci := &t.conns
	tierLabelled := attribute.String(tierLabel, tier)
	tierOnly := metric.WithAttributeSet(attribute.NewSet(tierLabelled))
	_, err := t.Meter(instrumentationName).RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := stats()
		for peer, n := range s.Conns {
			o.ObserveInt64(ci.upstream, int64(n), metric.WithAttributes(tierLabelled, attribute.String(peerLabel, peer)))
		}
		o.ObserveInt64(ci.dials, s.Dials, tierOnly)
		o.ObserveInt64(ci.dialErrors, s.DialErrors, tierOnly)
		return nil
	}, ci.upstream, ci.dials, ci.dialErrors)
	if err != nil {
		return fmt.Errorf("observability: observe upstream connections: %w", err)
	}
	return nil
}
