package engine

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// ledgerWitness holds every receipt the recorder published on the
// receipts topic, as the integrator takes every published receipt.
type ledgerWitness struct {
	pub   *recorder
	topic string
}

func (w *ledgerWitness) Witnessed(ctx context.Context, hashes []string) (map[string]bool, error) {
	held := map[string]bool{}
	for _, m := range w.pub.on(w.topic) {
		if r, err := receipt.Parse(m.Data); err == nil {
			held[r.Hash] = true
		}
	}
	out := map[string]bool{}
	for _, h := range hashes {
		if held[h] {
			out[h] = true
		}
	}
	return out, nil
}

// witnessed gives h an engine whose deliveries the ledger witnesses.
func witnessed(t *testing.T, h *harness) {
	t.Helper()
	o := h.eng.o
	o.Witness = &ledgerWitness{pub: h.pub, topic: h.topics.Receipts()}
	eng, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
}

// receiptOf returns the receipt of event e on instance k.
func receiptOf(t *testing.T, h *harness, e governor.Event) receipt.Receipt {
	t.Helper()
	rs, err := h.store.ReceiptsByExecution(context.Background(), e.ID)
	if err != nil || len(rs) != 1 {
		t.Fatalf("receipts of %s = %d, %v; want 1", e.ID, len(rs), err)
	}
	return rs[0]
}

// isDelivered reports the delivery the store records for r's decision.
func isDelivered(t *testing.T, h *harness, r receipt.Receipt) bool {
	t.Helper()
	entries, err := h.store.Outbox(context.Background(), r.Hash)
	if err != nil || len(entries) == 0 {
		t.Fatalf("Outbox(%s) = %d entries, %v", r.Hash, len(entries), err)
	}
	return entries[0].Delivered
}

// A decision whose receipt the ledger witnesses writes nothing after its
// commit, and publishes its receipt only after its cascades.
func TestWitnessedDecisionWritesNoDeliveryAndPublishesItsReceiptLast(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		witnessed(t, h)
		tenant := newTenant(t)
		h.apply(t, ev(tenant, governor.CustomerAccount, "requested", "", ""))
		h.apply(t, ev(tenant, governor.CustomerAccount, "verified", "", ""))
		susp := ev(tenant, governor.CustomerAccount, "suspended", "", "")
		h.apply(t, susp)
		r := receiptOf(t, h, susp)
		if len(r.Actions) < 2 {
			t.Fatalf("suspension emitted %d events, want the cascades", len(r.Actions))
		}
		if isDelivered(t, h, r) {
			t.Errorf("decision recorded delivered in the store; want the ledger's receipt as its only record")
		}
		h.pub.mu.Lock()
		receiptAt, lastCascade := -1, -1
		for i, m := range h.pub.msgs {
			switch {
			case m.Topic == h.topics.Receipts() && m.Attributes["ce-id"] == r.Hash:
				receiptAt = i
			case m.Topic != h.topics.Receipts() && slices.Contains(slices.Collect(maps.Values(m.Attributes)), r.Hash):
				// A cascade carries its parent receipt's hash.
				lastCascade = i
			}
		}
		h.pub.mu.Unlock()
		if receiptAt < 0 || lastCascade < 0 || receiptAt < lastCascade {
			t.Errorf("receipt published at %d, last cascade at %d: want the receipt after every cascade", receiptAt, lastCascade)
		}
	})
}

// A redelivered event whose receipt the ledger holds publishes nothing.
func TestDuplicateOfAWitnessedDecisionPublishesNothing(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		witnessed(t, h)
		tenant := newTenant(t)
		e := ev(tenant, governor.CustomerAccount, "requested", "", "")
		h.apply(t, e)
		h.pub.mu.Lock()
		before := len(h.pub.msgs)
		h.pub.mu.Unlock()
		if err := h.eng.HandleMessage(context.Background(), governor.CustomerAccount, message(e)); err != nil {
			t.Fatalf("redelivery = %v", err)
		}
		h.pub.mu.Lock()
		after := len(h.pub.msgs)
		h.pub.mu.Unlock()
		if after != before {
			t.Errorf("redelivery published %d messages, want none", after-before)
		}
	})
}

// The sweep publishes again only the decisions whose receipts the ledger
// lacks, then moves past them all: a second sweep publishes nothing.
func TestSweepPublishesOnlyWhatTheLedgerLacks(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		witnessed(t, h)
		tenant := newTenant(t)
		ok := ev(tenant, governor.CustomerAccount, "requested", "", "")
		h.apply(t, ok)
		lost := ev(newTenant(t), governor.CustomerAccount, "requested", "", "")
		h.pub.setDown(true)
		_, err := h.eng.Apply(context.Background(), lost)
		h.pub.setDown(false)
		if err == nil {
			t.Fatal("Apply with a failing publisher = nil, want an error")
		}
		okR, lostR := receiptOf(t, h, ok), receiptOf(t, h, lost)
		count := func(hash string) int {
			n := 0
			for _, m := range h.pub.on(h.topics.Receipts()) {
				if m.Attributes["ce-id"] == hash {
					n++
				}
			}
			return n
		}
		h.clock.Add(2 * time.Minute)
		if _, err := h.eng.Sweep(context.Background(), time.Minute, 10000); err != nil {
			t.Fatalf("Sweep = %v", err)
		}
		if count(okR.Hash) != 1 || count(lostR.Hash) != 1 {
			t.Errorf("receipts published: witnessed %d, lost %d; want 1 and 1", count(okR.Hash), count(lostR.Hash))
		}
		if !isDelivered(t, h, okR) || !isDelivered(t, h, lostR) {
			t.Errorf("after the sweep: delivered %v and %v, want both", isDelivered(t, h, okR), isDelivered(t, h, lostR))
		}
		entries, err := h.store.Undelivered(context.Background(), h.clock.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if en.ReceiptHash == okR.Hash || en.ReceiptHash == lostR.Hash {
				t.Errorf("Undelivered after the sweep still returns %s", en.ID)
			}
		}
	})
}

// Decisions taken at one instant, by tenants whose ids extend one another,
// all lost to a failing publisher: one sweep publishes every one of them
// once and moves past them all, whatever order their ids and their
// outbox entries' ids sort in.
func TestSweepOfDecisionsTakenAtOneInstantLeavesNoneBehind(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		witnessed(t, h)
		var tenants []string
		for range 8 {
			b := newTenant(t)
			tenants = append(tenants, b, b+"-a", b+".b", b+"0")
		}
		var events []governor.Event
		h.pub.setDown(true)
		for _, tenant := range tenants {
			e := ev(tenant, governor.CustomerAccount, "requested", "", "")
			if _, err := h.eng.Apply(context.Background(), e); err == nil {
				t.Fatal("Apply with a failing publisher = nil, want an error")
			}
			events = append(events, e)
		}
		h.pub.setDown(false)
		h.clock.Add(2 * time.Minute)
		if _, err := h.eng.Sweep(context.Background(), time.Minute, 10000); err != nil {
			t.Fatalf("Sweep = %v", err)
		}
		published := map[string]int{}
		for _, m := range h.pub.on(h.topics.Receipts()) {
			published[m.Attributes["ce-id"]]++
		}
		mine := map[string]bool{}
		for _, e := range events {
			r := receiptOf(t, h, e)
			mine[r.Hash] = true
			if published[r.Hash] != 1 || !isDelivered(t, h, r) {
				t.Errorf("%s: receipt published %d times, delivered %v; want once, delivered", e.Tenant, published[r.Hash], isDelivered(t, h, r))
			}
		}
		left, err := h.store.Undelivered(context.Background(), h.clock.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range left {
			if mine[en.ReceiptHash] {
				t.Errorf("Undelivered after the sweep still returns %s", en.ID)
			}
		}
	})
}
