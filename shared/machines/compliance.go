package machines

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/governor"
)

// States of the compliance_audit machine.
const (
	compUnderReview         governor.State = "under_review"
	compCompliant           governor.State = "compliant"
	compNonCompliant        governor.State = "non_compliant"
	compRemediationRequired governor.State = "remediation_required"
	compEscalated           governor.State = "escalated"
)

// Events of the compliance_audit machine.
const (
	compAuditStarted         governor.EventName = "audit_started"
	compPassed               governor.EventName = "passed"
	compFailed               governor.EventName = "failed"
	compRemediationRequested governor.EventName = "remediation_requested"
	compRemediated           governor.EventName = "remediated"
)

// compRemediationTimer bounds the time allowed for a remediation.
const compRemediationTimer = "remediation"

// compSeverities are the severities of a failed audit, least first.
var compSeverities = []string{"low", "medium", "high", "critical"}

// compMaxFindingLen bounds the finding of a failed audit, in characters.
const compMaxFindingLen = 1024

// compFailedData is the data of compliance_audit.failed.
type compFailedData struct {
	Severity string `json:"severity"`
	// Finding optionally describes what failed.
	Finding string `json:"finding"`
}

// Validate checks the severity and the length of the finding.
func (p compFailedData) Validate() error {
	if !slices.Contains(compSeverities, p.Severity) {
		return fmt.Errorf("severity %q must be low, medium, high or critical", p.Severity)
	}
	if utf8.RuneCountInString(p.Finding) > compMaxFindingLen {
		return fmt.Errorf("finding is longer than %d characters", compMaxFindingLen)
	}
	return nil
}

// compStartedData is the data of compliance_audit.audit_started:
// optionally who audits.
type compStartedData struct {
	Auditor string `json:"auditor"`
}

// Validate checks the length of the auditor.
func (p compStartedData) Validate() error {
	if utf8.RuneCountInString(p.Auditor) > compMaxFindingLen {
		return fmt.Errorf("auditor is longer than %d characters", compMaxFindingLen)
	}
	return nil
}

// compData is what an audit keeps: the severity and finding of its last
// failure, until it passes.
type compData struct {
	Severity string `json:"severity,omitempty"`
	Finding  string `json:"finding,omitempty"`
}

// complianceMachine returns the compliance_audit machine.
// The subject is the audit or policy id, "default" unless given; the
// instance keeps compData. A critical failure restricts the customer
// account and an expired remediation suspends it; both cascades go to the
// account's only instance, subject "default".
func complianceMachine() *governor.Machine {
	return &governor.Machine{
		Domain: governor.ComplianceAudit,
		States: []governor.State{
			compUnderReview, compCompliant, compNonCompliant, compRemediationRequired, compEscalated,
		},
		Timers: map[string]time.Duration{compRemediationTimer: 30 * 24 * time.Hour},
		Transitions: []governor.Transition{
			{
				From: []governor.State{governor.StateNone, compCompliant, compNonCompliant}, On: compAuditStarted, To: compUnderReview,
			},
			{
				From: []governor.State{compUnderReview}, On: compPassed, To: compCompliant,
				Apply: compPass,
				Note:  "clears the last failure",
			},
			{
				From: []governor.State{compUnderReview}, On: compFailed, To: compNonCompliant,
				Apply: compFail,
				Note:  "records severity and finding; severity critical: → customer_account.restricted (subject default)",
			},
			{
				From: []governor.State{compNonCompliant}, On: compRemediationRequested, To: compRemediationRequired,
				Arm: []string{compRemediationTimer},
			},
			{
				From: []governor.State{compRemediationRequired, compEscalated}, On: compRemediated, To: compUnderReview,
			},
			{
				From: []governor.State{compRemediationRequired}, On: governor.Timeout(compRemediationTimer), To: compEscalated,
				Cascade: []governor.Cascade{{Domain: governor.CustomerAccount, Event: "suspended", Subject: governor.DefaultSubject}},
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			compAuditStarted:         governor.FromProvider,
			compPassed:               governor.FromProvider,
			compFailed:               governor.FromProvider,
			compRemediationRequested: governor.FromProvider,
			compRemediated:           governor.FromProvider,
		},
		EmitsTo: []governor.Domain{governor.CustomerAccount},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			compFailed:       governor.Schema[compFailedData](),
			compAuditStarted: governor.Schema[compStartedData](),
		},
	}
}

// compPass clears the last failure.
func compPass(c *governor.Ctx) error {
	return c.Store(compData{})
}

// compFail records a failure and restricts the account if it is critical.
func compFail(c *governor.Ctx) error {
	var p compFailedData
	if err := c.Payload(&p); err != nil {
		return err
	}
	if err := c.Store(compData(p)); err != nil {
		return err
	}
	if p.Severity != "critical" {
		return nil
	}
	return c.Emit(governor.CustomerAccount, "restricted", governor.DefaultSubject, nil)
}
