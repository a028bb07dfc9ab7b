package alerting

import (
	"context"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Element is one series of the instant vector a query returns: its labels
// without __name__, and its value at the evaluation time.
type Element struct {
	Labels Labels
	Value  float64
}

// Querier answers PromQL instant queries: the value of expr at time at.
// An expression the engine refuses is a fault.Invalid error; an engine
// that cannot answer, a fault.Unavailable one. Adapters (package
// alerting/prom) bound what they read.
type Querier interface {
	Query(ctx context.Context, expr string, at time.Time) ([]Element, error)
}

// Role says what the result of one query of a compiled policy means.
type Role string

// The roles of a policy's queries.
const (
	// RoleCondition returns the series whose condition holds: the
	// expression of a PromQL policy, or the threshold comparison of a
	// simple policy.
	RoleCondition Role = "condition"
	// RoleSeriesAbsent returns the series of a simple policy that had
	// samples within the series retention but none for absent_for, valued
	// with the seconds since their latest sample.
	RoleSeriesAbsent Role = "series_absent"
	// RoleMetricAbsent returns one element, labelled with the policy's
	// matchers, when no series of a simple policy had a sample for
	// absent_for.
	RoleMetricAbsent Role = "metric_absent"
)

// Query is one PromQL query of a compiled policy.
type Query struct {
	Expr string
	Role Role
}

// CompileOptions tune how simple policies become PromQL.
type CompileOptions struct {
	// Lookback is how old the latest sample of a series may be and still
	// count; 0 means DefaultLookback.
	Lookback time.Duration
	// SeriesRetention is how long a series without samples still counts as
	// one that went quiet (absent_for) rather than one that is gone; 0
	// means DefaultSeriesRetention. It is at least twice absent_for.
	SeriesRetention time.Duration
}

// Compile returns the PromQL queries of the policy. A PromQL policy is its
// expression. A simple policy {metric m, labels L, comparison c, threshold
// t, absent_for A} is, with S the selector m{L} and lookback lb:
//
//   - condition: last_over_time(S[lb]) c t — the latest sample within the
//     lookback, compared;
//   - series absent (A set): (time() - last_over_time(timestamp(S)[R:s]))
//     unless last_over_time(S[A-1ms]) — the series seen within the retention
//     R but not for A, valued with the seconds since their latest sample
//     (s is a step of at most a minute, at most A);
//   - metric absent (A set): absent_over_time(S[A-1ms]) — nothing at all
//     for A.
func (p *Policy) Compile(o CompileOptions) []Query {
	if p.IsPromQL() {
		return []Query{{Expr: p.Expr, Role: RoleCondition}}
	}
	if o.Lookback <= 0 {
		o.Lookback = DefaultLookback
	}
	if o.SeriesRetention <= 0 {
		o.SeriesRetention = DefaultSeriesRetention
	}
	sel := Selector(p.Metric, p.Labels)
	var qs []Query
	if p.HasThreshold() {
		qs = append(qs, Query{Role: RoleCondition, Expr: conditionExpr(sel, o.Lookback, promOp(p.Comparison)+" "+promNumber(p.Threshold))})
	}
	if p.AbsentFor > 0 {
		qs = append(qs,
			Query{Role: RoleSeriesAbsent, Expr: seriesAbsentExpr(sel, p.AbsentFor, o.SeriesRetention)},
			Query{Role: RoleMetricAbsent, Expr: metricAbsentExpr(sel, p.AbsentFor)},
		)
	}
	return qs
}

// conditionExpr returns the condition query of a simple policy on
// selector sel: the latest sample within lookback, kept when it passes
// one of the filters (each a comparison operator and a number).
func conditionExpr(sel string, lookback time.Duration, filters ...string) string {
	latest := "last_over_time(" + sel + "[" + promDuration(lookback) + "]) "
	var b strings.Builder
	for i, f := range filters {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(latest)
		b.WriteString(f)
	}
	return b.String()
}

// seriesAbsentExpr returns the series absent query of a simple policy on
// selector sel with absent_for a, given the series retention.
func seriesAbsentExpr(sel string, a, retention time.Duration) string {
	retention = max(retention, 2*a)
	step := min(time.Minute, a)
	return "(time() - last_over_time(timestamp(" + sel + ")[" + promDuration(retention) + ":" + promDuration(step) + "])) unless last_over_time(" + sel + "[" + absentRange(a) + "])"
}

// metricAbsentExpr returns the metric absent query of a simple policy on
// selector sel with absent_for a.
func metricAbsentExpr(sel string, a time.Duration) string {
	return "absent_over_time(" + sel + "[" + absentRange(a) + "])"
}

// absentRange is the range of an absent_for a: one millisecond short, so
// that a sample exactly absent_for old is out of the range whether the
// engine's ranges are closed (Prometheus 2) or open (Prometheus 3) at
// their start.
func absentRange(a time.Duration) string { return promDuration(a - time.Millisecond) }

// Active is a series whose condition holds at an evaluation.
type Active struct {
	Labels Labels
	Value  float64
	Reason string
}

// Activate combines the results of the policy's queries (results[i] is
// the answer to qs[i]) into the series whose condition holds, sorted by
// labels. An absence replaces a threshold condition on the same series; a
// metric absence counts only when no series went quiet. A PromQL policy's
// Labels are added to every element; two elements that end with the same
// labels count once, with the larger value.
func (p *Policy) Activate(qs []Query, results [][]Element) []Active {
	byKey := map[string]*Active{}
	quiet := false
	put := func(l Labels, v float64, reason string, replace bool) {
		k := l.Key()
		if old := byKey[k]; old != nil && !(replace && old.Reason != reason) {
			if v > old.Value || math.IsNaN(old.Value) {
				old.Value = v
			}
			return
		}
		byKey[k] = &Active{Labels: l, Value: v, Reason: reason}
	}
	var metricAbsent []Element
	for i, q := range qs {
		if i >= len(results) {
			break
		}
		for _, e := range results[i] {
			switch q.Role {
			case RoleCondition:
				l := e.Labels.Clone()
				reason := ReasonThreshold
				if p.IsPromQL() {
					reason = ReasonExpr
					if len(p.Labels) > 0 && l == nil {
						l = Labels{}
					}
					for k, v := range p.Labels {
						l[k] = v
					}
				}
				if len(l) == 0 {
					l = nil
				}
				if old := byKey[l.Key()]; old != nil && old.Reason == ReasonAbsent {
					continue
				}
				put(l, e.Value, reason, false)
			case RoleSeriesAbsent:
				quiet = true
				l := e.Labels.Clone()
				if len(l) == 0 {
					l = nil
				}
				put(l, e.Value, ReasonAbsent, true)
			case RoleMetricAbsent:
				metricAbsent = append(metricAbsent, e)
			}
		}
	}
	if !quiet && len(metricAbsent) > 0 {
		// The value of an absence is the seconds without samples: at least
		// absent_for, all the query can tell.
		put(p.Labels.Clone(), p.AbsentFor.Seconds(), ReasonAbsent, true)
	}
	out := make([]Active, 0, len(byKey))
	for _, a := range byKey {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Labels.Key() < out[j].Labels.Key() })
	return out
}

// Selector returns the PromQL selector of metric with equality matchers
// on labels, sorted by name, values quoted.
func Selector(metric string, labels Labels) string {
	if len(labels) == 0 {
		return metric
	}
	var b strings.Builder
	b.WriteString(metric)
	b.WriteByte('{')
	for i, k := range labels.Names() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(promString(labels[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// promString quotes s as a PromQL string literal, whose escapes are Go's.
func promString(s string) string { return strconv.Quote(s) }

// promNumber renders a finite float as a PromQL number literal.
func promNumber(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// promOp returns the PromQL operator of a comparison.
func promOp(c Comparison) string {
	switch c {
	case GT:
		return ">"
	case GTE:
		return ">="
	case LT:
		return "<"
	case LTE:
		return "<="
	}
	return ">"
}

// promDuration renders d as a PromQL duration in whole milliseconds (at
// least 1ms), such as 5m, 90s or 1500ms.
func promDuration(d time.Duration) string {
	ms := max(d.Milliseconds(), 1)
	switch {
	case ms%(3600*1000) == 0:
		return strconv.FormatInt(ms/(3600*1000), 10) + "h"
	case ms%(60*1000) == 0:
		return strconv.FormatInt(ms/(60*1000), 10) + "m"
	case ms%1000 == 0:
		return strconv.FormatInt(ms/1000, 10) + "s"
	}
	return strconv.FormatInt(ms, 10) + "ms"
}
