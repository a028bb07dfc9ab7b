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

	"github.com/autonomics/autonomics/shared/fault"
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
	if want.Marker != "" && got.Marker != want.Marker {
		d = append(d, fmt.Sprintf("marker %q, want %q", got.Marker, want.Marker))
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

// withMarker returns entries with their Marker and Delivered set as a
// store returns them.
func withMarker(entries []store.OutboxEntry, marker string, delivered bool) []store.OutboxEntry {
	out := make([]store.OutboxEntry, len(entries))
	for i, e := range entries {
		e.Marker, e.Delivered = marker, delivered
		out[i] = e
	}
	return out
}

// markerOf returns the MarkerID of the dedup marker of c.
func markerOf(c store.Changes) string {
	return store.MarkerID(c.Instance.Key, c.Dedup.Source, c.Dedup.EventID)
}

// checkMarker checks the marker of c as a transaction reads it.
func (f *fixture) checkMarker(c store.Changes, delivered bool) {
	f.Helper()
	m, found := f.marker(c.Instance.Key, c.Dedup.Source, c.Dedup.EventID)
	if !found || m.ReceiptHash != c.Receipt.Hash || m.Delivered != delivered || len(m.Outbox) != len(c.Outbox) {
		f.Fatalf("Dedup(%s) = %+v, %v; want receipt %s, delivered %v, %d entries", c.Instance.Key, m, found, c.Receipt.Hash, delivered, len(c.Outbox))
	}
	for i, e := range withMarker(c.Outbox, markerOf(c), delivered) {
		if d := diffEntry(m.Outbox[i], e); d != "" {
			f.Errorf("Dedup(%s).Outbox[%d]: %s", c.Instance.Key, i, d)
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
	none := decision(newInstance(f.key(governor.QuotaSLA, "seats")), f.id("e3"), "warning", f.at(0))
	f.mustCommit(none)

	f.checkOutbox(h, withMarker(c.Outbox, markerOf(c), false))
	_, err := f.s.Outbox(f.ctx, "")
	f.checkCode(`Outbox("")`, err, fault.Invalid)
	f.checkOutbox(other.Receipt.Hash, withMarker(other.Outbox, markerOf(other), false))
	f.checkOutbox(f.id("unknown-hash"), nil)
	f.checkOutbox(none.Receipt.Hash, nil)

	// The marker holds the decision's outbox: a duplicate reads it in
	// its transaction. A decision without entries is delivered.
	f.checkMarker(c, false)
	f.checkMarker(none, true)

	// The written and the returned entries are the caller's.
	want := withMarker([]store.OutboxEntry{f.entry("o3", h, f.at(0)), bare, f.entry("o2", h, f.at(0))}, markerOf(c), false)
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

// testOutboxWithoutMarker refuses the outbox of a decision without a dedup
// marker: a decision's entries live in its marker.
func testOutboxWithoutMarker(f *fixture) {
	k := f.key(governor.QuotaSLA, "no-marker")
	c := decision(newInstance(k), f.id("e1"), "exceeded", f.at(0))
	c.Dedup = store.Dedup{}
	c.Outbox = []store.OutboxEntry{f.entry("o1", c.Receipt.Hash, f.at(0))}
	f.checkCode("Write(outbox without a dedup marker)", f.commit(c), fault.Invalid)
	if got := f.chain(k); len(got) != 0 {
		f.Errorf("Chain(%s) = %v after a refused Write, want none", k, ids(got))
	}
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
	// A decision is as old as its first entry: c1 at 1 min, c2 at 2 min.
	decisions := []store.Changes{c1, c2}

	check := func(t *testing.T, before time.Duration, limit int, want []store.Changes) {
		t.Helper()
		f := f.with(t)
		b := f.at(before)
		call := fmt.Sprintf("Undelivered(base+%v, %d)", before, limit)
		got, err := f.s.Undelivered(f.ctx, b, limit)
		if err != nil {
			t.Fatalf("%s = %v, want nil", call, err)
		}
		byMarker := map[string][]store.OutboxEntry{}
		var lead store.OutboxEntry // the first entry of the decision before
		for i, g := range got {
			if g.Delivered || g.Marker == "" {
				t.Errorf("%s[%d] = %+v: want undelivered, with its marker", call, i, g)
			}
			switch _, seen := byMarker[g.Marker]; {
			case i > 0 && g.Marker == got[i-1].Marker:
				if entryLess(g, got[i-1]) {
					t.Errorf("%s[%d] = %s sorts before [%d] = %s of its decision", call, i, g.ID, i-1, got[i-1].ID)
				}
			case seen:
				t.Errorf("%s[%d] = %s: its decision's entries are not together", call, i, g.ID)
			default:
				if i > 0 && cmp.Or(g.CreatedAt.Compare(lead.CreatedAt), store.CompareMarkers(g.Marker, lead.Marker)) < 0 {
					t.Errorf("%s[%d]: decision %s sorts before the decision before it, %s", call, i, g.Marker, lead.Marker)
				}
				lead = g
			}
			byMarker[g.Marker] = append(byMarker[g.Marker], g)
		}
		if limit > 0 && len(byMarker) > limit {
			t.Errorf("%s returned %d decisions, want at most %d", call, len(byMarker), limit)
		}
		// Own decisions come whole, oldest first, as a prefix of want
		// (all of it when the listing is not full).
		var mine []store.Changes
		for _, c := range decisions {
			entries, ok := byMarker[markerOf(c)]
			if !ok {
				continue
			}
			mine = append(mine, c)
			wantEntries := withMarker(c.Outbox, markerOf(c), false)
			slices.SortFunc(wantEntries, func(a, b store.OutboxEntry) int {
				return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
			})
			if len(entries) != len(wantEntries) {
				t.Errorf("%s: decision %s has %d entries, want all %d", call, c.Instance.Key, len(entries), len(wantEntries))
				continue
			}
			for i := range entries {
				if d := diffEntry(entries[i], wantEntries[i]); d != "" {
					t.Errorf("%s: %s: %s", call, entries[i].ID, d)
				}
			}
		}
		ok := len(mine) <= len(want)
		for i := 0; ok && i < len(mine); i++ {
			ok = markerOf(mine[i]) == markerOf(want[i])
		}
		if !ok {
			t.Errorf("%s own decisions = %d, want a prefix of %d", call, len(mine), len(want))
		}
		if len(mine) < len(want) && (limit <= 0 || len(byMarker) < limit) {
			t.Errorf("%s own decisions = %d, want %d (listing not full: %d decisions)", call, len(mine), len(want), len(byMarker))
		}
	}
	tests := []struct {
		before time.Duration
		limit  int
		want   []store.Changes
	}{
		{10 * time.Minute, 0, decisions},
		{10 * time.Minute, 100, decisions},
		{10 * time.Minute, 1, decisions},
		{2 * time.Minute, 0, decisions[:1]},
		{2*time.Minute + time.Second, 0, decisions},
		{2 * time.Minute, 1, decisions[:1]},
		{time.Minute, 0, nil},
	}
	for _, tc := range tests {
		f.Run(fmt.Sprintf("before=%v,limit=%d", tc.before, tc.limit), func(t *testing.T) {
			check(t, tc.before, tc.limit, tc.want)
		})
	}

	// One call marks a decision delivered, all of its entries; unknown and
	// malformed marker ids are ignored.
	if err := f.s.MarkDelivered(f.ctx, markerOf(c1)); err != nil {
		f.Fatalf("MarkDelivered(c1) = %v, want nil", err)
	}
	for _, ids := range [][]string{
		{markerOf(c1)},
		{f.tenant + "/" + strings.Repeat("0", 64)},
		{"", "not-a-marker", f.id("u2"), f.tenant + "/" + strings.Repeat("z", 64)},
		nil,
	} {
		if err := f.s.MarkDelivered(f.ctx, ids...); err != nil {
			f.Errorf("MarkDelivered(%q) = %v, want nil", ids, err)
		}
	}
	f.Run("after MarkDelivered", func(t *testing.T) {
		check(t, 10*time.Minute, 0, decisions[1:])
	})
	f.checkOutbox(c1.Receipt.Hash, withMarker(c1.Outbox, markerOf(c1), true))
	f.checkOutbox(c2.Receipt.Hash, withMarker(c2.Outbox, markerOf(c2), false))
	f.checkMarker(c1, true)
	f.checkMarker(c2, false)
}

// testMarkDeliveredSeveral marks several decisions in one call.
func testMarkDeliveredSeveral(f *fixture) {
	var cs []store.Changes
	var markers []string
	for i := range 3 {
		k := f.key(governor.Subscription, fmt.Sprint("sub-", i))
		c := decision(newInstance(k), f.id(fmt.Sprint("e", i)), "active", f.at(0))
		c.Outbox = []store.OutboxEntry{f.entry(fmt.Sprint("m", i), c.Receipt.Hash, f.at(0))}
		f.mustCommit(c)
		cs = append(cs, c)
		markers = append(markers, markerOf(c))
	}
	if err := f.s.MarkDelivered(f.ctx, markers[0], markers[2], markers[0]); err != nil {
		f.Fatalf("MarkDelivered(0, 2, 0) = %v, want nil", err)
	}
	f.checkMarker(cs[0], true)
	f.checkMarker(cs[1], false)
	f.checkMarker(cs[2], true)
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
		if _, err := f.s.MoveTimer(f.ctx, tc.key, tc.tmr, f.at(0)); fault.ErrorCode(err) != fault.NotFound {
			f.Errorf("MoveTimer(%s) = %v, want not_found", tc.name, err)
		}
	}
}
