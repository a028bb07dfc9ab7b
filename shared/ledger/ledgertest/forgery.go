package ledgertest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// forge makes up the receipt that follows head in its chain, as anyone
// with the receipt code can: it is intact and chained to head, but no
// governor committed it.
func forge(head receipt.Receipt, id string) receipt.Receipt {
	k := head.Key()
	inst := governor.Instance{Key: k, State: governor.State(head.ToState), Version: head.Seq, LastHash: head.Hash}
	ev := governor.Event{ID: id, Source: "//mallory", Type: governor.TypeOf(k.Domain, "step"), Domain: k.Domain,
		Name: "step", Tenant: k.Tenant, Subject: k.Subject}
	return receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: inst.State, To: "forged"}, t0.Add(time.Hour))
}

// lastOf returns the receipt of rs with the highest seq of k's chain.
func lastOf(rs []receipt.Receipt, k governor.Key) receipt.Receipt {
	var head receipt.Receipt
	for _, r := range rs {
		if r.Key() == k && r.Seq > head.Seq {
			head = r
		}
	}
	return head
}

func testDropPending(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	es := entries(t, receipts(rand.New(rand.NewPCG(70, 70)), "acme", 6), t0)
	if _, err := s.AddPending(ctx, es); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	a := ledger.Fence{Holder: "a", Now: t0, TTL: time.Minute}
	b := ledger.Fence{Holder: "b", Now: t0, TTL: time.Minute}
	if _, err := s.AcquireLease(ctx, "a", t0, time.Minute); err != nil {
		t.Fatalf("AcquireLease = %v", err)
	}
	checkCode(t, "DropPending(by b, who does not hold the lease)", s.DropPending(ctx, b, hashesOf(es[:1])), fault.Conflict)
	checkCode(t, "DropPending(nothing, by b)", s.DropPending(ctx, b, nil), fault.Conflict)
	// es[0] is written to the log, es[1] is in the batch in progress.
	commitEntries(t, s, a, 0, es[:1])
	batch := ledger.Batch{Start: 1, Hashes: hashesOf(es[1:2]), Holder: "a", CreatedAt: t0}
	if err := s.BeginBatch(ctx, a, batch); err != nil {
		t.Fatalf("BeginBatch = %v", err)
	}
	unknown := entries(t, receipts(rand.New(rand.NewPCG(71, 71)), "globex", 1), t0)[0]
	drop := []string{es[0].Hash, es[1].Hash, es[2].Hash, es[3].Hash, unknown.Hash, "not a hash", es[2].Hash}
	if err := s.DropPending(ctx, a, drop); err != nil {
		t.Fatalf("DropPending = %v", err)
	}
	pending, err := s.Pending(ctx, 0)
	if err != nil {
		t.Fatalf("Pending = %v", err)
	}
	if want := sortedHashes([]ledger.Entry{es[1], es[4], es[5]}); !slices.Equal(hashesOf(pending), want) {
		t.Errorf("Pending after DropPending = %v, want %v (the batch's entry and the entries not dropped)", hashesOf(pending), want)
	}
	found, err := s.Lookup(ctx, hashesOf(es))
	if err != nil {
		t.Fatalf("Lookup = %v", err)
	}
	if e, ok := found[es[0].Hash]; !ok || e.Index != 0 {
		t.Errorf("Lookup(written entry, dropped) = %+v, %v; want it at index 0", e, ok)
	}
	for _, e := range es[2:4] {
		if _, ok := found[e.Hash]; ok {
			t.Errorf("Lookup(dropped entry %s) found it", e.Hash)
		}
	}
	// The batch completes as planned.
	if err := s.WriteEntries(ctx, a, 1, es[1:2]); err != nil {
		t.Fatalf("WriteEntries = %v", err)
	}
	if err := s.CommitBatch(ctx, a, fakeCommit(batch)); err != nil {
		t.Fatalf("CommitBatch = %v", err)
	}
	// A dropped entry that arrives again is pending again.
	if n, err := s.AddPending(ctx, es[2:3]); err != nil || n != 1 {
		t.Errorf("AddPending(dropped entry) = %d, %v; want 1, nil", n, err)
	}
}

func testForgedReceipts(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	g := newGovernors()
	rs := receipts(rand.New(rand.NewPCG(80, 80)), "acme", 40)
	in, cp := integrated(ctx, t, s, g, rs)
	k := rs[0].Key()
	head := lastOf(rs, k)
	// Each forgery is intact: NewEntry accepts it, as the push endpoint
	// does, and only the witness tells it from a committed receipt.
	chained := forge(head, "forged-next")
	stranger := rs[3]
	stranger.TenantID = "nobody"
	stranger.PrevHash = receipt.ZeroHash
	stranger.Hash = stranger.ComputeHash()
	rewritten := lastOf(rs, k)
	rewritten.ToState = "forged"
	rewritten.Hash = rewritten.ComputeHash()
	forgeries := []receipt.Receipt{chained, stranger, rewritten}
	if _, err := s.AddPending(ctx, entries(t, forgeries, t0.Add(time.Hour))); err != nil {
		t.Fatalf("AddPending(forgeries) = %v", err)
	}
	p, err := in.Integrate(ctx)
	if err != nil || p.Integrated != 0 || p.Forged != len(forgeries) || p.Size != cp.Size {
		t.Fatalf("Integrate(forgeries only) = %d integrated, %d forged, size %d, %v; want 0, %d, %d, nil", p.Integrated, p.Forged, p.Size, err, len(forgeries), cp.Size)
	}
	if pending, err := s.Pending(ctx, 0); err != nil || len(pending) != 0 {
		t.Errorf("Pending after the forgeries were refused = %v, %v; want none", hashesOf(pending), err)
	}
	found, err := s.Lookup(ctx, []string{chained.Hash, stranger.Hash, rewritten.Hash})
	if err != nil || len(found) != 0 {
		t.Errorf("Lookup(forgeries) = %v, %v; want them forgotten", found, err)
	}
	// The governor's own receipt at the forged place arrives later: it is
	// integrated, and the log holds one receipt for that place.
	genuine := forge(head, "genuine-next")
	genuine.ToState = "active"
	genuine.Hash = genuine.ComputeHash()
	g.commit(genuine)
	if _, err := s.AddPending(ctx, entries(t, []receipt.Receipt{genuine, chained}, t0.Add(2*time.Hour))); err != nil {
		t.Fatalf("AddPending(genuine) = %v", err)
	}
	p, err = in.Integrate(ctx)
	if err != nil || p.Integrated != 1 || p.Forged != 1 {
		t.Fatalf("Integrate(genuine and the forgery again) = %d integrated, %d forged, %v; want 1, 1, nil", p.Integrated, p.Forged, err)
	}
	checkLog(ctx, t, s, append(slices.Clone(rs), genuine))

	// A witness that cannot answer drops nothing and integrates nothing.
	late := forge(genuine, "late")
	g.commit(late)
	if _, err := s.AddPending(ctx, entries(t, []receipt.Receipt{late, forge(genuine, "forged-late")}, t0.Add(3*time.Hour))); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	down := fault.Errorf(fault.Unavailable, "test", "governors' store unavailable")
	g.mu.Lock()
	g.fail = down
	g.mu.Unlock()
	if _, err := in.Integrate(ctx); !errors.Is(err, down) {
		t.Errorf("Integrate(witness unavailable) = %v, want %v", err, down)
	}
	if pending, err := s.Pending(ctx, 0); err != nil || len(pending) != 2 {
		t.Errorf("Pending after a pass without witness = %d entries, %v; want both still pending", len(pending), err)
	}
	g.mu.Lock()
	g.fail = nil
	g.mu.Unlock()
	if p := drain(ctx, t, in, s); p.Size != cp.Size+2 {
		t.Errorf("size after the witness is back = %d, want %d", p.Size, cp.Size+2)
	}
}

// testForgeryFlood pushes more forgeries than a batch holds ahead of a
// committed receipt: they are dropped batch after batch and cannot keep it
// out of the log.
func testForgeryFlood(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	g := newGovernors()
	rs := receipts(rand.New(rand.NewPCG(90, 90)), "acme", 5)
	_, cp := integrated(ctx, t, s, g, rs)
	in := integrator(t, s, "a", ledger.IntegratorOptions{Witness: g, BatchSize: 50})
	head := lastOf(rs, rs[0].Key())
	var flood []receipt.Receipt
	for i := range 120 {
		flood = append(flood, forge(head, fmt.Sprint("flood-", i)))
	}
	if _, err := s.AddPending(ctx, entries(t, flood, t0.Add(time.Hour))); err != nil {
		t.Fatalf("AddPending(flood) = %v", err)
	}
	genuine := forge(head, "genuine")
	g.commit(genuine)
	if _, err := s.AddPending(ctx, entries(t, []receipt.Receipt{genuine}, t0.Add(2*time.Hour))); err != nil {
		t.Fatalf("AddPending(genuine) = %v", err)
	}
	forged := 0
	for range 4 {
		p, err := in.Integrate(ctx)
		if err != nil {
			t.Fatalf("Integrate = %v", err)
		}
		forged += p.Forged
	}
	if forged != len(flood) {
		t.Errorf("forged entries dropped = %d, want %d", forged, len(flood))
	}
	st, err := s.State(ctx)
	if err != nil || st.Size != cp.Size+1 {
		t.Errorf("State().Size = %d, %v; want %d (the committed receipt behind the flood)", st.Size, err, cp.Size+1)
	}
}
