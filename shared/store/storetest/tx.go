package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// checkNothingWritten fails the test if any of c's writes is visible.
func (f *fixture) checkNothingWritten(c store.Changes) {
	f.Helper()
	k := c.Instance.Key
	if got := f.read(k); diffInstance(got, newInstance(k)) != "" {
		f.Errorf("Instance(%s) = %+v, want a missing instance", k, got)
	}
	if got := f.chain(k); len(got) != 0 {
		f.Errorf("Chain(%s) = %v, want none", k, ids(got))
	}
	if hash, found := f.dedup(k, c.Dedup.Source, c.Dedup.EventID); found {
		f.Errorf("Dedup(%s, %q, %q) = %q, true; want not found", k, c.Dedup.Source, c.Dedup.EventID, hash)
	}
	if got, err := f.s.Outbox(f.ctx, c.Receipt.Hash); err != nil || len(got) != 0 {
		f.Errorf("Outbox(%q) = %+v, %v; want none, nil", c.Receipt.Hash, got, err)
	}
	if got, err := f.s.Instances(f.ctx, k.Tenant, ""); err != nil || len(got) != 0 {
		f.Errorf("Instances(%q) = %+v, %v; want none, nil", k.Tenant, got, err)
	}
	if got, err := f.s.Tenants(f.ctx, store.TenantQuery{Prefix: k.Tenant}); err != nil || slices.Contains(got, k.Tenant) {
		f.Errorf("Tenants(prefix %q) = %q, %v; want %q unlisted, nil", k.Tenant, got, err, k.Tenant)
	}
	f.checkDue(365*24*time.Hour, 0, nil)
}

// fullDecision returns a decision with an outbox entry and a timer.
func (f *fixture) fullDecision(k governor.Key) store.Changes {
	c := decision(newInstance(k), f.id("e1"), "open", f.at(0))
	c.Outbox = []store.OutboxEntry{f.entry("o1", c.Receipt.Hash, f.at(0))}
	c.ArmTimers = []store.TimerEntry{{Key: k, Timer: governor.Timer{Name: "retry", ID: f.id("t1"), Due: f.at(time.Hour)}}}
	return c
}

func testErrorAbortsTx(f *fixture) {
	k := f.key(governor.Billing, "2026-11")
	c := f.fullDecision(k)
	f.cleanup(c)
	errBoom := errors.New("boom")
	calls := 0
	err := f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error {
		calls++
		if _, err := tx.Instance(k); err != nil {
			return err
		}
		if err := tx.Write(c); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		f.Errorf("RunTx(fn returning %v) = %v, want %v", errBoom, err, errBoom)
	}
	if calls != 1 {
		f.Errorf("RunTx(fn returning %v) called fn %d times, want 1", errBoom, calls)
	}
	f.checkNothingWritten(c)
}

func testWriteTwice(f *fixture) {
	k := f.key(governor.Billing, "2026-11")
	c := f.fullDecision(k)
	f.cleanup(c)
	var second error
	err := f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Instance(k); err != nil {
			return err
		}
		if err := tx.Write(c); err != nil {
			return fmt.Errorf("first Write: %w", err)
		}
		second = tx.Write(c)
		return second
	})
	if second == nil {
		f.Errorf("second Write in one transaction = nil, want an error")
	}
	if err == nil {
		f.Errorf("RunTx(fn returning the second Write's error) = nil, want an error")
	}
	f.checkNothingWritten(c)
}

func testReadAfterWrite(f *fixture) {
	k := f.key(governor.Billing, "2026-11")
	c := f.fullDecision(k)
	f.cleanup(c)
	var readErr, dedupErr error
	err := f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.Write(c); err != nil {
			return err
		}
		_, readErr = tx.Instance(k)
		_, _, dedupErr = tx.Dedup(k, testSource, "evt")
		return errors.Join(readErr, dedupErr)
	})
	if readErr == nil || dedupErr == nil {
		f.Errorf("Instance, Dedup after Write = %v, %v; want errors", readErr, dedupErr)
	}
	if err == nil {
		f.Errorf("RunTx(fn returning the read errors) = nil, want an error")
	}
	f.checkNothingWritten(c)
}

func testInvalidChanges(f *fixture) {
	k := f.key(governor.Billing, "2026-11")
	tests := []struct {
		name   string
		change func(c *store.Changes)
	}{
		{"no tenant", func(c *store.Changes) { c.Instance.Tenant = "" }},
		{"no domain", func(c *store.Changes) { c.Instance.Domain = "" }},
		{"no subject", func(c *store.Changes) { c.Instance.Subject = "" }},
		{"slash in subject", func(c *store.Changes) { c.Instance.Subject = "a/b" }},
		{"receipt of another instance", func(c *store.Changes) { c.Receipt.Subject = "2026-12" }},
		{"receipt of another tenant", func(c *store.Changes) { c.Receipt.TenantID += "x" }},
		{"no receipt", func(c *store.Changes) { c.Receipt = receipt.Receipt{} }},
		{"seq 0", func(c *store.Changes) { c.Receipt.Seq = 0 }},
		{"seq negative", func(c *store.Changes) { c.Receipt.Seq = -1 }},
		{"seq too large", func(c *store.Changes) { c.Receipt.Seq = 1_000_000_000_000 }},
		{"bad decided_at", func(c *store.Changes) { c.Receipt.DecidedAt = "yesterday" }},
		{"dedup of another instance", func(c *store.Changes) { c.Dedup.Key.Subject = "2026-12" }},
		{"dedup without event id", func(c *store.Changes) { c.Dedup.EventID = "" }},
		{"outbox entry without id", func(c *store.Changes) { c.Outbox[0].ID = "" }},
		{"outbox id with slash", func(c *store.Changes) { c.Outbox[0].ID = "a/b" }},
		{"outbox id dot", func(c *store.Changes) { c.Outbox[0].ID = ".." }},
		{"duplicate outbox id", func(c *store.Changes) { c.Outbox = append(c.Outbox, c.Outbox[0]) }},
		{"timer without id", func(c *store.Changes) { c.ArmTimers[0].ID = "" }},
		{"timer id with slash", func(c *store.Changes) { c.ArmTimers[0].ID = "a/b" }},
		{"timer without key", func(c *store.Changes) { c.ArmTimers[0].Key = governor.Key{} }},
		{"duplicate timer id", func(c *store.Changes) { c.ArmTimers = append(c.ArmTimers, c.ArmTimers[0]) }},
		{"cancel id with slash", func(c *store.Changes) { c.CancelTimers = []string{"a/b"} }},
		{"cancel without id", func(c *store.Changes) { c.CancelTimers = []string{""} }},
		{"instance timer without name", func(c *store.Changes) {
			c.Instance.Timers = map[string]governor.Timer{"": {ID: "x", Due: f.at(time.Hour)}}
		}},
	}
	for _, tc := range tests {
		f.Run(tc.name, func(t *testing.T) {
			f := f.with(t)
			c := f.fullDecision(k)
			f.cleanup(c)
			tc.change(&c)
			var writeErr error
			err := f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error {
				writeErr = tx.Write(c)
				return writeErr
			})
			f.checkCode("Write", writeErr, fault.Invalid)
			if err == nil {
				t.Errorf("RunTx(fn returning the Write error) = nil, want an error")
			}
			valid := f.fullDecision(k)
			if got := f.read(k); diffInstance(got, newInstance(k)) != "" {
				t.Errorf("Instance(%s) = %+v, want a missing instance", k, got)
			}
			if got := f.chain(k); len(got) != 0 {
				t.Errorf("Chain(%s) = %v, want none", k, ids(got))
			}
			if got, err := f.s.Outbox(f.ctx, valid.Receipt.Hash); err != nil || len(got) != 0 {
				t.Errorf("Outbox(%q) = %+v, %v; want none, nil", valid.Receipt.Hash, got, err)
			}
		})
	}
}

func testDuplicateSeq(f *fixture) {
	k := f.key(governor.Billing, "2026-11")
	c1 := decision(newInstance(k), f.id("e1"), "open", f.at(0))
	f.mustCommit(c1)
	// A second decision on the same snapshot: its receipt has seq 1 too.
	c2 := decision(newInstance(k), f.id("e2"), "invoiced", f.at(time.Second))
	c2.Outbox = []store.OutboxEntry{f.entry("o1", c2.Receipt.Hash, f.at(0))}
	f.cleanup(c2)
	err := f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error { return tx.Write(c2) })
	f.checkCode("RunTx(Write of an existing seq)", err, fault.Conflict)

	if got := f.read(k); diffInstance(got, c1.Instance) != "" {
		f.Errorf("Instance(%s) = %+v: %s", k, got, diffInstance(got, c1.Instance))
	}
	if got := f.chain(k); !sameReceipts(got, []receipt.Receipt{c1.Receipt}) {
		f.Errorf("Chain(%s) = %v, want only the first receipt", k, ids(got))
	}
	if hash, found := f.dedup(k, testSource, f.id("e2")); found {
		f.Errorf("Dedup(%s, %q, %q) = %q, true; want not found", k, testSource, f.id("e2"), hash)
	}
	f.checkOutbox(c2.Receipt.Hash, nil)
}

// testConcurrentUpdates runs Concurrency read-modify-write transactions on
// one instance at once. The Firestore emulator locks documents
// pessimistically and aborts contended transactions after a lock timeout,
// so this test is slow there and needs a generous MaxAttempts.
func testConcurrentUpdates(f *fixture) {
	k := f.key(governor.QuotaSLA, "api_calls")
	// On their first attempt the transactions wait after their read until
	// all have read (or a short while has passed, for stores whose reads
	// block each other), so that they do overlap.
	var arrived atomic.Int32
	allRead := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, Concurrency)
	for i := range Concurrency {
		wg.Go(func() {
			first := true
			errs[i] = f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error {
				inst, err := tx.Instance(k)
				if err != nil {
					return err
				}
				if first {
					first = false
					if arrived.Add(1) == Concurrency {
						close(allRead)
					}
					select {
					case <-allRead:
					case <-time.After(200 * time.Millisecond):
					}
				}
				return tx.Write(decision(inst, f.id(fmt.Sprint("c", i)), "within_limits", f.at(time.Duration(i)*time.Second)))
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			f.Errorf("RunTx of goroutine %d = %v, want nil", i, err)
		}
		if _, found := f.dedup(k, testSource, f.id(fmt.Sprint("c", i))); !found {
			f.Errorf("Dedup of goroutine %d's event not found", i)
		}
	}
	if got := f.read(k); got.Version != Concurrency {
		f.Errorf("Instance(%s).Version = %d after %d concurrent updates, want %d", k, got.Version, Concurrency, Concurrency)
	}
	chain := f.chain(k)
	if len(chain) != Concurrency {
		f.Errorf("Chain(%s) = %d receipts, want %d", k, len(chain), Concurrency)
	}
	if err := receipt.Verify(chain); err != nil {
		f.Errorf("Verify(Chain(%s)) = %v, want nil", k, err)
	}
}

func testCancelledContext(f *fixture) {
	tests := []struct {
		name string
		// cancelInside cancels the context from within fn, before Write.
		cancelInside bool
	}{
		{"before RunTx", false},
		{"inside fn", true},
	}
	for _, tc := range tests {
		f.Run(tc.name, func(t *testing.T) {
			f := f.with(t)
			k := f.key(governor.Billing, "2026-11")
			c := f.fullDecision(k)
			f.cleanup(c)
			ctx, cancel := context.WithCancel(f.ctx)
			defer cancel()
			if !tc.cancelInside {
				cancel()
			}
			err := f.s.RunTx(ctx, func(ctx context.Context, tx store.Tx) error {
				if _, err := tx.Instance(k); err != nil {
					return err
				}
				if tc.cancelInside {
					cancel()
				}
				return tx.Write(c)
			})
			f.checkCode("RunTx(cancelled context)", err, fault.Unavailable)
			f.checkNothingWritten(c)
		})
	}
}
