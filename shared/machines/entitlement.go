package machines

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// States of the entitlement machine.
const (
	entActivationRequested       governor.State = "activation_requested"
	entActive                    governor.State = "active"
	entPendingPlanChangeApproval governor.State = "pending_plan_change_approval"
	entPendingPlanChange         governor.State = "pending_plan_change"
	entPendingCancellation       governor.State = "pending_cancellation"
	entSuspended                 governor.State = "suspended"
	entCancelled                 governor.State = "cancelled"
	entDeleted                   governor.State = "deleted"
)

// entPublished is the catalog state a plan must be in to be chosen by a
// plan change.
const entPublished governor.State = "published"

// entMaxTrialDays bounds the trial_days of an entitlement or subscription.
const entMaxTrialDays = 730

// entIDPattern is the syntax of plan ids and quota metric names: the
// subject syntax of the event contract.
var entIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// entValidPlan reports an error unless plan is a plan id.
func entValidPlan(plan string) error {
	if plan == "" {
		return errors.New("plan is required")
	}
	if !entIDPattern.MatchString(plan) {
		return fmt.Errorf("plan %q must be 1-128 characters of [A-Za-z0-9._-]", plan)
	}
	return nil
}

// entValidSubject reports whether s may be used as the subject of an
// instance (the event contract).
func entValidSubject(s string) bool {
	return entIDPattern.MatchString(s) && s != "." && s != ".." && !strings.HasPrefix(s, "__")
}

// entCreation is the data of entitlement.creation_requested. TrialDays is
// an optional free trial that is passed on to the subscription.
type entCreation struct {
	Plan      string `json:"plan"`
	TrialDays *int   `json:"trial_days"`
}

// Validate checks the plan id and the trial length.
func (p entCreation) Validate() error {
	if err := entValidPlan(p.Plan); err != nil {
		return err
	}
	if p.TrialDays != nil && (*p.TrialDays < 0 || *p.TrialDays > entMaxTrialDays) {
		return fmt.Errorf("trial_days %d out of range 0..%d", *p.TrialDays, entMaxTrialDays)
	}
	return nil
}

// entPlanRef is the data of plan_change_requested and plan_changed.
type entPlanRef struct {
	Plan string `json:"plan"`
}

// Validate checks the plan id.
func (p entPlanRef) Validate() error { return entValidPlan(p.Plan) }

// entData is what an entitlement instance keeps: its current plan, the
// trial requested at creation, and the plan a pending change moves to.
type entData struct {
	Plan        string `json:"plan"`
	TrialDays   int    `json:"trial_days,omitempty"`
	PendingPlan string `json:"pending_plan,omitempty"`
}

// entSubscriptionCreated is the data of the subscription.created cascade.
type entSubscriptionCreated struct {
	Plan      string `json:"plan"`
	TrialDays int    `json:"trial_days"`
}

// entLimit is the data of the quota_sla.limit_set cascade.
type entLimit struct {
	Limit int64 `json:"limit"`
}

// entitlementMachine returns the entitlement machine, which
// mirrors the Marketplace Procurement lifecycle. The subject is the
// entitlement id; the instance keeps entData.
func entitlementMachine() *governor.Machine {
	return &governor.Machine{
		Domain: governor.Entitlement,
		States: []governor.State{
			entActivationRequested, entActive, entPendingPlanChangeApproval, entPendingPlanChange,
			entPendingCancellation, entSuspended, entCancelled, entDeleted,
		},
		Terminal: []governor.State{entCancelled, entDeleted},
		Timers: map[string]time.Duration{
			"approval": 48 * time.Hour,
		},
		Transitions: []governor.Transition{
			{
				From: []governor.State{governor.StateNone}, On: "creation_requested", To: entActivationRequested,
				Arm:   []string{"approval"},
				Apply: entCreate,
				Note: "keeps plan and trial_days; if the customer_account is active: actuate marketplace.approve_entitlement, " +
					"otherwise approval waits for account_activated",
			},
			{
				From: []governor.State{entActivationRequested}, On: "account_activated", To: entActivationRequested,
				Actuate: []string{"marketplace.approve_entitlement"},
			},
			{
				From: []governor.State{entActivationRequested}, On: "activated", To: entActive,
				Cancel:  []string{"approval"},
				Cascade: []governor.Cascade{{Domain: governor.MultiTenant, Event: "provision_requested", Subject: governor.DefaultSubject}},
				Apply:   entActivate,
				Note: "→ subscription.created {plan, trial_days}; → quota_sla.limit_set {limit} per limit of the plan " +
					"(subject = metric, in name order; none if the plan is not in the catalog)",
			},
			{
				From: []governor.State{entActivationRequested}, On: "rejected", To: entCancelled,
				Cancel:  []string{"approval"},
				Actuate: []string{"marketplace.reject_entitlement"},
			},
			{
				From: []governor.State{entActivationRequested}, On: governor.Timeout("approval"), To: entCancelled,
				Actuate: []string{"marketplace.reject_entitlement"},
			},
			{
				From: []governor.State{entActive}, On: "plan_change_requested", To: entPendingPlanChangeApproval,
				Guard: entPlanPublished,
				Apply: entRequestPlanChange,
				Note:  "rejected unless the plan is published in the catalog; keeps pending_plan; actuate marketplace.approve_plan_change {plan}",
			},
			{
				From: []governor.State{entPendingPlanChangeApproval}, On: "plan_change_approved", To: entPendingPlanChange,
			},
			{
				From: []governor.State{entPendingPlanChangeApproval, entPendingPlanChange}, On: "plan_change_cancelled", To: entActive,
				Apply: entDropPendingPlan,
				Note:  "clears pending_plan",
			},
			{
				From: []governor.State{entPendingPlanChange}, On: "plan_changed", To: entActive,
				Apply: entChangePlan,
				Note: "plan := the event's plan; → subscription.plan_changed {plan}; → quota_sla.limit_set {limit} per limit of the new plan " +
					"(none if it is not in the catalog; metrics the new plan drops keep their limit)",
			},
			{
				From: []governor.State{entActive}, On: "pending_cancellation", To: entPendingCancellation,
			},
			{
				From: []governor.State{entPendingCancellation}, On: "cancellation_reverted", To: entActive,
			},
			{
				From: []governor.State{entActive}, On: "suspend", To: entSuspended,
			},
			{
				From: []governor.State{entSuspended}, On: "reinstate", To: entActive,
			},
			{
				Any: true, On: "cancelled", To: entCancelled,
				Cascade: []governor.Cascade{
					{Domain: governor.Subscription, Event: "cancel"},
					{Domain: governor.MultiTenant, Event: "deprovision", Subject: governor.DefaultSubject},
				},
			},
			{
				From: []governor.State{entCancelled}, On: "deleted", To: entDeleted,
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			"creation_requested":    governor.FromOutside,
			"account_activated":     governor.FromGovernors,
			"activated":             governor.FromOutside,
			"rejected":              governor.FromOutside,
			"plan_change_requested": governor.FromOutside,
			"plan_change_approved":  governor.FromOutside,
			"plan_change_cancelled": governor.FromOutside,
			"plan_changed":          governor.FromOutside,
			"pending_cancellation":  governor.FromOutside,
			"cancellation_reverted": governor.FromOutside,
			"suspend":               governor.FromGovernors,
			"reinstate":             governor.FromGovernors,
			"cancelled":             {governor.SenderExternal, governor.SenderMarketplace, governor.SenderGovernor},
			"deleted":               governor.FromOutside,
		},
		EmitsTo:     []governor.Domain{governor.Subscription, governor.QuotaSLA},
		ActionKinds: []string{"marketplace.approve_entitlement", "marketplace.approve_plan_change"},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			"creation_requested":    governor.Schema[entCreation](),
			"plan_change_requested": governor.Schema[entPlanRef](),
			"plan_changed":          governor.Schema[entPlanRef](),
		},
		Needs: entNeeds,
	}
}

// entNeeds asks for the account state on creation and for the catalog entry
// of the plan an event names or the instance holds.
func entNeeds(inst governor.Instance, ev governor.Event) governor.Needs {
	switch ev.Name {
	case "creation_requested":
		return governor.Needs{Account: true}
	case "plan_change_requested", "plan_changed":
		var p entPlanRef
		if json.Unmarshal(ev.Data, &p) == nil && p.Plan != "" {
			return governor.Needs{Plans: []string{p.Plan}}
		}
	case "activated":
		var d entData
		if json.Unmarshal(inst.Data, &d) == nil && d.Plan != "" {
			return governor.Needs{Plans: []string{d.Plan}}
		}
	}
	return governor.Needs{}
}

// entCreate keeps the plan and trial of a new entitlement and asks the
// Marketplace to approve it when the account is already active.
func entCreate(c *governor.Ctx) error {
	var p entCreation
	if err := c.Payload(&p); err != nil {
		return err
	}
	d := entData{Plan: p.Plan}
	if p.TrialDays != nil {
		d.TrialDays = *p.TrialDays
	}
	if err := c.Store(d); err != nil {
		return err
	}
	if c.Facts().Account == acctActive {
		return c.Actuate("marketplace.approve_entitlement", nil)
	}
	return nil
}

// entActivate creates the subscription and sets the quota limits of the
// entitlement's plan.
func entActivate(c *governor.Ctx) error {
	d, err := governor.Data[entData](c)
	if err != nil {
		return err
	}
	if err := c.Emit(governor.Subscription, "created", "", entSubscriptionCreated{Plan: d.Plan, TrialDays: d.TrialDays}); err != nil {
		return err
	}
	return entEmitLimits(c, d.Plan)
}

// entEmitLimits emits one quota_sla.limit_set per limit of plan, in metric
// name order. A plan missing from the catalog emits nothing; limits that
// are not positive or whose metric is not a valid subject are skipped,
// since quota_sla would refuse them.
func entEmitLimits(c *governor.Ctx, plan string) error {
	p, ok := c.Facts().Plans[plan]
	if !ok {
		return nil
	}
	metrics := make([]string, 0, len(p.Limits))
	for m := range p.Limits {
		metrics = append(metrics, m)
	}
	sort.Strings(metrics)
	for _, m := range metrics {
		limit := p.Limits[m]
		if limit <= 0 || !entValidSubject(m) {
			continue
		}
		if err := c.Emit(governor.QuotaSLA, "limit_set", m, entLimit{Limit: limit}); err != nil {
			return err
		}
	}
	return nil
}

// entPlanPublished refuses a plan change to a plan that is not published in
// the provider catalog.
func entPlanPublished(c *governor.Ctx) error {
	var p entPlanRef
	if err := c.Payload(&p); err != nil {
		return err
	}
	plan, ok := c.Facts().Plans[p.Plan]
	if !ok {
		return governor.Reject("plan_not_published: plan %q is not in the catalog", p.Plan)
	}
	if plan.State != entPublished {
		return governor.Reject("plan_not_published: plan %q is %s", p.Plan, plan.State)
	}
	return nil
}

// entRequestPlanChange keeps the requested plan and asks the Marketplace to
// approve the change.
func entRequestPlanChange(c *governor.Ctx) error {
	var p entPlanRef
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[entData](c)
	if err != nil {
		return err
	}
	d.PendingPlan = p.Plan
	if err := c.Store(d); err != nil {
		return err
	}
	return c.Actuate("marketplace.approve_plan_change", entPlanRef{Plan: p.Plan})
}

// entDropPendingPlan forgets a cancelled plan change.
func entDropPendingPlan(c *governor.Ctx) error {
	d, err := governor.Data[entData](c)
	if err != nil {
		return err
	}
	d.PendingPlan = ""
	return c.Store(d)
}

// entChangePlan switches the entitlement to the event's plan, which is the
// Marketplace's word and wins over the pending plan, and passes the change
// on to the subscription and the quotas.
func entChangePlan(c *governor.Ctx) error {
	var p entPlanRef
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[entData](c)
	if err != nil {
		return err
	}
	d.Plan, d.PendingPlan = p.Plan, ""
	if err := c.Store(d); err != nil {
		return err
	}
	if err := c.Emit(governor.Subscription, "plan_changed", "", entPlanRef{Plan: p.Plan}); err != nil {
		return err
	}
	return entEmitLimits(c, p.Plan)
}
