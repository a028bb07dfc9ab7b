package alerting_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/promtest"
	"github.com/autonomics/autonomics/shared/receipt"
)

// feed writes usage samples of the fairness metric every 30s for d.
func feed(h *harness, d time.Duration, usage map[string]float64) {
	for end := h.now.Add(d); h.now.Before(end); h.advance(30 * time.Second) {
		var batch []alerting.Sample
		for tenant, u := range usage {
			batch = append(batch, alerting.Sample{Name: h.fair.Metric, Labels: alerting.Labels{"tenant": tenant, "resource": "cpu"}, Value: u, Time: h.now})
		}
		h.prom.Write(h.t, batch...)
	}
}

func TestFairness(t *testing.T) {
	h := newHarness(t)
	feed(h, 5*time.Minute, map[string]float64{"acme": 9, "globex": 1})
	h.eval()
	got := h.pub.take()
	if len(got) != 1 || got[0].Type != alerting.TypeNoisyNeighbor || got[0].Tenant != "acme" || got[0].Subject != "default" {
		t.Fatalf("sent %+v, want noisy_neighbor_detected for acme", got)
	}
	var d struct {
		ShareBP int `json:"share_bp"`
	}
	if err := json.Unmarshal(got[0].Data, &d); err != nil || d.ShareBP != 9000 || string(got[0].Data) != `{"share_bp":9000}` {
		t.Errorf("data = %s, want {\"share_bp\":9000}", got[0].Data)
	}
	// Above threshold - hysteresis: still noisy, nothing sent.
	feed(h, 6*time.Minute, map[string]float64{"acme": 4.5, "globex": 4.5, "initech": 1})
	h.eval()
	if got := h.types(); len(got) != 0 {
		t.Errorf("at 45%% (hysteresis): sent %v, want nothing", got)
	}
	feed(h, 6*time.Minute, map[string]float64{"acme": 3, "globex": 4, "initech": 3})
	h.eval()
	if got := h.types(); !slices.Equal(got, []string{alerting.TypeRecovered}) {
		t.Errorf("at 30%%: sent %v, want recovered", got)
	}
	// Alone, a tenant is nobody's noisy neighbour.
	h2 := newHarness(t)
	feed(h2, 10*time.Minute, map[string]float64{"acme": 100})
	h2.eval()
	if got := h2.types(); len(got) != 0 {
		t.Errorf("single tenant: sent %v, want nothing", got)
	}
}

func TestFairnessEngineDownRecoversNobody(t *testing.T) {
	h := newHarness(t)
	feed(h, 5*time.Minute, map[string]float64{"acme": 9, "globex": 1})
	h.eval()
	if got := h.types(); !slices.Equal(got, []string{alerting.TypeNoisyNeighbor}) {
		t.Fatalf("sent %v, want one detection", got)
	}
	h.prom.Stop()
	h.advance(time.Hour)
	if rep, err := h.runner.Evaluate(t.Context()); err == nil || !rep.FairnessFailed {
		t.Fatalf("Evaluate with the engine down = %+v, %v; want fairness failed and an error", rep, err)
	}
	if got := h.types(); len(got) != 0 {
		t.Errorf("engine down: sent %v, want nothing (no recovery for lack of evidence)", got)
	}
	a := h.alert(alerting.FairnessPolicy, alerting.Labels{"tenant": "acme"})
	if a.State != alerting.Firing {
		t.Errorf("noisy neighbour with the engine down: %s, want still firing", a.State)
	}
}

func TestShares(t *testing.T) {
	s := promtest.Start(t)
	o := alerting.DefaultFairness()
	o.Metric = promtest.UniqueName("u")
	o.ThresholdBP, o.HysteresisBP = 2000, 0
	for i, v := range []float64{2, 4} {
		at := t0.Add(time.Duration(i) * time.Minute)
		s.Write(t,
			alerting.Sample{Name: o.Metric, Labels: alerting.Labels{"tenant": "a", "resource": "cpu"}, Value: v, Time: at},
			alerting.Sample{Name: o.Metric, Labels: alerting.Labels{"tenant": "b", "resource": "cpu"}, Value: 1, Time: at},
			alerting.Sample{Name: o.Metric, Labels: alerting.Labels{"tenant": "c", "resource": "cpu"}, Value: -5, Time: at},
			alerting.Sample{Name: o.Metric, Labels: alerting.Labels{"tenant": "__bad", "resource": "cpu"}, Value: 100, Time: at},
			alerting.Sample{Name: o.Metric, Labels: alerting.Labels{"tenant": "..", "resource": "cpu"}, Value: 100, Time: at},
			alerting.Sample{Name: o.Metric, Labels: alerting.Labels{"tenant": "a", "resource": "disk"}, Value: 5, Time: at},
			alerting.Sample{Name: o.Metric, Labels: alerting.Labels{"tenant": "a"}, Value: 50, Time: at},
		)
	}
	elems, err := s.Querier().Query(t.Context(), alerting.FairnessQuery(o), t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("FairnessQuery = %v", err)
	}
	got := alerting.ParseShares(elems, o)
	want := []alerting.Share{
		{Tenant: "a", Resource: "cpu", BP: 7500, Contended: true},
		{Tenant: "b", Resource: "cpu", BP: 2500, Contended: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("shares = %+v, want %+v (invalid tenants, negative usage and uncontended resources left out)", got, want)
	}
}

func TestReceiptMetrics(t *testing.T) {
	m := alerting.NewReceiptMetrics(5 * time.Minute)
	now := t0
	rc := func(domain, outcome, reason string) *receipt.Receipt {
		return &receipt.Receipt{TenantID: "acme", Domain: domain, Outcome: outcome, Reason: reason, DecidedAt: now.Add(-2 * time.Second).Format(receipt.TimeFormat)}
	}
	m.Observe(rc("billing", "accepted", ""), nil, now, now)
	m.Observe(rc("billing", "accepted", ""), map[string]string{"cascadedepth": "3", "event_time": now.Add(-5 * time.Second).Format(time.RFC3339Nano)}, time.Time{}, now)
	out := m.Observe(rc("billing", "rejected", "cascade_depth_exceeded: depth 8"), map[string]string{"ce-cascadedepth": "8"}, now.Add(time.Second), now)
	if len(out) != 2 || out[0].Name != alerting.MetricDecisionsTotal || out[0].Value != 1 || out[1].Name != alerting.MetricCascadeDepthExceeded {
		t.Errorf("Observe(rejected) = %+v, want the rejected counter and the depth-exceeded counter", out)
	}
	got := map[string]float64{}
	for _, s := range m.Snapshot(now.Add(time.Minute)) {
		got[s.Name+s.Labels.String()] = s.Value
	}
	want := map[string]float64{
		alerting.MetricDecisions + `{domain="billing", outcome="accepted"}`:      2,
		alerting.MetricDecisions + `{domain="billing", outcome="rejected"}`:      1,
		alerting.MetricDecisionsTotal + `{domain="billing", outcome="accepted"}`: 2,
		alerting.MetricDecisionsTotal + `{domain="billing", outcome="rejected"}`: 1,
		alerting.MetricCascadeDepthExceeded + `{domain="billing"}`:               1,
		alerting.MetricRejectionRatio + `{domain="billing"}`:                     1.0 / 3,
		alerting.MetricCascadeDepth + `{domain="billing"}`:                       8,
		alerting.MetricDecisionLatency + `{tenant="acme"}`:                       3,
		alerting.MetricDeliveryLag + `{tenant="acme"}`:                           3,
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || fmt.Sprintf("%.6f", g) != fmt.Sprintf("%.6f", w) {
			t.Errorf("Snapshot()[%s] = %v (present %v), want %v", k, g, ok, w)
		}
	}
	later := m.Samples(now.Add(6 * time.Minute))
	for _, s := range later {
		if s.Name == alerting.MetricDecisions && s.Value != 0 || s.Name == alerting.MetricRejectionRatio || s.Name == alerting.MetricCascadeDepth {
			t.Errorf("after the window: %s%s = %v, want counts 0 and no ratio or depth", s.Name, s.Labels, s.Value)
		}
	}
}
