package machines

import (
	"fmt"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// States of the subscription machine.
const (
	subTrialing  governor.State = "trialing"
	subActive    governor.State = "active"
	subPastDue   governor.State = "past_due"
	subSuspended governor.State = "suspended"
	subPaused    governor.State = "paused"
	subCanceled  governor.State = "canceled"
)

// subOverdueDelay is how soon the period_end timer fires when a
// subscription returns to active after its period has already ended.
const subOverdueDelay = time.Second

// subCreated is the data of subscription.created. Without trial_days the
// trial lasts the configured trial_end duration; trial_days 0 means no
// trial. BilledBy "marketplace" says that Google Cloud Marketplace bills
// the subscription; omitted, the billing governor does.
type subCreated struct {
	Plan      string `json:"plan"`
	TrialDays *int   `json:"trial_days"`
	BilledBy  string `json:"billed_by"`
}

// Validate checks the plan id, the trial length and who bills.
func (p subCreated) Validate() error {
	if err := entValidPlan(p.Plan); err != nil {
		return err
	}
	if err := entCheckTrial(p.TrialDays); err != nil {
		return err
	}
	if p.BilledBy != "" && p.BilledBy != entBilledByMarketplace {
		return fmt.Errorf("billed_by must be %q or omitted", entBilledByMarketplace)
	}
	return nil
}

// subData is what a subscription instance keeps: its plan, who bills it
// when it is not the billing governor, the end of its trial, the current
// billing period and whether it ends with that period.
type subData struct {
	Plan              string    `json:"plan"`
	BilledBy          string    `json:"billed_by,omitempty"`
	TrialEnd          time.Time `json:"trial_end,omitzero"`
	PeriodStart       time.Time `json:"period_start,omitzero"`
	PeriodEnd         time.Time `json:"period_end,omitzero"`
	CancelAtPeriodEnd bool      `json:"cancel_at_period_end,omitempty"`
}

// subClosed is the data of the billing.closed cascade.
type subClosed struct {
	Plan string `json:"plan"`
}

// subscriptionMachine returns the subscription machine,
// modelled on Stripe subscriptions. The subject is the subscription id,
// which is the id of the entitlement that created it; the instance keeps
// subData.
//
// Leaving active for past_due, suspended or paused stops the period_end
// timer; returning to active re-arms it for the end of the same period, so
// the billing cycle keeps its anchor, and a period that ended meanwhile is
// closed right away.
func subscriptionMachine() *governor.Machine {
	return &governor.Machine{
		Domain: governor.Subscription,
		States: []governor.State{
			subTrialing, subActive, subPastDue, subSuspended, subPaused, subCanceled,
		},
		Terminal: []governor.State{subCanceled},
		Timers: map[string]time.Duration{
			"trial_end":  14 * 24 * time.Hour,
			"period_end": 30 * 24 * time.Hour,
			"grace":      7 * 24 * time.Hour,
			"suspension": 30 * 24 * time.Hour,
		},
		Transitions: []governor.Transition{
			{
				From: []governor.State{governor.StateNone}, On: "created", To: subActive, Alt: []governor.State{subTrialing},
				Apply: subCreate,
				Note: "trialing with timer trial_end after trial_days days (the configured trial_end when omitted) if that is > 0; " +
					"otherwise active with timer period_end; keeps plan and billed_by",
			},
			{
				From: []governor.State{subTrialing}, On: "activated", To: subActive,
				Cancel: []string{"trial_end"},
				Apply:  subStartPeriod,
				Note:   "starts a billing period: timer period_end",
			},
			{
				From: []governor.State{subTrialing}, On: governor.Timeout("trial_end"), To: subActive,
				Apply: subStartPeriod,
				Note:  "starts a billing period: timer period_end",
			},
			{
				From: []governor.State{subActive}, On: "renewed", To: subActive, Alt: []governor.State{subCanceled},
				Apply: subRenew,
				Note:  subRenewNote,
			},
			{
				From: []governor.State{subActive}, On: governor.Timeout("period_end"), To: subActive, Alt: []governor.State{subCanceled},
				Apply: subRenew,
				Note:  subRenewNote,
			},
			{
				From: []governor.State{subActive}, On: "cancel_at_period_end", To: subActive,
				Apply: subSetCancelAtPeriodEnd,
				Note:  "sets cancel_at_period_end",
			},
			{
				From: []governor.State{subActive}, On: "payment_failed", To: subPastDue,
				Arm:   []string{"grace"},
				Guard: subBilledHere,
				Note:  "rejected (billed_by_marketplace) for a subscription Google Cloud Marketplace bills: no dunning of ours",
			},
			{
				From: []governor.State{subPastDue}, On: "payment_succeeded", To: subActive,
				Cancel: []string{"grace"},
				Apply:  subResumePeriod,
				Note:   "re-arms period_end for the end of the current period",
			},
			{
				From: []governor.State{subPastDue}, On: governor.Timeout("grace"), To: subSuspended,
				Arm:     []string{"suspension"},
				Cascade: []governor.Cascade{{Domain: governor.Entitlement, Event: "suspend"}},
			},
			{
				From: []governor.State{subSuspended}, On: "payment_succeeded", To: subActive,
				Cancel:  []string{"suspension"},
				Cascade: []governor.Cascade{{Domain: governor.Entitlement, Event: "reinstate"}},
				Apply:   subResumePeriod,
				Note:    "re-arms period_end for the end of the current period",
			},
			{
				From: []governor.State{subSuspended}, On: governor.Timeout("suspension"), To: subCanceled,
				Cascade: []governor.Cascade{{Domain: governor.Entitlement, Event: "cancelled"}},
			},
			{
				From: []governor.State{subActive}, On: "pause", To: subPaused,
			},
			{
				From: []governor.State{subPaused}, On: "resume", To: subActive,
				Apply: subResumePeriod,
				Note:  "re-arms period_end for the end of the current period",
			},
			{
				From: []governor.State{subActive}, On: "plan_changed", To: subActive,
				Apply: subChangePlan,
				Note:  "plan := the event's plan; the period's billing.closed names the plan current at its end",
			},
			{
				Any: true, On: "cancel", To: subCanceled,
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			"created":              {governor.SenderExternal, governor.SenderGovernor},
			"activated":            governor.FromProvider,
			"renewed":              governor.FromProvider,
			"cancel_at_period_end": governor.FromProvider,
			"payment_failed":       {governor.SenderExternal, governor.SenderGovernor},
			"payment_succeeded":    {governor.SenderExternal, governor.SenderGovernor},
			"pause":                governor.FromProvider,
			"resume":               governor.FromProvider,
			"plan_changed":         {governor.SenderExternal, governor.SenderGovernor},
			"cancel":               {governor.SenderExternal, governor.SenderGovernor},
		},
		EmitsTo: []governor.Domain{governor.Billing},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			"created":      governor.Schema[subCreated](),
			"plan_changed": governor.Schema[entPlanRef](),
		},
	}
}

// subRenewNote documents the renewal rows.
const subRenewNote = "→ billing.closed {plan} (subject = YYYY-MM of the period start, UTC), " +
	"except for a subscription the Marketplace bills (billed_by: marketplace), which Google invoices; " +
	"if cancel_at_period_end: canceled, otherwise a new period starts: timer period_end"

// subCreate starts a subscription, trialing or active.
func subCreate(c *governor.Ctx) error {
	var p subCreated
	if err := c.Payload(&p); err != nil {
		return err
	}
	d := subData{Plan: p.Plan, BilledBy: p.BilledBy}
	trial := c.Duration("trial_end")
	if p.TrialDays != nil {
		trial = time.Duration(*p.TrialDays) * 24 * time.Hour
	}
	if trial <= 0 {
		subNewPeriod(c, &d)
		return c.Store(d)
	}
	c.Goto(subTrialing)
	c.Arm("trial_end", trial)
	d.TrialEnd = c.Now().Add(trial).UTC()
	return c.Store(d)
}

// subNewPeriod starts a billing period at the decision time.
func subNewPeriod(c *governor.Ctx, d *subData) {
	now := c.Now().UTC()
	d.PeriodStart = now
	d.PeriodEnd = now.Add(c.Duration("period_end"))
	c.Arm("period_end", 0)
}

// subStartPeriod ends a trial with a new billing period.
func subStartPeriod(c *governor.Ctx) error {
	d, err := governor.Data[subData](c)
	if err != nil {
		return err
	}
	subNewPeriod(c, &d)
	return c.Store(d)
}

// subRenew closes the current period with billing, then either starts the
// next one or cancels the subscription as requested.
func subRenew(c *governor.Ctx) error {
	d, err := governor.Data[subData](c)
	if err != nil {
		return err
	}
	start := d.PeriodStart
	if start.IsZero() {
		start = c.Now()
	}
	if d.BilledBy != entBilledByMarketplace {
		if err := c.Emit(governor.Billing, "closed", start.UTC().Format("2006-01"), subClosed{Plan: d.Plan}); err != nil {
			return err
		}
	}
	if d.CancelAtPeriodEnd {
		c.Goto(subCanceled)
		d.PeriodEnd = c.Now().UTC()
		return c.Store(d)
	}
	subNewPeriod(c, &d)
	return c.Store(d)
}

// subBilledHere refuses a payment failure of a subscription the
// Marketplace bills: a failed payment of the tenant's own invoices does not
// concern it, and Google runs its collection.
func subBilledHere(c *governor.Ctx) error {
	d, err := governor.Data[subData](c)
	if err != nil {
		return err
	}
	if d.BilledBy == entBilledByMarketplace {
		return governor.Reject("billed_by_marketplace: Google Cloud Marketplace bills this subscription; no dunning applies")
	}
	return nil
}

// subSetCancelAtPeriodEnd marks the subscription to end with its period.
func subSetCancelAtPeriodEnd(c *governor.Ctx) error {
	d, err := governor.Data[subData](c)
	if err != nil {
		return err
	}
	d.CancelAtPeriodEnd = true
	return c.Store(d)
}

// subResumePeriod re-arms period_end for the end of the current period on
// the return to active; a period that has already ended fires at once.
func subResumePeriod(c *governor.Ctx) error {
	d, err := governor.Data[subData](c)
	if err != nil {
		return err
	}
	if d.PeriodEnd.IsZero() {
		subNewPeriod(c, &d)
		return c.Store(d)
	}
	c.Arm("period_end", max(d.PeriodEnd.Sub(c.Now()), subOverdueDelay))
	return nil
}

// subChangePlan switches the subscription to the event's plan.
func subChangePlan(c *governor.Ctx) error {
	var p entPlanRef
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[subData](c)
	if err != nil {
		return err
	}
	d.Plan = p.Plan
	return c.Store(d)
}
