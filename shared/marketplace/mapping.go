package marketplace

import (
	"encoding/json"
	"slices"

	"google.golang.org/api/cloudcommerceprocurement/v1"

	"github.com/autonomics/autonomics/shared/governor"
)

// Procurement entitlement states, as the Procurement API spells them.
const (
	EntitlementActivationRequested       = "ENTITLEMENT_ACTIVATION_REQUESTED"
	EntitlementActive                    = "ENTITLEMENT_ACTIVE"
	EntitlementPendingPlanChangeApproval = "ENTITLEMENT_PENDING_PLAN_CHANGE_APPROVAL"
	EntitlementPendingPlanChange         = "ENTITLEMENT_PENDING_PLAN_CHANGE"
	EntitlementPendingCancellation       = "ENTITLEMENT_PENDING_CANCELLATION"
	EntitlementCancelled                 = "ENTITLEMENT_CANCELLED"
	EntitlementSuspended                 = "ENTITLEMENT_SUSPENDED"
)

// Procurement account states.
const (
	AccountActivationRequested = "ACCOUNT_ACTIVATION_REQUESTED"
	AccountActive              = "ACCOUNT_ACTIVE"
)

// StateGone stands in a Rule for "the GET answered NOT_FOUND": the
// resource no longer exists at Procurement.
const StateGone = "NOT_FOUND"

// EntitlementStates lists the entitlement states in lifecycle order: the
// order of the rows of the generated table and of the reconciler's lists.
var EntitlementStates = []string{
	EntitlementActivationRequested, EntitlementActive, EntitlementPendingPlanChangeApproval,
	EntitlementPendingPlanChange, EntitlementPendingCancellation, EntitlementSuspended, EntitlementCancelled,
}

// Resource is what a notification is about.
type Resource string

// Resources of notifications.
const (
	ResourceEntitlement Resource = "entitlement"
	ResourceAccount     Resource = "account"
)

// Domain returns the governor domain of the resource's events.
func (r Resource) Domain() governor.Domain {
	if r == ResourceAccount {
		return governor.CustomerAccount
	}
	return governor.Entitlement
}

// Events of the entitlement and customer_account machines that the
// Marketplace side sends.
const (
	EvCreationRequested    governor.EventName = "creation_requested"
	EvActivated            governor.EventName = "activated"
	EvPlanChangeRequested  governor.EventName = "plan_change_requested"
	EvPlanChangeApproved   governor.EventName = "plan_change_approved"
	EvPlanChanged          governor.EventName = "plan_changed"
	EvPlanChangeCancelled  governor.EventName = "plan_change_cancelled"
	EvPendingCancellation  governor.EventName = "pending_cancellation"
	EvCancellationReverted governor.EventName = "cancellation_reverted"
	EvCancelled            governor.EventName = "cancelled"
	EvDeleted              governor.EventName = "deleted"
	EvOfferEnded           governor.EventName = "offer_ended"
	EvAccountClosed        governor.EventName = "closed"
)

// Rule says what one notification type becomes. The Procurement state the
// GET returns decides, not the notification type alone: Marketplace may
// deliver a notification twice, late or out of order, and the state it
// reads now is what the governor must reach. An event the governor has
// already gone past is rejected by its machine with a receipt and changes
// nothing.
type Rule struct {
	// Type is the notification's eventType.
	Type string
	// Resource is what the notification carries the id of.
	Resource Resource
	// Meaning is what Marketplace means by the notification.
	Meaning string
	// Ignored, when set, is why the type becomes no event whatever the
	// state; the resource is then not read.
	Ignored string
	// States maps the state the GET returns (StateGone for NOT_FOUND) to
	// the events published, in order.
	States map[string][]governor.EventName
	// Why says, per state, why it becomes no event.
	Why map[string]string
	// Otherwise is why any other state becomes no event.
	Otherwise string
}

// Events returns the events of state and, when there are none, why.
func (r Rule) Events(state string) ([]governor.EventName, string) {
	if r.Ignored != "" {
		return nil, r.Ignored
	}
	if evs, ok := r.States[state]; ok && len(evs) > 0 {
		return evs, ""
	}
	if why, ok := r.Why[state]; ok {
		return nil, why
	}
	if state == EntitlementSuspended && r.Resource == ResourceEntitlement {
		return nil, suspended
	}
	if state == StateGone {
		if r.Resource == ResourceAccount {
			return nil, "the account does not exist at Procurement"
		}
		return nil, "the entitlement does not exist at Procurement"
	}
	return nil, r.Otherwise
}

// byState is the default of entitlement rules: each Procurement state
// becomes the event that brings a governor there.
func byState(overrides map[string][]governor.EventName) map[string][]governor.EventName {
	m := map[string][]governor.EventName{
		EntitlementActivationRequested:       {EvCreationRequested},
		EntitlementActive:                    {EvActivated},
		EntitlementPendingPlanChangeApproval: {EvPlanChangeRequested},
		EntitlementPendingPlanChange:         {EvPlanChangeApproved},
		EntitlementPendingCancellation:       {EvPendingCancellation},
		EntitlementCancelled:                 {EvCancelled},
	}
	for s, evs := range overrides {
		if evs == nil {
			delete(m, s)
			continue
		}
		m[s] = evs
	}
	return m
}

// suspended is why ENTITLEMENT_SUSPENDED becomes no event.
const suspended = "Procurement suspends without a notification to answer, and only Autonomics itself " +
	"suspends a governor (account suspension, usage blocked)"

// rules is the mapping table, in the order of the generated document.
var rules = []Rule{
	{
		Type: "ACCOUNT_CREATION_REQUESTED", Resource: ResourceAccount,
		Meaning: "a customer asked for an account (older flow; accounts are now created active)",
		Ignored: "accounts are requested, verified and approved through the sign-up page " +
			"(customer_account.requested and verified), not through this message",
	},
	{
		Type: "ACCOUNT_ACTIVE", Resource: ResourceAccount,
		Meaning: "the account was approved and is active",
		Ignored: "it confirms the approval the sign-up flow asked for; customer_account is already verified",
	},
	{
		Type: "ACCOUNT_DELETED", Resource: ResourceAccount,
		Meaning: "the account was deleted",
		States:  map[string][]governor.EventName{StateGone: {EvAccountClosed}},
		Otherwise: "the account still exists at Procurement: the message is stale or forged, " +
			"and closing a tenant needs the account gone",
	},
	{
		Type: "ENTITLEMENT_CREATION_REQUESTED", Resource: ResourceEntitlement,
		Meaning: "a customer chose a plan; the entitlement waits for the provider's approval",
		States:  byState(nil),
	},
	{
		Type: "ENTITLEMENT_OFFER_ACCEPTED", Resource: ResourceEntitlement,
		Meaning: "a customer accepted a private offer with automatic approval",
		States: byState(map[string][]governor.EventName{
			EntitlementActivationRequested: nil,
		}),
		Why: map[string]string{
			EntitlementActivationRequested: "the offer is approved automatically and starts at newOfferStartTime; " +
				"ENTITLEMENT_ACTIVE follows at its start",
		},
	},
	{
		Type: "ENTITLEMENT_ACTIVE", Resource: ResourceEntitlement,
		Meaning: "the entitlement is active (after approval, or at once for auto-approved offers)",
		States:  byState(nil),
	},
	{
		Type: "ENTITLEMENT_RENEWED", Resource: ResourceEntitlement,
		Meaning: "the entitlement renewed for a new term (older message)",
		Ignored: "a renewal changes no governor state; Marketplace bills the new term",
	},
	{
		Type: "ENTITLEMENT_PLAN_CHANGE_REQUESTED", Resource: ResourceEntitlement,
		Meaning: "the customer asked for another plan; the change waits for the provider's approval",
		States:  byState(nil),
	},
	{
		Type: "ENTITLEMENT_PLAN_CHANGED", Resource: ResourceEntitlement,
		Meaning: "the plan change took effect",
		States: byState(map[string][]governor.EventName{
			EntitlementActive: {EvPlanChanged},
			// A second change is already awaiting approval: the plan that
			// took effect first, then the change asked for.
			EntitlementPendingPlanChangeApproval: {EvPlanChanged, EvPlanChangeRequested},
		}),
	},
	{
		Type: "ENTITLEMENT_PLAN_CHANGE_CANCELLED", Resource: ResourceEntitlement,
		Meaning: "the pending plan change was cancelled or rejected",
		States: byState(map[string][]governor.EventName{
			EntitlementActive: {EvPlanChangeCancelled},
		}),
	},
	{
		Type: "ENTITLEMENT_PENDING_CANCELLATION", Resource: ResourceEntitlement,
		Meaning: "the customer cancelled; the entitlement ends at the end of its term",
		States:  byState(nil),
	},
	{
		Type: "ENTITLEMENT_CANCELLATION_REVERTED", Resource: ResourceEntitlement,
		Meaning: "the customer took the pending cancellation back",
		States: byState(map[string][]governor.EventName{
			EntitlementActive: {EvCancellationReverted},
		}),
	},
	{
		Type: "ENTITLEMENT_CANCELLING", Resource: ResourceEntitlement,
		Meaning: "the cancellation is being processed",
		States: byState(map[string][]governor.EventName{
			EntitlementActivationRequested:       nil,
			EntitlementActive:                    nil,
			EntitlementPendingPlanChangeApproval: nil,
			EntitlementPendingPlanChange:         nil,
		}),
		Otherwise: "the cancellation is still being processed; ENTITLEMENT_PENDING_CANCELLATION or ENTITLEMENT_CANCELLED follows",
	},
	{
		Type: "ENTITLEMENT_CANCELLED", Resource: ResourceEntitlement,
		Meaning: "the entitlement was cancelled",
		States:  byState(nil),
	},
	{
		Type: "ENTITLEMENT_DELETED", Resource: ResourceEntitlement,
		Meaning: "the cancelled entitlement was deleted",
		States: byState(map[string][]governor.EventName{
			EntitlementCancelled: {EvCancelled, EvDeleted},
		}),
	},
	{
		Type: "ENTITLEMENT_OFFER_ENDED", Resource: ResourceEntitlement,
		Meaning: "the term of the entitlement's offer ended",
		States: map[string][]governor.EventName{
			EntitlementActive:                    {EvOfferEnded},
			EntitlementPendingPlanChangeApproval: {EvOfferEnded},
			EntitlementPendingPlanChange:         {EvOfferEnded},
			EntitlementPendingCancellation:       {EvOfferEnded},
			EntitlementCancelled:                 {EvCancelled},
		},
		Why: map[string]string{
			EntitlementActivationRequested: "an ended offer changes nothing before activation",
		},
	},
}

// Rules returns the mapping table: one rule per notification type
// Marketplace sends. A type without a rule is dead-lettered.
func Rules() []Rule { return slices.Clone(rules) }

// RuleOf returns the rule of a notification type.
func RuleOf(eventType string) (Rule, bool) {
	for _, r := range rules {
		if r.Type == eventType {
			return r, true
		}
	}
	return Rule{}, false
}

// entitlementPayload is the data of creation_requested and activated.
type entitlementPayload struct {
	Plan             string `json:"plan,omitempty"`
	Product          string `json:"product,omitempty"`
	Offer            string `json:"offer,omitempty"`
	OfferEndTime     string `json:"offer_end_time,omitempty"`
	UsageReportingID string `json:"usage_reporting_id,omitempty"`
}

// planPayload is the data of plan_change_requested and plan_changed.
type planPayload struct {
	Plan string `json:"plan"`
}

// offerEndedPayload is the data of offer_ended.
type offerEndedPayload struct {
	OfferEndTime string `json:"offer_end_time,omitempty"`
}

// Payload returns the data of governor event name for an entitlement as
// Procurement returned it; nil for the events that carry none.
func Payload(name governor.EventName, e *cloudcommerceprocurement.Entitlement) json.RawMessage {
	if e == nil {
		return nil
	}
	var v any
	switch name {
	case EvCreationRequested, EvActivated:
		v = entitlementPayload{Plan: e.Plan, Product: e.Product, Offer: e.Offer, OfferEndTime: e.OfferEndTime, UsageReportingID: e.UsageReportingId}
	case EvPlanChangeRequested:
		v = planPayload{Plan: e.NewPendingPlan}
	case EvPlanChanged:
		v = planPayload{Plan: e.Plan}
	case EvOfferEnded:
		v = offerEndedPayload{OfferEndTime: e.OfferEndTime}
	default:
		return nil
	}
	// Structs of strings always marshal.
	b, _ := json.Marshal(v)
	return b
}
