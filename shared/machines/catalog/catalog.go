// Package catalog is the product_catalog governor: one instance per plan
// the provider sells, from draft through approval and publication to
// retirement. A catalog entry is the plan's display name, its currency
// (ISO 4217), the unit price of each meter and the limit of each quota
// metric (Entry). The provider tenant holds the catalog: its instances
// are the provider's own records, and the subject of each is the plan's
// SKU, the plan id subscriptions and billing periods name.
//
// The machine sends no cascades; other governors read the catalog
// instead: a row that consults a plan declares Needs(s.Provider, sku) and
// its guard calls Lookup, which gives the entry as a Plan.
//
// Price changes are scheduled: a price_changed event takes effect at its
// effective_at, not before. One whose effective_at is absent or not after
// the decision time applies at once; a later one is kept as the entry's
// pending change (Entry.Pending) and applied by the timer PriceTimer,
// armed for effective_at. Until then Lookup, PlanOf and billing see the
// current prices. A new price_changed replaces a pending change, and an
// increase of more than NoticeThresholdPct percent on any meter must take
// effect at least NoticePeriod after the decision, measured against the
// current prices; a meter that had no price counts as priced 0. Leaving
// published for deprecated or back re-arms the timer of a pending change,
// so that a deprecated plan still gets its announced prices; retiring
// drops a change that is not yet due.
package catalog

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/internal/exact"
	"github.com/autonomics/autonomics/shared/machines/messages"
)

// Events of the product_catalog machine, all sent by the provider.
// Deprecate and Retire are spelled like the states they lead to.
const (
	Drafted      governor.EventName = "drafted"
	Updated      governor.EventName = "updated"
	Submitted    governor.EventName = "submitted"
	Approved     governor.EventName = "approved"
	Rejected     governor.EventName = "rejected"
	PriceChanged governor.EventName = "price_changed"
	Deprecate    governor.EventName = "deprecated"
	Restored     governor.EventName = "restored"
	Retire       governor.EventName = "retired"
)

// PriceTimer fires when a scheduled price change takes effect. It is armed
// for the change's effective_at; its Machine.Timers entry, NoticePeriod,
// is only a default.
const PriceTimer = "price_change"

// NoticePeriod is the notice a price increase of more than
// NoticeThresholdPct percent on any meter needs.
const NoticePeriod = 30 * 24 * time.Hour

// NoticeThresholdPct is the largest increase, in percent, that may take
// effect without notice.
const NoticeThresholdPct = 10

// MaxNameLen bounds a plan's display name, in characters.
const MaxNameLen = 256

// ReasonPriceNoticeTooShort refuses a price increase of more than
// NoticeThresholdPct percent that takes effect less than NoticePeriod
// after the decision.
const ReasonPriceNoticeTooShort governor.ReasonCode = "price_notice_too_short"

// NewEntry is the data of product_catalog.drafted: name and currency are
// required, unit prices and limits optional.
type NewEntry struct {
	Name       string           `json:"name"`
	Currency   string           `json:"currency"`
	UnitPrices map[string]int64 `json:"unit_prices"`
	Limits     map[string]int64 `json:"limits"`
}

// Validate checks a new catalog entry.
func (p NewEntry) Validate() error {
	if strings.TrimSpace(p.Name) == "" {
		return errors.New("name is required")
	}
	if p.Currency == "" {
		return errors.New("currency is required")
	}
	return p.check()
}

// check validates the fields that are present.
func (p NewEntry) check() error {
	if utf8.RuneCountInString(p.Name) > MaxNameLen {
		return fmt.Errorf("name is longer than %d characters", MaxNameLen)
	}
	if p.Currency != "" {
		if err := messages.CheckCurrency(p.Currency); err != nil {
			return err
		}
	}
	if err := checkPrices(p.UnitPrices); err != nil {
		return err
	}
	for _, metric := range slices.Sorted(maps.Keys(p.Limits)) {
		if err := messages.CheckKey("limit metric", metric); err != nil {
			return err
		}
		if p.Limits[metric] <= 0 {
			return fmt.Errorf("limit of %s must be positive, got %d", metric, p.Limits[metric])
		}
	}
	return nil
}

// EntryUpdate is the data of product_catalog.updated: the fields of
// NewEntry, every one optional, and a field that is present replaces the
// stored one whole.
type EntryUpdate NewEntry

// Validate checks the fields present and that there is at least one.
func (p EntryUpdate) Validate() error {
	if p.Name == "" && p.Currency == "" && p.UnitPrices == nil && p.Limits == nil {
		return errors.New("updated needs at least one of name, currency, unit_prices, limits")
	}
	if p.Name != "" && strings.TrimSpace(p.Name) == "" {
		return errors.New("name must not be blank")
	}
	return NewEntry(p).check()
}

// PriceChange is the data of product_catalog.price_changed: the new unit
// price of each meter that changes, and when the change takes effect
// (RFC 3339; absent means at once).
type PriceChange struct {
	UnitPrices  map[string]int64 `json:"unit_prices"`
	EffectiveAt string           `json:"effective_at"`
}

// Validate checks the prices and the time.
func (p PriceChange) Validate() error {
	if len(p.UnitPrices) == 0 {
		return errors.New("unit_prices must name at least one meter")
	}
	if err := checkPrices(p.UnitPrices); err != nil {
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
func (p PriceChange) effective() time.Time {
	t, _ := time.Parse(time.RFC3339, p.EffectiveAt)
	return t
}

// Machine returns the product_catalog machine, whose instances keep an
// Entry; see the package documentation for its price changes.
func Machine() *governor.Machine {
	keepsTimer := "a pending price change keeps its timer " + PriceTimer
	priceRows := []governor.State{Published, Deprecated}
	rows := []governor.Transition{
		{
			From: []governor.State{governor.StateNone}, On: Drafted, To: Draft,
			Apply: draftEntry,
			Note:  fmt.Sprintf("records name (at most %d characters), currency, unit_prices, limits", MaxNameLen),
		},
		{
			From: []governor.State{Draft}, On: Updated, To: Draft,
			Apply: updateEntry,
			Note:  "each field present replaces the recorded one",
		},
		{From: []governor.State{Draft}, On: Submitted, To: PendingApproval},
		{From: []governor.State{PendingApproval}, On: Approved, To: Published},
		{From: []governor.State{PendingApproval}, On: Rejected, To: Draft},
		{
			From: []governor.State{Published}, On: PriceChanged, To: Published,
			Guard: checkNotice,
			Apply: changePrices,
			Note: fmt.Sprintf("an increase over %d%% on any meter needs effective_at ≥ now + %s, else rejected with %s; "+
				"effective_at ≤ now: prices change at once, otherwise they are pending and timer %s is armed for effective_at",
				NoticeThresholdPct, governor.HumanDuration(NoticePeriod), ReasonPriceNoticeTooShort, PriceTimer),
		},
		{
			From: []governor.State{Published}, On: Deprecate, To: Deprecated,
			Apply: keepPending,
			Note:  keepsTimer,
		},
		{
			From: []governor.State{Deprecated}, On: Restored, To: Published,
			Apply: keepPending,
			Note:  keepsTimer,
		},
		{
			From: priceRows, On: Retire, To: Retired,
			Apply: retireEntry,
			Note:  "a pending price change already due is applied; a later one is dropped",
		},
	}
	for _, s := range priceRows {
		rows = append(rows, governor.Transition{
			From: []governor.State{s}, On: governor.Timeout(PriceTimer), To: s,
			Apply: settleOnly,
			Note:  "the pending price change takes effect",
		})
	}
	return &governor.Machine{
		Domain:      Domain,
		States:      []governor.State{Draft, PendingApproval, Published, Deprecated, Retired},
		Terminal:    []governor.State{Retired},
		Timers:      map[string]time.Duration{PriceTimer: NoticePeriod},
		Transitions: rows,
		Senders: map[governor.EventName][]governor.Sender{
			Drafted:      governor.FromProvider,
			Updated:      governor.FromProvider,
			Submitted:    governor.FromProvider,
			Approved:     governor.FromProvider,
			Rejected:     governor.FromProvider,
			PriceChanged: governor.FromProvider,
			Deprecate:    governor.FromProvider,
			Restored:     governor.FromProvider,
			Retire:       governor.FromProvider,
		},
		Payloads: map[governor.EventName]governor.PayloadCheck{
			Drafted:      governor.Schema[NewEntry](),
			Updated:      governor.Schema[EntryUpdate](),
			PriceChanged: governor.Schema[PriceChange](),
		},
		Reasons: []governor.Reason{
			{
				Code: ReasonPriceNoticeTooShort,
				Doc: fmt.Sprintf("a price_changed raises the unit price of a meter by more than %d%% and takes effect less than %s after the decision",
					NoticeThresholdPct, governor.HumanDuration(NoticePeriod)),
			},
		},
	}
}

// draftEntry records a new catalog entry.
func draftEntry(c *governor.Ctx) error {
	var p NewEntry
	if err := c.Payload(&p); err != nil {
		return err
	}
	return c.Store(Entry{Name: p.Name, Currency: p.Currency, UnitPrices: p.UnitPrices, Limits: p.Limits})
}

// updateEntry replaces the fields the event carries.
func updateEntry(c *governor.Ctx) error {
	var p EntryUpdate
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[Entry](c)
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

// settle applies a pending price change that is due at now and reports
// whether one is still pending.
func settle(d *Entry, now time.Time) (pending bool) {
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

// checkNotice refuses an increase of more than NoticeThresholdPct percent
// on any meter that takes effect less than NoticePeriod after the
// decision.
func checkNotice(c *governor.Ctx) error {
	var p PriceChange
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[Entry](c)
	if err != nil {
		return err
	}
	settle(&d, c.Now())
	earliest := c.Now().Add(NoticePeriod)
	at := p.effective()
	if !at.IsZero() && !at.Before(earliest) {
		return nil
	}
	for _, meter := range slices.Sorted(maps.Keys(p.UnitPrices)) {
		old, next := d.UnitPrices[meter], p.UnitPrices[meter]
		if increaseOver(old, next, NoticeThresholdPct) {
			when := "at once"
			if !at.IsZero() {
				when = "at " + at.UTC().Format(time.RFC3339)
			}
			return governor.Reject(ReasonPriceNoticeTooShort, "%s rises from %d to %d, over %d%%, %s; effective_at must be at or after %s",
				meter, old, next, NoticeThresholdPct, when, earliest.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// changePrices applies the change at once or schedules it.
func changePrices(c *governor.Ctx) error {
	var p PriceChange
	if err := c.Payload(&p); err != nil {
		return err
	}
	d, err := governor.Data[Entry](c)
	if err != nil {
		return err
	}
	settle(&d, c.Now())
	at := p.effective()
	if at.After(c.Now()) {
		d.Pending = &PendingChange{UnitPrices: p.UnitPrices, EffectiveAt: at.UTC().Format(time.RFC3339)}
		c.Arm(PriceTimer, at.Sub(c.Now()))
		return c.Store(d)
	}
	d.Pending = nil
	if d.UnitPrices == nil {
		d.UnitPrices = map[string]int64{}
	}
	maps.Copy(d.UnitPrices, p.UnitPrices)
	c.Cancel(PriceTimer)
	return c.Store(d)
}

// keepPending carries a pending price change across a change of state,
// which cancels every timer the transition does not arm.
func keepPending(c *governor.Ctx) error {
	d, err := governor.Data[Entry](c)
	if err != nil {
		return err
	}
	if settle(&d, c.Now()) {
		at, _ := time.Parse(time.RFC3339, d.Pending.EffectiveAt)
		c.Arm(PriceTimer, at.Sub(c.Now()))
	}
	return c.Store(d)
}

// settleOnly applies a pending price change that is due.
func settleOnly(c *governor.Ctx) error {
	d, err := governor.Data[Entry](c)
	if err != nil {
		return err
	}
	if d.Pending == nil {
		return nil
	}
	settle(&d, c.Now())
	return c.Store(d)
}

// retireEntry applies a pending price change that is due and drops a
// later one, which a retired plan never reaches.
func retireEntry(c *governor.Ctx) error {
	d, err := governor.Data[Entry](c)
	if err != nil {
		return err
	}
	if d.Pending == nil {
		return nil
	}
	settle(&d, c.Now())
	d.Pending = nil
	return c.Store(d)
}

// increaseOver reports whether next exceeds old by more than pct percent:
// next × 100 > old × (100 + pct). Prices are not negative.
func increaseOver(old, next int64, pct int64) bool {
	return exact.CmpMul(next, 100, old, 100+pct) > 0
}

// checkPrices validates a map of unit prices.
func checkPrices(prices map[string]int64) error {
	for _, meter := range slices.Sorted(maps.Keys(prices)) {
		if err := messages.CheckKey("meter", meter); err != nil {
			return err
		}
		if prices[meter] < 0 {
			return fmt.Errorf("unit price of %s must not be negative, got %d", meter, prices[meter])
		}
	}
	return nil
}
