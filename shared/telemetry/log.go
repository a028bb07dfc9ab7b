package telemetry

import (
	"context"
	"io"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// LevelCritical is the slog level logged with severity CRITICAL.
const LevelCritical = slog.LevelError + 4

// Keys of the Cloud Logging structured-log fields written by NewLogger.
const (
	SeverityKey     = "severity"
	MessageKey      = "message"
	TimeKey         = "time"
	ComponentKey    = "component"
	TraceKey        = "logging.googleapis.com/trace"
	SpanIDKey       = "logging.googleapis.com/spanId"
	TraceSampledKey = "logging.googleapis.com/trace_sampled"
)

// LogOptions configure NewLogger.
type LogOptions struct {
	// ProjectID is the Google Cloud project whose Cloud Trace holds the
	// traces; it qualifies the trace field. When empty, the trace field
	// holds the bare trace id.
	ProjectID string
	// Level is the minimum level logged; the zero value is slog.LevelInfo.
	Level slog.Level
	// Component, when set, is added to every line as "component".
	Component string
}

// NewLogger returns a logger that writes one JSON object per line to w in
// the Cloud Logging structured format: "time" (RFC 3339 with nanoseconds,
// UTC), "severity" (DEBUG, INFO, WARNING, ERROR or CRITICAL), "message",
// "component", the trace fields when the context carries a trace, then the
// attributes of the call. Attribute groups nest below the top-level fields.
func NewLogger(w io.Writer, opts LogOptions) *slog.Logger {
	inner := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       opts.Level,
		ReplaceAttr: replaceBuiltin,
	})
	var h slog.Handler = inner
	if opts.Component != "" {
		h = h.WithAttrs([]slog.Attr{slog.String(ComponentKey, opts.Component)})
	}
	return slog.New(&traceHandler{base: h, project: opts.ProjectID})
}

// Severity returns the Cloud Logging severity of a slog level.
func Severity(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARNING"
	case l < LevelCritical:
		return "ERROR"
	default:
		return "CRITICAL"
	}
}

// replaceBuiltin renames and formats the built-in attributes of the JSON
// handler. Attributes inside groups and attributes that merely share a
// built-in key are left alone.
func replaceBuiltin(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		if a.Value.Kind() == slog.KindTime {
			return slog.String(TimeKey, a.Value.Time().UTC().Format(time.RFC3339Nano))
		}
	case slog.LevelKey:
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(SeverityKey, Severity(l))
		}
	case slog.MessageKey:
		return slog.Attr{Key: MessageKey, Value: a.Value}
	}
	return a
}

type traceKey struct{}

type traceContext struct {
	traceID, spanID string
}

// WithTrace returns a copy of ctx that carries a trace: the lines logged
// with it by a NewLogger logger name the trace and span, marked sampled.
// traceID is 32 hex digits and spanID 16, as ParseTraceParent returns them.
func WithTrace(ctx context.Context, traceID, spanID string) context.Context {
	return context.WithValue(ctx, traceKey{}, traceContext{traceID: traceID, spanID: spanID})
}

// traceOf returns the trace of ctx: the active OpenTelemetry span if there
// is a valid one, else the trace set by WithTrace.
func traceOf(ctx context.Context) (traceID, spanID string, sampled, ok bool) {
	if ctx == nil {
		return "", "", false, false
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String(), sc.SpanID().String(), sc.IsSampled(), true
	}
	if tc, found := ctx.Value(traceKey{}).(traceContext); found && tc.traceID != "" {
		return tc.traceID, tc.spanID, true, true
	}
	return "", "", false, false
}

// traceHandler adds the trace fields of the record's context at the top
// level of the line. Because fields added to a record land in the innermost
// open group, it keeps the groups opened by WithGroup (and the attributes
// added inside them) itself and nests the record's attributes into them at
// Handle time; base only ever sees top-level attributes.
type traceHandler struct {
	base    slog.Handler
	project string
	// groups are the open groups, outermost first, each with the
	// attributes added while it was the innermost one.
	groups []group
}

type group struct {
	name  string
	attrs []slog.Attr
}

func (h *traceHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.base.Enabled(ctx, l)
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	traceID, spanID, sampled, ok := traceOf(ctx)
	if !ok && len(h.groups) == 0 {
		return h.base.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	if ok {
		tr := traceID
		if h.project != "" {
			tr = "projects/" + h.project + "/traces/" + traceID
		}
		out.AddAttrs(slog.String(TraceKey, tr))
		if spanID != "" {
			out.AddAttrs(slog.String(SpanIDKey, spanID))
		}
		out.AddAttrs(slog.Bool(TraceSampledKey, sampled))
	}
	if len(h.groups) == 0 {
		r.Attrs(func(a slog.Attr) bool {
			out.AddAttrs(a)
			return true
		})
		return h.base.Handle(ctx, out)
	}
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	for i := len(h.groups) - 1; i >= 0; i-- {
		g := h.groups[i]
		inner := make([]any, 0, len(g.attrs)+len(attrs))
		for _, a := range g.attrs {
			inner = append(inner, a)
		}
		for _, a := range attrs {
			inner = append(inner, a)
		}
		attrs = []slog.Attr{slog.Group(g.name, inner...)}
	}
	out.AddAttrs(attrs...)
	return h.base.Handle(ctx, out)
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	if len(h.groups) == 0 {
		return &traceHandler{base: h.base.WithAttrs(attrs), project: h.project}
	}
	groups := make([]group, len(h.groups))
	copy(groups, h.groups)
	last := &groups[len(groups)-1]
	last.attrs = append(append([]slog.Attr(nil), last.attrs...), attrs...)
	return &traceHandler{base: h.base, project: h.project, groups: groups}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	groups := make([]group, len(h.groups), len(h.groups)+1)
	copy(groups, h.groups)
	return &traceHandler{base: h.base, project: h.project, groups: append(groups, group{name: name})}
}
