package machines

import (
	"errors"
	"fmt"

	"github.com/autonomics/autonomics/shared/governor"
)

// States of the quota_sla machine: the first three for metric subjects,
// the last three for the subject "sla".
const (
	quotaWithin   governor.State = "within_limits"
	quotaWarning  governor.State = "warning"
	quotaExceeded governor.State = "exceeded"
	slaMeeting    governor.State = "meeting"
	slaAtRisk     governor.State = "at_risk"
	slaBreached   governor.State = "breached"
)

// Events of the quota_sla machine.
const (
	quotaLimitSet      governor.EventName = "limit_set"
	quotaUsageReported governor.EventName = "usage_reported"
	quotaPeriodReset   governor.EventName = "period_reset"
	slaObjectiveSet    governor.EventName = "objective_set"
	slaMeasured        governor.EventName = "measured"
)

// slaSubject is the subject of the tenant's SLA instance; every other
// subject of quota_sla is a metric.
const slaSubject = "sla"

// quotaDefaultWarningBP is the default warning threshold: 80% of the limit.
const quotaDefaultWarningBP = 8000

// Actions quota_sla publishes for actuators.
const (
	quotaThrottle   = "tenant.throttle"
	quotaUnthrottle = "tenant.unthrottle"
)

// SLA credits, in basis points of the period's invoice.
const (
	slaCreditAvailability = 1000 // a missed availability objective
	slaCreditOther        = 500  // each missed latency or error objective
	slaCreditCap          = 2500 // the most credited per billing period
)

// slaRiskPct is how close to an objective, in percent of its budget, a
// measurement must come to be at risk.
const slaRiskPct = 90

// slaTiers are the objectives of the named SLA tiers.
var slaTiers = map[string]slaObjective{
	"enterprise":   {AvailabilityBP: 9999, P99Ms: 100, ErrorBP: 1},
	"professional": {AvailabilityBP: 9990, P99Ms: 500, ErrorBP: 10},
	"starter":      {AvailabilityBP: 9950, P99Ms: 2000, ErrorBP: 100},
}

// quotaData is what a metric instance keeps.
type quotaData struct {
	Limit     int64 `json:"limit"`
	WarningBP int   `json:"warning_bp"`
	Usage     int64 `json:"usage"`
}

// quotaLimitData is the data of quota_sla.limit_set. Without warning_bp
// the instance keeps its threshold, 8000 for a new one.
type quotaLimitData struct {
	Limit     int64 `json:"limit"`
	WarningBP *int  `json:"warning_bp"`
}

// Validate checks the limit and the warning threshold.
func (p quotaLimitData) Validate() error {
	if p.Limit <= 0 {
		return fmt.Errorf("limit must be a positive integer, got %d", p.Limit)
	}
	if p.WarningBP != nil && (*p.WarningBP < 1 || *p.WarningBP > 10000) {
		return fmt.Errorf("warning_bp must be 1..10000, got %d", *p.WarningBP)
	}
	return nil
}

// quotaUsageData is the data of quota_sla.usage_reported: the usage of the
// period so far, not an increment.
type quotaUsageData struct {
	Usage *int64 `json:"usage"`
}

// Validate checks that usage is present and not negative.
func (p quotaUsageData) Validate() error {
	if p.Usage == nil {
		return errors.New("usage is required")
	}
	if *p.Usage < 0 {
		return fmt.Errorf("usage must not be negative, got %d", *p.Usage)
	}
	return nil
}

// quotaAction is the data of the tenant.throttle and tenant.unthrottle
// actions.
type quotaAction struct {
	Metric string `json:"metric"`
	Usage  int64  `json:"usage"`
	Limit  int64  `json:"limit"`
}

// slaObjective is an SLA: the least availability, the largest p99 latency
// and the largest error rate.
type slaObjective struct {
	Tier           string `json:"tier,omitempty"`
	AvailabilityBP int    `json:"availability_bp"`
	P99Ms          int64  `json:"p99_ms"`
	ErrorBP        int    `json:"error_bp"`
}

// slaObjectiveData is the data of quota_sla.objective_set: a tier, or all
// three objectives; fields given with a tier override the tier's values.
type slaObjectiveData struct {
	Tier           string `json:"tier"`
	AvailabilityBP *int   `json:"availability_bp"`
	P99Ms          *int64 `json:"p99_ms"`
	ErrorBP        *int   `json:"error_bp"`
}

// Validate checks the tier and the ranges.
func (p slaObjectiveData) Validate() error {
	if p.Tier != "" {
		if _, ok := slaTiers[p.Tier]; !ok {
			return fmt.Errorf("tier %q must be enterprise, professional or starter", p.Tier)
		}
	} else if p.AvailabilityBP == nil || p.P99Ms == nil || p.ErrorBP == nil {
		return errors.New("objective_set needs a tier or all of availability_bp, p99_ms, error_bp")
	}
	if p.AvailabilityBP != nil && (*p.AvailabilityBP < 1 || *p.AvailabilityBP > 10000) {
		return fmt.Errorf("availability_bp must be 1..10000, got %d", *p.AvailabilityBP)
	}
	if p.P99Ms != nil && *p.P99Ms <= 0 {
		return fmt.Errorf("p99_ms must be positive, got %d", *p.P99Ms)
	}
	if p.ErrorBP != nil && (*p.ErrorBP < 0 || *p.ErrorBP > 10000) {
		return fmt.Errorf("error_bp must be 0..10000, got %d", *p.ErrorBP)
	}
	return nil
}

// objective returns the objective the event sets.
func (p slaObjectiveData) objective() slaObjective {
	o := slaTiers[p.Tier]
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

// slaMeasurement is the data of quota_sla.measured: availability and error
// rate in basis points, p99 latency in milliseconds.
type slaMeasurement struct {
	AvailabilityBP *int   `json:"availability_bp"`
	P99Ms          *int64 `json:"p99_ms"`
	ErrorBP        *int   `json:"error_bp"`
}

// Validate checks that every field is present and in range.
func (p slaMeasurement) Validate() error {
	if p.AvailabilityBP == nil || p.P99Ms == nil || p.ErrorBP == nil {
		return errors.New("measured needs availability_bp, p99_ms and error_bp")
	}
	if *p.AvailabilityBP < 0 || *p.AvailabilityBP > 10000 {
		return fmt.Errorf("availability_bp must be 0..10000, got %d", *p.AvailabilityBP)
	}
	if *p.P99Ms < 0 {
		return fmt.Errorf("p99_ms must not be negative, got %d", *p.P99Ms)
	}
	if *p.ErrorBP < 0 || *p.ErrorBP > 10000 {
		return fmt.Errorf("error_bp must be 0..10000, got %d", *p.ErrorBP)
	}
	return nil
}

// slaData is what the SLA instance keeps.
type slaData struct {
	Objective slaObjective `json:"objective"`
	// Measured is the last measurement; Missed and AtRisk name the
	// objectives it missed or came close to.
	Measured *slaReading `json:"measured,omitempty"`
	Missed   []string    `json:"missed,omitempty"`
	AtRisk   []string    `json:"at_risk,omitempty"`
	// CreditPeriod is the billing period of CreditedBP, the credit issued
	// for it so far.
	CreditPeriod string `json:"credit_period,omitempty"`
	CreditedBP   int    `json:"credited_bp,omitempty"`
}

// slaReading is a stored measurement.
type slaReading struct {
	AvailabilityBP int   `json:"availability_bp"`
	P99Ms          int64 `json:"p99_ms"`
	ErrorBP        int   `json:"error_bp"`
}

// slaCreditData is the data of the billing.credit_issued cascade.
type slaCreditData struct {
	BasisPoints int `json:"basis_points"`
}

// quotaMachine returns the quota_sla machine. Each metric
// is an instance whose subject is the metric name and whose states are
// within_limits, warning and exceeded; the subject "sla" is the tenant's
// SLA, in meeting, at_risk or breached. Metric events on "sla" and SLA
// events on a metric are rejected with subject_mismatch.
//
// A metric is within_limits while usage × 10000 < limit × warning_bp, in
// warning while usage < limit, exceeded from the limit on. The SLA misses
// an objective when availability is below, or p99 or error rate above it,
// and is at risk when it misses none but one measurement reaches 90% of
// its budget: for availability the downtime 10000 − measured reaches 90%
// of the allowed downtime 10000 − objective; for p99 and errors the
// measurement reaches 90% of the objective. A budget of 0 is never at
// risk. On entering breached the SLA credits the current billing period
// (YYYY-MM of the decision time, UTC) 1000 bp for missed availability plus
// 500 bp per other missed objective, at most 2500 bp per period in total.
// period_reset starts a new period for the SLA too: it returns to meeting
// from any state.
func quotaMachine() *governor.Machine {
	metrics := []governor.State{quotaWithin, quotaWarning, quotaExceeded}
	slas := []governor.State{slaMeeting, slaAtRisk, slaBreached}
	none := []governor.State{governor.StateNone}
	byUsage := "by usage: < limit × warning_bp / 10000 within_limits, < limit warning, else exceeded; " +
		"entering exceeded: actuate tenant.throttle {metric, usage, limit}; leaving it: actuate tenant.unthrottle"
	return &governor.Machine{
		Domain: governor.QuotaSLA,
		States: []governor.State{quotaWithin, quotaWarning, quotaExceeded, slaMeeting, slaAtRisk, slaBreached},
		Transitions: []governor.Transition{
			{
				From: none, On: quotaLimitSet, To: quotaWithin,
				Guard: quotaOnMetric,
				Apply: quotaSetLimit,
				Note:  "metric subjects only; warning_bp defaults to 8000; usage 0",
			},
			{
				From: metrics, On: quotaLimitSet, To: quotaWithin, Alt: []governor.State{quotaWarning, quotaExceeded},
				Guard: quotaOnMetric,
				Apply: quotaSetLimit,
				Note:  "re-evaluates the last usage against the new limit (warning_bp kept unless given), " + byUsage,
			},
			{
				From: metrics, On: quotaUsageReported, To: quotaWithin, Alt: []governor.State{quotaWarning, quotaExceeded},
				Guard: quotaOnMetric,
				Apply: quotaReportUsage,
				Note:  byUsage,
			},
			{
				From: metrics, On: quotaPeriodReset, To: quotaWithin,
				Guard: quotaOnMetric,
				Apply: quotaReset,
				Note:  "usage 0; from exceeded: actuate tenant.unthrottle",
			},
			{
				From: none, On: slaObjectiveSet, To: slaMeeting,
				Guard: quotaOnSLA,
				Apply: slaSetObjective,
				Note:  "subject sla only; tiers enterprise 9999/100/1, professional 9990/500/10, starter 9950/2000/100 (availability_bp/p99_ms/error_bp)",
			},
			{
				From: slas, On: slaMeasured, To: slaMeeting, Alt: []governor.State{slaAtRisk, slaBreached},
				Guard: quotaOnSLA,
				Apply: slaMeasure,
				Note: "breached if any objective is missed, at_risk if a measurement reaches 90% of its budget, else meeting; " +
					"entering breached: → billing.credit_issued {basis_points} (subject YYYY-MM now): 1000 for availability, " +
					"+500 per missed p99 or error objective, at most 2500 per period",
			},
			{
				From: []governor.State{slaBreached}, On: quotaPeriodReset, To: slaMeeting,
				Guard: quotaOnSLA,
				Apply: slaReset,
				Note:  "clears the last measurement",
			},
			{
				From: []governor.State{slaMeeting, slaAtRisk}, On: quotaPeriodReset, To: slaMeeting,
				Guard: quotaOnSLA,
				Apply: slaReset,
				Note:  "clears the last measurement",
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			quotaLimitSet:      {governor.SenderExternal, governor.SenderGovernor},
			quotaUsageReported: {governor.SenderExternal, governor.SenderMonitor},
			quotaPeriodReset:   governor.FromProvider,
			slaObjectiveSet:    governor.FromProvider,
			slaMeasured:        {governor.SenderExternal, governor.SenderMonitor},
		},
		EmitsTo:     []governor.Domain{governor.Billing},
		ActionKinds: []string{quotaThrottle, quotaUnthrottle},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			quotaLimitSet:      governor.Schema[quotaLimitData](),
			quotaUsageReported: governor.Schema[quotaUsageData](),
			slaObjectiveSet:    governor.Schema[slaObjectiveData](),
			slaMeasured:        governor.Schema[slaMeasurement](),
		},
	}
}

// quotaOnMetric refuses metric events addressed to the SLA.
func quotaOnMetric(c *governor.Ctx) error {
	if c.Instance().Subject == slaSubject {
		return governor.Reject("subject_mismatch: %s applies to metric subjects, not %q", c.Event().Name, slaSubject)
	}
	return nil
}

// quotaOnSLA refuses SLA events addressed to a metric.
func quotaOnSLA(c *governor.Ctx) error {
	if s := c.Instance().Subject; s != slaSubject {
		return governor.Reject("subject_mismatch: %s applies to subject %q, not %q", c.Event().Name, slaSubject, s)
	}
	return nil
}

// quotaLevel returns the state of usage against limit and warning_bp.
func quotaLevel(d quotaData) governor.State {
	switch {
	case cmpMul128(d.Usage, 10000, d.Limit, int64(d.WarningBP)) < 0:
		return quotaWithin
	case d.Usage < d.Limit:
		return quotaWarning
	}
	return quotaExceeded
}

// quotaMove goes to the state d's usage calls for, throttling on entering
// exceeded and unthrottling on leaving it.
func quotaMove(c *governor.Ctx, d quotaData) error {
	from, to := c.Instance().State, quotaLevel(d)
	c.Goto(to)
	if err := c.Store(d); err != nil {
		return err
	}
	a := quotaAction{Metric: c.Instance().Subject, Usage: d.Usage, Limit: d.Limit}
	switch {
	case to == quotaExceeded && from != quotaExceeded:
		return c.Actuate(quotaThrottle, a)
	case from == quotaExceeded && to != quotaExceeded:
		return c.Actuate(quotaUnthrottle, a)
	}
	return nil
}

// quotaSetLimit records a limit and re-evaluates the last usage.
func quotaSetLimit(c *governor.Ctx) error {
	var p quotaLimitData
	if err := c.Payload(&p); err != nil {
		return err
	}
	d := quotaData{WarningBP: quotaDefaultWarningBP}
	if err := c.Load(&d); err != nil {
		return err
	}
	d.Limit = p.Limit
	if p.WarningBP != nil {
		d.WarningBP = *p.WarningBP
	}
	return quotaMove(c, d)
}

// quotaReportUsage records the usage and re-evaluates it.
func quotaReportUsage(c *governor.Ctx) error {
	var p quotaUsageData
	if err := c.Payload(&p); err != nil {
		return err
	}
	var d quotaData
	if err := c.Load(&d); err != nil {
		return err
	}
	d.Usage = *p.Usage
	return quotaMove(c, d)
}

// quotaReset starts a new period with usage 0.
func quotaReset(c *governor.Ctx) error {
	var d quotaData
	if err := c.Load(&d); err != nil {
		return err
	}
	d.Usage = 0
	return quotaMove(c, d)
}

// slaSetObjective records the SLA's objective.
func slaSetObjective(c *governor.Ctx) error {
	var p slaObjectiveData
	if err := c.Payload(&p); err != nil {
		return err
	}
	return c.Store(slaData{Objective: p.objective()})
}

// slaMeasure grades a measurement and credits the period on a breach.
func slaMeasure(c *governor.Ctx) error {
	var p slaMeasurement
	if err := c.Payload(&p); err != nil {
		return err
	}
	var d slaData
	if err := c.Load(&d); err != nil {
		return err
	}
	m := slaReading{AvailabilityBP: *p.AvailabilityBP, P99Ms: *p.P99Ms, ErrorBP: *p.ErrorBP}
	d.Measured = &m
	d.Missed, d.AtRisk = slaAssess(d.Objective, m)
	to := slaMeeting
	switch {
	case len(d.Missed) > 0:
		to = slaBreached
	case len(d.AtRisk) > 0:
		to = slaAtRisk
	}
	c.Goto(to)
	if to != slaBreached || c.Instance().State == slaBreached {
		return c.Store(d)
	}
	period := c.Now().UTC().Format("2006-01")
	if d.CreditPeriod != period {
		d.CreditPeriod, d.CreditedBP = period, 0
	}
	credit := min(slaCredit(d.Missed), slaCreditCap-d.CreditedBP)
	if credit <= 0 {
		return c.Store(d)
	}
	d.CreditedBP += credit
	if err := c.Store(d); err != nil {
		return err
	}
	return c.Emit(governor.Billing, "credit_issued", period, slaCreditData{BasisPoints: credit})
}

// slaAssess names the objectives m misses and those it is at risk of
// missing, in the order availability, p99, errors.
func slaAssess(o slaObjective, m slaReading) (missed, atRisk []string) {
	// Availability: compare downtime with the allowed downtime.
	down, budget := int64(10000-m.AvailabilityBP), int64(10000-o.AvailabilityBP)
	switch {
	case down > budget:
		missed = append(missed, "availability")
	case budget > 0 && cmpMul128(down, 100, budget, slaRiskPct) >= 0:
		atRisk = append(atRisk, "availability")
	}
	for _, x := range []struct {
		name          string
		value, budget int64
	}{
		{"p99", m.P99Ms, o.P99Ms},
		{"errors", int64(m.ErrorBP), int64(o.ErrorBP)},
	} {
		switch {
		case x.value > x.budget:
			missed = append(missed, x.name)
		case x.budget > 0 && cmpMul128(x.value, 100, x.budget, slaRiskPct) >= 0:
			atRisk = append(atRisk, x.name)
		}
	}
	return missed, atRisk
}

// slaCredit is the credit, in basis points, for the missed objectives,
// capped at slaCreditCap.
func slaCredit(missed []string) int {
	bp := 0
	for _, name := range missed {
		if name == "availability" {
			bp += slaCreditAvailability
		} else {
			bp += slaCreditOther
		}
	}
	return min(bp, slaCreditCap)
}

// slaReset starts a new period: the SLA meets its objective until the
// next measurement.
func slaReset(c *governor.Ctx) error {
	var d slaData
	if err := c.Load(&d); err != nil {
		return err
	}
	d.Measured, d.Missed, d.AtRisk = nil, nil, nil
	return c.Store(d)
}
