package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// withTestClock makes h's engine one with Options.TestClock on, as a
// non-production deployment configures it.
func (h *harness) withTestClock(t *testing.T) {
	t.Helper()
	o := h.eng.o
	o.TestClock = true
	eng, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
}

// lastReceipt returns the receipt of instance k with the highest seq.
func (h *harness) lastReceipt(t *testing.T, k governor.Key) receipt.Receipt {
	t.Helper()
	rs, err := h.store.Chain(context.Background(), k, 0, 10000)
	if err != nil || len(rs) == 0 {
		t.Fatalf("Chain(%v) = %d receipts, %v", k, len(rs), err)
	}
	return rs[len(rs)-1]
}

func TestTestClockSourceRefusedInProduction(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":14}`))
		k := governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"}
		tm := h.armedTimer(t, k, "trial_end")
		// Without Options.TestClock the test clock's source is one no
		// component of a production stack uses: refused on the internal
		// path, reserved on the external one, due or not.
		h.refused(t, h.fromInside(timeout(k, tm, TestClockSource)), governor.Subscription, k, "may not use an internal topic")
		h.refused(t, h.fromOutside(timeout(k, tm, TestClockSource)), governor.Subscription, k, "reserved")
		h.clock.Add(15 * 24 * time.Hour)
		h.refused(t, h.fromInside(timeout(k, tm, TestClockSource)), governor.Subscription, k, "may not use an internal topic")
		if got := h.instance(t, k); got.State != "trialing" || got.Version != 1 {
			t.Errorf("subscription = %s v%d, want trialing v1", got.State, got.Version)
		}
	})
}

func TestOutsiderCannotUseTheTestClockSource(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		h.withTestClock(t)
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":14}`))
		k := governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"}
		tm := h.armedTimer(t, k, "trial_end")
		// Even where test clocks are on, only the internal path carries
		// the test clock's source.
		h.refused(t, h.fromOutside(timeout(k, tm, TestClockSource)), governor.Subscription, k, "reserved")
		h.refused(t, h.fromOutside(timeout(k, tm, "Autonomics/TestClock")), governor.Subscription, k, "reserved")
		if got := h.instance(t, k).State; got != "trialing" {
			t.Errorf("subscription = %s, want trialing", got)
		}
	})
}

func TestTestClockTimeoutFiresBeforeItsDueTime(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		h.withTestClock(t)
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":14}`))
		k := governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"}
		tm := h.armedTimer(t, k, "trial_end")
		// The scheduler's early timeout is still clock skew, retried.
		if err := h.eng.HandleMessage(context.Background(), governor.Subscription, h.fromInside(timeout(k, tm, TimerSource))); !fault.IsRetryable(err) {
			t.Fatalf("early timeout from the scheduler = %v, want a retryable error", err)
		}
		// The test clock's fires it 14 days early.
		if err := h.eng.HandleMessage(context.Background(), governor.Subscription, h.fromInside(timeout(k, tm, TestClockSource))); err != nil {
			t.Fatalf("test clock timeout = %v", err)
		}
		got := h.instance(t, k)
		if got.State != "active" {
			t.Fatalf("subscription = %s, want active", got.State)
		}
		if _, ok := got.Timers["trial_end"]; ok {
			t.Errorf("trial_end still armed: %v", got.Timers)
		}
		if _, ok := got.Timers["period_end"]; !ok {
			t.Errorf("period_end not armed: %v", got.Timers)
		}
		r := h.lastReceipt(t, k)
		if r.EventSource != TestClockSource || r.Outcome != string(governor.Accepted) || r.ExecutionID != tm.ID {
			t.Errorf("receipt source %q outcome %s execution %s; want %s accepted %s", r.EventSource, r.Outcome, r.ExecutionID, TestClockSource, tm.ID)
		}
		// The tick finds nothing left of the fired timer.
		mark := len(h.pub.msgs)
		h.clock.Add(15 * 24 * time.Hour)
		if _, err := h.eng.Tick(context.Background(), 100000); err != nil {
			t.Fatal(err)
		}
		for _, m := range h.pub.msgs[mark:] {
			if m.Attributes["ce-tenantid"] == tenant && m.Attributes["ce-id"] == tm.ID {
				t.Errorf("tick fired the test clock's timer again")
			}
		}
	})
}

func TestTestClockTimeoutOfACancelledTimerIsRejected(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		h.withTestClock(t)
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":14}`))
		k := governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"}
		tm := h.armedTimer(t, k, "trial_end")
		stale := tm
		stale.ID = strings.Repeat("0", 32)
		if err := h.eng.HandleMessage(context.Background(), governor.Subscription, h.fromInside(timeout(k, stale, TestClockSource))); err != nil {
			t.Fatal(err)
		}
		got := h.instance(t, k)
		if got.State != "trialing" || got.Timers["trial_end"] != tm {
			t.Errorf("subscription = %s with %v, want trialing with %v", got.State, got.Timers["trial_end"], tm)
		}
		if r := h.lastReceipt(t, k); r.Outcome != string(governor.Rejected) || !strings.Contains(r.Reason, "no longer armed") {
			t.Errorf("receipt = %s %q, want rejected, no longer armed", r.Outcome, r.Reason)
		}
	})
}

func TestTestClockTimeoutWithoutTransitionKeepsItsDueTime(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		h.withTestClock(t)
		tenant := newTenant(t)
		k := governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"}
		// An active subscription with a trial_end timer still armed: the
		// machine has no transition for its timeout there.
		now := h.clock.Now()
		tm := governor.Timer{Name: "trial_end", ID: strings.Repeat("ab", 16), Due: now.Add(48 * time.Hour).UTC()}
		inst := governor.Instance{Key: k, State: "active", Version: 1, Data: json.RawMessage(`{"plan":"gold"}`),
			Timers: map[string]governor.Timer{"trial_end": tm}, UpdatedAt: now}
		seed := ev(tenant, governor.Subscription, "created", "sub-1", "")
		r := receipt.New(governor.Instance{Key: k, State: governor.StateNone}, seed,
			governor.Decision{Outcome: governor.Accepted, From: governor.StateNone, To: "active"}, now)
		err := h.store.RunTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.Instance(k); err != nil {
				return err
			}
			inst.LastHash = r.Hash
			return tx.Write(store.Changes{Instance: inst, Receipt: r, ArmTimers: []store.TimerEntry{{Timer: tm, Key: k}},
				Dedup: store.Dedup{Key: k, Source: seed.Source, EventID: seed.ID, ReceiptHash: r.Hash, ExpireAt: now.Add(time.Hour)}})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.eng.HandleMessage(context.Background(), governor.Subscription, h.fromInside(timeout(k, tm, TestClockSource))); err != nil {
			t.Fatal(err)
		}
		got := h.instance(t, k)
		if got.Version != 2 || got.Timers["trial_end"].ID != tm.ID || !got.Timers["trial_end"].Due.Equal(tm.Due) {
			t.Errorf("after the rejected timeout: v%d timers %v, want v2 and trial_end still due %s", got.Version, got.Timers, tm.Due)
		}
		if r := h.lastReceipt(t, k); r.Outcome != string(governor.Rejected) {
			t.Errorf("receipt outcome = %s, want rejected (no transition)", r.Outcome)
		}
	})
}

func TestEngineSenderOfWithTestClock(t *testing.T) {
	h := newHarness(t, "mem", memstore.New(), nil)
	prod := h.eng
	h.withTestClock(t)
	nonProd := h.eng
	tests := []struct {
		eng      *Engine
		internal bool
		source   string
		want     governor.Sender
		wantErr  string
	}{
		{nonProd, true, TestClockSource, governor.SenderScheduler, ""},
		{nonProd, false, TestClockSource, "", "reserved"},
		{nonProd, true, TestClockSource + "x", "", "internal topic"},
		{nonProd, true, TimerSource, governor.SenderScheduler, ""},
		{prod, true, TestClockSource, "", "internal topic"},
		{prod, false, TestClockSource, "", "reserved"},
	}
	for _, tt := range tests {
		got, err := tt.eng.SenderOf(tt.internal, governor.Event{Source: tt.source})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("TestClock %v: SenderOf(%v, %q) = %v, %v; want an invalid error containing %q", tt.eng.o.TestClock, tt.internal, tt.source, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("TestClock %v: SenderOf(%v, %q) = %v, %v; want %v", tt.eng.o.TestClock, tt.internal, tt.source, got, err, tt.want)
		}
	}
	if _, err := SenderOf(true, governor.Event{Source: TestClockSource}); err == nil {
		t.Errorf("package SenderOf accepts %s on the internal path; it classifies as production does", TestClockSource)
	}
}
