package machines

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// rowNow is the default decision time of the billing, catalog, quota and
// compliance cases.
var rowNow = time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC)

// rowVersion is the version of every instance a rowCase starts from.
const rowVersion = 4

// rowCase is one decision of the billing, catalog, quota or compliance
// machine: the instance and event before, the expected decision after.
type rowCase struct {
	name    string
	subject string // instance subject; "" means the runner's default
	state   governor.State
	data    string                   // instance data before, JSON
	timers  map[string]time.Duration // timers armed before, by due time − now
	event   governor.EventName
	payload string // event data, JSON; timeouts get the armed timer's id
	stale   bool   // a timeout carries an id that is not armed
	facts   governor.Facts
	now     time.Time // decision time; zero means rowNow

	reject     string                   // if set, the decision is rejected with this reason prefix
	to         governor.State           // target of an accepted decision
	wantData   string                   // instance data after, JSON; "" means unchanged
	wantTimers map[string]time.Duration // timers after, by due time − now
	emits      []rowEmit
}

// rowEmit is an expected emitted message.
type rowEmit struct {
	kind    governor.EmitKind
	typ     string
	subject string
	data    string // JSON; "" means {}
}

// String renders the expectation like rowEmitOf renders a governor.Emit.
func (e rowEmit) String() string {
	data := e.data
	if data == "" {
		data = "{}"
	}
	return fmt.Sprintf("%s %s %s %s", e.kind, e.typ, e.subject, rowCompact(data))
}

// rowEmitOf renders an emitted message for comparison.
func rowEmitOf(e governor.Emit) string {
	return fmt.Sprintf("%s %s %s %s", e.Kind, e.Type, e.Subject, rowCompact(string(e.Data)))
}

// rowCompact re-encodes JSON with sorted keys and no spaces, or returns s
// unchanged if it is not JSON.
func rowCompact(s string) string {
	if strings.TrimSpace(s) == "" {
		s = "{}"
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// rowCascade returns an "event" rowEmit.
func rowCascade(d governor.Domain, name governor.EventName, subject, data string) rowEmit {
	return rowEmit{kind: governor.KindEvent, typ: governor.TypeOf(d, name), subject: subject, data: data}
}

// rowAction returns an "actuate" rowEmit.
func rowAction(kind, subject, data string) rowEmit {
	return rowEmit{kind: governor.KindActuate, typ: kind, subject: subject, data: data}
}

// rowInput builds the decision input of a case.
func rowInput(m *governor.Machine, c rowCase, subject string) governor.Input {
	if c.subject != "" {
		subject = c.subject
	}
	now := c.now
	if now.IsZero() {
		now = rowNow
	}
	key := governor.Key{Tenant: "tenant-1", Domain: m.Domain, Subject: subject}
	inst := governor.Instance{Key: key, State: c.state, UpdatedAt: now.Add(-time.Hour)}
	if c.state != governor.StateNone {
		inst.Version, inst.LastHash = rowVersion, strings.Repeat("cd", 32)
	}
	if c.data != "" {
		inst.Data = json.RawMessage(c.data)
	}
	for name, due := range c.timers {
		if inst.Timers == nil {
			inst.Timers = map[string]governor.Timer{}
		}
		inst.Timers[name] = governor.Timer{Name: name, ID: governor.TimerID(key, name, 2), Due: now.Add(due)}
	}
	payload := c.payload
	if name, ok := strings.CutPrefix(string(c.event), governor.TimeoutPrefix); ok {
		id := inst.Timers[name].ID
		if c.stale || id == "" {
			id = "not-armed"
		}
		payload = fmt.Sprintf(`{"timer_id":%q}`, id)
	}
	ev := governor.Event{
		ID: "ev-" + c.name, Source: "//tests", Type: governor.TypeOf(m.Domain, c.event),
		Domain: m.Domain, Name: c.event, Tenant: key.Tenant, Subject: subject, Time: now,
	}
	if payload != "" {
		ev.Data = json.RawMessage(payload)
	}
	return governor.Input{Instance: inst, Event: ev, Facts: c.facts, Now: now}
}

// rowJSONEqual reports whether a and b hold the same JSON value; empty
// means {}.
func rowJSONEqual(a, b []byte) bool {
	return rowCompact(string(a)) == rowCompact(string(b))
}

// rowTimerOffsets returns the due times of timers relative to now.
func rowTimerOffsets(timers map[string]governor.Timer, now time.Time) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, t := range timers {
		out[name] = t.Due.Sub(now)
	}
	return out
}

// runRowCases decides every case with m and checks the whole decision.
func runRowCases(t *testing.T, m *governor.Machine, subject string, cases []rowCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := rowInput(m, c, subject)
			inst, ev := in.Instance, in.Event
			if err := m.CheckEvent(ev); err != nil {
				t.Fatalf("CheckEvent(%s %s) = %v, want nil", ev.Name, ev.Data, err)
			}
			got, err := m.Decide(in)
			if err != nil {
				t.Fatalf("Decide(%s, %s %s) error %v, want a decision", inst.State, ev.Name, ev.Data, err)
			}
			var emits []string
			for _, e := range got.Emits {
				emits = append(emits, rowEmitOf(e))
				if e.Kind == governor.KindEvent && e.Type != governor.TypeOf(e.Domain, governor.EventName(strings.TrimPrefix(e.Type, "autonomics."+string(e.Domain)+"."))) {
					t.Errorf("emit %s: type does not match domain %s", e.Type, e.Domain)
				}
			}
			if c.reject != "" {
				if got.Outcome != governor.Rejected || !strings.HasPrefix(got.Reason, c.reject) {
					t.Fatalf("Decide(%s, %s %s) = %s %q, want rejected %q", inst.State, ev.Name, ev.Data, got.Outcome, got.Reason, c.reject)
				}
				if got.From != inst.State || got.To != inst.State {
					t.Errorf("Decide(%s, %s) moved %s → %s, want no move", inst.State, ev.Name, got.From, got.To)
				}
				if !bytes.Equal(got.Data, inst.Data) {
					t.Errorf("Decide(%s, %s) data = %s, want unchanged %s", inst.State, ev.Name, got.Data, inst.Data)
				}
				if !reflect.DeepEqual(got.Timers, inst.Timers) {
					t.Errorf("Decide(%s, %s) timers = %v, want unchanged %v", inst.State, ev.Name, got.Timers, inst.Timers)
				}
				if len(got.Emits) != 0 {
					t.Errorf("Decide(%s, %s) emits = %v, want none", inst.State, ev.Name, emits)
				}
				return
			}
			if got.Outcome != governor.Accepted || got.To != c.to {
				t.Fatalf("Decide(%s, %s %s) = %s %s %q, want accepted %s", inst.State, ev.Name, ev.Data, got.Outcome, got.To, got.Reason, c.to)
			}
			want := c.wantData
			if want == "" {
				want = c.data
			}
			if !rowJSONEqual(got.Data, []byte(want)) {
				t.Errorf("Decide(%s, %s) data = %s, want %s", inst.State, ev.Name, rowCompact(string(got.Data)), rowCompact(want))
			}
			gotTimers := rowTimerOffsets(got.Timers, in.Now)
			wantTimers := c.wantTimers
			if wantTimers == nil {
				wantTimers = map[string]time.Duration{}
			}
			if !maps.Equal(gotTimers, wantTimers) {
				t.Errorf("Decide(%s, %s) timers = %v, want %v", inst.State, ev.Name, gotTimers, wantTimers)
			}
			for name, tm := range got.Timers {
				if old, kept := inst.Timers[name]; kept && old == tm {
					continue
				}
				if id := governor.TimerID(inst.Key, name, inst.Version+1); tm.ID != id {
					t.Errorf("Decide(%s, %s) timer %s id = %s, want %s", inst.State, ev.Name, name, tm.ID, id)
				}
			}
			var wantEmits []string
			for _, e := range c.emits {
				wantEmits = append(wantEmits, e.String())
			}
			if !slices.Equal(emits, wantEmits) {
				t.Errorf("Decide(%s, %s) emits =\n  %s\nwant\n  %s", inst.State, ev.Name, strings.Join(emits, "\n  "), strings.Join(wantEmits, "\n  "))
			}
		})
	}
}

// rowCoverage fails unless every (from state, event) pair of m's table is
// accepted by at least one case.
func rowCoverage(t *testing.T, m *governor.Machine, cases []rowCase) {
	t.Helper()
	covered := map[string]bool{}
	for _, c := range cases {
		if c.reject == "" {
			covered[string(c.state)+" "+string(c.event)] = true
		}
	}
	for _, tr := range m.Transitions {
		for _, s := range tr.From {
			if !covered[string(s)+" "+string(tr.On)] {
				t.Errorf("%s: no accepted case for %s in %s", m.Domain, tr.On, s)
			}
		}
	}
}

// rowStep applies an accepted decision to inst, as the store would.
func rowStep(inst governor.Instance, d governor.Decision, now time.Time) governor.Instance {
	inst.State, inst.Data, inst.Timers = d.To, d.Data, d.Timers
	inst.Version++
	inst.UpdatedAt = now
	return inst
}

// rowPayloadCase is one payload validation case.
type rowPayloadCase struct {
	event   governor.EventName
	payload string
	ok      bool
}

// runRowPayloads checks m.CheckEvent against each payload case.
func runRowPayloads(t *testing.T, m *governor.Machine, cases []rowPayloadCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %s", c.event, c.payload), func(t *testing.T) {
			ev := governor.Event{
				ID: "p", Source: "//tests", Type: governor.TypeOf(m.Domain, c.event), Domain: m.Domain,
				Name: c.event, Tenant: "tenant-1", Subject: "s", Data: json.RawMessage(c.payload),
			}
			err := m.CheckEvent(ev)
			if c.ok && err != nil {
				t.Errorf("CheckEvent(%s %s) = %v, want nil", c.event, c.payload, err)
			}
			if !c.ok && fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("CheckEvent(%s %s) = %v, want an invalid error", c.event, c.payload, err)
			}
		})
	}
}

// billFacts is the catalog billing prices with.
var billFacts = governor.Facts{Plans: map[string]governor.Plan{
	"pro": {
		SKU: "pro", State: "published", Currency: "EUR",
		UnitPrices: map[string]int64{"api_calls": 2, "storage_gb": 150},
	},
	"big": {
		SKU: "big", State: "published", Currency: "EUR",
		UnitPrices: map[string]int64{"api_calls": math.MaxInt64 / 2},
	},
	"dollar": {SKU: "dollar", State: "published", Currency: "USD", UnitPrices: map[string]int64{"api_calls": 3}},
}}

// billInvoiced is the data of a period invoiced 1000 EUR on plan pro.
const billInvoicedData = `{"plan":"pro","currency":"EUR","meters":{"api_calls":500},
	"invoice":{"plan":"pro","currency":"EUR","lines":{"api_calls":1000},"subtotal":1000,"credit":0,"amount":1000}}`

// billWith returns billInvoicedData with extra top-level fields.
func billWith(fields string) string {
	return strings.TrimSuffix(billInvoicedData, "}") + "," + fields + "}"
}

func TestBillingMachineValidate(t *testing.T) {
	m := billingMachine()
	if err := m.Validate(); err != nil {
		t.Fatalf("billingMachine().Validate() = %v, want nil", err)
	}
	for n := 1; n <= billRetryAttempts; n++ {
		if d := m.Timers[billRetryKey(n)]; d <= 0 {
			t.Errorf("billingMachine().Timers[%q] = %v, want a duration", billRetryKey(n), d)
		}
	}
}

func TestBillingDecide(t *testing.T) {
	const period = "2026-10"
	subPaymentFailed := rowCascade(governor.Subscription, "payment_failed", "*", "")
	subPaymentSucceeded := rowCascade(governor.Subscription, "payment_succeeded", "*", "")
	cases := []rowCase{
		// — → open
		{
			name: "opened", state: governor.StateNone, event: billOpened,
			payload: `{"plan":"pro","currency":"EUR"}`,
			to:      billOpen, wantData: `{"plan":"pro","currency":"EUR"}`,
		},
		{
			name: "opened without data", state: governor.StateNone, event: billOpened,
			to: billOpen, wantData: `{}`,
		},
		{
			name: "first usage opens", state: governor.StateNone, event: billUsageRecorded,
			payload: `{"meter":"api_calls","quantity":10}`,
			to:      billOpen, wantData: `{"meters":{"api_calls":10}}`,
		},
		// open → open
		{
			name: "usage adds up", state: billOpen, data: `{"plan":"pro","meters":{"api_calls":10}}`,
			event: billUsageRecorded, payload: `{"meter":"api_calls","quantity":5}`,
			to: billOpen, wantData: `{"plan":"pro","meters":{"api_calls":15}}`,
		},
		{
			name: "usage of a new meter", state: billOpen, data: `{"meters":{"api_calls":10}}`,
			event: billUsageRecorded, payload: `{"meter":"storage_gb","quantity":3}`,
			to: billOpen, wantData: `{"meters":{"api_calls":10,"storage_gb":3}}`,
		},
		{
			name: "usage up to the largest int64", state: billOpen, data: `{"meters":{"api_calls":9223372036854775806}}`,
			event: billUsageRecorded, payload: `{"meter":"api_calls","quantity":1}`,
			to: billOpen, wantData: `{"meters":{"api_calls":9223372036854775807}}`,
		},
		{
			name: "usage overflow", state: billOpen, data: `{"meters":{"api_calls":9223372036854775807}}`,
			event: billUsageRecorded, payload: `{"meter":"api_calls","quantity":1}`,
			reject: "amount_overflow",
		},
		// open → invoiced
		{
			name: "closed with the event's plan", subject: period, state: billOpen,
			data:  `{"meters":{"api_calls":500,"storage_gb":2}}`,
			event: billClosed, payload: `{"plan":"pro"}`, facts: billFacts,
			to: billInvoiced,
			wantData: `{"plan":"pro","currency":"EUR","meters":{"api_calls":500,"storage_gb":2},
				"invoice":{"plan":"pro","currency":"EUR","lines":{"api_calls":1000,"storage_gb":300},"subtotal":1300,"credit":0,"amount":1300}}`,
			emits: []rowEmit{rowAction(billIssueInvoice, period,
				`{"period":"2026-10","plan":"pro","currency":"EUR","lines":{"api_calls":1000,"storage_gb":300},"subtotal":1300,"credit":0,"amount":1300}`)},
		},
		{
			name: "closed with the recorded plan, an unpriced meter and a credit", subject: period, state: billOpen,
			data:  `{"plan":"pro","currency":"EUR","meters":{"api_calls":500,"gpu_hours":7},"credit_bp":1500}`,
			event: billClosed, facts: billFacts,
			to: billInvoiced,
			wantData: `{"plan":"pro","currency":"EUR","meters":{"api_calls":500,"gpu_hours":7},"credit_bp":1500,
				"invoice":{"plan":"pro","currency":"EUR","lines":{"api_calls":1000},"unpriced_meters":["gpu_hours"],"subtotal":1000,"credit":150,"amount":850}}`,
			emits: []rowEmit{rowAction(billIssueInvoice, period,
				`{"period":"2026-10","plan":"pro","currency":"EUR","lines":{"api_calls":1000},"unpriced_meters":["gpu_hours"],"subtotal":1000,"credit":150,"amount":850}`)},
		},
		{
			name: "closed without usage", subject: period, state: billOpen, data: `{}`,
			event: billClosed, payload: `{"plan":"pro"}`, facts: billFacts,
			to:       billInvoiced,
			wantData: `{"plan":"pro","currency":"EUR","invoice":{"plan":"pro","currency":"EUR","subtotal":0,"credit":0,"amount":0}}`,
			emits: []rowEmit{rowAction(billIssueInvoice, period,
				`{"period":"2026-10","plan":"pro","currency":"EUR","subtotal":0,"credit":0,"amount":0}`)},
		},
		{
			name: "closed on a plan not in the catalog", state: billOpen, data: `{"meters":{"api_calls":1}}`,
			event: billClosed, payload: `{"plan":"gone"}`, facts: billFacts,
			reject: "plan_not_found",
		},
		{
			name: "closed without any plan", state: billOpen, data: `{"meters":{"api_calls":1}}`,
			event: billClosed, facts: billFacts,
			reject: "plan_not_found",
		},
		{
			name: "closed in another currency", state: billOpen, data: `{"currency":"EUR","meters":{"api_calls":1}}`,
			event: billClosed, payload: `{"plan":"dollar"}`, facts: billFacts,
			reject: "currency_mismatch",
		},
		{
			name: "closed with a line overflow", state: billOpen, data: `{"meters":{"api_calls":3}}`,
			event: billClosed, payload: `{"plan":"big"}`, facts: billFacts,
			reject: "amount_overflow",
		},
		{
			name: "closed with a total overflow", state: billOpen,
			data:  `{"meters":{"api_calls":4,"storage_gb":61489146912365172}}`,
			event: billClosed, payload: `{"plan":"pro"}`, facts: billFacts,
			reject: "amount_overflow",
		},
		// invoiced → paid
		{
			name: "paid in full", state: billInvoiced, data: billInvoicedData,
			event: billPaymentSucceeded, payload: `{"amount":1000,"currency":"EUR"}`,
			to: billPaid, wantData: billWith(`"paid_amount":1000`),
		},
		{
			name: "paid too little", state: billInvoiced, data: billInvoicedData,
			event: billPaymentSucceeded, payload: `{"amount":999}`,
			reject: "amount_mismatch",
		},
		{
			name: "paid in another currency", state: billInvoiced, data: billInvoicedData,
			event: billPaymentSucceeded, payload: `{"amount":1000,"currency":"USD"}`,
			reject: "amount_mismatch",
		},
		// invoiced → dunning
		{
			name: "first payment failure", subject: period, state: billInvoiced, data: billInvoicedData,
			event: billPaymentFailed, payload: `{"reason":"card_declined"}`,
			to: billDunning, wantData: billWith(`"attempt":1`),
			wantTimers: map[string]time.Duration{"retry": 48 * time.Hour},
			emits:      []rowEmit{subPaymentFailed},
		},
		// dunning → dunning
		{
			name: "retry due", subject: period, state: billDunning, data: billWith(`"attempt":2`),
			timers: map[string]time.Duration{"retry": 0},
			event:  governor.Timeout("retry"),
			to:     billDunning,
			emits: []rowEmit{rowAction(billRetryPayment, period,
				`{"period":"2026-10","attempt":2,"amount":1000,"currency":"EUR"}`)},
		},
		{
			name: "retry no longer armed", state: billDunning, data: billWith(`"attempt":2`),
			timers: map[string]time.Duration{"retry": 0}, stale: true,
			event:  governor.Timeout("retry"),
			reject: governor.ReasonTimerCancelled,
		},
		{
			name: "retry 1 failed", state: billDunning, data: billWith(`"attempt":1`),
			event: billPaymentFailed,
			to:    billDunning, wantData: billWith(`"attempt":2`),
			wantTimers: map[string]time.Duration{"retry": 24 * time.Hour},
		},
		{
			name: "retry 3 failed", state: billDunning, data: billWith(`"attempt":3`),
			event: billPaymentFailed,
			to:    billDunning, wantData: billWith(`"attempt":4`),
			wantTimers: map[string]time.Duration{"retry": 7 * 24 * time.Hour},
		},
		// dunning → collections
		{
			name: "retry 4 failed", state: billDunning, data: billWith(`"attempt":4`),
			timers: map[string]time.Duration{"retry": time.Hour},
			event:  billPaymentFailed,
			to:     billCollections,
		},
		// dunning, collections → paid
		{
			name: "paid while dunning", subject: period, state: billDunning, data: billWith(`"attempt":2`),
			timers: map[string]time.Duration{"retry": time.Hour},
			event:  billPaymentSucceeded, payload: `{"amount":1000}`,
			to: billPaid, wantData: billWith(`"attempt":2,"paid_amount":1000`),
			emits: []rowEmit{subPaymentSucceeded},
		},
		{
			name: "paid too little while dunning", state: billDunning, data: billWith(`"attempt":2`),
			timers: map[string]time.Duration{"retry": time.Hour},
			event:  billPaymentSucceeded, payload: `{"amount":10}`,
			reject: "amount_mismatch",
		},
		{
			name: "paid in collections", subject: period, state: billCollections, data: billWith(`"attempt":4`),
			event: billPaymentSucceeded, payload: `{"amount":1000}`,
			to: billPaid, wantData: billWith(`"attempt":4,"paid_amount":1000`),
			emits: []rowEmit{subPaymentSucceeded},
		},
		// collections → written_off
		{
			name: "written off", state: billCollections, data: billWith(`"attempt":4`),
			event: billWriteOff, to: billWrittenOff,
		},
		// paid → refund_pending → refunded
		{
			name: "partial refund", state: billPaid, data: billWith(`"paid_amount":1000`),
			event: billRefundRequested, payload: `{"amount":400}`,
			to: billRefundPending, wantData: billWith(`"paid_amount":1000,"refund_amount":400`),
		},
		{
			name: "full refund", state: billPaid, data: billWith(`"paid_amount":1000`),
			event: billRefundRequested, payload: `{"amount":1000,"currency":"EUR"}`,
			to: billRefundPending, wantData: billWith(`"paid_amount":1000,"refund_amount":1000`),
		},
		{
			name: "refund above the payment", state: billPaid, data: billWith(`"paid_amount":1000`),
			event: billRefundRequested, payload: `{"amount":1001}`,
			reject: "refund_exceeds_payment",
		},
		{
			name: "refund of nothing", state: billPaid, data: billWith(`"paid_amount":1000`),
			event: billRefundRequested, payload: `{"amount":0}`,
			reject: "refund_exceeds_payment",
		},
		{
			name: "refund in another currency", state: billPaid, data: billWith(`"paid_amount":1000`),
			event: billRefundRequested, payload: `{"amount":10,"currency":"USD"}`,
			reject: "currency_mismatch",
		},
		{
			name: "refund settled", state: billRefundPending, data: billWith(`"paid_amount":1000,"refund_amount":400`),
			event: billRefundSettled, to: billRefunded,
		},
		// paid → disputed → paid / refunded
		{
			name: "disputed", state: billPaid, data: billWith(`"paid_amount":1000`),
			event: billDisputeOpened, to: billDisputed,
		},
		{
			name: "dispute won", state: billDisputed, data: billWith(`"paid_amount":1000`),
			event: billDisputeWon, to: billPaid,
		},
		{
			name: "dispute lost", state: billDisputed, data: billWith(`"paid_amount":1000`),
			event: billDisputeLost, to: billRefunded, wantData: billWith(`"paid_amount":1000,"refund_amount":1000`),
		},
		// credit_issued in open, invoiced, paid
		{
			name: "credit while open", state: billOpen, data: `{"meters":{"api_calls":5},"credit_bp":1000}`,
			event: billCreditIssued, payload: `{"basis_points":500}`,
			to: billOpen, wantData: `{"meters":{"api_calls":5},"credit_bp":1500}`,
		},
		{
			name: "credit capped at 100%", state: billOpen, data: `{"credit_bp":9000}`,
			event: billCreditIssued, payload: `{"basis_points":2500}`,
			to: billOpen, wantData: `{"credit_bp":10000}`,
		},
		{
			name: "credit after the invoice", state: billInvoiced, data: billInvoicedData,
			event: billCreditIssued, payload: `{"basis_points":1000}`,
			to: billInvoiced, wantData: billWith(`"credit_bp":1000,"credit_owed":100`),
		},
		{
			name: "credit after payment", state: billPaid, data: billWith(`"paid_amount":1000,"credit_bp":1000,"credit_owed":100`),
			event: billCreditIssued, payload: `{"basis_points":2500}`,
			to: billPaid, wantData: billWith(`"paid_amount":1000,"credit_bp":3500,"credit_owed":350`),
		},
		// not in the table
		{
			name: "payment before the invoice", state: billOpen, data: `{}`,
			event: billPaymentSucceeded, payload: `{"amount":0}`,
			reject: governor.ReasonNoTransition,
		},
		{
			name: "credit for a refunded period", state: billRefunded, data: billWith(`"paid_amount":1000`),
			event: billCreditIssued, payload: `{"basis_points":100}`,
			reject: governor.ReasonNoTransition,
		},
		{
			name: "credit for a period not opened", state: governor.StateNone,
			event: billCreditIssued, payload: `{"basis_points":100}`,
			reject: governor.ReasonNoTransition,
		},
	}
	m := billingMachine()
	runRowCases(t, m, period, cases)
	rowCoverage(t, m, cases)
}

func TestBillingDunningToCollections(t *testing.T) {
	m := billingMachine().WithTimers(map[string]time.Duration{"retry_3": 5 * time.Hour})
	key := governor.Key{Tenant: "tenant-1", Domain: governor.Billing, Subject: "2026-10"}
	inst := governor.Instance{Key: key, State: billInvoiced, Version: 3, Data: json.RawMessage(billInvoicedData)}
	now := rowNow
	type step struct {
		event   governor.EventName
		to      governor.State
		retryIn time.Duration // 0: no timer armed after the step
		emits   []string
	}
	retry := func(attempt int) string {
		return fmt.Sprintf(`actuate billing.retry_payment 2026-10 {"amount":1000,"attempt":%d,"currency":"EUR","period":"2026-10"}`, attempt)
	}
	steps := []step{
		{billPaymentFailed, billDunning, 48 * time.Hour, []string{"event autonomics.subscription.payment_failed * {}"}},
		{governor.Timeout("retry"), billDunning, 0, []string{retry(1)}},
		{billPaymentFailed, billDunning, 24 * time.Hour, nil},
		{governor.Timeout("retry"), billDunning, 0, []string{retry(2)}},
		{billPaymentFailed, billDunning, 5 * time.Hour, nil},
		{governor.Timeout("retry"), billDunning, 0, []string{retry(3)}},
		{billPaymentFailed, billDunning, 7 * 24 * time.Hour, nil},
		{governor.Timeout("retry"), billDunning, 0, []string{retry(4)}},
		{billPaymentFailed, billCollections, 0, nil},
		{billPaymentSucceeded, billPaid, 0, []string{"event autonomics.subscription.payment_succeeded * {}"}},
	}
	for i, s := range steps {
		ev := governor.Event{Domain: governor.Billing, Name: s.event, Tenant: key.Tenant, Subject: key.Subject}
		switch {
		case s.event == billPaymentSucceeded:
			ev.Data = json.RawMessage(`{"amount":1000}`)
		case strings.HasPrefix(string(s.event), governor.TimeoutPrefix):
			now = inst.Timers["retry"].Due
			ev.Data = json.RawMessage(fmt.Sprintf(`{"timer_id":%q}`, inst.Timers["retry"].ID))
		}
		got, err := m.Decide(governor.Input{Instance: inst, Event: ev, Now: now})
		if err != nil || got.Outcome != governor.Accepted || got.To != s.to {
			t.Fatalf("step %d: Decide(%s, %s) = %s %s %q, %v, want accepted %s", i, inst.State, s.event, got.Outcome, got.To, got.Reason, err, s.to)
		}
		var emits []string
		for _, e := range got.Emits {
			emits = append(emits, rowEmitOf(e))
		}
		if !slices.Equal(emits, s.emits) {
			t.Errorf("step %d: Decide(%s, %s) emits = %q, want %q", i, inst.State, s.event, emits, s.emits)
		}
		timer, armed := got.Timers["retry"]
		if armed != (s.retryIn > 0) || armed && timer.Due.Sub(now) != s.retryIn {
			t.Errorf("step %d: Decide(%s, %s) retry timer = %v (armed %v), want in %v", i, inst.State, s.event, timer.Due.Sub(now), armed, s.retryIn)
		}
		inst = rowStep(inst, got, now)
	}
}

func TestBillingNeeds(t *testing.T) {
	m := billingMachine()
	tests := []struct {
		name    string
		event   governor.EventName
		data    string
		payload string
		want    []string
	}{
		{"closed names the plan", billClosed, `{"plan":"old"}`, `{"plan":"pro"}`, []string{"pro"}},
		{"closed with the recorded plan", billClosed, `{"plan":"old"}`, ``, []string{"old"}},
		{"closed without a plan", billClosed, `{}`, `{}`, nil},
		{"other events need nothing", billUsageRecorded, `{"plan":"old"}`, `{"meter":"a","quantity":1}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := governor.Instance{Key: governor.Key{Tenant: "t", Domain: governor.Billing, Subject: "2026-10"}, State: billOpen, Data: json.RawMessage(tt.data)}
			ev := governor.Event{Domain: governor.Billing, Name: tt.event, Data: json.RawMessage(tt.payload)}
			got := m.Needs(inst, ev)
			if !slices.Equal(got.Plans, tt.want) || got.Account {
				t.Errorf("Needs(%s, %s %s) = %+v, want plans %v", tt.data, tt.event, tt.payload, got, tt.want)
			}
		})
	}
}

func TestBillingPayloads(t *testing.T) {
	runRowPayloads(t, billingMachine(), []rowPayloadCase{
		{billOpened, `{}`, true},
		{billOpened, `{"plan":"pro","currency":"EUR"}`, true},
		{billOpened, `{"currency":"eur"}`, false},
		{billOpened, `{"plan":"a b"}`, false},
		{billOpened, `{"plan":"pro","discount":1}`, false},
		{billUsageRecorded, `{"meter":"api_calls","quantity":1}`, true},
		{billUsageRecorded, `{"meter":"api_calls","quantity":0}`, false},
		{billUsageRecorded, `{"meter":"api_calls","quantity":-1}`, false},
		{billUsageRecorded, `{"meter":"api_calls","quantity":1.5}`, false},
		{billUsageRecorded, `{"meter":"api_calls","quantity":"1"}`, false},
		{billUsageRecorded, `{"quantity":1}`, false},
		{billUsageRecorded, `{"meter":"api_calls","quantity":9223372036854775808}`, false},
		{billClosed, `{"plan":"pro"}`, true},
		{billClosed, `{}`, true},
		{billClosed, `{"plan":"pro","period":"2026-10"}`, false},
		{billPaymentSucceeded, `{"amount":0}`, true},
		{billPaymentSucceeded, `{"amount":1000,"currency":"EUR"}`, true},
		{billPaymentSucceeded, `{}`, false},
		{billPaymentSucceeded, `{"amount":-1}`, false},
		{billPaymentSucceeded, `{"amount":10.5}`, false},
		{billRefundRequested, `{"amount":1}`, true},
		{billRefundRequested, `{"amount":1,"currency":"EURO"}`, false},
		{billCreditIssued, `{"basis_points":1}`, true},
		{billCreditIssued, `{"basis_points":10000}`, true},
		{billCreditIssued, `{"basis_points":0}`, false},
		{billCreditIssued, `{"basis_points":10001}`, false},
		{billCreditIssued, `{"basis_points":1000,"reason":"sla"}`, false},
		{billPaymentFailed, `{"reason":"card_declined"}`, true},
		{billPaymentFailed, `[]`, false},
	})
}

func BenchmarkBillingClose(b *testing.B) {
	m := billingMachine()
	in := rowInput(m, rowCase{
		name: "close", state: billOpen, data: `{"plan":"pro","meters":{"api_calls":500,"storage_gb":2,"gpu_hours":1}}`,
		event: billClosed, payload: `{"plan":"pro"}`, facts: billFacts,
	}, "2026-10")
	for b.Loop() {
		if d, err := m.Decide(in); err != nil || d.Outcome != governor.Accepted {
			b.Fatalf("Decide = %s %q, %v", d.Outcome, d.Reason, err)
		}
	}
}
