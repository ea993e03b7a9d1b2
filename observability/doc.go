// Package observability sets up, in one place, everything a Strait process uses to be
// watched: its logger, its OpenTelemetry metrics and traces, and its admin HTTP server.
//
// It is the bottom layer: it imports no other Strait package, holds no package-global
// state and never sets OpenTelemetry globals, so two processes' worth of telemetry (as
// in tests, or `strait dev`) can live side by side.
//
//	           ┌──────────── Telemetry ──────────────┐
//	Kafka req ─► ObserveRequest ─► span  ─► TracerProvider ─► exporter (Tracing: OTLP,
//	           │      ▲          │            (no-op when off)  console; none by default)
//	           │ AnnotateRequest └► metrics ─► MeterProvider ─► Prometheus exporter
//	           │ StartChild                      ▲
//	           │ Observe{Partitions,Cluster,Groups,Listener,...}: gauges read at scrape
//	           └──────────────────────────────────────┬─────┘
//	                                                  ▼ own prometheus.Registry
//	AdminServer: /metrics  /healthz  /readyz  /debug/pprof/  /v1/... (HandleJSON)
//
// Tracing is configured by the standard OpenTelemetry environment variables, which the
// fields of [Tracing] override; with no exporter named the tracer provider is the no-op
// one, so spans cost nothing. Spans below a request's are started with [StartChild],
// which does nothing (and allocates nothing) unless the request's span is recorded.
//
// Logs join traces through the handler built by [NewLogger]: a record logged with a
// context that carries a valid span gets trace_id and span_id attributes, and one
// logged while serving a request names its client.
//
// See the package example for how a process wires these together.
package observability
