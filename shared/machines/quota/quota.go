// Package quota is the quota_sla governor: the tenant's usage quotas and
// its service level agreement.
//
// Every subject but SLASubject is a quota metric (for example
// "api_calls"), one instance per metric, in Within, Warning or Exceeded;
// it keeps its limit, its warning threshold in basis points of the limit
// and the usage of the current period. The subject SLASubject is the
// tenant's SLA, in Meeting, AtRisk or Breached; it keeps its objective,
// the last measurement and what it missed or came close to, and the
// credit issued so far for the current billing period. Metric events on
// the SLA and SLA events on a metric are rejected with
// ReasonSubjectMismatch.
//
// Conventions of its effects: the actions Throttle and Unthrottle are
// published for the metric's instance, with the metric, usage and limit;
// the cascade messages.BillingCreditIssued goes to the billing period of
// the decision time, subject YYYY-MM in UTC, of the same tenant.
// messages.QuotaLimitSet is the event the entitlement governor sends it.
package quota

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/internal/exact"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

// Domain is the governor's domain.
const Domain = governor.QuotaSLA

// States of the quota_sla machine: the first three for metric subjects,
// the last three for SLASubject.
const (
	Within   governor.State = "within_limits"
	Warning  governor.State = "warning"
	Exceeded governor.State = "exceeded"
	Meeting  governor.State = "meeting"
	AtRisk   governor.State = "at_risk"
	Breached governor.State = "breached"
)

// Events of the quota_sla machine that come from outside the governors;
// messages.QuotaLimitSet is its event the entitlement governor sends.
const (
	UsageReported governor.EventName = "usage_reported"
	PeriodReset   governor.EventName = "period_reset"
	ObjectiveSet  governor.EventName = "objective_set"
	Measured      governor.EventName = "measured"
)

// SLASubject is the subject of the tenant's SLA instance; every other
// subject of quota_sla is a metric.
const SLASubject = "sla"

// DefaultWarningBP is the warning threshold of a new metric, in basis
// points of its limit.
const DefaultWarningBP = 8000

// SLA credits, in basis points of the period's invoice.
const (
	// CreditAvailabilityBP is the credit for a missed availability
	// objective.
	CreditAvailabilityBP = 1000
	// CreditOtherBP is the credit for each missed latency or error
	// objective.
	CreditOtherBP = 500
	// CreditCapBP is the most credited per billing period.
	CreditCapBP = 2500
)

// RiskPct is how close to an objective, in percent of its budget, a
// measurement must come to be at risk.
const RiskPct = 90

// ReasonSubjectMismatch is the rejection of a metric event on the SLA or
// of an SLA event on a metric.
const ReasonSubjectMismatch governor.ReasonCode = "subject_mismatch"

// Actions the machine publishes for actuators: throttling the tenant's
// use of a metric when it exceeds its limit, and lifting it.
var (
	Throttle   = governor.DefineAction("tenant.throttle", MetricAction{Metric: "api_calls", Usage: 1000, Limit: 1000})
	Unthrottle = governor.DefineAction("tenant.unthrottle", MetricAction{Metric: "api_calls", Usage: 0, Limit: 1000})
)

// Tiers are the objectives of the named SLA tiers.
var Tiers = map[string]Objective{
	"enterprise":   {AvailabilityBP: 9999, P99Ms: 100, ErrorBP: 1},
	"professional": {AvailabilityBP: 9990, P99Ms: 500, ErrorBP: 10},
	"starter":      {AvailabilityBP: 9950, P99Ms: 2000, ErrorBP: 100},
}

// periodLayout formats the billing period a credit goes to.
const periodLayout = "2006-01"

// Names of the objectives, in the order they are assessed.
const (
	availability = "availability"
	p99          = "p99"
	errorRate    = "errors"
)

// metricData is what a metric instance keeps.
type metricData struct {
	Limit     int64 `json:"limit"`
	WarningBP int   `json:"warning_bp"`
	Usage     int64 `json:"usage"`
}

// UsageReport is the data of quota_sla.usage_reported: the usage of the
// period so far, not an increment.
type UsageReport struct {
	Usage *int64 `json:"usage"`
}

// Validate checks that usage is present and not negative.
func (p UsageReport) Validate() error {
	if p.Usage == nil {
		return errors.New("usage is required")
	}
	if *p.Usage < 0 {
		return fmt.Errorf("usage must not be negative, got %d", *p.Usage)
	}
	return nil
}

// MetricAction is the data of the Throttle and Unthrottle actions.
type MetricAction struct {
	Metric string `json:"metric"`
	Usage  int64  `json:"usage"`
	Limit  int64  `json:"limit"`
}

// Validate checks the metric name, a usage not negative and a positive
// limit.
func (p MetricAction) Validate() error {
	if err := messages.CheckKey("metric", p.Metric); err != nil {
		return err
	}
	if p.Usage < 0 || p.Limit <= 0 {
		return fmt.Errorf("usage must not be negative and limit must be positive, got %d and %d", p.Usage, p.Limit)
	}
	return nil
}

// Objective is an SLA: the least availability, the largest p99 latency
// and the largest error rate; Tier names the tier it starts from, if any.
type Objective struct {
	Tier           string `json:"tier,omitempty"`
	AvailabilityBP int    `json:"availability_bp"`
	P99Ms          int64  `json:"p99_ms"`
	ErrorBP        int    `json:"error_bp"`
}

// ObjectiveSpec is the data of quota_sla.objective_set: a tier, or all
// three objectives; fields given with a tier override the tier's values.
type ObjectiveSpec struct {
	Tier           string `json:"tier"`
	AvailabilityBP *int   `json:"availability_bp"`
	P99Ms          *int64 `json:"p99_ms"`
	ErrorBP        *int   `json:"error_bp"`
}

// Validate checks the tier and the ranges.
func (p ObjectiveSpec) Validate() error {
	if p.Tier != "" {
		if _, ok := Tiers[p.Tier]; !ok {
			return fmt.Errorf("tier %q must be %s", p.Tier, tierChoice())
		}
	} else if p.AvailabilityBP == nil || p.P99Ms == nil || p.ErrorBP == nil {
		return errors.New("objective_set needs a tier or all of availability_bp, p99_ms, error_bp")
	}
	if p.AvailabilityBP != nil && (*p.AvailabilityBP < 1 || *p.AvailabilityBP > messages.MaxBasisPoints) {
		return fmt.Errorf("availability_bp must be 1..%d, got %d", messages.MaxBasisPoints, *p.AvailabilityBP)
	}
	if p.P99Ms != nil && *p.P99Ms <= 0 {
		return fmt.Errorf("p99_ms must be positive, got %d", *p.P99Ms)
	}
	if p.ErrorBP != nil && (*p.ErrorBP < 0 || *p.ErrorBP > messages.MaxBasisPoints) {
		return fmt.Errorf("error_bp must be 0..%d, got %d", messages.MaxBasisPoints, *p.ErrorBP)
	}
	return nil
}

// objective returns the objective the event sets.
func (p ObjectiveSpec) objective() Objective {
	o := Tiers[p.Tier]
	o.Tier = p.Tier
	if p.AvailabilityBP != nil {
		o.AvailabilityBP = *p.AvailabilityBP
	}
	if p.P99Ms != nil {
		o.P99Ms = *p.P99Ms
	}
	if p.ErrorBP != nil {
		o.ErrorBP = *p.ErrorBP
	}
	return o
}

// Measurement is the data of quota_sla.measured: availability and error
// rate in basis points, p99 latency in milliseconds.
type Measurement struct {
	AvailabilityBP *int   `json:"availability_bp"`
	P99Ms          *int64 `json:"p99_ms"`
	ErrorBP        *int   `json:"error_bp"`
}

// Validate checks that every field is present and in range.
func (p Measurement) Validate() error {
	if p.AvailabilityBP == nil || p.P99Ms == nil || p.ErrorBP == nil {
		return errors.New("measured needs availability_bp, p99_ms and error_bp")
	}
	if *p.AvailabilityBP < 0 || *p.AvailabilityBP > messages.MaxBasisPoints {
		return fmt.Errorf("availability_bp must be 0..%d, got %d", messages.MaxBasisPoints, *p.AvailabilityBP)
	}
	if *p.P99Ms < 0 {
		return fmt.Errorf("p99_ms must not be negative, got %d", *p.P99Ms)
	}
	if *p.ErrorBP < 0 || *p.ErrorBP > messages.MaxBasisPoints {
		return fmt.Errorf("error_bp must be 0..%d, got %d", messages.MaxBasisPoints, *p.ErrorBP)
	}
	return nil
}

// slaData is what the SLA instance keeps.
type slaData struct {
	Objective Objective `json:"objective"`
	// Measured is the last measurement; Missed and AtRisk name the
	// objectives it missed or came close to.
	Measured *reading `json:"measured,omitempty"`
	Missed   []string `json:"missed,omitempty"`
	AtRisk   []string `json:"at_risk,omitempty"`
	// CreditPeriod is the billing period of CreditedBP, the credit issued
	// for it so far.
	CreditPeriod string `json:"credit_period,omitempty"`
	CreditedBP   int    `json:"credited_bp,omitempty"`
}

// reading is a stored measurement.
type reading struct {
	AvailabilityBP int   `json:"availability_bp"`
	P99Ms          int64 `json:"p99_ms"`
	ErrorBP        int   `json:"error_bp"`
}

// tierNames returns the names of the tiers, sorted.
func tierNames() []string {
	names := make([]string, 0, len(Tiers))
	for name := range Tiers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// tierChoice renders the tier names as "a, b or c".
func tierChoice() string {
	names := tierNames()
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// tiersNote renders the tiers' objectives for the docs.
func tiersNote() string {
	var parts []string
	for _, name := range tierNames() {
		o := Tiers[name]
		parts = append(parts, fmt.Sprintf("%s %d/%d/%d", name, o.AvailabilityBP, o.P99Ms, o.ErrorBP))
	}
	return strings.Join(parts, ", ")
}

// Machine returns the quota_sla machine.
//
// A metric is Within while usage × MaxBasisPoints < limit × warning_bp,
// in Warning while usage < limit, Exceeded from the limit on. The SLA
// misses an objective when availability is below, or p99 or error rate
// above it, and is at risk when it misses none but one measurement
// reaches RiskPct percent of its budget: for availability the downtime
// MaxBasisPoints − measured reaches RiskPct percent of the allowed
// downtime MaxBasisPoints − objective; for p99 and errors the measurement
// reaches RiskPct percent of the objective. A budget of 0 is never at
// risk. On entering Breached the SLA credits the current billing period
// (YYYY-MM of the decision time, UTC) CreditAvailabilityBP for missed
// availability plus CreditOtherBP per other missed objective, at most
// CreditCapBP per period in total. PeriodReset starts a new period for
// the SLA too: it returns to Meeting from any state.
func Machine() *governor.Machine {
	limitSet := messages.QuotaLimitSet.Name
	metrics := []governor.State{Within, Warning, Exceeded}
	slas := []governor.State{Meeting, AtRisk, Breached}
	none := []governor.State{governor.StateNone}
	throttling := []governor.Ref{Throttle.May(), Unthrottle.May()}
	byUsage := fmt.Sprintf("by usage: < limit × warning_bp / %d %s, < limit %s, else %s; entering %s: %s; leaving it: %s",
		messages.MaxBasisPoints, Within, Warning, Exceeded, Exceeded, Throttle.Kind, Unthrottle.Kind)
	reset := "clears the last measurement"
	return &governor.Machine{
		Domain: Domain,
		States: []governor.State{Within, Warning, Exceeded, Meeting, AtRisk, Breached},
		Transitions: []governor.Transition{
			{
				From: none, On: limitSet, To: Within,
				Guard: onMetric,
				Apply: setLimit,
				Note:  "metric subjects only; warning_bp defaults to " + strconv.Itoa(DefaultWarningBP) + "; usage 0",
			},
			{
				From: metrics, On: limitSet, To: Within, Alt: []governor.State{Warning, Exceeded},
				Emits: throttling,
				Guard: onMetric,
				Apply: setLimit,
				Note:  "re-evaluates the last usage against the new limit (warning_bp kept unless given), " + byUsage,
			},
			{
				From: metrics, On: UsageReported, To: Within, Alt: []governor.State{Warning, Exceeded},
				Emits: throttling,
				Guard: onMetric,
				Apply: reportUsage,
				Note:  byUsage,
			},
			{
				From: metrics, On: PeriodReset, To: Within,
				Emits: []governor.Ref{Unthrottle.May()},
				Guard: onMetric,
				Apply: resetUsage,
				Note:  fmt.Sprintf("usage 0; from %s: %s", Exceeded, Unthrottle.Kind),
			},
			{
				From: none, On: ObjectiveSet, To: Meeting,
				Guard: onSLA,
				Apply: setObjective,
				Note:  "subject " + SLASubject + " only; tiers " + tiersNote() + " (availability_bp/p99_ms/error_bp)",
			},
			{
				From: slas, On: Measured, To: Meeting, Alt: []governor.State{AtRisk, Breached},
				Emits: []governor.Ref{messages.BillingCreditIssued.May("YYYY-MM of the decision time, UTC")},
				Guard: onSLA,
				Apply: measure,
				Note: fmt.Sprintf("%s if any objective is missed, %s if a measurement reaches %d%% of its budget, else %s; "+
					"entering %s: a credit of %d bp for availability, +%d per missed p99 or error objective, at most %d per period",
					Breached, AtRisk, RiskPct, Meeting, Breached, CreditAvailabilityBP, CreditOtherBP, CreditCapBP),
			},
			{
				From: []governor.State{Breached}, On: PeriodReset, To: Meeting,
				Guard: onSLA,
				Apply: resetSLA,
				Note:  reset,
			},
			{
				From: []governor.State{Meeting, AtRisk}, On: PeriodReset, To: Meeting,
				Guard: onSLA,
				Apply: resetSLA,
				Note:  reset,
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			limitSet:      {governor.SenderExternal, governor.SenderGovernor},
			UsageReported: {governor.SenderExternal, governor.SenderMonitor},
			PeriodReset:   governor.FromProvider,
			ObjectiveSet:  governor.FromProvider,
			Measured:      {governor.SenderExternal, governor.SenderMonitor},
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			limitSet:      messages.QuotaLimitSet.Schema(),
			UsageReported: governor.Schema[UsageReport](),
			ObjectiveSet:  governor.Schema[ObjectiveSpec](),
			Measured:      governor.Schema[Measurement](),
		},
		Reasons: []governor.Reason{
			{Code: ReasonSubjectMismatch, Doc: fmt.Sprintf("an event of a metric is sent to the subject %q, or an event of the SLA to a metric", SLASubject)},
		},
	}
}

// onMetric refuses metric events addressed to the SLA.
func onMetric(c *governor.Ctx) error {
	if c.Instance().Subject == SLASubject {
		return governor.Reject(ReasonSubjectMismatch, "%s applies to metric subjects, not %q", c.Event().Name, SLASubject)
	}
	return nil
}

// onSLA refuses SLA events addressed to a metric.
func onSLA(c *governor.Ctx) error {
	if s := c.Instance().Subject; s != SLASubject {
		return governor.Reject(ReasonSubjectMismatch, "%s applies to subject %q, not %q", c.Event().Name, SLASubject, s)
	}
	return nil
}

// level returns the state of usage against limit and warning_bp.
func level(d metricData) governor.State {
	switch {
	case exact.CmpMul(d.Usage, messages.MaxBasisPoints, d.Limit, int64(d.WarningBP)) < 0:
		return Within
	case d.Usage < d.Limit:
		return Warning
	}
	return Exceeded
}

// move goes to the state d's usage calls for, throttling on entering
// Exceeded and unthrottling on leaving it.
func move(c *governor.Ctx, d metricData) error {
	from, to := c.Instance().State, level(d)
	c.Goto(to)
	if err := c.Store(d); err != nil {
		return err
	}
	a := MetricAction{Metric: c.Instance().Subject, Usage: d.Usage, Limit: d.Limit}
	switch {
	case to == Exceeded && from != Exceeded:
		return Throttle.Emit(c, a)
	case from == Exceeded && to != Exceeded:
		return Unthrottle.Emit(c, a)
	}
	return nil
}

// setLimit records a limit and re-evaluates the last usage.
func setLimit(c *governor.Ctx) error {
	var p messages.Limit
	if err := c.Payload(&p); err != nil {
		return err
	}
	d := metricData{WarningBP: DefaultWarningBP}
	if err := c.Load(&d); err != nil {
		return err
	}
	d.Limit = p.Limit
	if p.WarningBP != nil {
		d.WarningBP = *p.WarningBP
	}
	return move(c, d)
}

// reportUsage records the usage and re-evaluates it.
func reportUsage(c *governor.Ctx) error {
	var p UsageReport
	if err := c.Payload(&p); err != nil {
		return err
	}
	var d metricData
	if err := c.Load(&d); err != nil {
		return err
	}
	d.Usage = *p.Usage
	return move(c, d)
}

// resetUsage starts a new period with usage 0.
func resetUsage(c *governor.Ctx) error {
	var d metricData
	if err := c.Load(&d); err != nil {
		return err
	}
	d.Usage = 0
	return move(c, d)
}

// setObjective records the SLA's objective.
func setObjective(c *governor.Ctx) error {
	var p ObjectiveSpec
	if err := c.Payload(&p); err != nil {
		return err
	}
	return c.Store(slaData{Objective: p.objective()})
}

// measure grades a measurement and credits the period on a breach.
func measure(c *governor.Ctx) error {
	var p Measurement
	if err := c.Payload(&p); err != nil {
		return err
	}
	var d slaData
	if err := c.Load(&d); err != nil {
		return err
	}
	m := reading{AvailabilityBP: *p.AvailabilityBP, P99Ms: *p.P99Ms, ErrorBP: *p.ErrorBP}
	d.Measured = &m
	d.Missed, d.AtRisk = assess(d.Objective, m)
	to := Meeting
	switch {
	case len(d.Missed) > 0:
		to = Breached
	case len(d.AtRisk) > 0:
		to = AtRisk
	}
	c.Goto(to)
	if to != Breached || c.Instance().State == Breached {
		return c.Store(d)
	}
	period := c.Now().UTC().Format(periodLayout)
	if d.CreditPeriod != period {
		d.CreditPeriod, d.CreditedBP = period, 0
	}
	bp := min(credit(d.Missed), CreditCapBP-d.CreditedBP)
	if bp <= 0 {
		return c.Store(d)
	}
	d.CreditedBP += bp
	if err := c.Store(d); err != nil {
		return err
	}
	return messages.BillingCreditIssued.Emit(c, period, messages.Credit{BasisPoints: bp})
}

// assess names the objectives m misses and those it is at risk of
// missing, in the order availability, p99, errors.
func assess(o Objective, m reading) (missed, atRisk []string) {
	// Availability: compare downtime with the allowed downtime.
	down, budget := int64(messages.MaxBasisPoints-m.AvailabilityBP), int64(messages.MaxBasisPoints-o.AvailabilityBP)
	switch {
	case down > budget:
		missed = append(missed, availability)
	case budget > 0 && exact.CmpMul(down, 100, budget, RiskPct) >= 0:
		atRisk = append(atRisk, availability)
	}
	for _, x := range []struct {
		name          string
		value, budget int64
	}{
		{p99, m.P99Ms, o.P99Ms},
		{errorRate, int64(m.ErrorBP), int64(o.ErrorBP)},
	} {
		switch {
		case x.value > x.budget:
			missed = append(missed, x.name)
		case x.budget > 0 && exact.CmpMul(x.value, 100, x.budget, RiskPct) >= 0:
			atRisk = append(atRisk, x.name)
		}
	}
	return missed, atRisk
}

// credit is the credit, in basis points, for the missed objectives,
// capped at CreditCapBP.
func credit(missed []string) int {
	bp := 0
	for _, name := range missed {
		if name == availability {
			bp += CreditAvailabilityBP
		} else {
			bp += CreditOtherBP
		}
	}
	return min(bp, CreditCapBP)
}

// resetSLA starts a new period: the SLA meets its objective until the
// next measurement.
func resetSLA(c *governor.Ctx) error {
	var d slaData
	if err := c.Load(&d); err != nil {
		return err
	}
	d.Measured, d.Missed, d.AtRisk = nil, nil, nil
	return c.Store(d)
}
