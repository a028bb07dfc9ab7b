package billing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/catalog"
	"github.com/autonomics/autonomics/shared/machines/machinetest"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

// provider is the tenant whose catalog the cases read: the event's tenant
// in the harness.
const provider = "tenant-1"

// catalogReads is the catalog billing prices with, as a closed decision
// reads it: plan "gone" is not in the catalog, which the engine reads as
// an instance with no state.
var catalogReads = map[governor.Key]governor.Instance{
	catalog.Key(provider, "pro"): catalog.Instance(provider, catalog.Plan{
		SKU: "pro", State: catalog.Published, Currency: "EUR",
		UnitPrices: map[string]int64{"api_calls": 2, "storage_gb": 150},
	}),
	catalog.Key(provider, "big"): catalog.Instance(provider, catalog.Plan{
		SKU: "big", State: catalog.Published, Currency: "EUR",
		UnitPrices: map[string]int64{"api_calls": math.MaxInt64 / 2},
	}),
	catalog.Key(provider, "dollar"): catalog.Instance(provider, catalog.Plan{
		SKU: "dollar", State: catalog.Published, Currency: "USD", UnitPrices: map[string]int64{"api_calls": 3},
	}),
	catalog.Key(provider, "gone"): {},
}

// invoicedData is the data of a period invoiced 1000 EUR on plan pro.
const invoicedData = `{"plan":"pro","currency":"EUR","meters":{"api_calls":500},
	"invoice":{"plan":"pro","currency":"EUR","lines":{"api_calls":1000},"subtotal":1000,"credit":0,"amount":1000}}`

// invoicedWith returns invoicedData with extra top-level fields.
func invoicedWith(fields string) string {
	return strings.TrimSuffix(invoicedData, "}") + "," + fields + "}"
}

func TestBillingMachineValidate(t *testing.T) {
	m := Machine()
	if err := m.Validate(); err != nil {
		t.Fatalf("Machine().Validate() = %v, want nil", err)
	}
	for n := 1; n <= RetryAttempts; n++ {
		if d := m.Timers[RetryKey(n)]; d <= 0 {
			t.Errorf("Machine().Timers[%q] = %v, want a duration", RetryKey(n), d)
		}
	}
	want := map[string]time.Duration{"retry": 48 * time.Hour, "retry_2": 24 * time.Hour, "retry_3": 72 * time.Hour, "retry_4": 7 * 24 * time.Hour}
	if !maps.Equal(m.Timers, want) {
		t.Errorf("Machine().Timers = %v, want %v", m.Timers, want)
	}
}

// period is the subject of the decision cases.
const period = "2026-10"

// decideCases are the decisions of the billing machine the tests check:
// every row accepted at least once, and every reason code given.
func decideCases() []machinetest.Row {
	subPaymentFailed := machinetest.Cascade(governor.Subscription, "payment_failed", "*", "")
	subPaymentSucceeded := machinetest.Cascade(governor.Subscription, "payment_succeeded", "*", "")
	return []machinetest.Row{
		// — → open
		{
			Name: "opened", State: governor.StateNone, Event: Opened,
			Payload: `{"plan":"pro","currency":"EUR"}`,
			To:      Open, WantData: `{"plan":"pro","currency":"EUR"}`,
		},
		{
			Name: "opened without data", State: governor.StateNone, Event: Opened,
			To: Open, WantData: `{}`,
		},
		{
			Name: "first usage opens", State: governor.StateNone, Event: UsageRecorded,
			Payload: `{"meter":"api_calls","quantity":10}`,
			To:      Open, WantData: `{"meters":{"api_calls":10}}`,
		},
		// open → open
		{
			Name: "usage adds up", State: Open, Data: `{"plan":"pro","meters":{"api_calls":10}}`,
			Event: UsageRecorded, Payload: `{"meter":"api_calls","quantity":5}`,
			To: Open, WantData: `{"plan":"pro","meters":{"api_calls":15}}`,
		},
		{
			Name: "usage of a new meter", State: Open, Data: `{"meters":{"api_calls":10}}`,
			Event: UsageRecorded, Payload: `{"meter":"storage_gb","quantity":3}`,
			To: Open, WantData: `{"meters":{"api_calls":10,"storage_gb":3}}`,
		},
		{
			Name: "usage up to the largest int64", State: Open, Data: `{"meters":{"api_calls":9223372036854775806}}`,
			Event: UsageRecorded, Payload: `{"meter":"api_calls","quantity":1}`,
			To: Open, WantData: `{"meters":{"api_calls":9223372036854775807}}`,
		},
		{
			Name: "usage overflow", State: Open, Data: `{"meters":{"api_calls":9223372036854775807}}`,
			Event: UsageRecorded, Payload: `{"meter":"api_calls","quantity":1}`,
			Reject: "amount_overflow",
		},
		// open → invoiced
		{
			Name: "closed with the event's plan", Subject: period, State: Open,
			Data:  `{"meters":{"api_calls":500,"storage_gb":2}}`,
			Event: messages.BillingClosed.Name, Payload: `{"plan":"pro"}`, Reads: catalogReads,
			To: Invoiced,
			WantData: `{"plan":"pro","currency":"EUR","meters":{"api_calls":500,"storage_gb":2},
				"invoice":{"plan":"pro","currency":"EUR","lines":{"api_calls":1000,"storage_gb":300},"subtotal":1300,"credit":0,"amount":1300}}`,
			Emits: []machinetest.Emit{machinetest.Action(IssueInvoice.Kind, period,
				`{"period":"2026-10","plan":"pro","currency":"EUR","lines":{"api_calls":1000,"storage_gb":300},"subtotal":1300,"credit":0,"amount":1300}`)},
		},
		{
			Name: "closed with the recorded plan, an unpriced meter and a credit", Subject: period, State: Open,
			Data:  `{"plan":"pro","currency":"EUR","meters":{"api_calls":500,"gpu_hours":7},"credit_bp":1500}`,
			Event: messages.BillingClosed.Name, Reads: catalogReads,
			To: Invoiced,
			WantData: `{"plan":"pro","currency":"EUR","meters":{"api_calls":500,"gpu_hours":7},"credit_bp":1500,
				"invoice":{"plan":"pro","currency":"EUR","lines":{"api_calls":1000},"unpriced_meters":["gpu_hours"],"subtotal":1000,"credit":150,"amount":850}}`,
			Emits: []machinetest.Emit{machinetest.Action(IssueInvoice.Kind, period,
				`{"period":"2026-10","plan":"pro","currency":"EUR","lines":{"api_calls":1000},"unpriced_meters":["gpu_hours"],"subtotal":1000,"credit":150,"amount":850}`)},
		},
		{
			Name: "closed without usage", Subject: period, State: Open, Data: `{}`,
			Event: messages.BillingClosed.Name, Payload: `{"plan":"pro"}`, Reads: catalogReads,
			To:       Invoiced,
			WantData: `{"plan":"pro","currency":"EUR","invoice":{"plan":"pro","currency":"EUR","subtotal":0,"credit":0,"amount":0}}`,
			Emits: []machinetest.Emit{machinetest.Action(IssueInvoice.Kind, period,
				`{"period":"2026-10","plan":"pro","currency":"EUR","subtotal":0,"credit":0,"amount":0}`)},
		},
		{
			Name: "closed on a plan not in the catalog", State: Open, Data: `{"meters":{"api_calls":1}}`,
			Event: messages.BillingClosed.Name, Payload: `{"plan":"gone"}`, Reads: catalogReads,
			Reject: "plan_not_found",
		},
		{
			Name: "closed without any plan", State: Open, Data: `{"meters":{"api_calls":1}}`,
			Event: messages.BillingClosed.Name, Reads: catalogReads,
			Reject: "plan_not_found",
		},
		{
			Name: "closed in another currency", State: Open, Data: `{"currency":"EUR","meters":{"api_calls":1}}`,
			Event: messages.BillingClosed.Name, Payload: `{"plan":"dollar"}`, Reads: catalogReads,
			Reject: "currency_mismatch",
		},
		{
			Name: "closed with a line overflow", State: Open, Data: `{"meters":{"api_calls":3}}`,
			Event: messages.BillingClosed.Name, Payload: `{"plan":"big"}`, Reads: catalogReads,
			Reject: "amount_overflow",
		},
		{
			Name: "closed with a total overflow", State: Open,
			Data:  `{"meters":{"api_calls":4,"storage_gb":61489146912365172}}`,
			Event: messages.BillingClosed.Name, Payload: `{"plan":"pro"}`, Reads: catalogReads,
			Reject: "amount_overflow",
		},
		// invoiced → paid
		{
			Name: "paid in full", State: Invoiced, Data: invoicedData,
			Event: PaymentSucceeded, Payload: `{"amount":1000,"currency":"EUR"}`,
			To: Paid, WantData: invoicedWith(`"paid_amount":1000`),
		},
		{
			Name: "paid too little", State: Invoiced, Data: invoicedData,
			Event: PaymentSucceeded, Payload: `{"amount":999}`,
			Reject: "amount_mismatch",
		},
		{
			Name: "paid in another currency", State: Invoiced, Data: invoicedData,
			Event: PaymentSucceeded, Payload: `{"amount":1000,"currency":"USD"}`,
			Reject: "amount_mismatch",
		},
		// invoiced → dunning
		{
			Name: "first payment failure", Subject: period, State: Invoiced, Data: invoicedData,
			Event: PaymentFailed, Payload: `{"reason":"card_declined"}`,
			To: Dunning, WantData: invoicedWith(`"attempt":1`),
			WantTimers: map[string]time.Duration{"retry": 48 * time.Hour},
			Emits:      []machinetest.Emit{subPaymentFailed},
		},
		// dunning → dunning
		{
			Name: "retry due", Subject: period, State: Dunning, Data: invoicedWith(`"attempt":2`),
			Timers: map[string]time.Duration{"retry": 0},
			Event:  governor.Timeout("retry"),
			To:     Dunning,
			Emits: []machinetest.Emit{machinetest.Action(RetryPayment.Kind, period,
				`{"period":"2026-10","attempt":2,"amount":1000,"currency":"EUR"}`)},
		},
		{
			Name: "retry no longer armed", State: Dunning, Data: invoicedWith(`"attempt":2`),
			Timers: map[string]time.Duration{"retry": 0}, Stale: true,
			Event:  governor.Timeout("retry"),
			Reject: string(governor.ReasonTimerCancelled),
		},
		{
			Name: "retry 1 failed", State: Dunning, Data: invoicedWith(`"attempt":1`),
			Event: PaymentFailed,
			To:    Dunning, WantData: invoicedWith(`"attempt":2`),
			WantTimers: map[string]time.Duration{"retry": 24 * time.Hour},
		},
		{
			Name: "retry 3 failed", State: Dunning, Data: invoicedWith(`"attempt":3`),
			Event: PaymentFailed,
			To:    Dunning, WantData: invoicedWith(`"attempt":4`),
			WantTimers: map[string]time.Duration{"retry": 7 * 24 * time.Hour},
		},
		// dunning → collections
		{
			Name: "retry 4 failed", State: Dunning, Data: invoicedWith(`"attempt":4`),
			Timers: map[string]time.Duration{"retry": time.Hour},
			Event:  PaymentFailed,
			To:     Collections,
		},
		// dunning, collections → paid
		{
			Name: "paid while dunning", Subject: period, State: Dunning, Data: invoicedWith(`"attempt":2`),
			Timers: map[string]time.Duration{"retry": time.Hour},
			Event:  PaymentSucceeded, Payload: `{"amount":1000}`,
			To: Paid, WantData: invoicedWith(`"attempt":2,"paid_amount":1000`),
			Emits: []machinetest.Emit{subPaymentSucceeded},
		},
		{
			Name: "paid too little while dunning", State: Dunning, Data: invoicedWith(`"attempt":2`),
			Timers: map[string]time.Duration{"retry": time.Hour},
			Event:  PaymentSucceeded, Payload: `{"amount":10}`,
			Reject: "amount_mismatch",
		},
		{
			Name: "paid in collections", Subject: period, State: Collections, Data: invoicedWith(`"attempt":4`),
			Event: PaymentSucceeded, Payload: `{"amount":1000}`,
			To: Paid, WantData: invoicedWith(`"attempt":4,"paid_amount":1000`),
			Emits: []machinetest.Emit{subPaymentSucceeded},
		},
		// collections → written_off
		{
			Name: "written off", State: Collections, Data: invoicedWith(`"attempt":4`),
			Event: WriteOff, To: WrittenOff,
		},
		// paid → refund_pending → refunded
		{
			Name: "partial refund", State: Paid, Data: invoicedWith(`"paid_amount":1000`),
			Event: RefundRequested, Payload: `{"amount":400}`,
			To: RefundPending, WantData: invoicedWith(`"paid_amount":1000,"refund_amount":400`),
		},
		{
			Name: "full refund", State: Paid, Data: invoicedWith(`"paid_amount":1000`),
			Event: RefundRequested, Payload: `{"amount":1000,"currency":"EUR"}`,
			To: RefundPending, WantData: invoicedWith(`"paid_amount":1000,"refund_amount":1000`),
		},
		{
			Name: "refund above the payment", State: Paid, Data: invoicedWith(`"paid_amount":1000`),
			Event: RefundRequested, Payload: `{"amount":1001}`,
			Reject: "refund_exceeds_payment",
		},
		{
			Name: "refund of nothing", State: Paid, Data: invoicedWith(`"paid_amount":1000`),
			Event: RefundRequested, Payload: `{"amount":0}`,
			Reject: "refund_exceeds_payment",
		},
		{
			Name: "refund in another currency", State: Paid, Data: invoicedWith(`"paid_amount":1000`),
			Event: RefundRequested, Payload: `{"amount":10,"currency":"USD"}`,
			Reject: "currency_mismatch",
		},
		{
			Name: "refund settled", State: RefundPending, Data: invoicedWith(`"paid_amount":1000,"refund_amount":400`),
			Event: RefundSettled, To: Refunded,
		},
		// paid → disputed → paid / refunded
		{
			Name: "disputed", State: Paid, Data: invoicedWith(`"paid_amount":1000`),
			Event: DisputeOpened, To: Disputed,
		},
		{
			Name: "dispute won", State: Disputed, Data: invoicedWith(`"paid_amount":1000`),
			Event: DisputeWon, To: Paid,
		},
		{
			Name: "dispute lost", State: Disputed, Data: invoicedWith(`"paid_amount":1000`),
			Event: DisputeLost, To: Refunded, WantData: invoicedWith(`"paid_amount":1000,"refund_amount":1000`),
		},
		// credit_issued in open, invoiced, paid
		{
			Name: "credit while open", State: Open, Data: `{"meters":{"api_calls":5},"credit_bp":1000}`,
			Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":500}`,
			To: Open, WantData: `{"meters":{"api_calls":5},"credit_bp":1500}`,
		},
		{
			Name: "credit capped at 100%", State: Open, Data: `{"credit_bp":9000}`,
			Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":2500}`,
			To: Open, WantData: `{"credit_bp":10000}`,
		},
		{
			Name: "credit after the invoice", State: Invoiced, Data: invoicedData,
			Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":1000}`,
			To: Invoiced, WantData: invoicedWith(`"credit_bp":1000,"credit_owed":100`),
		},
		{
			Name: "credit after payment", State: Paid, Data: invoicedWith(`"paid_amount":1000,"credit_bp":1000,"credit_owed":100`),
			Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":2500}`,
			To: Paid, WantData: invoicedWith(`"paid_amount":1000,"credit_bp":3500,"credit_owed":350`),
		},
		// not in the table
		{
			Name: "payment before the invoice", State: Open, Data: `{}`,
			Event: PaymentSucceeded, Payload: `{"amount":0}`,
			Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "credit for a refunded period", State: Refunded, Data: invoicedWith(`"paid_amount":1000`),
			Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":100}`,
			Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "credit for a period not opened", State: governor.StateNone,
			Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":100}`,
			Reject: string(governor.ReasonNoTransition),
		},
	}
}

func TestBillingDecide(t *testing.T) {
	cases := decideCases()
	m := Machine()
	machinetest.RunRows(t, m, period, cases)
	machinetest.Coverage(t, m, cases)
}

// TestBillingReasons checks that every reason code the machine declares
// is given by at least one case, with that exact code, and that the cases
// reject with declared codes only.
func TestBillingReasons(t *testing.T) {
	m := Machine()
	cases := decideCases()
	for _, c := range cases {
		if c.Reject != "" && !m.HasReason(governor.CodeOf(c.Reject)) {
			t.Errorf("case %q rejects with %q, which the machine does not declare", c.Name, c.Reject)
		}
	}
	for _, r := range m.Reasons {
		t.Run(string(r.Code), func(t *testing.T) {
			n := 0
			for _, c := range cases {
				if governor.CodeOf(c.Reject) != r.Code {
					continue
				}
				n++
				in := machinetest.RowInput(m, c, period)
				d, err := m.Decide(in)
				if err != nil || d.Outcome != governor.Rejected || d.Code != r.Code {
					t.Errorf("%s: Decide(%s, %s) = %s %s %q, %v, want rejected %s", c.Name, c.State, c.Event, d.Outcome, d.Code, d.Reason, err, r.Code)
				}
			}
			if n == 0 {
				t.Errorf("no case rejects with %s", r.Code)
			}
		})
	}
}

// TestBillingActions checks that the actions' examples and the data of
// every action the cases emit are valid payloads of their kind.
func TestBillingActions(t *testing.T) {
	if err := IssueInvoice.Example.Validate(); err != nil {
		t.Errorf("IssueInvoice.Example.Validate() = %v, want nil", err)
	}
	if err := RetryPayment.Example.Validate(); err != nil {
		t.Errorf("RetryPayment.Example.Validate() = %v, want nil", err)
	}
	decode := map[string]func([]byte) (governor.Payload, error){
		IssueInvoice.Kind: func(b []byte) (governor.Payload, error) {
			var a InvoiceAction
			return a, strictDecode(b, &a)
		},
		RetryPayment.Kind: func(b []byte) (governor.Payload, error) {
			var a RetryAction
			return a, strictDecode(b, &a)
		},
	}
	m := Machine()
	n := 0
	for _, c := range decideCases() {
		if c.Reject != "" {
			continue
		}
		d, err := m.Decide(machinetest.RowInput(m, c, period))
		if err != nil {
			t.Fatalf("%s: Decide = %v", c.Name, err)
		}
		for _, e := range d.Emits {
			if e.Kind != governor.KindActuate {
				continue
			}
			n++
			dec, ok := decode[e.Type]
			if !ok {
				t.Errorf("%s: action %s is not one of the machine's", c.Name, e.Type)
				continue
			}
			p, err := dec(e.Data)
			if err == nil {
				err = p.Validate()
			}
			if err != nil {
				t.Errorf("%s: action %s data %s: %v, want a valid payload", c.Name, e.Type, e.Data, err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no case emits an action")
	}
}

// strictDecode decodes b into v, refusing unknown members.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func TestBillingDunningToCollections(t *testing.T) {
	m := Machine().WithTimers(map[string]time.Duration{"retry_3": 5 * time.Hour})
	key := governor.Key{Tenant: "tenant-1", Domain: governor.Billing, Subject: "2026-10"}
	inst := governor.Instance{Key: key, State: Invoiced, Version: 3, Data: json.RawMessage(invoicedData)}
	now := machinetest.RowNow
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
		{PaymentFailed, Dunning, 48 * time.Hour, []string{"event autonomics.subscription.payment_failed * {}"}},
		{governor.Timeout("retry"), Dunning, 0, []string{retry(1)}},
		{PaymentFailed, Dunning, 24 * time.Hour, nil},
		{governor.Timeout("retry"), Dunning, 0, []string{retry(2)}},
		{PaymentFailed, Dunning, 5 * time.Hour, nil},
		{governor.Timeout("retry"), Dunning, 0, []string{retry(3)}},
		{PaymentFailed, Dunning, 7 * 24 * time.Hour, nil},
		{governor.Timeout("retry"), Dunning, 0, []string{retry(4)}},
		{PaymentFailed, Collections, 0, nil},
		{PaymentSucceeded, Paid, 0, []string{"event autonomics.subscription.payment_succeeded * {}"}},
	}
	for i, s := range steps {
		ev := governor.Event{Domain: governor.Billing, Name: s.event, Tenant: key.Tenant, Subject: key.Subject}
		switch {
		case s.event == PaymentSucceeded:
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
			emits = append(emits, machinetest.EmitOf(e))
		}
		if !slices.Equal(emits, s.emits) {
			t.Errorf("step %d: Decide(%s, %s) emits = %q, want %q", i, inst.State, s.event, emits, s.emits)
		}
		timer, armed := got.Timers["retry"]
		if armed != (s.retryIn > 0) || armed && timer.Due.Sub(now) != s.retryIn {
			t.Errorf("step %d: Decide(%s, %s) retry timer = %v (armed %v), want in %v", i, inst.State, s.event, timer.Due.Sub(now), armed, s.retryIn)
		}
		inst = machinetest.Step(inst, got, now)
	}
}

func TestBillingNeeds(t *testing.T) {
	m := Machine()
	const provider = "provider-1"
	tests := []struct {
		name    string
		event   governor.EventName
		data    string
		payload string
		want    []governor.Key
	}{
		{"closed names the plan", messages.BillingClosed.Name, `{"plan":"old"}`, `{"plan":"pro"}`, []governor.Key{catalog.Key(provider, "pro")}},
		{"closed with the recorded plan", messages.BillingClosed.Name, `{"plan":"old"}`, ``, []governor.Key{catalog.Key(provider, "old")}},
		{"closed without a plan", messages.BillingClosed.Name, `{}`, `{}`, nil},
		{"other events need nothing", UsageRecorded, `{"plan":"old"}`, `{"meter":"a","quantity":1}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst := governor.Instance{Key: governor.Key{Tenant: "t", Domain: governor.Billing, Subject: "2026-10"}, State: Open, Data: json.RawMessage(tt.data)}
			ev := governor.Event{Domain: governor.Billing, Name: tt.event, Tenant: "t", Data: json.RawMessage(tt.payload)}
			if got := m.Reads(inst, ev, provider); !slices.Equal(got, tt.want) {
				t.Errorf("Reads(%s, %s %s) = %v, want %v", tt.data, tt.event, tt.payload, got, tt.want)
			}
		})
	}
}

func TestBillingPayloads(t *testing.T) {
	machinetest.RunPayloads(t, Machine(), []machinetest.Payload{
		{Event: Opened, Payload: `{}`, OK: true},
		{Event: Opened, Payload: `{"plan":"pro","currency":"EUR"}`, OK: true},
		{Event: Opened, Payload: `{"currency":"eur"}`, OK: false},
		{Event: Opened, Payload: `{"plan":"a b"}`, OK: false},
		{Event: Opened, Payload: `{"plan":"pro","discount":1}`, OK: false},
		{Event: UsageRecorded, Payload: `{"meter":"api_calls","quantity":1}`, OK: true},
		{Event: UsageRecorded, Payload: `{"meter":"api_calls","quantity":0}`, OK: false},
		{Event: UsageRecorded, Payload: `{"meter":"api_calls","quantity":-1}`, OK: false},
		{Event: UsageRecorded, Payload: `{"meter":"api_calls","quantity":1.5}`, OK: false},
		{Event: UsageRecorded, Payload: `{"meter":"api_calls","quantity":"1"}`, OK: false},
		{Event: UsageRecorded, Payload: `{"quantity":1}`, OK: false},
		{Event: UsageRecorded, Payload: `{"meter":"api_calls","quantity":9223372036854775808}`, OK: false},
		{Event: messages.BillingClosed.Name, Payload: `{"plan":"pro"}`, OK: true},
		{Event: messages.BillingClosed.Name, Payload: `{}`, OK: true},
		{Event: messages.BillingClosed.Name, Payload: `{"plan":"pro","period":"2026-10"}`, OK: false},
		{Event: PaymentSucceeded, Payload: `{"amount":0}`, OK: true},
		{Event: PaymentSucceeded, Payload: `{"amount":1000,"currency":"EUR"}`, OK: true},
		{Event: PaymentSucceeded, Payload: `{}`, OK: false},
		{Event: PaymentSucceeded, Payload: `{"amount":-1}`, OK: false},
		{Event: PaymentSucceeded, Payload: `{"amount":10.5}`, OK: false},
		{Event: RefundRequested, Payload: `{"amount":1}`, OK: true},
		{Event: RefundRequested, Payload: `{"amount":1,"currency":"EURO"}`, OK: false},
		{Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":1}`, OK: true},
		{Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":10000}`, OK: true},
		{Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":0}`, OK: false},
		{Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":10001}`, OK: false},
		{Event: messages.BillingCreditIssued.Name, Payload: `{"basis_points":1000,"reason":"sla"}`, OK: false},
		{Event: PaymentFailed, Payload: `{"reason":"card_declined"}`, OK: true},
		{Event: PaymentFailed, Payload: `[]`, OK: false},
	})
}

func BenchmarkBillingClose(b *testing.B) {
	m := Machine()
	in := machinetest.RowInput(m, machinetest.Row{
		Name: "close", State: Open, Data: `{"plan":"pro","meters":{"api_calls":500,"storage_gb":2,"gpu_hours":1}}`,
		Event: messages.BillingClosed.Name, Payload: `{"plan":"pro"}`, Reads: catalogReads,
	}, "2026-10")
	for b.Loop() {
		if d, err := m.Decide(in); err != nil || d.Outcome != governor.Accepted {
			b.Fatalf("Decide = %s %q, %v", d.Outcome, d.Reason, err)
		}
	}
}

// TestBillingNotesShowTheSchedule checks that the dunning rows document
// the machine's default retry delays and attempt count, and the credit
// rows its cap.
func TestBillingNotesShowTheSchedule(t *testing.T) {
	m := Machine()
	first := m.Lookup(Invoiced, PaymentFailed)
	if want := "(" + governor.HumanDuration(m.Timers[RetryKey(1)]) + ")"; !strings.Contains(first.Note, want) {
		t.Errorf("invoiced payment_failed note %q, want it to contain %q", first.Note, want)
	}
	var later []string
	for n := 2; n <= RetryAttempts; n++ {
		later = append(later, governor.HumanDuration(m.Timers[RetryKey(n)]))
	}
	next := m.Lookup(Dunning, PaymentFailed)
	for _, want := range []string{"(" + strings.Join(later, ", ") + ")", fmt.Sprintf("attempt %d: collections", RetryAttempts)} {
		if !strings.Contains(next.Note, want) {
			t.Errorf("dunning payment_failed note %q, want it to contain %q", next.Note, want)
		}
	}
	for _, s := range []governor.State{Open, Invoiced, Paid} {
		note := m.Lookup(s, messages.BillingCreditIssued.Name).Note
		if want := fmt.Sprintf("(cap %d)", messages.MaxBasisPoints); !strings.Contains(note, want) {
			t.Errorf("%s credit_issued note %q, want it to contain %q", s, note, want)
		}
	}
}
