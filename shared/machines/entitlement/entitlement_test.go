package entitlement

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/account"
	"github.com/autonomics/autonomics/shared/machines/catalog"
	"github.com/autonomics/autonomics/shared/machines/machinetest"
)

// tenant is the tenant of the harness's instances and events, and so the
// provider whose catalog the guards read.
const tenant = "tenant-1"

// testPlans is a provider catalog as the entitlement guards see it.
var testPlans = []catalog.Plan{
	{SKU: "basic", State: catalog.Published, Currency: "USD",
		Limits: map[string]int64{"storage_gb": 10, "api_calls": 1000}},
	{SKU: "pro", State: catalog.Published, Currency: "USD",
		Limits: map[string]int64{"seats": 50, "api_calls": 100000, "unmetered": 0, "bad metric": 7}},
	{SKU: "legacy", State: catalog.Deprecated, Limits: map[string]int64{"api_calls": 10}},
	{SKU: "draft", State: catalog.Draft},
}

// missingPlans are the plans the tests name that the catalog does not
// have.
var missingPlans = []string{"gone", "enterprise"}

// accountRead is the decision's read of the tenant's account in state st
// (governor.StateNone: there is none).
func accountRead(st governor.State) map[governor.Key]governor.Instance {
	return map[governor.Key]governor.Instance{account.Key(tenant): {Key: account.Key(tenant), State: st}}
}

// absent is the decision's read of catalog entries that do not exist.
func absent(skus ...string) map[governor.Key]governor.Instance {
	out := map[governor.Key]governor.Instance{}
	for _, sku := range skus {
		out[catalog.Key(tenant, sku)] = governor.Instance{Key: catalog.Key(tenant, sku), State: governor.StateNone}
	}
	return out
}

// activeReads are the reads of every decision of the tests that has
// some: an active account and the test catalog, missingPlans absent.
func activeReads() map[governor.Key]governor.Instance {
	out := accountRead(account.Active)
	for _, p := range testPlans {
		out[catalog.Key(tenant, p.SKU)] = catalog.Instance(tenant, p)
	}
	maps.Copy(out, absent(missingPlans...))
	return out
}

func TestEntitlementMachineValidate(t *testing.T) {
	m := Machine()
	if err := m.Validate(); err != nil {
		t.Fatalf("Machine().Validate() = %v, want nil", err)
	}
	if got, want := m.Timers["approval"], 48*time.Hour; got != want || len(m.Timers) != 1 {
		t.Errorf("Machine().Timers = %v, want approval %v only", m.Timers, want)
	}
}

func TestEntitlementDecide(t *testing.T) {
	facts := activeReads()
	cancelEmits := []string{
		"event autonomics.subscription.cancel ent-1",
		"event autonomics.multi_tenant.deprovision default",
	}
	cases := []machinetest.Lifecycle{
		{
			Name: "creation_requested, account active", State: governor.StateNone,
			Event: "creation_requested", Payload: `{"plan":"basic"}`, Reads: facts,
			To: ActivationRequested, Armed: map[string]time.Duration{"approval": 48 * time.Hour},
			Emits:    []string{"actuate marketplace.approve_entitlement ent-1"},
			WantData: `{"plan":"basic"}`,
		},
		{
			Name: "creation_requested with trial, account pending", State: governor.StateNone,
			Event: "creation_requested", Payload: `{"plan":"pro","trial_days":14}`,
			Reads: accountRead(account.PendingVerification),
			To:    ActivationRequested, Armed: map[string]time.Duration{"approval": 48 * time.Hour},
			WantData: `{"plan":"pro","trial_days":14}`,
		},
		{
			Name: "creation_requested, no account", State: governor.StateNone,
			Event: "creation_requested", Payload: `{"plan":"basic"}`, Reads: accountRead(governor.StateNone),
			To: ActivationRequested, Armed: map[string]time.Duration{"approval": 48 * time.Hour},
		},
		{
			Name: "account_activated", State: ActivationRequested, Data: `{"plan":"basic"}`, Timers: []string{"approval"},
			Event: "account_activated", To: ActivationRequested,
			Emits:    []string{"actuate marketplace.approve_entitlement ent-1"},
			WantData: `{"plan":"basic"}`,
		},
		{
			Name: "activated", State: ActivationRequested, Data: `{"plan":"basic"}`, Timers: []string{"approval"},
			Event: "activated", Reads: facts,
			To: Active, Cancelled: []string{"approval"},
			Emits: []string{
				"event autonomics.multi_tenant.provision_requested default",
				"event autonomics.subscription.created ent-1",
				"event autonomics.quota_sla.limit_set api_calls",
				"event autonomics.quota_sla.limit_set storage_gb",
			},
			EmitData: map[int]string{
				0: `{}`,
				1: `{"plan":"basic","trial_days":0}`,
				2: `{"limit":1000}`,
				3: `{"limit":10}`,
			},
		},
		{
			Name: "activated with trial, skipping unusable limits", State: ActivationRequested,
			Data: `{"plan":"pro","trial_days":30}`, Timers: []string{"approval"},
			Event: "activated", Reads: facts,
			To: Active, Cancelled: []string{"approval"},
			Emits: []string{
				"event autonomics.multi_tenant.provision_requested default",
				"event autonomics.subscription.created ent-1",
				"event autonomics.quota_sla.limit_set api_calls",
				"event autonomics.quota_sla.limit_set seats",
			},
			EmitData: map[int]string{1: `{"plan":"pro","trial_days":30}`, 2: `{"limit":100000}`, 3: `{"limit":50}`},
		},
		{
			Name: "activated, plan not in catalog", State: ActivationRequested, Data: `{"plan":"gone"}`,
			Event: "activated", Reads: facts, To: Active,
			Emits: []string{
				"event autonomics.multi_tenant.provision_requested default",
				"event autonomics.subscription.created ent-1",
			},
			EmitData: map[int]string{1: `{"plan":"gone","trial_days":0}`},
		},
		{
			Name: "rejected", State: ActivationRequested, Data: `{"plan":"basic"}`, Timers: []string{"approval"},
			Event: "rejected", To: Cancelled, Cancelled: []string{"approval"},
			Emits: []string{"actuate marketplace.reject_entitlement ent-1"},
		},
		{
			Name: "approval timeout", State: ActivationRequested, Data: `{"plan":"basic"}`, Timers: []string{"approval"},
			Event: governor.Timeout("approval"), To: Cancelled, Cancelled: []string{"approval"},
			Emits: []string{"actuate marketplace.reject_entitlement ent-1"},
		},
		{
			Name: "plan_change_requested", State: Active, Data: `{"plan":"basic"}`,
			Event: "plan_change_requested", Payload: `{"plan":"pro"}`, Reads: facts,
			To:       PendingPlanChangeApproval,
			Emits:    []string{"actuate marketplace.approve_plan_change ent-1"},
			EmitData: map[int]string{0: `{"plan":"pro"}`},
			WantData: `{"plan":"basic","pending_plan":"pro"}`,
		},
		{
			Name: "plan_change_approved", State: PendingPlanChangeApproval, Data: `{"plan":"basic","pending_plan":"pro"}`,
			Event: "plan_change_approved", To: PendingPlanChange,
			WantData: `{"plan":"basic","pending_plan":"pro"}`,
		},
		{
			Name: "plan_change_cancelled before approval", State: PendingPlanChangeApproval,
			Data: `{"plan":"basic","pending_plan":"pro"}`, Event: "plan_change_cancelled",
			To: Active, WantData: `{"plan":"basic"}`,
		},
		{
			Name: "plan_change_cancelled after approval", State: PendingPlanChange,
			Data: `{"plan":"basic","pending_plan":"pro"}`, Event: "plan_change_cancelled",
			To: Active, WantData: `{"plan":"basic"}`,
		},
		{
			Name: "plan_changed", State: PendingPlanChange, Data: `{"plan":"basic","pending_plan":"pro"}`,
			Event: "plan_changed", Payload: `{"plan":"pro"}`, Reads: facts, To: Active,
			Emits: []string{
				"event autonomics.subscription.plan_changed ent-1",
				"event autonomics.quota_sla.limit_set api_calls",
				"event autonomics.quota_sla.limit_set seats",
			},
			EmitData: map[int]string{0: `{"plan":"pro"}`, 1: `{"limit":100000}`, 2: `{"limit":50}`},
			WantData: `{"plan":"pro"}`,
		},
		{
			Name: "plan_changed to a plan missing from the catalog", State: PendingPlanChange,
			Data: `{"plan":"basic","pending_plan":"pro"}`, Event: "plan_changed", Payload: `{"plan":"enterprise"}`,
			Reads: facts, To: Active,
			Emits:    []string{"event autonomics.subscription.plan_changed ent-1"},
			EmitData: map[int]string{0: `{"plan":"enterprise"}`},
			WantData: `{"plan":"enterprise"}`,
		},
		{Name: "pending_cancellation", State: Active, Event: "pending_cancellation", To: PendingCancellation},
		{Name: "cancellation_reverted", State: PendingCancellation, Event: "cancellation_reverted", To: Active},
		{Name: "suspend", State: Active, Event: "suspend", To: Suspended},
		{Name: "reinstate", State: Suspended, Event: "reinstate", To: Active},
		{
			Name: "cancelled from activation_requested", State: ActivationRequested, Timers: []string{"approval"},
			Event: "cancelled", To: Cancelled, Cancelled: []string{"approval"}, Emits: cancelEmits,
		},
		{Name: "cancelled from active", State: Active, Event: "cancelled", To: Cancelled, Emits: cancelEmits},
		{
			Name: "cancelled from pending_plan_change_approval", State: PendingPlanChangeApproval,
			Event: "cancelled", To: Cancelled, Emits: cancelEmits,
		},
		{
			Name: "cancelled from pending_plan_change", State: PendingPlanChange,
			Event: "cancelled", To: Cancelled, Emits: cancelEmits,
		},
		{
			Name: "cancelled from pending_cancellation", State: PendingCancellation,
			Event: "cancelled", To: Cancelled, Emits: cancelEmits,
		},
		{Name: "cancelled from suspended", State: Suspended, Event: "cancelled", To: Cancelled, Emits: cancelEmits},
		{Name: "deleted", State: Cancelled, Event: "deleted", To: Deleted},

		// Rejections.
		{
			Name: "plan_change_requested, plan not in catalog", State: Active, Data: `{"plan":"basic"}`,
			Event: "plan_change_requested", Payload: `{"plan":"enterprise"}`, Reads: facts,
			Want: governor.Rejected, Reason: "plan_not_published: ", To: Active,
		},
		{
			Name: "plan_change_requested, plan deprecated", State: Active, Data: `{"plan":"basic"}`,
			Event: "plan_change_requested", Payload: `{"plan":"legacy"}`, Reads: facts,
			Want: governor.Rejected, Reason: "plan_not_published: ", To: Active,
		},
		{
			Name: "plan_change_requested, plan draft", State: Active, Data: `{"plan":"basic"}`,
			Event: "plan_change_requested", Payload: `{"plan":"draft"}`, Reads: facts,
			Want: governor.Rejected, Reason: "plan_not_published: ", To: Active,
		},
		{
			Name: "plan_change_requested, no catalog", State: Active, Data: `{"plan":"basic"}`,
			Event: "plan_change_requested", Payload: `{"plan":"pro"}`, Reads: absent("pro"),
			Want: governor.Rejected, Reason: "plan_not_published: ", To: Active,
		},
		{
			Name: "plan_change_requested while suspended", State: Suspended, Data: `{"plan":"basic"}`,
			Event: "plan_change_requested", Payload: `{"plan":"pro"}`, Reads: facts,
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Suspended,
		},
		{
			Name: "creation_requested twice", State: ActivationRequested, Data: `{"plan":"basic"}`, Timers: []string{"approval"},
			Event: "creation_requested", Payload: `{"plan":"basic"}`, Reads: facts,
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: ActivationRequested,
		},
		{
			Name: "account_activated when active", State: Active, Data: `{"plan":"basic"}`, Event: "account_activated",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Active,
		},
		{
			Name: "suspend during plan change", State: PendingPlanChange, Event: "suspend",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: PendingPlanChange,
		},
		{
			Name: "cancelled when cancelled", State: Cancelled, Event: "cancelled",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Cancelled,
		},
		{
			Name: "deleted when active", State: Active, Event: "deleted",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Active,
		},
		{
			Name: "stale approval timer", State: ActivationRequested, Timers: []string{"approval"},
			Event: governor.Timeout("approval"), StaleID: true,
			Want: governor.Rejected, Reason: string(governor.ReasonTimerCancelled), To: ActivationRequested,
		},
	}
	machinetest.RunLifecycle(t, Machine(), "ent-1", cases)
}

func TestEntitlementNeeds(t *testing.T) {
	m := Machine()
	const provider = "provider-1"
	plan := func(sku string) []governor.Key { return []governor.Key{catalog.Key(provider, sku)} }
	cases := []struct {
		name  string
		state governor.State
		data  string
		event governor.EventName
		body  string
		want  []governor.Key
	}{
		{"creation_requested", governor.StateNone, "", "creation_requested", `{"plan":"basic"}`, []governor.Key{account.Key(tenant)}},
		{"plan_change_requested", Active, `{"plan":"basic"}`, "plan_change_requested", `{"plan":"pro"}`, plan("pro")},
		{"plan_changed", PendingPlanChange, `{"plan":"basic"}`, "plan_changed", `{"plan":"pro"}`, plan("pro")},
		{"activated", ActivationRequested, `{"plan":"basic"}`, "activated", ``, plan("basic")},
		{"activated without plan", governor.StateNone, ``, "activated", ``, nil},
		{"activated naming its plan", ActivationRequested, `{"plan":"basic"}`, "activated", `{"plan":"pro"}`, plan("pro")},
		{"activated on a new entitlement", governor.StateNone, ``, "activated", `{"plan":"pro","usage_reporting_id":"u"}`, plan("pro")},
		{"activated with fields but no plan", ActivationRequested, `{"plan":"basic"}`, "activated", `{"product":"p"}`, plan("basic")},
		{"suspend", Active, `{"plan":"basic"}`, "suspend", ``, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inst := governor.Instance{Key: governor.Key{Tenant: tenant, Domain: governor.Entitlement, Subject: "ent-1"}, State: c.state}
			if c.data != "" {
				inst.Data = json.RawMessage(c.data)
			}
			ev := governor.Event{Domain: governor.Entitlement, Name: c.event, Tenant: tenant, Data: json.RawMessage(c.body)}
			if got := m.Reads(inst, ev, provider); !slices.Equal(got, c.want) {
				t.Errorf("Reads(%s %s, %s %s) = %v, want %v", c.state, c.data, c.event, c.body, got, c.want)
			}
		})
	}
}

func TestEntitlementPayloads(t *testing.T) {
	long := strings.Repeat("p", 129)
	machinetest.RunPayloads(t, Machine(), []machinetest.Payload{
		{Event: "creation_requested", Payload: `{"plan":"basic"}`, OK: true},
		{Event: "creation_requested", Payload: `{"plan":"pro-2026.v1_a","trial_days":730}`, OK: true},
		{Event: "creation_requested", Payload: `{"plan":"basic","trial_days":0}`, OK: true},
		{Event: "creation_requested", Payload: ``, OK: false},
		{Event: "creation_requested", Payload: `{}`, OK: false},
		{Event: "creation_requested", Payload: `{"plan":""}`, OK: false},
		{Event: "creation_requested", Payload: `{"plan":"a b"}`, OK: false},
		{Event: "creation_requested", Payload: `{"plan":"` + long + `"}`, OK: false},
		{Event: "creation_requested", Payload: `{"plan":"basic","trial_days":731}`, OK: false},
		{Event: "creation_requested", Payload: `{"plan":"basic","trial_days":-1}`, OK: false},
		{Event: "creation_requested", Payload: `{"plan":"basic","trial_days":"7"}`, OK: false},
		{Event: "creation_requested", Payload: `{"plan":"basic","seats":3}`, OK: false},
		{Event: "creation_requested", Payload: `["basic"]`, OK: false},
		{Event: "plan_change_requested", Payload: `{"plan":"pro"}`, OK: true},
		{Event: "plan_change_requested", Payload: `{}`, OK: false},
		{Event: "plan_change_requested", Payload: `{"plan":"pro/x"}`, OK: false},
		{Event: "plan_changed", Payload: `{"plan":"pro"}`, OK: true},
		{Event: "plan_changed", Payload: `{"plan":7}`, OK: false},
		{Event: "activated", Payload: `{}`, OK: true},
		{Event: "timeout.approval", Payload: `{}`, OK: false},
		{Event: "timeout.approval", Payload: `{"timer_id":"abc"}`, OK: true},
	})
}

// TestEntitlementLimitOrder checks that limit_set cascades follow metric
// name order, whatever the order of the catalog's map.
func TestEntitlementLimitOrder(t *testing.T) {
	m := Machine()
	limits := map[string]int64{}
	var want []string
	for _, metric := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		limits[metric] = 1
		want = append(want, "event autonomics.quota_sla.limit_set "+metric)
	}
	wide := catalog.Instance(tenant, catalog.Plan{SKU: "wide", State: catalog.Published, Limits: limits})
	in := governor.Input{
		Instance: governor.Instance{
			Key:   governor.Key{Tenant: tenant, Domain: governor.Entitlement, Subject: "ent-1"},
			State: PendingPlanChange, Data: json.RawMessage(`{"plan":"basic"}`),
		},
		Event: governor.Event{Domain: governor.Entitlement, Name: "plan_changed", Tenant: tenant, Data: json.RawMessage(`{"plan":"wide"}`)},
		Reads: map[governor.Key]governor.Instance{wide.Key: wide}, Now: machinetest.LifecycleNow,
	}
	for range 20 {
		d, err := m.Decide(in)
		if err != nil || len(d.Emits) == 0 {
			t.Fatalf("Decide(pending_plan_change, plan_changed) = %v, %v, want emits", d, err)
		}
		if got := machinetest.EmitStrings(d.Emits[1:]); !slices.Equal(got, want) {
			t.Fatalf("Decide(pending_plan_change, plan_changed) limit emits = %q, want %q", got, want)
		}
	}
}

// marketplaceSource is the source of the Marketplace adapter's events in the
// tests.
const marketplaceSource = "marketplace/acme-provider"

// TestEntitlementMarketplaceLifecycle covers what the Marketplace really
// sends: offer fields, auto-approved offers, a plan change the catalog
// refuses, reasons on rejections, the end of an offer, usage blocks and a
// cancellation that supersedes a plan change.
func TestEntitlementMarketplaceLifecycle(t *testing.T) {
	facts := activeReads()
	const offer = `"product":"saas.example.com","offer":"projects/1/services/saas.example.com/privateOffers/o1",` +
		`"offer_end_time":"2027-01-31T00:00:00Z","usage_reporting_id":"project_number:123"`
	activationEmits := []string{
		"event autonomics.multi_tenant.provision_requested default",
		"event autonomics.subscription.created ent-1",
		"event autonomics.quota_sla.limit_set api_calls",
		"event autonomics.quota_sla.limit_set storage_gb",
	}
	mp := `{"plan":"basic","marketplace":true}`
	now := machinetest.LifecycleNow.Format(time.RFC3339)
	cases := []machinetest.Lifecycle{
		{
			Name: "creation_requested from the Marketplace keeps the offer", State: governor.StateNone,
			Event: "creation_requested", Payload: `{"plan":"basic",` + offer + `}`, Source: marketplaceSource, Reads: facts,
			To: ActivationRequested, Armed: map[string]time.Duration{"approval": 48 * time.Hour},
			Emits:    []string{"actuate marketplace.approve_entitlement ent-1"},
			WantData: `{"plan":"basic",` + offer + `,"marketplace":true}`,
		},
		{
			Name: "creation_requested by the provider is not a Marketplace entitlement", State: governor.StateNone,
			Event: "creation_requested", Payload: `{"plan":"basic","product":"saas.example.com"}`, Reads: facts,
			To: ActivationRequested, Armed: map[string]time.Duration{"approval": 48 * time.Hour},
			Emits:    []string{"actuate marketplace.approve_entitlement ent-1"},
			WantData: `{"plan":"basic","product":"saas.example.com"}`,
		},
		{
			Name: "activated on a new entitlement: an auto-approved offer", State: governor.StateNone,
			Event: "activated", Payload: `{"plan":"basic",` + offer + `}`, Source: marketplaceSource, Reads: facts,
			To: Active, Emits: activationEmits,
			EmitData: map[int]string{1: `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`, 2: `{"limit":1000}`},
			WantData: `{"plan":"basic",` + offer + `,"marketplace":true}`,
		},
		{
			Name: "activated on a new entitlement by the provider", State: governor.StateNone,
			Event: "activated", Payload: `{"plan":"basic","trial_days":7}`, Reads: facts,
			To: Active, Emits: activationEmits,
			EmitData: map[int]string{1: `{"plan":"basic","trial_days":7}`},
			WantData: `{"plan":"basic","trial_days":7}`,
		},
		{
			Name: "activated overwrites what the request said", State: ActivationRequested,
			Data: `{"plan":"pro","marketplace":true}`, Timers: []string{"approval"},
			Event: "activated", Payload: `{"plan":"basic","usage_reporting_id":"project_number:9"}`, Source: marketplaceSource, Reads: facts,
			To: Active, Cancelled: []string{"approval"}, Emits: activationEmits,
			EmitData: map[int]string{1: `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`},
			WantData: `{"plan":"basic","usage_reporting_id":"project_number:9","marketplace":true}`,
		},
		{
			Name: "activated of a Marketplace entitlement by another sender stays Marketplace-billed", State: ActivationRequested,
			Data: mp, Timers: []string{"approval"}, Event: "activated", Reads: facts,
			To: Active, Cancelled: []string{"approval"}, Emits: activationEmits,
			EmitData: map[int]string{1: `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`},
			WantData: mp,
		},
		{
			Name: "plan_changed before the approval was acknowledged", State: PendingPlanChangeApproval,
			Data:  `{"plan":"basic","pending_plan":"pro","marketplace":true}`,
			Event: "plan_changed", Payload: `{"plan":"pro"}`, Source: marketplaceSource, Reads: facts, To: Active,
			Emits: []string{
				"event autonomics.subscription.plan_changed ent-1",
				"event autonomics.quota_sla.limit_set api_calls",
				"event autonomics.quota_sla.limit_set seats",
			},
			WantData: `{"plan":"pro","marketplace":true}`,
		},
		{
			Name: "plan_changed in active: the Marketplace's word wins", State: Active, Data: mp,
			Event: "plan_changed", Payload: `{"plan":"pro"}`, Source: marketplaceSource, Reads: facts, To: Active,
			Emits: []string{
				"event autonomics.subscription.plan_changed ent-1",
				"event autonomics.quota_sla.limit_set api_calls",
				"event autonomics.quota_sla.limit_set seats",
			},
			EmitData: map[int]string{0: `{"plan":"pro"}`},
			WantData: `{"plan":"pro","marketplace":true}`,
		},
		{
			Name: "plan_change_requested to a plan not in the catalog on a Marketplace entitlement", State: Active, Data: mp,
			Event: "plan_change_requested", Payload: `{"plan":"enterprise"}`, Source: marketplaceSource, Reads: facts,
			To:       Active,
			Emits:    []string{"actuate marketplace.reject_plan_change ent-1"},
			EmitData: map[int]string{0: `{"plan":"enterprise","reason":"plan_not_published: plan \"enterprise\" is not in the catalog"}`},
			WantData: mp,
		},
		{
			Name: "plan_change_requested to a deprecated plan on a Marketplace entitlement", State: Active, Data: mp,
			Event: "plan_change_requested", Payload: `{"plan":"legacy"}`, Source: marketplaceSource, Reads: facts,
			To:       Active,
			Emits:    []string{"actuate marketplace.reject_plan_change ent-1"},
			EmitData: map[int]string{0: `{"plan":"legacy","reason":"plan_not_published: plan \"legacy\" is deprecated"}`},
			WantData: mp,
		},
		{
			Name: "plan_change_requested to a published plan on a Marketplace entitlement", State: Active, Data: mp,
			Event: "plan_change_requested", Payload: `{"plan":"pro"}`, Source: marketplaceSource, Reads: facts,
			To:       PendingPlanChangeApproval,
			Emits:    []string{"actuate marketplace.approve_plan_change ent-1"},
			EmitData: map[int]string{0: `{"plan":"pro"}`},
			WantData: `{"plan":"basic","pending_plan":"pro","marketplace":true}`,
		},
		{
			Name: "rejected with a reason", State: ActivationRequested, Data: mp, Timers: []string{"approval"},
			Event: "rejected", Payload: `{"reason":"the account is on a sanctions list"}`,
			To: Cancelled, Cancelled: []string{"approval"},
			Emits:    []string{"actuate marketplace.reject_entitlement ent-1"},
			EmitData: map[int]string{0: `{"reason":"the account is on a sanctions list"}`},
		},
		{
			Name: "rejected without a reason", State: ActivationRequested, Data: mp, Timers: []string{"approval"},
			Event: "rejected", To: Cancelled, Cancelled: []string{"approval"},
			Emits:    []string{"actuate marketplace.reject_entitlement ent-1"},
			EmitData: map[int]string{0: `{"reason":"rejected by the provider"}`},
		},
		{
			Name: "approval timeout tells why", State: ActivationRequested, Data: mp, Timers: []string{"approval"},
			Event: governor.Timeout("approval"), To: Cancelled, Cancelled: []string{"approval"},
			Emits:    []string{"actuate marketplace.reject_entitlement ent-1"},
			EmitData: map[int]string{0: `{"reason":"approval timed out after 2d"}`},
		},
		{
			Name: "offer_ended with its time", State: Active, Data: mp,
			Event: "offer_ended", Payload: `{"offer_end_time":"2027-01-31T00:00:00+01:00"}`, Source: marketplaceSource,
			To: Active, WantData: `{"plan":"basic","marketplace":true,"offer_ended":true,"offer_end_time":"2027-01-30T23:00:00Z"}`,
		},
		{
			Name: "offer_ended without a time keeps the known one", State: Active,
			Data:  `{"plan":"basic","offer_end_time":"2027-01-31T00:00:00Z"}`,
			Event: "offer_ended", To: Active,
			WantData: `{"plan":"basic","offer_ended":true,"offer_end_time":"2027-01-31T00:00:00Z"}`,
		},
		{
			Name: "offer_ended without any time records the decision time", State: Active, Data: mp,
			Event: "offer_ended", Payload: `{}`, To: Active,
			WantData: `{"plan":"basic","marketplace":true,"offer_ended":true,"offer_end_time":"` + now + `"}`,
		},
		{
			Name: "offer_ended during a plan change approval", State: PendingPlanChangeApproval,
			Data: `{"plan":"basic","pending_plan":"pro"}`, Event: "offer_ended", To: PendingPlanChangeApproval,
			WantData: `{"plan":"basic","pending_plan":"pro","offer_ended":true,"offer_end_time":"` + now + `"}`,
		},
		{
			Name: "offer_ended during a plan change", State: PendingPlanChange, Data: mp,
			Event: "offer_ended", To: PendingPlanChange,
		},
		{
			Name: "offer_ended during a pending cancellation", State: PendingCancellation, Data: mp,
			Event: "offer_ended", To: PendingCancellation,
		},
		{
			Name: "pending_cancellation supersedes a plan change awaiting approval", State: PendingPlanChangeApproval,
			Data: `{"plan":"basic","pending_plan":"pro"}`, Event: "pending_cancellation",
			To: PendingCancellation, WantData: `{"plan":"basic"}`,
		},
		{
			Name: "pending_cancellation supersedes an approved plan change", State: PendingPlanChange,
			Data: `{"plan":"basic","pending_plan":"pro"}`, Event: "pending_cancellation",
			To: PendingCancellation, WantData: `{"plan":"basic"}`,
		},
		{
			Name: "usage_blocked suspends", State: Active, Data: mp,
			Event: "usage_blocked", Payload: `{"reason":"SERVICE_NOT_ACTIVATED"}`, Source: "autonomics/actuator/usage",
			To: Suspended, WantData: `{"plan":"basic","marketplace":true,"blocked":"usage","blocked_reason":"SERVICE_NOT_ACTIVATED"}`,
		},
		{
			Name: "usage_blocked again refreshes the reason", State: Suspended,
			Data:  `{"plan":"basic","blocked":"usage","blocked_reason":"SERVICE_NOT_ACTIVATED"}`,
			Event: "usage_blocked", Payload: `{"reason":"BILLING_DISABLED"}`,
			To: Suspended, WantData: `{"plan":"basic","blocked":"usage","blocked_reason":"BILLING_DISABLED"}`,
		},
		{
			Name: "usage_blocked while suspended for non-payment records both", State: Suspended, Data: mp,
			Event: "usage_blocked", Payload: `{"reason":"BILLING_DISABLED"}`,
			To: Suspended, WantData: `{"plan":"basic","marketplace":true,"blocked":"usage","blocked_reason":"BILLING_DISABLED","governor_suspended":true}`,
		},
		{
			Name: "usage_restored lifts a usage block", State: Suspended,
			Data:  `{"plan":"basic","marketplace":true,"blocked":"usage","blocked_reason":"BILLING_DISABLED"}`,
			Event: "usage_restored", To: Active, WantData: mp,
		},
		{
			Name: "usage_restored while the governors' suspension holds", State: Suspended,
			Data:  `{"plan":"basic","marketplace":true,"blocked":"usage","blocked_reason":"x","governor_suspended":true}`,
			Event: "usage_restored", To: Suspended, WantData: mp,
		},
		{
			Name: "reinstate during a usage block stays suspended", State: Suspended,
			Data:  `{"plan":"basic","blocked":"usage","blocked_reason":"x","governor_suspended":true}`,
			Event: "reinstate", To: Suspended, WantData: `{"plan":"basic","blocked":"usage","blocked_reason":"x"}`,
		},
		{
			Name: "reinstate after a non-payment suspension", State: Suspended, Data: mp,
			Event: "reinstate", To: Active, WantData: mp,
		},
		{
			Name: "suspend during a usage block records the governors' suspension", State: Suspended,
			Data:  `{"plan":"basic","blocked":"usage","blocked_reason":"x"}`,
			Event: "suspend", To: Suspended,
			WantData: `{"plan":"basic","blocked":"usage","blocked_reason":"x","governor_suspended":true}`,
		},

		// Rejections.
		{
			Name: "activated on a new entitlement without a plan", State: governor.StateNone,
			Event: "activated", Payload: `{"usage_reporting_id":"project_number:1"}`, Source: marketplaceSource, Reads: facts,
			Want: governor.Rejected, Reason: "plan_required: ", To: governor.StateNone,
		},
		{
			Name: "plan_change_requested to a plan not in the catalog on a direct entitlement", State: Active,
			Data: `{"plan":"basic"}`, Event: "plan_change_requested", Payload: `{"plan":"enterprise"}`, Source: marketplaceSource, Reads: facts,
			Want: governor.Rejected, Reason: `plan_not_published: plan "enterprise" is not in the catalog`, To: Active,
		},
		{
			Name: "usage_restored without a usage block", State: Suspended, Data: mp, Event: "usage_restored",
			Want: governor.Rejected, Reason: "not_usage_blocked: ", To: Suspended,
		},
		{
			Name: "usage_restored when active", State: Active, Data: mp, Event: "usage_restored",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Active,
		},
		{
			Name: "usage_blocked during a pending cancellation", State: PendingCancellation, Data: mp,
			Event: "usage_blocked", Payload: `{"reason":"x"}`,
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: PendingCancellation,
		},
		{
			Name: "suspend when suspended for non-payment", State: Suspended, Data: mp, Event: "suspend",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Suspended,
		},
		{
			Name: "offer_ended when suspended", State: Suspended, Data: mp, Event: "offer_ended",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Suspended,
		},
		{
			Name: "offer_ended when cancelled", State: Cancelled, Data: mp, Event: "offer_ended",
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: Cancelled,
		},
		{
			Name: "plan_changed during a pending cancellation", State: PendingCancellation, Data: mp,
			Event: "plan_changed", Payload: `{"plan":"pro"}`, Reads: facts,
			Want: governor.Rejected, Reason: string(governor.ReasonNoTransition), To: PendingCancellation,
		},
	}
	machinetest.RunLifecycle(t, Machine(), "ent-1", cases)
}

// TestEntitlementHostilePayloadsAreRefused refuses what the Marketplace
// adapter or a producer could send wrong: oversized or non-printable ids,
// times that are not RFC 3339, members spelled twice, unknown fields.
func TestEntitlementHostilePayloadsAreRefused(t *testing.T) {
	m := Machine()
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
	m := Machine()
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
	if got := Machine().Actions(); !slices.Equal(got, want) {
		t.Errorf("entitlement Actions() = %q, want %q", got, want)
	}
	if got := account.Machine().Actions(); !slices.Equal(got, []string{"marketplace.approve_account", "marketplace.reject_account"}) {
		t.Errorf("customer_account Actions() = %q", got)
	}
}

// TestMarketplaceSourcePrefixMatchesEngine keeps the entitlement's idea of a
// Marketplace sender in step with the engine's.
func TestMarketplaceSourcePrefixMatchesEngine(t *testing.T) {
	if MarketplaceSourcePrefix != engine.MarketplaceSourcePrefix {
		t.Errorf("MarketplaceSourcePrefix = %q, engine.MarketplaceSourcePrefix = %q", MarketplaceSourcePrefix, engine.MarketplaceSourcePrefix)
	}
}

// TestEmittedDataIsByteExact pins the bytes of the data the entitlement
// emits, which the receiving governors and the actuators decode and the
// receipts record.
func TestEmittedDataIsByteExact(t *testing.T) {
	m := Machine()
	facts := activeReads()
	mp := `{"plan":"basic","marketplace":true}`
	cases := []struct {
		c    machinetest.Lifecycle
		want []string
	}{
		{
			machinetest.Lifecycle{Name: "creation_requested", State: governor.StateNone,
				Event: "creation_requested", Payload: `{"plan":"basic"}`, Reads: facts},
			[]string{`{}`},
		},
		{
			machinetest.Lifecycle{Name: "account_activated", State: ActivationRequested, Data: `{"plan":"basic"}`,
				Event: "account_activated"},
			[]string{`{}`},
		},
		{
			machinetest.Lifecycle{Name: "activated", State: ActivationRequested, Data: `{"plan":"basic"}`,
				Event: "activated", Reads: facts},
			[]string{`{}`, `{"plan":"basic","trial_days":0}`, `{"limit":1000}`, `{"limit":10}`},
		},
		{
			machinetest.Lifecycle{Name: "activated with a trial", State: ActivationRequested, Data: `{"plan":"pro","trial_days":30}`,
				Event: "activated", Reads: facts},
			[]string{`{}`, `{"plan":"pro","trial_days":30}`, `{"limit":100000}`, `{"limit":50}`},
		},
		{
			machinetest.Lifecycle{Name: "activated from the Marketplace", State: ActivationRequested, Data: mp,
				Event: "activated", Source: marketplaceSource, Reads: facts},
			[]string{`{}`, `{"plan":"basic","trial_days":0,"billed_by":"marketplace"}`, `{"limit":1000}`, `{"limit":10}`},
		},
		{
			machinetest.Lifecycle{Name: "rejected", State: ActivationRequested, Data: mp, Event: "rejected"},
			[]string{`{"reason":"rejected by the provider"}`},
		},
		{
			machinetest.Lifecycle{Name: "rejected with a reason", State: ActivationRequested, Data: mp,
				Event: "rejected", Payload: `{"reason":"sanctions \"list\" é"}`},
			[]string{`{"reason":"sanctions \"list\" é"}`},
		},
		{
			machinetest.Lifecycle{Name: "approval timeout", State: ActivationRequested, Data: mp,
				Timers: []string{ApprovalTimer}, Event: governor.Timeout(ApprovalTimer)},
			[]string{`{"reason":"approval timed out after 2d"}`},
		},
		{
			machinetest.Lifecycle{Name: "plan_change_requested", State: Active, Data: mp,
				Event: "plan_change_requested", Payload: `{"plan":"pro"}`, Reads: facts},
			[]string{`{"plan":"pro"}`},
		},
		{
			machinetest.Lifecycle{Name: "plan_change_requested refused", State: Active, Data: mp,
				Event: "plan_change_requested", Payload: `{"plan":"enterprise"}`, Reads: facts},
			[]string{`{"plan":"enterprise","reason":"plan_not_published: plan \"enterprise\" is not in the catalog"}`},
		},
		{
			machinetest.Lifecycle{Name: "plan_changed", State: PendingPlanChange, Data: `{"plan":"basic","pending_plan":"pro"}`,
				Event: "plan_changed", Payload: `{"plan":"pro"}`, Reads: facts},
			[]string{`{"plan":"pro"}`, `{"limit":100000}`, `{"limit":50}`},
		},
		{
			machinetest.Lifecycle{Name: "cancelled", State: Active, Data: mp, Event: "cancelled"},
			[]string{`{}`, `{}`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.c.Name, func(t *testing.T) {
			inst := machinetest.LifecycleInstance(m, tc.c, "ent-1")
			ev := machinetest.LifecycleEvent(m, tc.c, inst)
			d, err := m.Decide(governor.Input{Instance: inst, Event: ev, Reads: tc.c.Reads, Now: machinetest.LifecycleNow})
			if err != nil || d.Outcome != governor.Accepted {
				t.Fatalf("Decide(%s, %s) = %s %q, %v, want accepted", tc.c.State, tc.c.Event, d.Outcome, d.Reason, err)
			}
			var got []string
			for _, e := range d.Emits {
				got = append(got, string(e.Data))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Decide(%s, %s) emitted data\n%q\nwant\n%q", tc.c.State, tc.c.Event, got, tc.want)
			}
		})
	}
}

// TestEveryReasonIsGiven rejects with every reason code the machine
// declares, and checks the whole reason a receipt records.
func TestEveryReasonIsGiven(t *testing.T) {
	m := Machine()
	facts := activeReads()
	cases := map[governor.ReasonCode]struct {
		c      machinetest.Lifecycle
		reason string
	}{
		ReasonPlanRequired: {
			machinetest.Lifecycle{Name: "activated without a plan", State: governor.StateNone,
				Event: "activated", Payload: `{"usage_reporting_id":"project_number:1"}`, Source: marketplaceSource, Reads: facts},
			"plan_required: an entitlement activated without a creation request must name its plan",
		},
		ReasonPlanNotPublished: {
			machinetest.Lifecycle{Name: "plan_change_requested to a deprecated plan", State: Active, Data: `{"plan":"basic"}`,
				Event: "plan_change_requested", Payload: `{"plan":"legacy"}`, Reads: facts},
			`plan_not_published: plan "legacy" is deprecated`,
		},
		ReasonNotUsageBlocked: {
			machinetest.Lifecycle{Name: "usage_restored without a usage block", State: Suspended, Data: `{"plan":"basic"}`,
				Event: "usage_restored"},
			"not_usage_blocked: the entitlement is suspended by the governors, not by a usage block",
		},
		governor.ReasonNoTransition: {
			machinetest.Lifecycle{Name: "suspend when suspended", State: Suspended, Data: `{"plan":"basic"}`, Event: "suspend"},
			"no_transition: event suspend not allowed in state suspended",
		},
	}
	for _, r := range m.Reasons {
		if _, ok := cases[r.Code]; !ok {
			t.Errorf("reason %s is declared but no case rejects with it", r.Code)
		}
	}
	for code, tc := range cases {
		t.Run(string(code), func(t *testing.T) {
			if !m.HasReason(code) {
				t.Fatalf("HasReason(%s) = false, want declared", code)
			}
			inst := machinetest.LifecycleInstance(m, tc.c, "ent-1")
			ev := machinetest.LifecycleEvent(m, tc.c, inst)
			if err := m.CheckEvent(ev); err != nil {
				t.Fatalf("CheckEvent(%s %s) = %v, want nil", ev.Name, ev.Data, err)
			}
			d, err := m.Decide(governor.Input{Instance: inst, Event: ev, Reads: tc.c.Reads, Now: machinetest.LifecycleNow})
			if err != nil || d.Outcome != governor.Rejected || d.Code != code || d.Reason != tc.reason {
				t.Errorf("Decide(%s, %s) = %s %s %q, %v, want rejected %s %q", tc.c.State, tc.c.Event, d.Outcome, d.Code, d.Reason, err, code, tc.reason)
			}
		})
	}
}
