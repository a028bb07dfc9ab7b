package alerting_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

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
			if err == nil || fault.ErrorCode(err) != fault.Invalid || l != tt.limit || !strings.Contains(err.Error(), tt.want) {
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
			if err == nil || fault.ErrorCode(err) != fault.Invalid || !strings.Contains(err.Error(), tt.want) || len(err.Error()) > 400 {
				t.Errorf("ValidateReceipt = %v, want a short invalid error containing %q", err, tt.want)
			}
		})
	}
}

func TestReceiptSeriesAreBounded(t *testing.T) {
	m := alerting.NewReceiptMetricsWith(alerting.ReceiptOptions{Window: time.Minute, MaxTenants: 3})
	now := t0
	for i := range 50 {
		for _, d := range governor.Domains {
			for _, o := range []string{"accepted", "rejected", "maybe"} {
				rc := validReceipt(func(r *receipt.Receipt) {
					r.TenantID, r.Domain, r.Outcome = fmt.Sprint("tenant-", i), string(d), o
					r.Reason = string(governor.ReasonCascadeDepth)
				})
				attrs := map[string]string{alerting.AttrCascadeDepth: "3", alerting.AttrEventTime: now.Add(-time.Second).Format(time.RFC3339Nano)}
				m.Observe(&rc, attrs, now, now)
			}
		}
	}
	series := map[string]bool{}
	counters := 0
	other := false
	for _, s := range m.Snapshot(now) {
		series[s.Name+s.Labels.Key()] = true
		if s.Name == alerting.MetricDecisionsTotal {
			counters++
		}
		if s.Name == alerting.MetricDecisionLatency && s.Labels["tenant"] == alerting.OtherTenant {
			other = true
		}
	}
	if got, bound := len(series), m.MaxSeries(); got != bound {
		t.Errorf("%d series from receipts of 50 tenants, every domain and outcome; want exactly the bound %d", got, bound)
	}
	if counters != 2*len(governor.Domains) {
		t.Errorf("decision counters: %d series, want one per domain and known outcome", counters)
	}
	if !other {
		t.Errorf("no latency series for %s: tenants past the limit must share it", alerting.OtherTenant)
	}
}
