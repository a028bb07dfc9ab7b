package alerting

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestLoosestFilterPassesEveryHoldingSample(t *testing.T) {
	type c struct {
		cmp Comparison
		t   float64
	}
	tests := []struct {
		name string
		cs   []c
		want []string
	}{
		{"lowest gt", []c{{GT, 0.9}, {GT, 0.5}}, []string{"> 0.5"}},
		{"gte at the lowest threshold includes it", []c{{GT, 0.5}, {GTE, 0.5}, {GT, 0.7}}, []string{">= 0.5"}},
		{"gte above the lowest gt", []c{{GT, 0.4}, {GTE, 0.5}}, []string{"> 0.4"}},
		{"highest lt", []c{{LT, 0.1}, {LTE, 0.3}, {LT, 0.2}}, []string{"<= 0.3"}},
		{"both directions", []c{{GT, 10}, {LT, -1}}, []string{"> 10", "< -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []Policy
			var slots []querySlot
			for i, x := range tt.cs {
				ps = append(ps, Policy{Comparison: x.cmp, Threshold: x.t})
				slots = append(slots, querySlot{policy: i})
			}
			got := loosest(ps, slots)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("loosest = %q, want %q", got, tt.want)
			}
			// Every sample a policy's comparison holds for passes a filter.
			for _, v := range []float64{-2, -1, 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9, 10, 11} {
				holds := slices.ContainsFunc(ps, func(p Policy) bool { return p.Comparison.Holds(v, p.Threshold) })
				if holds && !slices.ContainsFunc(got, func(f string) bool { return passes(f, v) }) {
					t.Errorf("%v holds for a policy but passes no filter of %q", v, got)
				}
			}
		})
	}
}

// passes evaluates a filter "op number" on v.
func passes(filter string, v float64) bool {
	op, num, _ := strings.Cut(filter, " ")
	t, _ := strconv.ParseFloat(num, 64)
	c := map[string]Comparison{">": GT, ">=": GTE, "<": LT, "<=": LTE}[op]
	return c.Holds(v, t)
}

func TestPlanSharesSimplePoliciesOfOneMetric(t *testing.T) {
	ps := []Policy{
		{Name: "a", Metric: "m", Labels: Labels{"region": "eu", "tier": "1"}, Comparison: GT, Threshold: 1},
		{Name: "b", Metric: "m", Labels: Labels{"region": "eu"}, Comparison: GT, Threshold: 2},
		{Name: "c", Metric: "n", Comparison: GT, Threshold: 1},
		{Name: "d", Expr: "m > 3"},
	}
	compiled := make([][]Query, len(ps))
	for i := range ps {
		compiled[i] = ps[i].Compile(CompileOptions{})
	}
	got := plan(ps, compiled, CompileOptions{})
	var exprs []string
	for _, q := range got {
		exprs = append(exprs, q.expr)
	}
	want := []string{
		"m > 3", // the PromQL policy's own
		`last_over_time(m{region="eu"}[5m]) > 1`,
		compiled[2][0].Expr, // alone on its metric: its own
	}
	if !slices.Equal(exprs, want) {
		t.Errorf("plan = %q, want %q", exprs, want)
	}
	parts := got[1].split(ps, []Element{
		{Labels: Labels{"region": "eu", "tier": "1", "host": "x"}, Value: 1.5},
		{Labels: Labels{"region": "eu", "tier": "2"}, Value: 3},
	})
	if len(parts) != 2 || len(parts[0]) != 1 || parts[0][0].Value != 1.5 || len(parts[1]) != 1 || parts[1][0].Value != 3 {
		t.Errorf("split = %+v, want a: the tier 1 series at 1.5, b: the series at 3", parts)
	}
}
