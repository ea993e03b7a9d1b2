package observability

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys that join a log line to its trace. They match the names most log
// backends (Loki, Elasticsearch, Cloud Logging) look for when linking to a trace.
const (
	TraceIDKey = "trace_id"
	SpanIDKey  = "span_id"
)

// Log attribute keys that name the client of the request a log line is about.
const (
	ClientIDKey   = "client_id"
	ClientAddrKey = "client_addr"
)

// NewLogger builds the process logger: format "text" or "json", to w, at level. Its
// handler adds trace_id and span_id attributes when the record's context carries a valid
// span, and client_id and client_addr when it serves a request (ObserveRequestFrom), so
// `logger.InfoContext(ctx, ...)` in a request handler is correlated with its trace and
// names the real client. An unknown format is an error.
func NewLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("observability: log format %q: want \"text\" or \"json\"", format)
	}
	return slog.New(&traceHandler{base: h, inner: h}), nil
}

// DiscardLogger returns a logger that drops everything (for tests and nil defaults).
func DiscardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// traceHandler adds the span of a record's context, and the client it serves, to the
// record.
//
// Attributes added to a record land inside whatever groups the logger has opened, and a
// backend looks for trace_id at the top level. So while no group is open the handler adds
// the ids to the record (the common, cheap path), and once one is open it keeps the base
// handler and the chain of WithAttrs/WithGroup calls, and rebuilds the chain on top of a
// base that already carries the ids.
type traceHandler struct {
	base  slog.Handler                      // the format handler, without attrs or groups
	inner slog.Handler                      // base with every step applied
	steps []func(slog.Handler) slog.Handler // WithAttrs/WithGroup calls, in order
	group bool                              // whether any step opened a group
}

func (h *traceHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	ids := contextAttrs(ctx)
	if len(ids) == 0 {
		return h.inner.Handle(ctx, r)
	}
	if !h.group {
		r.AddAttrs(ids...)
		return h.inner.Handle(ctx, r)
	}
	return h.rebuild(h.base.WithAttrs(ids)).Handle(ctx, r)
}

// contextAttrs are what a record's context tells of it: its span and its client.
func contextAttrs(ctx context.Context) []slog.Attr {
	var attrs []slog.Attr
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, slog.String(TraceIDKey, sc.TraceID().String()), slog.String(SpanIDKey, sc.SpanID().String()))
	}
	if r := requestOf(ctx); r != nil {
		o := r.origin
		if o.ClientID != "" {
			attrs = append(attrs, slog.String(ClientIDKey, o.ClientID))
		}
		if o.ClientAddr != "" {
			attrs = append(attrs, slog.String(ClientAddrKey, o.ClientAddr))
		}
	}
	return attrs
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(func(next slog.Handler) slog.Handler { return next.WithAttrs(attrs) }, false)
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(func(next slog.Handler) slog.Handler { return next.WithGroup(name) }, true)
}

// with returns a copy of h with one more step; the copy never shares h's steps array.
func (h *traceHandler) with(step func(slog.Handler) slog.Handler, opensGroup bool) *traceHandler {
	steps := append(h.steps[:len(h.steps):len(h.steps)], step)
	return &traceHandler{
		base:  h.base,
		inner: step(h.inner),
		steps: steps,
		group: h.group || opensGroup,
	}
}

// rebuild applies h's steps on top of base.
func (h *traceHandler) rebuild(base slog.Handler) slog.Handler {
	for _, step := range h.steps {
		base = step(base)
	}
	return base
}
