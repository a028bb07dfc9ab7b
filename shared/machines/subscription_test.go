package machines

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

func TestSubscriptionMachineValidate(t *testing.T) {
	m := subscriptionMachine()
	if err := m.Validate(); err != nil {
		t.Fatalf("subscriptionMachine().Validate() = %v, want nil", err)
	}
	const day = 24 * time.Hour
	want := map[string]time.Duration{"trial_end": 14 * day, "period_end": 30 * day, "grace": 7 * day, "suspension": 30 * day}
	for name, d := range want {
		if m.Timers[name] != d {
			t.Errorf("subscriptionMachine().Timers[%s] = %v, want %v", name, m.Timers[name], d)
		}
	}
	if len(m.Timers) != len(want) {
		t.Errorf("subscriptionMachine().Timers = %v, want %v", m.Timers, want)
	}
}

func TestSubscriptionDecide(t *testing.T) {
	const day = 24 * time.Hour
	now := lifecycleNow.Format(time.RFC3339)
	in30 := lifecycleNow.Add(30 * day).Format(time.RFC3339)
	// A period that started on 2026-10-15 and ends on 2026-11-14, now.
	ending := `{"plan":"basic","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-14T10:00:00Z"}`
	// A period that ends 16 days from now.
	running := `{"plan":"basic","period_start":"2026-10-31T10:00:00Z","period_end":"2026-11-30T10:00:00Z"}`
	// A period that ended two days ago.
	overdue := `{"plan":"basic","period_start":"2026-10-13T10:00:00Z","period_end":"2026-11-12T10:00:00Z"}`
	newPeriod := `{"plan":"basic","period_start":"` + now + `","period_end":"` + in30 + `"}`

	cases := []lifecycleCase{
		{
			name: "created with trial", state: governor.StateNone,
			event: "created", payload: `{"plan":"basic","trial_days":10}`,
			to: subTrialing, armed: map[string]time.Duration{"trial_end": 10 * day},
			wantData: `{"plan":"basic","trial_end":"` + lifecycleNow.Add(10*day).Format(time.RFC3339) + `"}`,
		},
		{
			name: "created with default trial", state: governor.StateNone,
			event: "created", payload: `{"plan":"basic"}`,
			to: subTrialing, armed: map[string]time.Duration{"trial_end": 14 * day},
		},
		{
			name: "created without trial", state: governor.StateNone,
			event: "created", payload: `{"plan":"basic","trial_days":0}`,
			to: subActive, armed: map[string]time.Duration{"period_end": 30 * day},
			wantData: newPeriod,
		},
		{
			name: "activated", state: subTrialing, data: `{"plan":"basic","trial_end":"2026-11-20T10:00:00Z"}`,
			timers: []string{"trial_end"}, event: "activated",
			to: subActive, cancelled: []string{"trial_end"}, armed: map[string]time.Duration{"period_end": 30 * day},
			wantData: `{"plan":"basic","trial_end":"2026-11-20T10:00:00Z","period_start":"` + now + `","period_end":"` + in30 + `"}`,
		},
		{
			name: "trial_end timeout", state: subTrialing, data: `{"plan":"basic"}`,
			timers: []string{"trial_end"}, event: governor.Timeout("trial_end"),
			to: subActive, cancelled: []string{"trial_end"}, armed: map[string]time.Duration{"period_end": 30 * day},
			wantData: newPeriod,
		},
		{
			name: "renewed", state: subActive, data: ending, timers: []string{"period_end"}, event: "renewed",
			to: subActive, armed: map[string]time.Duration{"period_end": 30 * day},
			emits:    []string{"event autonomics.billing.closed 2026-10"},
			emitData: map[int]string{0: `{"plan":"basic"}`},
			wantData: newPeriod,
		},
		{
			name: "period_end timeout", state: subActive, data: ending, timers: []string{"period_end"},
			event: governor.Timeout("period_end"),
			to:    subActive, armed: map[string]time.Duration{"period_end": 30 * day},
			emits:    []string{"event autonomics.billing.closed 2026-10"},
			emitData: map[int]string{0: `{"plan":"basic"}`},
			wantData: newPeriod,
		},
		{
			name: "period_end timeout, period start month in UTC", state: subActive,
			data:   `{"plan":"pro","period_start":"2026-10-31T23:30:00-02:00","period_end":"2026-11-14T10:00:00Z"}`,
			timers: []string{"period_end"}, event: governor.Timeout("period_end"),
			to: subActive, armed: map[string]time.Duration{"period_end": 30 * day},
			emits:    []string{"event autonomics.billing.closed 2026-11"},
			emitData: map[int]string{0: `{"plan":"pro"}`},
		},
		{
			name: "renewed with cancel_at_period_end", state: subActive,
			data:   `{"plan":"basic","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-20T10:00:00Z","cancel_at_period_end":true}`,
			timers: []string{"period_end"}, event: "renewed",
			to: subCanceled, cancelled: []string{"period_end"},
			emits:    []string{"event autonomics.billing.closed 2026-10"},
			emitData: map[int]string{0: `{"plan":"basic"}`},
			wantData: `{"plan":"basic","period_start":"2026-10-15T10:00:00Z","period_end":"` + now + `","cancel_at_period_end":true}`,
		},
		{
			name: "period_end timeout with cancel_at_period_end", state: subActive,
			data:   `{"plan":"basic","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-14T10:00:00Z","cancel_at_period_end":true}`,
			timers: []string{"period_end"}, event: governor.Timeout("period_end"),
			to: subCanceled, cancelled: []string{"period_end"},
			emits: []string{"event autonomics.billing.closed 2026-10"},
		},
		{
			name: "cancel_at_period_end", state: subActive, data: running, timers: []string{"period_end"},
			event: "cancel_at_period_end", to: subActive,
			wantData: `{"plan":"basic","period_start":"2026-10-31T10:00:00Z","period_end":"2026-11-30T10:00:00Z","cancel_at_period_end":true}`,
		},
		{
			name: "payment_failed", state: subActive, data: running, timers: []string{"period_end"}, event: "payment_failed",
			to: subPastDue, cancelled: []string{"period_end"}, armed: map[string]time.Duration{"grace": 7 * day},
			wantData: running,
		},
		{
			name: "payment_succeeded when past_due", state: subPastDue, data: running, timers: []string{"grace"},
			event: "payment_succeeded",
			to:    subActive, cancelled: []string{"grace"}, armed: map[string]time.Duration{"period_end": 16 * day},
			wantData: running,
		},
		{
			name: "payment_succeeded when past_due after the period ended", state: subPastDue, data: overdue,
			timers: []string{"grace"}, event: "payment_succeeded",
			to: subActive, cancelled: []string{"grace"}, armed: map[string]time.Duration{"period_end": time.Second},
			wantData: overdue,
		},
		{
			name: "grace timeout", state: subPastDue, data: running, timers: []string{"grace"},
			event: governor.Timeout("grace"),
			to:    subSuspended, cancelled: []string{"grace"}, armed: map[string]time.Duration{"suspension": 30 * day},
			emits: []string{"event autonomics.entitlement.suspend sub-1"},
		},
		{
			name: "payment_succeeded when suspended", state: subSuspended, data: running, timers: []string{"suspension"},
			event: "payment_succeeded",
			to:    subActive, cancelled: []string{"suspension"}, armed: map[string]time.Duration{"period_end": 16 * day},
			emits: []string{"event autonomics.entitlement.reinstate sub-1"},
		},
		{
			name: "suspension timeout", state: subSuspended, data: running, timers: []string{"suspension"},
			event: governor.Timeout("suspension"),
			to:    subCanceled, cancelled: []string{"suspension"},
			emits: []string{"event autonomics.entitlement.cancelled sub-1"},
		},
		{
			name: "pause", state: subActive, data: running, timers: []string{"period_end"}, event: "pause",
			to: subPaused, cancelled: []string{"period_end"},
		},
		{
			name: "resume", state: subPaused, data: running, event: "resume",
			to: subActive, armed: map[string]time.Duration{"period_end": 16 * day},
		},
		{
			name: "resume after the period ended", state: subPaused, data: overdue, event: "resume",
			to: subActive, armed: map[string]time.Duration{"period_end": time.Second},
		},
		{
			name: "resume without a period", state: subPaused, data: `{"plan":"basic"}`, event: "resume",
			to: subActive, armed: map[string]time.Duration{"period_end": 30 * day}, wantData: newPeriod,
		},
		{
			name: "plan_changed", state: subActive, data: running, timers: []string{"period_end"},
			event: "plan_changed", payload: `{"plan":"pro"}`, to: subActive,
			wantData: `{"plan":"pro","period_start":"2026-10-31T10:00:00Z","period_end":"2026-11-30T10:00:00Z"}`,
		},
		{
			name: "cancel when trialing", state: subTrialing, timers: []string{"trial_end"}, event: "cancel",
			to: subCanceled, cancelled: []string{"trial_end"},
		},
		{
			name: "cancel when active", state: subActive, data: running, timers: []string{"period_end"}, event: "cancel",
			to: subCanceled, cancelled: []string{"period_end"}, wantData: running,
		},
		{
			name: "cancel when past_due", state: subPastDue, timers: []string{"grace"}, event: "cancel",
			to: subCanceled, cancelled: []string{"grace"},
		},
		{
			name: "cancel when suspended", state: subSuspended, timers: []string{"suspension"}, event: "cancel",
			to: subCanceled, cancelled: []string{"suspension"},
		},
		{name: "cancel when paused", state: subPaused, event: "cancel", to: subCanceled},

		// Rejections.
		{
			name: "created twice", state: subActive, data: running, timers: []string{"period_end"},
			event: "created", payload: `{"plan":"pro"}`,
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: subActive,
		},
		{
			name: "renewed when trialing", state: subTrialing, data: `{"plan":"basic"}`, timers: []string{"trial_end"},
			event: "renewed",
			want:  governor.Rejected, reason: governor.ReasonNoTransition, to: subTrialing,
		},
		{
			name: "plan_changed when trialing", state: subTrialing, data: `{"plan":"basic"}`, timers: []string{"trial_end"},
			event: "plan_changed", payload: `{"plan":"pro"}`,
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: subTrialing,
		},
		{
			name: "payment_succeeded when active", state: subActive, data: running, timers: []string{"period_end"},
			event: "payment_succeeded",
			want:  governor.Rejected, reason: governor.ReasonNoTransition, to: subActive,
		},
		{
			name: "cancel when canceled", state: subCanceled, data: running, event: "cancel",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: subCanceled,
		},
		{
			name: "stale period_end timer", state: subActive, data: running, timers: []string{"period_end"},
			event: governor.Timeout("period_end"), staleID: true,
			want: governor.Rejected, reason: governor.ReasonTimerCancelled, to: subActive,
		},
		{
			name: "period_end timeout while paused", state: subPaused, data: running,
			event: governor.Timeout("period_end"),
			want:  governor.Rejected, reason: governor.ReasonTimerCancelled, to: subPaused,
		},
	}
	runLifecycleCases(t, subscriptionMachine(), "sub-1", cases)
}

// TestMarketplaceBilledSubscriptionIssuesNoInvoice checks that a
// subscription Google Cloud Marketplace bills rolls its periods without
// closing them with the billing governor and refuses our dunning, while
// keeping its timeline.
func TestMarketplaceBilledSubscriptionIssuesNoInvoice(t *testing.T) {
	const day = 24 * time.Hour
	now := lifecycleNow.Format(time.RFC3339)
	in30 := lifecycleNow.Add(30 * day).Format(time.RFC3339)
	ending := `{"plan":"basic","billed_by":"marketplace","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-14T10:00:00Z"}`
	next := `{"plan":"basic","billed_by":"marketplace","period_start":"` + now + `","period_end":"` + in30 + `"}`
	cases := []lifecycleCase{
		{
			name: "created billed by the Marketplace", state: governor.StateNone,
			event: "created", payload: `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`,
			to: subActive, armed: map[string]time.Duration{"period_end": 30 * day}, wantData: next,
		},
		{
			name: "created with a trial billed by the Marketplace", state: governor.StateNone,
			event: "created", payload: `{"plan":"basic","trial_days":3,"billed_by":"marketplace"}`,
			to: subTrialing, armed: map[string]time.Duration{"trial_end": 3 * day},
			wantData: `{"plan":"basic","billed_by":"marketplace","trial_end":"` + lifecycleNow.Add(3*day).Format(time.RFC3339) + `"}`,
		},
		{
			name: "period_end timeout rolls the period without billing.closed", state: subActive, data: ending,
			timers: []string{"period_end"}, event: governor.Timeout("period_end"),
			to: subActive, armed: map[string]time.Duration{"period_end": 30 * day}, wantData: next,
		},
		{
			name: "renewed rolls the period without billing.closed", state: subActive, data: ending,
			timers: []string{"period_end"}, event: "renewed",
			to: subActive, armed: map[string]time.Duration{"period_end": 30 * day}, wantData: next,
		},
		{
			name: "renewed with cancel_at_period_end cancels without billing.closed", state: subActive,
			data:   `{"plan":"basic","billed_by":"marketplace","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-14T10:00:00Z","cancel_at_period_end":true}`,
			timers: []string{"period_end"}, event: "renewed",
			to: subCanceled, cancelled: []string{"period_end"},
		},
		{
			name: "plan_changed keeps who bills", state: subActive, data: ending, timers: []string{"period_end"},
			event: "plan_changed", payload: `{"plan":"pro"}`, to: subActive,
			wantData: `{"plan":"pro","billed_by":"marketplace","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-14T10:00:00Z"}`,
		},
		{
			name: "payment_failed of our invoices does not dun it", state: subActive, data: ending, timers: []string{"period_end"},
			event: "payment_failed", source: "autonomics/governor/billing",
			want: governor.Rejected, reason: "billed_by_marketplace: ", to: subActive,
		},
	}
	runLifecycleCases(t, subscriptionMachine(), "sub-1", cases)
}

func TestSubscriptionTimerOverrides(t *testing.T) {
	m := subscriptionMachine().WithTimers(map[string]time.Duration{
		"trial_end":  7 * 24 * time.Hour,
		"period_end": 31 * 24 * time.Hour,
	})
	cases := []lifecycleCase{
		{
			name: "default trial", state: governor.StateNone, event: "created", payload: `{"plan":"basic"}`,
			to: subTrialing, armed: map[string]time.Duration{"trial_end": 7 * 24 * time.Hour},
		},
		{
			name: "trial from payload", state: governor.StateNone, event: "created", payload: `{"plan":"basic","trial_days":2}`,
			to: subTrialing, armed: map[string]time.Duration{"trial_end": 2 * 24 * time.Hour},
		},
		{
			name: "period", state: governor.StateNone, event: "created", payload: `{"plan":"basic","trial_days":0}`,
			to: subActive, armed: map[string]time.Duration{"period_end": 31 * 24 * time.Hour},
		},
	}
	runLifecycleCases(t, m, "sub-1", cases)
}

func TestSubscriptionPayloads(t *testing.T) {
	m := subscriptionMachine()
	cases := []struct {
		event governor.EventName
		data  string
		ok    bool
	}{
		{"created", `{"plan":"basic","trial_days":0}`, true},
		{"created", `{"plan":"basic","trial_days":730}`, true},
		{"created", `{"plan":"basic"}`, true},
		{"created", `{"trial_days":3}`, false},
		{"created", `{"plan":"basic","trial_days":731}`, false},
		{"created", `{"plan":"basic","trial_days":-3}`, false},
		{"created", `{"plan":"basic","trial_days":1.5}`, false},
		{"created", `{"plan":"b@sic"}`, false},
		{"created", `{"plan":"basic","currency":"USD"}`, false},
		{"created", ``, false},
		{"created", `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`, true},
		{"created", `{"plan":"basic","billed_by":"google"}`, false},
		{"created", `{"plan":"basic","billed_by":"Marketplace"}`, false},
		{"created", `{"plan":"basic","billed_by":"marketplace","Billed_By":""}`, false},
		{"plan_changed", `{"plan":"pro"}`, true},
		{"plan_changed", `{"plan":""}`, false},
		{"plan_changed", `{}`, false},
		{"payment_failed", `{"attempt":2}`, false},
		{"payment_failed", `{}`, true},
		{"renewed", ``, true},
	}
	for _, c := range cases {
		t.Run(string(c.event)+" "+c.data, func(t *testing.T) {
			ev := governor.Event{
				Type: governor.TypeOf(governor.Subscription, c.event), Domain: governor.Subscription,
				Name: c.event, Data: json.RawMessage(c.data),
			}
			err := m.CheckEvent(ev)
			if (err == nil) != c.ok {
				t.Fatalf("CheckEvent(%s %s) = %v, want ok %v", c.event, c.data, err, c.ok)
			}
			if err != nil && fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("ErrorCode(CheckEvent(%s %s)) = %s, want %s", c.event, c.data, fault.ErrorCode(err), fault.Invalid)
			}
		})
	}
}

// TestSubscriptionBillingPayload checks billing.closed against billing's
// contract: subject YYYY-MM and data {plan} only.
func TestSubscriptionBillingPayload(t *testing.T) {
	m := subscriptionMachine()
	key := governor.Key{Tenant: "tenant-1", Domain: governor.Subscription, Subject: "sub-1"}
	d, err := m.Decide(governor.Input{
		Instance: governor.Instance{Key: key, State: subActive, Data: json.RawMessage(`{"plan":"basic","period_start":"2026-01-02T00:00:00Z"}`)},
		Event:    governor.Event{Domain: governor.Subscription, Name: "renewed"},
		Now:      lifecycleNow,
	})
	if err != nil || len(d.Emits) != 1 {
		t.Fatalf("Decide(active, renewed) = %v, %v, want one emit", d, err)
	}
	e := d.Emits[0]
	if e.Type != "autonomics.billing.closed" || e.Domain != governor.Billing || e.Subject != "2026-01" {
		t.Errorf("Decide(active, renewed) emits %s %s %s, want autonomics.billing.closed billing 2026-01", e.Type, e.Domain, e.Subject)
	}
	var p struct {
		Plan string `json:"plan"`
	}
	dec := json.NewDecoder(strings.NewReader(string(e.Data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Plan != "basic" {
		t.Errorf("billing.closed data %s: plan %q, err %v; want plan basic", e.Data, p.Plan, err)
	}
}
