package machines

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// entTestPlans is a provider catalog as the entitlement guards see it.
var entTestPlans = map[string]governor.Plan{
	"basic": {SKU: "basic", State: "published", Currency: "USD",
		Limits: map[string]int64{"storage_gb": 10, "api_calls": 1000}},
	"pro": {SKU: "pro", State: "published", Currency: "USD",
		Limits: map[string]int64{"seats": 50, "api_calls": 100000, "unmetered": 0, "bad metric": 7}},
	"legacy": {SKU: "legacy", State: "deprecated", Limits: map[string]int64{"api_calls": 10}},
	"draft":  {SKU: "draft", State: "draft"},
}

func TestEntitlementMachineValidate(t *testing.T) {
	m := entitlementMachine()
	if err := m.Validate(); err != nil {
		t.Fatalf("entitlementMachine().Validate() = %v, want nil", err)
	}
	if got, want := m.Timers["approval"], 48*time.Hour; got != want || len(m.Timers) != 1 {
		t.Errorf("entitlementMachine().Timers = %v, want approval %v only", m.Timers, want)
	}
}

func TestEntitlementDecide(t *testing.T) {
	facts := governor.Facts{Account: acctActive, Plans: entTestPlans}
	cancelEmits := []string{
		"event autonomics.subscription.cancel ent-1",
		"event autonomics.multi_tenant.deprovision default",
	}
	cases := []lifecycleCase{
		{
			name: "creation_requested, account active", state: governor.StateNone,
			event: "creation_requested", payload: `{"plan":"basic"}`, facts: facts,
			to: entActivationRequested, armed: map[string]time.Duration{"approval": 48 * time.Hour},
			emits:    []string{"actuate marketplace.approve_entitlement ent-1"},
			wantData: `{"plan":"basic"}`,
		},
		{
			name: "creation_requested with trial, account pending", state: governor.StateNone,
			event: "creation_requested", payload: `{"plan":"pro","trial_days":14}`,
			facts: governor.Facts{Account: acctPendingVerification},
			to:    entActivationRequested, armed: map[string]time.Duration{"approval": 48 * time.Hour},
			wantData: `{"plan":"pro","trial_days":14}`,
		},
		{
			name: "creation_requested, no account", state: governor.StateNone,
			event: "creation_requested", payload: `{"plan":"basic"}`, facts: governor.Facts{Account: governor.StateNone},
			to: entActivationRequested, armed: map[string]time.Duration{"approval": 48 * time.Hour},
		},
		{
			name: "account_activated", state: entActivationRequested, data: `{"plan":"basic"}`, timers: []string{"approval"},
			event: "account_activated", to: entActivationRequested,
			emits:    []string{"actuate marketplace.approve_entitlement ent-1"},
			wantData: `{"plan":"basic"}`,
		},
		{
			name: "activated", state: entActivationRequested, data: `{"plan":"basic"}`, timers: []string{"approval"},
			event: "activated", facts: facts,
			to: entActive, cancelled: []string{"approval"},
			emits: []string{
				"event autonomics.multi_tenant.provision_requested default",
				"event autonomics.subscription.created ent-1",
				"event autonomics.quota_sla.limit_set api_calls",
				"event autonomics.quota_sla.limit_set storage_gb",
			},
			emitData: map[int]string{
				0: `{}`,
				1: `{"plan":"basic","trial_days":0}`,
				2: `{"limit":1000}`,
				3: `{"limit":10}`,
			},
		},
		{
			name: "activated with trial, skipping unusable limits", state: entActivationRequested,
			data: `{"plan":"pro","trial_days":30}`, timers: []string{"approval"},
			event: "activated", facts: facts,
			to: entActive, cancelled: []string{"approval"},
			emits: []string{
				"event autonomics.multi_tenant.provision_requested default",
				"event autonomics.subscription.created ent-1",
				"event autonomics.quota_sla.limit_set api_calls",
				"event autonomics.quota_sla.limit_set seats",
			},
			emitData: map[int]string{1: `{"plan":"pro","trial_days":30}`, 2: `{"limit":100000}`, 3: `{"limit":50}`},
		},
		{
			name: "activated, plan not in catalog", state: entActivationRequested, data: `{"plan":"gone"}`,
			event: "activated", facts: facts, to: entActive,
			emits: []string{
				"event autonomics.multi_tenant.provision_requested default",
				"event autonomics.subscription.created ent-1",
			},
			emitData: map[int]string{1: `{"plan":"gone","trial_days":0}`},
		},
		{
			name: "rejected", state: entActivationRequested, data: `{"plan":"basic"}`, timers: []string{"approval"},
			event: "rejected", to: entCancelled, cancelled: []string{"approval"},
			emits: []string{"actuate marketplace.reject_entitlement ent-1"},
		},
		{
			name: "approval timeout", state: entActivationRequested, data: `{"plan":"basic"}`, timers: []string{"approval"},
			event: governor.Timeout("approval"), to: entCancelled, cancelled: []string{"approval"},
			emits: []string{"actuate marketplace.reject_entitlement ent-1"},
		},
		{
			name: "plan_change_requested", state: entActive, data: `{"plan":"basic"}`,
			event: "plan_change_requested", payload: `{"plan":"pro"}`, facts: facts,
			to:       entPendingPlanChangeApproval,
			emits:    []string{"actuate marketplace.approve_plan_change ent-1"},
			emitData: map[int]string{0: `{"plan":"pro"}`},
			wantData: `{"plan":"basic","pending_plan":"pro"}`,
		},
		{
			name: "plan_change_approved", state: entPendingPlanChangeApproval, data: `{"plan":"basic","pending_plan":"pro"}`,
			event: "plan_change_approved", to: entPendingPlanChange,
			wantData: `{"plan":"basic","pending_plan":"pro"}`,
		},
		{
			name: "plan_change_cancelled before approval", state: entPendingPlanChangeApproval,
			data: `{"plan":"basic","pending_plan":"pro"}`, event: "plan_change_cancelled",
			to: entActive, wantData: `{"plan":"basic"}`,
		},
		{
			name: "plan_change_cancelled after approval", state: entPendingPlanChange,
			data: `{"plan":"basic","pending_plan":"pro"}`, event: "plan_change_cancelled",
			to: entActive, wantData: `{"plan":"basic"}`,
		},
		{
			name: "plan_changed", state: entPendingPlanChange, data: `{"plan":"basic","pending_plan":"pro"}`,
			event: "plan_changed", payload: `{"plan":"pro"}`, facts: facts, to: entActive,
			emits: []string{
				"event autonomics.subscription.plan_changed ent-1",
				"event autonomics.quota_sla.limit_set api_calls",
				"event autonomics.quota_sla.limit_set seats",
			},
			emitData: map[int]string{0: `{"plan":"pro"}`, 1: `{"limit":100000}`, 2: `{"limit":50}`},
			wantData: `{"plan":"pro"}`,
		},
		{
			name: "plan_changed to a plan missing from the catalog", state: entPendingPlanChange,
			data: `{"plan":"basic","pending_plan":"pro"}`, event: "plan_changed", payload: `{"plan":"enterprise"}`,
			facts: facts, to: entActive,
			emits:    []string{"event autonomics.subscription.plan_changed ent-1"},
			emitData: map[int]string{0: `{"plan":"enterprise"}`},
			wantData: `{"plan":"enterprise"}`,
		},
		{name: "pending_cancellation", state: entActive, event: "pending_cancellation", to: entPendingCancellation},
		{name: "cancellation_reverted", state: entPendingCancellation, event: "cancellation_reverted", to: entActive},
		{name: "suspend", state: entActive, event: "suspend", to: entSuspended},
		{name: "reinstate", state: entSuspended, event: "reinstate", to: entActive},
		{
			name: "cancelled from activation_requested", state: entActivationRequested, timers: []string{"approval"},
			event: "cancelled", to: entCancelled, cancelled: []string{"approval"}, emits: cancelEmits,
		},
		{name: "cancelled from active", state: entActive, event: "cancelled", to: entCancelled, emits: cancelEmits},
		{
			name: "cancelled from pending_plan_change_approval", state: entPendingPlanChangeApproval,
			event: "cancelled", to: entCancelled, emits: cancelEmits,
		},
		{
			name: "cancelled from pending_plan_change", state: entPendingPlanChange,
			event: "cancelled", to: entCancelled, emits: cancelEmits,
		},
		{
			name: "cancelled from pending_cancellation", state: entPendingCancellation,
			event: "cancelled", to: entCancelled, emits: cancelEmits,
		},
		{name: "cancelled from suspended", state: entSuspended, event: "cancelled", to: entCancelled, emits: cancelEmits},
		{name: "deleted", state: entCancelled, event: "deleted", to: entDeleted},

		// Rejections.
		{
			name: "plan_change_requested, plan not in catalog", state: entActive, data: `{"plan":"basic"}`,
			event: "plan_change_requested", payload: `{"plan":"enterprise"}`, facts: facts,
			want: governor.Rejected, reason: "plan_not_published: ", to: entActive,
		},
		{
			name: "plan_change_requested, plan deprecated", state: entActive, data: `{"plan":"basic"}`,
			event: "plan_change_requested", payload: `{"plan":"legacy"}`, facts: facts,
			want: governor.Rejected, reason: "plan_not_published: ", to: entActive,
		},
		{
			name: "plan_change_requested, plan draft", state: entActive, data: `{"plan":"basic"}`,
			event: "plan_change_requested", payload: `{"plan":"draft"}`, facts: facts,
			want: governor.Rejected, reason: "plan_not_published: ", to: entActive,
		},
		{
			name: "plan_change_requested, no catalog", state: entActive, data: `{"plan":"basic"}`,
			event: "plan_change_requested", payload: `{"plan":"pro"}`,
			want: governor.Rejected, reason: "plan_not_published: ", to: entActive,
		},
		{
			name: "plan_change_requested while suspended", state: entSuspended, data: `{"plan":"basic"}`,
			event: "plan_change_requested", payload: `{"plan":"pro"}`, facts: facts,
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entSuspended,
		},
		{
			name: "creation_requested twice", state: entActivationRequested, data: `{"plan":"basic"}`, timers: []string{"approval"},
			event: "creation_requested", payload: `{"plan":"basic"}`, facts: facts,
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entActivationRequested,
		},
		{
			name: "account_activated when active", state: entActive, data: `{"plan":"basic"}`, event: "account_activated",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entActive,
		},
		{
			name: "suspend during plan change", state: entPendingPlanChange, event: "suspend",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entPendingPlanChange,
		},
		{
			name: "cancelled when cancelled", state: entCancelled, event: "cancelled",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entCancelled,
		},
		{
			name: "deleted when active", state: entActive, event: "deleted",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entActive,
		},
		{
			name: "stale approval timer", state: entActivationRequested, timers: []string{"approval"},
			event: governor.Timeout("approval"), staleID: true,
			want: governor.Rejected, reason: governor.ReasonTimerCancelled, to: entActivationRequested,
		},
	}
	runLifecycleCases(t, entitlementMachine(), "ent-1", cases)
}

func TestEntitlementNeeds(t *testing.T) {
	m := entitlementMachine()
	cases := []struct {
		name  string
		data  string
		event governor.EventName
		body  string
		want  governor.Needs
	}{
		{"creation_requested", "", "creation_requested", `{"plan":"basic"}`, governor.Needs{Account: true}},
		{"plan_change_requested", `{"plan":"basic"}`, "plan_change_requested", `{"plan":"pro"}`, governor.Needs{Plans: []string{"pro"}}},
		{"plan_changed", `{"plan":"basic"}`, "plan_changed", `{"plan":"pro"}`, governor.Needs{Plans: []string{"pro"}}},
		{"activated", `{"plan":"basic"}`, "activated", ``, governor.Needs{Plans: []string{"basic"}}},
		{"activated without plan", ``, "activated", ``, governor.Needs{}},
		{"activated naming its plan", `{"plan":"basic"}`, "activated", `{"plan":"pro"}`, governor.Needs{Plans: []string{"pro"}}},
		{"activated on a new entitlement", ``, "activated", `{"plan":"pro","usage_reporting_id":"u"}`, governor.Needs{Plans: []string{"pro"}}},
		{"activated with fields but no plan", `{"plan":"basic"}`, "activated", `{"product":"p"}`, governor.Needs{Plans: []string{"basic"}}},
		{"suspend", `{"plan":"basic"}`, "suspend", ``, governor.Needs{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inst := governor.Instance{Key: governor.Key{Tenant: "tenant-1", Domain: governor.Entitlement, Subject: "ent-1"}}
			if c.data != "" {
				inst.Data = json.RawMessage(c.data)
			}
			ev := governor.Event{Domain: governor.Entitlement, Name: c.event, Data: json.RawMessage(c.body)}
			got := m.Needs(inst, ev)
			if got.Account != c.want.Account || !slices.Equal(got.Plans, c.want.Plans) {
				t.Errorf("Needs(%s, %s) = %+v, want %+v", c.data, c.event, got, c.want)
			}
		})
	}
}

func TestEntitlementPayloads(t *testing.T) {
	m := entitlementMachine()
	long := strings.Repeat("p", 129)
	cases := []struct {
		event governor.EventName
		data  string
		ok    bool
	}{
		{"creation_requested", `{"plan":"basic"}`, true},
		{"creation_requested", `{"plan":"pro-2026.v1_a","trial_days":730}`, true},
		{"creation_requested", `{"plan":"basic","trial_days":0}`, true},
		{"creation_requested", ``, false},
		{"creation_requested", `{}`, false},
		{"creation_requested", `{"plan":""}`, false},
		{"creation_requested", `{"plan":"a b"}`, false},
		{"creation_requested", `{"plan":"` + long + `"}`, false},
		{"creation_requested", `{"plan":"basic","trial_days":731}`, false},
		{"creation_requested", `{"plan":"basic","trial_days":-1}`, false},
		{"creation_requested", `{"plan":"basic","trial_days":"7"}`, false},
		{"creation_requested", `{"plan":"basic","seats":3}`, false},
		{"creation_requested", `["basic"]`, false},
		{"plan_change_requested", `{"plan":"pro"}`, true},
		{"plan_change_requested", `{}`, false},
		{"plan_change_requested", `{"plan":"pro/x"}`, false},
		{"plan_changed", `{"plan":"pro"}`, true},
		{"plan_changed", `{"plan":7}`, false},
		{"activated", `{}`, true},
		{"timeout.approval", `{}`, false},
		{"timeout.approval", `{"timer_id":"abc"}`, true},
	}
	for _, c := range cases {
		t.Run(string(c.event)+" "+c.data, func(t *testing.T) {
			ev := governor.Event{
				Type: governor.TypeOf(governor.Entitlement, c.event), Domain: governor.Entitlement,
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

// TestEntitlementCascadePayloads checks the data the entitlement emits
// against the receivers' contracts: subscription's own payload checks and
// quota_sla's limit_set {limit > 0, warning_bp}.
func TestEntitlementCascadePayloads(t *testing.T) {
	m, sub := entitlementMachine(), subscriptionMachine()
	facts := governor.Facts{Account: acctActive, Plans: entTestPlans}
	key := governor.Key{Tenant: "tenant-1", Domain: governor.Entitlement, Subject: "ent-1"}
	inputs := []struct {
		state governor.State
		data  string
		event governor.EventName
		body  string
	}{
		{entActivationRequested, `{"plan":"pro","trial_days":30}`, "activated", ``},
		{entActivationRequested, `{"plan":"basic"}`, "activated", ``},
		{entActivationRequested, `{"plan":"basic","marketplace":true}`, "activated", ``},
		{governor.StateNone, ``, "activated", `{"plan":"pro","trial_days":3}`},
		{entPendingPlanChange, `{"plan":"basic","pending_plan":"pro"}`, "plan_changed", `{"plan":"pro"}`},
	}
	for _, in := range inputs {
		t.Run(string(in.event)+" "+in.data, func(t *testing.T) {
			d, err := m.Decide(governor.Input{
				Instance: governor.Instance{Key: key, State: in.state, Data: json.RawMessage(in.data)},
				Event:    governor.Event{Domain: governor.Entitlement, Name: in.event, Data: json.RawMessage(in.body)},
				Facts:    facts, Now: lifecycleNow,
			})
			if err != nil || d.Outcome != governor.Accepted {
				t.Fatalf("Decide(%s, %s) = %v, %v, want accepted", in.state, in.event, d, err)
			}
			for _, e := range d.Emits {
				switch e.Domain {
				case governor.Subscription:
					name := governor.EventName(strings.TrimPrefix(e.Type, "autonomics.subscription."))
					ev := governor.Event{Type: e.Type, Domain: e.Domain, Name: name, Subject: e.Subject, Data: e.Data}
					if err := sub.CheckEvent(ev); err != nil {
						t.Errorf("subscription.CheckEvent(%s %s) = %v, want nil", e.Type, e.Data, err)
					}
				case governor.QuotaSLA:
					var p struct {
						Limit     int64 `json:"limit"`
						WarningBP *int  `json:"warning_bp"`
					}
					dec := json.NewDecoder(bytes.NewReader(e.Data))
					dec.DisallowUnknownFields()
					if err := dec.Decode(&p); err != nil || p.Limit <= 0 || !entValidSubject(e.Subject) {
						t.Errorf("%s %s %s does not fit quota_sla.limit_set (err %v)", e.Type, e.Subject, e.Data, err)
					}
				}
			}
		})
	}
}

// TestEntitlementLimitOrder checks that limit_set cascades follow metric
// name order, whatever the order of the catalog's map.
func TestEntitlementLimitOrder(t *testing.T) {
	m := entitlementMachine()
	limits := map[string]int64{}
	var want []string
	for _, metric := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		limits[metric] = 1
		want = append(want, "event autonomics.quota_sla.limit_set "+metric)
	}
	facts := governor.Facts{Plans: map[string]governor.Plan{"wide": {SKU: "wide", State: "published", Limits: limits}}}
	in := governor.Input{
		Instance: governor.Instance{
			Key:   governor.Key{Tenant: "tenant-1", Domain: governor.Entitlement, Subject: "ent-1"},
			State: entPendingPlanChange, Data: json.RawMessage(`{"plan":"basic"}`),
		},
		Event: governor.Event{Domain: governor.Entitlement, Name: "plan_changed", Data: json.RawMessage(`{"plan":"wide"}`)},
		Facts: facts, Now: lifecycleNow,
	}
	for range 20 {
		d, err := m.Decide(in)
		if err != nil || len(d.Emits) == 0 {
			t.Fatalf("Decide(pending_plan_change, plan_changed) = %v, %v, want emits", d, err)
		}
		if got := lifecycleEmits(d.Emits[1:]); !slices.Equal(got, want) {
			t.Fatalf("Decide(pending_plan_change, plan_changed) limit emits = %q, want %q", got, want)
		}
	}
}

// entMarketplace is the source of the Marketplace adapter's events in the
// tests.
const entMarketplace = "marketplace/acme-provider"

// TestEntitlementMarketplaceLifecycle covers what the Marketplace really
// sends: offer fields, auto-approved offers, a plan change the catalog
// refuses, reasons on rejections, the end of an offer, usage blocks and a
// cancellation that supersedes a plan change.
func TestEntitlementMarketplaceLifecycle(t *testing.T) {
	facts := governor.Facts{Account: acctActive, Plans: entTestPlans}
	const offer = `"product":"saas.example.com","offer":"projects/1/services/saas.example.com/privateOffers/o1",` +
		`"offer_end_time":"2027-01-31T00:00:00Z","usage_reporting_id":"project_number:123"`
	activationEmits := []string{
		"event autonomics.multi_tenant.provision_requested default",
		"event autonomics.subscription.created ent-1",
		"event autonomics.quota_sla.limit_set api_calls",
		"event autonomics.quota_sla.limit_set storage_gb",
	}
	mp := `{"plan":"basic","marketplace":true}`
	now := lifecycleNow.Format(time.RFC3339)
	cases := []lifecycleCase{
		{
			name: "creation_requested from the Marketplace keeps the offer", state: governor.StateNone,
			event: "creation_requested", payload: `{"plan":"basic",` + offer + `}`, source: entMarketplace, facts: facts,
			to: entActivationRequested, armed: map[string]time.Duration{"approval": 48 * time.Hour},
			emits:    []string{"actuate marketplace.approve_entitlement ent-1"},
			wantData: `{"plan":"basic",` + offer + `,"marketplace":true}`,
		},
		{
			name: "creation_requested by the provider is not a Marketplace entitlement", state: governor.StateNone,
			event: "creation_requested", payload: `{"plan":"basic","product":"saas.example.com"}`, facts: facts,
			to: entActivationRequested, armed: map[string]time.Duration{"approval": 48 * time.Hour},
			emits:    []string{"actuate marketplace.approve_entitlement ent-1"},
			wantData: `{"plan":"basic","product":"saas.example.com"}`,
		},
		{
			name: "activated on a new entitlement: an auto-approved offer", state: governor.StateNone,
			event: "activated", payload: `{"plan":"basic",` + offer + `}`, source: entMarketplace, facts: facts,
			to: entActive, emits: activationEmits,
			emitData: map[int]string{1: `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`, 2: `{"limit":1000}`},
			wantData: `{"plan":"basic",` + offer + `,"marketplace":true}`,
		},
		{
			name: "activated on a new entitlement by the provider", state: governor.StateNone,
			event: "activated", payload: `{"plan":"basic","trial_days":7}`, facts: facts,
			to: entActive, emits: activationEmits,
			emitData: map[int]string{1: `{"plan":"basic","trial_days":7}`},
			wantData: `{"plan":"basic","trial_days":7}`,
		},
		{
			name: "activated overwrites what the request said", state: entActivationRequested,
			data: `{"plan":"pro","marketplace":true}`, timers: []string{"approval"},
			event: "activated", payload: `{"plan":"basic","usage_reporting_id":"project_number:9"}`, source: entMarketplace, facts: facts,
			to: entActive, cancelled: []string{"approval"}, emits: activationEmits,
			emitData: map[int]string{1: `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`},
			wantData: `{"plan":"basic","usage_reporting_id":"project_number:9","marketplace":true}`,
		},
		{
			name: "activated of a Marketplace entitlement by another sender stays Marketplace-billed", state: entActivationRequested,
			data: mp, timers: []string{"approval"}, event: "activated", facts: facts,
			to: entActive, cancelled: []string{"approval"}, emits: activationEmits,
			emitData: map[int]string{1: `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`},
			wantData: mp,
		},
		{
			name: "plan_changed before the approval was acknowledged", state: entPendingPlanChangeApproval,
			data:  `{"plan":"basic","pending_plan":"pro","marketplace":true}`,
			event: "plan_changed", payload: `{"plan":"pro"}`, source: entMarketplace, facts: facts, to: entActive,
			emits: []string{
				"event autonomics.subscription.plan_changed ent-1",
				"event autonomics.quota_sla.limit_set api_calls",
				"event autonomics.quota_sla.limit_set seats",
			},
			wantData: `{"plan":"pro","marketplace":true}`,
		},
		{
			name: "plan_changed in active: the Marketplace's word wins", state: entActive, data: mp,
			event: "plan_changed", payload: `{"plan":"pro"}`, source: entMarketplace, facts: facts, to: entActive,
			emits: []string{
				"event autonomics.subscription.plan_changed ent-1",
				"event autonomics.quota_sla.limit_set api_calls",
				"event autonomics.quota_sla.limit_set seats",
			},
			emitData: map[int]string{0: `{"plan":"pro"}`},
			wantData: `{"plan":"pro","marketplace":true}`,
		},
		{
			name: "plan_change_requested to a plan not in the catalog on a Marketplace entitlement", state: entActive, data: mp,
			event: "plan_change_requested", payload: `{"plan":"enterprise"}`, source: entMarketplace, facts: facts,
			to:       entActive,
			emits:    []string{"actuate marketplace.reject_plan_change ent-1"},
			emitData: map[int]string{0: `{"plan":"enterprise","reason":"plan_not_published: plan \"enterprise\" is not in the catalog"}`},
			wantData: mp,
		},
		{
			name: "plan_change_requested to a deprecated plan on a Marketplace entitlement", state: entActive, data: mp,
			event: "plan_change_requested", payload: `{"plan":"legacy"}`, source: entMarketplace, facts: facts,
			to:       entActive,
			emits:    []string{"actuate marketplace.reject_plan_change ent-1"},
			emitData: map[int]string{0: `{"plan":"legacy","reason":"plan_not_published: plan \"legacy\" is deprecated"}`},
			wantData: mp,
		},
		{
			name: "plan_change_requested to a published plan on a Marketplace entitlement", state: entActive, data: mp,
			event: "plan_change_requested", payload: `{"plan":"pro"}`, source: entMarketplace, facts: facts,
			to:       entPendingPlanChangeApproval,
			emits:    []string{"actuate marketplace.approve_plan_change ent-1"},
			emitData: map[int]string{0: `{"plan":"pro"}`},
			wantData: `{"plan":"basic","pending_plan":"pro","marketplace":true}`,
		},
		{
			name: "rejected with a reason", state: entActivationRequested, data: mp, timers: []string{"approval"},
			event: "rejected", payload: `{"reason":"the account is on a sanctions list"}`,
			to: entCancelled, cancelled: []string{"approval"},
			emits:    []string{"actuate marketplace.reject_entitlement ent-1"},
			emitData: map[int]string{0: `{"reason":"the account is on a sanctions list"}`},
		},
		{
			name: "rejected without a reason", state: entActivationRequested, data: mp, timers: []string{"approval"},
			event: "rejected", to: entCancelled, cancelled: []string{"approval"},
			emits:    []string{"actuate marketplace.reject_entitlement ent-1"},
			emitData: map[int]string{0: `{"reason":"rejected by the provider"}`},
		},
		{
			name: "approval timeout tells why", state: entActivationRequested, data: mp, timers: []string{"approval"},
			event: governor.Timeout("approval"), to: entCancelled, cancelled: []string{"approval"},
			emits:    []string{"actuate marketplace.reject_entitlement ent-1"},
			emitData: map[int]string{0: `{"reason":"approval timed out after 2d"}`},
		},
		{
			name: "offer_ended with its time", state: entActive, data: mp,
			event: "offer_ended", payload: `{"offer_end_time":"2027-01-31T00:00:00+01:00"}`, source: entMarketplace,
			to: entActive, wantData: `{"plan":"basic","marketplace":true,"offer_ended":true,"offer_end_time":"2027-01-30T23:00:00Z"}`,
		},
		{
			name: "offer_ended without a time keeps the known one", state: entActive,
			data:  `{"plan":"basic","offer_end_time":"2027-01-31T00:00:00Z"}`,
			event: "offer_ended", to: entActive,
			wantData: `{"plan":"basic","offer_ended":true,"offer_end_time":"2027-01-31T00:00:00Z"}`,
		},
		{
			name: "offer_ended without any time records the decision time", state: entActive, data: mp,
			event: "offer_ended", payload: `{}`, to: entActive,
			wantData: `{"plan":"basic","marketplace":true,"offer_ended":true,"offer_end_time":"` + now + `"}`,
		},
		{
			name: "offer_ended during a plan change approval", state: entPendingPlanChangeApproval,
			data: `{"plan":"basic","pending_plan":"pro"}`, event: "offer_ended", to: entPendingPlanChangeApproval,
			wantData: `{"plan":"basic","pending_plan":"pro","offer_ended":true,"offer_end_time":"` + now + `"}`,
		},
		{
			name: "offer_ended during a plan change", state: entPendingPlanChange, data: mp,
			event: "offer_ended", to: entPendingPlanChange,
		},
		{
			name: "offer_ended during a pending cancellation", state: entPendingCancellation, data: mp,
			event: "offer_ended", to: entPendingCancellation,
		},
		{
			name: "pending_cancellation supersedes a plan change awaiting approval", state: entPendingPlanChangeApproval,
			data: `{"plan":"basic","pending_plan":"pro"}`, event: "pending_cancellation",
			to: entPendingCancellation, wantData: `{"plan":"basic"}`,
		},
		{
			name: "pending_cancellation supersedes an approved plan change", state: entPendingPlanChange,
			data: `{"plan":"basic","pending_plan":"pro"}`, event: "pending_cancellation",
			to: entPendingCancellation, wantData: `{"plan":"basic"}`,
		},
		{
			name: "usage_blocked suspends", state: entActive, data: mp,
			event: "usage_blocked", payload: `{"reason":"SERVICE_NOT_ACTIVATED"}`, source: "autonomics/actuator/usage",
			to: entSuspended, wantData: `{"plan":"basic","marketplace":true,"blocked":"usage","blocked_reason":"SERVICE_NOT_ACTIVATED"}`,
		},
		{
			name: "usage_blocked again refreshes the reason", state: entSuspended,
			data:  `{"plan":"basic","blocked":"usage","blocked_reason":"SERVICE_NOT_ACTIVATED"}`,
			event: "usage_blocked", payload: `{"reason":"BILLING_DISABLED"}`,
			to: entSuspended, wantData: `{"plan":"basic","blocked":"usage","blocked_reason":"BILLING_DISABLED"}`,
		},
		{
			name: "usage_blocked while suspended for non-payment records both", state: entSuspended, data: mp,
			event: "usage_blocked", payload: `{"reason":"BILLING_DISABLED"}`,
			to: entSuspended, wantData: `{"plan":"basic","marketplace":true,"blocked":"usage","blocked_reason":"BILLING_DISABLED","governor_suspended":true}`,
		},
		{
			name: "usage_restored lifts a usage block", state: entSuspended,
			data:  `{"plan":"basic","marketplace":true,"blocked":"usage","blocked_reason":"BILLING_DISABLED"}`,
			event: "usage_restored", to: entActive, wantData: mp,
		},
		{
			name: "usage_restored while the governors' suspension holds", state: entSuspended,
			data:  `{"plan":"basic","marketplace":true,"blocked":"usage","blocked_reason":"x","governor_suspended":true}`,
			event: "usage_restored", to: entSuspended, wantData: mp,
		},
		{
			name: "reinstate during a usage block stays suspended", state: entSuspended,
			data:  `{"plan":"basic","blocked":"usage","blocked_reason":"x","governor_suspended":true}`,
			event: "reinstate", to: entSuspended, wantData: `{"plan":"basic","blocked":"usage","blocked_reason":"x"}`,
		},
		{
			name: "reinstate after a non-payment suspension", state: entSuspended, data: mp,
			event: "reinstate", to: entActive, wantData: mp,
		},
		{
			name: "suspend during a usage block records the governors' suspension", state: entSuspended,
			data:  `{"plan":"basic","blocked":"usage","blocked_reason":"x"}`,
			event: "suspend", to: entSuspended,
			wantData: `{"plan":"basic","blocked":"usage","blocked_reason":"x","governor_suspended":true}`,
		},

		// Rejections.
		{
			name: "activated on a new entitlement without a plan", state: governor.StateNone,
			event: "activated", payload: `{"usage_reporting_id":"project_number:1"}`, source: entMarketplace, facts: facts,
			want: governor.Rejected, reason: "plan_required: ", to: governor.StateNone,
		},
		{
			name: "plan_change_requested to a plan not in the catalog on a direct entitlement", state: entActive,
			data: `{"plan":"basic"}`, event: "plan_change_requested", payload: `{"plan":"enterprise"}`, source: entMarketplace, facts: facts,
			want: governor.Rejected, reason: `plan_not_published: plan "enterprise" is not in the catalog`, to: entActive,
		},
		{
			name: "usage_restored without a usage block", state: entSuspended, data: mp, event: "usage_restored",
			want: governor.Rejected, reason: "not_usage_blocked: ", to: entSuspended,
		},
		{
			name: "usage_restored when active", state: entActive, data: mp, event: "usage_restored",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entActive,
		},
		{
			name: "usage_blocked during a pending cancellation", state: entPendingCancellation, data: mp,
			event: "usage_blocked", payload: `{"reason":"x"}`,
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entPendingCancellation,
		},
		{
			name: "suspend when suspended for non-payment", state: entSuspended, data: mp, event: "suspend",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entSuspended,
		},
		{
			name: "offer_ended when suspended", state: entSuspended, data: mp, event: "offer_ended",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entSuspended,
		},
		{
			name: "offer_ended when cancelled", state: entCancelled, data: mp, event: "offer_ended",
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entCancelled,
		},
		{
			name: "plan_changed during a pending cancellation", state: entPendingCancellation, data: mp,
			event: "plan_changed", payload: `{"plan":"pro"}`, facts: facts,
			want: governor.Rejected, reason: governor.ReasonNoTransition, to: entPendingCancellation,
		},
	}
	runLifecycleCases(t, entitlementMachine(), "ent-1", cases)
}

// TestEntitlementHostilePayloadsAreRefused refuses what the Marketplace
// adapter or a producer could send wrong: oversized or non-printable ids,
// times that are not RFC 3339, members spelled twice, unknown fields.
func TestEntitlementHostilePayloadsAreRefused(t *testing.T) {
	m := entitlementMachine()
	long := strings.Repeat("i", 257)
	cases := []struct {
		event governor.EventName
		data  string
		ok    bool
	}{
		{"creation_requested", `{"plan":"basic","usage_reporting_id":"` + strings.Repeat("i", 256) + `"}`, true},
		{"creation_requested", `{"plan":"basic","usage_reporting_id":"` + long + `"}`, false},
		{"creation_requested", `{"plan":"basic","product":"a product"}`, false},
		{"creation_requested", `{"plan":"basic","offer":"o\u0000"}`, false},
		{"creation_requested", `{"plan":"basic","offer":"offre-été"}`, false},
		{"creation_requested", `{"plan":"basic","offer_end_time":"2027-01-31"}`, false},
		{"creation_requested", `{"plan":"basic","offer_end_time":"tomorrow"}`, false},
		{"creation_requested", `{"plan":"basic","offer_end_time":"2027-01-31T00:00:00.5-08:00"}`, true},
		{"creation_requested", `{"plan":"basic","usage_reporting_id":"a","Usage_Reporting_ID":"b"}`, false},
		{"creation_requested", `{"plan":"basic","marketplace":true}`, false},
		{"creation_requested", `{"plan":"basic","billed_by":"marketplace"}`, false},
		{"activated", ``, true},
		{"activated", `{"plan":"pro","trial_days":3}`, true},
		{"activated", `{"plan":"a b"}`, false},
		{"activated", `{"trial_days":731}`, false},
		{"activated", `{"product":"` + long + `"}`, false},
		{"activated", `{"offer_end_time":7}`, false},
		{"activated", `{"marketplace":true}`, false},
		{"rejected", `{}`, true},
		{"rejected", `{"reason":"no"}`, true},
		{"rejected", `{"reason":"` + strings.Repeat("r", 513) + `"}`, false},
		{"rejected", `{"reason":"tab\there"}`, false},
		{"rejected", `{"plan":"basic"}`, false},
		{"offer_ended", ``, true},
		{"offer_ended", `{"offer_end_time":"2027-01-31T00:00:00Z"}`, true},
		{"offer_ended", `{"offer_end_time":"31/01/2027"}`, false},
		{"offer_ended", `{"offer_ended":true}`, false},
		{"usage_blocked", `{"reason":"BILLING_DISABLED"}`, true},
		{"usage_blocked", `{}`, false},
		{"usage_blocked", `{"reason":""}`, false},
		{"usage_blocked", `{"reason":"` + strings.Repeat("r", 513) + `"}`, false},
		{"usage_restored", ``, true},
		{"usage_restored", `{"reason":"ok"}`, false},
	}
	for _, c := range cases {
		t.Run(string(c.event)+" "+c.data[:min(len(c.data), 60)], func(t *testing.T) {
			ev := governor.Event{
				Type: governor.TypeOf(governor.Entitlement, c.event), Domain: governor.Entitlement,
				Name: c.event, Data: json.RawMessage(c.data),
			}
			err := m.CheckEvent(ev)
			if (err == nil) != c.ok {
				t.Fatalf("CheckEvent(%s %.60s) = %v, want ok %v", c.event, c.data, err, c.ok)
			}
			if err != nil && fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("ErrorCode(CheckEvent(%s)) = %s, want %s", c.event, fault.ErrorCode(err), fault.Invalid)
			}
		})
	}
}

// TestUsageEventsAreTheActuatorsOnly checks that nobody but an actuator,
// by the internal topic, may block or restore an entitlement's usage, and
// that the Marketplace may tell of an offer's end.
func TestUsageEventsAreTheActuatorsOnly(t *testing.T) {
	m := entitlementMachine()
	for _, name := range []governor.EventName{"usage_blocked", "usage_restored"} {
		for _, s := range governor.Senders {
			if got, want := m.May(s, name), s == governor.SenderActuator; got != want {
				t.Errorf("May(%s, %s) = %v, want %v", s, name, got, want)
			}
		}
	}
	for _, s := range governor.Senders {
		want := s == governor.SenderExternal || s == governor.SenderMarketplace
		if got := m.May(s, "offer_ended"); got != want {
			t.Errorf("May(%s, offer_ended) = %v, want %v", s, got, want)
		}
	}
}

// TestEntitlementActionKinds pins the actions the entitlement may emit,
// which the actuators subscribe to by kind.
func TestEntitlementActionKinds(t *testing.T) {
	want := []string{
		"marketplace.approve_entitlement", "marketplace.approve_plan_change",
		"marketplace.reject_entitlement", "marketplace.reject_plan_change",
	}
	if got := entitlementMachine().Actions(); !slices.Equal(got, want) {
		t.Errorf("entitlement Actions() = %q, want %q", got, want)
	}
	if got := accountMachine().Actions(); !slices.Equal(got, []string{"marketplace.approve_account", "marketplace.reject_account"}) {
		t.Errorf("customer_account Actions() = %q", got)
	}
}

// TestMarketplaceSourcePrefixMatchesEngine keeps the machines' idea of a
// Marketplace sender in step with the engine's.
func TestMarketplaceSourcePrefixMatchesEngine(t *testing.T) {
	if entMarketplaceSourcePrefix != engine.MarketplaceSourcePrefix {
		t.Errorf("entMarketplaceSourcePrefix = %q, engine.MarketplaceSourcePrefix = %q", entMarketplaceSourcePrefix, engine.MarketplaceSourcePrefix)
	}
}
