package ledgertest

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
)

// RunConformanceTests runs the suite, one subtest per behaviour, each on
// a fresh log from newHarness.
func RunConformanceTests(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"Pending", testPending},
		{"InvalidEntries", testInvalidEntries},
		{"Lookup", testLookup},
		{"Written", testWritten},
		{"WriteManyEntries", testWriteManyEntries},
		{"Lease", testLease},
		{"BatchProtocol", testBatchProtocol},
		{"AppendBatch", testAppendBatch},
		{"AbandonBatch", testAbandonBatch},
		{"TilesAndLeaves", testTilesAndLeaves},
		{"CancelledContext", testCancelledContext},
		{"IntegrateAndProve", testIntegrateAndProve},
		{"RacingIntegrators", testRacingIntegrators},
		{"StaleHead", testStaleHead},
		{"CrashMidBatch", testCrashMidBatch},
		{"TamperedTile", testTamperedTile},
		{"TamperedEntry", testTamperedEntry},
		{"DropPending", testDropPending},
		{"ForgedReceipts", testForgedReceipts},
		{"ForgeryFlood", testForgeryFlood},
		{"GroupCommit", testGroupCommit},
		{"GroupCommitRun", testGroupCommitRun},
		{"CrashWithSubmitted", testCrashWithSubmitted},
		{"SubmittedWhilePending", testSubmittedWhilePending},
		{"BacklogStartsNextPass", testBacklogStartsNextPass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newHarness(t)) })
	}
	t.Run("ForkedLog", func(t *testing.T) { testForkedLog(t, newHarness(t), newHarness(t)) })
}

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func testPending(t *testing.T, h Harness) {
	ctx := t.Context()
	rs := receipts(rand.New(rand.NewPCG(1, 1)), "acme", 6)
	es := entries(t, rs, t0)
	// Arrivals out of order: pending entries come in hash order.
	es[4].ArrivedAt = t0.Add(-time.Second)
	es[5].ArrivedAt = es[4].ArrivedAt
	n, err := h.Store.AddPending(ctx, es)
	if err != nil || n != len(es) {
		t.Fatalf("AddPending(%d new) = %d, %v; want %d, nil", len(es), n, err, len(es))
	}
	again := append(slices.Clone(es[:2]), es[2])
	again[0].ArrivedAt = t0.Add(time.Hour)
	if n, err := h.Store.AddPending(ctx, again); err != nil || n != 0 {
		t.Errorf("AddPending(3 known) = %d, %v; want 0, nil", n, err)
	}
	want := slices.Clone(es)
	slices.SortFunc(want, func(a, b ledger.Entry) int { return strings.Compare(a.Hash, b.Hash) })
	got, err := h.Store.Pending(ctx, 0)
	if err != nil {
		t.Fatalf("Pending(0) = %v", err)
	}
	if d := diffEntries(got, want); d != "" {
		t.Errorf("Pending(0): %s", d)
	}
	for _, e := range got {
		if !e.Pending {
			t.Errorf("Pending(0) returned %s without Pending set", e.Hash)
		}
	}
	got, err = h.Store.Pending(ctx, 3)
	if err != nil {
		t.Fatalf("Pending(3) = %v", err)
	}
	if d := diffEntries(got, want[:3]); d != "" {
		t.Errorf("Pending(3): %s", d)
	}
}

// diffEntries describes how got differs from want, or returns "".
func diffEntries(got, want []ledger.Entry) string {
	if len(got) != len(want) {
		return "got " + strconv.Itoa(len(got)) + " entries, want " + strconv.Itoa(len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Hash != w.Hash || !bytes.Equal(g.Leaf, w.Leaf) || g.Index != w.Index || !g.ArrivedAt.Equal(w.ArrivedAt) {
			return "entry " + strconv.Itoa(i) + " = {" + g.Hash + " index " + strconv.Itoa(int(g.Index)) + " at " + g.ArrivedAt.String() +
				"}, want {" + w.Hash + " index " + strconv.Itoa(int(w.Index)) + " at " + w.ArrivedAt.String() + "}"
		}
	}
	return ""
}

func testInvalidEntries(t *testing.T, h Harness) {
	ctx := t.Context()
	good := entries(t, receipts(rand.New(rand.NewPCG(2, 2)), "acme", 1), t0)[0]
	tests := []struct {
		name  string
		entry ledger.Entry
	}{
		{"short hash", ledger.Entry{Hash: "abc", Leaf: good.Leaf, ArrivedAt: t0}},
		{"uppercase hash", ledger.Entry{Hash: string(bytes.ToUpper([]byte(good.Hash))), Leaf: good.Leaf, ArrivedAt: t0}},
		{"empty leaf", ledger.Entry{Hash: good.Hash, ArrivedAt: t0}},
		{"leaf too large", ledger.Entry{Hash: good.Hash, Leaf: make([]byte, ledger.MaxLeafBytes+1), ArrivedAt: t0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := h.Store.AddPending(ctx, []ledger.Entry{good, tc.entry})
			checkCode(t, "AddPending("+tc.name+")", err, fault.Invalid)
			if n != 0 {
				t.Errorf("AddPending(%s) = %d, want 0", tc.name, n)
			}
		})
	}
	if got, err := h.Store.Pending(ctx, 0); err != nil || len(got) != 0 {
		t.Errorf("Pending after invalid adds = %d entries, %v; want none", len(got), err)
	}
}

func testLookup(t *testing.T, h Harness) {
	ctx := t.Context()
	es := entries(t, receipts(rand.New(rand.NewPCG(3, 3)), "acme", 3), t0)
	if _, err := h.Store.AddPending(ctx, es[:2]); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	got, err := h.Store.Lookup(ctx, []string{es[0].Hash, es[2].Hash, es[1].Hash})
	if err != nil {
		t.Fatalf("Lookup = %v", err)
	}
	if len(got) != 2 {
		t.Errorf("Lookup(2 known, 1 unknown) = %d entries, want 2", len(got))
	}
	for _, e := range es[:2] {
		if d := diffEntries([]ledger.Entry{got[e.Hash]}, []ledger.Entry{e}); d != "" {
			t.Errorf("Lookup(%s): %s", e.Hash, d)
		}
	}
	if _, ok := got[es[2].Hash]; ok {
		t.Errorf("Lookup(unknown %s) found an entry", es[2].Hash)
	}
	if got, err := h.Store.Lookup(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("Lookup(nil) = %v, %v; want empty, nil", got, err)
	}
	// A lookup larger than any one batched read finds every pending
	// entry and nothing else.
	many := entries(t, receipts(rand.New(rand.NewPCG(3, 4)), "globex", 600), t0)
	if _, err := h.Store.AddPending(ctx, many[:400]); err != nil {
		t.Fatalf("AddPending(400) = %v", err)
	}
	got, err = h.Store.Lookup(ctx, hashesOf(many))
	if err != nil {
		t.Fatalf("Lookup(600) = %v", err)
	}
	for i, e := range many {
		if g, ok := got[e.Hash]; ok != (i < 400) || ok && (!g.Pending || string(g.Leaf) != string(e.Leaf)) {
			t.Fatalf("Lookup(600)[%d] = %+v, found %v; want found %v, pending, its leaf", i, g.Pending, ok, i < 400)
		}
	}
	if len(got) != 400 {
		t.Errorf("Lookup(600, 400 pending) = %d entries, want 400", len(got))
	}
}

// testWritten: Written finds the entries a batch wrote, planned indices
// included, never pending records, and Pending leaves out an entry
// written without its pending record's removal.
func testWritten(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	es := entries(t, receipts(rand.New(rand.NewPCG(3, 5)), "acme", 3), t0)
	if _, err := s.AddPending(ctx, es); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	if got, err := s.Written(ctx, hashesOf(es)); err != nil || len(got) != 0 {
		t.Fatalf("Written(3 pending) = %v, %v; want none", got, err)
	}
	a := ledger.Fence{Holder: "a", Now: t0, TTL: time.Minute}
	if _, err := s.AcquireLease(ctx, "a", t0, time.Minute); err != nil {
		t.Fatalf("AcquireLease = %v", err)
	}
	if err := s.BeginBatch(ctx, a, ledger.Batch{Start: 0, Hashes: hashesOf(es[:2]), Holder: "a", CreatedAt: t0}); err != nil {
		t.Fatalf("BeginBatch = %v", err)
	}
	// The first entry is written as a submitted one: its pending record
	// is not removed with it.
	written := []ledger.Entry{es[0], es[1]}
	written[1].Pending = true
	if err := s.WriteEntries(ctx, a, 0, written); err != nil {
		t.Fatalf("WriteEntries = %v", err)
	}
	got, err := s.Written(ctx, []string{es[2].Hash, es[1].Hash, es[0].Hash, "not-a-hash"})
	if err != nil {
		t.Fatalf("Written = %v", err)
	}
	if len(got) != 2 {
		t.Errorf("Written(2 written, 1 pending, 1 invalid) = %d entries, want 2", len(got))
	}
	for i, e := range es[:2] {
		g, ok := got[e.Hash]
		if !ok || g.Index != int64(i) || g.Pending || string(g.Leaf) != string(e.Leaf) {
			t.Errorf("Written(%s) = %+v, %v; want index %d, not pending, its leaf", e.Hash, g, ok, i)
		}
	}
	pending, err := s.Pending(ctx, 0)
	if err != nil || !slices.Equal(hashesOf(pending), hashesOf(es[2:])) {
		t.Errorf("Pending after writing = %v, %v; want only %s", hashesOf(pending), err, es[2].Hash)
	}
}

// testWriteManyEntries: one WriteEntries of more entries and pending
// records than any one store transaction holds writes them all.
func testWriteManyEntries(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	es := entries(t, receipts(rand.New(rand.NewPCG(3, 6)), "acme", 700), t0)
	if _, err := s.AddPending(ctx, es[:600]); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	for i := range es[:600] {
		es[i].Pending = true
	}
	a := ledger.Fence{Holder: "a", Now: t0, TTL: time.Minute}
	if _, err := s.AcquireLease(ctx, "a", t0, time.Minute); err != nil {
		t.Fatalf("AcquireLease = %v", err)
	}
	if err := s.BeginBatch(ctx, a, ledger.Batch{Start: 0, Hashes: hashesOf(es), Holder: "a", CreatedAt: t0}); err != nil {
		t.Fatalf("BeginBatch = %v", err)
	}
	if err := s.WriteEntries(ctx, a, 0, es); err != nil {
		t.Fatalf("WriteEntries(700 entries, 600 of them pending) = %v", err)
	}
	got, err := s.Written(ctx, hashesOf(es))
	if err != nil {
		t.Fatalf("Written = %v", err)
	}
	for i, e := range es {
		if g, ok := got[e.Hash]; !ok || g.Index != int64(i) {
			t.Fatalf("Written(entry %d) = %+v, %v; want it at index %d", i, g, ok, i)
		}
	}
	if pending, err := s.Pending(ctx, 0); err != nil || len(pending) != 0 {
		t.Errorf("Pending after writing = %d entries, %v; want none", len(pending), err)
	}
}

func testLease(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	ttl := 10 * time.Second
	steps := []struct {
		name    string
		call    func() (ledger.Lease, error)
		holder  string
		expires time.Time
	}{
		{"a acquires a free lease", func() (ledger.Lease, error) { return s.AcquireLease(ctx, "a", t0, ttl) }, "a", t0.Add(ttl)},
		{"b is refused while a's lease runs", func() (ledger.Lease, error) { return s.AcquireLease(ctx, "b", t0.Add(ttl-time.Second), ttl) }, "a", t0.Add(ttl)},
		{"a renews", func() (ledger.Lease, error) { return s.AcquireLease(ctx, "a", t0.Add(5*time.Second), ttl) }, "a", t0.Add(15 * time.Second)},
		{"b takes over once it expired", func() (ledger.Lease, error) { return s.AcquireLease(ctx, "b", t0.Add(15*time.Second), ttl) }, "b", t0.Add(25 * time.Second)},
		{"a's release of b's lease does nothing", func() (ledger.Lease, error) {
			if err := s.ReleaseLease(ctx, "a"); err != nil {
				return ledger.Lease{}, err
			}
			return s.AcquireLease(ctx, "a", t0.Add(16*time.Second), ttl)
		}, "b", t0.Add(25 * time.Second)},
		{"after b releases, a acquires at once", func() (ledger.Lease, error) {
			if err := s.ReleaseLease(ctx, "b"); err != nil {
				return ledger.Lease{}, err
			}
			return s.AcquireLease(ctx, "a", t0.Add(17*time.Second), ttl)
		}, "a", t0.Add(27 * time.Second)},
	}
	for _, st := range steps {
		l, err := st.call()
		if err != nil || l.Holder != st.holder || !l.ExpiresAt.Equal(st.expires) {
			t.Fatalf("%s: lease = %+v, %v; want holder %s until %v", st.name, l, err, st.holder, st.expires)
		}
	}
	_, err := s.AcquireLease(ctx, "", t0, ttl)
	checkCode(t, "AcquireLease(no holder)", err, fault.Invalid)
}

// hashesOf returns the hashes of es.
func hashesOf(es []ledger.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Hash
	}
	return out
}

// sortedHashes returns the hashes of es in order: the order of Pending.
func sortedHashes(es []ledger.Entry) []string {
	out := hashesOf(es)
	slices.Sort(out)
	return out
}

// fakeCommit is a commit of batch b whose state has size b.End() and a
// placeholder checkpoint, with the tiles the batch changes filled by
// tileByte.
func fakeCommit(b ledger.Batch) ledger.Commit {
	c := ledger.Commit{Batch: b, State: ledger.State{
		Size: b.End(), Root: tlog.Hash{byte(b.End())}, Checkpoint: []byte("checkpoint " + strconv.Itoa(int(b.End()))),
		VerifierKey: "key", UpdatedAt: t0,
	}}
	for _, t := range tlog.NewTiles(ledger.TileHeight, b.Start, b.End()) {
		c.Tiles = append(c.Tiles, ledger.TileData{Tile: t, Data: tileBytes(t.L, t.N, t.W)})
	}
	return c
}

// tileBytes is the placeholder data of the first w hashes of tile (l, n):
// byte i is a function of l, n and i only, so that a wider tile extends a
// narrower one.
func tileBytes(l int, n int64, w int) []byte {
	d := make([]byte, w*tlog.HashSize)
	for i := range d {
		d[i] = byte(l*31 + int(n)*7 + i)
	}
	return d
}

// commitEntries begins, writes and commits the batch of es at start.
func commitEntries(t *testing.T, s ledger.Store, f ledger.Fence, start int64, es []ledger.Entry) {
	t.Helper()
	ctx := t.Context()
	b := ledger.Batch{Start: start, Hashes: hashesOf(es), Holder: f.Holder, CreatedAt: t0}
	if err := s.BeginBatch(ctx, f, b); err != nil {
		t.Fatalf("BeginBatch = %v", err)
	}
	if err := s.WriteEntries(ctx, f, start, es); err != nil {
		t.Fatalf("WriteEntries = %v", err)
	}
	if err := s.CommitBatch(ctx, f, fakeCommit(b)); err != nil {
		t.Fatalf("CommitBatch = %v", err)
	}
}

func testBatchProtocol(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	es := entries(t, receipts(rand.New(rand.NewPCG(4, 4)), "acme", 5), t0)
	if _, err := s.AddPending(ctx, es); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	if st, err := s.State(ctx); err != nil || st.Size != 0 || st.Checkpoint != nil {
		t.Fatalf("State of a new log = %+v, %v; want the zero state", st, err)
	}
	if _, ok, err := s.Batch(ctx); err != nil || ok {
		t.Fatalf("Batch of a new log = %v, %v; want none", ok, err)
	}
	a := ledger.Fence{Holder: "a", Now: t0, TTL: time.Minute}
	b := ledger.Fence{Holder: "b", Now: t0, TTL: time.Minute}
	if _, err := s.AcquireLease(ctx, "a", t0, time.Minute); err != nil {
		t.Fatalf("AcquireLease(a) = %v", err)
	}
	first := ledger.Batch{Start: 0, Hashes: hashesOf(es[:3]), Holder: "a", CreatedAt: t0}
	checkCode(t, "BeginBatch(by b, who does not hold the lease)", s.BeginBatch(ctx, b, first), fault.Conflict)
	checkCode(t, "BeginBatch(at 1 in an empty log)", s.BeginBatch(ctx, a, ledger.Batch{Start: 1, Hashes: first.Hashes}), fault.Conflict)
	checkCode(t, "BeginBatch(repeated hash)", s.BeginBatch(ctx, a, ledger.Batch{Hashes: []string{es[0].Hash, es[0].Hash}}), fault.Invalid)
	if err := s.BeginBatch(ctx, a, first); err != nil {
		t.Fatalf("BeginBatch(first) = %v", err)
	}
	got, ok, err := s.Batch(ctx)
	if err != nil || !ok || got.Start != 0 || !slices.Equal(got.Hashes, first.Hashes) || got.Holder != "a" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("Batch() = %+v, %v, %v; want %+v", got, ok, err, first)
	}
	checkCode(t, "BeginBatch(while a batch is in progress)", s.BeginBatch(ctx, a, first), fault.Conflict)
	checkCode(t, "WriteEntries(by b, who does not hold the lease)", s.WriteEntries(ctx, b, 0, es[:3]), fault.Conflict)
	if err := s.WriteEntries(ctx, a, 0, es[:3]); err != nil {
		t.Fatalf("WriteEntries = %v", err)
	}
	if err := s.WriteEntries(ctx, a, 0, es[:3]); err != nil {
		t.Fatalf("WriteEntries again = %v, want nil (idempotent)", err)
	}
	pending, err := s.Pending(ctx, 0)
	if err != nil || !slices.Equal(hashesOf(pending), sortedHashes(es[3:])) {
		t.Errorf("Pending after writing = %v, %v; want %v", hashesOf(pending), err, sortedHashes(es[3:]))
	}
	found, err := s.Lookup(ctx, hashesOf(es))
	if err != nil {
		t.Fatalf("Lookup = %v", err)
	}
	for i, e := range es {
		want := int64(i)
		if i >= 3 {
			want = ledger.Unassigned
		}
		// The written entries keep their pending records (Pending was not
		// set): Lookup reports them written, not pending.
		if got := found[e.Hash]; got.Index != want || !bytes.Equal(got.Leaf, e.Leaf) || got.Pending != (i >= 3) {
			t.Errorf("Lookup(entry %d) = index %d, pending %v; want %d, pending %v, with its leaf", i, got.Index, got.Pending, want, i >= 3)
		}
	}
	// Pushed again after it was written, an entry is not pending.
	if _, err := s.AddPending(ctx, es[:1]); err != nil {
		t.Fatalf("AddPending(written entry) = %v", err)
	}
	if pending, err := s.Pending(ctx, 0); err != nil || slices.Contains(hashesOf(pending), es[0].Hash) {
		t.Errorf("Pending after a written entry was pushed again = %v, %v; want it absent", hashesOf(pending), err)
	}
	_, err = s.Leaves(ctx, 0, 1)
	checkCode(t, "Leaves(written, not committed)", err, fault.NotFound)
	c := fakeCommit(first)
	checkCode(t, "CommitBatch(by b)", s.CommitBatch(ctx, b, c), fault.Conflict)
	other := first
	other.Hashes = hashesOf([]ledger.Entry{es[0], es[2], es[1]})
	checkCode(t, "CommitBatch(another batch)", s.CommitBatch(ctx, a, fakeCommit(other)), fault.Conflict)
	bad := c
	bad.State.Size = 2
	checkCode(t, "CommitBatch(state of the wrong size)", s.CommitBatch(ctx, a, bad), fault.Invalid)
	bad = c
	bad.Tiles = nil
	checkCode(t, "CommitBatch(without its tiles)", s.CommitBatch(ctx, a, bad), fault.Invalid)
	if err := s.CommitBatch(ctx, a, c); err != nil {
		t.Fatalf("CommitBatch = %v", err)
	}
	st, err := s.State(ctx)
	if err != nil || st.Size != 3 || st.Root != c.State.Root || !bytes.Equal(st.Checkpoint, c.State.Checkpoint) || st.VerifierKey != "key" || !st.UpdatedAt.Equal(t0) {
		t.Fatalf("State after commit = %+v, %v; want %+v", st, err, c.State)
	}
	if _, ok, err := s.Batch(ctx); err != nil || ok {
		t.Errorf("Batch after commit = %v, %v; want none", ok, err)
	}
	checkCode(t, "CommitBatch(again)", s.CommitBatch(ctx, a, c), fault.Conflict)
	checkCode(t, "BeginBatch(at the old size)", s.BeginBatch(ctx, a, ledger.Batch{Start: 0, Hashes: hashesOf(es[3:])}), fault.Conflict)
	// The lease moves to b: a is fenced off, b continues.
	if l, err := s.AcquireLease(ctx, "b", t0.Add(time.Hour), time.Minute); err != nil || l.Holder != "b" {
		t.Fatalf("AcquireLease(b, after a's lease expired) = %+v, %v", l, err)
	}
	second := ledger.Batch{Start: 3, Hashes: hashesOf(es[3:]), Holder: "a"}
	checkCode(t, "BeginBatch(by a, after b took over)", s.BeginBatch(ctx, a, second), fault.Conflict)
	second.Holder = "b"
	if err := s.BeginBatch(ctx, b, second); err != nil {
		t.Fatalf("BeginBatch(by b) = %v", err)
	}
	checkCode(t, "WriteEntries(by a, after b took over)", s.WriteEntries(ctx, a, 3, es[3:]), fault.Conflict)
	if err := s.WriteEntries(ctx, b, 3, es[3:]); err != nil {
		t.Fatalf("WriteEntries = %v", err)
	}
	checkCode(t, "CommitBatch(by a, after b took over)", s.CommitBatch(ctx, a, fakeCommit(second)), fault.Conflict)
	if err := s.CommitBatch(ctx, b, fakeCommit(second)); err != nil {
		t.Fatalf("CommitBatch(by b) = %v", err)
	}
	if st, err := s.State(ctx); err != nil || st.Size != 5 {
		t.Errorf("State().Size = %d, %v; want 5", st.Size, err)
	}
	leaves, err := s.Leaves(ctx, 0, 5)
	if err != nil {
		t.Fatalf("Leaves(0, 5) = %v", err)
	}
	for i, leaf := range leaves {
		if !bytes.Equal(leaf, es[i].Leaf) {
			t.Errorf("Leaves(0, 5)[%d] is not the leaf of entry %d", i, i)
		}
	}
}

// testAbandonBatch replaces a batch some of whose entries were never
// written: only the lease holder can, and only the batch in progress.
func testAbandonBatch(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	es := entries(t, receipts(rand.New(rand.NewPCG(5, 5)), "acme", 4), t0)
	a := ledger.Fence{Holder: "a", Now: t0, TTL: time.Minute}
	b := ledger.Fence{Holder: "b", Now: t0, TTL: time.Minute}
	if _, err := s.AcquireLease(ctx, "a", t0, time.Minute); err != nil {
		t.Fatalf("AcquireLease = %v", err)
	}
	first := ledger.Batch{Start: 0, Hashes: hashesOf(es[:3]), Holder: "a", CreatedAt: t0}
	checkCode(t, "AbandonBatch(none in progress)", s.AbandonBatch(ctx, a, first), fault.Conflict)
	if err := s.BeginBatch(ctx, a, first); err != nil {
		t.Fatalf("BeginBatch = %v", err)
	}
	// Entry 1 was held in memory and never written.
	if err := s.WriteEntries(ctx, a, 0, es[:1]); err != nil {
		t.Fatalf("WriteEntries = %v", err)
	}
	if err := s.WriteEntries(ctx, a, 2, es[2:3]); err != nil {
		t.Fatalf("WriteEntries = %v", err)
	}
	checkCode(t, "AbandonBatch(by b, who does not hold the lease)", s.AbandonBatch(ctx, b, first), fault.Conflict)
	other := first
	other.Hashes = hashesOf(es[1:4])
	checkCode(t, "AbandonBatch(another batch)", s.AbandonBatch(ctx, a, other), fault.Conflict)
	if err := s.AbandonBatch(ctx, a, first); err != nil {
		t.Fatalf("AbandonBatch = %v", err)
	}
	if _, ok, err := s.Batch(ctx); err != nil || ok {
		t.Fatalf("Batch after AbandonBatch = %v, %v; want none", ok, err)
	}
	checkCode(t, "CommitBatch(the abandoned batch)", s.CommitBatch(ctx, a, fakeCommit(first)), fault.Conflict)
	// The written entries are not in the log, and the replacement puts
	// them elsewhere.
	if _, err := s.Leaves(ctx, 0, 1); fault.ErrorCode(err) != fault.NotFound {
		t.Errorf("Leaves(0, 1) after AbandonBatch = %v, want NotFound", err)
	}
	second := []ledger.Entry{es[2], es[3], es[0]}
	commitEntries(t, s, a, 0, second)
	found, err := s.Lookup(ctx, hashesOf(es))
	if err != nil {
		t.Fatalf("Lookup = %v", err)
	}
	for i, e := range second {
		if got := found[e.Hash]; got.Index != int64(i) {
			t.Errorf("Lookup(%s) = index %d, want %d", e.Hash, got.Index, i)
		}
	}
	if _, ok := found[es[1].Hash]; ok {
		t.Errorf("Lookup(never written %s) found it", es[1].Hash)
	}
	leaves, err := s.Leaves(ctx, 0, 3)
	if err != nil {
		t.Fatalf("Leaves(0, 3) = %v", err)
	}
	for i, leaf := range leaves {
		if !bytes.Equal(leaf, second[i].Leaf) {
			t.Errorf("Leaves(0, 3)[%d] is not the leaf of the replacement's entry %d", i, i)
		}
	}
}

func testTilesAndLeaves(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	es := entries(t, receipts(rand.New(rand.NewPCG(6, 6)), "acme", 300), t0)
	if _, err := s.AddPending(ctx, es); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	f := ledger.Fence{Holder: "a", Now: t0, TTL: time.Minute}
	if _, err := s.AcquireLease(ctx, "a", t0, time.Minute); err != nil {
		t.Fatalf("AcquireLease = %v", err)
	}
	commitEntries(t, s, f, 0, es[:2])
	commitEntries(t, s, f, 2, es[2:259])
	commitEntries(t, s, f, 259, es[259:])
	tile := func(l int, n int64, w int) tlog.Tile { return tlog.Tile{H: ledger.TileHeight, L: l, N: n, W: w} }
	tests := []tlog.Tile{tile(0, 0, 256), tile(0, 0, 2), tile(0, 1, 44), tile(0, 1, 3), tile(1, 0, 1)}
	got, err := s.Tiles(ctx, tests)
	if err != nil {
		t.Fatalf("Tiles = %v", err)
	}
	for i, tt := range tests {
		if want := tileBytes(tt.L, tt.N, tt.W); !bytes.Equal(got[i], want) {
			t.Errorf("Tiles(%s) = %d bytes, want the first %d bytes of the stored tile", ledger.TilePath(tt), len(got[i]), len(want))
		}
	}
	_, err = s.Tiles(ctx, []tlog.Tile{tile(0, 1, 45)})
	checkCode(t, "Tiles(wider than stored)", err, fault.NotFound)
	_, err = s.Tiles(ctx, []tlog.Tile{tile(2, 0, 1)})
	checkCode(t, "Tiles(never stored)", err, fault.NotFound)
	_, err = s.Tiles(ctx, []tlog.Tile{{H: 2, L: 0, N: 0, W: 1}})
	checkCode(t, "Tiles(height 2)", err, fault.Invalid)

	for _, r := range [][2]int64{{0, 300}, {1, 3}, {250, 262}, {299, 300}, {7, 7}} {
		leaves, err := s.Leaves(ctx, r[0], r[1])
		if err != nil || int64(len(leaves)) != r[1]-r[0] {
			t.Errorf("Leaves(%d, %d) = %d leaves, %v", r[0], r[1], len(leaves), err)
			continue
		}
		for i, leaf := range leaves {
			if !bytes.Equal(leaf, es[r[0]+int64(i)].Leaf) {
				t.Errorf("Leaves(%d, %d)[%d] is not the leaf of entry %d", r[0], r[1], i, r[0]+int64(i))
			}
		}
	}
	_, err = s.Leaves(ctx, 298, 301)
	checkCode(t, "Leaves(beyond the log)", err, fault.NotFound)
}

func testCancelledContext(t *testing.T, h Harness) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	es := entries(t, receipts(rand.New(rand.NewPCG(8, 8)), "acme", 1), t0)
	_, err := h.Store.AddPending(ctx, es)
	checkCode(t, "AddPending(cancelled)", err, fault.Unavailable)
	_, err = h.Store.AcquireLease(ctx, "a", t0, time.Minute)
	checkCode(t, "AcquireLease(cancelled)", err, fault.Unavailable)
	_, err = h.Store.State(ctx)
	checkCode(t, "State(cancelled)", err, fault.Unavailable)
	if got, err := h.Store.Pending(t.Context(), 0); err != nil || len(got) != 0 {
		t.Errorf("Pending after a cancelled add = %d entries, %v; want none", len(got), err)
	}
}
