package subscription

import (
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/machinetest"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

func TestSubscriptionMachineValidate(t *testing.T) {
	m := Machine()
	if err := m.Validate(); err != nil {
		t.Fatalf("Machine().Validate() = %v, want nil", err)
	}
	const day = 24 * time.Hour
	want := map[string]time.Duration{"trial_end": 14 * day, "period_end": 30 * day, "grace": 7 * day, "suspension": 30 * day}
	for name, d := range want {
		if m.Timers[name] != d {
			t.Errorf("Machine().Timers[%s] = %v, want %v", name, m.Timers[name], d)
		}
	}
	if len(m.Timers) != len(want) {
		t.Errorf("Machine().Timers = %v, want %v", m.Timers, want)
	}
}

func TestSubscriptionDecide(t *testing.T) {
	const day = 24 * time.Hour
	now := machinetest.LifecycleNow.Format(time.RFC3339)
	in30 := machinetest.LifecycleNow.Add(30 * day).Format(time.RFC3339)
	// A period that started on 2026-10-15 and ends on 2026-11-14, now.
	ending := `{"plan":"basic","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-14T10:00:00Z"}`
	// A period that ends 16 days from now.
	running := `{"plan":"basic","period_start":"2026-10-31T10:00:00Z","period_end":"2026-11-30T10:00:00Z"}`
	// A period that ended two days ago.
	overdue := `{"plan":"basic","period_start":"2026-10-13T10:00:00Z","period_end":"2026-11-12T10:00:00Z"}`
	newPeriod := `{"plan":"basic","period_start":"` + now + `","period_end":"` + in30 + `"}`

	cases := []machinetest.Lifecycle{
		{
			Name: "created with trial", State: governor.StateNone,
			Event: "created", Payload: `{"plan":"basic","trial_days":10}`,
			To: Trialing, Armed: map[string]time.Duration{"trial_end": 10 * day},
			WantData: `{"plan":"basic","trial_end":"` + machinetest.LifecycleNow.Add(10*day).Format(time.RFC3339) + `"}`,
		},
		{
			Name: "created with default trial", State: governor.StateNone,
			Event: "created", Payload: `{"plan":"basic"}`,
			To: Trialing, Armed: map[string]time.Duration{"trial_end": 14 * day},
		},
		{
			Name: "created without trial", State: governor.StateNone,
			Event: "created", Payload: `{"plan":"basic","trial_days":0}`,
			To: Active, Armed: map[string]time.Duration{"period_end": 30 * day},
			WantData: newPeriod,
		},
		{
			Name: "activated", State: Trialing, Data: `{"plan":"basic","trial_end":"2026-11-20T10:00:00Z"}`,
			Timers: []string{"trial_end"}, Event: "activated",
			To: Active, Cancelled: []string{"trial_end"}, Armed: map[string]time.Duration{"period_end": 30 * day},
			WantData: `{"plan":"basic","trial_end":"2026-11-20T10:00:00Z","period_start":"` + now + `","period_end":"` + in30 + `"}`,
		},
		{
			Name: "trial_end timeout", State: Trialing, Data: `{"plan":"basic"}`,
			Timers: []string{"trial_end"}, Event: governor.Timeout("trial_end"),
			To: Active, Cancelled: []string{"trial_end"}, Armed: map[string]time.Duration{"period_end": 30 * day},
			WantData: newPeriod,
		},
		{
			Name: "renewed", State: Active, Data: ending, Timers: []string{"period_end"}, Event: "renewed",
			To: Active, Armed: map[string]time.Duration{"period_end": 30 * day},
			Emits:    []string{"event autonomics.billing.closed 2026-10"},
			EmitData: map[int]string{0: `{"plan":"basic"}`},
			WantData: newPeriod,
		},
		{
			Name: "period_end timeout", State: Active, Data: ending, Timers: []string{"period_end"},
			Event: governor.Timeout("period_end"),
			To:    Active, Armed: map[string]time.Duration{"period_end": 30 * day},
			Emits:    []string{"event autonomics.billing.closed 2026-10"},
			EmitData: map[int]string{0: `{"plan":"basic"}`},
			WantData: newPeriod,
		},
		{
			Name: "period_end timeout, period start month in UTC", State: Active,
			Data:   `{"plan":"pro","period_start":"2026-10-31T23:30:00-02:00","period_end":"2026-11-14T10:00:00Z"}`,
			Timers: []string{"period_end"}, Event: governor.Timeout("period_end"),
			To: Active, Armed: map[string]time.Duration{"period_end": 30 * day},
			Emits:    []string{"event autonomics.billing.closed 2026-11"},
			EmitData: map[int]string{0: `{"plan":"pro"}`},
		},
		{
			Name: "renewed with cancel_at_period_end", State: Active,
			Data:   `{"plan":"basic","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-20T10:00:00Z","cancel_at_period_end":true}`,
			Timers: []string{"period_end"}, Event: "renewed",
			To: Cancelled, Cancelled: []string{"period_end"},
			Emits:    []string{"event autonomics.billing.closed 2026-10"},
			EmitData: map[int]string{0: `{"plan":"basic"}`},
			WantData: `{"plan":"basic","period_start":"2026-10-15T10:00:00Z","period_end":"` + now + `","cancel_at_period_end":true}`,
		},
		{
			Name: "period_end timeout with cancel_at_period_end", State: Active,
			Data:   `{"plan":"basic","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-14T10:00:00Z","cancel_at_period_end":true}`,
			Timers: []string{"period_end"}, Event: governor.Timeout("period_end"),
			To: Cancelled, Cancelled: []string{"period_end"},
			Emits: []string{"event autonomics.billing.closed 2026-10"},
		},
		{
			Name: "cancel_at_period_end", State: Active, Data: running, Timers: []string{"period_end"},
			Event: "cancel_at_period_end", To: Active,
			WantData: `{"plan":"basic","period_start":"2026-10-31T10:00:00Z","period_end":"2026-11-30T10:00:00Z","cancel_at_period_end":true}`,
		},
		{
			Name: "payment_failed", State: Active, Data: running, Timers: []string{"period_end"}, Event: "payment_failed",
			To: PastDue, Cancelled: []string{"period_end"}, Armed: map[string]time.Duration{"grace": 7 * day},
			WantData: running,
		},
		{
			Name: "payment_succeeded when past_due", State: PastDue, Data: running, Timers: []string{"grace"},
			Event: "payment_succeeded",
			To:    Active, Cancelled: []string{"grace"}, Armed: map[string]time.Duration{"period_end": 16 * day},
			WantData: running,
		},
		{
			Name: "payment_succeeded when past_due after the period ended", State: PastDue, Data: overdue,
			Timers: []string{"grace"}, Event: "payment_succeeded",
			To: Active, Cancelled: []string{"grace"}, Armed: map[string]time.Duration{"period_end": time.Second},
			WantData: overdue,
		},
		{
			Name: "grace timeout", State: PastDue, Data: running, Timers: []string{"grace"},
			Event: governor.Timeout("grace"),
			To:    Suspended, Cancelled: []string{"grace"}, Armed: map[string]time.Duration{"suspension": 30 * day},
			Emits: []string{"event autonomics.entitlement.suspend sub-1"},
		},
		{
			Name: "payment_succeeded when suspended", State: Suspended, Data: running, Timers: []string{"suspension"},
			Event: "payment_succeeded",
			To:    Active, Cancelled: []string{"suspension"}, Armed: map[string]time.Duration{"period_end": 16 * day},
			Emits: []string{"event autonomics.entitlement.reinstate sub-1"},
		},
		{
			Name: "suspension timeout", State: Suspended, Data: running, Timers: []string{"suspension"},
			Event: governor.Timeout("suspension"),
			To:    Cancelled, Cancelled: []string{"suspension"},
			Emits: []string{"event autonomics.entitlement.cancelled sub-1"},
		},
		{
			Name: "pause", State: Active, Data: running, Timers: []string{"period_end"}, Event: "pause",
			To: Paused, Cancelled: []string{"period_end"},
		},
		{
			Name: "resume", State: Paused, Data: running, Event: "resume",
			To: Active, Armed: map[string]time.Duration{"period_end": 16 * day},
		},
		{
			Name: "resume after the period ended", State: Paused, Data: overdue, Event: "resume",
			To: Active, Armed: map[string]time.Duration{"period_end": time.Second},
		},
		{
			Name: "resume without a period", State: Paused, Data: `{"plan":"basic"}`, Event: "resume",
			To: Active, Armed: map[string]time.Duration{"period_end": 30 * day}, WantData: newPeriod,
		},
		{
			Name: "plan_changed", State: Active, Data: running, Timers: []string{"period_end"},
			Event: "plan_changed", Payload: `{"plan":"pro"}`, To: Active,
			WantData: `{"plan":"pro","period_start":"2026-10-31T10:00:00Z","period_end":"2026-11-30T10:00:00Z"}`,
		},
		{
			Name: "cancel when trialing", State: Trialing, Timers: []string{"trial_end"}, Event: "cancel",
			To: Cancelled, Cancelled: []string{"trial_end"},
		},
		{
			Name: "cancel when active", State: Active, Data: running, Timers: []string{"period_end"}, Event: "cancel",
			To: Cancelled, Cancelled: []string{"period_end"}, WantData: running,
		},
		{
			Name: "cancel when past_due", State: PastDue, Timers: []string{"grace"}, Event: "cancel",
			To: Cancelled, Cancelled: []string{"grace"},
		},
		{
			Name: "cancel when suspended", State: Suspended, Timers: []string{"suspension"}, Event: "cancel",
			To: Cancelled, Cancelled: []string{"suspension"},
		},
		{Name: "cancel when paused", State: Paused, Event: "cancel", To: Cancelled},

		// Rejections.
		{
			Name: "created twice", State: Active, Data: running, Timers: []string{"period_end"},
			Event: "created", Payload: `{"plan":"pro"}`,
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Active,
		},
		{
			Name: "renewed when trialing", State: Trialing, Data: `{"plan":"basic"}`, Timers: []string{"trial_end"},
			Event: "renewed",
			Want:  governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Trialing,
		},
		{
			Name: "plan_changed when trialing", State: Trialing, Data: `{"plan":"basic"}`, Timers: []string{"trial_end"},
			Event: "plan_changed", Payload: `{"plan":"pro"}`,
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Trialing,
		},
		{
			Name: "payment_succeeded when active", State: Active, Data: running, Timers: []string{"period_end"},
			Event: "payment_succeeded",
			Want:  governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Active,
		},
		{
			Name: "cancel when cancelled", State: Cancelled, Data: running, Event: "cancel",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Cancelled,
		},
		{
			Name: "stale period_end timer", State: Active, Data: running, Timers: []string{"period_end"},
			Event: governor.Timeout("period_end"), StaleID: true,
			Want: governor.Rejected, Reason: string(governor.ReasonTimerCancelled), To: Active,
		},
		{
			Name: "period_end timeout while paused", State: Paused, Data: running,
			Event: governor.Timeout("period_end"),
			Want:  governor.Rejected, Reason: string(governor.ReasonTimerCancelled), To: Paused,
		},
	}
	machinetest.RunLifecycle(t, Machine(), "sub-1", cases)
}

// TestMarketplaceBilledSubscriptionIssuesNoInvoice checks that a
// subscription Google Cloud Marketplace bills rolls its periods without
// closing them with the billing governor and refuses our dunning, while
// keeping its timeline.
func TestMarketplaceBilledSubscriptionIssuesNoInvoice(t *testing.T) {
	const day = 24 * time.Hour
	now := machinetest.LifecycleNow.Format(time.RFC3339)
	in30 := machinetest.LifecycleNow.Add(30 * day).Format(time.RFC3339)
	ending := `{"plan":"basic","billed_by":"marketplace","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-14T10:00:00Z"}`
	next := `{"plan":"basic","billed_by":"marketplace","period_start":"` + now + `","period_end":"` + in30 + `"}`
	cases := []machinetest.Lifecycle{
		{
			Name: "created billed by the Marketplace", State: governor.StateNone,
			Event: "created", Payload: `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`,
			To: Active, Armed: map[string]time.Duration{"period_end": 30 * day}, WantData: next,
		},
		{
			Name: "created with a trial billed by the Marketplace", State: governor.StateNone,
			Event: "created", Payload: `{"plan":"basic","trial_days":3,"billed_by":"marketplace"}`,
			To: Trialing, Armed: map[string]time.Duration{"trial_end": 3 * day},
			WantData: `{"plan":"basic","billed_by":"marketplace","trial_end":"` + machinetest.LifecycleNow.Add(3*day).Format(time.RFC3339) + `"}`,
		},
		{
			Name: "period_end timeout rolls the period without billing.closed", State: Active, Data: ending,
			Timers: []string{"period_end"}, Event: governor.Timeout("period_end"),
			To: Active, Armed: map[string]time.Duration{"period_end": 30 * day}, WantData: next,
		},
		{
			Name: "renewed rolls the period without billing.closed", State: Active, Data: ending,
			Timers: []string{"period_end"}, Event: "renewed",
			To: Active, Armed: map[string]time.Duration{"period_end": 30 * day}, WantData: next,
		},
		{
			Name: "renewed with cancel_at_period_end cancels without billing.closed", State: Active,
			Data:   `{"plan":"basic","billed_by":"marketplace","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-14T10:00:00Z","cancel_at_period_end":true}`,
			Timers: []string{"period_end"}, Event: "renewed",
			To: Cancelled, Cancelled: []string{"period_end"},
		},
		{
			Name: "plan_changed keeps who bills", State: Active, Data: ending, Timers: []string{"period_end"},
			Event: "plan_changed", Payload: `{"plan":"pro"}`, To: Active,
			WantData: `{"plan":"pro","billed_by":"marketplace","period_start":"2026-10-15T10:00:00Z","period_end":"2026-11-14T10:00:00Z"}`,
		},
		{
			Name: "payment_failed of our invoices does not dun it", State: Active, Data: ending, Timers: []string{"period_end"},
			Event: "payment_failed", Source: "autonomics/governor/billing",
			Want: governor.Rejected, Reason: "billed_by_marketplace: ", To: Active,
		},
	}
	machinetest.RunLifecycle(t, Machine(), "sub-1", cases)
}

func TestSubscriptionTimerOverrides(t *testing.T) {
	m := Machine().WithTimers(map[string]time.Duration{
		"trial_end":  7 * 24 * time.Hour,
		"period_end": 31 * 24 * time.Hour,
	})
	cases := []machinetest.Lifecycle{
		{
			Name: "default trial", State: governor.StateNone, Event: "created", Payload: `{"plan":"basic"}`,
			To: Trialing, Armed: map[string]time.Duration{"trial_end": 7 * 24 * time.Hour},
		},
		{
			Name: "trial from payload", State: governor.StateNone, Event: "created", Payload: `{"plan":"basic","trial_days":2}`,
			To: Trialing, Armed: map[string]time.Duration{"trial_end": 2 * 24 * time.Hour},
		},
		{
			Name: "period", State: governor.StateNone, Event: "created", Payload: `{"plan":"basic","trial_days":0}`,
			To: Active, Armed: map[string]time.Duration{"period_end": 31 * 24 * time.Hour},
		},
	}
	machinetest.RunLifecycle(t, m, "sub-1", cases)
}

func TestSubscriptionPayloads(t *testing.T) {
	cases := []machinetest.Payload{
		{Event: "created", Payload: `{"plan":"basic","trial_days":0}`, OK: true},
		{Event: "created", Payload: `{"plan":"basic","trial_days":730}`, OK: true},
		{Event: "created", Payload: `{"plan":"basic"}`, OK: true},
		{Event: "created", Payload: `{"trial_days":3}`, OK: false},
		{Event: "created", Payload: `{"plan":"basic","trial_days":731}`, OK: false},
		{Event: "created", Payload: `{"plan":"basic","trial_days":-3}`, OK: false},
		{Event: "created", Payload: `{"plan":"basic","trial_days":1.5}`, OK: false},
		{Event: "created", Payload: `{"plan":"b@sic"}`, OK: false},
		{Event: "created", Payload: `{"plan":"basic","currency":"USD"}`, OK: false},
		{Event: "created", Payload: ``, OK: false},
		{Event: "created", Payload: `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`, OK: true},
		{Event: "created", Payload: `{"plan":"basic","billed_by":"google"}`, OK: false},
		{Event: "created", Payload: `{"plan":"basic","billed_by":"Marketplace"}`, OK: false},
		{Event: "created", Payload: `{"plan":"basic","billed_by":"marketplace","Billed_By":""}`, OK: false},
		{Event: "plan_changed", Payload: `{"plan":"pro"}`, OK: true},
		{Event: "plan_changed", Payload: `{"plan":""}`, OK: false},
		{Event: "plan_changed", Payload: `{}`, OK: false},
		{Event: "payment_failed", Payload: `{"attempt":2}`, OK: false},
		{Event: "payment_failed", Payload: `{}`, OK: true},
		{Event: "renewed", Payload: ``, OK: true},
	}
	machinetest.RunPayloads(t, Machine(), cases)
}

// TestSubscriptionReasons rejects with every reason code the machine
// declares, with the reason a receipt records byte for byte, and checks
// that every declared code has such a case.
func TestSubscriptionReasons(t *testing.T) {
	running := `{"plan":"basic","billed_by":"marketplace","period_start":"2026-10-31T10:00:00Z","period_end":"2026-11-30T10:00:00Z"}`
	byCode := map[governor.ReasonCode]machinetest.Lifecycle{
		ReasonBilledByMarketplace: {
			Name: "payment_failed of a Marketplace-billed subscription", State: Active, Data: running,
			Timers: []string{PeriodEndTimer}, Event: messages.SubscriptionPaymentFailed.Name,
			Want: governor.Rejected, To: Active,
			Reason: "billed_by_marketplace: Google Cloud Marketplace bills this subscription; no dunning applies",
		},
	}
	m := Machine()
	var cases []machinetest.Lifecycle
	for _, r := range m.Reasons {
		c, ok := byCode[r.Code]
		if !ok {
			t.Errorf("reason %s: no case rejects with it", r.Code)
			continue
		}
		if governor.CodeOf(c.Reason) != r.Code {
			t.Errorf("reason %s: case %q expects %q", r.Code, c.Name, c.Reason)
		}
		cases = append(cases, c)
	}
	if len(byCode) != len(m.Reasons) {
		t.Errorf("%d reason cases for %d declared reasons", len(byCode), len(m.Reasons))
	}
	machinetest.RunLifecycle(t, m, "sub-1", cases)
}

// TestSubscriptionReceivesMessages checks the receiving side of the
// messages other governors send a subscription: the machine has the
// event, accepts it from a governor, and its payload check accepts the
// message's example data.
func TestSubscriptionReceivesMessages(t *testing.T) {
	m := Machine()
	refs := []governor.Ref{
		messages.SubscriptionCreated.May(""),
		messages.SubscriptionPlanChanged.May(""),
		messages.SubscriptionCancel.May(""),
		messages.SubscriptionPaymentFailed.May(""),
		messages.SubscriptionPaymentSucceeded.May(""),
	}
	for _, r := range refs {
		name := governor.EventName(r.Name)
		if r.Domain != Domain || !m.HasEvent(name) || !m.May(governor.SenderGovernor, name) {
			t.Errorf("%s.%s: want an event of %s that a governor may send", r.Domain, r.Name, Domain)
			continue
		}
		ev := governor.Event{ID: "m", Source: "//tests", Type: governor.TypeOf(Domain, name), Domain: Domain,
			Name: name, Tenant: "tenant-1", Subject: "sub-1", Data: r.Example}
		if err := m.CheckEvent(ev); err != nil {
			t.Errorf("CheckEvent(%s %s) = %v, want nil", name, r.Example, err)
		}
	}
}
