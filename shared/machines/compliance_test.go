package machines

import (
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// compFailure renders the data of an audit that failed with severity.
func compFailure(severity string) string {
	return `{"severity":"` + severity + `"}`
}

func TestComplianceMachineValidate(t *testing.T) {
	m := complianceMachine()
	if err := m.Validate(); err != nil {
		t.Fatalf("complianceMachine().Validate() = %v, want nil", err)
	}
	if got, want := m.Timers[compRemediationTimer], 30*24*time.Hour; got != want {
		t.Errorf("complianceMachine().Timers[remediation] = %v, want %v", got, want)
	}
}

func TestComplianceDecide(t *testing.T) {
	restricted := rowCascade(governor.CustomerAccount, "restricted", governor.DefaultSubject, "")
	suspended := rowCascade(governor.CustomerAccount, "suspended", governor.DefaultSubject, "")
	cases := []rowCase{
		// —, compliant, non_compliant → under_review
		{name: "first audit", state: governor.StateNone, event: compAuditStarted, to: compUnderReview},
		{name: "re-audit when compliant", state: compCompliant, data: `{}`, event: compAuditStarted, to: compUnderReview},
		{
			name: "re-audit when non-compliant", state: compNonCompliant, data: compFailure("high"),
			event: compAuditStarted, payload: `{"auditor":"ext"}`, to: compUnderReview,
		},
		// under_review → compliant
		{
			name: "passed", state: compUnderReview, data: compFailure("low"),
			event: compPassed, to: compCompliant, wantData: `{}`,
		},
		// under_review → non_compliant
		{
			name: "failed low", state: compUnderReview,
			event: compFailed, payload: `{"severity":"low"}`,
			to: compNonCompliant, wantData: compFailure("low"),
		},
		{
			name: "failed high with a finding", state: compUnderReview,
			event: compFailed, payload: `{"severity":"high","finding":"MFA disabled"}`,
			to: compNonCompliant, wantData: `{"severity":"high","finding":"MFA disabled"}`,
		},
		{
			name: "failed critical", subject: "soc2", state: compUnderReview,
			event: compFailed, payload: `{"severity":"critical"}`,
			to: compNonCompliant, wantData: compFailure("critical"),
			emits: []rowEmit{restricted},
		},
		// non_compliant → remediation_required
		{
			name: "remediation requested", state: compNonCompliant, data: compFailure("medium"),
			event: compRemediationRequested,
			to:    compRemediationRequired, wantTimers: map[string]time.Duration{compRemediationTimer: 30 * 24 * time.Hour},
		},
		// remediation_required, escalated → under_review
		{
			name: "remediated in time", state: compRemediationRequired, data: compFailure("medium"),
			timers: map[string]time.Duration{compRemediationTimer: 24 * time.Hour},
			event:  compRemediated, to: compUnderReview,
		},
		{
			name: "remediated after escalation", state: compEscalated, data: compFailure("medium"),
			event: compRemediated, to: compUnderReview,
		},
		// remediation_required → escalated
		{
			name: "remediation overdue", subject: "soc2", state: compRemediationRequired, data: compFailure("medium"),
			timers: map[string]time.Duration{compRemediationTimer: 0},
			event:  governor.Timeout(compRemediationTimer), to: compEscalated,
			emits: []rowEmit{suspended},
		},
		// refused
		{
			name: "overdue after remediation", state: compRemediationRequired, data: compFailure("medium"),
			timers: map[string]time.Duration{compRemediationTimer: 0}, stale: true,
			event: governor.Timeout(compRemediationTimer), reject: governor.ReasonTimerCancelled,
		},
		{
			name: "passed without review", state: compNonCompliant, data: compFailure("low"),
			event: compPassed, reject: governor.ReasonNoTransition,
		},
		{
			name: "audit while escalated", state: compEscalated, data: compFailure("low"),
			event: compAuditStarted, reject: governor.ReasonNoTransition,
		},
		{
			name: "remediation of a compliant policy", state: compCompliant, data: `{}`,
			event: compRemediationRequested, reject: governor.ReasonNoTransition,
		},
	}
	m := complianceMachine()
	runRowCases(t, m, governor.DefaultSubject, cases)
	rowCoverage(t, m, cases)
}

func TestCompliancePayloads(t *testing.T) {
	runRowPayloads(t, complianceMachine(), []rowPayloadCase{
		{compFailed, `{"severity":"low"}`, true},
		{compFailed, `{"severity":"medium"}`, true},
		{compFailed, `{"severity":"high"}`, true},
		{compFailed, `{"severity":"critical","finding":"root keys exposed"}`, true},
		{compFailed, `{"severity":"CRITICAL"}`, false},
		{compFailed, `{}`, false},
		{compFailed, `{"severity":"low","score":3}`, false},
		{compAuditStarted, `{"auditor":"ext"}`, true},
	})
}

// TestComplianceCascadeContracts checks that the cascades of the billing,
// quota_sla and compliance_audit machines name events their target
// machines know, with data those machines accept.
func TestComplianceCascadeContracts(t *testing.T) {
	targets := map[governor.Domain]*governor.Machine{
		governor.Subscription:    subscriptionMachine(),
		governor.CustomerAccount: accountMachine(),
		governor.Billing:         billingMachine(),
	}
	emits := []struct {
		from string
		emit governor.Emit
	}{
		{"billing payment_failed", governor.Emit{Domain: governor.Subscription, Type: "autonomics.subscription.payment_failed", Subject: "*", Data: []byte(`{}`)}},
		{"billing payment_succeeded", governor.Emit{Domain: governor.Subscription, Type: "autonomics.subscription.payment_succeeded", Subject: "*", Data: []byte(`{}`)}},
		{"quota_sla breach", governor.Emit{Domain: governor.Billing, Type: "autonomics.billing.credit_issued", Subject: "2026-11", Data: []byte(`{"basis_points":2500}`)}},
		{"compliance critical", governor.Emit{Domain: governor.CustomerAccount, Type: "autonomics.customer_account.restricted", Subject: "default", Data: []byte(`{}`)}},
		{"compliance overdue", governor.Emit{Domain: governor.CustomerAccount, Type: "autonomics.customer_account.suspended", Subject: "default", Data: []byte(`{}`)}},
	}
	for _, e := range emits {
		m := targets[e.emit.Domain]
		name := governor.EventName(strings.TrimPrefix(e.emit.Type, "autonomics."+string(e.emit.Domain)+"."))
		ev := governor.Event{
			ID: "x", Source: "//tests", Type: e.emit.Type, Domain: e.emit.Domain, Name: name,
			Tenant: "tenant-1", Subject: e.emit.Subject, Data: e.emit.Data,
		}
		if err := m.CheckEvent(ev); err != nil {
			t.Errorf("%s: %s.CheckEvent(%s %s) = %v, want nil", e.from, m.Domain, e.emit.Type, e.emit.Data, err)
		}
	}
	// Entitlement sets quota limits with data {"limit": N}.
	ev := governor.Event{
		ID: "x", Source: "//tests", Type: "autonomics.quota_sla.limit_set", Domain: governor.QuotaSLA,
		Name: quotaLimitSet, Tenant: "tenant-1", Subject: "api_calls", Data: []byte(`{"limit":1000}`),
	}
	if err := quotaMachine().CheckEvent(ev); err != nil {
		t.Errorf("quota_sla.CheckEvent(limit_set {limit}) = %v, want nil", err)
	}
}
