package machines

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// States of the billing machine.
const (
	billOpen          governor.State = "open"
	billInvoiced      governor.State = "invoiced"
	billPaid          governor.State = "paid"
	billDunning       governor.State = "dunning"
	billCollections   governor.State = "collections"
	billRefundPending governor.State = "refund_pending"
	billDisputed      governor.State = "disputed"
	billRefunded      governor.State = "refunded"
	billWrittenOff    governor.State = "written_off"
)

// Events of the billing machine.
const (
	billOpened           governor.EventName = "opened"
	billUsageRecorded    governor.EventName = "usage_recorded"
	billClosed           governor.EventName = "closed"
	billPaymentSucceeded governor.EventName = "payment_succeeded"
	billPaymentFailed    governor.EventName = "payment_failed"
	billWriteOff         governor.EventName = "written_off"
	billRefundRequested  governor.EventName = "refund_requested"
	billRefundSettled    governor.EventName = "refund_settled"
	billDisputeOpened    governor.EventName = "disputed"
	billDisputeWon       governor.EventName = "dispute_won"
	billDisputeLost      governor.EventName = "dispute_lost"
	billCreditIssued     governor.EventName = "credit_issued"
)

// billRetryTimer is the dunning timer; its timeout asks the payment
// provider to retry the charge.
const billRetryTimer = "retry"

// billRetryAttempts is the number of payment retries before collections:
// the failure reported while attempt billRetryAttempts is pending moves the
// period to collections.
const billRetryAttempts = 4

// billMaxBP is 100% in basis points.
const billMaxBP = 10000

// Actions billing publishes for actuators.
const (
	billIssueInvoice = "billing.issue_invoice"
	billRetryPayment = "billing.retry_payment"
)

// billRetryKey names the Machine.Timers entry holding the delay before
// payment retry attempt n: "retry" for the first, "retry_2" … "retry_4"
// for the later ones. Only the timer "retry" is ever armed; the other
// entries are its durations for later attempts, so that a deployment can
// configure the whole schedule with Machine.WithTimers.
func billRetryKey(attempt int) string {
	if attempt <= 1 {
		return billRetryTimer
	}
	return billRetryTimer + "_" + strconv.Itoa(attempt)
}

// billInvoice is the invoice computed when a period closes. Amounts are
// minor units of Currency.
type billInvoice struct {
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

// billData is what a billing period keeps.
type billData struct {
	Plan     string           `json:"plan,omitempty"`
	Currency string           `json:"currency,omitempty"`
	Meters   map[string]int64 `json:"meters,omitempty"`
	// CreditBP accumulates the credits issued for the period, capped at
	// 100%.
	CreditBP int          `json:"credit_bp,omitempty"`
	Invoice  *billInvoice `json:"invoice,omitempty"`
	// CreditOwed is the credit, in minor units, granted after the invoice
	// was issued: it is owed to the customer outside this invoice.
	CreditOwed int64 `json:"credit_owed,omitempty"`
	// Attempt is the payment retry that is pending (dunning) or the last
	// one that failed (collections).
	Attempt      int   `json:"attempt,omitempty"`
	PaidAmount   int64 `json:"paid_amount,omitempty"`
	RefundAmount int64 `json:"refund_amount,omitempty"`
}

// billOpenedData is the data of billing.opened.
type billOpenedData struct {
	Plan     string `json:"plan"`
	Currency string `json:"currency"`
}

// Validate checks the optional plan id and currency.
func (p billOpenedData) Validate() error {
	if p.Plan != "" {
		if err := catCheckKey("plan", p.Plan); err != nil {
			return err
		}
	}
	if p.Currency != "" {
		return catCheckCurrency(p.Currency)
	}
	return nil
}

// billUsageData is the data of billing.usage_recorded.
type billUsageData struct {
	Meter    string `json:"meter"`
	Quantity int64  `json:"quantity"`
}

// Validate checks the meter name and that the quantity is positive.
func (p billUsageData) Validate() error {
	if err := catCheckKey("meter", p.Meter); err != nil {
		return err
	}
	if p.Quantity <= 0 {
		return fmt.Errorf("quantity must be a positive integer, got %d", p.Quantity)
	}
	return nil
}

// billClosedData is the data of billing.closed, as subscription emits it.
type billClosedData struct {
	Plan string `json:"plan"`
}

// Validate checks the optional plan id.
func (p billClosedData) Validate() error {
	if p.Plan == "" {
		return nil
	}
	return catCheckKey("plan", p.Plan)
}

// billAmountData is the data of billing.payment_succeeded and
// billing.refund_requested: an amount in minor units and, optionally, its
// currency.
type billAmountData struct {
	Amount   *int64 `json:"amount"`
	Currency string `json:"currency"`
}

// billFailureData is the data of billing.payment_failed: optionally the
// processor's reason.
type billFailureData struct {
	Reason string `json:"reason"`
}

// billMaxReasonLen bounds a payment failure's reason.
const billMaxReasonLen = 256

// Validate checks the length of the reason.
func (p billFailureData) Validate() error {
	if len(p.Reason) > billMaxReasonLen {
		return fmt.Errorf("reason is longer than %d bytes", billMaxReasonLen)
	}
	return nil
}

// Validate checks that the amount is present and not negative.
func (p billAmountData) Validate() error {
	if p.Amount == nil {
		return errors.New("amount is required")
	}
	if *p.Amount < 0 {
		return fmt.Errorf("amount must not be negative, got %d", *p.Amount)
	}
	if p.Currency != "" {
		return catCheckCurrency(p.Currency)
	}
	return nil
}

// billCreditData is the data of billing.credit_issued, as quota_sla emits
// it.
type billCreditData struct {
	BasisPoints int `json:"basis_points"`
}

// Validate checks that the credit is 1..10000 basis points.
func (p billCreditData) Validate() error {
	if p.BasisPoints < 1 || p.BasisPoints > billMaxBP {
		return fmt.Errorf("basis_points must be 1..%d, got %d", billMaxBP, p.BasisPoints)
	}
	return nil
}

// billInvoiceAction is the data of the billing.issue_invoice action.
type billInvoiceAction struct {
	Period string `json:"period"`
	billInvoice
}

// billRetryAction is the data of the billing.retry_payment action.
type billRetryAction struct {
	Period   string `json:"period"`
	Attempt  int    `json:"attempt"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// billingMachine returns the billing machine. The subject
// is the billing period, "YYYY-MM"; the instance keeps billData.
//
// Usage accumulates per meter while the period is open. Closing prices it
// with the plan named by the closed event, or else the plan recorded by
// opened. A plan missing from the catalog refuses the close with reason
// plan_not_found; a plan prices in any catalog state, so a deprecated or
// retired plan still bills its subscribers. A meter the plan does not
// price bills 0 and is listed in the invoice's unpriced_meters. A plan
// whose currency differs from the period's refuses the close with
// currency_mismatch. Credits issued while the period is open reduce the
// invoice; credits issued later are recorded as credit_owed. Dunning
// retries the charge up to billRetryAttempts times, waiting
// Timers["retry"], ["retry_2"], ["retry_3"], ["retry_4"] (2d, 1d, 3d, 7d)
// before attempts 1 to 4; the failure of attempt 4 moves the period to
// collections.
func billingMachine() *governor.Machine {
	none := []governor.State{governor.StateNone}
	return &governor.Machine{
		Domain: governor.Billing,
		States: []governor.State{
			billOpen, billInvoiced, billPaid, billDunning, billCollections,
			billRefundPending, billDisputed, billRefunded, billWrittenOff,
		},
		Terminal: []governor.State{billRefunded, billWrittenOff},
		Timers: map[string]time.Duration{
			billRetryKey(1): 2 * 24 * time.Hour,
			billRetryKey(2): 1 * 24 * time.Hour,
			billRetryKey(3): 3 * 24 * time.Hour,
			billRetryKey(4): 7 * 24 * time.Hour,
		},
		Transitions: []governor.Transition{
			{
				From: none, On: billOpened, To: billOpen,
				Apply: billStart,
				Note:  "records plan and currency when given",
			},
			{
				From: none, On: billUsageRecorded, To: billOpen,
				Apply: billRecordUsage,
				Note:  "meters[meter] = quantity",
			},
			{
				From: []governor.State{billOpen}, On: billUsageRecorded, To: billOpen,
				Apply: billRecordUsage,
				Note:  "meters[meter] += quantity; rejected with amount_overflow beyond 2^63-1",
			},
			{
				From: []governor.State{billOpen}, On: billClosed, To: billInvoiced,
				Apply: billClose,
				Note: "plan = event's plan, else the recorded one; amount = Σ quantity × unit price of the catalog plan " +
					"− credit_bp of it (an unpriced meter bills 0 and is listed); actuate billing.issue_invoice {invoice}; " +
					"rejected with plan_not_found, currency_mismatch or amount_overflow",
			},
			{
				From: []governor.State{billInvoiced}, On: billPaymentSucceeded, To: billPaid,
				Guard: billCheckPayment,
				Apply: billRecordPayment,
				Note:  "amount (and currency, if given) must equal the invoice, else rejected with amount_mismatch",
			},
			{
				From: []governor.State{billInvoiced}, On: billPaymentFailed, To: billDunning,
				Arm:     []string{billRetryTimer},
				Cascade: []governor.Cascade{{Domain: governor.Subscription, Event: "payment_failed", Subject: governor.BroadcastSubject}},
				Apply:   billStartDunning,
				Note:    "attempt 1; timer retry waits Timers[retry] (2d)",
			},
			{
				From: []governor.State{billDunning}, On: governor.Timeout(billRetryTimer), To: billDunning,
				Apply: billRetry,
				Note:  "actuate billing.retry_payment {period, attempt, amount, currency}",
			},
			{
				From: []governor.State{billDunning}, On: billPaymentFailed, To: billDunning, Alt: []governor.State{billCollections},
				Apply: billNextAttempt,
				Note: "attempt < 4: attempt+1 and timer retry waits Timers[retry_<attempt>] (1d, 3d, 7d); " +
					"attempt 4: collections",
			},
			{
				From: []governor.State{billDunning, billCollections}, On: billPaymentSucceeded, To: billPaid,
				Cascade: []governor.Cascade{{Domain: governor.Subscription, Event: "payment_succeeded", Subject: governor.BroadcastSubject}},
				Guard:   billCheckPayment,
				Apply:   billRecordPayment,
				Note:    "amount (and currency, if given) must equal the invoice, else rejected with amount_mismatch",
			},
			{
				From: []governor.State{billCollections}, On: billWriteOff, To: billWrittenOff,
			},
			{
				From: []governor.State{billPaid}, On: billRefundRequested, To: billRefundPending,
				Guard: billCheckRefund,
				Apply: billRecordRefund,
				Note:  "0 < amount ≤ paid amount, else rejected with refund_exceeds_payment",
			},
			{
				From: []governor.State{billRefundPending}, On: billRefundSettled, To: billRefunded,
			},
			{
				From: []governor.State{billPaid}, On: billDisputeOpened, To: billDisputed,
			},
			{
				From: []governor.State{billDisputed}, On: billDisputeWon, To: billPaid,
			},
			{
				From: []governor.State{billDisputed}, On: billDisputeLost, To: billRefunded,
				Apply: billLoseDispute,
				Note:  "refund_amount = paid amount",
			},
			{
				From: []governor.State{billOpen}, On: billCreditIssued, To: billOpen,
				Apply: billRecordCredit,
				Note:  "credit_bp += basis_points (cap 10000); deducted from the invoice at close",
			},
			{
				From: []governor.State{billInvoiced}, On: billCreditIssued, To: billInvoiced,
				Apply: billRecordCredit,
				Note:  billCreditOwedNote,
			},
			{
				From: []governor.State{billPaid}, On: billCreditIssued, To: billPaid,
				Apply: billRecordCredit,
				Note:  billCreditOwedNote,
			},
		},
		Senders: map[governor.EventName][]governor.Sender{
			billOpened:           governor.FromProvider,
			billUsageRecorded:    governor.FromProvider,
			billClosed:           {governor.SenderExternal, governor.SenderGovernor},
			billPaymentSucceeded: governor.FromProvider,
			billPaymentFailed:    governor.FromProvider,
			billWriteOff:         governor.FromProvider,
			billRefundRequested:  governor.FromProvider,
			billRefundSettled:    governor.FromProvider,
			billDisputeOpened:    governor.FromProvider,
			billDisputeWon:       governor.FromProvider,
			billDisputeLost:      governor.FromProvider,
			billCreditIssued:     {governor.SenderExternal, governor.SenderGovernor},
		},
		ActionKinds: []string{billIssueInvoice, billRetryPayment},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			billOpened:           governor.Schema[billOpenedData](),
			billUsageRecorded:    governor.Schema[billUsageData](),
			billClosed:           governor.Schema[billClosedData](),
			billPaymentSucceeded: governor.Schema[billAmountData](),
			billPaymentFailed:    governor.Schema[billFailureData](),
			billRefundRequested:  governor.Schema[billAmountData](),
			billCreditIssued:     governor.Schema[billCreditData](),
		},
		Needs: billNeeds,
	}
}

// billCreditOwedNote documents credits issued after the invoice.
const billCreditOwedNote = "credit_bp += basis_points (cap 10000); the invoice stands, " +
	"credit_owed = subtotal × credit_bp / 10000 − the credit already deducted"

// billNeeds asks for the catalog entry of the plan a closed event prices
// with: the event's plan, else the plan the period recorded.
func billNeeds(inst governor.Instance, ev governor.Event) governor.Needs {
	if ev.Name != billClosed {
		return governor.Needs{}
	}
	if plan := billPlanOf(inst, ev); plan != "" {
		return governor.Needs{Plans: []string{plan}}
	}
	return governor.Needs{}
}

// billPlanOf returns the plan a closed event prices with, or "".
func billPlanOf(inst governor.Instance, ev governor.Event) string {
	var p billClosedData
	if len(ev.Data) > 0 && json.Unmarshal(ev.Data, &p) == nil && p.Plan != "" {
		return p.Plan
	}
	var d billData
	if len(inst.Data) > 0 && json.Unmarshal(inst.Data, &d) == nil {
		return d.Plan
	}
	return ""
}

// billStart opens a period with an optional plan and currency.
func billStart(c *governor.Ctx) error {
	var p billOpenedData
	if err := c.Payload(&p); err != nil {
		return err
	}
	return c.Store(billData{Plan: p.Plan, Currency: p.Currency})
}

// billRecordUsage adds the event's quantity to its meter.
func billRecordUsage(c *governor.Ctx) error {
	var p billUsageData
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[billData](c)
	if err != nil {
		return err
	}
	sum, ok := billAdd(d.Meters[p.Meter], p.Quantity)
	if !ok {
		return governor.Reject("amount_overflow: meter %s would exceed %d", p.Meter, int64(math.MaxInt64))
	}
	if d.Meters == nil {
		d.Meters = map[string]int64{}
	}
	d.Meters[p.Meter] = sum
	return c.Store(d)
}

// billClose prices the period's usage with the catalog plan and issues
// the invoice.
func billClose(c *governor.Ctx) error {
	d, err := governor.Data[billData](c)
	if err != nil {
		return err
	}
	plan := billPlanOf(c.Instance(), c.Event())
	if plan == "" {
		return governor.Reject("plan_not_found: neither the closed event nor the period names a plan")
	}
	p, ok := c.Facts().Plans[plan]
	if !ok {
		return governor.Reject("plan_not_found: plan %q is not in the catalog", plan)
	}
	if d.Currency != "" && d.Currency != p.Currency {
		return governor.Reject("currency_mismatch: the period bills in %s, plan %q in %s", d.Currency, plan, p.Currency)
	}
	inv, err := billPrice(d, plan, p)
	if err != nil {
		return err
	}
	d.Plan, d.Currency, d.Invoice = plan, p.Currency, &inv
	if err := c.Store(d); err != nil {
		return err
	}
	return c.Actuate(billIssueInvoice, billInvoiceAction{Period: c.Instance().Subject, billInvoice: inv})
}

// billPrice computes the invoice of d's usage at the unit prices of p,
// deducting the credits recorded so far.
func billPrice(d billData, plan string, p governor.Plan) (billInvoice, error) {
	inv := billInvoice{Plan: plan, Currency: p.Currency}
	for _, m := range slices.Sorted(maps.Keys(d.Meters)) {
		price, priced := p.UnitPrices[m]
		if !priced {
			inv.Unpriced = append(inv.Unpriced, m)
			continue
		}
		line, ok := billMul(d.Meters[m], price)
		if !ok {
			return inv, governor.Reject("amount_overflow: meter %s: %d × %d exceeds %d", m, d.Meters[m], price, int64(math.MaxInt64))
		}
		if inv.Lines == nil {
			inv.Lines = map[string]int64{}
		}
		inv.Lines[m] = line
		if inv.Subtotal, ok = billAdd(inv.Subtotal, line); !ok {
			return inv, governor.Reject("amount_overflow: the invoice total exceeds %d", int64(math.MaxInt64))
		}
	}
	inv.Credit = billPortion(inv.Subtotal, d.CreditBP)
	inv.Amount = inv.Subtotal - inv.Credit
	return inv, nil
}

// billCheckPayment refuses a payment that does not settle the invoice
// exactly.
func billCheckPayment(c *governor.Ctx) error {
	var p billAmountData
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[billData](c)
	if err != nil {
		return err
	}
	if d.Invoice == nil {
		return fault.Errorf(fault.Internal, "machines.billing", "period %s is %s without an invoice", c.Instance().Subject, c.Instance().State)
	}
	if *p.Amount != d.Invoice.Amount || (p.Currency != "" && p.Currency != d.Invoice.Currency) {
		cur := p.Currency
		if cur == "" {
			cur = d.Invoice.Currency
		}
		return governor.Reject("amount_mismatch: paid %d %s, the invoice is %d %s", *p.Amount, cur, d.Invoice.Amount, d.Invoice.Currency)
	}
	return nil
}

// billRecordPayment records the amount paid.
func billRecordPayment(c *governor.Ctx) error {
	var p billAmountData
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *billData) error {
		d.PaidAmount = *p.Amount
		return nil
	})
}

// billStartDunning records the first failed charge.
func billStartDunning(c *governor.Ctx) error {
	return governor.Update(c, func(d *billData) error {
		d.Attempt = 1
		return nil
	})
}

// billRetry asks the payment provider to retry the pending attempt.
func billRetry(c *governor.Ctx) error {
	d, err := governor.Data[billData](c)
	if err != nil {
		return err
	}
	a := billRetryAction{Period: c.Instance().Subject, Attempt: d.Attempt}
	if d.Invoice != nil {
		a.Amount, a.Currency = d.Invoice.Amount, d.Invoice.Currency
	}
	return c.Actuate(billRetryPayment, a)
}

// billNextAttempt schedules the next retry, or gives up after the last.
func billNextAttempt(c *governor.Ctx) error {
	d, err := governor.Data[billData](c)
	if err != nil {
		return err
	}
	if d.Attempt >= billRetryAttempts {
		c.Goto(billCollections)
		return nil
	}
	d.Attempt++
	c.Arm(billRetryTimer, c.Duration(billRetryKey(d.Attempt)))
	return c.Store(d)
}

// billCheckRefund refuses a refund larger than the payment.
func billCheckRefund(c *governor.Ctx) error {
	var p billAmountData
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[billData](c)
	if err != nil {
		return err
	}
	if p.Currency != "" && d.Invoice != nil && p.Currency != d.Invoice.Currency {
		return governor.Reject("currency_mismatch: refund in %s, the invoice is in %s", p.Currency, d.Invoice.Currency)
	}
	if *p.Amount == 0 || *p.Amount > d.PaidAmount {
		return governor.Reject("refund_exceeds_payment: refund %d, paid %d; a refund must be 1..%d", *p.Amount, d.PaidAmount, d.PaidAmount)
	}
	return nil
}

// billRecordRefund records the amount to refund.
func billRecordRefund(c *governor.Ctx) error {
	var p billAmountData
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *billData) error {
		d.RefundAmount = *p.Amount
		return nil
	})
}

// billLoseDispute records that the whole payment went back to the
// customer.
func billLoseDispute(c *governor.Ctx) error {
	return governor.Update(c, func(d *billData) error {
		d.RefundAmount = d.PaidAmount
		return nil
	})
}

// billRecordCredit accumulates a credit; after the invoice it becomes
// credit owed to the customer.
func billRecordCredit(c *governor.Ctx) error {
	var p billCreditData
	if err := c.Payload(&p); err != nil {
		return err
	}
	return governor.Update(c, func(d *billData) error {
		d.CreditBP = min(d.CreditBP+p.BasisPoints, billMaxBP)
		if d.Invoice != nil {
			d.CreditOwed = billPortion(d.Invoice.Subtotal, d.CreditBP) - d.Invoice.Credit
		}
		return nil
	})
}

// billAdd returns a+b for non-negative a and b, and false on overflow.
func billAdd(a, b int64) (int64, bool) {
	s := a + b
	return s, s >= a
}

// billMul returns a×b for non-negative a and b, and false on overflow.
func billMul(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// billPortion returns amount × bp / 10000 rounded down, for a non-negative
// amount and 0 ≤ bp ≤ 10000; it cannot overflow.
func billPortion(amount int64, bp int) int64 {
	hi, lo := bits.Mul64(uint64(amount), uint64(bp))
	q, _ := bits.Div64(hi, lo, billMaxBP)
	return int64(q)
}
