// Package subscription is the subscription governor, modelled on Stripe
// subscriptions: one instance per subscription, whose subject is the
// subscription id, the id of the entitlement that created it. An instance
// keeps its plan, who bills it when the billing governor does not
// (billed_by), the end of its trial, the current billing period and
// whether the subscription ends with that period.
//
// Leaving active for past_due, suspended or paused stops the period_end
// timer; returning to active re-arms it for the end of the same period, so
// the billing cycle keeps its anchor, and a period that ended meanwhile is
// closed right away (after OverdueDelay).
//
// Subject conventions of its cascades: entitlement.suspend, reinstate and
// cancelled keep the instance's subject, the entitlement's id; the
// billing.closed that ends a period goes to the billing period named
// "YYYY-MM" after the month (UTC) the period started in, and none is sent
// for a subscription Google Cloud Marketplace bills
// (messages.BilledByMarketplace), which Google invoices.
package subscription

import (
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

// Domain is the governor's domain.
const Domain = governor.Subscription

// States of the subscription machine. Cancelled is spelled as the
// entitlement's state and every cancellation event are.
const (
	Trialing  governor.State = "trialing"
	Active    governor.State = "active"
	PastDue   governor.State = "past_due"
	Suspended governor.State = "suspended"
	Paused    governor.State = "paused"
	Cancelled governor.State = "cancelled"
)

// Events of the subscription machine that come from outside the
// governors; messages.SubscriptionCreated, SubscriptionPlanChanged,
// SubscriptionCancel, SubscriptionPaymentFailed and
// SubscriptionPaymentSucceeded are its events other governors send (the
// provider's systems may send them too).
const (
	Activated         governor.EventName = "activated"
	Renewed           governor.EventName = "renewed"
	CancelAtPeriodEnd governor.EventName = "cancel_at_period_end"
	Pause             governor.EventName = "pause"
	Resume            governor.EventName = "resume"
)

// Timers of the machine, with their default durations.
const (
	TrialEndTimer   = "trial_end"
	PeriodEndTimer  = "period_end"
	GraceTimer      = "grace"
	SuspensionTimer = "suspension"

	DefaultTrialEnd   = 14 * 24 * time.Hour
	DefaultPeriodEnd  = 30 * 24 * time.Hour
	DefaultGrace      = 7 * 24 * time.Hour
	DefaultSuspension = 30 * 24 * time.Hour
)

// OverdueDelay is how soon the period_end timer fires when a subscription
// returns to active after its period has already ended.
const OverdueDelay = time.Second

// Reason codes the machine rejects with.
const (
	// ReasonBilledByMarketplace refuses a payment failure of a
	// subscription Google Cloud Marketplace bills.
	ReasonBilledByMarketplace governor.ReasonCode = "billed_by_marketplace"
)

// periodLayout is the time layout of the subject of the billing period a
// renewal closes: the year and month its subscription period started in,
// UTC.
const periodLayout = "2006-01"

// record is what a subscription instance keeps: its plan, who bills it
// when it is not the billing governor, the end of its trial, the current
// billing period and whether it ends with that period.
type record struct {
	Plan              string    `json:"plan"`
	BilledBy          string    `json:"billed_by,omitempty"`
	TrialEnd          time.Time `json:"trial_end,omitzero"`
	PeriodStart       time.Time `json:"period_start,omitzero"`
	PeriodEnd         time.Time `json:"period_end,omitzero"`
	CancelAtPeriodEnd bool      `json:"cancel_at_period_end,omitempty"`
}

// Notes of the rows, for the generated docs.
var (
	createNote = "trialing with timer " + TrialEndTimer + " after trial_days days (the configured " + TrialEndTimer +
		" when omitted) if that is > 0; otherwise active with timer " + PeriodEndTimer + "; keeps plan and billed_by"
	startNote = "starts a billing period: timer " + PeriodEndTimer
	renewNote = "the billing.closed closes the ending period with the current plan; it is not sent for a subscription the Marketplace bills (billed_by: " +
		messages.BilledByMarketplace + "), which Google invoices; if cancel_at_period_end: cancelled, otherwise a new period starts: timer " + PeriodEndTimer
	resumeNote = "re-arms " + PeriodEndTimer + " for the end of the current period (after " +
		governor.HumanDuration(OverdueDelay) + " when that end has passed)"
)

// closedRef declares the billing.closed a renewal row emits.
var closedRef = messages.BillingClosed.May("YYYY-MM of the period start, UTC")

// Machine returns the subscription machine with its default timers.
func Machine() *governor.Machine {
	created, planChanged := messages.SubscriptionCreated.Name, messages.SubscriptionPlanChanged.Name
	cancel := messages.SubscriptionCancel.Name
	failed, succeeded := messages.SubscriptionPaymentFailed.Name, messages.SubscriptionPaymentSucceeded.Name
	fromBoth := []governor.Sender{governor.SenderExternal, governor.SenderGovernor}
	return &governor.Machine{
		Domain:   Domain,
		States:   []governor.State{Trialing, Active, PastDue, Suspended, Paused, Cancelled},
		Terminal: []governor.State{Cancelled},
		Timers: map[string]time.Duration{
			TrialEndTimer:   DefaultTrialEnd,
			PeriodEndTimer:  DefaultPeriodEnd,
			GraceTimer:      DefaultGrace,
			SuspensionTimer: DefaultSuspension,
		},
		Transitions: []governor.Transition{
			{
				From: []governor.State{governor.StateNone}, On: created, To: Active, Alt: []governor.State{Trialing},
				Apply: create,
				Note:  createNote,
			},
			{
				From: []governor.State{Trialing}, On: Activated, To: Active,
				Cancel: []string{TrialEndTimer},
				Apply:  startPeriod,
				Note:   startNote,
			},
			{
				From: []governor.State{Trialing}, On: governor.Timeout(TrialEndTimer), To: Active,
				Apply: startPeriod,
				Note:  startNote,
			},
			{
				From: []governor.State{Active}, On: Renewed, To: Active, Alt: []governor.State{Cancelled},
				Emits: []governor.Ref{closedRef},
				Apply: renew,
				Note:  renewNote,
			},
			{
				From: []governor.State{Active}, On: governor.Timeout(PeriodEndTimer), To: Active, Alt: []governor.State{Cancelled},
				Emits: []governor.Ref{closedRef},
				Apply: renew,
				Note:  renewNote,
			},
			{
				From: []governor.State{Active}, On: CancelAtPeriodEnd, To: Active,
				Apply: setCancelAtPeriodEnd,
				Note:  "sets cancel_at_period_end",
			},
			{
				From: []governor.State{Active}, On: failed, To: PastDue,
				Arm:   []string{GraceTimer},
				Guard: billedHere,
				Note:  "rejected (" + string(ReasonBilledByMarketplace) + ") for a subscription Google Cloud Marketplace bills: no dunning of ours",
			},
			{
				From: []governor.State{PastDue}, On: succeeded, To: Active,
				Cancel: []string{GraceTimer},
				Apply:  resumePeriod,
				Note:   resumeNote,
			},
			{
				From: []governor.State{PastDue}, On: governor.Timeout(GraceTimer), To: Suspended,
				Arm:     []string{SuspensionTimer},
				Cascade: []governor.Cascade{messages.EntitlementSuspend.To("")},
			},
			{
				From: []governor.State{Suspended}, On: succeeded, To: Active,
				Cancel:  []string{SuspensionTimer},
				Cascade: []governor.Cascade{messages.EntitlementReinstate.To("")},
				Apply:   resumePeriod,
				Note:    resumeNote,
			},
			{
				From: []governor.State{Suspended}, On: governor.Timeout(SuspensionTimer), To: Cancelled,
				Cascade: []governor.Cascade{messages.EntitlementCancelled.To("")},
			},
			{
				From: []governor.State{Active}, On: Pause, To: Paused,
			},
			{
				From: []governor.State{Paused}, On: Resume, To: Active,
				Apply: resumePeriod,
				Note:  resumeNote,
			},
			{
				From: []governor.State{Active}, On: planChanged, To: Active,
				Apply: changePlan,
				Note:  "plan := the event's plan; the period's billing.closed names the plan current at its end",
			},
			{
				Any: true, On: cancel, To: Cancelled,
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			created:           fromBoth,
			Activated:         governor.FromProvider,
			Renewed:           governor.FromProvider,
			CancelAtPeriodEnd: governor.FromProvider,
			failed:            fromBoth,
			succeeded:         fromBoth,
			Pause:             governor.FromProvider,
			Resume:            governor.FromProvider,
			planChanged:       fromBoth,
			cancel:            fromBoth,
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			created:     messages.SubscriptionCreated.Schema(),
			planChanged: messages.SubscriptionPlanChanged.Schema(),
		},
		Reasons: []governor.Reason{
			{Code: ReasonBilledByMarketplace, Doc: "payment_failed of a subscription Google Cloud Marketplace bills (billed_by: " +
				messages.BilledByMarketplace + "): Google runs its collection, so no dunning of ours applies"},
		},
	}
}

// create starts a subscription, trialing or active.
func create(c *governor.Ctx) error {
	var p messages.SubscriptionStart
	if err := c.Payload(&p); err != nil {
		return err
	}
	d := record{Plan: p.Plan, BilledBy: p.BilledBy}
	trial := c.Duration(TrialEndTimer)
	if p.TrialDays != nil {
		trial = time.Duration(*p.TrialDays) * 24 * time.Hour
	}
	if trial <= 0 {
		newPeriod(c, &d)
		return c.Store(d)
	}
	c.Goto(Trialing)
	c.Arm(TrialEndTimer, trial)
	d.TrialEnd = c.Now().Add(trial).UTC()
	return c.Store(d)
}

// newPeriod starts a billing period at the decision time.
func newPeriod(c *governor.Ctx, d *record) {
	now := c.Now().UTC()
	d.PeriodStart = now
	d.PeriodEnd = now.Add(c.Duration(PeriodEndTimer))
	c.Arm(PeriodEndTimer, 0)
}

// startPeriod ends a trial with a new billing period.
func startPeriod(c *governor.Ctx) error {
	return governor.Update(c, func(d *record) error {
		newPeriod(c, d)
		return nil
	})
}

// renew closes the current period with billing, then either starts the
// next one or cancels the subscription as requested.
func renew(c *governor.Ctx) error {
	d, err := governor.Data[record](c)
	if err != nil {
		return err
	}
	start := d.PeriodStart
	if start.IsZero() {
		start = c.Now()
	}
	if d.BilledBy != messages.BilledByMarketplace {
		if err := messages.BillingClosed.Emit(c, start.UTC().Format(periodLayout), messages.PeriodClose{Plan: d.Plan}); err != nil {
			return err
		}
	}
	if d.CancelAtPeriodEnd {
		c.Goto(Cancelled)
		d.PeriodEnd = c.Now().UTC()
		return c.Store(d)
	}
	newPeriod(c, &d)
	return c.Store(d)
}

// billedHere refuses a payment failure of a subscription the Marketplace
// bills: a failed payment of the tenant's own invoices does not concern
// it, and Google runs its collection.
func billedHere(c *governor.Ctx) error {
	d, err := governor.Data[record](c)
	if err != nil {
		return err
	}
	if d.BilledBy == messages.BilledByMarketplace {
		return governor.Reject(ReasonBilledByMarketplace, "Google Cloud Marketplace bills this subscription; no dunning applies")
	}
	return nil
}

// setCancelAtPeriodEnd marks the subscription to end with its period.
func setCancelAtPeriodEnd(c *governor.Ctx) error {
	return governor.Update(c, func(d *record) error {
		d.CancelAtPeriodEnd = true
		return nil
	})
}

// resumePeriod re-arms period_end for the end of the current period on
// the return to active; a period that has already ended fires after
// OverdueDelay.
func resumePeriod(c *governor.Ctx) error {
	d, err := governor.Data[record](c)
	if err != nil {
		return err
	}
	if d.PeriodEnd.IsZero() {
		newPeriod(c, &d)
		return c.Store(d)
	}
	c.Arm(PeriodEndTimer, max(d.PeriodEnd.Sub(c.Now()), OverdueDelay))
	return nil
}

// changePlan switches the subscription to the event's plan.
func changePlan(c *governor.Ctx) error {
	var p messages.PlanRef
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *record) error {
		d.Plan = p.Plan
		return nil
	})
}
