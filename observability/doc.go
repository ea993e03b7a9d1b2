// Package observability sets up, in one place, everything a Strait process uses to be
// watched: its logger, its OpenTelemetry metrics and traces, and its admin HTTP server.
//
// It is the bottom layer: it imports no other Strait package, holds no package-global
// state and never sets OpenTelemetry globals, so two processes' worth of telemetry (as
// in tests, or `strait dev`) can live side by side.
//
//	           ┌──────────── Telemetry ─────────────┐
//	Kafka req ─► ObserveRequest ─► span  ─► TracerProvider ─► (OTLP exporter: later)
//	           │                 └► metrics ─► MeterProvider ─► Prometheus exporter
//	           └──────────────────────────────────────┬─────┘
//	                                                  ▼ own prometheus.Registry
//	AdminServer: /metrics  /healthz  /readyz  /debug/pprof/
//
// Logs join traces through the handler built by [NewLogger]: a record logged with a
// context that carries a valid span gets trace_id and span_id attributes.
//
// See the package example for how a process wires these together.
package observability
