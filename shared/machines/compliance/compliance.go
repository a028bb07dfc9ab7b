// Package compliance is the compliance_audit governor: one instance per
// audit or policy of a tenant, subject the audit or policy id ("default"
// unless given), from review to a compliant, non-compliant or escalated
// result. The instance keeps Data: the severity and finding of its last
// failure, until an audit passes.
//
// Cascades: a failure of severity RestrictSeverity restricts the
// customer account (messages.AccountRestricted) and an expired remediation
// suspends it (messages.AccountSuspended); both go to the account's only
// instance, subject "default", whatever the audit's subject.
package compliance

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

// Domain is the governor's domain.
const Domain = governor.ComplianceAudit

// States of the compliance_audit machine.
const (
	UnderReview         governor.State = "under_review"
	Compliant           governor.State = "compliant"
	NonCompliant        governor.State = "non_compliant"
	RemediationRequired governor.State = "remediation_required"
	Escalated           governor.State = "escalated"
)

// Events of the compliance_audit machine, all from the provider.
const (
	AuditStarted         governor.EventName = "audit_started"
	Passed               governor.EventName = "passed"
	Failed               governor.EventName = "failed"
	RemediationRequested governor.EventName = "remediation_requested"
	Remediated           governor.EventName = "remediated"
)

// RemediationTimer bounds the time allowed for a remediation;
// DefaultRemediation is its default duration.
const (
	RemediationTimer   = "remediation"
	DefaultRemediation = 30 * 24 * time.Hour
)

// Severities of a failed audit.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Severities lists the severities of a failed audit, least first.
var Severities = []string{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// RestrictSeverity is the severity of a failure that restricts the
// customer account.
const RestrictSeverity = SeverityCritical

// MaxFindingLen bounds the finding of a failed audit and the auditor of a
// started one, in characters.
const MaxFindingLen = 1024

// Failure is the data of compliance_audit.failed.
type Failure struct {
	Severity string `json:"severity"`
	// Finding optionally describes what failed.
	Finding string `json:"finding"`
}

// Validate checks the severity and the length of the finding.
func (p Failure) Validate() error {
	if !slices.Contains(Severities, p.Severity) {
		return fmt.Errorf("severity %q must be %s, %s, %s or %s",
			p.Severity, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical)
	}
	if utf8.RuneCountInString(p.Finding) > MaxFindingLen {
		return fmt.Errorf("finding is longer than %d characters", MaxFindingLen)
	}
	return nil
}

// Start is the data of compliance_audit.audit_started: optionally who
// audits.
type Start struct {
	Auditor string `json:"auditor"`
}

// Validate checks the length of the auditor.
func (p Start) Validate() error {
	if utf8.RuneCountInString(p.Auditor) > MaxFindingLen {
		return fmt.Errorf("auditor is longer than %d characters", MaxFindingLen)
	}
	return nil
}

// Data is what an audit keeps: the severity and finding of its last
// failure, until it passes.
type Data struct {
	Severity string `json:"severity,omitempty"`
	Finding  string `json:"finding,omitempty"`
}

// Machine returns the compliance_audit machine with its default timer.
func Machine() *governor.Machine {
	return &governor.Machine{
		Domain: Domain,
		States: []governor.State{UnderReview, Compliant, NonCompliant, RemediationRequired, Escalated},
		Timers: map[string]time.Duration{RemediationTimer: DefaultRemediation},
		Transitions: []governor.Transition{
			{
				From: []governor.State{governor.StateNone, Compliant, NonCompliant}, On: AuditStarted, To: UnderReview,
			},
			{
				From: []governor.State{UnderReview}, On: Passed, To: Compliant,
				Apply: pass,
				Note:  "clears the last failure",
			},
			{
				From: []governor.State{UnderReview}, On: Failed, To: NonCompliant,
				Emits: []governor.Ref{messages.AccountRestricted.May(governor.DefaultSubject)},
				Apply: fail,
				Note:  "records severity and finding; restricts the account only at severity " + RestrictSeverity,
			},
			{
				From: []governor.State{NonCompliant}, On: RemediationRequested, To: RemediationRequired,
				Arm: []string{RemediationTimer},
			},
			{
				From: []governor.State{RemediationRequired, Escalated}, On: Remediated, To: UnderReview,
			},
			{
				From: []governor.State{RemediationRequired}, On: governor.Timeout(RemediationTimer), To: Escalated,
				Cascade: []governor.Cascade{messages.AccountSuspended.To(governor.DefaultSubject)},
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			AuditStarted:         governor.FromProvider,
			Passed:               governor.FromProvider,
			Failed:               governor.FromProvider,
			RemediationRequested: governor.FromProvider,
			Remediated:           governor.FromProvider,
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			Failed:       governor.Schema[Failure](),
			AuditStarted: governor.Schema[Start](),
		},
	}
}

// pass clears the last failure.
func pass(c *governor.Ctx) error {
	return c.Store(Data{})
}

// fail records a failure and restricts the account if its severity is
// RestrictSeverity.
func fail(c *governor.Ctx) error {
	var p Failure
	if err := c.Payload(&p); err != nil {
		return err
	}
	if err := c.Store(Data(p)); err != nil {
		return err
	}
	if p.Severity != RestrictSeverity {
		return nil
	}
	return messages.AccountRestricted.Emit(c, governor.DefaultSubject, governor.None{})
}
