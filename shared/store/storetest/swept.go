package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
)

// testSwept moves the sweep past a decision: Undelivered leaves out that
// decision and those before it in its shard, and keeps the others;
// Outbox reports it delivered; an older position and a bad marker change
// nothing. Then it does the same with decisions taken at one instant
// (sweptSimultaneous).
//
// The sweep's position is the store's, shared by every test: the
// decisions are dated in 1980, before any other test's, at a time that
// grows with the clock by the microsecond, and all of one run's lie
// within 10µs of its start, so that the position moved here hides
// nothing another test or a later run writes.
func testSwept(f *fixture) {
	base := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Since(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).Truncate(time.Microsecond))
	var cs []store.Changes
	for i := range 6 {
		k := f.key(governor.Subscription, fmt.Sprint("swept-", i))
		at := base.Add(time.Duration(i) * time.Microsecond)
		c := decision(newInstance(k), f.id(fmt.Sprint("s", i)), "active", at)
		c.Outbox = []store.OutboxEntry{f.entry(fmt.Sprint("sw", i), c.Receipt.Hash, at)}
		f.mustCommit(c)
		cs = append(cs, c)
	}
	before := base.Add(time.Minute)
	visible := func() map[string]store.OutboxEntry {
		f.Helper()
		got, err := f.s.Undelivered(f.ctx, before, 0)
		if err != nil {
			f.Fatalf("Undelivered = %v, want nil", err)
		}
		out := map[string]store.OutboxEntry{}
		for _, e := range got {
			out[e.Marker] = e
		}
		return out
	}
	first := visible()
	for _, c := range cs {
		if _, ok := first[markerOf(c)]; !ok {
			f.Fatalf("Undelivered before Swept misses %s", c.Instance.Key)
		}
	}
	// Sweep past the fourth decision.
	pivot := cs[3]
	pivotShard, _ := store.SweepShard(markerOf(pivot))
	if err := f.s.Swept(f.ctx, first[markerOf(pivot)]); err != nil {
		f.Fatalf("Swept = %v, want nil", err)
	}
	hidden := func(c store.Changes) bool {
		shard, _ := store.SweepShard(markerOf(c))
		pos := cmp.Or(c.Outbox[0].CreatedAt.Compare(pivot.Outbox[0].CreatedAt), store.CompareMarkers(markerOf(c), markerOf(pivot)))
		return shard == pivotShard && pos <= 0
	}
	check := func(when string) {
		f.Helper()
		got := visible()
		for _, c := range cs {
			if _, ok := got[markerOf(c)]; ok == hidden(c) {
				f.Errorf("%s: Undelivered returns %s = %v, want %v", when, c.Instance.Key, ok, !hidden(c))
			}
		}
		f.checkOutbox(pivot.Receipt.Hash, withMarker(pivot.Outbox, markerOf(pivot), true))
	}
	check("after Swept")
	// An older position of the same shard, and markers that are not
	// marker ids, move nothing back.
	if err := f.s.Swept(f.ctx, store.OutboxEntry{Marker: markerOf(pivot), CreatedAt: base.Add(-time.Hour)},
		store.OutboxEntry{Marker: "not-a-marker", CreatedAt: before}, store.OutboxEntry{}); err != nil {
		f.Fatalf("Swept(older, invalid) = %v, want nil", err)
	}
	check("after an older Swept")
	// A decision not swept is not reported delivered.
	for _, c := range cs {
		if !hidden(c) {
			f.checkOutbox(c.Receipt.Hash, withMarker(c.Outbox, markerOf(c), false))
		}
	}
	sweptSimultaneous(f, base.Add(10*time.Microsecond))
}

// sweptSimultaneous commits decisions taken at one instant, at, by
// tenants whose ids extend one another ("t", "t-a", "t.b", "t0"), so that
// their markers' ids and paths sort differently as strings than by
// tenant. Undelivered must return them in the sweep's order
// (CompareMarkers), and moving the sweep past one decision per shard must
// leave out exactly the decisions at or before it in its shard, by that
// order: the one the store's own query skips.
func sweptSimultaneous(f *fixture, at time.Time) {
	f.Helper()
	tenants := []string{f.tenant, f.tenant + "-a", f.tenant + ".b", f.tenant + "0"}
	var markers []string
	for i := range 40 {
		g := *f
		g.tenant = tenants[i%len(tenants)]
		k := g.key(governor.Subscription, fmt.Sprint("simultaneous-", i))
		c := decision(newInstance(k), g.id(fmt.Sprint("sim", i)), "active", at)
		// Entry ids in the reverse of the decisions' order.
		c.Outbox = []store.OutboxEntry{g.entry(fmt.Sprintf("sim%02d", 40-i), c.Receipt.Hash, at)}
		f.mustCommit(c)
		markers = append(markers, markerOf(c))
	}
	mine := func(when string) []store.OutboxEntry {
		f.Helper()
		got, err := f.s.Undelivered(f.ctx, at.Add(time.Microsecond), 0)
		if err != nil {
			f.Fatalf("%s: Undelivered = %v, want nil", when, err)
		}
		var out []store.OutboxEntry
		for _, e := range got {
			if slices.Contains(markers, e.Marker) {
				out = append(out, e)
			}
		}
		return out
	}
	want := slices.Clone(markers)
	slices.SortFunc(want, store.CompareMarkers)
	got := mine("before Swept")
	if !slices.EqualFunc(got, want, func(e store.OutboxEntry, m string) bool { return e.Marker == m }) {
		var order []string
		for _, e := range got {
			order = append(order, e.Marker)
		}
		f.Fatalf("Undelivered's decisions at one instant:\n%s\nwant the sweep's order:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	// Per shard, sweep past the middle one of its decisions.
	byShard := map[int][]store.OutboxEntry{}
	for _, e := range got {
		shard, _ := store.SweepShard(e.Marker)
		byShard[shard] = append(byShard[shard], e)
	}
	pivots := map[int]string{}
	var last []store.OutboxEntry
	for shard, es := range byShard {
		if len(es) >= 2 {
			pivots[shard] = es[len(es)/2].Marker
			last = append(last, es[len(es)/2])
		}
	}
	if len(last) == 0 {
		f.Fatal("no shard holds two of the decisions")
	}
	if err := f.s.Swept(f.ctx, last...); err != nil {
		f.Fatalf("Swept = %v, want nil", err)
	}
	left := map[string]bool{}
	for _, e := range mine("after Swept") {
		left[e.Marker] = true
	}
	for _, m := range want {
		shard, _ := store.SweepShard(m)
		p, ok := pivots[shard]
		hidden := ok && store.CompareMarkers(m, p) <= 0
		if left[m] == hidden {
			f.Errorf("after Swept past %s: Undelivered returns %s = %v, want %v", p, m, left[m], !hidden)
		}
	}
}
