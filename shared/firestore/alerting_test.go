package firestore

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/alertingtest"
	"github.com/autonomics/autonomics/shared/fault"
)

func TestAlertStoreConformance(t *testing.T) {
	c := emulatorClient(t)
	alertingtest.RunConformanceTests(t, func(t *testing.T) alerting.Store {
		s, err := NewAlertStore(c, AlertStoreOptions{Namespace: fmt.Sprintf("t-%08x", rand.Uint32())})
		if err != nil {
			t.Fatalf("NewAlertStore = %v", err)
		}
		return s
	})
}

// newTestAlertStore returns an AlertStore of the emulator in a namespace of
// its own, and its client.
func newTestAlertStore(t *testing.T) (*AlertStore, *fs.Client) {
	t.Helper()
	c := emulatorClient(t)
	s, err := NewAlertStore(c, AlertStoreOptions{Namespace: fmt.Sprintf("t-%08x", rand.Uint32())})
	if err != nil {
		t.Fatalf("NewAlertStore = %v", err)
	}
	return s, c
}

func TestAlertStorePromQLPolicyRoundTrips(t *testing.T) {
	s, _ := newTestAlertStore(t)
	ctx := t.Context()
	for _, p := range []alerting.Policy{
		{
			Name: "latency-p99", Expr: `histogram_quantile(0.99, sum by (le, tenant) (rate(autonomics_decision_latency_seconds_bucket[5m]))) > 0.5`,
			Labels: alerting.Labels{"team": "core"}, For: 5 * time.Minute, KeepFiringFor: 2 * time.Minute, Severity: alerting.Critical,
		},
		{Name: "heartbeat-gone", Expr: `absent_over_time(autonomics_heartbeat[10m])`, Severity: alerting.Warning},
	} {
		if created, err := s.PutPolicy(ctx, p); err != nil || !created {
			t.Fatalf("PutPolicy(%s) = %v, %v, want true, nil", p.Name, created, err)
		}
		got, err := s.Policy(ctx, p.Name)
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("Policy(%s) = %+v, %v, want %+v", p.Name, got, err, p)
		}
		if !got.IsPromQL() {
			t.Errorf("Policy(%s).IsPromQL() = false, want true", p.Name)
		}
	}
	list, err := s.Policies(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("Policies() = %+v, %v, want 2 policies", list, err)
	}
	if list[0].Name != "heartbeat-gone" || list[0].Expr != `absent_over_time(autonomics_heartbeat[10m])` {
		t.Errorf("Policies()[0] = %+v, want heartbeat-gone with its expression", list[0])
	}
	// Replacing a PromQL policy with a simple one of the same name leaves
	// no expression behind.
	simple := alerting.Policy{Name: "latency-p99", Metric: "autonomics_decision_latency_seconds", Comparison: alerting.GT, Threshold: 0.5, Severity: alerting.Warning}
	if created, err := s.PutPolicy(ctx, simple); err != nil || created {
		t.Fatalf("PutPolicy(simple over PromQL) = %v, %v, want false, nil", created, err)
	}
	if got, err := s.Policy(ctx, simple.Name); err != nil || !reflect.DeepEqual(got, simple) {
		t.Errorf("Policy(%s) = %+v, %v, want %+v", simple.Name, got, err, simple)
	}
}

func TestAlertStoreInvalidPromQLPolicyChangesNothing(t *testing.T) {
	s, _ := newTestAlertStore(t)
	ctx := t.Context()
	for _, p := range []alerting.Policy{
		{Name: "both", Expr: "up == 0", Metric: "up", Severity: alerting.Critical},
		{Name: "blank", Expr: "   ", Severity: alerting.Critical},
		{Name: "nul", Expr: "up\x00 == 0", Severity: alerting.Critical},
		{Name: "threshold", Expr: "up", Comparison: alerting.LT, Threshold: 1, Severity: alerting.Critical},
		{Name: "huge", Expr: strings.Repeat("x", alerting.MaxExprBytes+1), Severity: alerting.Critical},
	} {
		if _, err := s.PutPolicy(ctx, p); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("PutPolicy(%s) = %v, want an Invalid error", p.Name, err)
		}
	}
	if list, err := s.Policies(ctx); err != nil || len(list) != 0 {
		t.Errorf("Policies() = %+v, %v, want none", list, err)
	}
}

func TestAlertStorePolicyWithoutExprFieldIsSimple(t *testing.T) {
	s, c := newTestAlertStore(t)
	ctx := t.Context()
	// A policy document written before policies had an expression.
	legacy := map[string]any{
		"metric": "cpu_utilization", "labels": map[string]any{"region": "eu"}, "comparison": "gt", "threshold": 0.85,
		"for": "5m0s", "keep_firing_for": "", "absent_for": "", "severity": "critical",
	}
	if _, err := c.Collection(colMonitors).Doc(s.root.ID).Collection(colPolicies).Doc("cpu-high").Set(ctx, legacy); err != nil {
		t.Fatalf("Set(legacy policy) = %v", err)
	}
	got, err := s.Policy(ctx, "cpu-high")
	want := alerting.Policy{
		Name: "cpu-high", Metric: "cpu_utilization", Labels: alerting.Labels{"region": "eu"}, Comparison: alerting.GT,
		Threshold: 0.85, For: 5 * time.Minute, Severity: alerting.Critical,
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Policy(cpu-high) = %+v, %v, want %+v", got, err, want)
	}
	if got.IsPromQL() {
		t.Errorf("Policy(cpu-high).IsPromQL() = true, want false")
	}
}
