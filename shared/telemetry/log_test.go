package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

const (
	testTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	testSpan  = "00f067aa0ba902b7"
)

func TestNewLogger(t *testing.T) {
	traced := WithTrace(context.Background(), testTrace, testSpan)
	otelTraceID, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	otelSpanID, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	otelCtx := trace.ContextWithSpanContext(traced, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: otelTraceID,
		SpanID:  otelSpanID,
	}))

	tests := []struct {
		name string
		opts LogOptions
		log  func(l *slog.Logger)
		// want are fields that must be present with these values; absent
		// are fields that must not be present.
		want   map[string]any
		absent []string
	}{
		{
			name:   "info",
			log:    func(l *slog.Logger) { l.Info("hello", "tenant", "t1", "n", 3) },
			want:   map[string]any{"severity": "INFO", "message": "hello", "tenant": "t1", "n": 3.0},
			absent: []string{"level", "msg", "component", TraceKey, SpanIDKey, TraceSampledKey},
		},
		{
			name: "component",
			opts: LogOptions{Component: "billing"},
			log:  func(l *slog.Logger) { l.Warn("slow") },
			want: map[string]any{"severity": "WARNING", "message": "slow", "component": "billing"},
		},
		{
			name: "error value",
			log:  func(l *slog.Logger) { l.Error("failed", "err", errors.New("boom")) },
			want: map[string]any{"severity": "ERROR", "err": "boom"},
		},
		{
			name: "debug enabled",
			opts: LogOptions{Level: slog.LevelDebug},
			log:  func(l *slog.Logger) { l.Debug("detail") },
			want: map[string]any{"severity": "DEBUG", "message": "detail"},
		},
		{
			name: "critical",
			log:  func(l *slog.Logger) { l.Log(context.Background(), LevelCritical, "chain broken") },
			want: map[string]any{"severity": "CRITICAL", "message": "chain broken"},
		},
		{
			name: "trace with project",
			opts: LogOptions{ProjectID: "demo-autonomics"},
			log:  func(l *slog.Logger) { l.InfoContext(traced, "decided") },
			want: map[string]any{
				TraceKey:        "projects/demo-autonomics/traces/" + testTrace,
				SpanIDKey:       testSpan,
				TraceSampledKey: true,
			},
		},
		{
			name: "trace without project",
			log:  func(l *slog.Logger) { l.InfoContext(traced, "decided") },
			want: map[string]any{TraceKey: testTrace, SpanIDKey: testSpan},
		},
		{
			name: "opentelemetry span wins",
			opts: LogOptions{ProjectID: "p"},
			log:  func(l *slog.Logger) { l.InfoContext(otelCtx, "decided") },
			want: map[string]any{
				TraceKey:        "projects/p/traces/0af7651916cd43dd8448eb211c80319c",
				SpanIDKey:       "b7ad6b7169203331",
				TraceSampledKey: false,
			},
		},
		{
			name: "trace stays top level in groups",
			opts: LogOptions{ProjectID: "p", Component: "engine"},
			log: func(l *slog.Logger) {
				l.With("a", 1).WithGroup("event").With("id", "e1").WithGroup("data").InfoContext(traced, "grouped", "k", "v")
			},
			want: map[string]any{
				"component": "engine",
				"a":         1.0,
				TraceKey:    "projects/p/traces/" + testTrace,
				"event": map[string]any{
					"id":   "e1",
					"data": map[string]any{"k": "v"},
				},
			},
			absent: []string{"k", "id"},
		},
		{
			name:   "empty group dropped",
			log:    func(l *slog.Logger) { l.WithGroup("g").InfoContext(traced, "no attrs") },
			want:   map[string]any{SpanIDKey: testSpan},
			absent: []string{"g"},
		},
		{
			name:   "user attribute named level kept",
			log:    func(l *slog.Logger) { l.Info("x", "level", 3) },
			want:   map[string]any{"severity": "INFO", "level": 3.0},
			absent: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(NewLogger(&buf, tt.opts))
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1:\n%s", len(lines), buf.String())
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatalf("line %q is not JSON: %v", lines[0], err)
			}
			ts, _ := got["time"].(string)
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("time = %q, not RFC 3339: %v", got["time"], err)
			}
			for k, v := range tt.want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("field %q = %#v, want %#v (line %s)", k, got[k], v, lines[0])
				}
			}
			for _, k := range tt.absent {
				if _, ok := got[k]; ok {
					t.Errorf("field %q present in %s", k, lines[0])
				}
			}
		})
	}
}

func TestNewLoggerLevel(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, LogOptions{Level: slog.LevelWarn})
	l.Info("dropped")
	l.Debug("dropped")
	l.Warn("kept")
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Errorf("logged %d lines at level WARN, want 1:\n%s", got, buf.String())
	}
}

func TestSeverity(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug - 4, "DEBUG"},
		{slog.LevelDebug, "DEBUG"},
		{slog.LevelInfo, "INFO"},
		{slog.LevelInfo + 1, "INFO"},
		{slog.LevelWarn, "WARNING"},
		{slog.LevelError, "ERROR"},
		{LevelCritical, "CRITICAL"},
		{LevelCritical + 8, "CRITICAL"},
	}
	for _, tt := range tests {
		if got := Severity(tt.level); got != tt.want {
			t.Errorf("Severity(%v) = %q, want %q", tt.level, got, tt.want)
		}
	}
}

func TestTimeFormat(t *testing.T) {
	var buf bytes.Buffer
	h := NewLogger(&buf, LogOptions{}).Handler()
	at := time.Date(2026, 11, 3, 10, 4, 5, 123456789, time.FixedZone("CET", 3600))
	if err := h.Handle(context.Background(), slog.NewRecord(at, slog.LevelInfo, "m", 0)); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	var got struct{ Time string }
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("Unmarshal(%q): %v", buf.String(), err)
	}
	if want := "2026-11-03T09:04:05.123456789Z"; got.Time != want {
		t.Errorf("time = %q, want %q", got.Time, want)
	}
}

func BenchmarkLogger(b *testing.B) {
	ctx := WithTrace(context.Background(), testTrace, testSpan)
	l := NewLogger(io.Discard, LogOptions{ProjectID: "p", Component: "engine"})
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			l.Info("decided", "tenant", "acme", "seq", 42)
		}
	})
	b.Run("trace", func(b *testing.B) {
		for b.Loop() {
			l.InfoContext(ctx, "decided", "tenant", "acme", "seq", 42)
		}
	})
	b.Run("trace+group", func(b *testing.B) {
		g := l.WithGroup("event").With("id", "e1")
		for b.Loop() {
			g.InfoContext(ctx, "decided", "tenant", "acme", "seq", 42)
		}
	})
}
