// Package messages is the contract between the governors: every event one
// governor's decision sends another (a cascade), as a typed
// governor.Message naming the receiving domain, the event and the type of
// its data. The sending machine emits the value (Message.Emit, or
// Message.To for a static cascade) and the receiving machine declares its
// row On the same value's Name with the value's Schema, so that a cascade
// and the row that receives it cannot drift apart; governor.CheckGraph,
// which the engine runs before serving, checks every cascade against the
// receiving machine.
//
// The governor packages import this one, never one another (two pairs of
// them cascade both ways), and the payload types here validate the syntax
// the event contract gives plan ids, meters and quota metrics.
package messages

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/governor"
)

// Events for entitlement instances.
var (
	// EntitlementAccountActivated tells every entitlement of the tenant
	// that its account is active.
	EntitlementAccountActivated = governor.Define(governor.Entitlement, "account_activated", governor.None{})
	// EntitlementSuspend suspends an entitlement.
	EntitlementSuspend = governor.Define(governor.Entitlement, "suspend", governor.None{})
	// EntitlementReinstate reinstates a suspended entitlement.
	EntitlementReinstate = governor.Define(governor.Entitlement, "reinstate", governor.None{})
	// EntitlementCancelled ends an entitlement.
	EntitlementCancelled = governor.Define(governor.Entitlement, "cancelled", governor.None{})
)

// Events for subscription instances.
var (
	// SubscriptionCreated starts the subscription of an entitlement.
	SubscriptionCreated = governor.Define(governor.Subscription, "created",
		SubscriptionStart{Plan: "gold", TrialDays: new(int), BilledBy: BilledByMarketplace})
	// SubscriptionPlanChanged moves a subscription to another plan.
	SubscriptionPlanChanged = governor.Define(governor.Subscription, "plan_changed", PlanRef{Plan: "gold"})
	// SubscriptionCancel cancels a subscription.
	SubscriptionCancel = governor.Define(governor.Subscription, "cancel", governor.None{})
	// SubscriptionPaymentFailed tells a subscription a payment failed.
	SubscriptionPaymentFailed = governor.Define(governor.Subscription, "payment_failed", governor.None{})
	// SubscriptionPaymentSucceeded tells a subscription a payment went through.
	SubscriptionPaymentSucceeded = governor.Define(governor.Subscription, "payment_succeeded", governor.None{})
)

// Events for billing periods.
var (
	// BillingClosed closes the billing period named by the subject.
	BillingClosed = governor.Define(governor.Billing, "closed", PeriodClose{Plan: "gold"})
	// BillingCreditIssued credits the billing period named by the subject.
	BillingCreditIssued = governor.Define(governor.Billing, "credit_issued", Credit{BasisPoints: 500})
)

// Events for the other governors.
var (
	// QuotaLimitSet sets the limit of the quota metric named by the subject.
	QuotaLimitSet = governor.Define(governor.QuotaSLA, "limit_set", Limit{Limit: 1000})
	// AccountRestricted restricts the tenant's account.
	AccountRestricted = governor.Define(governor.CustomerAccount, "restricted", governor.None{})
	// AccountSuspended suspends the tenant's account.
	AccountSuspended = governor.Define(governor.CustomerAccount, "suspended", governor.None{})
	// TenantProvisionRequested asks for the tenant's resources.
	TenantProvisionRequested = governor.Define(governor.MultiTenant, "provision_requested", governor.None{})
	// TenantSuspend suspends the tenant's resources.
	TenantSuspend = governor.Define(governor.MultiTenant, "suspend", governor.None{})
	// TenantResume resumes the tenant's resources.
	TenantResume = governor.Define(governor.MultiTenant, "resume", governor.None{})
	// TenantDeprovision releases the tenant's resources.
	TenantDeprovision = governor.Define(governor.MultiTenant, "deprovision", governor.None{})
)

// BilledByMarketplace is SubscriptionStart.BilledBy for a subscription
// that Google Cloud Marketplace bills.
const BilledByMarketplace = "marketplace"

// MaxTrialDays bounds the trial_days of an entitlement or subscription.
const MaxTrialDays = 730

// SubscriptionStart is the data of subscription.created.
type SubscriptionStart struct {
	Plan string `json:"plan"`
	// TrialDays is the free trial in days; 0 or absent starts active.
	TrialDays *int `json:"trial_days"`
	// BilledBy is BilledByMarketplace or empty (billed by Autonomics).
	BilledBy string `json:"billed_by,omitempty"`
}

// Validate checks the plan id, the trial length and who bills.
func (p SubscriptionStart) Validate() error {
	if err := CheckPlan(p.Plan); err != nil {
		return err
	}
	if err := CheckTrial(p.TrialDays); err != nil {
		return err
	}
	if p.BilledBy != "" && p.BilledBy != BilledByMarketplace {
		return fmt.Errorf("billed_by must be %q or omitted", BilledByMarketplace)
	}
	return nil
}

// PlanRef is data naming a plan, required.
type PlanRef struct {
	Plan string `json:"plan"`
}

// Validate checks the plan id.
func (p PlanRef) Validate() error { return CheckPlan(p.Plan) }

// PeriodClose is the data of billing.closed: the plan that prices the
// period, optional.
type PeriodClose struct {
	Plan string `json:"plan"`
}

// Validate checks the optional plan id.
func (p PeriodClose) Validate() error {
	if p.Plan == "" {
		return nil
	}
	return CheckKey("plan", p.Plan)
}

// MaxBasisPoints is 100% in basis points.
const MaxBasisPoints = 10000

// Credit is the data of billing.credit_issued: a share of the period's
// charges, in basis points.
type Credit struct {
	BasisPoints int `json:"basis_points"`
}

// Validate checks that the credit is 1..MaxBasisPoints basis points.
func (p Credit) Validate() error {
	if p.BasisPoints < 1 || p.BasisPoints > MaxBasisPoints {
		return fmt.Errorf("basis_points must be 1..%d, got %d", MaxBasisPoints, p.BasisPoints)
	}
	return nil
}

// Limit is the data of quota_sla.limit_set: the limit and, optionally,
// the warning threshold in basis points of it.
type Limit struct {
	Limit     int64 `json:"limit"`
	WarningBP *int  `json:"warning_bp,omitempty"`
}

// Validate checks the limit and the warning threshold.
func (p Limit) Validate() error {
	if p.Limit <= 0 {
		return fmt.Errorf("limit must be a positive integer, got %d", p.Limit)
	}
	if p.WarningBP != nil && (*p.WarningBP < 1 || *p.WarningBP > MaxBasisPoints) {
		return fmt.Errorf("warning_bp must be 1..%d, got %d", MaxBasisPoints, *p.WarningBP)
	}
	return nil
}

// planPattern is the syntax of plan ids: the subject syntax of the event
// contract.
var planPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// CheckPlan reports an error unless plan is a plan id.
func CheckPlan(plan string) error {
	if plan == "" {
		return errors.New("plan is required")
	}
	if !planPattern.MatchString(plan) {
		return fmt.Errorf("plan %q must be 1-128 characters of [A-Za-z0-9._-]", plan)
	}
	return nil
}

// CheckTrial reports an error unless trial is absent or 0..MaxTrialDays.
func CheckTrial(trial *int) error {
	if trial != nil && (*trial < 0 || *trial > MaxTrialDays) {
		return fmt.Errorf("trial_days %d out of range 0..%d", *trial, MaxTrialDays)
	}
	return nil
}

// CheckKey reports an error unless s follows the subject syntax of the
// event contract, which plan ids, meters and quota metrics share: 1–128
// characters of [A-Za-z0-9._-], not "." or "..", not starting with "__".
// what names s in the message.
func CheckKey(what, s string) error {
	bad := len(s) == 0 || len(s) > 128 || s == "." || s == ".." || strings.HasPrefix(s, "__")
	for i := 0; !bad && i < len(s); i++ {
		b := s[i]
		bad = !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-')
	}
	if bad {
		return fmt.Errorf("%s %q must be 1-128 characters of [A-Za-z0-9._-], not . or .., not starting with __", what, s)
	}
	return nil
}

// CheckCurrency reports an error unless code has the shape of an ISO 4217
// currency code: three uppercase letters.
func CheckCurrency(code string) error {
	if len(code) != 3 {
		return fmt.Errorf("currency %q must be an ISO 4217 code of 3 uppercase letters", code)
	}
	for i := range len(code) {
		if code[i] < 'A' || code[i] > 'Z' {
			return fmt.Errorf("currency %q must be an ISO 4217 code of 3 uppercase letters", code)
		}
	}
	return nil
}

// MaxReasonLen bounds the reason of a rejection or a usage block.
const MaxReasonLen = 512

// Rejection is the data of entitlement.rejected and
// customer_account.rejected: optionally why, which the Marketplace is
// told. It is also the data of the reject actions, whose reason is never
// empty.
type Rejection struct {
	Reason string `json:"reason"`
}

// Validate checks the length and characters of the reason.
func (p Rejection) Validate() error { return CheckReason(p.Reason) }

// CheckReason reports an error unless s is at most MaxReasonLen bytes of
// UTF-8 without control characters.
func CheckReason(s string) error {
	if len(s) > MaxReasonLen {
		return fmt.Errorf("reason is longer than %d bytes", MaxReasonLen)
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

// DefaultRejection is the reason the Marketplace is given when a
// rejection names none.
const DefaultRejection = "rejected by the provider"
