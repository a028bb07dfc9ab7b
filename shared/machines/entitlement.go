package machines

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// entMarketplaceSourcePrefix starts the source of the events of the
// Google Cloud Marketplace adapter (the engine's MarketplaceSourcePrefix).
const entMarketplaceSourcePrefix = "marketplace/"

// entBilledByMarketplace is the billed_by of the subscription of a
// Marketplace entitlement: Google bills it, not the billing governor.
const entBilledByMarketplace = "marketplace"

// Limits of the texts the entitlement and account events carry.
const (
	// entMaxIDLen bounds product, offer and usage_reporting_id.
	entMaxIDLen = 256
	// entMaxReasonLen bounds a rejection or usage block reason.
	entMaxReasonLen = 512
)

// defaultRejection is the reason the Marketplace is given when a
// rejection names none.
const defaultRejection = "rejected by the provider"

// entFromMarketplace reports whether the event being decided comes from
// the Marketplace adapter.
func entFromMarketplace(c *governor.Ctx) bool {
	return strings.HasPrefix(c.Event().Source, entMarketplaceSourcePrefix)
}

// entCheckID reports an error unless s is empty or 1 to entMaxIDLen
// visible ASCII characters (no spaces or controls).
func entCheckID(what, s string) error {
	if len(s) > entMaxIDLen {
		return fmt.Errorf("%s is longer than %d characters", what, entMaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return fmt.Errorf("%s must be printable ASCII without spaces", what)
		}
	}
	return nil
}

// entCheckReason reports an error unless s is at most entMaxReasonLen
// bytes of UTF-8 without control characters.
func entCheckReason(s string) error {
	if len(s) > entMaxReasonLen {
		return fmt.Errorf("reason is longer than %d bytes", entMaxReasonLen)
	}
	if !utf8.ValidString(s) {
		return errors.New("reason must be UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errors.New("reason must not contain control characters")
		}
	}
	return nil
}

// entParseTime parses an RFC 3339 time of an event's data.
func entParseTime(what, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || len(s) > 64 {
		return time.Time{}, fmt.Errorf("%s must be an RFC 3339 time such as 2027-01-31T00:00:00Z", what)
	}
	return t.UTC(), nil
}

// entOffer is what the Marketplace adapter learned of an entitlement
// besides its plan: the product, the offer and when it ends, and the
// consumer id usage is reported for. Every field is optional.
type entOffer struct {
	Product          string `json:"product"`
	Offer            string `json:"offer"`
	OfferEndTime     string `json:"offer_end_time"`
	UsageReportingID string `json:"usage_reporting_id"`
}

// validate checks the ids and the time.
func (o entOffer) validate() error {
	for _, f := range []struct{ name, v string }{
		{"product", o.Product}, {"offer", o.Offer}, {"usage_reporting_id", o.UsageReportingID},
	} {
		if err := entCheckID(f.name, f.v); err != nil {
			return err
		}
	}
	if o.OfferEndTime != "" {
		if _, err := entParseTime("offer_end_time", o.OfferEndTime); err != nil {
			return err
		}
	}
	return nil
}

// apply copies the fields o gives into d.
func (o entOffer) apply(d *entData) {
	if o.Product != "" {
		d.Product = o.Product
	}
	if o.Offer != "" {
		d.Offer = o.Offer
	}
	if o.OfferEndTime != "" {
		d.OfferEndTime, _ = entParseTime("offer_end_time", o.OfferEndTime)
	}
	if o.UsageReportingID != "" {
		d.UsageReportingID = o.UsageReportingID
	}
}

// entCheckTrial reports an error unless trial is absent or in range.
func entCheckTrial(trial *int) error {
	if trial != nil && (*trial < 0 || *trial > entMaxTrialDays) {
		return fmt.Errorf("trial_days %d out of range 0..%d", *trial, entMaxTrialDays)
	}
	return nil
}

// entCreation is the data of entitlement.creation_requested. TrialDays is
// an optional free trial that is passed on to the subscription.
type entCreation struct {
	Plan      string `json:"plan"`
	TrialDays *int   `json:"trial_days"`
	entOffer
}

// Validate checks the plan id, the trial length and the offer fields.
func (p entCreation) Validate() error {
	if err := entValidPlan(p.Plan); err != nil {
		return err
	}
	if err := entCheckTrial(p.TrialDays); err != nil {
		return err
	}
	return p.validate()
}

// entActivation is the data of entitlement.activated: the fields of
// creation_requested, every one optional. The plan is required, in the
// event or in the instance, only for an entitlement that was never
// requested.
type entActivation struct {
	Plan      string `json:"plan"`
	TrialDays *int   `json:"trial_days"`
	entOffer
}

// Validate checks the fields that are given.
func (p entActivation) Validate() error {
	if p.Plan != "" {
		if err := entValidPlan(p.Plan); err != nil {
			return err
		}
	}
	if err := entCheckTrial(p.TrialDays); err != nil {
		return err
	}
	return p.validate()
}

// entPlanRef is the data of plan_change_requested and plan_changed.
type entPlanRef struct {
	Plan string `json:"plan"`
}

// Validate checks the plan id.
func (p entPlanRef) Validate() error { return entValidPlan(p.Plan) }

// entRejection is the data of entitlement.rejected and
// customer_account.rejected: optionally why, which the Marketplace is told;
// it is also the data of the reject actions, whose reason is never empty.
type entRejection struct {
	Reason string `json:"reason"`
}

// Validate checks the length and characters of the reason.
func (p entRejection) Validate() error { return entCheckReason(p.Reason) }

// entPlanRejection is the data of marketplace.reject_plan_change.
type entPlanRejection struct {
	Plan   string `json:"plan"`
	Reason string `json:"reason"`
}

// entOfferEnd is the data of entitlement.offer_ended.
type entOfferEnd struct {
	OfferEndTime string `json:"offer_end_time"`
}

// Validate checks the optional time.
func (p entOfferEnd) Validate() error {
	if p.OfferEndTime == "" {
		return nil
	}
	_, err := entParseTime("offer_end_time", p.OfferEndTime)
	return err
}

// entUsageBlock is the data of entitlement.usage_blocked: why Service
// Control refused the usage check.
type entUsageBlock struct {
	Reason string `json:"reason"`
}

// Validate requires a reason.
func (p entUsageBlock) Validate() error {
	if p.Reason == "" {
		return errors.New("reason is required")
	}
	return entCheckReason(p.Reason)
}

// entBlockedUsage is the blocked value of an entitlement suspended by a
// usage block.
const entBlockedUsage = "usage"

// entData is what an entitlement instance keeps: its current plan, the
// trial requested at creation, the plan a pending change moves to, what
// the Marketplace told of the offer, whether it is a Marketplace
// entitlement, and why it is suspended.
type entData struct {
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
	// Blocked is entBlockedUsage while a usage block is in force, with
	// its reason.
	Blocked       string `json:"blocked,omitempty"`
	BlockedReason string `json:"blocked_reason,omitempty"`
	// GovernorSuspended is set, during a usage block only, while the
	// governors' own suspension (non-payment, account) is in force too.
	GovernorSuspended bool `json:"governor_suspended,omitempty"`
}

// entSubscriptionCreated is the data of the subscription.created cascade.
type entSubscriptionCreated struct {
	Plan      string `json:"plan"`
	TrialDays int    `json:"trial_days"`
	BilledBy  string `json:"billed_by,omitempty"`
}

// entLimit is the data of the quota_sla.limit_set cascade.
type entLimit struct {
	Limit int64 `json:"limit"`
}

// entitlementMachine returns the entitlement machine, which
// mirrors the Marketplace Procurement lifecycle. The subject is the
// entitlement id; the instance keeps entData.
func entitlementMachine() *governor.Machine {
	rows := []governor.Transition{
		{
			From: []governor.State{governor.StateNone}, On: "creation_requested", To: entActivationRequested,
			Arm:   []string{"approval"},
			Apply: entCreate,
			Note: "keeps plan, trial_days, product, offer, offer_end_time and usage_reporting_id, and marketplace: true " +
				"when the event comes from the Marketplace (source marketplace/…); if the customer_account is active: " +
				"actuate marketplace.approve_entitlement, otherwise approval waits for account_activated",
		},
		{
			From: []governor.State{entActivationRequested}, On: "account_activated", To: entActivationRequested,
			Actuate: []string{"marketplace.approve_entitlement"},
		},
		{
			From: []governor.State{governor.StateNone, entActivationRequested}, On: "activated", To: entActive,
			Cancel:  []string{"approval"},
			Cascade: []governor.Cascade{{Domain: governor.MultiTenant, Event: "provision_requested", Subject: governor.DefaultSubject}},
			Apply:   entActivate,
			Note: "the fields the event gives overwrite the instance's (marketplace: true from the Marketplace); " +
				"from — (an auto-approved offer, or activation seen before the request) the plan is required and no approval is asked; " +
				"→ subscription.created {plan, trial_days, billed_by: \"marketplace\" for a Marketplace entitlement}; " +
				"→ quota_sla.limit_set {limit} per limit of the plan " +
				"(subject = metric, in name order; none if the plan is not in the catalog)",
		},
		{
			From: []governor.State{entActivationRequested}, On: "rejected", To: entCancelled,
			Cancel: []string{"approval"},
			Apply:  entReject,
			Note:   "actuate marketplace.reject_entitlement {reason}: the event's reason, or \"" + defaultRejection + "\"",
		},
		{
			From: []governor.State{entActivationRequested}, On: governor.Timeout("approval"), To: entCancelled,
			Apply: entRejectLate,
			Note:  "actuate marketplace.reject_entitlement {reason: \"approval timed out after <the approval timer's duration>\"}",
		},
		{
			From: []governor.State{entActive}, On: "plan_change_requested", To: entPendingPlanChangeApproval,
			Alt:   []governor.State{entActive},
			Apply: entRequestPlanChange,
			Note: "a plan published in the catalog: keeps pending_plan; actuate marketplace.approve_plan_change {plan}. " +
				"Any other plan: rejected (plan_not_published), but a Marketplace entitlement stays active and " +
				"actuates marketplace.reject_plan_change {plan, reason} with the catalog's refusal as reason",
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
			From: []governor.State{entActive, entPendingPlanChangeApproval, entPendingPlanChange}, On: "plan_changed", To: entActive,
			Apply: entChangePlan,
			Note: "the Marketplace's word wins, even before our approval was acknowledged: plan := the event's plan, " +
				"pending_plan cleared; → subscription.plan_changed {plan}; → quota_sla.limit_set {limit} per limit of the new plan " +
				"(none if it is not in the catalog; metrics the new plan drops keep their limit)",
		},
		{
			From: []governor.State{entActive, entPendingPlanChangeApproval, entPendingPlanChange}, On: "pending_cancellation", To: entPendingCancellation,
			Apply: entSupersedePlanChange,
			Note:  "a cancellation supersedes a pending plan change: clears pending_plan",
		},
		{
			From: []governor.State{entPendingCancellation}, On: "cancellation_reverted", To: entActive,
		},
	}
	for _, st := range []governor.State{entActive, entPendingPlanChangeApproval, entPendingPlanChange, entPendingCancellation} {
		rows = append(rows, governor.Transition{
			From: []governor.State{st}, On: "offer_ended", To: st,
			Apply: entEndOffer,
			Note:  "keeps offer_ended: true and offer_end_time (the event's, else the decision time unless one is known)",
		})
	}
	rows = append(rows, []governor.Transition{
		{
			From: []governor.State{entActive}, On: "suspend", To: entSuspended,
		},
		{
			From: []governor.State{entSuspended}, On: "suspend", To: entSuspended,
			Apply: entSuspendDuringBlock,
			Note: "only during a usage block (blocked: usage): records governor_suspended: true; " +
				"otherwise rejected (no_transition), the entitlement being suspended already",
		},
		{
			From: []governor.State{entSuspended}, On: "reinstate", To: entActive, Alt: []governor.State{entSuspended},
			Apply: entReinstate,
			Note:  "during a usage block stays suspended (the block holds until usage_restored) and clears governor_suspended",
		},
		{
			From: []governor.State{entActive}, On: "usage_blocked", To: entSuspended,
			Apply: entBlockUsage,
			Note:  "Service Control refused the usage check: keeps blocked: usage and blocked_reason",
		},
		{
			From: []governor.State{entSuspended}, On: "usage_blocked", To: entSuspended,
			Apply: entBlockUsage,
			Note: "keeps blocked: usage and blocked_reason (a repeated check refreshes the reason); " +
				"an entitlement the governors suspended (non-payment, account) records governor_suspended: true as well, " +
				"so that it returns to active only once both usage_restored and reinstate came",
		},
		{
			From: []governor.State{entSuspended}, On: "usage_restored", To: entActive, Alt: []governor.State{entSuspended},
			Apply: entRestoreUsage,
			Note: "rejected (not_usage_blocked) unless blocked is usage; clears the block; " +
				"stays suspended while governor_suspended, until reinstate",
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
	}...)
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
		Transitions: rows,
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
			"offer_ended":           governor.FromOutside,
			"suspend":               governor.FromGovernors,
			"reinstate":             governor.FromGovernors,
			"usage_blocked":         governor.FromActuators,
			"usage_restored":        governor.FromActuators,
			"cancelled":             {governor.SenderExternal, governor.SenderMarketplace, governor.SenderGovernor},
			"deleted":               governor.FromOutside,
		},
		EmitsTo: []governor.Domain{governor.Subscription, governor.QuotaSLA},
		ActionKinds: []string{
			"marketplace.approve_entitlement", "marketplace.approve_plan_change",
			"marketplace.reject_entitlement", "marketplace.reject_plan_change",
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			"creation_requested":    governor.Schema[entCreation](),
			"activated":             governor.Schema[entActivation](),
			"rejected":              governor.Schema[entRejection](),
			"plan_change_requested": governor.Schema[entPlanRef](),
			"plan_changed":          governor.Schema[entPlanRef](),
			"offer_ended":           governor.Schema[entOfferEnd](),
			"usage_blocked":         governor.Schema[entUsageBlock](),
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
		var p entActivation
		if json.Unmarshal(ev.Data, &p) == nil && p.Plan != "" {
			return governor.Needs{Plans: []string{p.Plan}}
		}
		var d entData
		if json.Unmarshal(inst.Data, &d) == nil && d.Plan != "" {
			return governor.Needs{Plans: []string{d.Plan}}
		}
	}
	return governor.Needs{}
}

// entCreate keeps the plan, trial and offer of a new entitlement and asks
// the Marketplace to approve it when the account is already active.
func entCreate(c *governor.Ctx) error {
	var p entCreation
	if err := c.Payload(&p); err != nil {
		return err
	}
	d := entData{Plan: p.Plan, Marketplace: entFromMarketplace(c)}
	if p.TrialDays != nil {
		d.TrialDays = *p.TrialDays
	}
	p.apply(&d)
	if err := c.Store(d); err != nil {
		return err
	}
	if c.Facts().Account == acctActive {
		return c.Actuate("marketplace.approve_entitlement", nil)
	}
	return nil
}

// entActivate takes what the event tells of the entitlement, creates the
// subscription and sets the quota limits of the entitlement's plan. An
// entitlement activated without having been requested must name its plan.
func entActivate(c *governor.Ctx) error {
	var p entActivation
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[entData](c)
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
	d.Marketplace = d.Marketplace || entFromMarketplace(c)
	if d.Plan == "" {
		return governor.Reject("plan_required: an entitlement activated without a creation request must name its plan")
	}
	if err := c.Store(d); err != nil {
		return err
	}
	sub := entSubscriptionCreated{Plan: d.Plan, TrialDays: d.TrialDays}
	if d.Marketplace {
		sub.BilledBy = entBilledByMarketplace
	}
	if err := c.Emit(governor.Subscription, "created", "", sub); err != nil {
		return err
	}
	return entEmitLimits(c, d.Plan)
}

// entReject asks the Marketplace to reject the entitlement, with the
// event's reason.
func entReject(c *governor.Ctx) error {
	var p entRejection
	if err := c.Payload(&p); err != nil {
		return err
	}
	if p.Reason == "" {
		p.Reason = defaultRejection
	}
	return c.Actuate("marketplace.reject_entitlement", p)
}

// entRejectLate asks the Marketplace to reject an entitlement whose
// approval did not come in time.
func entRejectLate(c *governor.Ctx) error {
	reason := "approval timed out after " + governor.HumanDuration(c.Duration("approval"))
	return c.Actuate("marketplace.reject_entitlement", entRejection{Reason: reason})
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

// entPlanRefusal returns why the catalog refuses a change to plan, or ""
// when the plan is published.
func entPlanRefusal(c *governor.Ctx, plan string) string {
	p, ok := c.Facts().Plans[plan]
	if !ok {
		return fmt.Sprintf("plan_not_published: plan %q is not in the catalog", plan)
	}
	if p.State != entPublished {
		return fmt.Sprintf("plan_not_published: plan %q is %s", plan, p.State)
	}
	return ""
}

// entRequestPlanChange keeps a requested plan the catalog publishes and
// asks the Marketplace to approve the change. A plan the catalog refuses
// is rejected; for a Marketplace entitlement, which the Marketplace is
// waiting to hear about, the refusal is accepted and passed on as
// marketplace.reject_plan_change.
func entRequestPlanChange(c *governor.Ctx) error {
	var p entPlanRef
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[entData](c)
	if err != nil {
		return err
	}
	if refusal := entPlanRefusal(c, p.Plan); refusal != "" {
		if !d.Marketplace {
			return governor.Reject("%s", refusal)
		}
		c.Goto(entActive)
		return c.Actuate("marketplace.reject_plan_change", entPlanRejection{Plan: p.Plan, Reason: refusal})
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

// entSupersedePlanChange forgets the pending plan change, if any, of an
// entitlement whose cancellation is pending.
func entSupersedePlanChange(c *governor.Ctx) error {
	d, err := governor.Data[entData](c)
	if err != nil || d.PendingPlan == "" {
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

// entEndOffer records that the entitlement's offer ended.
func entEndOffer(c *governor.Ctx) error {
	var p entOfferEnd
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *entData) error {
		d.OfferEnded = true
		switch {
		case p.OfferEndTime != "":
			d.OfferEndTime, _ = entParseTime("offer_end_time", p.OfferEndTime)
		case d.OfferEndTime.IsZero():
			d.OfferEndTime = c.Now().UTC()
		}
		return nil
	})
}

// entBlockUsage records a usage block; on an entitlement the governors
// had suspended it records that their suspension holds too.
func entBlockUsage(c *governor.Ctx) error {
	var p entUsageBlock
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *entData) error {
		if c.Instance().State == entSuspended && d.Blocked != entBlockedUsage {
			d.GovernorSuspended = true
		}
		d.Blocked, d.BlockedReason = entBlockedUsage, p.Reason
		return nil
	})
}

// entSuspendDuringBlock records the governors' suspension of an
// entitlement suspended by a usage block, and refuses it otherwise, as
// the entitlement is suspended already.
func entSuspendDuringBlock(c *governor.Ctx) error {
	d, err := governor.Data[entData](c)
	if err != nil {
		return err
	}
	if d.Blocked != entBlockedUsage {
		return governor.Reject("%s", (&governor.NoTransitionError{Domain: governor.Entitlement, State: entSuspended, Event: "suspend"}).Error())
	}
	d.GovernorSuspended = true
	return c.Store(d)
}

// entReinstate lifts the governors' suspension: the entitlement returns to
// active unless a usage block holds it.
func entReinstate(c *governor.Ctx) error {
	d, err := governor.Data[entData](c)
	if err != nil || d.Blocked != entBlockedUsage {
		return err
	}
	c.Goto(entSuspended)
	d.GovernorSuspended = false
	return c.Store(d)
}

// entRestoreUsage lifts a usage block: the entitlement returns to active
// unless the governors' suspension holds it.
func entRestoreUsage(c *governor.Ctx) error {
	d, err := governor.Data[entData](c)
	if err != nil {
		return err
	}
	if d.Blocked != entBlockedUsage {
		return governor.Reject("not_usage_blocked: the entitlement is suspended by the governors, not by a usage block")
	}
	if d.GovernorSuspended {
		c.Goto(entSuspended)
	}
	d.Blocked, d.BlockedReason, d.GovernorSuspended = "", "", false
	return c.Store(d)
}
