// Package billing is the billing governor: one instance per billing period
// of a tenant, from the first usage to payment, refund or write-off. The
// subject is the period, "YYYY-MM": subscription closes the period of the
// month its billing period started in, in UTC. The
// instance keeps a Record: the plan and currency, the usage per meter,
// the credits and, once the period closes, its Invoice.
//
// Usage accumulates per meter while the period is open. Closing prices it
// with the plan named by messages.BillingClosed, or else the plan recorded
// by Opened, read from the provider's product catalog. A plan missing from
// the catalog refuses the close with ReasonPlanNotFound; a plan prices in
// any catalog state, so a deprecated or retired plan still bills its
// subscribers. A meter the plan does not price bills 0 and is listed in
// the invoice's unpriced_meters. A plan whose currency differs from the
// period's refuses the close with ReasonCurrencyMismatch. Credits
// (messages.BillingCreditIssued) issued while the period is open reduce
// the invoice; credits issued later are recorded as credit_owed. Dunning
// retries the charge up to RetryAttempts times, waiting the durations of
// the timers RetryKey(1) … RetryKey(RetryAttempts) before attempts 1 to
// RetryAttempts; the failure of the last attempt moves the period to
// collections.
//
// Conventions of its effects: the cascades to subscription
// (messages.SubscriptionPaymentFailed, messages.SubscriptionPaymentSucceeded)
// broadcast (subject "*") and reach every subscription of the tenant; the
// actions IssueInvoice and RetryPayment carry the period's subject and
// amounts in minor units of the invoice's currency.
package billing

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/catalog"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

// Domain is the governor's domain.
const Domain = governor.Billing

// States of the billing machine.
const (
	Open          governor.State = "open"
	Invoiced      governor.State = "invoiced"
	Paid          governor.State = "paid"
	Dunning       governor.State = "dunning"
	Collections   governor.State = "collections"
	RefundPending governor.State = "refund_pending"
	Disputed      governor.State = "disputed"
	Refunded      governor.State = "refunded"
	WrittenOff    governor.State = "written_off"
)

// Events of the billing machine that come from outside the governors;
// messages.BillingClosed and messages.BillingCreditIssued are its events
// other governors send (the provider may send them too).
const (
	Opened           governor.EventName = "opened"
	UsageRecorded    governor.EventName = "usage_recorded"
	PaymentSucceeded governor.EventName = "payment_succeeded"
	PaymentFailed    governor.EventName = "payment_failed"
	WriteOff         governor.EventName = "written_off"
	RefundRequested  governor.EventName = "refund_requested"
	RefundSettled    governor.EventName = "refund_settled"
	DisputeOpened    governor.EventName = "disputed"
	DisputeWon       governor.EventName = "dispute_won"
	DisputeLost      governor.EventName = "dispute_lost"
)

// Reason codes the billing machine rejects with.
const (
	ReasonAmountOverflow       governor.ReasonCode = "amount_overflow"
	ReasonPlanNotFound         governor.ReasonCode = "plan_not_found"
	ReasonCurrencyMismatch     governor.ReasonCode = "currency_mismatch"
	ReasonAmountMismatch       governor.ReasonCode = "amount_mismatch"
	ReasonRefundExceedsPayment governor.ReasonCode = "refund_exceeds_payment"
)

// RetryTimer is the dunning timer; its timeout asks the payment provider
// to retry the charge.
const RetryTimer = "retry"

// RetryAttempts is the number of payment retries before collections: the
// failure reported while attempt RetryAttempts is pending moves the period
// to collections.
const RetryAttempts = 4

// Default delays before each payment retry attempt: the durations of the
// timers RetryKey(1) … RetryKey(RetryAttempts).
const (
	DefaultRetry1 = 2 * 24 * time.Hour
	DefaultRetry2 = 1 * 24 * time.Hour
	DefaultRetry3 = 3 * 24 * time.Hour
	DefaultRetry4 = 7 * 24 * time.Hour
)

// defaultRetries are the default delays before attempts 1 … RetryAttempts.
var defaultRetries = [RetryAttempts]time.Duration{DefaultRetry1, DefaultRetry2, DefaultRetry3, DefaultRetry4}

// MaxAmount bounds every quantity and amount a period holds, in meter
// units or minor units: a usage total, an invoice line or an invoice
// total beyond it is refused with ReasonAmountOverflow.
const MaxAmount int64 = math.MaxInt64

// MaxFailureReason bounds the reason of a payment failure, in bytes.
const MaxFailureReason = 256

// RetryKey names the Machine.Timers entry holding the delay before
// payment retry attempt n: RetryTimer ("retry") for the first, then
// "retry_2", "retry_3" … up to attempt RetryAttempts. Only the timer RetryTimer is ever armed; the other
// entries are its durations for later attempts, so that a deployment can
// configure the whole schedule with Machine.WithTimers.
func RetryKey(attempt int) string {
	if attempt <= 1 {
		return RetryTimer
	}
	return RetryTimer + "_" + strconv.Itoa(attempt)
}

// Actions the machine publishes for actuators: the invoice of a closed
// period, and a retry of its charge while dunning.
var (
	IssueInvoice = governor.DefineAction("billing.issue_invoice", InvoiceAction{
		Period: "2026-10",
		Invoice: Invoice{
			Plan: "gold", Currency: "EUR", Lines: map[string]int64{"api_calls": 1000},
			Subtotal: 1000, Credit: 100, Amount: 900,
		},
	})
	RetryPayment = governor.DefineAction("billing.retry_payment", RetryAction{
		Period: "2026-10", Attempt: 1, Amount: 900, Currency: "EUR",
	})
)

// Invoice is the invoice computed when a period closes. Amounts are minor
// units of Currency.
type Invoice struct {
	Plan     string `json:"plan"`
	Currency string `json:"currency"`
	// Lines is quantity × unit price per priced meter.
	Lines map[string]int64 `json:"lines,omitempty"`
	// Unpriced lists the meters with usage that the plan does not price;
	// they bill 0.
	Unpriced []string `json:"unpriced_meters,omitempty"`
	Subtotal int64    `json:"subtotal"`
	// Credit is the part of Subtotal waived by the credits issued while
	// the period was open.
	Credit int64 `json:"credit"`
	// Amount is Subtotal − Credit, what the customer owes.
	Amount int64 `json:"amount"`
}

// Record is what a billing period keeps.
type Record struct {
	Plan     string           `json:"plan,omitempty"`
	Currency string           `json:"currency,omitempty"`
	Meters   map[string]int64 `json:"meters,omitempty"`
	// CreditBP accumulates the credits issued for the period, capped at
	// messages.MaxBasisPoints (100%).
	CreditBP int      `json:"credit_bp,omitempty"`
	Invoice  *Invoice `json:"invoice,omitempty"`
	// CreditOwed is the credit, in minor units, granted after the invoice
	// was issued: it is owed to the customer outside this invoice.
	CreditOwed int64 `json:"credit_owed,omitempty"`
	// Attempt is the payment retry that is pending (dunning) or the last
	// one that failed (collections).
	Attempt      int   `json:"attempt,omitempty"`
	PaidAmount   int64 `json:"paid_amount,omitempty"`
	RefundAmount int64 `json:"refund_amount,omitempty"`
}

// Opening is the data of billing.opened: the plan and the currency of the
// period, both optional.
type Opening struct {
	Plan     string `json:"plan"`
	Currency string `json:"currency"`
}

// Validate checks the optional plan id and currency.
func (p Opening) Validate() error {
	if p.Plan != "" {
		if err := messages.CheckKey("plan", p.Plan); err != nil {
			return err
		}
	}
	if p.Currency != "" {
		return messages.CheckCurrency(p.Currency)
	}
	return nil
}

// Usage is the data of billing.usage_recorded.
type Usage struct {
	Meter    string `json:"meter"`
	Quantity int64  `json:"quantity"`
}

// Validate checks the meter name and that the quantity is positive.
func (p Usage) Validate() error {
	if err := messages.CheckKey("meter", p.Meter); err != nil {
		return err
	}
	if p.Quantity <= 0 {
		return fmt.Errorf("quantity must be a positive integer, got %d", p.Quantity)
	}
	return nil
}

// Money is the data of billing.payment_succeeded and
// billing.refund_requested: an amount in minor units and, optionally, its
// currency.
type Money struct {
	Amount   *int64 `json:"amount"`
	Currency string `json:"currency"`
}

// Validate checks that the amount is present and not negative, and the
// optional currency.
func (p Money) Validate() error {
	if p.Amount == nil {
		return errors.New("amount is required")
	}
	if *p.Amount < 0 {
		return fmt.Errorf("amount must not be negative, got %d", *p.Amount)
	}
	if p.Currency != "" {
		return messages.CheckCurrency(p.Currency)
	}
	return nil
}

// Failure is the data of billing.payment_failed: optionally the
// processor's reason.
type Failure struct {
	Reason string `json:"reason"`
}

// Validate checks the length of the reason.
func (p Failure) Validate() error {
	if len(p.Reason) > MaxFailureReason {
		return fmt.Errorf("reason is longer than %d bytes", MaxFailureReason)
	}
	return nil
}

// InvoiceAction is the data of the IssueInvoice action: the period's
// subject and its invoice.
type InvoiceAction struct {
	Period string `json:"period"`
	Invoice
}

// Validate checks the period, the currency and that the amounts are
// consistent and not negative.
func (a InvoiceAction) Validate() error {
	if err := messages.CheckKey("period", a.Period); err != nil {
		return err
	}
	if err := messages.CheckCurrency(a.Currency); err != nil {
		return err
	}
	if a.Subtotal < 0 || a.Credit < 0 || a.Credit > a.Subtotal || a.Amount != a.Subtotal-a.Credit {
		return fmt.Errorf("amounts must satisfy 0 ≤ credit ≤ subtotal and amount = subtotal − credit, got %d, %d, %d", a.Credit, a.Subtotal, a.Amount)
	}
	return nil
}

// RetryAction is the data of the RetryPayment action: the period's
// subject, the pending attempt and the invoice's amount and currency.
type RetryAction struct {
	Period   string `json:"period"`
	Attempt  int    `json:"attempt"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Validate checks the period, the attempt, the amount and the currency.
func (a RetryAction) Validate() error {
	if err := messages.CheckKey("period", a.Period); err != nil {
		return err
	}
	if a.Attempt < 1 || a.Attempt > RetryAttempts {
		return fmt.Errorf("attempt must be 1..%d, got %d", RetryAttempts, a.Attempt)
	}
	if a.Amount < 0 {
		return fmt.Errorf("amount must not be negative, got %d", a.Amount)
	}
	return messages.CheckCurrency(a.Currency)
}

// Machine returns the billing machine with its default timers.
func Machine() *governor.Machine {
	none := []governor.State{governor.StateNone}
	closed, credited := messages.BillingClosed.Name, messages.BillingCreditIssued.Name
	timers := make(map[string]time.Duration, RetryAttempts)
	for n := 1; n <= RetryAttempts; n++ {
		timers[RetryKey(n)] = defaultRetries[n-1]
	}
	return &governor.Machine{
		Domain: Domain,
		States: []governor.State{
			Open, Invoiced, Paid, Dunning, Collections,
			RefundPending, Disputed, Refunded, WrittenOff,
		},
		Terminal: []governor.State{Refunded, WrittenOff},
		Timers:   timers,
		Transitions: []governor.Transition{
			{
				From: none, On: Opened, To: Open,
				Apply: start,
				Note:  "records plan and currency when given",
			},
			{
				From: none, On: UsageRecorded, To: Open,
				Apply: recordUsage,
				Note:  "meters[meter] = quantity",
			},
			{
				From: []governor.State{Open}, On: UsageRecorded, To: Open,
				Apply: recordUsage,
				Note:  fmt.Sprintf("meters[meter] += quantity; rejected with %s beyond %d", ReasonAmountOverflow, MaxAmount),
			},
			{
				From: []governor.State{Open}, On: closed, To: Invoiced,
				Needs: closeNeeds,
				Emits: []governor.Ref{IssueInvoice.May()},
				Apply: closePeriod,
				Note: fmt.Sprintf("plan = event's plan, else the recorded one; amount = Σ quantity × unit price of the catalog plan "+
					"− credit_bp of it (an unpriced meter bills 0 and is listed); "+
					"rejected with %s, %s or %s", ReasonPlanNotFound, ReasonCurrencyMismatch, ReasonAmountOverflow),
			},
			{
				From: []governor.State{Invoiced}, On: PaymentSucceeded, To: Paid,
				Guard: checkPayment,
				Apply: recordPayment,
				Note:  paymentNote,
			},
			{
				From: []governor.State{Invoiced}, On: PaymentFailed, To: Dunning,
				Arm:     []string{RetryTimer},
				Cascade: []governor.Cascade{messages.SubscriptionPaymentFailed.To(governor.BroadcastSubject)},
				Apply:   startDunning,
				Note:    fmt.Sprintf("attempt 1; timer %s waits Timers[%s] (%s)", RetryTimer, RetryKey(1), governor.HumanDuration(DefaultRetry1)),
			},
			{
				From: []governor.State{Dunning}, On: governor.Timeout(RetryTimer), To: Dunning,
				Emits: []governor.Ref{RetryPayment.May()},
				Apply: retry,
				Note:  "retries the charge of the pending attempt, at the invoice's amount and currency",
			},
			{
				From: []governor.State{Dunning}, On: PaymentFailed, To: Dunning, Alt: []governor.State{Collections},
				Apply: nextAttempt,
				Note: fmt.Sprintf("attempt < %d: attempt+1 and timer %s waits Timers[%s_<attempt>] (%s); attempt %d: %s",
					RetryAttempts, RetryTimer, RetryTimer, laterRetries(), RetryAttempts, Collections),
			},
			{
				From: []governor.State{Dunning, Collections}, On: PaymentSucceeded, To: Paid,
				Cascade: []governor.Cascade{messages.SubscriptionPaymentSucceeded.To(governor.BroadcastSubject)},
				Guard:   checkPayment,
				Apply:   recordPayment,
				Note:    paymentNote,
			},
			{
				From: []governor.State{Collections}, On: WriteOff, To: WrittenOff,
			},
			{
				From: []governor.State{Paid}, On: RefundRequested, To: RefundPending,
				Guard: checkRefund,
				Apply: recordRefund,
				Note:  fmt.Sprintf("0 < amount ≤ paid amount, else rejected with %s", ReasonRefundExceedsPayment),
			},
			{
				From: []governor.State{RefundPending}, On: RefundSettled, To: Refunded,
			},
			{
				From: []governor.State{Paid}, On: DisputeOpened, To: Disputed,
			},
			{
				From: []governor.State{Disputed}, On: DisputeWon, To: Paid,
			},
			{
				From: []governor.State{Disputed}, On: DisputeLost, To: Refunded,
				Apply: loseDispute,
				Note:  "refund_amount = paid amount",
			},
			{
				From: []governor.State{Open}, On: credited, To: Open,
				Apply: recordCredit,
				Note:  fmt.Sprintf("credit_bp += basis_points (cap %d); deducted from the invoice at close", messages.MaxBasisPoints),
			},
			{
				From: []governor.State{Invoiced}, On: credited, To: Invoiced,
				Apply: recordCredit,
				Note:  creditOwedNote,
			},
			{
				From: []governor.State{Paid}, On: credited, To: Paid,
				Apply: recordCredit,
				Note:  creditOwedNote,
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			Opened:           governor.FromProvider,
			UsageRecorded:    governor.FromProvider,
			closed:           {governor.SenderExternal, governor.SenderGovernor},
			PaymentSucceeded: governor.FromProvider,
			PaymentFailed:    governor.FromProvider,
			WriteOff:         governor.FromProvider,
			RefundRequested:  governor.FromProvider,
			RefundSettled:    governor.FromProvider,
			DisputeOpened:    governor.FromProvider,
			DisputeWon:       governor.FromProvider,
			DisputeLost:      governor.FromProvider,
			credited:         {governor.SenderExternal, governor.SenderGovernor},
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			Opened:           governor.Schema[Opening](),
			UsageRecorded:    governor.Schema[Usage](),
			closed:           messages.BillingClosed.Schema(),
			PaymentSucceeded: governor.Schema[Money](),
			PaymentFailed:    governor.Schema[Failure](),
			RefundRequested:  governor.Schema[Money](),
			credited:         messages.BillingCreditIssued.Schema(),
		},
		Reasons: []governor.Reason{
			{Code: ReasonAmountOverflow, Doc: fmt.Sprintf("a meter's usage, an invoice line or the invoice total would exceed %d", MaxAmount)},
			{Code: ReasonPlanNotFound, Doc: "neither the closed event nor the period names a plan, or the provider's catalog does not have it"},
			{Code: ReasonCurrencyMismatch, Doc: "the plan prices in another currency than the period's, or a refund is in another currency than the invoice"},
			{Code: ReasonAmountMismatch, Doc: "a payment's amount, or its currency when given, differs from the invoice's"},
			{Code: ReasonRefundExceedsPayment, Doc: "a refund is of 0 or of more than the amount paid"},
		},
	}
}

// paymentNote documents the check of a payment against the invoice.
var paymentNote = fmt.Sprintf("amount (and currency, if given) must equal the invoice, else rejected with %s", ReasonAmountMismatch)

// creditOwedNote documents credits issued after the invoice.
var creditOwedNote = fmt.Sprintf("credit_bp += basis_points (cap %d); the invoice stands, "+
	"credit_owed = subtotal × credit_bp / %d − the credit already deducted", messages.MaxBasisPoints, messages.MaxBasisPoints)

// laterRetries renders the default delays before attempts 2 …
// RetryAttempts, e.g. "1d, 3d, 7d".
func laterRetries() string {
	parts := make([]string, 0, RetryAttempts-1)
	for _, d := range defaultRetries[1:] {
		parts = append(parts, governor.HumanDuration(d))
	}
	return strings.Join(parts, ", ")
}

// closeNeeds names the catalog entry of the plan a closed event prices
// with: the event's plan, else the plan the period recorded.
func closeNeeds(s governor.Scope) []governor.Key {
	return catalog.Needs(s.Provider, planOf(s.Instance, s.Event))
}

// planOf returns the plan a closed event prices with, or "".
func planOf(inst governor.Instance, ev governor.Event) string {
	var p messages.PeriodClose
	if len(ev.Data) > 0 && json.Unmarshal(ev.Data, &p) == nil && p.Plan != "" {
		return p.Plan
	}
	var d Record
	if len(inst.Data) > 0 && json.Unmarshal(inst.Data, &d) == nil {
		return d.Plan
	}
	return ""
}

// start opens a period with an optional plan and currency.
func start(c *governor.Ctx) error {
	var p Opening
	if err := c.Payload(&p); err != nil {
		return err
	}
	return c.Store(Record{Plan: p.Plan, Currency: p.Currency})
}

// recordUsage adds the event's quantity to its meter.
func recordUsage(c *governor.Ctx) error {
	var p Usage
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[Record](c)
	if err != nil {
		return err
	}
	sum, ok := add(d.Meters[p.Meter], p.Quantity)
	if !ok {
		return governor.Reject(ReasonAmountOverflow, "meter %s would exceed %d", p.Meter, MaxAmount)
	}
	if d.Meters == nil {
		d.Meters = map[string]int64{}
	}
	d.Meters[p.Meter] = sum
	return c.Store(d)
}

// closePeriod prices the period's usage with the catalog plan and issues
// the invoice.
func closePeriod(c *governor.Ctx) error {
	d, err := governor.Data[Record](c)
	if err != nil {
		return err
	}
	plan := planOf(c.Instance(), c.Event())
	if plan == "" {
		return governor.Reject(ReasonPlanNotFound, "neither the closed event nor the period names a plan")
	}
	p, ok, err := catalog.Lookup(c, plan)
	if err != nil {
		return err
	}
	if !ok {
		return governor.Reject(ReasonPlanNotFound, "plan %q is not in the catalog", plan)
	}
	if d.Currency != "" && d.Currency != p.Currency {
		return governor.Reject(ReasonCurrencyMismatch, "the period bills in %s, plan %q in %s", d.Currency, plan, p.Currency)
	}
	inv, err := price(d, plan, p)
	if err != nil {
		return err
	}
	d.Plan, d.Currency, d.Invoice = plan, p.Currency, &inv
	if err := c.Store(d); err != nil {
		return err
	}
	return IssueInvoice.Emit(c, InvoiceAction{Period: c.Instance().Subject, Invoice: inv})
}

// price computes the invoice of d's usage at the unit prices of p,
// deducting the credits recorded so far.
func price(d Record, plan string, p catalog.Plan) (Invoice, error) {
	inv := Invoice{Plan: plan, Currency: p.Currency}
	for _, m := range slices.Sorted(maps.Keys(d.Meters)) {
		unit, priced := p.UnitPrices[m]
		if !priced {
			inv.Unpriced = append(inv.Unpriced, m)
			continue
		}
		line, ok := mul(d.Meters[m], unit)
		if !ok {
			return inv, governor.Reject(ReasonAmountOverflow, "meter %s: %d × %d exceeds %d", m, d.Meters[m], unit, MaxAmount)
		}
		if inv.Lines == nil {
			inv.Lines = map[string]int64{}
		}
		inv.Lines[m] = line
		if inv.Subtotal, ok = add(inv.Subtotal, line); !ok {
			return inv, governor.Reject(ReasonAmountOverflow, "the invoice total exceeds %d", MaxAmount)
		}
	}
	inv.Credit = portion(inv.Subtotal, d.CreditBP)
	inv.Amount = inv.Subtotal - inv.Credit
	return inv, nil
}

// checkPayment refuses a payment that does not settle the invoice
// exactly.
func checkPayment(c *governor.Ctx) error {
	var p Money
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[Record](c)
	if err != nil {
		return err
	}
	if d.Invoice == nil {
		return fault.Errorf(fault.Internal, "billing.checkPayment", "period %s is %s without an invoice", c.Instance().Subject, c.Instance().State)
	}
	if *p.Amount != d.Invoice.Amount || (p.Currency != "" && p.Currency != d.Invoice.Currency) {
		cur := p.Currency
		if cur == "" {
			cur = d.Invoice.Currency
		}
		return governor.Reject(ReasonAmountMismatch, "paid %d %s, the invoice is %d %s", *p.Amount, cur, d.Invoice.Amount, d.Invoice.Currency)
	}
	return nil
}

// recordPayment records the amount paid.
func recordPayment(c *governor.Ctx) error {
	var p Money
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *Record) error {
		d.PaidAmount = *p.Amount
		return nil
	})
}

// startDunning records the first failed charge.
func startDunning(c *governor.Ctx) error {
	return governor.Update(c, func(d *Record) error {
		d.Attempt = 1
		return nil
	})
}

// retry asks the payment provider to retry the pending attempt.
func retry(c *governor.Ctx) error {
	d, err := governor.Data[Record](c)
	if err != nil {
		return err
	}
	a := RetryAction{Period: c.Instance().Subject, Attempt: d.Attempt}
	if d.Invoice != nil {
		a.Amount, a.Currency = d.Invoice.Amount, d.Invoice.Currency
	}
	return RetryPayment.Emit(c, a)
}

// nextAttempt schedules the next retry, or gives up after the last.
func nextAttempt(c *governor.Ctx) error {
	d, err := governor.Data[Record](c)
	if err != nil {
		return err
	}
	if d.Attempt >= RetryAttempts {
		c.Goto(Collections)
		return nil
	}
	d.Attempt++
	c.Arm(RetryTimer, c.Duration(RetryKey(d.Attempt)))
	return c.Store(d)
}

// checkRefund refuses a refund larger than the payment.
func checkRefund(c *governor.Ctx) error {
	var p Money
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[Record](c)
	if err != nil {
		return err
	}
	if p.Currency != "" && d.Invoice != nil && p.Currency != d.Invoice.Currency {
		return governor.Reject(ReasonCurrencyMismatch, "refund in %s, the invoice is in %s", p.Currency, d.Invoice.Currency)
	}
	if *p.Amount == 0 || *p.Amount > d.PaidAmount {
		return governor.Reject(ReasonRefundExceedsPayment, "refund %d, paid %d; a refund must be 1..%d", *p.Amount, d.PaidAmount, d.PaidAmount)
	}
	return nil
}

// recordRefund records the amount to refund.
func recordRefund(c *governor.Ctx) error {
	var p Money
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *Record) error {
		d.RefundAmount = *p.Amount
		return nil
	})
}

// loseDispute records that the whole payment went back to the customer.
func loseDispute(c *governor.Ctx) error {
	return governor.Update(c, func(d *Record) error {
		d.RefundAmount = d.PaidAmount
		return nil
	})
}

// recordCredit accumulates a credit; after the invoice it becomes credit
// owed to the customer.
func recordCredit(c *governor.Ctx) error {
	var p messages.Credit
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *Record) error {
		d.CreditBP = min(d.CreditBP+p.BasisPoints, messages.MaxBasisPoints)
		if d.Invoice != nil {
			d.CreditOwed = portion(d.Invoice.Subtotal, d.CreditBP) - d.Invoice.Credit
		}
		return nil
	})
}

// add returns a+b for 0 ≤ a, b ≤ MaxAmount, and false when the sum
// exceeds MaxAmount.
func add(a, b int64) (int64, bool) {
	if b > MaxAmount-a {
		return 0, false
	}
	return a + b, true
}

// mul returns a×b for non-negative a and b, and false when the product
// exceeds MaxAmount.
func mul(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > uint64(MaxAmount) {
		return 0, false
	}
	return int64(lo), true
}

// portion returns amount × bp / messages.MaxBasisPoints rounded down, for
// a non-negative amount and 0 ≤ bp ≤ messages.MaxBasisPoints; it cannot
// overflow.
func portion(amount int64, bp int) int64 {
	hi, lo := bits.Mul64(uint64(amount), uint64(bp))
	q, _ := bits.Div64(hi, lo, messages.MaxBasisPoints)
	return int64(q)
}
