package quota

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/machinetest"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

// testMetric is the metric subject of the quota cases.
const testMetric = "api_calls"

// limitSet is the event the entitlement governor sets a metric's limit
// with.
var limitSet = messages.QuotaLimitSet.Name

// metricJSON renders metric data.
func metricJSON(limit int64, warningBP int, usage int64) string {
	return fmt.Sprintf(`{"limit":%d,"warning_bp":%d,"usage":%d}`, limit, warningBP, usage)
}

// actionJSON renders the data of a throttle action.
func actionJSON(usage, limit int64) string {
	return fmt.Sprintf(`{"metric":%q,"usage":%d,"limit":%d}`, testMetric, usage, limit)
}

// professionalJSON is the objective of the professional tier as stored.
const professionalJSON = `"objective":{"tier":"professional","availability_bp":9990,"p99_ms":500,"error_bp":10}`

// slaJSON renders SLA data with the professional objective and extra
// fields.
func slaJSON(fields string) string {
	if fields == "" {
		return "{" + professionalJSON + "}"
	}
	return "{" + professionalJSON + "," + fields + "}"
}

// measuredJSON renders a measured payload.
func measuredJSON(avail, p99, errs int) string {
	return fmt.Sprintf(`{"availability_bp":%d,"p99_ms":%d,"error_bp":%d}`, avail, p99, errs)
}

func TestQuotaMachineValidate(t *testing.T) {
	if err := Machine().Validate(); err != nil {
		t.Fatalf("Machine().Validate() = %v, want nil", err)
	}
}

// throttle is the expected throttle action of the test metric.
func throttle(usage, limit int64) machinetest.Emit {
	return machinetest.Action(Throttle.Kind, testMetric, actionJSON(usage, limit))
}

// unthrottle is the expected unthrottle action of the test metric.
func unthrottle(usage, limit int64) machinetest.Emit {
	return machinetest.Action(Unthrottle.Kind, testMetric, actionJSON(usage, limit))
}

// creditIssued is the expected credit of bp basis points for the period
// of machinetest.RowNow.
func creditIssued(bp int) machinetest.Emit {
	return machinetest.Cascade(governor.Billing, "credit_issued", "2026-11", fmt.Sprintf(`{"basis_points":%d}`, bp))
}

// decideCases are the decisions of every row, accepted and rejected.
func decideCases() []machinetest.Row {
	return []machinetest.Row{
		// — → within_limits: limit_set
		{
			Name: "first limit", State: governor.StateNone, Event: limitSet,
			Payload: `{"limit":100}`, To: Within, WantData: metricJSON(100, 8000, 0),
		},
		{
			Name: "first limit with a warning threshold", State: governor.StateNone, Event: limitSet,
			Payload: `{"limit":1,"warning_bp":10000}`, To: Within, WantData: metricJSON(1, 10000, 0),
		},
		{
			Name: "limit on the sla subject", Subject: SLASubject, State: governor.StateNone, Event: limitSet,
			Payload: `{"limit":100}`, Reject: "subject_mismatch",
		},
		// any → re-evaluated: limit_set
		{
			Name: "limit lowered below usage", State: Within, Data: metricJSON(1000, 8000, 500),
			Event: limitSet, Payload: `{"limit":400}`,
			To: Exceeded, WantData: metricJSON(400, 8000, 500),
			Emits: []machinetest.Emit{throttle(500, 400)},
		},
		{
			Name: "limit raised out of exceeded", State: Exceeded, Data: metricJSON(400, 8000, 500),
			Event: limitSet, Payload: `{"limit":1000}`,
			To: Within, WantData: metricJSON(1000, 8000, 500),
			Emits: []machinetest.Emit{unthrottle(500, 1000)},
		},
		{
			Name: "limit keeps the warning threshold", State: Warning, Data: metricJSON(100, 5000, 60),
			Event: limitSet, Payload: `{"limit":110}`,
			To: Warning, WantData: metricJSON(110, 5000, 60),
		},
		{
			Name: "limit with a new warning threshold", State: Warning, Data: metricJSON(100, 5000, 60),
			Event: limitSet, Payload: `{"limit":100,"warning_bp":9000}`,
			To: Within, WantData: metricJSON(100, 9000, 60),
		},
		{
			Name: "limit unchanged while exceeded", State: Exceeded, Data: metricJSON(100, 8000, 120),
			Event: limitSet, Payload: `{"limit":100}`,
			To: Exceeded, WantData: metricJSON(100, 8000, 120),
		},
		// within_limits, warning, exceeded: usage_reported
		{
			Name: "usage just below warning", State: Within, Data: metricJSON(100, 8000, 0),
			Event: UsageReported, Payload: `{"usage":79}`,
			To: Within, WantData: metricJSON(100, 8000, 79),
		},
		{
			Name: "usage at warning", State: Within, Data: metricJSON(100, 8000, 79),
			Event: UsageReported, Payload: `{"usage":80}`,
			To: Warning, WantData: metricJSON(100, 8000, 80),
		},
		{
			Name: "usage just below the limit", State: Warning, Data: metricJSON(100, 8000, 80),
			Event: UsageReported, Payload: `{"usage":99}`,
			To: Warning, WantData: metricJSON(100, 8000, 99),
		},
		{
			Name: "usage at the limit", State: Warning, Data: metricJSON(100, 8000, 99),
			Event: UsageReported, Payload: `{"usage":100}`,
			To: Exceeded, WantData: metricJSON(100, 8000, 100),
			Emits: []machinetest.Emit{throttle(100, 100)},
		},
		{
			Name: "usage jumps past the limit", State: Within, Data: metricJSON(100, 8000, 0),
			Event: UsageReported, Payload: `{"usage":250}`,
			To: Exceeded, WantData: metricJSON(100, 8000, 250),
			Emits: []machinetest.Emit{throttle(250, 100)},
		},
		{
			Name: "usage stays exceeded", State: Exceeded, Data: metricJSON(100, 8000, 100),
			Event: UsageReported, Payload: `{"usage":150}`,
			To: Exceeded, WantData: metricJSON(100, 8000, 150),
		},
		{
			Name: "usage falls to warning", State: Exceeded, Data: metricJSON(100, 8000, 150),
			Event: UsageReported, Payload: `{"usage":99}`,
			To: Warning, WantData: metricJSON(100, 8000, 99),
			Emits: []machinetest.Emit{unthrottle(99, 100)},
		},
		{
			Name: "usage falls below warning", State: Warning, Data: metricJSON(100, 8000, 90),
			Event: UsageReported, Payload: `{"usage":0}`,
			To: Within, WantData: metricJSON(100, 8000, 0),
		},
		// any → within_limits: period_reset
		{
			Name: "reset within limits", State: Within, Data: metricJSON(100, 8000, 10),
			Event: PeriodReset, To: Within, WantData: metricJSON(100, 8000, 0),
		},
		{
			Name: "reset from warning", State: Warning, Data: metricJSON(100, 8000, 90),
			Event: PeriodReset, To: Within, WantData: metricJSON(100, 8000, 0),
		},
		{
			Name: "reset from exceeded", State: Exceeded, Data: metricJSON(100, 8000, 130),
			Event: PeriodReset, To: Within, WantData: metricJSON(100, 8000, 0),
			Emits: []machinetest.Emit{unthrottle(0, 100)},
		},
		// — → meeting: objective_set
		{
			Name: "objective by tier", Subject: SLASubject, State: governor.StateNone, Event: ObjectiveSet,
			Payload: `{"tier":"professional"}`, To: Meeting, WantData: slaJSON(""),
		},
		{
			Name: "explicit objective", Subject: SLASubject, State: governor.StateNone, Event: ObjectiveSet,
			Payload: `{"availability_bp":9900,"p99_ms":800,"error_bp":0}`, To: Meeting,
			WantData: `{"objective":{"availability_bp":9900,"p99_ms":800,"error_bp":0}}`,
		},
		{
			Name: "tier with an override", Subject: SLASubject, State: governor.StateNone, Event: ObjectiveSet,
			Payload: `{"tier":"enterprise","p99_ms":250}`, To: Meeting,
			WantData: `{"objective":{"tier":"enterprise","availability_bp":9999,"p99_ms":250,"error_bp":1}}`,
		},
		{
			Name: "objective on a metric", State: governor.StateNone, Event: ObjectiveSet,
			Payload: `{"tier":"starter"}`, Reject: "subject_mismatch",
		},
		// meeting, at_risk, breached: measured
		{
			Name: "measured well within", Subject: SLASubject, State: Meeting, Data: slaJSON(""),
			Event: Measured, Payload: measuredJSON(9999, 200, 2),
			To:       Meeting,
			WantData: slaJSON(`"measured":{"availability_bp":9999,"p99_ms":200,"error_bp":2}`),
		},
		{
			Name: "measured close to the latency objective", Subject: SLASubject, State: Meeting, Data: slaJSON(""),
			Event: Measured, Payload: measuredJSON(9999, 450, 2),
			To:       AtRisk,
			WantData: slaJSON(`"measured":{"availability_bp":9999,"p99_ms":450,"error_bp":2},"at_risk":["p99"]`),
		},
		{
			Name: "at risk recovers", Subject: SLASubject, State: AtRisk,
			Data:  slaJSON(`"measured":{"availability_bp":9999,"p99_ms":450,"error_bp":2},"at_risk":["p99"]`),
			Event: Measured, Payload: measuredJSON(10000, 100, 0),
			To:       Meeting,
			WantData: slaJSON(`"measured":{"availability_bp":10000,"p99_ms":100,"error_bp":0}`),
		},
		{
			Name: "availability missed", Subject: SLASubject, State: Meeting, Data: slaJSON(""),
			Event: Measured, Payload: measuredJSON(9989, 100, 0),
			To: Breached,
			WantData: slaJSON(`"measured":{"availability_bp":9989,"p99_ms":100,"error_bp":0},"missed":["availability"],
				"credit_period":"2026-11","credited_bp":1000`),
			Emits: []machinetest.Emit{creditIssued(1000)},
		},
		{
			Name: "everything missed from at risk", Subject: SLASubject, State: AtRisk,
			Data:  slaJSON(`"at_risk":["p99"]`),
			Event: Measured, Payload: measuredJSON(9000, 501, 11),
			To: Breached,
			WantData: slaJSON(`"measured":{"availability_bp":9000,"p99_ms":501,"error_bp":11},"missed":["availability","p99","errors"],
				"credit_period":"2026-11","credited_bp":2000`),
			Emits: []machinetest.Emit{creditIssued(2000)},
		},
		{
			Name: "latency missed, availability at risk", Subject: SLASubject, State: Meeting, Data: slaJSON(""),
			Event: Measured, Payload: measuredJSON(9991, 501, 0),
			To: Breached,
			WantData: slaJSON(`"measured":{"availability_bp":9991,"p99_ms":501,"error_bp":0},"missed":["p99"],"at_risk":["availability"],
				"credit_period":"2026-11","credited_bp":500`),
			Emits: []machinetest.Emit{creditIssued(500)},
		},
		{
			Name: "breach credit capped for the period", Subject: SLASubject, State: Meeting,
			Data:  slaJSON(`"credit_period":"2026-11","credited_bp":2000`),
			Event: Measured, Payload: measuredJSON(9000, 100, 0),
			To: Breached,
			WantData: slaJSON(`"measured":{"availability_bp":9000,"p99_ms":100,"error_bp":0},"missed":["availability"],
				"credit_period":"2026-11","credited_bp":2500`),
			Emits: []machinetest.Emit{creditIssued(500)},
		},
		{
			Name: "no credit left for the period", Subject: SLASubject, State: AtRisk,
			Data:  slaJSON(`"credit_period":"2026-11","credited_bp":2500`),
			Event: Measured, Payload: measuredJSON(9000, 100, 0),
			To: Breached,
			WantData: slaJSON(`"measured":{"availability_bp":9000,"p99_ms":100,"error_bp":0},"missed":["availability"],
				"credit_period":"2026-11","credited_bp":2500`),
		},
		{
			Name: "a new period has credit again", Subject: SLASubject, State: Meeting,
			Data:  slaJSON(`"credit_period":"2026-10","credited_bp":2500`),
			Event: Measured, Payload: measuredJSON(10000, 100, 12),
			To: Breached,
			WantData: slaJSON(`"measured":{"availability_bp":10000,"p99_ms":100,"error_bp":12},"missed":["errors"],
				"credit_period":"2026-11","credited_bp":500`),
			Emits: []machinetest.Emit{creditIssued(500)},
		},
		{
			Name: "credit period is the month of the decision in UTC", Subject: SLASubject, State: Meeting,
			Data:  slaJSON(""),
			Now:   time.Date(2026, 12, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600)),
			Event: Measured, Payload: measuredJSON(9000, 100, 0),
			To: Breached,
			WantData: slaJSON(`"measured":{"availability_bp":9000,"p99_ms":100,"error_bp":0},"missed":["availability"],
				"credit_period":"2026-11","credited_bp":1000`),
			Emits: []machinetest.Emit{creditIssued(1000)},
		},
		{
			Name: "still breached credits nothing more", Subject: SLASubject, State: Breached,
			Data:  slaJSON(`"missed":["availability"],"credit_period":"2026-11","credited_bp":1000`),
			Event: Measured, Payload: measuredJSON(9000, 900, 0),
			To: Breached,
			WantData: slaJSON(`"measured":{"availability_bp":9000,"p99_ms":900,"error_bp":0},"missed":["availability","p99"],
				"credit_period":"2026-11","credited_bp":1000`),
		},
		{
			Name: "breached recovers", Subject: SLASubject, State: Breached,
			Data:  slaJSON(`"missed":["availability"],"credit_period":"2026-11","credited_bp":1000`),
			Event: Measured, Payload: measuredJSON(9995, 100, 0),
			To: Meeting,
			WantData: slaJSON(`"measured":{"availability_bp":9995,"p99_ms":100,"error_bp":0},
				"credit_period":"2026-11","credited_bp":1000`),
		},
		// breached → meeting: period_reset (and meeting, at_risk)
		{
			Name: "reset after a breach", Subject: SLASubject, State: Breached,
			Data:  slaJSON(`"measured":{"availability_bp":9000,"p99_ms":100,"error_bp":0},"missed":["availability"],"credit_period":"2026-11","credited_bp":1000`),
			Event: PeriodReset, To: Meeting,
			WantData: slaJSON(`"credit_period":"2026-11","credited_bp":1000`),
		},
		{
			Name: "reset while at risk", Subject: SLASubject, State: AtRisk,
			Data:  slaJSON(`"measured":{"availability_bp":9999,"p99_ms":450,"error_bp":2},"at_risk":["p99"]`),
			Event: PeriodReset, To: Meeting, WantData: slaJSON(""),
		},
		{
			Name: "reset while meeting", Subject: SLASubject, State: Meeting, Data: slaJSON(""),
			Event: PeriodReset, To: Meeting,
		},
		// events of the other kind of subject
		{
			Name: "usage on the sla", Subject: SLASubject, State: Meeting, Data: slaJSON(""),
			Event: UsageReported, Payload: `{"usage":1}`, Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "limit on the sla", Subject: SLASubject, State: Breached, Data: slaJSON(""),
			Event: limitSet, Payload: `{"limit":1}`, Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "measured on a metric", State: Within, Data: metricJSON(100, 8000, 0),
			Event: Measured, Payload: measuredJSON(10000, 1, 0), Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "objective set twice", Subject: SLASubject, State: Meeting, Data: slaJSON(""),
			Event: ObjectiveSet, Payload: `{"tier":"starter"}`, Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "usage before any limit", State: governor.StateNone,
			Event: UsageReported, Payload: `{"usage":1}`, Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "period reset of no instance", State: governor.StateNone,
			Event: PeriodReset, Reject: string(governor.ReasonNoTransition),
		},
	}
}

func TestQuotaDecide(t *testing.T) {
	m, cases := Machine(), decideCases()
	machinetest.RunRows(t, m, testMetric, cases)
	machinetest.Coverage(t, m, cases)
}

// TestQuotaSubjectGuards checks that a metric instance in an SLA state, or
// the SLA in a metric state, which no accepted event can produce, still
// refuses the other kind's events.
func TestQuotaSubjectGuards(t *testing.T) {
	machinetest.RunRows(t, Machine(), testMetric, guardCases())
}

// guardCases are instances in a state of the other kind of subject.
func guardCases() []machinetest.Row {
	return []machinetest.Row{
		{
			Name: "sla in a metric state", Subject: SLASubject, State: Warning, Data: metricJSON(1, 1, 1),
			Event: UsageReported, Payload: `{"usage":1}`, Reject: "subject_mismatch",
		},
		{
			Name: "metric in an sla state", State: Breached, Data: slaJSON(""),
			Event: PeriodReset, Reject: "subject_mismatch",
		},
		{
			Name: "metric measured", State: Meeting, Data: slaJSON(""),
			Event: Measured, Payload: measuredJSON(1, 1, 1), Reject: "subject_mismatch",
		},
	}
}

func TestQuotaThresholds(t *testing.T) {
	tests := []struct {
		limit     int64
		warningBP int
		usage     int64
		want      governor.State
	}{
		{100, 8000, 0, Within},
		{100, 8000, 79, Within},
		{100, 8000, 80, Warning},
		{100, 8000, 99, Warning},
		{100, 8000, 100, Exceeded},
		{100, 8000, 101, Exceeded},
		{7, 8000, 5, Within}, // warning at 5.6
		{7, 8000, 6, Warning},
		{1, 8000, 0, Within},
		{1, 8000, 1, Exceeded},
		{10, 10000, 9, Within}, // no warning band
		{10, 10000, 10, Exceeded},
		{10000, 1, 0, Within},
		{10000, 1, 1, Warning},
		{math.MaxInt64, 8000, math.MaxInt64 - 1, Warning},
		{math.MaxInt64, 8000, math.MaxInt64 / 10 * 8, Within},
		{math.MaxInt64, 8000, math.MaxInt64, Exceeded},
	}
	for _, tt := range tests {
		d := metricData{Limit: tt.limit, WarningBP: tt.warningBP, Usage: tt.usage}
		if got := level(d); got != tt.want {
			t.Errorf("level(limit %d, warning_bp %d, usage %d) = %s, want %s", tt.limit, tt.warningBP, tt.usage, got, tt.want)
		}
	}
}

func TestQuotaSLAAssess(t *testing.T) {
	pro := Tiers["professional"] // 9990 / 500 / 10
	ent := Tiers["enterprise"]   // 9999 / 100 / 1
	perfect := Objective{AvailabilityBP: 10000, P99Ms: 100, ErrorBP: 0}
	tests := []struct {
		o             Objective
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
		m := reading{AvailabilityBP: tt.avail, P99Ms: tt.p99, ErrorBP: tt.errs}
		missed, risky := assess(tt.o, m)
		if !slices.Equal(missed, tt.missed) || !slices.Equal(risky, tt.risky) {
			t.Errorf("assess(%+v, %+v) = %v, %v, want %v, %v", tt.o, m, missed, risky, tt.missed, tt.risky)
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
		if got := credit(tt.missed); got != tt.want {
			t.Errorf("credit(%v) = %d, want %d", tt.missed, got, tt.want)
		}
	}
}

func TestQuotaPayloads(t *testing.T) {
	machinetest.RunPayloads(t, Machine(), []machinetest.Payload{
		{Event: limitSet, Payload: `{"limit":1}`, OK: true},
		{Event: limitSet, Payload: `{"limit":1,"warning_bp":1}`, OK: true},
		{Event: limitSet, Payload: `{"limit":1,"warning_bp":10000}`, OK: true},
		{Event: limitSet, Payload: `{"limit":0}`, OK: false},
		{Event: limitSet, Payload: `{}`, OK: false},
		{Event: limitSet, Payload: `{"limit":1,"warning_bp":0}`, OK: false},
		{Event: limitSet, Payload: `{"limit":1,"warning_bp":10001}`, OK: false},
		{Event: limitSet, Payload: `{"limit":1,"warning":0.8}`, OK: false},
		{Event: UsageReported, Payload: `{"usage":0}`, OK: true},
		{Event: UsageReported, Payload: `{}`, OK: false},
		{Event: UsageReported, Payload: `{"usage":-1}`, OK: false},
		{Event: UsageReported, Payload: `{"usage":1.5}`, OK: false},
		{Event: ObjectiveSet, Payload: `{"tier":"enterprise"}`, OK: true},
		{Event: ObjectiveSet, Payload: `{"tier":"starter","error_bp":50}`, OK: true},
		{Event: ObjectiveSet, Payload: `{"availability_bp":9900,"p99_ms":300,"error_bp":0}`, OK: true},
		{Event: ObjectiveSet, Payload: `{"tier":"gold"}`, OK: false},
		{Event: ObjectiveSet, Payload: `{}`, OK: false},
		{Event: ObjectiveSet, Payload: `{"availability_bp":9900,"p99_ms":300}`, OK: false},
		{Event: ObjectiveSet, Payload: `{"availability_bp":0,"p99_ms":300,"error_bp":0}`, OK: false},
		{Event: ObjectiveSet, Payload: `{"availability_bp":9900,"p99_ms":0,"error_bp":0}`, OK: false},
		{Event: ObjectiveSet, Payload: `{"availability_bp":99.9,"p99_ms":300,"error_bp":0}`, OK: false},
		{Event: Measured, Payload: `{"availability_bp":10000,"p99_ms":0,"error_bp":0}`, OK: true},
		{Event: Measured, Payload: `{"availability_bp":10001,"p99_ms":0,"error_bp":0}`, OK: false},
		{Event: Measured, Payload: `{"availability_bp":9999,"p99_ms":-1,"error_bp":0}`, OK: false},
		{Event: Measured, Payload: `{"availability_bp":9999,"p99_ms":1}`, OK: false},
		{Event: Measured, Payload: `{"availability_bp":9999,"p99_ms":1,"error_bp":1,"p50_ms":1}`, OK: false},
	})
}

func BenchmarkQuotaMeasured(b *testing.B) {
	m := Machine()
	in := machinetest.RowInput(m, machinetest.Row{
		Name: "measured", State: Meeting, Data: slaJSON(""),
		Event: Measured, Payload: measuredJSON(9000, 900, 20),
	}, SLASubject)
	for b.Loop() {
		if d, err := m.Decide(in); err != nil || d.To != Breached {
			b.Fatalf("Decide = %s %q, %v", d.To, d.Reason, err)
		}
	}
}

// TestEveryReasonIsRejectedByACase checks that every reason code the
// machine declares is documented and given by at least one case.
func TestEveryReasonIsRejectedByACase(t *testing.T) {
	m := Machine()
	cases := append(decideCases(), guardCases()...)
	for _, r := range m.Reasons {
		t.Run(string(r.Code), func(t *testing.T) {
			if r.Doc == "" {
				t.Errorf("reason %s has no Doc", r.Code)
			}
			for _, c := range cases {
				if c.Reject != "" && governor.CodeOf(c.Reject) == r.Code {
					return
				}
			}
			t.Errorf("no case rejects with %s", r.Code)
		})
	}
}

// TestNotesRenderTheConstants checks that the numbers the generated docs
// show are those the code uses: each expectation is built from the
// constant, so that a number typed into a Note fails once the constant
// changes.
func TestNotesRenderTheConstants(t *testing.T) {
	notes := func() map[governor.EventName]string {
		out := map[governor.EventName]string{}
		for _, tr := range Machine().Transitions {
			out[tr.On] += tr.Note + "\n"
		}
		return out
	}
	got := notes()
	want := map[governor.EventName][]string{
		limitSet: {
			fmt.Sprintf("warning_bp defaults to %d;", DefaultWarningBP),
			fmt.Sprintf("limit × warning_bp / %d %s", messages.MaxBasisPoints, Within),
			fmt.Sprintf("entering %s: %s; leaving it: %s", Exceeded, Throttle.Kind, Unthrottle.Kind),
		},
		UsageReported: {fmt.Sprintf("limit × warning_bp / %d %s", messages.MaxBasisPoints, Within)},
		PeriodReset:   {fmt.Sprintf("from %s: %s", Exceeded, Unthrottle.Kind)},
		ObjectiveSet:  {"subject " + SLASubject + " only"},
		Measured: {
			fmt.Sprintf("reaches %d%% of its budget", RiskPct),
			fmt.Sprintf("%d bp for availability", CreditAvailabilityBP),
			fmt.Sprintf("+%d per missed p99 or error objective", CreditOtherBP),
			fmt.Sprintf("at most %d per period", CreditCapBP),
		},
	}
	for name, o := range Tiers {
		want[ObjectiveSet] = append(want[ObjectiveSet], fmt.Sprintf("%s %d/%d/%d", name, o.AvailabilityBP, o.P99Ms, o.ErrorBP))
	}
	for event, parts := range want {
		for _, part := range parts {
			if !strings.Contains(got[event], part) {
				t.Errorf("notes of %s = %q, want them to contain %q", event, got[event], part)
			}
		}
	}
	if doc := Machine().Reasons[0].Doc; !strings.Contains(doc, strconv.Quote(SLASubject)) {
		t.Errorf("Doc of %s = %q, want it to name %q", ReasonSubjectMismatch, doc, SLASubject)
	}

	// A changed tier changes the docs.
	saved := Tiers["enterprise"]
	t.Cleanup(func() { Tiers["enterprise"] = saved })
	changed := saved
	changed.AvailabilityBP = 9900
	Tiers["enterprise"] = changed
	wantTier := fmt.Sprintf("enterprise %d/%d/%d,", changed.AvailabilityBP, changed.P99Ms, changed.ErrorBP)
	if md := governor.Markdown(Machine()); !strings.Contains(md, wantTier) {
		t.Errorf("Markdown(Machine()) with enterprise at %d does not show %q", changed.AvailabilityBP, wantTier)
	}
}
