package alerting_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

func TestSeriesSet(t *testing.T) {
	s := alerting.NewSeriesSet(t0, alerting.SeriesOptions{MaxSeries: 3})
	add := func(name, tenant string, v float64, at time.Time) error {
		return s.Add(alerting.Sample{Name: name, Labels: alerting.Labels{"tenant": tenant}, Value: v, Time: at})
	}
	if err := add("cpu", "a", 1, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := add("cpu", "a", 9, t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Latest("cpu", alerting.Labels{"tenant": "a"}); got.Value != 1 {
		t.Errorf("Latest after an out-of-order sample = %v, want 1 (the newer sample)", got.Value)
	}
	if err := add("cpu", "b", 1, t0); err != nil {
		t.Fatal(err)
	}
	if err := add("mem", "a", 1, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	err := add("mem", "b", 1, t0)
	if governor.ErrorCode(err) != governor.Invalid || !strings.Contains(err.Error(), "series limit 3") {
		t.Errorf("Add(4th series) = %v, want the series limit error", err)
	}
	if err := add("cpu", "a", 2, t0.Add(2*time.Minute)); err != nil {
		t.Errorf("Add(existing series at the limit) = %v, want nil", err)
	}
	if n := s.Prune(t0.Add(30 * time.Minute)); n != 2 || s.Len() != 1 {
		t.Errorf("Prune = %d (len %d), want 2 removed and 1 left", n, s.Len())
	}
	if _, ok := s.Latest("cpu", alerting.Labels{"tenant": "a"}); ok {
		t.Error("pruned series still present")
	}
	if _, ok := s.Latest("mem", alerting.Labels{"tenant": "a"}); !ok {
		t.Error("fresh series pruned")
	}
}

// usageHarness feeds usage samples every 30s for d.
func feed(h *harness, d time.Duration, usage map[string]float64) {
	for end := h.now.Add(d); h.now.Before(end); h.advance(30 * time.Second) {
		for tenant, u := range usage {
			h.sample(alerting.DefaultFairnessMetric, alerting.Labels{"tenant": tenant, "resource": "cpu"}, u)
		}
	}
}

func TestFairness(t *testing.T) {
	h := newHarness(t)
	// Warm-up: nothing is judged before one window of observation.
	feed(h, 4*time.Minute, map[string]float64{"acme": 9, "globex": 1})
	h.eval()
	if got := h.types(); len(got) != 0 {
		t.Fatalf("during warm-up: sent %v, want nothing", got)
	}
	feed(h, time.Minute, map[string]float64{"acme": 9, "globex": 1})
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

func TestShares(t *testing.T) {
	s := alerting.NewSeriesSet(t0, alerting.SeriesOptions{History: map[string]time.Duration{"u": 5 * time.Minute}})
	o := alerting.DefaultFairness()
	o.Metric = "u"
	for i, v := range []float64{2, 4} {
		at := t0.Add(time.Duration(i) * time.Minute)
		_ = s.Add(
			alerting.Sample{Name: "u", Labels: alerting.Labels{"tenant": "a", "resource": "cpu"}, Value: v, Time: at},
			alerting.Sample{Name: "u", Labels: alerting.Labels{"tenant": "b", "resource": "cpu"}, Value: 1, Time: at},
			alerting.Sample{Name: "u", Labels: alerting.Labels{"tenant": "__bad", "resource": "cpu"}, Value: 100, Time: at},
			alerting.Sample{Name: "u", Labels: alerting.Labels{"tenant": "a", "resource": "disk"}, Value: 5, Time: at},
		)
	}
	got := alerting.Shares(s, t0.Add(time.Minute), o)
	want := []alerting.Share{
		{Tenant: "a", Resource: "cpu", Usage: 3, BP: 7500, Contended: true},
		{Tenant: "b", Resource: "cpu", Usage: 1, BP: 2500, Contended: true},
		{Tenant: "a", Resource: "disk", Usage: 5, BP: 10000},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Shares = %+v, want %+v", got, want)
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
	for _, s := range m.Samples(now.Add(time.Minute)) {
		got[s.Name+s.Labels.String()] = s.Value
	}
	want := map[string]float64{
		alerting.MetricDecisions + `{domain="billing", outcome="accepted"}`: 2,
		alerting.MetricDecisions + `{domain="billing", outcome="rejected"}`: 1,
		alerting.MetricRejectionRatio + `{domain="billing"}`:                1.0 / 3,
		alerting.MetricCascadeDepth + `{domain="billing"}`:                  8,
		alerting.MetricDecisionLatency + `{tenant="acme"}`:                  3,
		alerting.MetricDeliveryLag + `{tenant="acme"}`:                      3,
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || fmt.Sprintf("%.6f", g) != fmt.Sprintf("%.6f", w) {
			t.Errorf("Samples()[%s] = %v (present %v), want %v", k, g, ok, w)
		}
	}
	later := m.Samples(now.Add(6 * time.Minute))
	for _, s := range later {
		if s.Name == alerting.MetricDecisions && s.Value != 0 || s.Name == alerting.MetricRejectionRatio || s.Name == alerting.MetricCascadeDepth {
			t.Errorf("after the window: %s%s = %v, want counts 0 and no ratio or depth", s.Name, s.Labels, s.Value)
		}
	}
}
