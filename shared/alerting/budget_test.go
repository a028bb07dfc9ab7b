package alerting_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// liveHeap returns the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestSeriesCostCoversMemory holds the estimate the budget counts in
// (SeriesCost and the index overheads) to the heap the series really
// take, for shapes from the common to the worst case: the estimate must
// never be below the measured heap, or the budget would not bound memory,
// and not wildly above it either.
func TestSeriesCostCoversMemory(t *testing.T) {
	const n = 8000
	pad := strings.Repeat("x", 900)
	tests := []struct {
		name string
		gen  func(i int) (string, alerting.Labels)
	}{
		{"three labels, one unique", func(i int) (string, alerting.Labels) {
			return "http_requests", alerting.Labels{"tenant": fmt.Sprintf("tenant-%03d", i%200), "instance": fmt.Sprintf("i-%05d", i), "region": fmt.Sprintf("r%d", i%5)}
		}},
		{"a metric per series", func(i int) (string, alerting.Labels) {
			return fmt.Sprintf("metric_%06d", i), alerting.Labels{"a": "b"}
		}},
		{"no labels", func(i int) (string, alerting.Labels) { return fmt.Sprintf("metric_%06d", i), nil }},
		{"32 unique labels", func(i int) (string, alerting.Labels) {
			l := alerting.Labels{}
			for k := range 32 {
				l[fmt.Sprintf("l%02d", k)] = fmt.Sprint(i)
			}
			return "wide", l
		}},
		{"2 KiB of labels", func(i int) (string, alerting.Labels) {
			return "fat", alerting.Labels{"id": fmt.Sprint(i), "pad": pad, "pad2": pad}
		}},
		{"full history", func(i int) (string, alerting.Labels) {
			return alerting.DefaultFairnessMetric, alerting.Labels{"tenant": fmt.Sprint("t", i), "resource": "cpu"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples := make([]alerting.Sample, n)
			for i := range samples {
				name, l := tt.gen(i)
				samples[i] = alerting.Sample{Name: name, Labels: l, Value: 1, Time: t0}
			}
			before := liveHeap()
			s := alerting.NewSeriesSet(t0, alerting.SeriesOptions{
				MaxSeries: 1 << 30, MaxMemory: 1 << 40, SourceShare: 1,
				History: map[string]time.Duration{alerting.DefaultFairnessMetric: time.Hour},
			})
			for i := 0; i < n; i += 500 {
				if err := s.AddFrom(fmt.Sprint("source-", i%7), samples[i:i+500]...); err != nil {
					t.Fatal(err)
				}
			}
			if tt.name == "full history" {
				for k := 1; k <= alerting.DefaultMaxHistoryPoints+10; k++ {
					for i := range samples {
						samples[i].Time = t0.Add(time.Duration(k) * time.Second)
					}
					if err := s.Add(samples...); err != nil {
						t.Fatal(err)
					}
				}
			}
			measured := int64(liveHeap() - before)
			estimated := s.Usage().Memory
			runtime.KeepAlive(s)
			runtime.KeepAlive(samples)
			t.Logf("%d series: measured %d B/series, estimated %d B/series", n, measured/n, estimated/n)
			if estimated < measured {
				t.Errorf("estimated %d bytes, measured %d: the budget underestimates memory", estimated, measured)
			}
			if estimated > 4*measured {
				t.Errorf("estimated %d bytes, measured %d: the estimate is more than 4 times too large", estimated, measured)
			}
		})
	}
}

func TestSeriesBudget(t *testing.T) {
	s := alerting.NewSeriesSet(t0, alerting.SeriesOptions{MaxSeries: 8, SourceShare: 0.5})
	one := func(name, v string) alerting.Sample {
		return alerting.Sample{Name: name, Labels: alerting.Labels{"k": v}, Value: 1, Time: t0}
	}
	batch := func(n int, prefix string) []alerting.Sample {
		out := make([]alerting.Sample, n)
		for i := range out {
			out[i] = one("m", fmt.Sprint(prefix, i))
		}
		return out
	}
	wantLimit := func(what string, err error, l alerting.Limit) {
		t.Helper()
		if got, ok := alerting.LimitOf(err); !ok || got != l || governor.ErrorCode(err) != governor.Invalid {
			t.Errorf("%s = %v, want an invalid error wrapping %s", what, err, l)
		}
	}
	if err := s.AddFrom("a", batch(4, "a")...); err != nil {
		t.Fatalf("AddFrom(a, 4 series) = %v, want its whole share", err)
	}
	wantLimit("AddFrom(a, a 5th series)", s.AddFrom("a", one("m", "a-more")), alerting.LimitSourceShare)
	// Updates of series a holds are not new series.
	if err := s.AddFrom("a", batch(4, "a")...); err != nil {
		t.Errorf("AddFrom(a, its own series again) = %v, want nil", err)
	}
	// A refused batch records nothing, not even its first points.
	mixed := append(batch(3, "b"), batch(2, "b-extra")...)
	wantLimit("AddFrom(b, 5 series)", s.AddFrom("b", mixed...), alerting.LimitSourceShare)
	if n, _ := s.SourceUsage("b"); n != 0 || s.Len() != 4 {
		t.Errorf("after a refused batch: b holds %d series, %d in all; want 0 and 4", n, s.Len())
	}
	if err := s.AddFrom("b", batch(4, "b")...); err != nil {
		t.Fatal(err)
	}
	wantLimit("AddFrom(c) with the set full", s.AddFrom("c", one("m", "c")), alerting.LimitSeries)
	wantLimit("Add() with the set full", s.Add(one("m", "anon")), alerting.LimitSeries)
	// Reserved metrics have their own budget and cannot be pushed.
	if err := s.AddFrom("c", one(alerting.MetricDecisionsTotal, "x")); governor.ErrorCode(err) != governor.Invalid || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("AddFrom(a reserved metric) = %v, want it refused as reserved", err)
	}
	if err := s.AddReserved(one(alerting.MetricDecisionsTotal, "x")); err != nil {
		t.Errorf("AddReserved with the pushed budget full = %v, want nil", err)
	}
	if err := s.AddReserved(one("m", "x")); err == nil {
		t.Error("AddReserved(an ordinary metric) = nil, want an error")
	}
	// Pruning returns the budget to the source that was charged.
	s2 := alerting.NewSeriesSet(t0, alerting.SeriesOptions{MaxSeries: 8, SourceShare: 0.5})
	_ = s2.AddFrom("a", batch(4, "a")...)
	later := t0.Add(time.Hour)
	fresh := []alerting.Sample{one("m", "a0"), one("m", "a1")}
	for i := range fresh {
		fresh[i].Time = later
	}
	if err := s2.AddFrom("b", fresh...); err != nil {
		t.Fatal(err)
	}
	if n := s2.Prune(later.Add(-time.Minute)); n != 2 {
		t.Fatalf("Prune = %d, want 2", n)
	}
	if n, _ := s2.SourceUsage("a"); n != 2 {
		t.Errorf("after Prune a holds %d series, want 2 (the two b refreshed stay a's)", n)
	}
	if err := s2.AddFrom("a", one("m", "a-new-1"), one("m", "a-new-2")); err != nil {
		t.Errorf("AddFrom(a) after Prune freed its share = %v, want nil", err)
	}
	// The memory budget binds too.
	small := alerting.NewSeriesSet(t0, alerting.SeriesOptions{MaxMemory: 64 << 10, SourceShare: 1})
	big := alerting.Labels{"pad": strings.Repeat("p", 1000)}
	var err error
	added := 0
	for i := 0; err == nil && i < 1000; i++ {
		l := big.Clone()
		l["id"] = fmt.Sprint(i)
		if err = small.Add(alerting.Sample{Name: "m", Labels: l, Value: 1, Time: t0}); err == nil {
			added++
		}
	}
	wantLimit("AddFrom past the memory budget", err, alerting.LimitSeries)
	if u := small.Usage(); u.Memory > u.MaxMemory || added == 0 || added > 64 {
		t.Errorf("memory budget: %d series, %+v", added, u)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s := alerting.NewSeriesSet(t0, alerting.SeriesOptions{MaxHistoryPoints: 10, History: map[string]time.Duration{"u": time.Hour}})
	labels := alerting.Labels{"tenant": "a", "resource": "cpu"}
	batch := make([]alerting.Sample, 1000)
	for i := range batch {
		batch[i] = alerting.Sample{Name: "u", Labels: labels, Value: float64(i), Time: t0.Add(time.Duration(i) * time.Millisecond)}
	}
	if err := s.Add(batch...); err != nil {
		t.Fatal(err)
	}
	o := alerting.DefaultFairness()
	o.Metric, o.Window = "u", time.Hour
	got := alerting.Shares(s, t0.Add(time.Second), o)
	// Only the 10 latest points (990 to 999) are kept: their mean is 994.5.
	if len(got) != 1 || got[0].Usage != 994.5 {
		t.Errorf("Shares = %+v, want the mean of the 10 latest points, 994.5", got)
	}
}

func TestParseSamplesLimits(t *testing.T) {
	now := t0
	rules := alerting.SampleRules{MaxFuture: time.Minute, MaxAge: time.Hour, MaxBodyBytes: 4096, MaxPoints: 3, MaxSeriesLabelBytes: 64, MaxRequestLabelBytes: 100}
	point := func(labels string) string { return `{"name":"cpu","labels":{` + labels + `},"value":1}` }
	tests := []struct {
		name, body string
		limit      alerting.Limit
		want       string
	}{
		{"too many points", "[" + strings.Repeat(point(`"a":"b"`)+",", 3) + point(`"a":"b"`) + "]", alerting.LimitPoints, "more than 3 points"},
		{"series too large", "[" + point(`"a":"`+strings.Repeat("v", 70)+`"`) + "]", alerting.LimitSeriesLabelBytes, "limit 64 per series"},
		{"request labels too large", "[" + point(`"a":"`+strings.Repeat("v", 50)+`"`) + "," + point(`"a":"`+strings.Repeat("w", 50)+`"`) + "]", alerting.LimitRequestLabelBytes, "limit 100 per request"},
		{"body too large", "[" + point(`"a":"`+strings.Repeat("v", 5000)+`"`) + "]", alerting.LimitBodyBytes, "limit 4096"},
		{"duplicate member", `[{"name":"cpu","value":1,"value":2}]`, "", `duplicate member "value"`},
		{"duplicate label", `[{"name":"cpu","labels":{"a":"1","a":"2"},"value":1}]`, "", `duplicate member "a"`},
		{"case variant", `[{"NAME":"cpu","value":1}]`, "", `unknown field "NAME"`},
		{"trailing data", `[{"name":"cpu","value":1}] [1]`, "", "trailing data"},
		{"trailing bracket", `[{"name":"cpu","value":1}]]`, "", "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alerting.ParseSamples([]byte(tt.body), now, rules)
			l, _ := alerting.LimitOf(err)
			if err == nil || governor.ErrorCode(err) != governor.Invalid || l != tt.limit || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseSamples = %v (limit %q), want an invalid error with limit %q containing %q", err, l, tt.limit, tt.want)
			}
		})
	}
	long := strings.Repeat("n", 100000)
	_, err := alerting.ParseSamples([]byte(`[{"name":"`+long+`","value":1}]`), now, alerting.DefaultSampleRules)
	if err == nil || len(err.Error()) > 400 {
		t.Errorf("ParseSamples(a 100 kB name) = %d bytes of error, want a refusal quoting little of it", len(fmt.Sprint(err)))
	}
}

// validReceipt returns a well-formed, correctly hashed receipt.
func validReceipt(mutate func(*receipt.Receipt)) receipt.Receipt {
	inst := governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}}
	ev := governor.Event{ID: "e1", Source: "test", Type: "autonomics.billing.opened", Domain: governor.Billing, Name: "opened", Tenant: "acme", Subject: "2026-11"}
	rc := receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: "none", To: "open"}, t0)
	if mutate != nil {
		mutate(&rc)
		rc.Hash = rc.ComputeHash()
	}
	return rc
}

func TestValidateReceipt(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*receipt.Receipt)
		want   string
	}{
		{"valid", nil, ""},
		{"rejected", func(r *receipt.Receipt) { r.Outcome = "rejected" }, ""},
		{"every domain", func(r *receipt.Receipt) { r.Domain = "multi_tenant" }, ""},
		{"unknown domain", func(r *receipt.Receipt) { r.Domain = "billingx" }, "not a governor domain"},
		{"huge domain", func(r *receipt.Receipt) { r.Domain = strings.Repeat("d", 370<<10) }, "(378880 bytes) is not a governor domain"},
		{"unknown outcome", func(r *receipt.Receipt) { r.Outcome = "maybe" }, "outcome"},
		{"outcome case", func(r *receipt.Receipt) { r.Outcome = "Accepted" }, "outcome"},
		{"empty outcome", func(r *receipt.Receipt) { r.Outcome = "" }, "outcome"},
		{"reserved tenant", func(r *receipt.Receipt) { r.TenantID = "__other" }, "tenant_id"},
		{"long tenant", func(r *receipt.Receipt) { r.TenantID = strings.Repeat("t", 129) }, "tenant_id"},
		{"long subject", func(r *receipt.Receipt) { r.Subject = strings.Repeat("s", 129) }, "subject is 129 bytes"},
		{"long reason", func(r *receipt.Receipt) { r.Reason = strings.Repeat("r", 5000) }, "reason is 5000 bytes"},
		{"long event type", func(r *receipt.Receipt) { r.EventType = strings.Repeat("e", 300) }, "event_type is 300 bytes"},
		{"bad prev hash", func(r *receipt.Receipt) { r.PrevHash = "zz" }, "prev_hash"},
		{"bad decided_at", func(r *receipt.Receipt) { r.DecidedAt = "yesterday" }, "decided_at"},
		{"too many actions", func(r *receipt.Receipt) { r.Actions = make([]receipt.Action, 300) }, "300 actions"},
		{"long action id", func(r *receipt.Receipt) {
			r.Actions = []receipt.Action{{Kind: "event", ID: strings.Repeat("i", 300)}}
		}, "actions[0].id is 300 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := validReceipt(tt.mutate)
			err := alerting.ValidateReceipt(&rc)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ValidateReceipt = %v, want nil", err)
				}
				return
			}
			if err == nil || governor.ErrorCode(err) != governor.Invalid || !strings.Contains(err.Error(), tt.want) || len(err.Error()) > 400 {
				t.Errorf("ValidateReceipt = %v, want a short invalid error containing %q", err, tt.want)
			}
		})
	}
}

func TestReceiptSeriesAreBounded(t *testing.T) {
	m := alerting.NewReceiptMetricsWith(alerting.ReceiptOptions{Window: time.Minute, MaxTenants: 3})
	s := alerting.NewSeriesSet(t0, alerting.SeriesOptions{ReservedSeries: m.MaxSeries()})
	now := t0
	for i := range 50 {
		for _, d := range governor.Domains {
			for _, o := range []string{"accepted", "rejected", "maybe"} {
				rc := validReceipt(func(r *receipt.Receipt) {
					r.TenantID, r.Domain, r.Outcome = fmt.Sprint("tenant-", i), string(d), o
					r.Reason = governor.ReasonCascadeDepth
				})
				attrs := map[string]string{alerting.AttrCascadeDepth: "3", alerting.AttrEventTime: now.Add(-time.Second).Format(time.RFC3339Nano)}
				if err := s.AddReserved(m.Observe(&rc, attrs, now, now)...); err != nil {
					t.Fatalf("AddReserved(receipt counters) = %v", err)
				}
			}
		}
	}
	if err := s.AddReserved(m.Samples(now)...); err != nil {
		t.Fatalf("AddReserved(receipt gauges) = %v", err)
	}
	if got, bound := s.Len(), m.MaxSeries(); got != bound {
		t.Errorf("%d series from receipts of 50 tenants, every domain and outcome; want exactly the bound %d", got, bound)
	}
	if s.Count(alerting.MetricDecisionsTotal) != 2*len(governor.Domains) {
		t.Errorf("decision counters: %d series, want one per domain and known outcome", s.Count(alerting.MetricDecisionsTotal))
	}
	if _, ok := s.Latest(alerting.MetricDecisionLatency, alerting.Labels{"tenant": alerting.OtherTenant}); !ok {
		t.Errorf("no latency series for %s: tenants past the limit must share it", alerting.OtherTenant)
	}
}
