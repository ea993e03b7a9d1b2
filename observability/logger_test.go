package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

var (
	testTraceID = trace.TraceID{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10}
	testSpanID  = trace.SpanID{0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8}
)

func spanContext(t *testing.T) context.Context {
	t.Helper()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    testTraceID,
		SpanID:     testSpanID,
		TraceFlags: trace.FlagsSampled,
	})
	return trace.ContextWithSpanContext(context.Background(), sc)
}

// logJSON logs one line with log and returns it decoded.
func logJSON(t *testing.T, log func(*slog.Logger)) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	logger, err := NewLogger(&buf, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log(logger)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("decode %q: %v", buf.String(), err)
	}
	return line
}

func TestLoggerAddsTraceIDs(t *testing.T) {
	ctx := spanContext(t)
	line := logJSON(t, func(l *slog.Logger) { l.InfoContext(ctx, "hello", "k", "v") })
	if got, want := line[TraceIDKey], testTraceID.String(); got != want {
		t.Errorf("trace_id = %v, want %v", got, want)
	}
	if got, want := line[SpanIDKey], testSpanID.String(); got != want {
		t.Errorf("span_id = %v, want %v", got, want)
	}
	if line["k"] != "v" || line["msg"] != "hello" {
		t.Errorf("line lost its own fields: %v", line)
	}
}

func TestLoggerWithoutSpanHasNoTraceIDs(t *testing.T) {
	for name, ctx := range map[string]context.Context{
		"background": context.Background(),
		"invalid span": trace.ContextWithSpanContext(context.Background(),
			trace.NewSpanContext(trace.SpanContextConfig{})),
	} {
		t.Run(name, func(t *testing.T) {
			line := logJSON(t, func(l *slog.Logger) { l.InfoContext(ctx, "hello") })
			if _, ok := line[TraceIDKey]; ok {
				t.Errorf("unexpected trace_id in %v", line)
			}
			if _, ok := line[SpanIDKey]; ok {
				t.Errorf("unexpected span_id in %v", line)
			}
		})
	}
}

// Backends look for trace_id at the top level, so a logger with a group open must not
// nest the ids inside it.
func TestLoggerTraceIDsStayTopLevelUnderGroups(t *testing.T) {
	ctx := spanContext(t)
	line := logJSON(t, func(l *slog.Logger) {
		l.With("a", 1).WithGroup("req").With("b", 2).InfoContext(ctx, "hello", "c", 3)
	})
	if got, want := line[TraceIDKey], testTraceID.String(); got != want {
		t.Errorf("trace_id = %v, want %v in %v", got, want, line)
	}
	if line["a"] != 1.0 {
		t.Errorf("a = %v, want 1", line["a"])
	}
	req, _ := line["req"].(map[string]any)
	if req["b"] != 2.0 || req["c"] != 3.0 {
		t.Errorf("req = %v, want b=2 and c=3", req)
	}
	if _, nested := req[TraceIDKey]; nested {
		t.Errorf("trace_id nested in group: %v", req)
	}
}

func TestLoggerTextAndLevel(t *testing.T) {
	var buf bytes.Buffer
	logger, err := NewLogger(&buf, "text", slog.LevelWarn)
	if err != nil {
		t.Fatal(err)
	}
	logger.InfoContext(spanContext(t), "dropped")
	logger.WarnContext(spanContext(t), "kept")
	out := buf.String()
	if strings.Contains(out, "dropped") || !strings.Contains(out, "kept") {
		t.Errorf("level not honoured: %q", out)
	}
	if !strings.Contains(out, TraceIDKey+"="+testTraceID.String()) {
		t.Errorf("text line lacks trace_id: %q", out)
	}
}

func TestNewLoggerRejectsUnknownFormat(t *testing.T) {
	if _, err := NewLogger(&bytes.Buffer{}, "xml", slog.LevelInfo); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("err = %v, want an error naming the format", err)
	}
}

func TestDiscardLogger(t *testing.T) {
	DiscardLogger().Error("nobody hears this")
}
