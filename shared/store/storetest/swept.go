package storetest

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
)

// testSwept moves the sweep past a decision: Undelivered leaves out that
// decision and those before it in its shard, and keeps the others;
// Outbox reports it delivered; an older position and a bad marker change
// nothing.
//
// The sweep's position is the store's, shared by every test: the
// decisions are dated in 1980, before any other test's, at a time that
// grows from run to run, so that the position moved here hides nothing
// another test or a later run writes.
func testSwept(f *fixture) {
	base := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Since(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).Truncate(time.Second))
	var cs []store.Changes
	for i := range 6 {
		k := f.key(governor.Subscription, fmt.Sprint("swept-", i))
		at := base.Add(time.Duration(i) * time.Second)
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
		pos := cmp.Or(c.Outbox[0].CreatedAt.Compare(pivot.Outbox[0].CreatedAt), strings.Compare(markerOf(c), markerOf(pivot)))
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
}
