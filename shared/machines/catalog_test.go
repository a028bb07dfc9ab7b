package machines

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// catEntry returns catalog data with the given unit price of api_calls
// and, if pending is not "", a pending change as JSON.
func catEntry(apiCalls int64, pending string) string {
	s := fmt.Sprintf(`{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":%d,"storage_gb":150},"limits":{"api_calls":100000}`, apiCalls)
	if pending != "" {
		s += `,"pending_price_change":` + pending
	}
	return s + "}"
}

// catAt renders rowNow + d as RFC 3339.
func catAt(d time.Duration) string { return rowNow.Add(d).Format(time.RFC3339) }

// catPendingJSON renders a pending change of api_calls effective at
// rowNow + d.
func catPendingJSON(apiCalls int64, d time.Duration) string {
	return fmt.Sprintf(`{"unit_prices":{"api_calls":%d},"effective_at":%q}`, apiCalls, catAt(d))
}

// catChange renders a price_changed payload for api_calls, effective at
// rowNow + d or, with omit, without effective_at.
func catChange(apiCalls int64, d time.Duration, omit bool) string {
	if omit {
		return fmt.Sprintf(`{"unit_prices":{"api_calls":%d}}`, apiCalls)
	}
	return fmt.Sprintf(`{"unit_prices":{"api_calls":%d},"effective_at":%q}`, apiCalls, catAt(d))
}

func TestCatalogMachineValidate(t *testing.T) {
	if err := catalogMachine().Validate(); err != nil {
		t.Fatalf("catalogMachine().Validate() = %v, want nil", err)
	}
}

func TestCatalogDecide(t *testing.T) {
	const day = 24 * time.Hour
	notice := 30 * day
	cases := []rowCase{
		// — → draft
		{
			name: "drafted", state: governor.StateNone, event: catDrafted,
			payload:  `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":2,"storage_gb":0},"limits":{"api_calls":100000}}`,
			to:       catDraft,
			wantData: `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":2,"storage_gb":0},"limits":{"api_calls":100000}}`,
		},
		{
			name: "drafted free plan", state: governor.StateNone, event: catDrafted,
			payload: `{"name":"Free","currency":"USD"}`,
			to:      catDraft, wantData: `{"name":"Free","currency":"USD"}`,
		},
		// draft → draft
		{
			name: "updated name and prices", state: catDraft, data: catEntry(2, ""),
			event: catUpdated, payload: `{"name":"Pro 2","unit_prices":{"api_calls":3}}`,
			to:       catDraft,
			wantData: `{"name":"Pro 2","currency":"EUR","unit_prices":{"api_calls":3},"limits":{"api_calls":100000}}`,
		},
		{
			name: "updated limits to none", state: catDraft, data: catEntry(2, ""),
			event: catUpdated, payload: `{"limits":{},"currency":"USD"}`,
			to:       catDraft,
			wantData: `{"name":"Pro","currency":"USD","unit_prices":{"api_calls":2,"storage_gb":150}}`,
		},
		// draft → pending_approval → published / draft
		{name: "submitted", state: catDraft, data: catEntry(2, ""), event: catSubmitted, to: catPendingApproval},
		{name: "approved", state: catPendingApproval, data: catEntry(2, ""), event: catApproved, to: catPublished},
		{name: "rejected", state: catPendingApproval, data: catEntry(2, ""), event: catRejected, to: catDraft},
		// published → published: price_changed
		{
			name: "price decrease at once", state: catPublished, data: catEntry(1000, ""),
			event: catPriceChanged, payload: catChange(500, 0, true),
			to: catPublished, wantData: catEntry(500, ""),
		},
		{
			name: "increase of exactly 10% at once", state: catPublished, data: catEntry(1000, ""),
			event: catPriceChanged, payload: catChange(1100, 0, true),
			to: catPublished, wantData: catEntry(1100, ""),
		},
		{
			name: "increase just over 10% at once", state: catPublished, data: catEntry(1000, ""),
			event: catPriceChanged, payload: catChange(1101, 0, true),
			reject: "price_notice_too_short",
		},
		{
			name: "increase just over 10% with effective_at now", state: catPublished, data: catEntry(1000, ""),
			event: catPriceChanged, payload: catChange(1101, 0, false),
			reject: "price_notice_too_short",
		},
		{
			name: "increase over 10% with a second short of 30 days", state: catPublished, data: catEntry(1000, ""),
			event: catPriceChanged, payload: catChange(1101, notice-time.Second, false),
			reject: "price_notice_too_short",
		},
		{
			name: "increase over 10% exactly 30 days ahead", state: catPublished, data: catEntry(1000, ""),
			event: catPriceChanged, payload: catChange(2000, notice, false),
			to: catPublished, wantData: catEntry(1000, catPendingJSON(2000, notice)),
			wantTimers: map[string]time.Duration{catPriceTimer: notice},
		},
		{
			name: "small increase scheduled", state: catPublished, data: catEntry(1000, ""),
			event: catPriceChanged, payload: catChange(1050, 5*day, false),
			to: catPublished, wantData: catEntry(1000, catPendingJSON(1050, 5*day)),
			wantTimers: map[string]time.Duration{catPriceTimer: 5 * day},
		},
		{
			name: "increase from a price of 0", state: catPublished, data: catEntry(0, ""),
			event: catPriceChanged, payload: catChange(1, 0, true),
			reject: "price_notice_too_short",
		},
		{
			name: "pricing a new meter needs notice", state: catPublished, data: catEntry(1000, ""),
			event: catPriceChanged, payload: `{"unit_prices":{"gpu_hours":1}}`,
			reject: "price_notice_too_short: gpu_hours",
		},
		{
			name: "a new meter priced 0", state: catPublished, data: catEntry(1000, ""),
			event: catPriceChanged, payload: `{"unit_prices":{"gpu_hours":0}}`,
			to:       catPublished,
			wantData: `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":1000,"gpu_hours":0,"storage_gb":150},"limits":{"api_calls":100000}}`,
		},
		{
			name: "a change at once replaces a pending one", state: catPublished,
			data:   catEntry(1000, catPendingJSON(2000, notice)),
			timers: map[string]time.Duration{catPriceTimer: notice},
			event:  catPriceChanged, payload: catChange(900, 0, true),
			to: catPublished, wantData: catEntry(900, ""),
		},
		{
			name: "a due pending change applies before the next one", state: catPublished,
			data:   catEntry(1000, catPendingJSON(1100, -time.Hour)),
			timers: map[string]time.Duration{catPriceTimer: -time.Hour},
			event:  catPriceChanged, payload: catChange(1210, 0, true),
			to: catPublished, wantData: catEntry(1210, ""),
		},
		// published → deprecated → published
		{name: "deprecated", state: catPublished, data: catEntry(2, ""), event: catDeprecate, to: catDeprecated},
		{
			name: "deprecated keeps a pending change", state: catPublished,
			data:   catEntry(1000, catPendingJSON(2000, 10*day)),
			timers: map[string]time.Duration{catPriceTimer: 10 * day},
			event:  catDeprecate, to: catDeprecated,
			wantTimers: map[string]time.Duration{catPriceTimer: 10 * day},
		},
		{name: "restored", state: catDeprecated, data: catEntry(2, ""), event: catRestored, to: catPublished},
		{
			name: "restored keeps a pending change", state: catDeprecated,
			data:   catEntry(1000, catPendingJSON(2000, day)),
			timers: map[string]time.Duration{catPriceTimer: day},
			event:  catRestored, to: catPublished,
			wantTimers: map[string]time.Duration{catPriceTimer: day},
		},
		// published, deprecated → retired
		{name: "retired from published", state: catPublished, data: catEntry(2, ""), event: catRetire, to: catRetired},
		{
			name: "retired from deprecated drops a pending change", state: catDeprecated,
			data:   catEntry(1000, catPendingJSON(2000, day)),
			timers: map[string]time.Duration{catPriceTimer: day},
			event:  catRetire, to: catRetired, wantData: catEntry(1000, ""),
		},
		// timeout price_change
		{
			name: "pending change takes effect", state: catPublished,
			data:   catEntry(1000, catPendingJSON(2000, 0)),
			timers: map[string]time.Duration{catPriceTimer: 0},
			event:  governor.Timeout(catPriceTimer), to: catPublished, wantData: catEntry(2000, ""),
		},
		{
			name: "pending change takes effect while deprecated", state: catDeprecated,
			data:   catEntry(1000, catPendingJSON(2000, -time.Minute)),
			timers: map[string]time.Duration{catPriceTimer: -time.Minute},
			event:  governor.Timeout(catPriceTimer), to: catDeprecated, wantData: catEntry(2000, ""),
		},
		{
			name: "replaced pending change never fires", state: catPublished,
			data:   catEntry(1000, catPendingJSON(2000, day)),
			timers: map[string]time.Duration{catPriceTimer: day}, stale: true,
			event: governor.Timeout(catPriceTimer), reject: governor.ReasonTimerCancelled,
		},
		// not in the table
		{
			name: "updated after publication", state: catPublished, data: catEntry(2, ""),
			event: catUpdated, payload: `{"name":"x"}`, reject: governor.ReasonNoTransition,
		},
		{
			name: "price change of a draft", state: catDraft, data: catEntry(2, ""),
			event: catPriceChanged, payload: catChange(1, 0, true), reject: governor.ReasonNoTransition,
		},
		{
			name: "restored after retirement", state: catRetired, data: catEntry(2, ""),
			event: catRestored, reject: governor.ReasonNoTransition,
		},
	}
	m := catalogMachine()
	runRowCases(t, m, "pro", cases)
	rowCoverage(t, m, cases)
}

func TestCatalogScheduledPriceChange(t *testing.T) {
	m := catalogMachine()
	key := governor.Key{Tenant: "provider", Domain: governor.ProductCatalog, Subject: "pro"}
	inst := governor.Instance{Key: key, State: catPublished, Version: 7, Data: json.RawMessage(catEntry(1000, ""))}
	now := rowNow
	decide := func(name governor.EventName, data string) governor.Decision {
		t.Helper()
		ev := governor.Event{Domain: governor.ProductCatalog, Name: name, Tenant: key.Tenant, Subject: key.Subject, Data: json.RawMessage(data)}
		if err := m.CheckEvent(ev); err != nil {
			t.Fatalf("CheckEvent(%s %s) = %v, want nil", name, data, err)
		}
		d, err := m.Decide(governor.Input{Instance: inst, Event: ev, Now: now})
		if err != nil || d.Outcome != governor.Accepted {
			t.Fatalf("Decide(%s, %s %s) = %s %q, %v, want accepted", inst.State, name, data, d.Outcome, d.Reason, err)
		}
		inst = rowStep(inst, d, now)
		return d
	}
	price := func() int64 {
		t.Helper()
		p, err := PlanOf(inst)
		if err != nil {
			t.Fatalf("PlanOf(%s) = %v", inst.Data, err)
		}
		return p.UnitPrices["api_calls"]
	}
	decide(catPriceChanged, catChange(1500, 40*24*time.Hour, false))
	if got := price(); got != 1000 {
		t.Errorf("PlanOf after scheduling: api_calls = %d, want 1000 until effective_at", got)
	}
	now = now.Add(24 * time.Hour)
	decide(catDeprecate, "")
	now = now.Add(24 * time.Hour)
	decide(catRestored, "")
	timer := inst.Timers[catPriceTimer]
	if want := rowNow.Add(40 * 24 * time.Hour); !timer.Due.Equal(want) {
		t.Fatalf("price_change timer due %v, want %v", timer.Due, want)
	}
	now = timer.Due
	decide(governor.Timeout(catPriceTimer), fmt.Sprintf(`{"timer_id":%q}`, timer.ID))
	if got := price(); got != 1500 {
		t.Errorf("PlanOf after effective_at: api_calls = %d, want 1500", got)
	}
	if len(inst.Timers) != 0 || strings.Contains(string(inst.Data), "pending") {
		t.Errorf("after the change: timers %v, data %s, want no pending change", inst.Timers, inst.Data)
	}
}

func TestCatalogPlanOf(t *testing.T) {
	key := governor.Key{Tenant: "provider", Domain: governor.ProductCatalog, Subject: "pro"}
	tests := []struct {
		name string
		inst governor.Instance
		want governor.Plan
		code fault.Code
	}{
		{
			name: "published",
			inst: governor.Instance{Key: key, State: catPublished, Data: json.RawMessage(catEntry(2, catPendingJSON(3, time.Hour)))},
			want: governor.Plan{
				SKU: "pro", State: catPublished, Currency: "EUR",
				UnitPrices: map[string]int64{"api_calls": 2, "storage_gb": 150},
				Limits:     map[string]int64{"api_calls": 100000},
			},
		},
		{
			name: "draft without prices",
			inst: governor.Instance{Key: key, State: catDraft, Data: json.RawMessage(`{"name":"Free","currency":"USD"}`)},
			want: governor.Plan{SKU: "pro", State: catDraft, Currency: "USD", UnitPrices: map[string]int64{}, Limits: map[string]int64{}},
		},
		{name: "not drafted", inst: governor.Instance{Key: key, State: governor.StateNone}, code: fault.NotFound},
		{name: "no state", inst: governor.Instance{Key: key}, code: fault.NotFound},
		{
			name: "another domain",
			inst: governor.Instance{Key: governor.Key{Tenant: "t", Domain: governor.Billing, Subject: "pro"}, State: billOpen},
			code: fault.Invalid,
		},
		{name: "corrupt data", inst: governor.Instance{Key: key, State: catPublished, Data: json.RawMessage(`{"unit_prices":[]}`)}, code: fault.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PlanOf(tt.inst)
			if code := fault.ErrorCode(err); code != tt.code {
				t.Fatalf("PlanOf(%s %s) error %v, want code %q", tt.inst.State, tt.inst.Data, err, tt.code)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PlanOf(%s %s) = %+v, want %+v", tt.inst.State, tt.inst.Data, got, tt.want)
			}
		})
	}
}

func TestCatalogIncreaseOver(t *testing.T) {
	tests := []struct {
		old, next int64
		want      bool
	}{
		{1000, 1100, false},
		{1000, 1101, true},
		{10, 11, false},
		{10, 12, true},
		{7, 7, false},
		{7, 8, true}, // 14.3%
		{0, 0, false},
		{0, 1, true},
		{1 << 62, 1<<62 + 1<<59, true},
		{1 << 62, 1<<62 + 1<<58, false},
		{9223372036854775807, 0, false},
	}
	for _, tt := range tests {
		if got := catIncreaseOver(tt.old, tt.next, 10); got != tt.want {
			t.Errorf("catIncreaseOver(%d, %d, 10) = %v, want %v", tt.old, tt.next, got, tt.want)
		}
	}
}

func TestCatalogPayloads(t *testing.T) {
	runRowPayloads(t, catalogMachine(), []rowPayloadCase{
		{catDrafted, `{"name":"Pro","currency":"EUR"}`, true},
		{catDrafted, `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":0},"limits":{"seats":5}}`, true},
		{catDrafted, `{"currency":"EUR"}`, false},
		{catDrafted, `{"name":"  ","currency":"EUR"}`, false},
		{catDrafted, `{"name":"Pro"}`, false},
		{catDrafted, `{"name":"Pro","currency":"Eur"}`, false},
		{catDrafted, `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":-1}}`, false},
		{catDrafted, `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":1.5}}`, false},
		{catDrafted, `{"name":"Pro","currency":"EUR","unit_prices":{"a/b":1}}`, false},
		{catDrafted, `{"name":"Pro","currency":"EUR","limits":{"seats":0}}`, false},
		{catDrafted, `{"name":"Pro","currency":"EUR","price":1}`, false},
		{catDrafted, `{"name":"` + strings.Repeat("x", 257) + `","currency":"EUR"}`, false},
		{catUpdated, `{"name":"Pro 2"}`, true},
		{catUpdated, `{"limits":{}}`, true},
		{catUpdated, `{}`, false},
		{catUpdated, `{"name":" "}`, false},
		{catUpdated, `{"currency":"EURO"}`, false},
		{catPriceChanged, `{"unit_prices":{"api_calls":5}}`, true},
		{catPriceChanged, `{"unit_prices":{"api_calls":5},"effective_at":"2026-12-14T10:00:00Z"}`, true},
		{catPriceChanged, `{"unit_prices":{"api_calls":5},"effective_at":"2026-12-14T11:00:00+01:00"}`, true},
		{catPriceChanged, `{"unit_prices":{"api_calls":5},"effective_at":"2026-12-14"}`, false},
		{catPriceChanged, `{"unit_prices":{},"effective_at":"2026-12-14T10:00:00Z"}`, false},
		{catPriceChanged, `{"effective_at":"2026-12-14T10:00:00Z"}`, false},
		{catPriceChanged, `{"unit_prices":{"api_calls":-5}}`, false},
	})
}
