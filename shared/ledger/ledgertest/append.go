package ledgertest

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
)

// testAppendBatch: AppendBatch writes a batch's entries and commits it at
// once, deleting the pending records of the entries that have them; it
// refuses, changing nothing, a caller without the lease, entries that are
// not the batch's, a batch that does not start at the log's size or
// while another is in progress, and more writes than a transaction holds.
func testAppendBatch(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	es := entries(t, receipts(rand.New(rand.NewPCG(96, 96)), "acme", 6), t0)
	if _, err := s.AddPending(ctx, es[:2]); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	a := ledger.Fence{Holder: "a", Now: t0, TTL: time.Minute}
	b := ledger.Fence{Holder: "b", Now: t0, TTL: time.Minute}
	if _, err := s.AcquireLease(ctx, "a", t0, time.Minute); err != nil {
		t.Fatalf("AcquireLease(a) = %v", err)
	}
	first := slices.Clone(es[:4])
	first[0].Pending, first[1].Pending = true, true
	c := fakeCommit(ledger.Batch{Start: 0, Hashes: hashesOf(first), Holder: "a", CreatedAt: t0})
	checkCode(t, "AppendBatch(by b, who does not hold the lease)", s.AppendBatch(ctx, b, c, first), fault.Conflict)
	swapped := slices.Clone(first)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	checkCode(t, "AppendBatch(entries out of the batch's order)", s.AppendBatch(ctx, a, c, swapped), fault.Invalid)
	checkCode(t, "AppendBatch(an entry short)", s.AppendBatch(ctx, a, c, first[:3]), fault.Invalid)
	checkCode(t, "AppendBatch(at 1 in an empty log)",
		s.AppendBatch(ctx, a, fakeCommit(ledger.Batch{Start: 1, Hashes: hashesOf(first), Holder: "a"}), first), fault.Conflict)
	// 250 entries with pending records: 500 writes, and the tiles, state
	// and lease on top.
	many := entries(t, receipts(rand.New(rand.NewPCG(97, 97)), "many", 250), t0)
	for i := range many {
		many[i].Pending = true
	}
	checkCode(t, "AppendBatch(more writes than a transaction holds)",
		s.AppendBatch(ctx, a, fakeCommit(ledger.Batch{Start: 0, Hashes: hashesOf(many), Holder: "a"}), many), fault.Invalid)
	if st, err := s.State(ctx); err != nil || st.Size != 0 {
		t.Fatalf("State after refused appends = size %d, %v; want 0: nothing written", st.Size, err)
	}
	if found, err := s.Written(ctx, hashesOf(es)); err != nil || len(found) != 0 {
		t.Fatalf("Written after refused appends = %d entries, %v; want none", len(found), err)
	}

	if err := s.AppendBatch(ctx, a, c, first); err != nil {
		t.Fatalf("AppendBatch = %v", err)
	}
	st, err := s.State(ctx)
	if err != nil || st.Size != 4 || st.Root != c.State.Root || !bytes.Equal(st.Checkpoint, c.State.Checkpoint) || !st.UpdatedAt.Equal(t0) {
		t.Fatalf("State after AppendBatch = %+v, %v; want %+v", st, err, c.State)
	}
	if _, ok, err := s.Batch(ctx); err != nil || ok {
		t.Errorf("Batch after AppendBatch = %v, %v; want none in progress", ok, err)
	}
	if pending, err := s.Pending(ctx, 0); err != nil || len(pending) != 0 {
		t.Errorf("Pending after AppendBatch = %v, %v; want none (both records deleted)", hashesOf(pending), err)
	}
	checkAppended(ctx, t, s, 0, first)
	checkCode(t, "AppendBatch(again)", s.AppendBatch(ctx, a, c, first), fault.Conflict)

	// While a batch is in progress, nothing is appended.
	second := ledger.Batch{Start: 4, Hashes: hashesOf(es[4:]), Holder: "a", CreatedAt: t0}
	if err := s.BeginBatch(ctx, a, second); err != nil {
		t.Fatalf("BeginBatch = %v", err)
	}
	checkCode(t, "AppendBatch(while a batch is in progress)", s.AppendBatch(ctx, a, fakeCommit(second), es[4:]), fault.Conflict)
	if err := s.AbandonBatch(ctx, a, second); err != nil {
		t.Fatalf("AbandonBatch = %v", err)
	}
	if err := s.AppendBatch(ctx, a, fakeCommit(second), es[4:]); err != nil {
		t.Fatalf("AppendBatch(after the batch was abandoned) = %v", err)
	}
	checkAppended(ctx, t, s, 0, es)
}

// checkAppended checks that es are written at start onwards, with their
// leaves.
func checkAppended(ctx context.Context, t *testing.T, s ledger.Store, start int64, es []ledger.Entry) {
	t.Helper()
	found, err := s.Written(ctx, hashesOf(es))
	if err != nil {
		t.Fatalf("Written = %v", err)
	}
	for i, e := range es {
		if got, ok := found[e.Hash]; !ok || got.Index != start+int64(i) || !bytes.Equal(got.Leaf, e.Leaf) {
			t.Errorf("Written(entry %d) = index %d, found %v; want index %d with its leaf", i, got.Index, ok, start+int64(i))
		}
	}
	leaves, err := s.Leaves(ctx, start, start+int64(len(es)))
	if err != nil {
		t.Fatalf("Leaves = %v", err)
	}
	for i, l := range leaves {
		if !bytes.Equal(l, es[i].Leaf) {
			t.Errorf("Leaves()[%d] is not the leaf of entry %d", i, i)
		}
	}
}
