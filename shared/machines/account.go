package machines

import (
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// Subject conventions of the cascades emitted by the customer_account,
// entitlement, subscription and multi_tenant machines:
//
//   - customer_account and multi_tenant have one instance per tenant, with
//     subject "default" (governor.DefaultSubject); every cascade to them uses
//     that subject.
//   - Cascades to entitlement or subscription that the table marks (`*`) use
//     the broadcast subject "*" (governor.BroadcastSubject) and reach every
//     existing instance of the tenant; the others keep the emitting
//     instance's subject, because a subscription's id is the id of the
//     entitlement that created it.
//   - quota_sla.limit_set goes once per limit of the plan, with the metric
//     name as subject and data {"limit": N}.
//   - billing.closed goes to the billing period that is ending, "YYYY-MM" of
//     the period start in UTC, with data {"plan": "<plan>"}; a subscription
//     that Google Cloud Marketplace bills (billed_by "marketplace") sends
//     none.

// States of the customer_account machine.
const (
	acctPendingVerification governor.State = "pending_verification"
	acctActive              governor.State = "active"
	acctRestricted          governor.State = "restricted"
	acctSuspended           governor.State = "suspended"
	acctClosed              governor.State = "closed"
)

// acctCloseCascades are the effects of closing an account, by event or by
// the end of a suspension: every subscription and entitlement of the tenant
// ends, and the tenant's resources are deprovisioned.
var acctCloseCascades = []governor.Cascade{
	{Domain: governor.Subscription, Event: "cancel", Subject: governor.BroadcastSubject},
	{Domain: governor.Entitlement, Event: "cancelled", Subject: governor.BroadcastSubject},
	{Domain: governor.MultiTenant, Event: "deprovision", Subject: governor.DefaultSubject},
}

// accountMachine returns the customer_account machine: one
// instance per tenant, subject "default". Its events carry no data but the
// reason of a rejection, and the instance keeps none; the receipts are the
// account's history.
func accountMachine() *governor.Machine {
	return &governor.Machine{
		Domain: governor.CustomerAccount,
		States: []governor.State{
			acctPendingVerification, acctActive, acctRestricted, acctSuspended, acctClosed,
		},
		Terminal: []governor.State{acctClosed},
		Timers: map[string]time.Duration{
			"verification": 7 * 24 * time.Hour,
			"suspension":   30 * 24 * time.Hour,
		},
		Transitions: []governor.Transition{
			{
				From: []governor.State{governor.StateNone}, On: "requested", To: acctPendingVerification,
				Arm: []string{"verification"},
			},
			{
				From: []governor.State{acctPendingVerification}, On: "verified", To: acctActive,
				Cancel:  []string{"verification"},
				Actuate: []string{"marketplace.approve_account"},
				Cascade: []governor.Cascade{
					{Domain: governor.Entitlement, Event: "account_activated", Subject: governor.BroadcastSubject},
				},
			},
			{
				From: []governor.State{acctPendingVerification}, On: "rejected", To: acctClosed,
				Cancel: []string{"verification"},
				Apply:  acctReject,
				Note:   "actuate marketplace.reject_account {reason}: the event's reason, or \"" + defaultRejection + "\"",
			},
			{
				From: []governor.State{acctPendingVerification}, On: governor.Timeout("verification"), To: acctClosed,
				Apply: acctRejectLate,
				Note:  "actuate marketplace.reject_account {reason: \"verification timed out after <the verification timer's duration>\"}",
			},
			{
				From: []governor.State{acctActive}, On: "restricted", To: acctRestricted,
			},
			{
				From: []governor.State{acctActive, acctRestricted}, On: "suspended", To: acctSuspended,
				Arm: []string{"suspension"},
				Cascade: []governor.Cascade{
					{Domain: governor.Entitlement, Event: "suspend", Subject: governor.BroadcastSubject},
					{Domain: governor.MultiTenant, Event: "suspend", Subject: governor.DefaultSubject},
				},
			},
			{
				From: []governor.State{acctRestricted, acctSuspended}, On: "reinstated", To: acctActive,
				Cancel: []string{"suspension"},
				Cascade: []governor.Cascade{
					{Domain: governor.Entitlement, Event: "reinstate", Subject: governor.BroadcastSubject},
					{Domain: governor.MultiTenant, Event: "resume", Subject: governor.DefaultSubject},
				},
			},
			{
				From: []governor.State{acctSuspended}, On: governor.Timeout("suspension"), To: acctClosed,
				Cascade: acctCloseCascades,
			},
			{
				Any: true, On: "closed", To: acctClosed,
				Cascade: acctCloseCascades,
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			"requested":  governor.FromOutside,
			"verified":   governor.FromOutside,
			"rejected":   governor.FromOutside,
			"restricted": {governor.SenderExternal, governor.SenderGovernor},
			"suspended":  {governor.SenderExternal, governor.SenderGovernor},
			"reinstated": governor.FromProvider,
			"closed":     governor.FromOutside,
		},
		ActionKinds: []string{"marketplace.reject_account"},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			"rejected": governor.Schema[entRejection](),
		},
	}
}

// acctReject asks the Marketplace to reject the account, with the event's
// reason.
func acctReject(c *governor.Ctx) error {
	var p entRejection
	if err := c.Payload(&p); err != nil {
		return err
	}
	if p.Reason == "" {
		p.Reason = defaultRejection
	}
	return c.Actuate("marketplace.reject_account", p)
}

// acctRejectLate asks the Marketplace to reject an account that was not
// verified in time.
func acctRejectLate(c *governor.Ctx) error {
	reason := "verification timed out after " + governor.HumanDuration(c.Duration("verification"))
	return c.Actuate("marketplace.reject_account", entRejection{Reason: reason})
}
