package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
)

// manyTimers is how many timers testManyTimers arms: more than one
// commit of DeleteTimers deletes.
const manyTimers = 3*store.MaxTimerDeletes/2 + 7

// testManyTimers arms more timers than one commit of DeleteTimers
// deletes, many due at the same time, reads them back through
// DueTimers at several limits and deletes them in one call.
func testManyTimers(f *fixture) {
	k := f.key(governor.Subscription, "many")
	all := make([]store.TimerEntry, manyTimers)
	for i := range all {
		all[i] = store.TimerEntry{Key: k, Timer: governor.Timer{
			Name: fmt.Sprintf("t%04d", i), ID: f.id(fmt.Sprintf("many-%04d", i)),
			Due: f.at(time.Duration(i%37) * time.Minute),
		}}
	}
	ids := make([]string, len(all))
	for i, e := range all {
		ids[i] = e.ID
	}
	f.Cleanup(func() {
		if err := f.s.DeleteTimers(context.Background(), ids...); err != nil {
			f.Errorf("cleanup: DeleteTimers = %v", err)
		}
	})
	// Commits of at most 400 timers, within Firestore's 500 writes.
	inst := newInstance(k)
	for n, chunk := 0, slices.Collect(slices.Chunk(all, 400)); n < len(chunk); n++ {
		c := decision(inst, f.id(fmt.Sprintf("arm-%d", n)), "active", f.at(0))
		c.ArmTimers = chunk[n]
		if err := f.commit(c); err != nil {
			f.Fatalf("RunTx(Write %d timers) = %v, want nil", len(c.ArmTimers), err)
		}
		inst = c.Instance
	}
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(a, b store.TimerEntry) int {
		if timerLess(a, b) {
			return -1
		}
		if timerLess(b, a) {
			return 1
		}
		return 0
	})
	dueBy := func(at time.Duration) []store.TimerEntry {
		var out []store.TimerEntry
		for _, e := range sorted {
			if !e.Due.After(f.at(at)) {
				out = append(out, e)
			}
		}
		return out
	}
	for _, tc := range []struct {
		at    time.Duration
		limit int
	}{
		{0, 0}, {0, 1}, {10 * time.Minute, 7}, {10 * time.Minute, 100},
		{time.Hour, 50}, {time.Hour, 333}, {time.Hour, manyTimers}, {time.Hour, 0},
	} {
		f.Run(fmt.Sprintf("at=%v,limit=%d", tc.at, tc.limit), func(t *testing.T) {
			f.with(t).checkDue(tc.at, tc.limit, dueBy(tc.at))
		})
	}

	if err := f.s.DeleteTimers(f.ctx, append(slices.Clone(ids), ids[0], f.id("missing"))...); err != nil {
		f.Fatalf("DeleteTimers(%d ids, a repeated one, a missing one) = %v, want nil", len(ids)+2, err)
	}
	f.checkDue(time.Hour, 0, nil)
	got, err := f.s.DueTimers(f.ctx, f.at(time.Hour), 0)
	if err != nil {
		f.Fatalf("DueTimers after DeleteTimers = %v", err)
	}
	mine := map[string]bool{}
	for _, id := range ids {
		mine[id] = true
	}
	for _, g := range got {
		if mine[g.ID] {
			f.Errorf("DueTimers after DeleteTimers still lists %s", g.ID)
		}
	}
}

// testDeleteTimersInvalidID checks that an unusable id refuses the whole
// call before anything is deleted.
func testDeleteTimersInvalidID(f *fixture) {
	k := f.key(governor.Subscription, "sub-1")
	tm := store.TimerEntry{Key: k, Timer: governor.Timer{Name: "grace", ID: f.id("kept"), Due: f.at(0)}}
	c := decision(newInstance(k), f.id("e1"), "past_due", f.at(0))
	c.ArmTimers = []store.TimerEntry{tm}
	f.mustCommit(c)
	for _, bad := range []string{"", "a/b", ".."} {
		err := f.s.DeleteTimers(f.ctx, tm.ID, bad)
		f.checkCode(fmt.Sprintf("DeleteTimers(%q, %q)", tm.ID, bad), err, fault.Invalid)
	}
	f.checkDue(0, 0, []store.TimerEntry{tm})
	if err := f.s.DeleteTimers(f.ctx); err != nil {
		f.Errorf("DeleteTimers() = %v, want nil", err)
	}
}
