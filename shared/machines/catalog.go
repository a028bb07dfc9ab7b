package machines

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// States of the product_catalog machine.
const (
	catDraft           governor.State = "draft"
	catPendingApproval governor.State = "pending_approval"
	catPublished       governor.State = "published"
	catDeprecated      governor.State = "deprecated"
	catRetired         governor.State = "retired"
)

// Events of the product_catalog machine.
const (
	catDrafted      governor.EventName = "drafted"
	catUpdated      governor.EventName = "updated"
	catSubmitted    governor.EventName = "submitted"
	catApproved     governor.EventName = "approved"
	catRejected     governor.EventName = "rejected"
	catPriceChanged governor.EventName = "price_changed"
	catDeprecate    governor.EventName = "deprecated"
	catRestored     governor.EventName = "restored"
	catRetire       governor.EventName = "retired"
)

// catPriceTimer fires when a scheduled price change takes effect. It is
// armed for effective_at; its Machine.Timers entry is only a default.
const catPriceTimer = "price_change"

// catNoticePeriod is the notice a price increase of more than
// catNoticeThresholdPct percent on any meter needs.
const catNoticePeriod = 30 * 24 * time.Hour

// catNoticeThresholdPct is the largest increase, in percent, that may take
// effect without notice.
const catNoticeThresholdPct = 10

// catMaxNameLen bounds a plan's display name, in characters.
const catMaxNameLen = 256

// catData is what a catalog entry keeps.
type catData struct {
	Name       string           `json:"name"`
	Currency   string           `json:"currency"`
	UnitPrices map[string]int64 `json:"unit_prices,omitempty"`
	Limits     map[string]int64 `json:"limits,omitempty"`
	// Pending is the scheduled price change, if any.
	Pending *catPending `json:"pending_price_change,omitempty"`
}

// catPending is a price change that takes effect at EffectiveAt.
type catPending struct {
	UnitPrices  map[string]int64 `json:"unit_prices"`
	EffectiveAt string           `json:"effective_at"`
}

// catDraftData is the data of product_catalog.drafted and updated.
type catDraftData struct {
	Name       string           `json:"name"`
	Currency   string           `json:"currency"`
	UnitPrices map[string]int64 `json:"unit_prices"`
	Limits     map[string]int64 `json:"limits"`
}

// check validates the fields that are present.
func (p catDraftData) check() error {
	if utf8.RuneCountInString(p.Name) > catMaxNameLen {
		return fmt.Errorf("name is longer than %d characters", catMaxNameLen)
	}
	if p.Currency != "" {
		if err := catCheckCurrency(p.Currency); err != nil {
			return err
		}
	}
	if err := catCheckPrices(p.UnitPrices); err != nil {
		return err
	}
	for _, metric := range slices.Sorted(maps.Keys(p.Limits)) {
		if err := catCheckKey("limit metric", metric); err != nil {
			return err
		}
		if p.Limits[metric] <= 0 {
			return fmt.Errorf("limit of %s must be positive, got %d", metric, p.Limits[metric])
		}
	}
	return nil
}

// catDraftedData is the data of product_catalog.drafted: name and currency
// are required, unit prices and limits optional.
type catDraftedData catDraftData

// Validate checks a new catalog entry.
func (p catDraftedData) Validate() error {
	if strings.TrimSpace(p.Name) == "" {
		return errors.New("name is required")
	}
	if p.Currency == "" {
		return errors.New("currency is required")
	}
	return catDraftData(p).check()
}

// catUpdatedData is the data of product_catalog.updated: every field is
// optional, and a field that is present replaces the stored one whole.
type catUpdatedData catDraftData

// Validate checks the fields present and that there is at least one.
func (p catUpdatedData) Validate() error {
	if p.Name == "" && p.Currency == "" && p.UnitPrices == nil && p.Limits == nil {
		return errors.New("updated needs at least one of name, currency, unit_prices, limits")
	}
	if p.Name != "" && strings.TrimSpace(p.Name) == "" {
		return errors.New("name must not be blank")
	}
	return catDraftData(p).check()
}

// catPriceChangeData is the data of product_catalog.price_changed: the new
// unit price of each meter that changes, and when the change takes effect
// (RFC 3339; absent means at once).
type catPriceChangeData struct {
	UnitPrices  map[string]int64 `json:"unit_prices"`
	EffectiveAt string           `json:"effective_at"`
}

// Validate checks the prices and the time.
func (p catPriceChangeData) Validate() error {
	if len(p.UnitPrices) == 0 {
		return errors.New("unit_prices must name at least one meter")
	}
	if err := catCheckPrices(p.UnitPrices); err != nil {
		return err
	}
	if p.EffectiveAt != "" {
		if _, err := time.Parse(time.RFC3339, p.EffectiveAt); err != nil {
			return fmt.Errorf("effective_at must be RFC 3339: %w", err)
		}
	}
	return nil
}

// effective returns the time the change takes effect; zero means at once.
func (p catPriceChangeData) effective() time.Time {
	t, _ := time.Parse(time.RFC3339, p.EffectiveAt)
	return t
}

// catalogMachine returns the product_catalog machine. The
// subject is the SKU (plan id); the instance keeps catData, which PlanOf
// turns into the governor.Plan that other governors' guards consult.
//
// A price change takes effect at its effective_at, not before: one whose
// effective_at is absent or not after the decision time applies at once;
// a later one is kept as pending_price_change and applied by the timer
// price_change, armed for effective_at. Until then PlanOf and billing use
// the current prices. A new price_changed replaces a pending change, and
// the notice rule always compares with the current prices. A meter that
// had no price counts as priced 0, so pricing it above 0 is an increase
// over 10%. Leaving published for deprecated or back re-arms the timer of
// a pending change, so a deprecated plan still gets its announced prices.
func catalogMachine() *governor.Machine {
	priceRows := []governor.State{catPublished, catDeprecated}
	rows := []governor.Transition{
		{
			From: []governor.State{governor.StateNone}, On: catDrafted, To: catDraft,
			Apply: catDraftEntry,
			Note:  "records name, currency, unit_prices, limits",
		},
		{
			From: []governor.State{catDraft}, On: catUpdated, To: catDraft,
			Apply: catUpdateEntry,
			Note:  "each field present replaces the recorded one",
		},
		{From: []governor.State{catDraft}, On: catSubmitted, To: catPendingApproval},
		{From: []governor.State{catPendingApproval}, On: catApproved, To: catPublished},
		{From: []governor.State{catPendingApproval}, On: catRejected, To: catDraft},
		{
			From: []governor.State{catPublished}, On: catPriceChanged, To: catPublished,
			Guard: catCheckNotice,
			Apply: catChangePrices,
			Note: "an increase over 10% on any meter needs effective_at ≥ now + 30d, else rejected with price_notice_too_short; " +
				"effective_at ≤ now: prices change at once, otherwise they are pending and timer price_change is armed for effective_at",
		},
		{
			From: []governor.State{catPublished}, On: catDeprecate, To: catDeprecated,
			Apply: catKeepPending,
			Note:  "a pending price change keeps its timer price_change",
		},
		{
			From: []governor.State{catDeprecated}, On: catRestored, To: catPublished,
			Apply: catKeepPending,
			Note:  "a pending price change keeps its timer price_change",
		},
		{
			From: priceRows, On: catRetire, To: catRetired,
			Apply: catRetireEntry,
			Note:  "a pending price change already due is applied; a later one is dropped",
		},
	}
	for _, s := range priceRows {
		rows = append(rows, governor.Transition{
			From: []governor.State{s}, On: governor.Timeout(catPriceTimer), To: s,
			Apply: catSettleOnly,
			Note:  "the pending price change takes effect",
		})
	}
	return &governor.Machine{
		Domain:      governor.ProductCatalog,
		States:      []governor.State{catDraft, catPendingApproval, catPublished, catDeprecated, catRetired},
		Terminal:    []governor.State{catRetired},
		Timers:      map[string]time.Duration{catPriceTimer: catNoticePeriod},
		Transitions: rows,
		Senders: map[governor.EventName][]governor.Sender{
			catDrafted:      governor.FromProvider,
			catUpdated:      governor.FromProvider,
			catSubmitted:    governor.FromProvider,
			catApproved:     governor.FromProvider,
			catRejected:     governor.FromProvider,
			catPriceChanged: governor.FromProvider,
			catDeprecate:    governor.FromProvider,
			catRestored:     governor.FromProvider,
			catRetire:       governor.FromProvider,
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			catDrafted:      governor.Schema[catDraftedData](),
			catUpdated:      governor.Schema[catUpdatedData](),
			catPriceChanged: governor.Schema[catPriceChangeData](),
		},
	}
}

// PlanOf converts a product_catalog instance into the governor.Plan the
// guards consult: SKU is the subject, State the instance state, and
// currency, unit prices and limits come from the instance data. Prices are
// the current ones; a pending price change is not included.
func PlanOf(inst governor.Instance) (governor.Plan, error) {
	const op = "machines.PlanOf"
	if inst.Domain != governor.ProductCatalog {
		return governor.Plan{}, fault.Errorf(fault.Invalid, op, "instance %s is not a %s instance", inst.Key, governor.ProductCatalog)
	}
	if inst.State == "" || inst.State == governor.StateNone {
		return governor.Plan{}, fault.Errorf(fault.NotFound, op, "plan %q is not in the catalog", inst.Subject)
	}
	var d catData
	if len(bytes.TrimSpace(inst.Data)) > 0 {
		if err := json.Unmarshal(inst.Data, &d); err != nil {
			return governor.Plan{}, fault.Wrap(fault.Internal, op+" "+inst.Key.String(), err)
		}
	}
	p := governor.Plan{
		SKU:        inst.Subject,
		State:      inst.State,
		Currency:   d.Currency,
		UnitPrices: map[string]int64{},
		Limits:     map[string]int64{},
	}
	maps.Copy(p.UnitPrices, d.UnitPrices)
	maps.Copy(p.Limits, d.Limits)
	return p, nil
}

// catDraftEntry records a new catalog entry.
func catDraftEntry(c *governor.Ctx) error {
	var p catDraftedData
	if err := c.Payload(&p); err != nil {
		return err
	}
	return c.Store(catData{Name: p.Name, Currency: p.Currency, UnitPrices: p.UnitPrices, Limits: p.Limits})
}

// catUpdateEntry replaces the fields the event carries.
func catUpdateEntry(c *governor.Ctx) error {
	var p catUpdatedData
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[catData](c)
	if err != nil {
		return err
	}
	if p.Name != "" {
		d.Name = p.Name
	}
	if p.Currency != "" {
		d.Currency = p.Currency
	}
	if p.UnitPrices != nil {
		d.UnitPrices = p.UnitPrices
	}
	if p.Limits != nil {
		d.Limits = p.Limits
	}
	return c.Store(d)
}

// catSettle applies a pending price change that is due at now and reports
// whether one is still pending.
func catSettle(d *catData, now time.Time) (pending bool) {
	if d.Pending == nil {
		return false
	}
	at, err := time.Parse(time.RFC3339, d.Pending.EffectiveAt)
	if err == nil && at.After(now) {
		return true
	}
	if d.UnitPrices == nil {
		d.UnitPrices = map[string]int64{}
	}
	maps.Copy(d.UnitPrices, d.Pending.UnitPrices)
	d.Pending = nil
	return false
}

// catCheckNotice refuses an increase of more than 10% on any meter that
// takes effect less than 30 days after the decision.
func catCheckNotice(c *governor.Ctx) error {
	var p catPriceChangeData
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[catData](c)
	if err != nil {
		return err
	}
	catSettle(&d, c.Now())
	earliest := c.Now().Add(catNoticePeriod)
	at := p.effective()
	if !at.IsZero() && !at.Before(earliest) {
		return nil
	}
	for _, meter := range slices.Sorted(maps.Keys(p.UnitPrices)) {
		old, next := d.UnitPrices[meter], p.UnitPrices[meter]
		if catIncreaseOver(old, next, catNoticeThresholdPct) {
			when := "at once"
			if !at.IsZero() {
				when = "at " + at.UTC().Format(time.RFC3339)
			}
			return governor.Reject("price_notice_too_short: %s rises from %d to %d, over %d%%, %s; effective_at must be at or after %s",
				meter, old, next, catNoticeThresholdPct, when, earliest.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// catChangePrices applies the change at once or schedules it.
func catChangePrices(c *governor.Ctx) error {
	var p catPriceChangeData
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[catData](c)
	if err != nil {
		return err
	}
	catSettle(&d, c.Now())
	at := p.effective()
	if at.After(c.Now()) {
		d.Pending = &catPending{UnitPrices: p.UnitPrices, EffectiveAt: at.UTC().Format(time.RFC3339)}
		c.Arm(catPriceTimer, at.Sub(c.Now()))
		return c.Store(d)
	}
	d.Pending = nil
	if d.UnitPrices == nil {
		d.UnitPrices = map[string]int64{}
	}
	maps.Copy(d.UnitPrices, p.UnitPrices)
	c.Cancel(catPriceTimer)
	return c.Store(d)
}

// catKeepPending carries a pending price change across a change of state,
// which cancels every timer the transition does not arm.
func catKeepPending(c *governor.Ctx) error {
	d, err := governor.Data[catData](c)
	if err != nil {
		return err
	}
	if catSettle(&d, c.Now()) {
		at, _ := time.Parse(time.RFC3339, d.Pending.EffectiveAt)
		c.Arm(catPriceTimer, at.Sub(c.Now()))
	}
	return c.Store(d)
}

// catSettleOnly applies a pending price change that is due.
func catSettleOnly(c *governor.Ctx) error {
	d, err := governor.Data[catData](c)
	if err != nil {
		return err
	}
	if d.Pending == nil {
		return nil
	}
	catSettle(&d, c.Now())
	return c.Store(d)
}

// catRetireEntry applies a pending price change that is due and drops a
// later one, which a retired plan never reaches.
func catRetireEntry(c *governor.Ctx) error {
	d, err := governor.Data[catData](c)
	if err != nil {
		return err
	}
	if d.Pending == nil {
		return nil
	}
	catSettle(&d, c.Now())
	d.Pending = nil
	return c.Store(d)
}

// catIncreaseOver reports whether next exceeds old by more than pct
// percent: next × 100 > old × (100 + pct). Prices are not negative.
func catIncreaseOver(old, next int64, pct int64) bool {
	return cmpMul128(next, 100, old, 100+pct) > 0
}

// catCheckPrices validates a map of unit prices.
func catCheckPrices(prices map[string]int64) error {
	for _, meter := range slices.Sorted(maps.Keys(prices)) {
		if err := catCheckKey("meter", meter); err != nil {
			return err
		}
		if prices[meter] < 0 {
			return fmt.Errorf("unit price of %s must not be negative, got %d", meter, prices[meter])
		}
	}
	return nil
}

// catCheckCurrency reports an error unless code has the shape of an
// ISO 4217 currency code: three uppercase letters.
func catCheckCurrency(code string) error {
	if len(code) != 3 {
		return fmt.Errorf("currency %q must be an ISO 4217 code of 3 uppercase letters", code)
	}
	for i := range len(code) {
		if code[i] < 'A' || code[i] > 'Z' {
			return fmt.Errorf("currency %q must be an ISO 4217 code of 3 uppercase letters", code)
		}
	}
	return nil
}

// catCheckKey reports an error unless s follows the subject syntax of
// the event contract, which plan ids, meters and quota metrics share: 1–128
// characters of [A-Za-z0-9._-], not "." or "..", not starting with "__".
func catCheckKey(what, s string) error {
	bad := len(s) == 0 || len(s) > 128 || s == "." || s == ".." || strings.HasPrefix(s, "__")
	for i := 0; !bad && i < len(s); i++ {
		b := s[i]
		bad = !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-')
	}
	if bad {
		return fmt.Errorf("%s %q must be 1-128 characters of [A-Za-z0-9._-], not . or .., not starting with __", what, s)
	}
	return nil
}

// cmpMul128 compares a×b with c×d for non-negative a, b, c, d, exactly:
// it returns -1, 0 or +1.
func cmpMul128(a, b, c, d int64) int {
	h1, l1 := bits.Mul64(uint64(a), uint64(b))
	h2, l2 := bits.Mul64(uint64(c), uint64(d))
	switch {
	case h1 < h2 || h1 == h2 && l1 < l2:
		return -1
	case h1 > h2 || l1 > l2:
		return 1
	}
	return 0
}
