// Package usagetest is the conformance suite of usage.WindowStore (Run)
// and a store wrapper that injects write faults (Faulty).
package usagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/marketplace/usage"
)

// Epoch is the time the suite's records start at.
var Epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// window returns the i-th hourly window from Epoch.
func window(ent, metric string, i int, value, cum int64) usage.Window {
	start := Epoch.Add(time.Duration(i) * time.Hour)
	return usage.Window{
		Start: start, End: start.Add(time.Hour), Value: value, Usage: cum,
		OperationID: usage.OperationID(ent, metric, start), ConsumerID: "project_number:42",
		MetricName: "svc/" + metric, RecordedAt: start.Add(time.Hour + 5*time.Minute),
	}
}

// Run runs the conformance suite against the stores newStore returns,
// one per subtest.
func Run(t *testing.T, newStore func(t *testing.T) usage.WindowStore) {
	ctx := context.Background()
	t.Run("MissingCursorIsNotFound", func(t *testing.T) {
		s := newStore(t)
		if _, ok, err := s.Cursor(ctx, "ent-1", "api_calls"); err != nil || ok {
			t.Fatalf("Cursor of nothing = %v, %v; want false, nil", ok, err)
		}
		if cs, err := s.Cursors(ctx, "ent-1"); err != nil || len(cs) != 0 {
			t.Fatalf("Cursors of nothing = %v, %v; want none", cs, err)
		}
	})
	t.Run("CursorRoundTrips", func(t *testing.T) {
		s := newStore(t)
		c := usage.Cursor{
			Entitlement: "ent-1", Metric: "api_calls", Tenant: "mp-acct", End: Epoch, Usage: 7, Version: 1,
			FirstSeen: Epoch.Add(-30 * time.Minute), UpdatedAt: Epoch,
		}
		if err := s.PutCursor(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Pending = []usage.Window{window("ent-1", "api_calls", 0, 5, 12), window("ent-1", "api_calls", 1, 0, 12)}
		c.Version = 2
		if err := s.PutCursor(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Cursor(ctx, "ent-1", "api_calls")
		if err != nil || !ok {
			t.Fatalf("Cursor = %v, %v", ok, err)
		}
		if err := same(got, c); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("StaleVersionIsAConflict", func(t *testing.T) {
		s := newStore(t)
		c := usage.Cursor{Entitlement: "ent-1", Metric: "m", Tenant: "t", End: Epoch, Version: 1, UpdatedAt: Epoch}
		if err := s.PutCursor(ctx, c); err != nil {
			t.Fatal(err)
		}
		for _, v := range []int64{1, 3} {
			c.Version = v
			if err := s.PutCursor(ctx, c); fault.ErrorCode(err) != fault.Conflict {
				t.Errorf("PutCursor at version %d over version 1 = %v; want a Conflict", v, err)
			}
		}
		c.Version = 2
		c.Usage = 99
		if err := s.PutCursor(ctx, c); err != nil {
			t.Fatalf("PutCursor at version 2 over 1: %v", err)
		}
		got, _, _ := s.Cursor(ctx, "ent-1", "m")
		if got.Version != 2 || got.Usage != 99 {
			t.Errorf("after the writes: version %d usage %d; want 2, 99", got.Version, got.Usage)
		}
	})
	t.Run("ConcurrentWritersOneWins", func(t *testing.T) {
		s := newStore(t)
		base := usage.Cursor{Entitlement: "ent-r", Metric: "m", Tenant: "t", End: Epoch, Version: 1, UpdatedAt: Epoch}
		if err := s.PutCursor(ctx, base); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := base
				c.Version, c.Usage = 2, int64(i+1)
				errs[i] = s.PutCursor(ctx, c)
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch fault.ErrorCode(err) {
			case "":
				wins++
			case fault.Conflict, fault.Unavailable:
			default:
				t.Errorf("concurrent PutCursor: %v", err)
			}
		}
		if wins != 1 {
			t.Errorf("%d concurrent writers of version 2 succeeded; want exactly 1", wins)
		}
	})
	t.Run("FirstVersionOnlyOnce", func(t *testing.T) {
		s := newStore(t)
		c := usage.Cursor{Entitlement: "ent-1", Metric: "m", Tenant: "t", End: Epoch, Version: 1, UpdatedAt: Epoch}
		if err := s.PutCursor(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.PutCursor(ctx, c); fault.ErrorCode(err) != fault.Conflict {
			t.Errorf("creating a cursor twice = %v; want a Conflict", err)
		}
	})
	t.Run("InvalidCursorIsRefused", func(t *testing.T) {
		s := newStore(t)
		good := usage.Cursor{Entitlement: "ent-1", Metric: "m", Tenant: "t", End: Epoch, Version: 1, UpdatedAt: Epoch}
		gap := good
		gap.Pending = []usage.Window{window("ent-1", "m", 1, 1, 1)}
		tooMany := good
		for i := range usage.MaxPending + 1 {
			tooMany.Pending = append(tooMany.Pending, window("ent-1", "m", i, 1, int64(i+1)))
		}
		for name, c := range map[string]usage.Cursor{
			"slash in entitlement": func() usage.Cursor { c := good; c.Entitlement = "a/b"; return c }(),
			"tilde in metric":      func() usage.Cursor { c := good; c.Metric = "a~b"; return c }(),
			"dunder tenant":        func() usage.Cursor { c := good; c.Tenant = "__x"; return c }(),
			"version 0":            func() usage.Cursor { c := good; c.Version = 0; return c }(),
			"gap":                  gap,
			"too many pending":     tooMany,
		} {
			if err := s.PutCursor(ctx, c); fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("%s: PutCursor = %v; want Invalid", name, err)
			}
		}
		if _, ok, _ := s.Cursor(ctx, "ent-1", "m"); ok {
			t.Error("a refused cursor was stored")
		}
	})
	t.Run("CursorsOfOneEntitlementInMetricOrder", func(t *testing.T) {
		s := newStore(t)
		for _, k := range [][2]string{{"ent-2", "z"}, {"ent-2", "a"}, {"ent-20", "b"}, {"ent-3", "c"}, {"ent-2", "m"}} {
			if err := s.PutCursor(ctx, usage.Cursor{Entitlement: k[0], Metric: k[1], Tenant: "t", End: Epoch, Version: 1, UpdatedAt: Epoch}); err != nil {
				t.Fatal(err)
			}
		}
		cs, err := s.Cursors(ctx, "ent-2")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cs {
			got = append(got, c.Entitlement+"~"+c.Metric)
		}
		if fmt.Sprint(got) != "[ent-2~a ent-2~m ent-2~z]" {
			t.Errorf("Cursors(ent-2) = %v; want [ent-2~a ent-2~m ent-2~z]", got)
		}
	})
	t.Run("BlocksRoundTrip", func(t *testing.T) {
		s := newStore(t)
		if _, ok, err := s.Block(ctx, "ent-1"); err != nil || ok {
			t.Fatalf("Block of nothing = %v, %v", ok, err)
		}
		b := usage.Block{Entitlement: "ent-1", Tenant: "t", Code: "BILLING_DISABLED", Reason: "BILLING_DISABLED: x", WindowStart: Epoch, Since: Epoch.Add(time.Hour)}
		if err := s.PutBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
		b.Reason = "BILLING_DISABLED: y"
		if err := s.PutBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Block(ctx, "ent-1")
		if err != nil || !ok {
			t.Fatalf("Block = %v, %v", ok, err)
		}
		if got.Entitlement != b.Entitlement || got.Tenant != b.Tenant || got.Code != b.Code || got.Reason != b.Reason ||
			!got.WindowStart.Equal(b.WindowStart) || !got.Since.Equal(b.Since) {
			t.Errorf("Block = %+v; want %+v", got, b)
		}
		if err := s.DeleteBlock(ctx, "ent-1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteBlock(ctx, "ent-1"); err != nil {
			t.Errorf("deleting a missing block: %v", err)
		}
		if _, ok, _ := s.Block(ctx, "ent-1"); ok {
			t.Error("the block survived DeleteBlock")
		}
		if err := s.PutBlock(ctx, usage.Block{Entitlement: "a/b", Tenant: "t"}); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("PutBlock of entitlement a/b = %v; want Invalid", err)
		}
	})
}

// same compares two cursors field by field, times by instant.
func same(got, want usage.Cursor) error {
	if got.Entitlement != want.Entitlement || got.Metric != want.Metric || got.Tenant != want.Tenant ||
		!got.End.Equal(want.End) || got.Usage != want.Usage || got.Version != want.Version ||
		!got.FirstSeen.Equal(want.FirstSeen) || !got.UpdatedAt.Equal(want.UpdatedAt) || len(got.Pending) != len(want.Pending) {
		return fmt.Errorf("cursor = %+v\nwant %+v", got, want)
	}
	for i := range got.Pending {
		g, w := got.Pending[i], want.Pending[i]
		if !g.Start.Equal(w.Start) || !g.End.Equal(w.End) || g.Value != w.Value || g.Usage != w.Usage || g.OperationID != w.OperationID ||
			g.ConsumerID != w.ConsumerID || g.MetricName != w.MetricName || !g.RecordedAt.Equal(w.RecordedAt) {
			return fmt.Errorf("pending[%d] = %+v\nwant %+v", i, g, w)
		}
	}
	return nil
}

// ErrInjected is the error of an injected fault.
var ErrInjected = errors.New("injected fault")

// Faulty wraps a WindowStore and fails the cursor writes a predicate
// selects, as a process that stops before its write leaves the store, and
// the block writes while told to.
type Faulty struct {
	usage.WindowStore
	mu         sync.Mutex
	fail       func(c usage.Cursor) bool
	failBlocks bool
}

// FailBlocks makes block writes (PutBlock) fail while on is true.
func (f *Faulty) FailBlocks(on bool) {
	f.mu.Lock()
	f.failBlocks = on
	f.mu.Unlock()
}

// PutBlock fails while FailBlocks is on, and writes b otherwise.
func (f *Faulty) PutBlock(ctx context.Context, b usage.Block) error {
	f.mu.Lock()
	fail := f.failBlocks
	f.mu.Unlock()
	if fail {
		return fault.Wrap(fault.Unavailable, "usagetest.Faulty", ErrInjected)
	}
	return f.WindowStore.PutBlock(ctx, b)
}

// FailPuts sets the predicate of the cursor writes that fail; nil stops
// failing.
func (f *Faulty) FailPuts(fail func(c usage.Cursor) bool) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

// PutCursor fails when the predicate selects c, and writes it otherwise.
func (f *Faulty) PutCursor(ctx context.Context, c usage.Cursor) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail != nil && fail(c) {
		return fault.Wrap(fault.Unavailable, "usagetest.Faulty", ErrInjected)
	}
	return f.WindowStore.PutCursor(ctx, c)
}
