package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// published collects the checkpoints integrators publish.
type published struct {
	mu    sync.Mutex
	notes [][]byte
}

func (p *published) publish(_ context.Context, signed []byte, _ ledger.Checkpoint) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notes = append(p.notes, slices.Clone(signed))
	return nil
}

// checkConsistent verifies every published checkpoint and that each one
// extends the one before, with consistency proofs served by log.
func (p *published) checkConsistent(ctx context.Context, t testing.TB, log *ledger.Log) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var cps []ledger.Checkpoint
	for _, n := range p.notes {
		cp, err := ledger.OpenCheckpoint(n, signingKey(t).verifier)
		if err != nil {
			t.Fatalf("OpenCheckpoint(published) = %v", err)
		}
		cps = append(cps, cp)
	}
	slices.SortStableFunc(cps, func(a, b ledger.Checkpoint) int { return int(a.Size - b.Size) })
	for i := 1; i < len(cps); i++ {
		older, newer := cps[i-1], cps[i]
		proof := ledger.ConsistencyProof{From: older.Size, To: newer.Size}
		if older.Size != newer.Size {
			var err error
			if proof, err = log.ConsistencyProof(ctx, older.Size, newer.Size); err != nil {
				t.Fatalf("ConsistencyProof(%d, %d) = %v", older.Size, newer.Size, err)
			}
		}
		if err := ledger.VerifyConsistency(older, newer, &proof); err != nil {
			t.Fatalf("VerifyConsistency(%v, %v) = %v", older, newer, err)
		}
	}
}

func testIntegrateAndProve(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	log := ledger.NewLog(s)
	var pub published
	g := newGovernors()
	in := integrator(t, s, "a", ledger.IntegratorOptions{Witness: g, BatchSize: 250, WriteChunk: 100, Publish: pub.publish})
	_, err := log.State(ctx)
	checkCode(t, "Log.State(new log)", err, fault.NotFound)
	p := drain(ctx, t, in, s)
	if p.Size != 0 || p.Checkpoint == nil {
		t.Fatalf("first pass on an empty log = size %d, checkpoint %q; want a checkpoint of size 0", p.Size, p.Checkpoint)
	}
	rs := receipts(rand.New(rand.NewPCG(10, 10)), "acme", 700)
	g.commit(rs...)
	var cps []ledger.Checkpoint
	for _, part := range [][2]int{{0, 1}, {1, 300}, {300, 700}} {
		if _, err := s.AddPending(ctx, entries(t, rs[part[0]:part[1]], t0.Add(time.Duration(part[0])*time.Millisecond))); err != nil {
			t.Fatalf("AddPending = %v", err)
		}
		drain(ctx, t, in, s)
		st, err := s.State(ctx)
		if err != nil {
			t.Fatalf("State = %v", err)
		}
		cps = append(cps, openState(t, st))
	}
	cp := checkLog(ctx, t, s, rs)
	pub.checkConsistent(ctx, t, log)
	// Proofs at an older size verify against the older checkpoint.
	old := cps[1]
	proof, err := log.InclusionProof(ctx, rs[5].Hash, old.Size)
	if err != nil {
		t.Fatalf("InclusionProof(receipt 5, size %d) = %v", old.Size, err)
	}
	if err := ledger.VerifyInclusion(&rs[5], &proof, old); err != nil {
		t.Errorf("VerifyInclusion(receipt 5, size %d) = %v", old.Size, err)
	}
	if err := ledger.VerifyInclusion(&rs[5], &proof, cp); err == nil {
		t.Errorf("VerifyInclusion(proof at size %d, checkpoint of size %d) = nil, want an error", old.Size, cp.Size)
	}
	late := receipts(rand.New(rand.NewPCG(11, 11)), "globex", 1)[0]
	g.commit(late)
	if _, err := s.AddPending(ctx, entries(t, []receipt.Receipt{late}, t0)); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	missing := receipts(rand.New(rand.NewPCG(12, 12)), "initech", 1)[0]
	for _, tc := range []struct {
		name string
		hash string
		size int64
		want fault.Code
	}{
		{"pending receipt", late.Hash, 0, fault.NotFound},
		{"unknown receipt", missing.Hash, 0, fault.NotFound},
		{"receipt after the requested size", rs[600].Hash, old.Size, fault.NotFound},
		{"size beyond the log", rs[0].Hash, cp.Size + 1, fault.Invalid},
		{"malformed hash", "xyz", 0, fault.Invalid},
	} {
		_, err := log.InclusionProof(ctx, tc.hash, tc.size)
		checkCode(t, "InclusionProof("+tc.name+")", err, tc.want)
	}
	for _, tc := range []struct {
		from, to int64
		want     fault.Code
	}{{5, 3, fault.Invalid}, {1, cp.Size + 1, fault.Invalid}, {-1, 3, fault.Invalid}} {
		_, err := log.ConsistencyProof(ctx, tc.from, tc.to)
		checkCode(t, fmt.Sprintf("ConsistencyProof(%d, %d)", tc.from, tc.to), err, tc.want)
	}
	if _, err := log.Tile(ctx, tlog.Tile{H: ledger.TileHeight, L: 0, N: 2, W: 256}); fault.ErrorCode(err) != fault.NotFound {
		t.Errorf("Tile(tile/0/002, beyond a tree of size %d) = %v, want not found", cp.Size, err)
	}
}

func testRacingIntegrators(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	rs := receipts(rand.New(rand.NewPCG(20, 20)), "acme", 1200)
	g := newGovernors()
	g.commit(rs...)
	var pub published
	run, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	stats := map[string]int{}
	// Each integrator sometimes stalls in the middle of a batch for longer
	// than its lease, so that the other takes over and completes the batch
	// while the stalled one carries on and must be fenced off.
	for i, holder := range []string{"a", "b"} {
		rng := rand.New(rand.NewPCG(uint64(i), 21))
		in := integrator(t, s, holder, ledger.IntegratorOptions{
			Witness: g, BatchSize: 90, WriteChunk: 20, LeaseTTL: 150 * time.Millisecond, Publish: pub.publish,
			Interrupt: func(step ledger.Step) error {
				mu.Lock()
				stall := rng.IntN(25) == 0
				mu.Unlock()
				if stall {
					time.Sleep(200 * time.Millisecond)
				}
				return nil
			},
		})
		wg.Go(func() {
			for run.Err() == nil {
				p, err := in.Integrate(run)
				mu.Lock()
				switch {
				case err != nil:
					stats[holder+" failed"]++
				case p.Resumed:
					stats[holder+" resumed"]++
				case p.Integrated > 0:
					stats[holder+" integrated"]++
				}
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	for start := 0; start < len(rs); start += 100 {
		chunk := rs[start:min(start+100, len(rs))]
		if _, err := s.AddPending(ctx, entries(t, chunk, time.Now())); err != nil {
			t.Fatalf("AddPending = %v", err)
		}
		// Deliveries are at least once: some arrive again.
		if _, err := s.AddPending(ctx, entries(t, chunk[:10], time.Now())); err != nil {
			t.Fatalf("AddPending(again) = %v", err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	stop()
	wg.Wait()
	t.Logf("passes: %v", stats)
	// A third integrator, whose clock is past every lease, finishes.
	final := integrator(t, s, "c", ledger.IntegratorOptions{Witness: g, Clock: func() time.Time { return time.Now().Add(time.Hour) }, Publish: pub.publish})
	drain(ctx, t, final, s)
	checkLog(ctx, t, s, rs)
	pub.checkConsistent(ctx, t, ledger.NewLog(s))
}

// testStaleHead: an integrator that keeps the state it committed, to
// spare itself reading it back, must not build on it once another holder
// changed the log. a commits, b (whose clock is past a's lease) takes
// over, commits and releases the lease, and a, which renews its lease
// before it ran out by its own clock, starts a batch at its old size: the
// store refuses it, nothing is written, and a's next pass reads the log
// again and appends after b's entries.
func testStaleHead(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	clk := newClock()
	var pub published
	g := newGovernors()
	rng := rand.New(rand.NewPCG(22, 22))
	rs1, rs2, rs3 := receipts(rng, "acme", 50), receipts(rng, "globex", 40), receipts(rng, "initech", 30)
	g.commit(rs1...)
	g.commit(rs2...)
	g.commit(rs3...)
	a := integrator(t, s, "a", ledger.IntegratorOptions{Witness: g, Clock: clk.Now, Publish: pub.publish})
	b := integrator(t, s, "b", ledger.IntegratorOptions{Witness: g, Clock: func() time.Time { return clk.Now().Add(time.Hour) }, Publish: pub.publish})
	add := func(rs []receipt.Receipt) {
		t.Helper()
		if _, err := s.AddPending(ctx, entries(t, rs, clk.Now())); err != nil {
			t.Fatalf("AddPending = %v", err)
		}
	}
	add(rs1)
	if p, err := a.Integrate(ctx); err != nil || p.Size != 50 {
		t.Fatalf("Integrate(a) = size %d, %v; want 50", p.Size, err)
	}
	add(rs2)
	if p, err := b.Integrate(ctx); err != nil || !p.Held || p.Size != 90 {
		t.Fatalf("Integrate(b, past a's lease) = held %v, size %d, %v; want it to take over at 90", p.Held, p.Size, err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatalf("Release(b) = %v", err)
	}
	add(rs3)
	clk.Advance(3 * time.Second) // a renews its lease, still running by its clock
	if _, err := a.Integrate(ctx); fault.ErrorCode(err) != fault.Conflict {
		t.Fatalf("Integrate(a, on the size it committed) = %v; want a Conflict error", err)
	}
	if st, err := s.State(ctx); err != nil || st.Size != 90 {
		t.Fatalf("State after a's refused pass = size %d, %v; want b's 90", st.Size, err)
	}
	if _, ok, err := s.Batch(ctx); err != nil || ok {
		t.Fatalf("Batch after a's refused pass = %v, %v; want none", ok, err)
	}
	drain(ctx, t, a, s)
	checkLog(ctx, t, s, slices.Concat(rs1, rs2, rs3))
	pub.checkConsistent(ctx, t, ledger.NewLog(s))
}

// errKilled is the error of an interrupted integrator.
var errKilled = errors.New("integrator killed")

func testCrashMidBatch(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	clk := newClock()
	var pub published
	rng := rand.New(rand.NewPCG(30, 30))
	g := newGovernors()
	var all []receipt.Receipt
	for _, tc := range []struct {
		step ledger.Step
		nth  int
	}{
		{ledger.StepBegun, 1},
		{ledger.StepWritten, 1},
		{ledger.StepWritten, 3},
		{ledger.StepWritten, 4},
		{ledger.StepCommitted, 1},
	} {
		name := fmt.Sprintf("%s#%d", tc.step, tc.nth)
		rs := receipts(rng, "t-"+strings.ReplaceAll(name, "#", "-"), 130)
		all = append(all, rs...)
		g.commit(rs...)
		if _, err := s.AddPending(ctx, entries(t, rs, clk.Now())); err != nil {
			t.Fatalf("%s: AddPending = %v", name, err)
		}
		seen := 0
		a := integrator(t, s, "a", ledger.IntegratorOptions{
			Witness: g, Clock: clk.Now, BatchSize: 100, WriteChunk: 30, Publish: pub.publish,
			Interrupt: func(step ledger.Step) error {
				if step == tc.step {
					seen++
					if seen == tc.nth {
						return errKilled
					}
				}
				return nil
			},
		})
		if _, err := a.Integrate(ctx); !errors.Is(err, errKilled) {
			t.Fatalf("%s: Integrate(a) = %v, want it killed", name, err)
		}
		st, err := s.State(ctx)
		if err != nil {
			t.Fatalf("%s: State = %v", name, err)
		}
		before := st.Size
		// b cannot take over while a's lease runs.
		b := integrator(t, s, "b", ledger.IntegratorOptions{Witness: g, Clock: clk.Now, BatchSize: 100, Publish: pub.publish})
		if p, err := b.Integrate(ctx); err != nil || p.Held {
			t.Fatalf("%s: Integrate(b) while a's lease runs = %+v, %v; want the lease held by a", name, p, err)
		}
		clk.Advance(ledger.DefaultLeaseTTL + time.Second)
		p, err := b.Integrate(ctx)
		if err != nil || !p.Held {
			t.Fatalf("%s: Integrate(b) after a's lease expired = %+v, %v", name, p, err)
		}
		if tc.step != ledger.StepCommitted {
			if !p.Resumed || p.Integrated != 100 || p.Size != before+100 {
				t.Errorf("%s: b's first pass = resumed %v, %d integrated, size %d; want a's batch of 100 completed at %d", name, p.Resumed, p.Integrated, p.Size, before+100)
			}
		}
		// a, restarted, finds the lease held by b.
		if p, err := a.Integrate(ctx); err != nil || p.Held {
			t.Errorf("%s: Integrate(a) after b took over = %+v, %v; want the lease held by b", name, p, err)
		}
		drain(ctx, t, b, s)
		if err := b.Release(ctx); err != nil {
			t.Fatalf("%s: Release(b) = %v", name, err)
		}
	}
	checkLog(ctx, t, s, all)
	pub.checkConsistent(ctx, t, ledger.NewLog(s))
	// The checkpoint a committed but never published was published by b.
	st, err := s.State(ctx)
	if err != nil {
		t.Fatalf("State = %v", err)
	}
	pub.mu.Lock()
	last := pub.notes[len(pub.notes)-1]
	pub.mu.Unlock()
	if string(last) != string(st.Checkpoint) {
		t.Errorf("last published checkpoint is not the committed one")
	}
}

// integrated returns a log of the receipts rs, committed by the governors
// g and integrated by one integrator.
func integrated(ctx context.Context, t *testing.T, s ledger.Store, g *governors, rs []receipt.Receipt) (*ledger.Integrator, ledger.Checkpoint) {
	t.Helper()
	g.commit(rs...)
	if _, err := s.AddPending(ctx, entries(t, rs, t0)); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	in := integrator(t, s, "a", ledger.IntegratorOptions{Witness: g, BatchSize: 400})
	drain(ctx, t, in, s)
	st, err := s.State(ctx)
	if err != nil {
		t.Fatalf("State = %v", err)
	}
	return in, openState(t, st)
}

// checkVerifyError fails the test unless err is a *VerifyError with
// problem want whose Where contains where.
func checkVerifyError(t *testing.T, call string, err error, want ledger.Problem, where string) {
	t.Helper()
	var ve *ledger.VerifyError
	if !errors.As(err, &ve) || ve.Problem != want || !strings.Contains(ve.Where, where) {
		t.Errorf("%s = %v, want a %s failure at %s", call, err, want, where)
	}
}

func testTamperedTile(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	rs := receipts(rand.New(rand.NewPCG(40, 40)), "acme", 600)
	g := newGovernors()
	in, cp := integrated(ctx, t, s, g, rs)
	log := ledger.NewLog(s)
	tests := []struct {
		name  string
		level int
		n     int64
		width int
		hash  int
		want  ledger.Problem
		where string
		// victim is a receipt whose proof needs the tile.
		victim int
		// edge marks tiles on the tree's right edge, which the integrator
		// authenticates before it extends the tree; it never reads the
		// others.
		edge bool
	}{
		{"full level-0 tile", 0, 1, 256, 5, ledger.TileMismatch, "tile/0/001", 300, false},
		{"partial level-0 tile", 0, 2, 600 - 512, 40, ledger.TileMismatch, "tile/0/002.p/88", 520, true},
		{"level-1 tile", 1, 0, 2, 0, ledger.TileMismatch, "tile/0/000", 10, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tile := tlog.Tile{H: ledger.TileHeight, L: tc.level, N: tc.n, W: tc.width}
			orig, err := s.Tiles(ctx, []tlog.Tile{tile})
			if err != nil {
				t.Fatalf("Tiles(%s) = %v", ledger.TilePath(tile), err)
			}
			bad := slices.Clone(orig[0])
			bad[tc.hash*tlog.HashSize] ^= 1
			if err := h.SetTile(ctx, tc.level, tc.n, bad); err != nil {
				t.Fatalf("SetTile = %v", err)
			}
			defer func() {
				if err := h.SetTile(ctx, tc.level, tc.n, orig[0]); err != nil {
					t.Fatalf("SetTile(restore) = %v", err)
				}
			}()
			_, err = ledger.Audit(ctx, log, cp)
			checkVerifyError(t, "Audit(tampered "+ledger.TilePath(tile)+")", err, tc.want, tc.where)
			_, err = log.InclusionProof(ctx, rs[tc.victim].Hash, 0)
			checkCode(t, "InclusionProof(receipt in the tampered tree)", err, fault.Conflict)
			if !tc.edge {
				return
			}
			// The integrator refuses to extend a tree whose tiles do not
			// match its checkpoint.
			extra := receipts(rand.New(rand.NewPCG(41, uint64(tc.level))), "late-"+tc.name[:4], 1)
			g.commit(extra...)
			if _, err := s.AddPending(ctx, entries(t, extra, t0)); err != nil {
				t.Fatalf("AddPending = %v", err)
			}
			_, err = in.Integrate(ctx)
			checkCode(t, "Integrate(on tampered tiles)", err, fault.Conflict)
			if st, err := s.State(ctx); err != nil || st.Size != cp.Size {
				t.Errorf("State().Size after a refused pass = %d, %v; want %d", st.Size, err, cp.Size)
			}
		})
	}
}

func testTamperedEntry(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	rs := receipts(rand.New(rand.NewPCG(50, 50)), "acme", 300)
	g := newGovernors()
	in, cp := integrated(ctx, t, s, g, rs)
	log := ledger.NewLog(s)
	found, err := s.Lookup(ctx, []string{rs[7].Hash})
	if err != nil {
		t.Fatalf("Lookup = %v", err)
	}
	victim := found[rs[7].Hash]
	// The stored receipt is rewritten, hash recomputed: it is still an
	// intact receipt, but not the one the tree committed to.
	forged := rs[7]
	forged.ToState = "forged"
	forged.Hash = forged.ComputeHash()
	if err := h.SetLeaf(ctx, victim.Hash, forged.JSON()); err != nil {
		t.Fatalf("SetLeaf = %v", err)
	}
	_, err = ledger.Audit(ctx, log, cp)
	checkVerifyError(t, "Audit(tampered entry)", err, ledger.EntryMismatch, fmt.Sprintf("entry %d (tile/entries/000)", victim.Index))
	_, err = log.InclusionProof(ctx, victim.Hash, 0)
	checkCode(t, "InclusionProof(tampered entry)", err, fault.Conflict)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("entry %d", victim.Index)) {
		t.Errorf("InclusionProof(tampered entry) = %v, want it to name entry %d", err, victim.Index)
	}
	// A proof of the genuine receipt does not prove the forged one.
	if err := h.SetLeaf(ctx, victim.Hash, victim.Leaf); err != nil {
		t.Fatalf("SetLeaf(restore) = %v", err)
	}
	proof, err := log.InclusionProof(ctx, victim.Hash, 0)
	if err != nil {
		t.Fatalf("InclusionProof = %v", err)
	}
	proof.ReceiptHash, proof.Receipt = "", receipt.Receipt{}
	checkVerifyError(t, "VerifyInclusion(forged receipt)", ledger.VerifyInclusion(&forged, &proof, cp), ledger.NotIncluded, "index")

	// A pending entry whose leaf was replaced is left out of the log.
	late := receipts(rand.New(rand.NewPCG(51, 51)), "globex", 2)
	g.commit(late...)
	if _, err := s.AddPending(ctx, entries(t, late, t0)); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	if err := h.SetLeaf(ctx, late[0].Hash, forged.JSON()); err != nil {
		t.Fatalf("SetLeaf = %v", err)
	}
	p, err := in.Integrate(ctx)
	if err != nil || p.Refused != 1 || p.Integrated != 1 {
		t.Errorf("Integrate(one tampered pending entry) = %d integrated, %d refused, %v; want 1, 1, nil", p.Integrated, p.Refused, err)
	}
	if pending, err := s.Pending(ctx, 0); err != nil || len(pending) != 1 || pending[0].Hash != late[0].Hash {
		t.Errorf("Pending after the pass = %v, %v; want the tampered entry only", hashesOf(pending), err)
	}
}

func testForkedLog(t *testing.T, h1, h2 Harness) {
	ctx := t.Context()
	rs := receipts(rand.New(rand.NewPCG(60, 60)), "acme", 400)
	other := receipts(rand.New(rand.NewPCG(61, 61)), "mallory", 1)
	g1, g2 := newGovernors(), newGovernors()
	g1.commit(rs...)
	g2.commit(rs...)
	in1, cp1 := integrated(ctx, t, h1.Store, g1, rs[:300])
	// The fork has the same first 299 entries, then another receipt.
	fork := append(slices.Clone(rs[:299]), other[0])
	in2, fork300 := integrated(ctx, t, h2.Store, g2, fork)
	if _, err := h2.Store.AddPending(ctx, entries(t, rs[300:], t0.Add(time.Hour))); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	drain(ctx, t, in2, h2.Store)
	st2, err := h2.Store.State(ctx)
	if err != nil {
		t.Fatalf("State = %v", err)
	}
	fork400 := openState(t, st2)
	log2 := ledger.NewLog(h2.Store)
	p, err := log2.ConsistencyProof(ctx, 300, 400)
	if err != nil {
		t.Fatalf("ConsistencyProof(300, 400) = %v", err)
	}
	checkVerifyError(t, "VerifyConsistency(checkpoint, forked checkpoint)", ledger.VerifyConsistency(cp1, fork400, &p), ledger.Inconsistent, "size 300 and 400")
	same := ledger.ConsistencyProof{From: 300, To: 300}
	checkVerifyError(t, "VerifyConsistency(same size, different roots)", ledger.VerifyConsistency(cp1, fork300, &same), ledger.Inconsistent, "size 300 and 300")
	// The honest log's extension is consistent.
	if _, err := h1.Store.AddPending(ctx, entries(t, rs[300:], t0.Add(time.Hour))); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	drain(ctx, t, in1, h1.Store)
	st1, err := h1.Store.State(ctx)
	if err != nil {
		t.Fatalf("State = %v", err)
	}
	cp400 := openState(t, st1)
	p, err = ledger.NewLog(h1.Store).ConsistencyProof(ctx, 300, 400)
	if err != nil {
		t.Fatalf("ConsistencyProof(300, 400) = %v", err)
	}
	if err := ledger.VerifyConsistency(cp1, cp400, &p); err != nil {
		t.Errorf("VerifyConsistency(honest extension) = %v", err)
	}
}
