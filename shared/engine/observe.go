package engine

import (
	"context"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/governor"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Attribute carrying the trace context on every published message, as the
// Pub/Sub client libraries name it; CloudEvents carry it again as the
// traceparent extension (ce-traceparent).
const AttrTraceParent = "googclient_traceparent"

const instrumentation = "github.com/autonomics/autonomics/shared/engine"

// instruments are the engine's metrics. Their labels are low-cardinality:
// domain, event type, outcome, error code — never a tenant id.
type instruments struct {
	// sets caches the attribute sets of the decision metrics, which
	// take few distinct values, so that recording allocates nothing.
	sets         *sync.Map
	tracer       trace.Tracer
	decisions    metric.Int64Counter
	rejections   metric.Int64Counter
	attempts     metric.Int64Histogram
	retries      metric.Int64Counter
	latency      metric.Float64Histogram
	deadLettered metric.Int64Counter
	backlog      metric.Int64Gauge
	timerLag     metric.Float64Histogram
}

func newInstruments(tp trace.TracerProvider, mp metric.MeterProvider) instruments {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	m := mp.Meter(instrumentation)
	in := instruments{tracer: tp.Tracer(instrumentation), sets: &sync.Map{}}
	// Instrument constructors only fail on invalid names, which are fixed here.
	in.decisions, _ = m.Int64Counter("autonomics.decisions", metric.WithDescription("Decisions taken, by domain, event type and outcome."))
	in.rejections, _ = m.Int64Counter("autonomics.rejections", metric.WithDescription("Rejected decisions, by domain and event type."))
	in.attempts, _ = m.Int64Histogram("autonomics.transaction.attempts", metric.WithDescription("Transaction attempts per decision."))
	in.retries, _ = m.Int64Counter("autonomics.transaction.retries", metric.WithDescription("Transaction attempts beyond the first (contention)."))
	in.latency, _ = m.Float64Histogram("autonomics.decision.latency", metric.WithUnit("ms"), metric.WithDescription("From delivery to committed decision."))
	in.deadLettered, _ = m.Int64Counter("autonomics.dead_lettered", metric.WithDescription("Messages dead-lettered as invalid, by domain and code."))
	in.backlog, _ = m.Int64Gauge("autonomics.outbox.backlog", metric.WithDescription("Undelivered outbox entries older than the sweep age, at the last sweep."))
	in.timerLag, _ = m.Float64Histogram("autonomics.timer.lag", metric.WithUnit("ms"), metric.WithDescription("From a timer's due time to its firing."))
	return in
}

// metricSets are the attribute sets of one (domain, event type, outcome).
type metricSets struct {
	decision metric.MeasurementOption // domain, event_type, outcome
	typed    metric.MeasurementOption // domain, event_type
	outcome  metric.MeasurementOption // domain, outcome
}

func (in instruments) decisionSets(d governor.Domain, eventType, outcome string) *metricSets {
	key := string(d) + "\x00" + eventType + "\x00" + outcome
	if v, ok := in.sets.Load(key); ok {
		return v.(*metricSets)
	}
	dom := attribute.String("domain", string(d))
	et := attribute.String("event_type", eventType)
	oc := attribute.String("outcome", outcome)
	v, _ := in.sets.LoadOrStore(key, &metricSets{
		decision: metric.WithAttributeSet(attribute.NewSet(dom, et, oc)),
		typed:    metric.WithAttributeSet(attribute.NewSet(dom, et)),
		outcome:  metric.WithAttributeSet(attribute.NewSet(dom, oc)),
	})
	return v.(*metricSets)
}

// domainSet is the attribute set {domain}.
func (in instruments) domainSet(d governor.Domain) metric.MeasurementOption {
	key := string(d)
	if v, ok := in.sets.Load(key); ok {
		return v.(metric.MeasurementOption)
	}
	v, _ := in.sets.LoadOrStore(key, metric.WithAttributeSet(attribute.NewSet(attribute.String("domain", string(d)))))
	return v.(metric.MeasurementOption)
}

// observe records what applying ev did, once its transaction is over:
// the attempts it took and, for a new decision, the decision metrics, the
// outcome on span (the apply span) and the decision's log line; a
// duplicate is marked on span, a failure sets its status. start is when
// the application began.
func (e *Engine) observe(ctx context.Context, span trace.Span, ev *governor.Event, start time.Time, d *txResult, err error) {
	dom := e.in.domainSet(ev.Domain)
	e.in.attempts.Record(ctx, int64(d.attempts), dom)
	if d.attempts > 1 {
		e.in.retries.Add(ctx, int64(d.attempts-1), dom)
	}
	recording := span.IsRecording()
	switch {
	case err != nil:
		span.SetStatus(codes.Error, err.Error())
	case d.res.Duplicate:
		if recording {
			span.SetAttributes(attribute.Bool("autonomics.duplicate", true))
		}
	default:
		r := &d.res.Receipt
		sets := e.in.decisionSets(ev.Domain, ev.Type, r.Outcome)
		e.in.decisions.Add(ctx, 1, sets.decision)
		if r.Outcome == string(governor.Rejected) {
			e.in.rejections.Add(ctx, 1, sets.typed)
		}
		e.in.latency.Record(ctx, msSince(start), sets.outcome)
		if recording {
			span.SetAttributes(attribute.String("autonomics.outcome", r.Outcome), attribute.String("autonomics.receipt_hash", r.Hash))
		}
		e.o.Logger.InfoContext(ctx, "decision",
			"tenant", ev.Tenant, "domain", ev.Domain, "subject", ev.Subject,
			"execution_id", ev.ID, "event_type", ev.Type, "outcome", r.Outcome,
			"from", r.FromState, "to", r.ToState, "reason", r.Reason,
			"seq", r.Seq)
	}
}

// extract returns ctx with the remote parent described by a W3C
// traceparent, unless ctx already has a span or tp is empty.
func extract(ctx context.Context, tp string) context.Context {
	if tp == "" || trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

// traceparent renders the span context of ctx as a W3C traceparent, or "".
func traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

func labels(kv ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributes(kv...)
}
