// Package entitlement is the entitlement governor, which mirrors the
// Google Cloud Marketplace Procurement lifecycle: one instance per
// entitlement of a tenant, whose subject is the entitlement id, from the
// creation request to deletion. Entitlements the provider creates
// directly follow the same lifecycle without the Marketplace.
//
// The instance keeps Data: the current plan, the trial asked for at
// creation, the plan a pending change moves to, what the Marketplace
// told of the offer, whether it is a Marketplace entitlement (an event
// whose source starts with MarketplaceSourcePrefix created or activated
// it) and why it is suspended.
//
// Reads: creation_requested reads the tenant's customer_account (its
// state decides whether the approval is asked at once); activated,
// plan_change_requested and plan_changed read the catalog entry of the
// plan from the provider's catalog.
//
// Subject conventions of its cascades: subscription events keep the
// entitlement id, the subscription's subject; quota_sla.limit_set goes to
// the quota metric it sets, one event per limit of the plan in metric
// name order; multi_tenant has one instance per tenant, subject
// "default". customer_account broadcasts account_activated, suspend,
// reinstate and cancelled (subject "*") to every entitlement of the
// tenant. The Marketplace actions (ApproveEntitlement, RejectEntitlement,
// ApprovePlanChange, RejectPlanChange) carry the entitlement id as their
// subject.
package entitlement

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/account"
	"github.com/autonomics/autonomics/shared/machines/catalog"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

// Domain is the governor's domain.
const Domain = governor.Entitlement

// States of the entitlement machine.
const (
	ActivationRequested       governor.State = "activation_requested"
	Active                    governor.State = "active"
	PendingPlanChangeApproval governor.State = "pending_plan_change_approval"
	PendingPlanChange         governor.State = "pending_plan_change"
	PendingCancellation       governor.State = "pending_cancellation"
	Suspended                 governor.State = "suspended"
	Cancelled                 governor.State = "cancelled"
	Deleted                   governor.State = "deleted"
)

// Events of the entitlement machine that come from outside the
// governors: from the provider, the Marketplace adapter or the
// actuators. messages.EntitlementAccountActivated,
// messages.EntitlementSuspend, messages.EntitlementReinstate and
// messages.EntitlementCancelled are its events other governors send.
const (
	CreationRequested        governor.EventName = "creation_requested"
	Activated                governor.EventName = "activated"
	Rejected                 governor.EventName = "rejected"
	PlanChangeRequested      governor.EventName = "plan_change_requested"
	PlanChangeApproved       governor.EventName = "plan_change_approved"
	PlanChangeCancelled      governor.EventName = "plan_change_cancelled"
	PlanChanged              governor.EventName = "plan_changed"
	PendingCancellationEvent governor.EventName = "pending_cancellation"
	CancellationReverted     governor.EventName = "cancellation_reverted"
	OfferEnded               governor.EventName = "offer_ended"
	UsageBlocked             governor.EventName = "usage_blocked"
	UsageRestored            governor.EventName = "usage_restored"
	DeleteEvent              governor.EventName = "deleted"
)

// Timers of the machine, with their default durations.
const (
	ApprovalTimer = "approval"

	DefaultApproval = 48 * time.Hour
)

// Reason codes the machine rejects with.
const (
	ReasonPlanRequired     governor.ReasonCode = "plan_required"
	ReasonPlanNotPublished governor.ReasonCode = "plan_not_published"
	ReasonNotUsageBlocked  governor.ReasonCode = "not_usage_blocked"
)

// Actions the machine publishes for actuators: the Marketplace's
// approval and rejection of an entitlement and of a plan change.
var (
	ApproveEntitlement = governor.DefineAction("marketplace.approve_entitlement", governor.None{})
	RejectEntitlement  = governor.DefineAction("marketplace.reject_entitlement", messages.Rejection{Reason: messages.DefaultRejection})
	ApprovePlanChange  = governor.DefineAction("marketplace.approve_plan_change", messages.PlanRef{Plan: "gold"})
	RejectPlanChange   = governor.DefineAction("marketplace.reject_plan_change",
		PlanRejection{Plan: "gold", Reason: string(ReasonPlanNotPublished) + `: plan "gold" is deprecated`})
)

// MarketplaceSourcePrefix starts the source of the events of the Google
// Cloud Marketplace adapter (the engine's MarketplaceSourcePrefix).
const MarketplaceSourcePrefix = "marketplace/"

// MaxIDLen bounds product, offer and usage_reporting_id.
const MaxIDLen = 256

// maxTimeLen bounds the RFC 3339 times of an event's data.
const maxTimeLen = 64

// BlockedUsage is Data.Blocked while a usage block is in force.
const BlockedUsage = "usage"

// Data is what an entitlement instance keeps: its current plan, the
// trial requested at creation, the plan a pending change moves to, what
// the Marketplace told of the offer, whether it is a Marketplace
// entitlement, and why it is suspended.
type Data struct {
	Plan             string    `json:"plan"`
	TrialDays        int       `json:"trial_days,omitempty"`
	PendingPlan      string    `json:"pending_plan,omitempty"`
	Product          string    `json:"product,omitempty"`
	Offer            string    `json:"offer,omitempty"`
	OfferEndTime     time.Time `json:"offer_end_time,omitzero"`
	UsageReportingID string    `json:"usage_reporting_id,omitempty"`
	// Marketplace is set once an event from the Marketplace adapter
	// created or activated the entitlement; it is never cleared.
	Marketplace bool `json:"marketplace,omitempty"`
	OfferEnded  bool `json:"offer_ended,omitempty"`
	// Blocked is BlockedUsage while a usage block is in force, with its
	// reason.
	Blocked       string `json:"blocked,omitempty"`
	BlockedReason string `json:"blocked_reason,omitempty"`
	// GovernorSuspended is set, during a usage block only, while the
	// governors' own suspension (non-payment, account) is in force too.
	GovernorSuspended bool `json:"governor_suspended,omitempty"`
}

// OfferDetails is what the Marketplace adapter learned of an entitlement
// besides its plan: the product, the offer and when it ends, and the
// consumer id usage is reported for. Every field is optional.
type OfferDetails struct {
	Product          string `json:"product"`
	Offer            string `json:"offer"`
	OfferEndTime     string `json:"offer_end_time"`
	UsageReportingID string `json:"usage_reporting_id"`
}

// Validate checks the ids and the time.
func (o OfferDetails) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"product", o.Product}, {"offer", o.Offer}, {"usage_reporting_id", o.UsageReportingID},
	} {
		if err := checkID(f.name, f.v); err != nil {
			return err
		}
	}
	if o.OfferEndTime != "" {
		if _, err := parseTime("offer_end_time", o.OfferEndTime); err != nil {
			return err
		}
	}
	return nil
}

// apply copies the fields o gives into d.
func (o OfferDetails) apply(d *Data) {
	if o.Product != "" {
		d.Product = o.Product
	}
	if o.Offer != "" {
		d.Offer = o.Offer
	}
	if o.OfferEndTime != "" {
		d.OfferEndTime, _ = parseTime("offer_end_time", o.OfferEndTime)
	}
	if o.UsageReportingID != "" {
		d.UsageReportingID = o.UsageReportingID
	}
}

// Creation is the data of entitlement.creation_requested. TrialDays is
// an optional free trial that is passed on to the subscription.
type Creation struct {
	Plan      string `json:"plan"`
	TrialDays *int   `json:"trial_days"`
	OfferDetails
}

// Validate checks the plan id, the trial length and the offer fields.
func (p Creation) Validate() error {
	if err := messages.CheckPlan(p.Plan); err != nil {
		return err
	}
	if err := messages.CheckTrial(p.TrialDays); err != nil {
		return err
	}
	return p.OfferDetails.Validate()
}

// Activation is the data of entitlement.activated: the fields of
// creation_requested, every one optional. The plan is required, in the
// event or in the instance, only for an entitlement that was never
// requested.
type Activation struct {
	Plan      string `json:"plan"`
	TrialDays *int   `json:"trial_days"`
	OfferDetails
}

// Validate checks the fields that are given.
func (p Activation) Validate() error {
	if p.Plan != "" {
		if err := messages.CheckPlan(p.Plan); err != nil {
			return err
		}
	}
	if err := messages.CheckTrial(p.TrialDays); err != nil {
		return err
	}
	return p.OfferDetails.Validate()
}

// PlanRejection is the data of the RejectPlanChange action: the plan the
// Marketplace asked for and why the catalog refuses it.
type PlanRejection struct {
	Plan   string `json:"plan"`
	Reason string `json:"reason"`
}

// Validate checks the plan id and requires a reason.
func (p PlanRejection) Validate() error {
	if err := messages.CheckPlan(p.Plan); err != nil {
		return err
	}
	if p.Reason == "" {
		return errors.New("reason is required")
	}
	return messages.CheckReason(p.Reason)
}

// OfferEnd is the data of entitlement.offer_ended: optionally when the
// offer ended.
type OfferEnd struct {
	OfferEndTime string `json:"offer_end_time"`
}

// Validate checks the optional time.
func (p OfferEnd) Validate() error {
	if p.OfferEndTime == "" {
		return nil
	}
	_, err := parseTime("offer_end_time", p.OfferEndTime)
	return err
}

// UsageBlock is the data of entitlement.usage_blocked: why Service
// Control refused the usage check.
type UsageBlock struct {
	Reason string `json:"reason"`
}

// Validate requires a reason.
func (p UsageBlock) Validate() error {
	if p.Reason == "" {
		return errors.New("reason is required")
	}
	return messages.CheckReason(p.Reason)
}

// checkID reports an error unless s is empty or 1 to MaxIDLen visible
// ASCII characters (no spaces or controls).
func checkID(what, s string) error {
	if len(s) > MaxIDLen {
		return fmt.Errorf("%s is longer than %d characters", what, MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return fmt.Errorf("%s must be printable ASCII without spaces", what)
		}
	}
	return nil
}

// parseTime parses an RFC 3339 time of an event's data.
func parseTime(what, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || len(s) > maxTimeLen {
		return time.Time{}, fmt.Errorf("%s must be an RFC 3339 time such as 2027-01-31T00:00:00Z", what)
	}
	return t.UTC(), nil
}

// fromMarketplace reports whether the event being decided comes from the
// Marketplace adapter.
func fromMarketplace(c *governor.Ctx) bool {
	return strings.HasPrefix(c.Event().Source, MarketplaceSourcePrefix)
}

// Machine returns the entitlement machine with its default timer.
func Machine() *governor.Machine {
	accountActivated := messages.EntitlementAccountActivated.Name
	suspend, reinstate := messages.EntitlementSuspend.Name, messages.EntitlementReinstate.Name
	cancelled := messages.EntitlementCancelled.Name
	limits := messages.QuotaLimitSet.May("the metric, one per limit of the plan, in name order")
	rows := []governor.Transition{
		{
			From: []governor.State{governor.StateNone}, On: CreationRequested, To: ActivationRequested,
			Arm:   []string{ApprovalTimer},
			Needs: accountNeeds,
			Emits: []governor.Ref{ApproveEntitlement.May()},
			Apply: create,
			Note: "keeps plan, trial_days, product, offer, offer_end_time and usage_reporting_id, and marketplace: true " +
				"when the event comes from the Marketplace (source " + MarketplaceSourcePrefix + "…); the approval is actuated only if " +
				"the customer_account is active, otherwise it waits for " + string(accountActivated),
		},
		{
			From: []governor.State{ActivationRequested}, On: accountActivated, To: ActivationRequested,
			Actuate: []string{ApproveEntitlement.Kind},
		},
		{
			From: []governor.State{governor.StateNone, ActivationRequested}, On: Activated, To: Active,
			Cancel:  []string{ApprovalTimer},
			Cascade: []governor.Cascade{messages.TenantProvisionRequested.To(governor.DefaultSubject)},
			Needs:   activationNeeds,
			Emits:   []governor.Ref{messages.SubscriptionCreated.May(""), limits},
			Apply:   activate,
			Note: "the fields the event gives overwrite the instance's (marketplace: true from the Marketplace); " +
				"from — (an auto-approved offer, or activation seen before the request) the plan is required and no approval is asked; " +
				"subscription.created {plan, trial_days, billed_by: \"" + messages.BilledByMarketplace + "\" for a Marketplace entitlement}; " +
				"quota_sla.limit_set {limit} per limit of the plan (none if the plan is not in the catalog)",
		},
		{
			From: []governor.State{ActivationRequested}, On: Rejected, To: Cancelled,
			Cancel: []string{ApprovalTimer},
			Emits:  []governor.Ref{RejectEntitlement.May()},
			Apply:  reject,
			Note:   "reason: the event's, or \"" + messages.DefaultRejection + "\"",
		},
		{
			From: []governor.State{ActivationRequested}, On: governor.Timeout(ApprovalTimer), To: Cancelled,
			Emits: []governor.Ref{RejectEntitlement.May()},
			Apply: rejectLate,
			Note:  "reason: \"approval timed out after " + governor.HumanDuration(DefaultApproval) + "\" (the timer's configured duration)",
		},
		{
			From: []governor.State{Active}, On: PlanChangeRequested, To: PendingPlanChangeApproval,
			Alt:   []governor.State{Active},
			Needs: planNeeds,
			Emits: []governor.Ref{ApprovePlanChange.May(), RejectPlanChange.May()},
			Apply: requestPlanChange,
			Note: "a plan published in the catalog: keeps pending_plan; actuate " + ApprovePlanChange.Kind + " {plan}. " +
				"Any other plan: rejected (" + string(ReasonPlanNotPublished) + "), but a Marketplace entitlement stays active and " +
				"actuates " + RejectPlanChange.Kind + " {plan, reason} with the catalog's refusal as reason",
		},
		{
			From: []governor.State{PendingPlanChangeApproval}, On: PlanChangeApproved, To: PendingPlanChange,
		},
		{
			From: []governor.State{PendingPlanChangeApproval, PendingPlanChange}, On: PlanChangeCancelled, To: Active,
			Apply: dropPendingPlan,
			Note:  "clears pending_plan",
		},
		{
			From: []governor.State{Active, PendingPlanChangeApproval, PendingPlanChange}, On: PlanChanged, To: Active,
			Needs: planNeeds,
			Emits: []governor.Ref{messages.SubscriptionPlanChanged.May(""), limits},
			Apply: changePlan,
			Note: "the Marketplace's word wins, even before our approval was acknowledged: plan := the event's plan, " +
				"pending_plan cleared; subscription.plan_changed {plan}; quota_sla.limit_set {limit} per limit of the new plan " +
				"(none if it is not in the catalog; metrics the new plan drops keep their limit)",
		},
		{
			From: []governor.State{Active, PendingPlanChangeApproval, PendingPlanChange}, On: PendingCancellationEvent, To: PendingCancellation,
			Apply: supersedePlanChange,
			Note:  "a cancellation supersedes a pending plan change: clears pending_plan",
		},
		{
			From: []governor.State{PendingCancellation}, On: CancellationReverted, To: Active,
		},
	}
	for _, st := range []governor.State{Active, PendingPlanChangeApproval, PendingPlanChange, PendingCancellation} {
		rows = append(rows, governor.Transition{
			From: []governor.State{st}, On: OfferEnded, To: st,
			Apply: endOffer,
			Note:  "keeps offer_ended: true and offer_end_time (the event's, else the decision time unless one is known)",
		})
	}
	rows = append(rows, []governor.Transition{
		{
			From: []governor.State{Active}, On: suspend, To: Suspended,
		},
		{
			From: []governor.State{Suspended}, On: suspend, To: Suspended,
			Apply: suspendDuringBlock,
			Note: "only during a usage block (blocked: " + BlockedUsage + "): records governor_suspended: true; " +
				"otherwise rejected (" + string(governor.ReasonNoTransition) + "), the entitlement being suspended already",
		},
		{
			From: []governor.State{Suspended}, On: reinstate, To: Active, Alt: []governor.State{Suspended},
			Apply: reinstateSuspended,
			Note:  "during a usage block stays suspended (the block holds until " + string(UsageRestored) + ") and clears governor_suspended",
		},
		{
			From: []governor.State{Active}, On: UsageBlocked, To: Suspended,
			Apply: blockUsage,
			Note:  "Service Control refused the usage check: keeps blocked: " + BlockedUsage + " and blocked_reason",
		},
		{
			From: []governor.State{Suspended}, On: UsageBlocked, To: Suspended,
			Apply: blockUsage,
			Note: "keeps blocked: " + BlockedUsage + " and blocked_reason (a repeated check refreshes the reason); " +
				"an entitlement the governors suspended (non-payment, account) records governor_suspended: true as well, " +
				"so that it returns to active only once both " + string(UsageRestored) + " and " + string(reinstate) + " came",
		},
		{
			From: []governor.State{Suspended}, On: UsageRestored, To: Active, Alt: []governor.State{Suspended},
			Apply: restoreUsage,
			Note: "rejected (" + string(ReasonNotUsageBlocked) + ") unless blocked is " + BlockedUsage + "; clears the block; " +
				"stays suspended while governor_suspended, until " + string(reinstate),
		},
		{
			Any: true, On: cancelled, To: Cancelled,
			Cascade: []governor.Cascade{
				messages.SubscriptionCancel.To(""),
				messages.TenantDeprovision.To(governor.DefaultSubject),
			},
		},
		{
			From: []governor.State{Cancelled}, On: DeleteEvent, To: Deleted,
		},
	}...)
	return &governor.Machine{
		Domain: Domain,
		States: []governor.State{
			ActivationRequested, Active, PendingPlanChangeApproval, PendingPlanChange,
			PendingCancellation, Suspended, Cancelled, Deleted,
		},
		Terminal: []governor.State{Cancelled, Deleted},
		Timers: map[string]time.Duration{
			ApprovalTimer: DefaultApproval,
		},
		Transitions: rows,
		Senders: map[governor.EventName][]governor.Sender{
			CreationRequested:        governor.FromOutside,
			accountActivated:         governor.FromGovernors,
			Activated:                governor.FromOutside,
			Rejected:                 governor.FromOutside,
			PlanChangeRequested:      governor.FromOutside,
			PlanChangeApproved:       governor.FromOutside,
			PlanChangeCancelled:      governor.FromOutside,
			PlanChanged:              governor.FromOutside,
			PendingCancellationEvent: governor.FromOutside,
			CancellationReverted:     governor.FromOutside,
			OfferEnded:               governor.FromOutside,
			suspend:                  governor.FromGovernors,
			reinstate:                governor.FromGovernors,
			UsageBlocked:             governor.FromActuators,
			UsageRestored:            governor.FromActuators,
			cancelled:                {governor.SenderExternal, governor.SenderMarketplace, governor.SenderGovernor},
			DeleteEvent:              governor.FromOutside,
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			CreationRequested:   governor.Schema[Creation](),
			Activated:           governor.Schema[Activation](),
			Rejected:            governor.Schema[messages.Rejection](),
			PlanChangeRequested: governor.Schema[messages.PlanRef](),
			PlanChanged:         governor.Schema[messages.PlanRef](),
			OfferEnded:          governor.Schema[OfferEnd](),
			UsageBlocked:        governor.Schema[UsageBlock](),
		},
		Reasons: []governor.Reason{
			{Code: ReasonPlanRequired, Doc: "activated names no plan and the entitlement holds none: it was activated without a creation request"},
			{Code: ReasonPlanNotPublished, Doc: "plan_change_requested names a plan the provider's catalog lacks or has not published, on an entitlement that is not the Marketplace's"},
			{Code: ReasonNotUsageBlocked, Doc: "usage_restored on an entitlement the governors suspended, not a usage block"},
		},
	}
}

// accountNeeds names the tenant's customer_account, whose state decides
// whether the approval is asked at once.
func accountNeeds(s governor.Scope) []governor.Key {
	return []governor.Key{account.Key(s.Instance.Tenant)}
}

// planNeeds names the catalog entry of the plan the event names.
func planNeeds(s governor.Scope) []governor.Key {
	var p messages.PlanRef
	if json.Unmarshal(s.Event.Data, &p) != nil {
		return nil
	}
	return catalog.Needs(s.Provider, p.Plan)
}

// activationNeeds names the catalog entry of the plan the event names,
// else of the plan the instance holds.
func activationNeeds(s governor.Scope) []governor.Key {
	var p Activation
	if json.Unmarshal(s.Event.Data, &p) == nil && p.Plan != "" {
		return catalog.Needs(s.Provider, p.Plan)
	}
	var d Data
	if json.Unmarshal(s.Instance.Data, &d) == nil && d.Plan != "" {
		return catalog.Needs(s.Provider, d.Plan)
	}
	return nil
}

// create keeps the plan, trial and offer of a new entitlement and asks
// the Marketplace to approve it when the account is already active.
func create(c *governor.Ctx) error {
	var p Creation
	if err := c.Payload(&p); err != nil {
		return err
	}
	d := Data{Plan: p.Plan, Marketplace: fromMarketplace(c)}
	if p.TrialDays != nil {
		d.TrialDays = *p.TrialDays
	}
	p.apply(&d)
	if err := c.Store(d); err != nil {
		return err
	}
	acct, err := c.Read(account.Key(c.Instance().Tenant))
	if err != nil {
		return err
	}
	if acct.State == account.Active {
		return ApproveEntitlement.Emit(c, governor.None{})
	}
	return nil
}

// activate takes what the event tells of the entitlement, creates the
// subscription and sets the quota limits of the entitlement's plan. An
// entitlement activated without having been requested must name its plan.
func activate(c *governor.Ctx) error {
	var p Activation
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[Data](c)
	if err != nil {
		return err
	}
	if p.Plan != "" {
		d.Plan = p.Plan
	}
	if p.TrialDays != nil {
		d.TrialDays = *p.TrialDays
	}
	p.apply(&d)
	d.Marketplace = d.Marketplace || fromMarketplace(c)
	if d.Plan == "" {
		return governor.Reject(ReasonPlanRequired, "an entitlement activated without a creation request must name its plan")
	}
	if err := c.Store(d); err != nil {
		return err
	}
	trial := d.TrialDays
	sub := messages.SubscriptionStart{Plan: d.Plan, TrialDays: &trial}
	if d.Marketplace {
		sub.BilledBy = messages.BilledByMarketplace
	}
	if err := messages.SubscriptionCreated.Emit(c, "", sub); err != nil {
		return err
	}
	return emitLimits(c, d.Plan)
}

// reject asks the Marketplace to reject the entitlement, with the event's
// reason.
func reject(c *governor.Ctx) error {
	var p messages.Rejection
	if err := c.Payload(&p); err != nil {
		return err
	}
	if p.Reason == "" {
		p.Reason = messages.DefaultRejection
	}
	return RejectEntitlement.Emit(c, p)
}

// rejectLate asks the Marketplace to reject an entitlement whose approval
// did not come in time.
func rejectLate(c *governor.Ctx) error {
	reason := "approval timed out after " + governor.HumanDuration(c.Duration(ApprovalTimer))
	return RejectEntitlement.Emit(c, messages.Rejection{Reason: reason})
}

// emitLimits emits one quota_sla.limit_set per limit of plan, in metric
// name order. A plan missing from the catalog emits nothing; limits that
// are not positive or whose metric is not a valid subject are skipped,
// since quota_sla would refuse them.
func emitLimits(c *governor.Ctx, plan string) error {
	p, ok, err := catalog.Lookup(c, plan)
	if err != nil || !ok {
		return err
	}
	metrics := make([]string, 0, len(p.Limits))
	for m := range p.Limits {
		metrics = append(metrics, m)
	}
	sort.Strings(metrics)
	for _, m := range metrics {
		limit := p.Limits[m]
		if limit <= 0 || messages.CheckKey("metric", m) != nil {
			continue
		}
		if err := messages.QuotaLimitSet.Emit(c, m, messages.Limit{Limit: limit}); err != nil {
			return err
		}
	}
	return nil
}

// planRefusal returns why the catalog refuses a change to plan, or nil
// when the plan is published.
func planRefusal(c *governor.Ctx, plan string) (*governor.Rejection, error) {
	p, ok, err := catalog.Lookup(c, plan)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return &governor.Rejection{Code: ReasonPlanNotPublished, Detail: fmt.Sprintf("plan %q is not in the catalog", plan)}, nil
	case p.State != catalog.Published:
		return &governor.Rejection{Code: ReasonPlanNotPublished, Detail: fmt.Sprintf("plan %q is %s", plan, p.State)}, nil
	}
	return nil, nil
}

// requestPlanChange keeps a requested plan the catalog publishes and asks
// the Marketplace to approve the change. A plan the catalog refuses is
// rejected; for a Marketplace entitlement, which the Marketplace is
// waiting to hear about, the refusal is accepted and passed on as
// RejectPlanChange.
func requestPlanChange(c *governor.Ctx) error {
	var p messages.PlanRef
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[Data](c)
	if err != nil {
		return err
	}
	refusal, err := planRefusal(c, p.Plan)
	if err != nil {
		return err
	}
	if refusal != nil {
		if !d.Marketplace {
			return refusal
		}
		c.Goto(Active)
		return RejectPlanChange.Emit(c, PlanRejection{Plan: p.Plan, Reason: refusal.Reason()})
	}
	d.PendingPlan = p.Plan
	if err := c.Store(d); err != nil {
		return err
	}
	return ApprovePlanChange.Emit(c, messages.PlanRef{Plan: p.Plan})
}

// dropPendingPlan forgets a cancelled plan change.
func dropPendingPlan(c *governor.Ctx) error {
	d, err := governor.Data[Data](c)
	if err != nil {
		return err
	}
	d.PendingPlan = ""
	return c.Store(d)
}

// supersedePlanChange forgets the pending plan change, if any, of an
// entitlement whose cancellation is pending.
func supersedePlanChange(c *governor.Ctx) error {
	d, err := governor.Data[Data](c)
	if err != nil || d.PendingPlan == "" {
		return err
	}
	d.PendingPlan = ""
	return c.Store(d)
}

// changePlan switches the entitlement to the event's plan, which is the
// Marketplace's word and wins over the pending plan, and passes the
// change on to the subscription and the quotas.
func changePlan(c *governor.Ctx) error {
	var p messages.PlanRef
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[Data](c)
	if err != nil {
		return err
	}
	d.Plan, d.PendingPlan = p.Plan, ""
	if err := c.Store(d); err != nil {
		return err
	}
	if err := messages.SubscriptionPlanChanged.Emit(c, "", messages.PlanRef{Plan: p.Plan}); err != nil {
		return err
	}
	return emitLimits(c, p.Plan)
}

// endOffer records that the entitlement's offer ended.
func endOffer(c *governor.Ctx) error {
	var p OfferEnd
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *Data) error {
		d.OfferEnded = true
		switch {
		case p.OfferEndTime != "":
			d.OfferEndTime, _ = parseTime("offer_end_time", p.OfferEndTime)
		case d.OfferEndTime.IsZero():
			d.OfferEndTime = c.Now().UTC()
		}
		return nil
	})
}

// blockUsage records a usage block; on an entitlement the governors had
// suspended it records that their suspension holds too.
func blockUsage(c *governor.Ctx) error {
	var p UsageBlock
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *Data) error {
		if c.Instance().State == Suspended && d.Blocked != BlockedUsage {
			d.GovernorSuspended = true
		}
		d.Blocked, d.BlockedReason = BlockedUsage, p.Reason
		return nil
	})
}

// suspendDuringBlock records the governors' suspension of an entitlement
// suspended by a usage block, and refuses it otherwise, as the
// entitlement is suspended already.
func suspendDuringBlock(c *governor.Ctx) error {
	d, err := governor.Data[Data](c)
	if err != nil {
		return err
	}
	if d.Blocked != BlockedUsage {
		return (&governor.NoTransitionError{Domain: Domain, State: Suspended, Event: messages.EntitlementSuspend.Name}).Rejection()
	}
	d.GovernorSuspended = true
	return c.Store(d)
}

// reinstateSuspended lifts the governors' suspension: the entitlement
// returns to active unless a usage block holds it.
func reinstateSuspended(c *governor.Ctx) error {
	d, err := governor.Data[Data](c)
	if err != nil || d.Blocked != BlockedUsage {
		return err
	}
	c.Goto(Suspended)
	d.GovernorSuspended = false
	return c.Store(d)
}

// restoreUsage lifts a usage block: the entitlement returns to active
// unless the governors' suspension holds it.
func restoreUsage(c *governor.Ctx) error {
	d, err := governor.Data[Data](c)
	if err != nil {
		return err
	}
	if d.Blocked != BlockedUsage {
		return governor.Reject(ReasonNotUsageBlocked, "the entitlement is suspended by the governors, not by a usage block")
	}
	if d.GovernorSuspended {
		c.Goto(Suspended)
	}
	d.Blocked, d.BlockedReason, d.GovernorSuspended = "", "", false
	return c.Store(d)
}
