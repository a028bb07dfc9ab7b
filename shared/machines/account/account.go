// Package account is the customer_account governor: one instance per
// tenant, subject "default", from sign-up to closure. Its events carry no
// data but the reason of a rejection, and the instance keeps none; the
// receipts are the account's history.
//
// Subject conventions of its cascades: customer_account and multi_tenant
// have one instance per tenant, with subject "default"; cascades to
// entitlement and subscription broadcast (subject "*") and reach every
// existing instance of the tenant.
package account

import (
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

// Domain is the governor's domain.
const Domain = governor.CustomerAccount

// States of the customer_account machine.
const (
	PendingVerification governor.State = "pending_verification"
	Active              governor.State = "active"
	Restricted          governor.State = "restricted"
	Suspended           governor.State = "suspended"
	Closed              governor.State = "closed"
)

// Events of the customer_account machine that come from outside the
// governors; messages.AccountRestricted and messages.AccountSuspended are
// its events other governors send.
const (
	Requested  governor.EventName = "requested"
	Verified   governor.EventName = "verified"
	Rejected   governor.EventName = "rejected"
	Reinstated governor.EventName = "reinstated"
	CloseEvent governor.EventName = "closed"
)

// Timers of the machine, with their default durations.
const (
	VerificationTimer = "verification"
	SuspensionTimer   = "suspension"

	DefaultVerification = 7 * 24 * time.Hour
	DefaultSuspension   = 30 * 24 * time.Hour
)

// Actions the machine publishes for actuators: the Marketplace account
// approval and rejection.
var (
	ApproveAccount = governor.DefineAction("marketplace.approve_account", governor.None{})
	RejectAccount  = governor.DefineAction("marketplace.reject_account", messages.Rejection{Reason: messages.DefaultRejection})
)

// Key is the key of tenant's account instance.
func Key(tenant string) governor.Key {
	return governor.Key{Tenant: tenant, Domain: Domain, Subject: governor.DefaultSubject}
}

// closeCascades are the effects of closing an account, by event or by the
// end of a suspension: every subscription and entitlement of the tenant
// ends, and the tenant's resources are deprovisioned.
var closeCascades = []governor.Cascade{
	messages.SubscriptionCancel.To(governor.BroadcastSubject),
	messages.EntitlementCancelled.To(governor.BroadcastSubject),
	messages.TenantDeprovision.To(governor.DefaultSubject),
}

// Machine returns the customer_account machine with its default timers.
func Machine() *governor.Machine {
	restricted, suspended := messages.AccountRestricted.Name, messages.AccountSuspended.Name
	return &governor.Machine{
		Domain:   Domain,
		States:   []governor.State{PendingVerification, Active, Restricted, Suspended, Closed},
		Terminal: []governor.State{Closed},
		Timers: map[string]time.Duration{
			VerificationTimer: DefaultVerification,
			SuspensionTimer:   DefaultSuspension,
		},
		Transitions: []governor.Transition{
			{
				From: []governor.State{governor.StateNone}, On: Requested, To: PendingVerification,
				Arm: []string{VerificationTimer},
			},
			{
				From: []governor.State{PendingVerification}, On: Verified, To: Active,
				Cancel:  []string{VerificationTimer},
				Actuate: []string{ApproveAccount.Kind},
				Cascade: []governor.Cascade{messages.EntitlementAccountActivated.To(governor.BroadcastSubject)},
			},
			{
				From: []governor.State{PendingVerification}, On: Rejected, To: Closed,
				Cancel: []string{VerificationTimer},
				Emits:  []governor.Ref{RejectAccount.May()},
				Apply:  reject,
				Note:   "reason: the event's, or \"" + messages.DefaultRejection + "\"",
			},
			{
				From: []governor.State{PendingVerification}, On: governor.Timeout(VerificationTimer), To: Closed,
				Emits: []governor.Ref{RejectAccount.May()},
				Apply: rejectLate,
				Note:  "reason: \"verification timed out after " + governor.HumanDuration(DefaultVerification) + "\" (the timer's configured duration)",
			},
			{
				From: []governor.State{Active}, On: restricted, To: Restricted,
			},
			{
				From: []governor.State{Active, Restricted}, On: suspended, To: Suspended,
				Arm: []string{SuspensionTimer},
				Cascade: []governor.Cascade{
					messages.EntitlementSuspend.To(governor.BroadcastSubject),
					messages.TenantSuspend.To(governor.DefaultSubject),
				},
			},
			{
				From: []governor.State{Restricted, Suspended}, On: Reinstated, To: Active,
				Cancel: []string{SuspensionTimer},
				Cascade: []governor.Cascade{
					messages.EntitlementReinstate.To(governor.BroadcastSubject),
					messages.TenantResume.To(governor.DefaultSubject),
				},
			},
			{
				From: []governor.State{Suspended}, On: governor.Timeout(SuspensionTimer), To: Closed,
				Cascade: closeCascades,
			},
			{
				Any: true, On: CloseEvent, To: Closed,
				Cascade: closeCascades,
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			Requested:  governor.FromOutside,
			Verified:   governor.FromOutside,
			Rejected:   governor.FromOutside,
			restricted: {governor.SenderExternal, governor.SenderGovernor},
			suspended:  {governor.SenderExternal, governor.SenderGovernor},
			Reinstated: governor.FromProvider,
			CloseEvent: governor.FromOutside,
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			Rejected: governor.Schema[messages.Rejection](),
		},
	}
}

// reject asks the Marketplace to reject the account, with the event's
// reason.
func reject(c *governor.Ctx) error {
	var p messages.Rejection
	if err := c.Payload(&p); err != nil {
		return err
	}
	if p.Reason == "" {
		p.Reason = messages.DefaultRejection
	}
	return RejectAccount.Emit(c, p)
}

// rejectLate asks the Marketplace to reject an account that was not
// verified in time.
func rejectLate(c *governor.Ctx) error {
	reason := "verification timed out after " + governor.HumanDuration(c.Duration(VerificationTimer))
	return RejectAccount.Emit(c, messages.Rejection{Reason: reason})
}
