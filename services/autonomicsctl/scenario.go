package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/autonomics/autonomics/shared/governor"
)

// demoEvent is an event the demo publishes, as its producer would.
type demoEvent struct {
	Domain  governor.Domain
	Name    governor.EventName
	Subject string
	// Data is the event's JSON object.
	Data string
	// Outcome is the outcome its receipt must have; accepted when empty.
	Outcome governor.Outcome
	// Source, when set, replaces the demo's own source: a forged event.
	Source string
	// TimerOf, when set, fills data with the id of the armed timer of
	// that name of the instance, as an attacker reading the query API
	// would.
	TimerOf string
	// DeadLetter, when set, is what the reason of the event's dead letter
	// must contain: the event must be refused, with no receipt.
	DeadLetter string
}

// forged returns an event an outsider publishes to the domain topic with
// source src, which must be dead-lettered with a reason containing why.
func forged(d governor.Domain, name governor.EventName, subject, data, src, why string) demoEvent {
	e := ev(d, name, subject, data)
	e.Source, e.DeadLetter = src, why
	return e
}

// ev returns an event with data data ("" for none).
func ev(d governor.Domain, name governor.EventName, subject, data string) demoEvent {
	if data == "" {
		data = "{}"
	}
	return demoEvent{Domain: d, Name: name, Subject: subject, Data: data}
}

// refused marks an event whose receipt must be a rejection.
func (e demoEvent) refused() demoEvent {
	e.Outcome = governor.Rejected
	return e
}

// wantOutcome returns the outcome the event's receipt must have.
func (e demoEvent) wantOutcome() governor.Outcome {
	if e.Outcome == "" {
		return governor.Accepted
	}
	return e.Outcome
}

// want is a condition on one instance that a step waits for.
type want struct {
	Domain  governor.Domain
	Subject string
	State   governor.State
	// Path and Value, when Path is set, require the instance data's value
	// at the dotted Path to print as Value.
	Path, Value string
	// Seen, when set, requires at least Times accepted receipts of event
	// Seen on the instance.
	Seen  governor.EventName
	Times int
	// Reached relaxes State: the instance must have entered it (an
	// accepted receipt to State), wherever it is now. It is for states
	// that something outside the scenario ends at once, as the provider's
	// system ends provisioning.
	Reached bool
}

// at returns the condition "instance (d, subject) is in state s".
func at(d governor.Domain, subject string, s governor.State) want {
	return want{Domain: d, Subject: subject, State: s}
}

// reached returns the condition "instance (d, subject) entered state s",
// whether or not it has moved on since.
func reached(d governor.Domain, subject string, s governor.State) want {
	return want{Domain: d, Subject: subject, State: s, Reached: true}
}

// with adds a condition on the instance data.
func (w want) with(path string, value any) want {
	w.Path, w.Value = path, fmt.Sprint(value)
	return w
}

// seen adds "event name was accepted at least n times".
func (w want) seen(name governor.EventName, n int) want {
	w.Seen, w.Times = name, n
	return w
}

// String describes the condition.
func (w want) String() string {
	s := fmt.Sprintf("%s/%s in %s", w.Domain, w.Subject, w.State)
	if w.Reached {
		s = fmt.Sprintf("%s/%s entered %s", w.Domain, w.Subject, w.State)
	}
	if w.Path != "" {
		s += fmt.Sprintf(" with %s = %s", w.Path, w.Value)
	}
	if w.Seen != "" {
		s += fmt.Sprintf(" after %s ×%d", w.Seen, w.Times)
	}
	return s
}

// clockAdvance moves the due time of an armed timer to now.
type clockAdvance struct {
	Domain  governor.Domain
	Subject string
	Timer   string
}

// reaction is an event that the provider's own system sends in reaction
// to an action it received: the demo publishes nothing for it and waits
// for it to arrive through the local stack (actuator → receiver → ingest
// API → governor), and the simulation, which has no receiver, plays the
// provider's part itself.
type reaction struct {
	// Action and Subject name the action reacted to, which the tenant's
	// governors must have emitted first.
	Action  string
	Subject string
	// Event is what the provider's system sends.
	Event demoEvent
	// Source is the source the event arrives with: the ingest API sets
	// its producer's.
	Source string
}

// String describes the reaction.
func (rc reaction) String() string {
	return fmt.Sprintf("%s from %s in reaction to %s", governor.TypeOf(rc.Event.Domain, rc.Event.Name), rc.Source, rc.Action)
}

// step publishes events one after the other, each once the previous one's
// receipt exists, then waits for its conditions.
type step struct {
	Title   string
	Advance *clockAdvance
	Publish []demoEvent
	// Reaction, when set, is an event the step does not publish: the
	// provider's system sends it in reaction to an action.
	Reaction *reaction
	Wait     []want
}

// actionWant is an action the scenario of a tenant must emit at least Min
// times.
type actionWant struct {
	Kind    string
	Subject string
	Min     int
}

// tenantScenario is the story of one tenant.
type tenantScenario struct {
	Tenant  string
	Steps   []step
	Actions []actionWant
}

// scenario is the demo: the provider's catalog first, then the customer
// tenants side by side.
type scenario struct {
	Provider tenantScenario
	Tenants  []tenantScenario
}

// All returns the provider's scenario followed by the tenants'.
func (s scenario) All() []tenantScenario {
	return append([]tenantScenario{s.Provider}, s.Tenants...)
}

// demoPlan is a catalog entry of the demo.
type demoPlan struct {
	SKU        string
	Name       string
	UnitPrices map[string]int64
	Limits     map[string]int64
}

// The demo's catalog: prices in US cents per unit.
var (
	planGold = demoPlan{
		SKU: "gold", Name: "Gold",
		UnitPrices: map[string]int64{"api_calls": 2, "storage_gb": 25},
		Limits:     map[string]int64{"api_calls": 10000, "seats": 50},
	}
	planStarter = demoPlan{
		SKU: "starter", Name: "Starter",
		UnitPrices: map[string]int64{"api_calls": 3, "storage_gb": 30},
		Limits:     map[string]int64{"api_calls": 1000, "seats": 5},
	}
)

// demoCurrency is the currency of the demo's catalog.
const demoCurrency = "USD"

// demoPeriod is the billing period the demo bills.
const demoPeriod = "2026-11"

// drafted returns the data of product_catalog.drafted for p.
func (p demoPlan) drafted() string {
	b, _ := json.Marshal(map[string]any{
		"name": p.Name, "currency": demoCurrency, "unit_prices": p.UnitPrices, "limits": p.Limits,
	})
	return string(b)
}

// invoice returns what usage costs at p's prices: Σ quantity × unit price.
func (p demoPlan) invoice(usage map[string]int64) int64 {
	var sum int64
	for _, m := range slices.Sorted(maps.Keys(usage)) {
		sum += usage[m] * p.UnitPrices[m]
	}
	return sum
}

// Event names used by the scenario, per domain.
const (
	evRequested   governor.EventName = "requested"
	evVerified    governor.EventName = "verified"
	evActivated   governor.EventName = "activated"
	evSuspend     governor.EventName = "suspend"
	evSuspended   governor.EventName = "suspended"
	evRestricted  governor.EventName = "restricted"
	evPlanChanged governor.EventName = "plan_changed"
	evPayFailed   governor.EventName = "payment_failed"
	evPaySucceed  governor.EventName = "payment_succeeded"
	evUsage       governor.EventName = "usage_recorded"
	evClosed      governor.EventName = "closed"
)

// Shorthands for the domains.
const (
	account      = governor.CustomerAccount
	entitlement  = governor.Entitlement
	subscription = governor.Subscription
	billing      = governor.Billing
	catalog      = governor.ProductCatalog
	quota        = governor.QuotaSLA
	compliance   = governor.ComplianceAudit
	tenancy      = governor.MultiTenant
)

const def = governor.DefaultSubject

// signup returns the steps of a customer signing up and being verified.
func signup() []step {
	return []step{
		{
			Title:   "signs up",
			Publish: []demoEvent{ev(account, evRequested, def, "")},
			Wait:    []want{at(account, def, "pending_verification")},
		},
		{
			Title:   "is verified (Marketplace approves the account)",
			Publish: []demoEvent{ev(account, evVerified, def, "")},
			Wait:    []want{at(account, def, "active")},
		},
	}
}

// entitle returns the steps of an entitlement to plan p being requested
// and activated: the activation cascades to subscription, multi_tenant and
// quota_sla. trialDays < 0 omits trial_days.
func entitle(id string, p demoPlan, trialDays int) []step {
	data := fmt.Sprintf(`{"plan":%q}`, p.SKU)
	sub := at(subscription, id, "active").with("plan", p.SKU)
	if trialDays >= 0 {
		data = fmt.Sprintf(`{"plan":%q,"trial_days":%d}`, p.SKU, trialDays)
		if trialDays > 0 {
			sub = at(subscription, id, "trialing").with("plan", p.SKU)
		}
	}
	// The provider's system provisions the tenant as soon as it receives
	// tenant.provision, so provisioning may already be over.
	wait := []want{
		at(entitlement, id, "active").with("plan", p.SKU),
		sub,
		reached(tenancy, def, "provisioning"),
	}
	for _, m := range slices.Sorted(maps.Keys(p.Limits)) {
		wait = append(wait, at(quota, m, "within_limits").with("limit", p.Limits[m]))
	}
	return []step{
		{
			Title:   fmt.Sprintf("requests entitlement %s to plan %s", id, p.SKU),
			Publish: []demoEvent{ev(entitlement, "creation_requested", id, data)},
			Wait:    []want{at(entitlement, id, "activation_requested")},
		},
		{
			Title:   fmt.Sprintf("Marketplace activates %s: subscription, provisioning and quotas follow", id),
			Publish: []demoEvent{ev(entitlement, evActivated, id, "")},
			Wait:    wait,
		},
	}
}

// provisionerName is the producer, in the ingest API's rules, that the
// provider's provisioning system is; provisionerSource is the source its
// events are published with.
const (
	provisionerName   = "provisioner"
	provisionerSource = "ingest/" + provisionerName
)

// provisioned returns the step of the tenant's resources being ready: the
// provider's system provisions them on tenant.provision and reports
// multi_tenant.provisioned through the ingest API.
func provisioned() step {
	return step{
		Title: "the provider's system provisions the tenant and reports it through the ingest API",
		Reaction: &reaction{
			Action: "tenant.provision", Subject: def,
			Event: ev(tenancy, "provisioned", def, ""), Source: provisionerSource,
		},
		Wait: []want{at(tenancy, def, "active")},
	}
}

// invoiced returns the steps of usage recorded in demoPeriod and the
// period closed with plan p.
func invoiced(p demoPlan, usage map[string]int64) []step {
	var pub []demoEvent
	open := at(billing, demoPeriod, "open")
	var wait []want
	for _, m := range slices.Sorted(maps.Keys(usage)) {
		pub = append(pub, ev(billing, evUsage, demoPeriod, fmt.Sprintf(`{"meter":%q,"quantity":%d}`, m, usage[m])))
		wait = append(wait, open.with("meters."+m, usage[m]))
	}
	return []step{
		{Title: "usage is recorded for " + demoPeriod, Publish: pub, Wait: wait},
		{
			Title:   fmt.Sprintf("period %s closes: invoice of %d %s cents", demoPeriod, p.invoice(usage), demoCurrency),
			Publish: []demoEvent{ev(billing, evClosed, demoPeriod, fmt.Sprintf(`{"plan":%q}`, p.SKU))},
			Wait:    []want{at(billing, demoPeriod, "invoiced").with("invoice.amount", p.invoice(usage))},
		},
	}
}

// payment returns the data of a payment of amount.
func payment(amount int64) string {
	return fmt.Sprintf(`{"amount":%d,"currency":%q}`, amount, demoCurrency)
}

// Usage of the demo's tenants in demoPeriod.
var (
	acmeUsage   = map[string]int64{"api_calls": 1200, "storage_gb": 3}
	globexUsage = map[string]int64{"api_calls": 800}
)

// demoScenario returns the demo for the given provider tenant.
func demoScenario(provider string) scenario {
	var prov tenantScenario
	prov.Tenant = provider
	plans := []demoPlan{planGold, planStarter}
	var draft, submit, approve []demoEvent
	var drafts, pending, published []want
	for _, p := range plans {
		draft = append(draft, ev(catalog, "drafted", p.SKU, p.drafted()))
		submit = append(submit, ev(catalog, "submitted", p.SKU, ""))
		approve = append(approve, ev(catalog, "approved", p.SKU, ""))
		drafts = append(drafts, at(catalog, p.SKU, "draft").with("currency", demoCurrency))
		pending = append(pending, at(catalog, p.SKU, "pending_approval"))
		published = append(published, at(catalog, p.SKU, "published"))
	}
	prov.Steps = []step{
		{Title: "drafts plans gold and starter", Publish: draft, Wait: drafts},
		{Title: "submits them for approval", Publish: submit, Wait: pending},
		{Title: "approves them: published", Publish: approve, Wait: published},
	}
	return scenario{Provider: prov, Tenants: []tenantScenario{acme(), globex(), initech()}}
}

// acme: a trial that ends, an invoice paid, a plan change, a quota
// exceeded.
func acme() tenantScenario {
	const ent = "ent-acme"
	amount := planGold.invoice(acmeUsage)
	var steps []step
	steps = append(steps, signup()...)
	steps = append(steps, entitle(ent, planGold, 1)...)
	steps = append(steps, provisioned())
	trialEnd := forged(subscription, governor.Timeout("trial_end"), ent, "", "//evil/outsider", "may be sent by scheduler only")
	trialEnd.TimerOf = "trial_end"
	asTimer := trialEnd
	asTimer.Source, asTimer.DeadLetter = "autonomics/timer", "reserved for Autonomics"
	steps = append(steps, step{
		Title: "an outsider with publisher rights tries to end the trial and throttle the tenant: refused",
		Publish: []demoEvent{
			trialEnd, asTimer,
			forged(tenancy, "noisy_neighbor_detected", def, `{"share_bp":9900}`, "autonomics/monitor", "reserved for Autonomics"),
		},
		Wait: []want{at(subscription, ent, "trialing"), at(tenancy, def, "active")},
	})
	steps = append(steps, step{
		Title:   "test clock: the one-day trial ends now, the trial_end timer fires",
		Advance: &clockAdvance{Domain: subscription, Subject: ent, Timer: "trial_end"},
		Wait:    []want{at(subscription, ent, "active").seen(governor.Timeout("trial_end"), 1)},
	})
	steps = append(steps, invoiced(planGold, acmeUsage)...)
	steps = append(steps,
		step{
			Title:   "a payment short of the invoice is refused",
			Publish: []demoEvent{ev(billing, evPaySucceed, demoPeriod, payment(amount-475)).refused()},
			Wait:    []want{at(billing, demoPeriod, "invoiced")},
		},
		step{
			Title:   fmt.Sprintf("the exact amount (%d) is paid", amount),
			Publish: []demoEvent{ev(billing, evPaySucceed, demoPeriod, payment(amount))},
			Wait:    []want{at(billing, demoPeriod, "paid").with("paid_amount", amount)},
		},
		step{
			Title:   "asks to move to plan starter",
			Publish: []demoEvent{ev(entitlement, "plan_change_requested", ent, `{"plan":"starter"}`)},
			Wait:    []want{at(entitlement, ent, "pending_plan_change_approval").with("pending_plan", "starter")},
		},
		step{
			Title:   "Marketplace approves the plan change",
			Publish: []demoEvent{ev(entitlement, "plan_change_approved", ent, "")},
			Wait:    []want{at(entitlement, ent, "pending_plan_change")},
		},
		step{
			Title:   "the plan changes: subscription and quotas follow",
			Publish: []demoEvent{ev(entitlement, evPlanChanged, ent, `{"plan":"starter"}`)},
			Wait: []want{
				at(entitlement, ent, "active").with("plan", "starter"),
				at(subscription, ent, "active").with("plan", "starter").seen(evPlanChanged, 1),
				at(quota, "api_calls", "within_limits").with("limit", planStarter.Limits["api_calls"]),
				at(quota, "seats", "within_limits").with("limit", planStarter.Limits["seats"]),
			},
		},
		step{
			Title:   "reports API usage over the starter limit: throttled",
			Publish: []demoEvent{ev(quota, "usage_reported", "api_calls", `{"usage":1500}`)},
			Wait:    []want{at(quota, "api_calls", "exceeded").with("usage", 1500)},
		},
	)
	return tenantScenario{
		Tenant: "acme",
		Steps:  steps,
		Actions: []actionWant{
			{Kind: "marketplace.approve_account", Subject: def, Min: 1},
			{Kind: "marketplace.approve_entitlement", Subject: ent, Min: 1},
			{Kind: "tenant.provision", Subject: def, Min: 1},
			{Kind: "billing.issue_invoice", Subject: demoPeriod, Min: 1},
			{Kind: "marketplace.approve_plan_change", Subject: ent, Min: 1},
			{Kind: "tenant.throttle", Subject: "api_calls", Min: 1},
		},
	}
}

// globexRetries is the number of payment retries before collections.
const globexRetries = 4

// globex: a failed payment, dunning to collections, a grace period that
// ends in suspension, and the operator suspending the account.
func globex() tenantScenario {
	const ent = "ent-globex"
	var steps []step
	steps = append(steps, signup()...)
	steps = append(steps, entitle(ent, planStarter, -1)...)
	steps = append(steps, provisioned())
	steps = append(steps, invoiced(planStarter, globexUsage)...)
	steps = append(steps,
		step{
			Title:   "the card is declined: dunning, the subscription is past due",
			Publish: []demoEvent{ev(billing, evPayFailed, demoPeriod, "")},
			Wait: []want{
				at(billing, demoPeriod, "dunning").with("attempt", 1),
				at(subscription, ent, "past_due").seen(evPayFailed, 1),
			},
		},
		step{
			Title: "the grace timer fires: subscription and entitlement suspended",
			Wait: []want{
				at(subscription, ent, "suspended").seen(governor.Timeout("grace"), 1),
				at(entitlement, ent, "suspended").seen(evSuspend, 1),
			},
		},
	)
	for n := 1; n <= globexRetries; n++ {
		after := at(billing, demoPeriod, "dunning").with("attempt", n+1)
		title := fmt.Sprintf("retry %d is declined", n)
		if n == globexRetries {
			after = at(billing, demoPeriod, "collections")
			title = fmt.Sprintf("retry %d is declined: collections", n)
		}
		steps = append(steps,
			step{
				Title: fmt.Sprintf("the retry timer fires: payment retry %d", n),
				Wait:  []want{at(billing, demoPeriod, "dunning").with("attempt", n).seen(governor.Timeout("retry"), n)},
			},
			step{
				Title:   title,
				Publish: []demoEvent{ev(billing, evPayFailed, demoPeriod, "")},
				Wait:    []want{after},
			},
		)
	}
	steps = append(steps, step{
		Title:   "the operator suspends the account: the tenant is suspended",
		Publish: []demoEvent{ev(account, evSuspended, def, "")},
		Wait: []want{
			at(account, def, "suspended"),
			at(tenancy, def, "suspended").seen(evSuspend, 1),
			at(entitlement, ent, "suspended"),
		},
	})
	return tenantScenario{
		Tenant: "globex",
		Steps:  steps,
		Actions: []actionWant{
			{Kind: "marketplace.approve_account", Subject: def, Min: 1},
			{Kind: "marketplace.approve_entitlement", Subject: ent, Min: 1},
			{Kind: "tenant.provision", Subject: def, Min: 1},
			{Kind: "billing.issue_invoice", Subject: demoPeriod, Min: 1},
			{Kind: "billing.retry_payment", Subject: demoPeriod, Min: globexRetries},
			{Kind: "tenant.suspend", Subject: def, Min: 1},
		},
	}
}

// initech: a critical audit finding restricts the account.
func initech() tenantScenario {
	const ent, audit = "ent-initech", "soc2-2026"
	var steps []step
	steps = append(steps, signup()...)
	steps = append(steps, entitle(ent, planStarter, -1)...)
	steps = append(steps, provisioned())
	steps = append(steps,
		step{
			Title:   "a SOC 2 audit starts",
			Publish: []demoEvent{ev(compliance, "audit_started", audit, "")},
			Wait:    []want{at(compliance, audit, "under_review")},
		},
		step{
			Title: "the audit fails with a critical finding: the account is restricted",
			Publish: []demoEvent{ev(compliance, "failed", audit,
				`{"severity":"critical","finding":"customer data bucket without encryption at rest"}`)},
			Wait: []want{
				at(compliance, audit, "non_compliant").with("severity", "critical"),
				at(account, def, "restricted").seen(evRestricted, 1),
			},
		},
	)
	return tenantScenario{
		Tenant: "initech",
		Steps:  steps,
		Actions: []actionWant{
			{Kind: "marketplace.approve_account", Subject: def, Min: 1},
			{Kind: "marketplace.approve_entitlement", Subject: ent, Min: 1},
			{Kind: "tenant.provision", Subject: def, Min: 1},
		},
	}
}

// dataAt returns the value at the dotted path of a JSON object, printed:
// strings as they are, numbers and booleans as JSON; ok is false when the
// path does not exist.
func dataAt(data []byte, path string) (string, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = m[k]; !ok {
			return "", false
		}
	}
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "null", true
	}
	b, _ := json.Marshal(v)
	return string(b), true
}
