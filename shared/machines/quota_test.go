package machines

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// quotaMetric is the metric subject of the quota cases.
const quotaMetric = "api_calls"

// quotaInstance renders metric data.
func quotaInstance(limit int64, warningBP int, usage int64) string {
	return fmt.Sprintf(`{"limit":%d,"warning_bp":%d,"usage":%d}`, limit, warningBP, usage)
}

// quotaAct renders the data of a throttle action.
func quotaAct(usage, limit int64) string {
	return fmt.Sprintf(`{"metric":%q,"usage":%d,"limit":%d}`, quotaMetric, usage, limit)
}

// quotaProfessional is the objective of the professional tier as stored.
const quotaProfessional = `"objective":{"tier":"professional","availability_bp":9990,"p99_ms":500,"error_bp":10}`

// quotaSLAData renders SLA data with the professional objective and extra
// fields.
func quotaSLAData(fields string) string {
	if fields == "" {
		return "{" + quotaProfessional + "}"
	}
	return "{" + quotaProfessional + "," + fields + "}"
}

// quotaMeasure renders a measured payload.
func quotaMeasure(avail, p99, errs int) string {
	return fmt.Sprintf(`{"availability_bp":%d,"p99_ms":%d,"error_bp":%d}`, avail, p99, errs)
}

func TestQuotaMachineValidate(t *testing.T) {
	if err := quotaMachine().Validate(); err != nil {
		t.Fatalf("quotaMachine().Validate() = %v, want nil", err)
	}
}

func TestQuotaDecide(t *testing.T) {
	throttle := func(usage, limit int64) rowEmit {
		return rowAction(quotaThrottle, quotaMetric, quotaAct(usage, limit))
	}
	unthrottle := func(usage, limit int64) rowEmit {
		return rowAction(quotaUnthrottle, quotaMetric, quotaAct(usage, limit))
	}
	credit := func(bp int) rowEmit {
		return rowCascade(governor.Billing, "credit_issued", "2026-11", fmt.Sprintf(`{"basis_points":%d}`, bp))
	}
	cases := []rowCase{
		// — → within_limits: limit_set
		{
			name: "first limit", state: governor.StateNone, event: quotaLimitSet,
			payload: `{"limit":100}`, to: quotaWithin, wantData: quotaInstance(100, 8000, 0),
		},
		{
			name: "first limit with a warning threshold", state: governor.StateNone, event: quotaLimitSet,
			payload: `{"limit":1,"warning_bp":10000}`, to: quotaWithin, wantData: quotaInstance(1, 10000, 0),
		},
		{
			name: "limit on the sla subject", subject: slaSubject, state: governor.StateNone, event: quotaLimitSet,
			payload: `{"limit":100}`, reject: "subject_mismatch",
		},
		// any → re-evaluated: limit_set
		{
			name: "limit lowered below usage", state: quotaWithin, data: quotaInstance(1000, 8000, 500),
			event: quotaLimitSet, payload: `{"limit":400}`,
			to: quotaExceeded, wantData: quotaInstance(400, 8000, 500),
			emits: []rowEmit{throttle(500, 400)},
		},
		{
			name: "limit raised out of exceeded", state: quotaExceeded, data: quotaInstance(400, 8000, 500),
			event: quotaLimitSet, payload: `{"limit":1000}`,
			to: quotaWithin, wantData: quotaInstance(1000, 8000, 500),
			emits: []rowEmit{unthrottle(500, 1000)},
		},
		{
			name: "limit keeps the warning threshold", state: quotaWarning, data: quotaInstance(100, 5000, 60),
			event: quotaLimitSet, payload: `{"limit":110}`,
			to: quotaWarning, wantData: quotaInstance(110, 5000, 60),
		},
		{
			name: "limit with a new warning threshold", state: quotaWarning, data: quotaInstance(100, 5000, 60),
			event: quotaLimitSet, payload: `{"limit":100,"warning_bp":9000}`,
			to: quotaWithin, wantData: quotaInstance(100, 9000, 60),
		},
		{
			name: "limit unchanged while exceeded", state: quotaExceeded, data: quotaInstance(100, 8000, 120),
			event: quotaLimitSet, payload: `{"limit":100}`,
			to: quotaExceeded, wantData: quotaInstance(100, 8000, 120),
		},
		// within_limits, warning, exceeded: usage_reported
		{
			name: "usage just below warning", state: quotaWithin, data: quotaInstance(100, 8000, 0),
			event: quotaUsageReported, payload: `{"usage":79}`,
			to: quotaWithin, wantData: quotaInstance(100, 8000, 79),
		},
		{
			name: "usage at warning", state: quotaWithin, data: quotaInstance(100, 8000, 79),
			event: quotaUsageReported, payload: `{"usage":80}`,
			to: quotaWarning, wantData: quotaInstance(100, 8000, 80),
		},
		{
			name: "usage just below the limit", state: quotaWarning, data: quotaInstance(100, 8000, 80),
			event: quotaUsageReported, payload: `{"usage":99}`,
			to: quotaWarning, wantData: quotaInstance(100, 8000, 99),
		},
		{
			name: "usage at the limit", state: quotaWarning, data: quotaInstance(100, 8000, 99),
			event: quotaUsageReported, payload: `{"usage":100}`,
			to: quotaExceeded, wantData: quotaInstance(100, 8000, 100),
			emits: []rowEmit{throttle(100, 100)},
		},
		{
			name: "usage jumps past the limit", state: quotaWithin, data: quotaInstance(100, 8000, 0),
			event: quotaUsageReported, payload: `{"usage":250}`,
			to: quotaExceeded, wantData: quotaInstance(100, 8000, 250),
			emits: []rowEmit{throttle(250, 100)},
		},
		{
			name: "usage stays exceeded", state: quotaExceeded, data: quotaInstance(100, 8000, 100),
			event: quotaUsageReported, payload: `{"usage":150}`,
			to: quotaExceeded, wantData: quotaInstance(100, 8000, 150),
		},
		{
			name: "usage falls to warning", state: quotaExceeded, data: quotaInstance(100, 8000, 150),
			event: quotaUsageReported, payload: `{"usage":99}`,
			to: quotaWarning, wantData: quotaInstance(100, 8000, 99),
			emits: []rowEmit{unthrottle(99, 100)},
		},
		{
			name: "usage falls below warning", state: quotaWarning, data: quotaInstance(100, 8000, 90),
			event: quotaUsageReported, payload: `{"usage":0}`,
			to: quotaWithin, wantData: quotaInstance(100, 8000, 0),
		},
		// any → within_limits: period_reset
		{
			name: "reset within limits", state: quotaWithin, data: quotaInstance(100, 8000, 10),
			event: quotaPeriodReset, to: quotaWithin, wantData: quotaInstance(100, 8000, 0),
		},
		{
			name: "reset from warning", state: quotaWarning, data: quotaInstance(100, 8000, 90),
			event: quotaPeriodReset, to: quotaWithin, wantData: quotaInstance(100, 8000, 0),
		},
		{
			name: "reset from exceeded", state: quotaExceeded, data: quotaInstance(100, 8000, 130),
			event: quotaPeriodReset, to: quotaWithin, wantData: quotaInstance(100, 8000, 0),
			emits: []rowEmit{unthrottle(0, 100)},
		},
		// — → meeting: objective_set
		{
			name: "objective by tier", subject: slaSubject, state: governor.StateNone, event: slaObjectiveSet,
			payload: `{"tier":"professional"}`, to: slaMeeting, wantData: quotaSLAData(""),
		},
		{
			name: "explicit objective", subject: slaSubject, state: governor.StateNone, event: slaObjectiveSet,
			payload: `{"availability_bp":9900,"p99_ms":800,"error_bp":0}`, to: slaMeeting,
			wantData: `{"objective":{"availability_bp":9900,"p99_ms":800,"error_bp":0}}`,
		},
		{
			name: "tier with an override", subject: slaSubject, state: governor.StateNone, event: slaObjectiveSet,
			payload: `{"tier":"enterprise","p99_ms":250}`, to: slaMeeting,
			wantData: `{"objective":{"tier":"enterprise","availability_bp":9999,"p99_ms":250,"error_bp":1}}`,
		},
		{
			name: "objective on a metric", state: governor.StateNone, event: slaObjectiveSet,
			payload: `{"tier":"starter"}`, reject: "subject_mismatch",
		},
		// meeting, at_risk, breached: measured
		{
			name: "measured well within", subject: slaSubject, state: slaMeeting, data: quotaSLAData(""),
			event: slaMeasured, payload: quotaMeasure(9999, 200, 2),
			to:       slaMeeting,
			wantData: quotaSLAData(`"measured":{"availability_bp":9999,"p99_ms":200,"error_bp":2}`),
		},
		{
			name: "measured close to the latency objective", subject: slaSubject, state: slaMeeting, data: quotaSLAData(""),
			event: slaMeasured, payload: quotaMeasure(9999, 450, 2),
			to:       slaAtRisk,
			wantData: quotaSLAData(`"measured":{"availability_bp":9999,"p99_ms":450,"error_bp":2},"at_risk":["p99"]`),
		},
		{
			name: "at risk recovers", subject: slaSubject, state: slaAtRisk,
			data:  quotaSLAData(`"measured":{"availability_bp":9999,"p99_ms":450,"error_bp":2},"at_risk":["p99"]`),
			event: slaMeasured, payload: quotaMeasure(10000, 100, 0),
			to:       slaMeeting,
			wantData: quotaSLAData(`"measured":{"availability_bp":10000,"p99_ms":100,"error_bp":0}`),
		},
		{
			name: "availability missed", subject: slaSubject, state: slaMeeting, data: quotaSLAData(""),
			event: slaMeasured, payload: quotaMeasure(9989, 100, 0),
			to: slaBreached,
			wantData: quotaSLAData(`"measured":{"availability_bp":9989,"p99_ms":100,"error_bp":0},"missed":["availability"],
				"credit_period":"2026-11","credited_bp":1000`),
			emits: []rowEmit{credit(1000)},
		},
		{
			name: "everything missed from at risk", subject: slaSubject, state: slaAtRisk,
			data:  quotaSLAData(`"at_risk":["p99"]`),
			event: slaMeasured, payload: quotaMeasure(9000, 501, 11),
			to: slaBreached,
			wantData: quotaSLAData(`"measured":{"availability_bp":9000,"p99_ms":501,"error_bp":11},"missed":["availability","p99","errors"],
				"credit_period":"2026-11","credited_bp":2000`),
			emits: []rowEmit{credit(2000)},
		},
		{
			name: "latency missed, availability at risk", subject: slaSubject, state: slaMeeting, data: quotaSLAData(""),
			event: slaMeasured, payload: quotaMeasure(9991, 501, 0),
			to: slaBreached,
			wantData: quotaSLAData(`"measured":{"availability_bp":9991,"p99_ms":501,"error_bp":0},"missed":["p99"],"at_risk":["availability"],
				"credit_period":"2026-11","credited_bp":500`),
			emits: []rowEmit{credit(500)},
		},
		{
			name: "breach credit capped for the period", subject: slaSubject, state: slaMeeting,
			data:  quotaSLAData(`"credit_period":"2026-11","credited_bp":2000`),
			event: slaMeasured, payload: quotaMeasure(9000, 100, 0),
			to: slaBreached,
			wantData: quotaSLAData(`"measured":{"availability_bp":9000,"p99_ms":100,"error_bp":0},"missed":["availability"],
				"credit_period":"2026-11","credited_bp":2500`),
			emits: []rowEmit{credit(500)},
		},
		{
			name: "no credit left for the period", subject: slaSubject, state: slaAtRisk,
			data:  quotaSLAData(`"credit_period":"2026-11","credited_bp":2500`),
			event: slaMeasured, payload: quotaMeasure(9000, 100, 0),
			to: slaBreached,
			wantData: quotaSLAData(`"measured":{"availability_bp":9000,"p99_ms":100,"error_bp":0},"missed":["availability"],
				"credit_period":"2026-11","credited_bp":2500`),
		},
		{
			name: "a new period has credit again", subject: slaSubject, state: slaMeeting,
			data:  quotaSLAData(`"credit_period":"2026-10","credited_bp":2500`),
			event: slaMeasured, payload: quotaMeasure(10000, 100, 12),
			to: slaBreached,
			wantData: quotaSLAData(`"measured":{"availability_bp":10000,"p99_ms":100,"error_bp":12},"missed":["errors"],
				"credit_period":"2026-11","credited_bp":500`),
			emits: []rowEmit{credit(500)},
		},
		{
			name: "credit period is the month of the decision in UTC", subject: slaSubject, state: slaMeeting,
			data:  quotaSLAData(""),
			now:   time.Date(2026, 12, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600)),
			event: slaMeasured, payload: quotaMeasure(9000, 100, 0),
			to: slaBreached,
			wantData: quotaSLAData(`"measured":{"availability_bp":9000,"p99_ms":100,"error_bp":0},"missed":["availability"],
				"credit_period":"2026-11","credited_bp":1000`),
			emits: []rowEmit{credit(1000)},
		},
		{
			name: "still breached credits nothing more", subject: slaSubject, state: slaBreached,
			data:  quotaSLAData(`"missed":["availability"],"credit_period":"2026-11","credited_bp":1000`),
			event: slaMeasured, payload: quotaMeasure(9000, 900, 0),
			to: slaBreached,
			wantData: quotaSLAData(`"measured":{"availability_bp":9000,"p99_ms":900,"error_bp":0},"missed":["availability","p99"],
				"credit_period":"2026-11","credited_bp":1000`),
		},
		{
			name: "breached recovers", subject: slaSubject, state: slaBreached,
			data:  quotaSLAData(`"missed":["availability"],"credit_period":"2026-11","credited_bp":1000`),
			event: slaMeasured, payload: quotaMeasure(9995, 100, 0),
			to: slaMeeting,
			wantData: quotaSLAData(`"measured":{"availability_bp":9995,"p99_ms":100,"error_bp":0},
				"credit_period":"2026-11","credited_bp":1000`),
		},
		// breached → meeting: period_reset (and meeting, at_risk)
		{
			name: "reset after a breach", subject: slaSubject, state: slaBreached,
			data:  quotaSLAData(`"measured":{"availability_bp":9000,"p99_ms":100,"error_bp":0},"missed":["availability"],"credit_period":"2026-11","credited_bp":1000`),
			event: quotaPeriodReset, to: slaMeeting,
			wantData: quotaSLAData(`"credit_period":"2026-11","credited_bp":1000`),
		},
		{
			name: "reset while at risk", subject: slaSubject, state: slaAtRisk,
			data:  quotaSLAData(`"measured":{"availability_bp":9999,"p99_ms":450,"error_bp":2},"at_risk":["p99"]`),
			event: quotaPeriodReset, to: slaMeeting, wantData: quotaSLAData(""),
		},
		{
			name: "reset while meeting", subject: slaSubject, state: slaMeeting, data: quotaSLAData(""),
			event: quotaPeriodReset, to: slaMeeting,
		},
		// events of the other kind of subject
		{
			name: "usage on the sla", subject: slaSubject, state: slaMeeting, data: quotaSLAData(""),
			event: quotaUsageReported, payload: `{"usage":1}`, reject: governor.ReasonNoTransition,
		},
		{
			name: "limit on the sla", subject: slaSubject, state: slaBreached, data: quotaSLAData(""),
			event: quotaLimitSet, payload: `{"limit":1}`, reject: governor.ReasonNoTransition,
		},
		{
			name: "measured on a metric", state: quotaWithin, data: quotaInstance(100, 8000, 0),
			event: slaMeasured, payload: quotaMeasure(10000, 1, 0), reject: governor.ReasonNoTransition,
		},
		{
			name: "objective set twice", subject: slaSubject, state: slaMeeting, data: quotaSLAData(""),
			event: slaObjectiveSet, payload: `{"tier":"starter"}`, reject: governor.ReasonNoTransition,
		},
		{
			name: "usage before any limit", state: governor.StateNone,
			event: quotaUsageReported, payload: `{"usage":1}`, reject: governor.ReasonNoTransition,
		},
		{
			name: "period reset of no instance", state: governor.StateNone,
			event: quotaPeriodReset, reject: governor.ReasonNoTransition,
		},
	}
	m := quotaMachine()
	runRowCases(t, m, quotaMetric, cases)
	rowCoverage(t, m, cases)
}

// TestQuotaSubjectGuards checks that a metric instance in an SLA state, or
// the SLA in a metric state, which no accepted event can produce, still
// refuses the other kind's events.
func TestQuotaSubjectGuards(t *testing.T) {
	cases := []rowCase{
		{
			name: "sla in a metric state", subject: slaSubject, state: quotaWarning, data: quotaInstance(1, 1, 1),
			event: quotaUsageReported, payload: `{"usage":1}`, reject: "subject_mismatch",
		},
		{
			name: "metric in an sla state", state: slaBreached, data: quotaSLAData(""),
			event: quotaPeriodReset, reject: "subject_mismatch",
		},
		{
			name: "metric measured", state: slaMeeting, data: quotaSLAData(""),
			event: slaMeasured, payload: quotaMeasure(1, 1, 1), reject: "subject_mismatch",
		},
	}
	runRowCases(t, quotaMachine(), quotaMetric, cases)
}

func TestQuotaThresholds(t *testing.T) {
	tests := []struct {
		limit     int64
		warningBP int
		usage     int64
		want      governor.State
	}{
		{100, 8000, 0, quotaWithin},
		{100, 8000, 79, quotaWithin},
		{100, 8000, 80, quotaWarning},
		{100, 8000, 99, quotaWarning},
		{100, 8000, 100, quotaExceeded},
		{100, 8000, 101, quotaExceeded},
		{7, 8000, 5, quotaWithin}, // warning at 5.6
		{7, 8000, 6, quotaWarning},
		{1, 8000, 0, quotaWithin},
		{1, 8000, 1, quotaExceeded},
		{10, 10000, 9, quotaWithin}, // no warning band
		{10, 10000, 10, quotaExceeded},
		{10000, 1, 0, quotaWithin},
		{10000, 1, 1, quotaWarning},
		{math.MaxInt64, 8000, math.MaxInt64 - 1, quotaWarning},
		{math.MaxInt64, 8000, math.MaxInt64 / 10 * 8, quotaWithin},
		{math.MaxInt64, 8000, math.MaxInt64, quotaExceeded},
	}
	for _, tt := range tests {
		d := quotaData{Limit: tt.limit, WarningBP: tt.warningBP, Usage: tt.usage}
		if got := quotaLevel(d); got != tt.want {
			t.Errorf("quotaLevel(limit %d, warning_bp %d, usage %d) = %s, want %s", tt.limit, tt.warningBP, tt.usage, got, tt.want)
		}
	}
}

func TestQuotaSLAAssess(t *testing.T) {
	pro := slaTiers["professional"] // 9990 / 500 / 10
	ent := slaTiers["enterprise"]   // 9999 / 100 / 1
	perfect := slaObjective{AvailabilityBP: 10000, P99Ms: 100, ErrorBP: 0}
	tests := []struct {
		o             slaObjective
		avail         int
		p99           int64
		errs          int
		missed, risky []string
	}{
		{pro, 9992, 449, 8, nil, nil},
		{pro, 9991, 449, 8, nil, []string{"availability"}}, // downtime 9 of 10
		{pro, 9990, 449, 8, nil, []string{"availability"}}, // the whole budget
		{pro, 9989, 449, 8, []string{"availability"}, nil},
		{pro, 9999, 450, 8, nil, []string{"p99"}}, // 90% of 500
		{pro, 9999, 500, 8, nil, []string{"p99"}},
		{pro, 9999, 501, 8, []string{"p99"}, nil},
		{pro, 9999, 100, 9, nil, []string{"errors"}},
		{pro, 9999, 100, 10, nil, []string{"errors"}},
		{pro, 9999, 100, 11, []string{"errors"}, nil},
		{pro, 0, 100000, 10000, []string{"availability", "p99", "errors"}, nil},
		{ent, 9999, 89, 0, nil, []string{"availability"}}, // downtime 1 of 1
		{ent, 10000, 89, 0, nil, nil},
		{ent, 10000, 90, 1, nil, []string{"p99", "errors"}},
		{ent, 10000, 100, 2, []string{"errors"}, []string{"p99"}},
		{perfect, 10000, 10, 0, nil, nil}, // a budget of 0 is never at risk
		{perfect, 9999, 10, 1, []string{"availability", "errors"}, nil},
	}
	for _, tt := range tests {
		m := slaReading{AvailabilityBP: tt.avail, P99Ms: tt.p99, ErrorBP: tt.errs}
		missed, risky := slaAssess(tt.o, m)
		if !slices.Equal(missed, tt.missed) || !slices.Equal(risky, tt.risky) {
			t.Errorf("slaAssess(%+v, %+v) = %v, %v, want %v, %v", tt.o, m, missed, risky, tt.missed, tt.risky)
		}
	}
}

func TestQuotaSLACredit(t *testing.T) {
	tests := []struct {
		missed []string
		want   int
	}{
		{nil, 0},
		{[]string{"availability"}, 1000},
		{[]string{"p99"}, 500},
		{[]string{"errors"}, 500},
		{[]string{"p99", "errors"}, 1000},
		{[]string{"availability", "p99"}, 1500},
		{[]string{"availability", "p99", "errors"}, 2000},
		{[]string{"availability", "p99", "errors", "p99", "errors"}, 2500},
	}
	for _, tt := range tests {
		if got := slaCredit(tt.missed); got != tt.want {
			t.Errorf("slaCredit(%v) = %d, want %d", tt.missed, got, tt.want)
		}
	}
}

func TestQuotaPayloads(t *testing.T) {
	runRowPayloads(t, quotaMachine(), []rowPayloadCase{
		{quotaLimitSet, `{"limit":1}`, true},
		{quotaLimitSet, `{"limit":1,"warning_bp":1}`, true},
		{quotaLimitSet, `{"limit":1,"warning_bp":10000}`, true},
		{quotaLimitSet, `{"limit":0}`, false},
		{quotaLimitSet, `{}`, false},
		{quotaLimitSet, `{"limit":1,"warning_bp":0}`, false},
		{quotaLimitSet, `{"limit":1,"warning_bp":10001}`, false},
		{quotaLimitSet, `{"limit":1,"warning":0.8}`, false},
		{quotaUsageReported, `{"usage":0}`, true},
		{quotaUsageReported, `{}`, false},
		{quotaUsageReported, `{"usage":-1}`, false},
		{quotaUsageReported, `{"usage":1.5}`, false},
		{slaObjectiveSet, `{"tier":"enterprise"}`, true},
		{slaObjectiveSet, `{"tier":"starter","error_bp":50}`, true},
		{slaObjectiveSet, `{"availability_bp":9900,"p99_ms":300,"error_bp":0}`, true},
		{slaObjectiveSet, `{"tier":"gold"}`, false},
		{slaObjectiveSet, `{}`, false},
		{slaObjectiveSet, `{"availability_bp":9900,"p99_ms":300}`, false},
		{slaObjectiveSet, `{"availability_bp":0,"p99_ms":300,"error_bp":0}`, false},
		{slaObjectiveSet, `{"availability_bp":9900,"p99_ms":0,"error_bp":0}`, false},
		{slaObjectiveSet, `{"availability_bp":99.9,"p99_ms":300,"error_bp":0}`, false},
		{slaMeasured, `{"availability_bp":10000,"p99_ms":0,"error_bp":0}`, true},
		{slaMeasured, `{"availability_bp":10001,"p99_ms":0,"error_bp":0}`, false},
		{slaMeasured, `{"availability_bp":9999,"p99_ms":-1,"error_bp":0}`, false},
		{slaMeasured, `{"availability_bp":9999,"p99_ms":1}`, false},
		{slaMeasured, `{"availability_bp":9999,"p99_ms":1,"error_bp":1,"p50_ms":1}`, false},
	})
}

func BenchmarkQuotaMeasured(b *testing.B) {
	m := quotaMachine()
	in := rowInput(m, rowCase{
		name: "measured", state: slaMeeting, data: quotaSLAData(""),
		event: slaMeasured, payload: quotaMeasure(9000, 900, 20),
	}, slaSubject)
	for b.Loop() {
		if d, err := m.Decide(in); err != nil || d.To != slaBreached {
			b.Fatalf("Decide = %s %q, %v", d.To, d.Reason, err)
		}
	}
}
