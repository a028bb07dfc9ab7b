package compliance

import (
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/machinetest"
)

// failure renders the data of an audit that failed with severity.
func failure(severity string) string {
	return `{"severity":"` + severity + `"}`
}

func TestComplianceMachineValidate(t *testing.T) {
	m := Machine()
	if err := m.Validate(); err != nil {
		t.Fatalf("Machine().Validate() = %v, want nil", err)
	}
	if got, want := m.Timers[RemediationTimer], 30*24*time.Hour; got != want {
		t.Errorf("Machine().Timers[remediation] = %v, want %v", got, want)
	}
}

// decideCases are the decisions of the machine, one or more per row and
// the refusals.
func decideCases() []machinetest.Row {
	restricted := machinetest.Cascade(governor.CustomerAccount, "restricted", governor.DefaultSubject, "")
	suspended := machinetest.Cascade(governor.CustomerAccount, "suspended", governor.DefaultSubject, "")
	return []machinetest.Row{
		// —, compliant, non_compliant → under_review
		{Name: "first audit", State: governor.StateNone, Event: AuditStarted, To: UnderReview},
		{Name: "re-audit when compliant", State: Compliant, Data: `{}`, Event: AuditStarted, To: UnderReview},
		{
			Name: "re-audit when non-compliant", State: NonCompliant, Data: failure("high"),
			Event: AuditStarted, Payload: `{"auditor":"ext"}`, To: UnderReview,
		},
		// under_review → compliant
		{
			Name: "passed", State: UnderReview, Data: failure("low"),
			Event: Passed, To: Compliant, WantData: `{}`,
		},
		// under_review → non_compliant
		{
			Name: "failed low", State: UnderReview,
			Event: Failed, Payload: `{"severity":"low"}`,
			To: NonCompliant, WantData: failure("low"),
		},
		{
			Name: "failed high with a finding", State: UnderReview,
			Event: Failed, Payload: `{"severity":"high","finding":"MFA disabled"}`,
			To: NonCompliant, WantData: `{"severity":"high","finding":"MFA disabled"}`,
		},
		{
			Name: "failed critical", Subject: "soc2", State: UnderReview,
			Event: Failed, Payload: `{"severity":"critical"}`,
			To: NonCompliant, WantData: failure("critical"),
			Emits: []machinetest.Emit{restricted},
		},
		// non_compliant → remediation_required
		{
			Name: "remediation requested", State: NonCompliant, Data: failure("medium"),
			Event: RemediationRequested,
			To:    RemediationRequired, WantTimers: map[string]time.Duration{RemediationTimer: 30 * 24 * time.Hour},
		},
		// remediation_required, escalated → under_review
		{
			Name: "remediated in time", State: RemediationRequired, Data: failure("medium"),
			Timers: map[string]time.Duration{RemediationTimer: 24 * time.Hour},
			Event:  Remediated, To: UnderReview,
		},
		{
			Name: "remediated after escalation", State: Escalated, Data: failure("medium"),
			Event: Remediated, To: UnderReview,
		},
		// remediation_required → escalated
		{
			Name: "remediation overdue", Subject: "soc2", State: RemediationRequired, Data: failure("medium"),
			Timers: map[string]time.Duration{RemediationTimer: 0},
			Event:  governor.Timeout(RemediationTimer), To: Escalated,
			Emits: []machinetest.Emit{suspended},
		},
		// refused
		{
			Name: "overdue after remediation", State: RemediationRequired, Data: failure("medium"),
			Timers: map[string]time.Duration{RemediationTimer: 0}, Stale: true,
			Event: governor.Timeout(RemediationTimer), Reject: string(governor.ReasonTimerCancelled),
		},
		{
			Name: "passed without review", State: NonCompliant, Data: failure("low"),
			Event: Passed, Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "audit while escalated", State: Escalated, Data: failure("low"),
			Event: AuditStarted, Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "remediation of a compliant policy", State: Compliant, Data: `{}`,
			Event: RemediationRequested, Reject: string(governor.ReasonNoTransition),
		},
	}
}

func TestComplianceDecide(t *testing.T) {
	cases := decideCases()
	m := Machine()
	machinetest.RunRows(t, m, governor.DefaultSubject, cases)
	machinetest.Coverage(t, m, cases)
}

func TestCompliancePayloads(t *testing.T) {
	machinetest.RunPayloads(t, Machine(), []machinetest.Payload{
		{Event: Failed, Payload: `{"severity":"low"}`, OK: true},
		{Event: Failed, Payload: `{"severity":"medium"}`, OK: true},
		{Event: Failed, Payload: `{"severity":"high"}`, OK: true},
		{Event: Failed, Payload: `{"severity":"critical","finding":"root keys exposed"}`, OK: true},
		{Event: Failed, Payload: `{"severity":"CRITICAL"}`, OK: false},
		{Event: Failed, Payload: `{}`, OK: false},
		{Event: Failed, Payload: `{"severity":"low","score":3}`, OK: false},
		{Event: AuditStarted, Payload: `{"auditor":"ext"}`, OK: true},
	})
}
