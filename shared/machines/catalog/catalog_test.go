package catalog

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines/machinetest"
)

// entryData returns catalog data with the given unit price of api_calls
// and, if pending is not "", a pending change as JSON.
func entryData(apiCalls int64, pending string) string {
	s := fmt.Sprintf(`{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":%d,"storage_gb":150},"limits":{"api_calls":100000}`, apiCalls)
	if pending != "" {
		s += `,"pending_price_change":` + pending
	}
	return s + "}"
}

// rfcAt renders machinetest.RowNow + d as RFC 3339.
func rfcAt(d time.Duration) string { return machinetest.RowNow.Add(d).Format(time.RFC3339) }

// pendingData renders a pending change of api_calls effective at
// machinetest.RowNow + d.
func pendingData(apiCalls int64, d time.Duration) string {
	return fmt.Sprintf(`{"unit_prices":{"api_calls":%d},"effective_at":%q}`, apiCalls, rfcAt(d))
}

// changeData renders a price_changed payload for api_calls, effective at
// machinetest.RowNow + d or, with omit, without effective_at.
func changeData(apiCalls int64, d time.Duration, omit bool) string {
	if omit {
		return fmt.Sprintf(`{"unit_prices":{"api_calls":%d}}`, apiCalls)
	}
	return fmt.Sprintf(`{"unit_prices":{"api_calls":%d},"effective_at":%q}`, apiCalls, rfcAt(d))
}

func TestCatalogMachineValidate(t *testing.T) {
	if err := Machine().Validate(); err != nil {
		t.Fatalf("Machine().Validate() = %v, want nil", err)
	}
}

// decideCases are the decisions of the machine's table, accepted and
// rejected.
func decideCases() []machinetest.Row {
	const day = 24 * time.Hour
	notice := 30 * day
	return []machinetest.Row{
		// — → draft
		{
			Name: "drafted", State: governor.StateNone, Event: Drafted,
			Payload:  `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":2,"storage_gb":0},"limits":{"api_calls":100000}}`,
			To:       Draft,
			WantData: `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":2,"storage_gb":0},"limits":{"api_calls":100000}}`,
		},
		{
			Name: "drafted free plan", State: governor.StateNone, Event: Drafted,
			Payload: `{"name":"Free","currency":"USD"}`,
			To:      Draft, WantData: `{"name":"Free","currency":"USD"}`,
		},
		// draft → draft
		{
			Name: "updated name and prices", State: Draft, Data: entryData(2, ""),
			Event: Updated, Payload: `{"name":"Pro 2","unit_prices":{"api_calls":3}}`,
			To:       Draft,
			WantData: `{"name":"Pro 2","currency":"EUR","unit_prices":{"api_calls":3},"limits":{"api_calls":100000}}`,
		},
		{
			Name: "updated limits to none", State: Draft, Data: entryData(2, ""),
			Event: Updated, Payload: `{"limits":{},"currency":"USD"}`,
			To:       Draft,
			WantData: `{"name":"Pro","currency":"USD","unit_prices":{"api_calls":2,"storage_gb":150}}`,
		},
		// draft → pending_approval → published / draft
		{Name: "submitted", State: Draft, Data: entryData(2, ""), Event: Submitted, To: PendingApproval},
		{Name: "approved", State: PendingApproval, Data: entryData(2, ""), Event: Approved, To: Published},
		{Name: "rejected", State: PendingApproval, Data: entryData(2, ""), Event: Rejected, To: Draft},
		// published → published: price_changed
		{
			Name: "price decrease at once", State: Published, Data: entryData(1000, ""),
			Event: PriceChanged, Payload: changeData(500, 0, true),
			To: Published, WantData: entryData(500, ""),
		},
		{
			Name: "increase of exactly 10% at once", State: Published, Data: entryData(1000, ""),
			Event: PriceChanged, Payload: changeData(1100, 0, true),
			To: Published, WantData: entryData(1100, ""),
		},
		{
			Name: "increase just over 10% at once", State: Published, Data: entryData(1000, ""),
			Event: PriceChanged, Payload: changeData(1101, 0, true),
			Reject: "price_notice_too_short",
		},
		{
			Name: "increase just over 10% with effective_at now", State: Published, Data: entryData(1000, ""),
			Event: PriceChanged, Payload: changeData(1101, 0, false),
			Reject: "price_notice_too_short",
		},
		{
			Name: "increase over 10% with a second short of 30 days", State: Published, Data: entryData(1000, ""),
			Event: PriceChanged, Payload: changeData(1101, notice-time.Second, false),
			Reject: "price_notice_too_short",
		},
		{
			Name: "increase over 10% exactly 30 days ahead", State: Published, Data: entryData(1000, ""),
			Event: PriceChanged, Payload: changeData(2000, notice, false),
			To: Published, WantData: entryData(1000, pendingData(2000, notice)),
			WantTimers: map[string]time.Duration{PriceTimer: notice},
		},
		{
			Name: "small increase scheduled", State: Published, Data: entryData(1000, ""),
			Event: PriceChanged, Payload: changeData(1050, 5*day, false),
			To: Published, WantData: entryData(1000, pendingData(1050, 5*day)),
			WantTimers: map[string]time.Duration{PriceTimer: 5 * day},
		},
		{
			Name: "increase from a price of 0", State: Published, Data: entryData(0, ""),
			Event: PriceChanged, Payload: changeData(1, 0, true),
			Reject: "price_notice_too_short",
		},
		{
			Name: "pricing a new meter needs notice", State: Published, Data: entryData(1000, ""),
			Event: PriceChanged, Payload: `{"unit_prices":{"gpu_hours":1}}`,
			Reject: "price_notice_too_short: gpu_hours",
		},
		{
			Name: "a new meter priced 0", State: Published, Data: entryData(1000, ""),
			Event: PriceChanged, Payload: `{"unit_prices":{"gpu_hours":0}}`,
			To:       Published,
			WantData: `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":1000,"gpu_hours":0,"storage_gb":150},"limits":{"api_calls":100000}}`,
		},
		{
			Name: "a change at once replaces a pending one", State: Published,
			Data:   entryData(1000, pendingData(2000, notice)),
			Timers: map[string]time.Duration{PriceTimer: notice},
			Event:  PriceChanged, Payload: changeData(900, 0, true),
			To: Published, WantData: entryData(900, ""),
		},
		{
			Name: "a due pending change applies before the next one", State: Published,
			Data:   entryData(1000, pendingData(1100, -time.Hour)),
			Timers: map[string]time.Duration{PriceTimer: -time.Hour},
			Event:  PriceChanged, Payload: changeData(1210, 0, true),
			To: Published, WantData: entryData(1210, ""),
		},
		// published → deprecated → published
		{Name: "deprecated", State: Published, Data: entryData(2, ""), Event: Deprecate, To: Deprecated},
		{
			Name: "deprecated keeps a pending change", State: Published,
			Data:   entryData(1000, pendingData(2000, 10*day)),
			Timers: map[string]time.Duration{PriceTimer: 10 * day},
			Event:  Deprecate, To: Deprecated,
			WantTimers: map[string]time.Duration{PriceTimer: 10 * day},
		},
		{Name: "restored", State: Deprecated, Data: entryData(2, ""), Event: Restored, To: Published},
		{
			Name: "restored keeps a pending change", State: Deprecated,
			Data:   entryData(1000, pendingData(2000, day)),
			Timers: map[string]time.Duration{PriceTimer: day},
			Event:  Restored, To: Published,
			WantTimers: map[string]time.Duration{PriceTimer: day},
		},
		// published, deprecated → retired
		{Name: "retired from published", State: Published, Data: entryData(2, ""), Event: Retire, To: Retired},
		{
			Name: "retired from deprecated drops a pending change", State: Deprecated,
			Data:   entryData(1000, pendingData(2000, day)),
			Timers: map[string]time.Duration{PriceTimer: day},
			Event:  Retire, To: Retired, WantData: entryData(1000, ""),
		},
		// timeout price_change
		{
			Name: "pending change takes effect", State: Published,
			Data:   entryData(1000, pendingData(2000, 0)),
			Timers: map[string]time.Duration{PriceTimer: 0},
			Event:  governor.Timeout(PriceTimer), To: Published, WantData: entryData(2000, ""),
		},
		{
			Name: "pending change takes effect while deprecated", State: Deprecated,
			Data:   entryData(1000, pendingData(2000, -time.Minute)),
			Timers: map[string]time.Duration{PriceTimer: -time.Minute},
			Event:  governor.Timeout(PriceTimer), To: Deprecated, WantData: entryData(2000, ""),
		},
		{
			Name: "replaced pending change never fires", State: Published,
			Data:   entryData(1000, pendingData(2000, day)),
			Timers: map[string]time.Duration{PriceTimer: day}, Stale: true,
			Event: governor.Timeout(PriceTimer), Reject: string(governor.ReasonTimerCancelled),
		},
		// not in the table
		{
			Name: "updated after publication", State: Published, Data: entryData(2, ""),
			Event: Updated, Payload: `{"name":"x"}`, Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "price change of a draft", State: Draft, Data: entryData(2, ""),
			Event: PriceChanged, Payload: changeData(1, 0, true), Reject: string(governor.ReasonNoTransition),
		},
		{
			Name: "restored after retirement", State: Retired, Data: entryData(2, ""),
			Event: Restored, Reject: string(governor.ReasonNoTransition),
		},
	}
}

func TestCatalogDecide(t *testing.T) {
	cases := decideCases()
	m := Machine()
	machinetest.RunRows(t, m, "pro", cases)
	machinetest.Coverage(t, m, cases)
}

// TestCatalogReasons rejects with every reason code the machine declares,
// comparing the whole reason a receipt records, and checks that every
// rejection of the decision table gives a declared code.
func TestCatalogReasons(t *testing.T) {
	m := Machine()
	cases := map[governor.ReasonCode]machinetest.Row{
		ReasonPriceNoticeTooShort: {
			Name: "increase over 10% a second short of 30 days", State: Published, Data: entryData(1000, ""),
			Event: PriceChanged, Payload: changeData(1101, NoticePeriod-time.Second, false),
			Reject: "price_notice_too_short: api_calls rises from 1000 to 1101, over 10%, at 2026-12-14T09:59:59Z; " +
				"effective_at must be at or after 2026-12-14T10:00:00Z",
		},
	}
	for _, r := range m.Reasons {
		t.Run(string(r.Code), func(t *testing.T) {
			c, ok := cases[r.Code]
			if !ok {
				t.Fatalf("no case rejects with %s", r.Code)
			}
			in := machinetest.RowInput(m, c, "pro")
			if err := m.CheckEvent(in.Event); err != nil {
				t.Fatalf("CheckEvent(%s %s) = %v, want nil", in.Event.Name, in.Event.Data, err)
			}
			d, err := m.Decide(in)
			if err != nil || d.Outcome != governor.Rejected || d.Code != r.Code || d.Reason != c.Reject {
				t.Errorf("Decide(%s, %s %s) = %s %s %q, %v, want rejected %s %q",
					c.State, c.Event, c.Payload, d.Outcome, d.Code, d.Reason, err, r.Code, c.Reject)
			}
		})
	}
	for _, c := range decideCases() {
		if code := governor.CodeOf(c.Reject); c.Reject != "" && !m.HasReason(code) {
			t.Errorf("case %q rejects with %s, which the machine does not declare", c.Name, code)
		}
	}
}

func TestCatalogScheduledPriceChange(t *testing.T) {
	m := Machine()
	key := Key("provider", "pro")
	inst := governor.Instance{Key: key, State: Published, Version: 7, Data: json.RawMessage(entryData(1000, ""))}
	now := machinetest.RowNow
	decide := func(name governor.EventName, data string) governor.Decision {
		t.Helper()
		ev := governor.Event{Domain: Domain, Name: name, Tenant: key.Tenant, Subject: key.Subject, Data: json.RawMessage(data)}
		if err := m.CheckEvent(ev); err != nil {
			t.Fatalf("CheckEvent(%s %s) = %v, want nil", name, data, err)
		}
		d, err := m.Decide(governor.Input{Instance: inst, Event: ev, Now: now})
		if err != nil || d.Outcome != governor.Accepted {
			t.Fatalf("Decide(%s, %s %s) = %s %q, %v, want accepted", inst.State, name, data, d.Outcome, d.Reason, err)
		}
		inst = machinetest.Step(inst, d, now)
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
	decide(PriceChanged, changeData(1500, 40*24*time.Hour, false))
	if got := price(); got != 1000 {
		t.Errorf("PlanOf after scheduling: api_calls = %d, want 1000 until effective_at", got)
	}
	now = now.Add(24 * time.Hour)
	decide(Deprecate, "")
	now = now.Add(24 * time.Hour)
	decide(Restored, "")
	timer := inst.Timers[PriceTimer]
	if want := machinetest.RowNow.Add(40 * 24 * time.Hour); !timer.Due.Equal(want) {
		t.Fatalf("price_change timer due %v, want %v", timer.Due, want)
	}
	now = timer.Due
	decide(governor.Timeout(PriceTimer), fmt.Sprintf(`{"timer_id":%q}`, timer.ID))
	if got := price(); got != 1500 {
		t.Errorf("PlanOf after effective_at: api_calls = %d, want 1500", got)
	}
	if len(inst.Timers) != 0 || strings.Contains(string(inst.Data), "pending") {
		t.Errorf("after the change: timers %v, data %s, want no pending change", inst.Timers, inst.Data)
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
		if got := increaseOver(tt.old, tt.next, 10); got != tt.want {
			t.Errorf("increaseOver(%d, %d, 10) = %v, want %v", tt.old, tt.next, got, tt.want)
		}
	}
}

func TestCatalogPayloads(t *testing.T) {
	machinetest.RunPayloads(t, Machine(), []machinetest.Payload{
		{Event: Drafted, Payload: `{"name":"Pro","currency":"EUR"}`, OK: true},
		{Event: Drafted, Payload: `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":0},"limits":{"seats":5}}`, OK: true},
		{Event: Drafted, Payload: `{"currency":"EUR"}`, OK: false},
		{Event: Drafted, Payload: `{"name":"  ","currency":"EUR"}`, OK: false},
		{Event: Drafted, Payload: `{"name":"Pro"}`, OK: false},
		{Event: Drafted, Payload: `{"name":"Pro","currency":"Eur"}`, OK: false},
		{Event: Drafted, Payload: `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":-1}}`, OK: false},
		{Event: Drafted, Payload: `{"name":"Pro","currency":"EUR","unit_prices":{"api_calls":1.5}}`, OK: false},
		{Event: Drafted, Payload: `{"name":"Pro","currency":"EUR","unit_prices":{"a/b":1}}`, OK: false},
		{Event: Drafted, Payload: `{"name":"Pro","currency":"EUR","limits":{"seats":0}}`, OK: false},
		{Event: Drafted, Payload: `{"name":"Pro","currency":"EUR","price":1}`, OK: false},
		{Event: Drafted, Payload: `{"name":"` + strings.Repeat("x", 257) + `","currency":"EUR"}`, OK: false},
		{Event: Updated, Payload: `{"name":"Pro 2"}`, OK: true},
		{Event: Updated, Payload: `{"limits":{}}`, OK: true},
		{Event: Updated, Payload: `{}`, OK: false},
		{Event: Updated, Payload: `{"name":" "}`, OK: false},
		{Event: Updated, Payload: `{"currency":"EURO"}`, OK: false},
		{Event: PriceChanged, Payload: `{"unit_prices":{"api_calls":5}}`, OK: true},
		{Event: PriceChanged, Payload: `{"unit_prices":{"api_calls":5},"effective_at":"2026-12-14T10:00:00Z"}`, OK: true},
		{Event: PriceChanged, Payload: `{"unit_prices":{"api_calls":5},"effective_at":"2026-12-14T11:00:00+01:00"}`, OK: true},
		{Event: PriceChanged, Payload: `{"unit_prices":{"api_calls":5},"effective_at":"2026-12-14"}`, OK: false},
		{Event: PriceChanged, Payload: `{"unit_prices":{},"effective_at":"2026-12-14T10:00:00Z"}`, OK: false},
		{Event: PriceChanged, Payload: `{"effective_at":"2026-12-14T10:00:00Z"}`, OK: false},
		{Event: PriceChanged, Payload: `{"unit_prices":{"api_calls":-5}}`, OK: false},
	})
}
