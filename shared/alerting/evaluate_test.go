package alerting_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
)

var web = alerting.Labels{"tenant": "acme", "region": "eu"}

func cpuPolicy(mod func(*alerting.Policy)) alerting.Policy {
	p := alerting.Policy{Name: "cpu-high", Metric: "cpu", Labels: alerting.Labels{"region": "eu"},
		Comparison: alerting.GT, Threshold: 0.8, For: 2 * time.Minute, Severity: alerting.Critical}
	if mod != nil {
		mod(&p)
	}
	return p
}

// step is one evaluation of a scenario: after advancing the clock by
// after and recording the sample (unless value is nil), the alert must be
// in state with exactly the notifications sent.
type step struct {
	after time.Duration
	value *float64
	state alerting.State
	sent  []string
}

func v(x float64) *float64 { return &x }

const (
	firing   = alerting.TypeFiring
	resolved = alerting.TypeResolved
)

func TestPolicyScenarios(t *testing.T) {
	tests := []struct {
		name   string
		policy alerting.Policy
		steps  []step
	}{
		{"for: pending then firing, repeats every 5m, resolves once", cpuPolicy(nil), []step{
			{0, v(0.5), "", nil},
			{time.Minute, v(0.9), alerting.Pending, nil},
			{time.Minute, v(0.95), alerting.Pending, nil},
			{time.Minute, v(0.95), alerting.Firing, []string{firing}},
			{time.Minute, v(0.95), alerting.Firing, nil},
			{4 * time.Minute, v(0.95), alerting.Firing, []string{firing}},
			{time.Minute, v(0.1), alerting.Resolved, []string{resolved}},
			{time.Minute, v(0.1), alerting.Resolved, nil},
		}},
		{"pending that clears sends nothing", cpuPolicy(nil), []step{
			{0, v(0.9), alerting.Pending, nil},
			{time.Minute, v(0.1), "", nil},
			{5 * time.Minute, v(0.1), "", nil},
		}},
		{"for 0 fires at once", cpuPolicy(func(p *alerting.Policy) { p.For = 0 }), []step{
			{0, v(0.9), alerting.Firing, []string{firing}},
			{time.Minute, v(0.2), alerting.Resolved, []string{resolved}},
		}},
		{"keep_firing_for rides out flapping", cpuPolicy(func(p *alerting.Policy) { p.For = 0; p.KeepFiringFor = 3 * time.Minute }), []step{
			{0, v(0.9), alerting.Firing, []string{firing}},
			{time.Minute, v(0.1), alerting.Firing, nil},
			{time.Minute, v(0.9), alerting.Firing, nil},
			{time.Minute, v(0.1), alerting.Firing, nil},
			{time.Minute, v(0.1), alerting.Firing, nil},
			{time.Minute, v(0.1), alerting.Firing, []string{firing}},
			{time.Minute, v(0.1), alerting.Resolved, []string{resolved}},
		}},
		{"lte comparison", cpuPolicy(func(p *alerting.Policy) { p.Comparison = alerting.LTE; p.Threshold = 0.1; p.For = 0 }), []step{
			{0, v(0.2), "", nil},
			{time.Minute, v(0.1), alerting.Firing, []string{firing}},
		}},
		{"stale series resolves after the lookback", cpuPolicy(func(p *alerting.Policy) { p.For = 0 }), []step{
			{0, v(0.9), alerting.Firing, []string{firing}},
			{5 * time.Minute, nil, alerting.Firing, []string{firing}},
			{time.Second, nil, alerting.Resolved, []string{resolved}},
		}},
		{"absent_for on a series", alerting.Policy{Name: "heartbeat", Metric: "cpu", AbsentFor: 10 * time.Minute, Severity: alerting.Warning}, []step{
			{0, v(1), "", nil},
			{9 * time.Minute, nil, "", nil},
			{time.Minute, nil, alerting.Firing, []string{firing}},
			{time.Minute, v(1), alerting.Resolved, []string{resolved}},
		}},
		{"absent_for with for", alerting.Policy{Name: "heartbeat", Metric: "cpu", AbsentFor: 3 * time.Minute, For: 2 * time.Minute, Severity: alerting.Warning}, []step{
			{0, v(1), "", nil},
			{3 * time.Minute, nil, alerting.Pending, nil},
			{time.Minute, nil, alerting.Pending, nil},
			{time.Minute, nil, alerting.Firing, []string{firing}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.policy)
			labels := web
			for i, s := range tt.steps {
				h.advance(s.after)
				if s.value != nil {
					h.sample("cpu", web, *s.value)
				}
				h.eval()
				a := h.alert(tt.policy.Name, labels)
				if a.State != s.state && !(s.state == "" && a.State == alerting.Inactive) {
					t.Errorf("step %d (t+%v): state = %q, want %q", i, h.now.Sub(t0), a.State, s.state)
				}
				if got := h.types(); !slices.Equal(got, s.sent) {
					t.Errorf("step %d (t+%v): sent %v, want %v", i, h.now.Sub(t0), got, s.sent)
				}
			}
		})
	}
}

func TestAbsentMetric(t *testing.T) {
	p := alerting.Policy{Name: "no-usage", Metric: "usage", Labels: alerting.Labels{"tenant": "acme"}, AbsentFor: 5 * time.Minute, Severity: alerting.Critical}
	h := newHarness(t, p)
	// The engine's history is the evidence: a metric it never received in
	// absent_for is absent at once, whichever instance evaluates.
	h.eval()
	a := h.alert(p.Name, p.Labels)
	if a.State != alerting.Firing || a.Reason != alerting.ReasonAbsent || a.Value != 300 {
		t.Errorf("metric absent for 5m: alert = %s %s value %v, want firing absent 300", a.State, a.Reason, a.Value)
	}
	if got := h.types(); !slices.Equal(got, []string{firing}) {
		t.Errorf("sent %v, want one firing", got)
	}
	h.advance(time.Minute)
	h.sample("usage", alerting.Labels{"tenant": "acme", "resource": "cpu"}, 1)
	h.eval()
	if a := h.alert(p.Name, p.Labels); a.State != alerting.Resolved {
		t.Errorf("after data arrived: state %s, want resolved", a.State)
	}
	if got := h.types(); !slices.Equal(got, []string{resolved}) {
		t.Errorf("sent %v, want one resolved", got)
	}
	// The series goes quiet: its own absence fires, not the metric's.
	h.advance(5 * time.Minute)
	h.eval()
	series := alerting.Labels{"tenant": "acme", "resource": "cpu"}
	if a := h.alert(p.Name, series); a.State != alerting.Firing || a.Reason != alerting.ReasonAbsent || a.Value != 300 {
		t.Errorf("series quiet for 5m: %s %s value %v, want firing absent 300", a.State, a.Reason, a.Value)
	}
	if a := h.alert(p.Name, p.Labels); a.State != alerting.Resolved {
		t.Errorf("metric alert while a series is quiet: %s, want resolved", a.State)
	}
}

func TestSilence(t *testing.T) {
	h := newHarness(t, cpuPolicy(func(p *alerting.Policy) { p.For = 0 }))
	sl := alerting.Silence{ID: "maint", Matchers: alerting.Labels{"alertname": "cpu-high", "tenant": "acme"}, StartsAt: t0, EndsAt: t0.Add(10 * time.Minute)}
	if _, err := h.store.PutSilence(t.Context(), sl); err != nil {
		t.Fatal(err)
	}
	h.sample("cpu", web, 0.9)
	h.eval()
	if a := h.alert("cpu-high", web); a.State != alerting.Firing || a.Notified {
		t.Errorf("silenced alert: state %s notified %v, want firing, not notified", a.State, a.Notified)
	}
	other := alerting.Labels{"tenant": "globex", "region": "eu"}
	h.sample("cpu", other, 0.9)
	h.eval()
	if got := h.types(); !slices.Equal(got, []string{firing}) {
		t.Errorf("sent %v, want one firing for the unsilenced tenant", got)
	}
	h.advance(10 * time.Minute)
	h.sample("cpu", web, 0.9)
	h.sample("cpu", other, 0.9)
	h.eval()
	got := h.pub.take()
	if len(got) != 2 {
		t.Fatalf("after the silence expired: sent %d notifications, want 2 (the muted firing, the other's repeat)", len(got))
	}
	// A resolution while silenced is not sent.
	sl.StartsAt, sl.EndsAt = h.now, h.now.Add(time.Hour)
	if _, err := h.store.PutSilence(t.Context(), sl); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Minute)
	h.sample("cpu", web, 0.1)
	h.eval()
	if a := h.alert("cpu-high", web); a.State != alerting.Resolved {
		t.Errorf("state %s, want resolved", a.State)
	}
	if got := h.types(); len(got) != 0 {
		t.Errorf("resolution while silenced sent %v, want nothing", got)
	}
}

func TestRestartKeepsState(t *testing.T) {
	h := newHarness(t, cpuPolicy(func(p *alerting.Policy) { p.For = 5 * time.Minute }))
	h.sample("cpu", web, 0.9)
	h.eval()
	h.advance(2 * time.Minute)
	h.restart("instance-2")
	// The series live in the engine: a fresh process sees the same data.
	h.advance(2 * time.Minute)
	h.eval()
	if a := h.alert("cpu-high", web); a.State != alerting.Pending || !a.ActiveAt.Equal(t0) {
		t.Errorf("after restart: %s active %v, want pending since %v", a.State, a.ActiveAt, t0)
	}
	h.sample("cpu", web, 0.9)
	h.advance(time.Minute)
	h.sample("cpu", web, 0.9)
	h.eval()
	if a := h.alert("cpu-high", web); a.State != alerting.Firing || !a.FiredAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("5m after the first sample: %s fired %v, want firing at t+5m", a.State, a.FiredAt)
	}
	if got := h.types(); !slices.Equal(got, []string{firing}) {
		t.Errorf("sent %v, want one firing", got)
	}
}

func TestNewInstanceResolvesOnTheSameData(t *testing.T) {
	h := newHarness(t, cpuPolicy(func(p *alerting.Policy) { p.For = 0 }))
	h.sample("cpu", web, 0.9)
	h.eval()
	h.types()
	h.restart("instance-2")
	h.advance(5 * time.Minute)
	h.eval()
	if a := h.alert("cpu-high", web); a.State != alerting.Firing {
		t.Errorf("new process within the lookback: %s, want firing", a.State)
	}
	h.advance(time.Second)
	h.eval()
	if a := h.alert("cpu-high", web); a.State != alerting.Resolved {
		t.Errorf("new process after the lookback without data: %s, want resolved", a.State)
	}
	if got := h.types(); !slices.Equal(got, []string{firing, resolved}) {
		t.Errorf("sent %v, want the repeat at 5m, then one resolved", got)
	}
}

func TestEngineDownKeepsAlertState(t *testing.T) {
	h := newHarness(t, cpuPolicy(func(p *alerting.Policy) { p.For = 0 }))
	h.sample("cpu", web, 0.9)
	h.eval()
	h.types()
	before := h.alert("cpu-high", web)
	h.prom.Stop()
	for range 3 {
		h.advance(10 * time.Minute)
		rep, err := h.runner.Evaluate(t.Context())
		if fault.ErrorCode(err) != fault.Unavailable || !rep.Evaluated || rep.Failed != 1 || !rep.FairnessFailed {
			t.Fatalf("Evaluate with the engine down = %+v, %v; want evaluated, 1 failed policy, fairness failed, unavailable", rep, err)
		}
	}
	after := h.alert("cpu-high", web)
	if after.State != alerting.Firing || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("after 30m without an engine: %s updated %v, want firing, untouched since %v", after.State, after.UpdatedAt, before.UpdatedAt)
	}
	if got := h.types(); len(got) != 0 {
		t.Errorf("sent %v while the engine was down, want nothing", got)
	}
}

func TestPolicyDeletedResolves(t *testing.T) {
	h := newHarness(t, cpuPolicy(func(p *alerting.Policy) { p.For = 0 }))
	h.sample("cpu", web, 0.9)
	h.eval()
	if err := h.store.DeletePolicy(t.Context(), "cpu-high"); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Minute)
	h.eval()
	a := h.alert("cpu-high", web)
	if a.State != alerting.Resolved || a.Reason != alerting.ReasonPolicyDeleted {
		t.Errorf("after policy deletion: %s %s, want resolved policy_deleted", a.State, a.Reason)
	}
	if got := h.types(); !slices.Equal(got, []string{firing, resolved}) {
		t.Errorf("sent %v, want firing then resolved", got)
	}
	h.advance(alerting.DefaultResolvedRetention)
	h.eval()
	if list, _ := h.store.Alerts(t.Context()); len(list) != 0 {
		t.Errorf("after retention: %d alerts stored, want 0", len(list))
	}
}

func TestPublishFailureRetriesSameID(t *testing.T) {
	h := newHarness(t, cpuPolicy(func(p *alerting.Policy) { p.For = 0 }))
	h.pub.fail = true
	h.sample("cpu", web, 0.9)
	if _, err := h.runner.Evaluate(t.Context()); err == nil {
		t.Fatal("Evaluate with the broker down = nil, want an error")
	}
	a := h.alert("cpu-high", web)
	if len(a.Outbox) != 1 || a.State != alerting.Firing {
		t.Fatalf("after failed publish: %s outbox %d, want firing with 1 pending notification", a.State, len(a.Outbox))
	}
	id := a.Outbox[0].ID
	h.pub.fail = false
	h.advance(30 * time.Second)
	h.sample("cpu", web, 0.9)
	rep := h.eval()
	got := h.pub.take()
	if len(got) != 1 || got[0].ID != id || rep.Republished != 1 {
		t.Errorf("retry sent %v (republished %d), want exactly %s", got, rep.Republished, id)
	}
	h.advance(30 * time.Second)
	h.eval()
	if got := h.pub.take(); len(got) != 0 {
		t.Errorf("after successful retry: sent %v, want nothing", got)
	}
}

func TestLeaseFailover(t *testing.T) {
	h := newHarness(t, cpuPolicy(func(p *alerting.Policy) { p.For = 0 }))
	a := h.runner
	h.sample("cpu", web, 0.9)
	if rep := h.eval(); !rep.Evaluated {
		t.Fatalf("first instance did not evaluate: %+v", rep)
	}
	h.restart("instance-2")
	b := h.runner
	h.sample("cpu", web, 0.9)
	h.advance(30 * time.Second)
	if rep, _ := b.Evaluate(t.Context()); rep.Evaluated || rep.Holder != "instance-1" {
		t.Errorf("second instance while the first holds the lease: %+v, want skipped", rep)
	}
	// The first instance dies; its lease expires.
	h.advance(31 * time.Second)
	h.sample("cpu", web, 0.9)
	if rep, _ := b.Evaluate(t.Context()); !rep.Evaluated {
		t.Errorf("second instance after expiry: %+v, want evaluated", rep)
	}
	// The first comes back and finds the lease taken.
	if rep, _ := a.Evaluate(t.Context()); rep.Evaluated {
		t.Errorf("old holder after takeover: %+v, want skipped", rep)
	}
	h.advance(time.Minute)
	h.sample("cpu", web, 0.1)
	h.eval()
	if got := h.types(); !slices.Equal(got, []string{firing, resolved}) {
		t.Errorf("across the failover: sent %v, want one firing and one resolved", got)
	}
	if err := b.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rep, _ := a.Evaluate(t.Context()); !rep.Evaluated {
		t.Errorf("after release: %+v, want the other instance to evaluate", rep)
	}
}

func TestNotificationData(t *testing.T) {
	h := newHarness(t, cpuPolicy(func(p *alerting.Policy) { p.For = 0 }))
	h.sample("cpu", web, 0.9)
	h.eval()
	got := h.pub.take()
	if len(got) != 1 {
		t.Fatalf("sent %d, want 1", len(got))
	}
	n := got[0]
	fp := alerting.Fingerprint("cpu-high", web)
	if n.ID != alerting.NotificationID(fp, "firing", t0) || n.Tenant != "acme" || n.Channel != alerting.ChannelAlerts {
		t.Errorf("notification = %+v, want id %s, tenant acme, channel alerts", n, alerting.NotificationID(fp, "firing", t0))
	}
	var d map[string]any
	if err := json.Unmarshal(n.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d["fingerprint"] != fp || d["state"] != "firing" || d["value"] != 0.9 || d["threshold"] != 0.8 || d["severity"] != "critical" {
		t.Errorf("data = %s", n.Data)
	}
}
