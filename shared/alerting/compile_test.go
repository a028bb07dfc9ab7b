package alerting_test

import (
	"slices"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
)

func TestCompile(t *testing.T) {
	tests := []struct {
		name   string
		policy alerting.Policy
		want   []alerting.Query
	}{
		{"threshold", alerting.Policy{Metric: "cpu", Labels: alerting.Labels{"region": "eu", "tenant": `a"b\c`}, Comparison: alerting.GTE, Threshold: 0.8}, []alerting.Query{
			{Role: alerting.RoleCondition, Expr: `last_over_time(cpu{region="eu",tenant="a\"b\\c"}[5m]) >= 0.8`},
		}},
		{"negative and tiny thresholds", alerting.Policy{Metric: "x", Comparison: alerting.LT, Threshold: -1.5e-9}, []alerting.Query{
			{Role: alerting.RoleCondition, Expr: `last_over_time(x[5m]) < -1.5e-09`},
		}},
		{"absent only", alerting.Policy{Metric: "hb", AbsentFor: 10 * time.Minute}, []alerting.Query{
			{Role: alerting.RoleSeriesAbsent, Expr: `(time() - last_over_time(timestamp(hb)[48h:1m])) unless last_over_time(hb[599999ms])`},
			{Role: alerting.RoleMetricAbsent, Expr: `absent_over_time(hb[599999ms])`},
		}},
		{"short absence, long retention", alerting.Policy{Metric: "hb", Comparison: alerting.GT, Threshold: 1, AbsentFor: 30 * time.Second}, []alerting.Query{
			{Role: alerting.RoleCondition, Expr: `last_over_time(hb[5m]) > 1`},
			{Role: alerting.RoleSeriesAbsent, Expr: `(time() - last_over_time(timestamp(hb)[48h:30s])) unless last_over_time(hb[29999ms])`},
			{Role: alerting.RoleMetricAbsent, Expr: `absent_over_time(hb[29999ms])`},
		}},
		{"promql", alerting.Policy{Expr: `sum by (tenant) (rate(x[5m])) > 1`}, []alerting.Query{
			{Role: alerting.RoleCondition, Expr: `sum by (tenant) (rate(x[5m])) > 1`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.Compile(alerting.CompileOptions{}); !slices.Equal(got, tt.want) {
				t.Errorf("Compile =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestActivate(t *testing.T) {
	simple := alerting.Policy{Metric: "hb", Comparison: alerting.GT, Threshold: 1, AbsentFor: time.Minute}
	qs := simple.Compile(alerting.CompileOptions{})
	a := alerting.Labels{"i": "a"}
	b := alerting.Labels{"i": "b"}
	got := simple.Activate(qs, [][]alerting.Element{
		{{Labels: a, Value: 5}, {Labels: b, Value: 7}},
		{{Labels: b, Value: 90}},
		{{Value: 1}},
	})
	want := []alerting.Active{{Labels: a, Value: 5, Reason: alerting.ReasonThreshold}, {Labels: b, Value: 90, Reason: alerting.ReasonAbsent}}
	if len(got) != 2 || got[0].Labels.Key() != want[0].Labels.Key() || got[0].Value != 5 || got[0].Reason != want[0].Reason ||
		got[1].Labels.Key() != want[1].Labels.Key() || got[1].Value != 90 || got[1].Reason != want[1].Reason {
		t.Errorf("Activate(threshold, quiet series, metric absent) = %+v, want %+v: the absence replaces the threshold, no metric absence while a series is quiet", got, want)
	}
	got = simple.Activate(qs, [][]alerting.Element{nil, nil, {{Labels: alerting.Labels{"i": "x"}, Value: 1}}})
	if len(got) != 1 || got[0].Reason != alerting.ReasonAbsent || got[0].Value != 60 || got[0].Labels != nil {
		t.Errorf("Activate(metric absent) = %+v, want one absence valued 60 with the policy's labels", got)
	}
	expr := alerting.Policy{Expr: "x > 1", Labels: alerting.Labels{"team": "core", "i": "override"}}
	got = expr.Activate(expr.Compile(alerting.CompileOptions{}), [][]alerting.Element{{{Labels: a, Value: 2}, {Labels: b, Value: 3}, {Value: 4}}})
	if len(got) != 1 || got[0].Value != 4 || got[0].Reason != alerting.ReasonExpr || got[0].Labels.Key() != (alerting.Labels{"team": "core", "i": "override"}).Key() {
		t.Errorf("Activate(promql with labels) = %+v, want one alert with the policy's labels replacing the series', the largest value", got)
	}
}
