package engine

import (
	"context"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/governor"

	"go.opentelemetry.io/otel/attribute"
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
