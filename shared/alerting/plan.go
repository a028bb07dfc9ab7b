package alerting

import (
	"errors"
	"math"
	"strings"
	"time"
)

// ErrAnswerTooLarge marks an answer of the metrics engine over a
// Querier's response limit (errors.Is). A query shared by several
// policies whose answer is too large is replaced by the policies' own
// queries.
var ErrAnswerTooLarge = errors.New("the metrics engine's answer exceeds the response limit")

// Bounds of the metric absent queries shared by simple policies.
const (
	// maxAbsentSelectors bounds the selectors of one shared metric absent
	// query.
	maxAbsentSelectors = 64
	// maxAbsentExprBytes bounds the expression of one shared metric
	// absent query (a query holds at least one selector).
	maxAbsentExprBytes = 16 << 10
)

// querySlot names one query of one compiled policy: compiled[policy][query].
type querySlot struct{ policy, query int }

// planned is one query of an evaluation cycle and the compiled queries
// it answers.
//
// An own query (shared false) has one slot, and its answer is the answer
// of that slot. A shared query answers the same query of several simple
// policies of one metric and is split in Go, where each policy's
// matchers, comparison and threshold select its part:
//
//   - condition: last_over_time(m{C}[lb]) c t, with C the matchers common
//     to the policies, and c t the loosest comparison that every
//     policy's implies (one for gt/gte, one for lt/lte, joined by or);
//   - series absent, for the policies of one absent_for: the series
//     absent query of m{C};
//   - metric absent, for the policies of one absent_for:
//     absent_over_time(m{L1}[A]) or absent_over_time(m{L2}[A]) or …, one
//     term per distinct label set, whose answer labels (the matchers)
//     tell which terms hold.
type planned struct {
	expr   string
	role   Role
	slots  []querySlot
	shared bool
}

// planKey groups the compiled queries a shared query answers.
type planKey struct {
	role      Role
	metric    string
	absentFor time.Duration
}

// plan returns the queries answering every compiled query of policies
// (compiled[i] = policies[i].Compile(co)): the own query of each PromQL
// policy, and queries shared by the simple policies of one metric (see
// planned). Every slot is in exactly one planned query.
func plan(policies []Policy, compiled [][]Query, co CompileOptions) []planned {
	if co.Lookback <= 0 {
		co.Lookback = DefaultLookback
	}
	if co.SeriesRetention <= 0 {
		co.SeriesRetention = DefaultSeriesRetention
	}
	var out []planned
	groups := map[planKey][]querySlot{}
	var order []planKey
	for i := range policies {
		p := &policies[i]
		for j, q := range compiled[i] {
			if p.IsPromQL() || !shareable(p.Labels) {
				out = append(out, planned{expr: q.Expr, role: q.Role, slots: []querySlot{{i, j}}})
				continue
			}
			k := planKey{role: q.Role, metric: p.Metric}
			if q.Role != RoleCondition {
				k.absentFor = p.AbsentFor
			}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], querySlot{i, j})
		}
	}
	for _, k := range order {
		slots := groups[k]
		if len(slots) == 1 {
			s := slots[0]
			out = append(out, planned{expr: compiled[s.policy][s.query].Expr, role: k.role, slots: slots})
			continue
		}
		switch k.role {
		case RoleCondition:
			sel := Selector(k.metric, commonLabels(policies, slots))
			out = append(out, planned{expr: conditionExpr(sel, co.Lookback, loosest(policies, slots)...), role: k.role, slots: slots, shared: true})
		case RoleSeriesAbsent:
			sel := Selector(k.metric, commonLabels(policies, slots))
			out = append(out, planned{expr: seriesAbsentExpr(sel, k.absentFor, co.SeriesRetention), role: k.role, slots: slots, shared: true})
		case RoleMetricAbsent:
			out = append(out, absentChunks(k, policies, slots)...)
		}
	}
	return out
}

// shareable reports whether a simple policy's matchers can be evaluated
// in Go on a shared answer: every value is non-empty (an empty value
// matches a missing label in PromQL, and names no label in the answer of
// absent_over_time).
func shareable(l Labels) bool {
	for _, v := range l {
		if v == "" {
			return false
		}
	}
	return true
}

// commonLabels returns the matchers every policy of slots has.
func commonLabels(policies []Policy, slots []querySlot) Labels {
	common := policies[slots[0].policy].Labels.Clone()
	for _, s := range slots[1:] {
		l := policies[s.policy].Labels
		for k, v := range common {
			if w, ok := l[k]; !ok || w != v {
				delete(common, k)
			}
		}
	}
	return common
}

// loosest returns the filters of a shared condition query: a sample that
// holds for the comparison of any policy of slots passes one of them.
func loosest(policies []Policy, slots []querySlot) []string {
	up, down := math.Inf(1), math.Inf(-1)
	var haveUp, haveDown, upIncl, downIncl bool
	for _, s := range slots {
		p := &policies[s.policy]
		t := p.Threshold
		switch p.Comparison {
		case GT, GTE:
			incl := p.Comparison == GTE
			if !haveUp || t < up {
				up, upIncl = t, incl
			} else if t == up {
				upIncl = upIncl || incl
			}
			haveUp = true
		case LT, LTE:
			incl := p.Comparison == LTE
			if !haveDown || t > down {
				down, downIncl = t, incl
			} else if t == down {
				downIncl = downIncl || incl
			}
			haveDown = true
		}
	}
	var out []string
	if haveUp {
		op := ">"
		if upIncl {
			op = ">="
		}
		out = append(out, op+" "+promNumber(up))
	}
	if haveDown {
		op := "<"
		if downIncl {
			op = "<="
		}
		out = append(out, op+" "+promNumber(down))
	}
	return out
}

// absentChunks returns the shared metric absent queries of the slots of
// key k: one term per distinct selector, at most maxAbsentSelectors terms
// and about maxAbsentExprBytes per query.
func absentChunks(k planKey, policies []Policy, slots []querySlot) []planned {
	bySel := map[string][]querySlot{}
	var sels []string
	for _, s := range slots {
		sel := Selector(k.metric, policies[s.policy].Labels)
		if _, ok := bySel[sel]; !ok {
			sels = append(sels, sel)
		}
		bySel[sel] = append(bySel[sel], s)
	}
	var out []planned
	var cur planned
	var b strings.Builder
	terms := 0
	flush := func() {
		if terms == 0 {
			return
		}
		cur.expr, cur.role, cur.shared = b.String(), RoleMetricAbsent, len(cur.slots) > 1
		out = append(out, cur)
		cur, terms = planned{}, 0
		b.Reset()
	}
	for _, sel := range sels {
		term := metricAbsentExpr(sel, k.absentFor)
		if terms > 0 && (terms == maxAbsentSelectors || b.Len()+len(" or ")+len(term) > maxAbsentExprBytes) {
			flush()
		}
		if terms > 0 {
			b.WriteString(" or ")
		}
		b.WriteString(term)
		terms++
		cur.slots = append(cur.slots, bySel[sel]...)
	}
	flush()
	return out
}

// split returns the answer of each slot of a shared query given the
// query's answer: the elements matching the slot's policy (conditions
// holding, quiet series), or the element of its absent_over_time term.
func (pq *planned) split(policies []Policy, elems []Element) [][]Element {
	parts := make([][]Element, len(pq.slots))
	var absent map[string]Element
	if pq.role == RoleMetricAbsent {
		absent = make(map[string]Element, len(elems))
		for _, e := range elems {
			absent[e.Labels.Key()] = e
		}
	}
	for i, s := range pq.slots {
		p := &policies[s.policy]
		switch pq.role {
		case RoleCondition:
			for _, e := range elems {
				if p.Labels.Matches(e.Labels) && p.Comparison.Holds(e.Value, p.Threshold) {
					parts[i] = append(parts[i], e)
				}
			}
		case RoleSeriesAbsent:
			for _, e := range elems {
				if p.Labels.Matches(e.Labels) {
					parts[i] = append(parts[i], e)
				}
			}
		case RoleMetricAbsent:
			if e, ok := absent[p.Labels.Key()]; ok {
				parts[i] = []Element{e}
			}
		}
	}
	return parts
}
