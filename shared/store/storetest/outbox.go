package storetest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
)

// entry returns an outbox entry of the test with id f.id(name).
func (f *fixture) entry(name, receiptHash string, at time.Time) store.OutboxEntry {
	return store.OutboxEntry{
		ID: f.id(name),
		Message: store.Message{
			Topic:       "autonomics-actions",
			Data:        fmt.Appendf(nil, `{"entry":%q}`, name),
			Attributes:  map[string]string{"ce-id": f.id(name), "action": "tenant.throttle"},
			OrderingKey: f.tenant,
		},
		ReceiptHash: receiptHash,
		CreatedAt:   at,
	}
}

// diffEntry describes how got differs from want, or returns "".
func diffEntry(got, want store.OutboxEntry) string {
	var d []string
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("id %q, want %q", got.ID, want.ID))
	}
	if got.Topic != want.Topic {
		d = append(d, fmt.Sprintf("topic %q, want %q", got.Topic, want.Topic))
	}
	if !bytes.Equal(got.Data, want.Data) {
		d = append(d, fmt.Sprintf("data %q, want %q", got.Data, want.Data))
	}
	if !maps.Equal(got.Attributes, want.Attributes) {
		d = append(d, fmt.Sprintf("attributes %v, want %v", got.Attributes, want.Attributes))
	}
	if got.OrderingKey != want.OrderingKey {
		d = append(d, fmt.Sprintf("ordering key %q, want %q", got.OrderingKey, want.OrderingKey))
	}
	if got.ReceiptHash != want.ReceiptHash {
		d = append(d, fmt.Sprintf("receipt hash %q, want %q", got.ReceiptHash, want.ReceiptHash))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("created_at %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if got.Delivered != want.Delivered {
		d = append(d, fmt.Sprintf("delivered %v, want %v", got.Delivered, want.Delivered))
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

// checkOutbox checks Outbox(hash) against want, entry by entry.
func (f *fixture) checkOutbox(hash string, want []store.OutboxEntry) {
	f.Helper()
	got, err := f.s.Outbox(f.ctx, hash)
	if err != nil {
		f.Fatalf("Outbox(%q) = %v, want nil", hash, err)
	}
	if len(got) != len(want) {
		f.Fatalf("Outbox(%q) = %d entries %+v, want %d", hash, len(got), got, len(want))
	}
	for i := range got {
		if d := diffEntry(got[i], want[i]); d != "" {
			f.Errorf("Outbox(%q)[%d]: %s", hash, i, d)
		}
	}
}

func testOutbox(f *fixture) {
	k := f.key(governor.QuotaSLA, "api_calls")
	c := decision(newInstance(k), f.id("e1"), "exceeded", f.at(0))
	h := c.Receipt.Hash
	bare := f.entry("o1", h, f.at(0))
	bare.Attributes = nil
	bare.OrderingKey = ""
	// Written out of id order: Outbox returns them as written.
	c.Outbox = []store.OutboxEntry{f.entry("o3", h, f.at(0)), bare, f.entry("o2", h, f.at(0))}
	f.mustCommit(c)
	other := decision(newInstance(f.key(governor.QuotaSLA, "storage")), f.id("e2"), "warning", f.at(0))
	other.Outbox = []store.OutboxEntry{f.entry("o4", other.Receipt.Hash, f.at(0))}
	f.mustCommit(other)

	f.checkOutbox(h, c.Outbox)
	_, err := f.s.Outbox(f.ctx, "")
	f.checkCode(`Outbox("")`, err, governor.Invalid)
	f.checkOutbox(other.Receipt.Hash, other.Outbox)
	f.checkOutbox(f.id("unknown-hash"), nil)

	// The written and the returned entries are the caller's.
	want := []store.OutboxEntry{f.entry("o3", h, f.at(0)), bare, f.entry("o2", h, f.at(0))}
	want[1].Data = slices.Clone(bare.Data)
	c.Outbox[0].Data[0] = '['
	c.Outbox[0].Attributes["action"] = "mutated"
	got, err := f.s.Outbox(f.ctx, h)
	if err != nil {
		f.Fatalf("Outbox(%q) = %v, want nil", h, err)
	}
	got[0].Data[0] = '['
	got[0].Attributes["action"] = "mutated"
	f.checkOutbox(h, want)
}

// entryLess orders outbox entries as Undelivered does.
func entryLess(a, b store.OutboxEntry) bool {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID)) < 0
}

func testUndelivered(f *fixture) {
	k1 := f.key(governor.MultiTenant, governor.DefaultSubject)
	c1 := decision(newInstance(k1), f.id("e1"), "provisioning", f.at(time.Minute))
	c1.Outbox = []store.OutboxEntry{
		f.entry("u1", c1.Receipt.Hash, f.at(1*time.Minute)),
		f.entry("u3", c1.Receipt.Hash, f.at(3*time.Minute)),
	}
	f.mustCommit(c1)
	k2 := f.key(governor.ComplianceAudit, governor.DefaultSubject)
	c2 := decision(newInstance(k2), f.id("e2"), "under_review", f.at(2*time.Minute))
	c2.Outbox = []store.OutboxEntry{
		f.entry("u2", c2.Receipt.Hash, f.at(2*time.Minute)),
		f.entry("u5", c2.Receipt.Hash, f.at(5*time.Minute)),
		f.entry("u4", c2.Receipt.Hash, f.at(4*time.Minute)),
		// Same created_at as u4: ordered by id.
		f.entry("u4b", c2.Receipt.Hash, f.at(4*time.Minute)),
	}
	f.mustCommit(c2)
	byName := map[string]store.OutboxEntry{}
	for _, e := range append(c1.Outbox, c2.Outbox...) {
		byName[strings.TrimPrefix(e.ID, f.tenant+"-")] = e
	}
	pick := func(names ...string) []store.OutboxEntry {
		out := make([]store.OutboxEntry, len(names))
		for i, n := range names {
			out[i] = byName[n]
		}
		return out
	}

	check := func(t *testing.T, before time.Duration, limit int, want []store.OutboxEntry) {
		t.Helper()
		f := f.with(t)
		b := f.at(before)
		call := fmt.Sprintf("Undelivered(base+%v, %d)", before, limit)
		got, err := f.s.Undelivered(f.ctx, b, limit)
		if err != nil {
			t.Fatalf("%s = %v, want nil", call, err)
		}
		ok := func(e store.OutboxEntry) error {
			if e.Delivered || !e.CreatedAt.Before(b) {
				return fmt.Errorf("delivered %v, created_at %v; want undelivered, before %v", e.Delivered, e.CreatedAt, b)
			}
			return nil
		}
		checkPrefix(f, call, got, want, limit, func(e store.OutboxEntry) string { return e.ID }, ok, entryLess)
		for _, g := range got {
			if w, mine := byName[strings.TrimPrefix(g.ID, f.tenant+"-")]; mine {
				if d := diffEntry(g, w); d != "" {
					t.Errorf("%s: %s: %s", call, g.ID, d)
				}
			}
		}
	}
	tests := []struct {
		before time.Duration
		limit  int
		want   []store.OutboxEntry
	}{
		{10 * time.Minute, 0, pick("u1", "u2", "u3", "u4", "u4b", "u5")},
		{10 * time.Minute, 100, pick("u1", "u2", "u3", "u4", "u4b", "u5")},
		{10 * time.Minute, 4, pick("u1", "u2", "u3", "u4", "u4b", "u5")},
		{4 * time.Minute, 0, pick("u1", "u2", "u3")},
		{4*time.Minute + time.Second, 0, pick("u1", "u2", "u3", "u4", "u4b")},
		{4 * time.Minute, 2, pick("u1", "u2", "u3")},
		{time.Minute, 0, nil},
	}
	for _, tc := range tests {
		f.Run(fmt.Sprintf("before=%v,limit=%d", tc.before, tc.limit), func(t *testing.T) {
			check(t, tc.before, tc.limit, tc.want)
		})
	}

	if err := f.s.MarkDelivered(f.ctx, f.id("u1"), f.id("u4")); err != nil {
		f.Fatalf("MarkDelivered(u1, u4) = %v, want nil", err)
	}
	for _, ids := range [][]string{{f.id("u1")}, {f.id("missing")}, nil} {
		if err := f.s.MarkDelivered(f.ctx, ids...); err != nil {
			f.Errorf("MarkDelivered(%q) = %v, want nil", ids, err)
		}
	}
	for _, n := range []string{"u1", "u4"} {
		e := byName[n]
		e.Delivered = true
		byName[n] = e
	}
	f.Run("after MarkDelivered", func(t *testing.T) {
		check(t, 10*time.Minute, 0, pick("u2", "u3", "u4b", "u5"))
	})
	f.checkOutbox(c1.Receipt.Hash, pick("u1", "u3"))
	f.checkOutbox(c2.Receipt.Hash, pick("u2", "u5", "u4", "u4b"))
}

// timerLess orders timers as DueTimers does.
func timerLess(a, b store.TimerEntry) bool {
	return cmp.Or(a.Due.Compare(b.Due), strings.Compare(a.ID, b.ID)) < 0
}

// checkDue checks DueTimers(base+at, limit) against the test's timers
// want, which are due by then, in order.
func (f *fixture) checkDue(at time.Duration, limit int, want []store.TimerEntry) {
	f.Helper()
	t := f.at(at)
	call := fmt.Sprintf("DueTimers(base+%v, %d)", at, limit)
	got, err := f.s.DueTimers(f.ctx, t, limit)
	if err != nil {
		f.Fatalf("%s = %v, want nil", call, err)
	}
	ok := func(e store.TimerEntry) error {
		if e.Due.After(t) {
			return fmt.Errorf("due %v after %v", e.Due, t)
		}
		return nil
	}
	checkPrefix(f, call, got, want, limit, func(e store.TimerEntry) string { return e.ID }, ok, timerLess)
	byID := map[string]store.TimerEntry{}
	for _, w := range want {
		byID[w.ID] = w
	}
	for _, g := range got {
		if w, mine := byID[g.ID]; mine && (g.Key != w.Key || g.Name != w.Name || !g.Due.Equal(w.Due)) {
			f.Errorf("%s: %+v, want %+v", call, g, w)
		}
	}
}

func testTimers(f *fixture) {
	k1 := f.key(governor.Subscription, "sub-1")
	k2 := f.key(governor.Subscription, "sub-2")
	timer := func(k governor.Key, name, id string, due time.Duration) store.TimerEntry {
		return store.TimerEntry{Key: k, Timer: governor.Timer{Name: name, ID: f.id(id), Due: f.at(due)}}
	}
	tA := timer(k1, "period_end", "tA", 2*time.Hour)
	tB := timer(k1, "grace", "tB", time.Hour)
	tC := timer(k2, "grace", "tC", time.Hour)
	tD := timer(k1, "suspension", "tD", 30*time.Minute)

	inst1, inst2 := newInstance(k1), newInstance(k2)
	c1 := decision(inst1, f.id("e1"), "past_due", f.at(0))
	c1.ArmTimers = []store.TimerEntry{tA, tB}
	f.mustCommit(c1)
	c2 := decision(inst2, f.id("e2"), "past_due", f.at(0))
	c2.ArmTimers = []store.TimerEntry{tC}
	f.mustCommit(c2)

	tests := []struct {
		at    time.Duration
		limit int
		want  []store.TimerEntry
	}{
		{30 * time.Minute, 0, nil},
		{time.Hour - time.Second, 0, nil},
		{time.Hour, 0, []store.TimerEntry{tB, tC}},
		{90 * time.Minute, 1, []store.TimerEntry{tB, tC}},
		{3 * time.Hour, 0, []store.TimerEntry{tB, tC, tA}},
		{3 * time.Hour, 2, []store.TimerEntry{tB, tC, tA}},
	}
	for _, tc := range tests {
		f.Run(fmt.Sprintf("at=%v,limit=%d", tc.at, tc.limit), func(t *testing.T) {
			f.with(t).checkDue(tc.at, tc.limit, tc.want)
		})
	}

	// A later decision cancels tB and arms tD; cancelling an id it arms
	// leaves that timer armed.
	c3 := decision(c1.Instance, f.id("e3"), "active", f.at(time.Minute))
	c3.CancelTimers = []string{tB.ID, tD.ID}
	c3.ArmTimers = []store.TimerEntry{tD}
	f.mustCommit(c3)
	f.checkDue(3*time.Hour, 0, []store.TimerEntry{tD, tC, tA})

	for _, id := range []string{tA.ID, tA.ID, f.id("missing")} {
		if err := f.s.DeleteTimer(f.ctx, id); err != nil {
			f.Errorf("DeleteTimer(%q) = %v, want nil", id, err)
		}
	}
	f.checkDue(3*time.Hour, 0, []store.TimerEntry{tD, tC})
}

func testMoveTimer(f *fixture) {
	k := f.key(governor.Subscription, "sub-move")
	tm := governor.Timer{Name: "trial_end", ID: f.id("tMove"), Due: f.at(48 * time.Hour)}
	c := decision(newInstance(k), f.id("e1"), "trialing", f.at(0))
	c.Instance.Timers = map[string]governor.Timer{tm.Name: tm}
	c.ArmTimers = []store.TimerEntry{{Key: k, Timer: tm}}
	f.mustCommit(c)
	f.checkDue(time.Hour, 0, nil)

	old, err := f.s.MoveTimer(f.ctx, k, "trial_end", f.at(time.Minute))
	if err != nil {
		f.Fatalf("MoveTimer = %v, want nil", err)
	}
	if old.ID != tm.ID || !old.Due.Equal(tm.Due) {
		f.Errorf("MoveTimer returned %+v, want the timer as it was, %+v", old, tm)
	}
	moved := tm
	moved.Due = f.at(time.Minute)
	f.checkDue(time.Hour, 0, []store.TimerEntry{{Key: k, Timer: moved}})
	var inst governor.Instance
	if err := f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		inst, err = tx.Instance(k)
		return err
	}); err != nil {
		f.Fatal(err)
	}
	if got := inst.Timers["trial_end"]; got.ID != tm.ID || !got.Due.Equal(moved.Due) {
		f.Errorf("instance timer after MoveTimer = %+v, want %+v", got, moved)
	}
	for _, tc := range []struct {
		name string
		key  governor.Key
		tmr  string
	}{
		{"timer not armed", k, "grace"},
		{"no instance", f.key(governor.Subscription, "sub-none"), "trial_end"},
	} {
		if _, err := f.s.MoveTimer(f.ctx, tc.key, tc.tmr, f.at(0)); governor.ErrorCode(err) != governor.NotFound {
			f.Errorf("MoveTimer(%s) = %v, want not_found", tc.name, err)
		}
	}
}
