package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/ledger/memledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testLog is a ledger of receipts of a few chains of tenant acme.
type testLog struct {
	store    *memledger.Store
	log      *ledger.Log
	in       *ledger.Integrator
	verifier note.Verifier
	chains   map[governor.Key][]receipt.Receipt
	rs       []receipt.Receipt
	insts    []governor.Instance
	n        int
	// stored is what the governors stored, place by place: the
	// integrator's witness.
	mu     sync.Mutex
	stored map[ledger.ReceiptRef]string
}

// commit records rs as stored by the governors, each replacing what is
// stored at its place.
func (l *testLog) commit(rs ...receipt.Receipt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range rs {
		l.stored[ledger.RefOf(&rs[i])] = rs[i].Hash
	}
}

// StoredHashes makes a testLog the integrator's ledger.ReceiptWitness.
func (l *testLog) StoredHashes(_ context.Context, refs []ledger.ReceiptRef) (map[ledger.ReceiptRef]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[ledger.ReceiptRef]string{}
	for _, r := range refs {
		if h, ok := l.stored[r]; ok {
			out[r] = h
		}
	}
	return out, nil
}

func newTestLog(tb testing.TB) *testLog {
	tb.Helper()
	skey, vkey, err := ledger.GenerateKey("example.com/ledger")
	if err != nil {
		tb.Fatal(err)
	}
	signer, _, err := ledger.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := ledger.NewVerifier(vkey)
	if err != nil {
		tb.Fatal(err)
	}
	st := memledger.New()
	l := &testLog{store: st, log: ledger.NewLog(st), verifier: v, chains: map[governor.Key][]receipt.Receipt{}, stored: map[ledger.ReceiptRef]string{}}
	l.in, err = ledger.NewIntegrator(ledger.IntegratorOptions{Store: st, Witness: l, Signer: signer, VerifierKey: vkey, Holder: "t", Logger: quiet, BatchSize: ledger.MaxBatch})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range 4 {
		l.insts = append(l.insts, governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.Domains[i], Subject: fmt.Sprint("s", i)}})
	}
	return l
}

// add appends n receipts, integrates them and returns the checkpoint.
func (l *testLog) add(tb testing.TB, n int) ledger.Checkpoint {
	tb.Helper()
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	es := make([]ledger.Entry, 0, n)
	for range n {
		inst := &l.insts[l.n%len(l.insts)]
		ev := governor.Event{ID: fmt.Sprint("ev-", l.n), Source: "//test", Type: governor.TypeOf(inst.Domain, "step"), Domain: inst.Domain,
			Name: "step", Tenant: inst.Tenant, Subject: inst.Subject}
		r := receipt.New(*inst, ev, governor.Decision{Outcome: governor.Accepted, From: "a", To: "b"}, at)
		inst.Version, inst.LastHash = r.Seq, r.Hash
		l.chains[inst.Key] = append(l.chains[inst.Key], r)
		l.rs = append(l.rs, r)
		l.commit(r)
		e, err := ledger.NewEntry(r.JSON(), at.Add(time.Duration(l.n)*time.Microsecond))
		if err != nil {
			tb.Fatal(err)
		}
		es = append(es, e)
		l.n++
	}
	if _, err := l.store.AddPending(context.Background(), es); err != nil {
		tb.Fatal(err)
	}
	p, err := l.in.Integrate(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	cp, err := ledger.OpenCheckpoint(p.Checkpoint, l.verifier)
	if err != nil {
		tb.Fatal(err)
	}
	return cp
}

// Instances and Chain make a testLog a ledger.ChainReader.
func (l *testLog) Instances(_ context.Context, tenant string, _ governor.Domain) ([]governor.Instance, error) {
	var out []governor.Instance
	for _, in := range l.insts {
		if in.Tenant == tenant {
			out = append(out, governor.Instance{Key: in.Key})
		}
	}
	return out, nil
}

func (l *testLog) Chain(_ context.Context, k governor.Key, after int64, limit int) ([]receipt.Receipt, error) {
	var out []receipt.Receipt
	for _, r := range l.chains[k] {
		if r.Seq > after && (limit <= 0 || len(out) < limit) {
			out = append(out, r)
		}
	}
	return out, nil
}

// checkProblem fails the test unless err is a *VerifyError with problem
// want ("" for nil).
func checkProblem(t *testing.T, call string, err error, want ledger.Problem) {
	t.Helper()
	var ve *ledger.VerifyError
	switch {
	case want == "" && err != nil:
		t.Errorf("%s = %v, want nil", call, err)
	case want != "" && (!errors.As(err, &ve) || ve.Problem != want):
		t.Errorf("%s = %v, want a %s failure", call, err, want)
	case want != "" && fault.ErrorCode(err) != fault.Conflict:
		t.Errorf("%s error code = %q, want conflict", call, fault.ErrorCode(err))
	}
}

func TestVerifyInclusion(t *testing.T) {
	l := newTestLog(t)
	l.add(t, 100)
	cp := l.add(t, 37)
	ctx := t.Context()
	r := l.rs[42]
	p, err := l.log.InclusionProof(ctx, r.Hash, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := l.rs[43]
	tests := []struct {
		name   string
		change func(r *receipt.Receipt, p *ledger.InclusionProof, cp *ledger.Checkpoint)
		want   ledger.Problem
	}{
		{"intact", func(*receipt.Receipt, *ledger.InclusionProof, *ledger.Checkpoint) {}, ""},
		{"receipt altered", func(r *receipt.Receipt, _ *ledger.InclusionProof, _ *ledger.Checkpoint) { r.Reason = "x" }, ledger.BadReceipt},
		{"receipt altered and rehashed", func(r *receipt.Receipt, p *ledger.InclusionProof, _ *ledger.Checkpoint) {
			r.Reason = "x"
			r.Hash = r.ComputeHash()
			p.ReceiptHash, p.Receipt = "", receipt.Receipt{}
		}, ledger.NotIncluded},
		{"another receipt", func(r *receipt.Receipt, _ *ledger.InclusionProof, _ *ledger.Checkpoint) { *r = other }, ledger.WrongReceipt},
		{"proof hash altered", func(_ *receipt.Receipt, p *ledger.InclusionProof, _ *ledger.Checkpoint) {
			p.Proof = slices.Clone(p.Proof)
			p.Proof[2][0] ^= 1
		}, ledger.NotIncluded},
		{"proof shortened", func(_ *receipt.Receipt, p *ledger.InclusionProof, _ *ledger.Checkpoint) { p.Proof = p.Proof[1:] }, ledger.NotIncluded},
		{"wrong index", func(_ *receipt.Receipt, p *ledger.InclusionProof, _ *ledger.Checkpoint) { p.Index++ }, ledger.NotIncluded},
		{"index outside the tree", func(_ *receipt.Receipt, p *ledger.InclusionProof, _ *ledger.Checkpoint) { p.Index = 1000 }, ledger.NotIncluded},
		{"checkpoint of another size", func(_ *receipt.Receipt, _ *ledger.InclusionProof, cp *ledger.Checkpoint) { cp.Size-- }, ledger.WrongTreeSize},
		{"checkpoint of another root", func(_ *receipt.Receipt, _ *ledger.InclusionProof, cp *ledger.Checkpoint) { cp.Root[0] ^= 1 }, ledger.NotIncluded},
	}
	for _, tc := range tests {
		r, p, c := r, p, cp
		tc.change(&r, &p, &c)
		checkProblem(t, "VerifyInclusion("+tc.name+")", ledger.VerifyInclusion(&r, &p, c), tc.want)
	}
}

func TestVerifyConsistency(t *testing.T) {
	l := newTestLog(t)
	a := l.add(t, 1)
	b := l.add(t, 300)
	c := l.add(t, 77)
	ctx := t.Context()
	proof := func(from, to int64) ledger.ConsistencyProof {
		p, err := l.log.ConsistencyProof(ctx, from, to)
		if err != nil {
			t.Fatalf("ConsistencyProof(%d, %d) = %v", from, to, err)
		}
		return p
	}
	empty := ledger.Checkpoint{Origin: a.Origin, Size: 0, Root: ledger.EmptyRoot}
	bad := proof(b.Size, c.Size)
	bad.Proof = slices.Clone(bad.Proof)
	bad.Proof[0][5] ^= 1
	forked := b
	forked.Root[0] ^= 1
	renamed := c
	renamed.Origin = "other"
	tests := []struct {
		name         string
		older, newer ledger.Checkpoint
		p            ledger.ConsistencyProof
		want         ledger.Problem
	}{
		{"1 to 301", a, b, proof(a.Size, b.Size), ""},
		{"301 to 378", b, c, proof(b.Size, c.Size), ""},
		{"1 to 378", a, c, proof(a.Size, c.Size), ""},
		{"same checkpoint", c, c, proof(c.Size, c.Size), ""},
		{"from the empty tree", empty, c, proof(0, c.Size), ""},
		{"altered proof", b, c, bad, ledger.Inconsistent},
		{"forked older checkpoint", forked, c, proof(b.Size, c.Size), ledger.Inconsistent},
		{"newer smaller than older", c, b, proof(b.Size, c.Size), ledger.Inconsistent},
		{"proof of other sizes", a, c, proof(b.Size, c.Size), ledger.WrongTreeSize},
		{"other origin", b, renamed, proof(b.Size, c.Size), ledger.WrongOrigin},
	}
	for _, tc := range tests {
		checkProblem(t, "VerifyConsistency("+tc.name+")", ledger.VerifyConsistency(tc.older, tc.newer, &tc.p), tc.want)
	}
}

func TestVerifyExport(t *testing.T) {
	l := newTestLog(t)
	old := l.add(t, 40)
	cp := l.add(t, 21)
	ctx := t.Context()
	base, err := l.log.Export(ctx, l, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := ledger.VerifyExport(base, cp); err != nil || rep.Instances != 4 || rep.Included != 61 {
		t.Fatalf("VerifyExport(export) = %+v, %v; want 4 instances, 61 receipts", rep, err)
	}
	atOld, err := l.log.Export(ctx, l, "acme", old.Size)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := ledger.VerifyExport(atOld, old); err != nil || rep.Included != 40 || rep.Pending != 21 {
		t.Errorf("VerifyExport(export at size 40) = %+v, %v; want 40 included, 21 pending", rep, err)
	}
	clone := func(e *ledger.Export) *ledger.Export {
		c := *e
		c.Instances = slices.Clone(e.Instances)
		for i := range c.Instances {
			c.Instances[i].Receipts = slices.Clone(c.Instances[i].Receipts)
		}
		return &c
	}
	tests := []struct {
		name   string
		export *ledger.Export
		change func(e *ledger.Export)
		cp     ledger.Checkpoint
		want   ledger.Problem
	}{
		{"intact", base, func(*ledger.Export) {}, cp, ""},
		{"other format", base, func(e *ledger.Export) { e.Format = "v0" }, cp, ledger.Malformed},
		{"other tree size", base, func(*ledger.Export) {}, old, ledger.WrongTreeSize},
		{"other root", base, func(e *ledger.Export) { e.RootHash[0] ^= 1 }, cp, ledger.NotIncluded},
		{"receipt withheld", base, func(e *ledger.Export) {
			rs := e.Instances[1].Receipts
			e.Instances[1].Receipts = append(rs[:2:2], rs[3:]...)
		}, cp, ledger.BrokenChain},
		{"receipt of another tenant", base, func(e *ledger.Export) { e.TenantID = "globex" }, cp, ledger.BrokenChain},
		{"receipt altered", base, func(e *ledger.Export) { e.Instances[0].Receipts[3].Receipt.ToState = "c" }, cp, ledger.BrokenChain},
		{"proof altered", base, func(e *ledger.Export) {
			er := &e.Instances[2].Receipts[4]
			er.Proof = slices.Clone(er.Proof)
			er.Proof[0][0] ^= 1
		}, cp, ledger.NotIncluded},
		{"index claimed twice", base, func(e *ledger.Export) { e.Instances[1].Receipts[0].Index = e.Instances[0].Receipts[0].Index }, cp, ledger.Malformed},
		{"instance twice", base, func(e *ledger.Export) { e.Instances = append(e.Instances, e.Instances[0]) }, cp, ledger.Malformed},
		{"pending receipt before an included one", atOld, func(e *ledger.Export) {
			rs := e.Instances[0].Receipts
			for i := range rs {
				if rs[i].Index == ledger.Unassigned {
					rs[i-1].Index, rs[i-1].Proof = ledger.Unassigned, nil
					return
				}
			}
		}, old, ""},
		{"included receipt after a pending one", atOld, func(e *ledger.Export) {
			e.Instances[0].Receipts[0].Index = ledger.Unassigned
		}, old, ledger.NotIncluded},
	}
	for _, tc := range tests {
		e := clone(tc.export)
		tc.change(e)
		_, err := ledger.VerifyExport(e, tc.cp)
		checkProblem(t, "VerifyExport("+tc.name+")", err, tc.want)
	}
}

// tamperedSource serves a log's tiles and bundles with one of them changed.
type tamperedSource struct {
	*ledger.Log
	tile   func(t tlog.Tile, data []byte) []byte
	bundle func(n int64, data []byte) []byte
}

func (s tamperedSource) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	d, err := s.Log.Tile(ctx, t)
	if err == nil && s.tile != nil {
		d = s.tile(t, slices.Clone(d))
	}
	return d, err
}

func (s tamperedSource) EntryBundle(ctx context.Context, n int64, w int) ([]byte, error) {
	d, err := s.Log.EntryBundle(ctx, n, w)
	if err == nil && s.bundle != nil {
		d = s.bundle(n, slices.Clone(d))
	}
	return d, err
}

func TestAudit(t *testing.T) {
	l := newTestLog(t)
	cp := l.add(t, 546) //: two full level-0 tiles, a partial one, a partial level-1 tile
	ctx := t.Context()
	rep, err := ledger.Audit(ctx, l.log, cp)
	if err != nil || rep.Tiles != 4 || rep.Bundles != 3 {
		t.Fatalf("Audit = %+v, %v; want 4 tiles and 3 bundles", rep, err)
	}
	leaves, err := l.store.Leaves(ctx, 256, 512)
	if err != nil {
		t.Fatal(err)
	}
	forged := l.rs[0]
	forged.Reason = "forged"
	tests := []struct {
		name  string
		src   tamperedSource
		cp    ledger.Checkpoint
		want  ledger.Problem
		where string
	}{
		{"tile hash flipped", tamperedSource{Log: l.log, tile: func(t tlog.Tile, d []byte) []byte {
			if t.L == 0 && t.N == 1 {
				d[33] ^= 1
			}
			return d
		}}, cp, ledger.TileMismatch, "tile/0/001"},
		{"tile truncated", tamperedSource{Log: l.log, tile: func(t tlog.Tile, d []byte) []byte {
			if t.L == 1 {
				return d[:1]
			}
			return d
		}}, cp, ledger.Malformed, "tile/1/000.p/2"},
		{"entries swapped", tamperedSource{Log: l.log, bundle: func(n int64, d []byte) []byte {
			if n == 1 {
				b, _ := ledger.EncodeBundle(append([][]byte{leaves[1], leaves[0]}, leaves[2:]...))
				return b
			}
			return d
		}}, cp, ledger.EntryMismatch, "entry 256 (tile/entries/001)"},
		{"entry missing", tamperedSource{Log: l.log, bundle: func(n int64, d []byte) []byte {
			if n == 1 {
				b, _ := ledger.EncodeBundle(leaves[1:])
				return b
			}
			return d
		}}, cp, ledger.Malformed, "tile/entries/001"},
		{"root of another tree", tamperedSource{Log: l.log}, ledger.Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: root}, ledger.TileMismatch, "tile/0/002.p/34"},
		{"empty tree with a root", tamperedSource{Log: l.log}, ledger.Checkpoint{Origin: cp.Origin, Root: root}, ledger.TileMismatch, "checkpoint"},
	}
	for _, tc := range tests {
		_, err := ledger.Audit(ctx, tc.src, tc.cp)
		var ve *ledger.VerifyError
		if !errors.As(err, &ve) || ve.Problem != tc.want || !strings.Contains(ve.Where, tc.where) {
			t.Errorf("Audit(%s) = %v, want a %s failure at %s", tc.name, err, tc.want, tc.where)
		}
	}
	// A bundle entry that hashes to its leaf hash but is not a canonical
	// receipt cannot occur without breaking SHA-256; the forged receipt is
	// caught as a leaf-hash mismatch.
	l.store.SetLeaf(l.rs[0].Hash, forged.JSON())
	_, err = ledger.Audit(ctx, l.log, cp)
	checkProblem(t, "Audit(forged stored receipt)", err, ledger.EntryMismatch)
}

func TestNewIntegratorOptions(t *testing.T) {
	skey, vkey, err := ledger.GenerateKey("example.com/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	_, otherVkey, err := ledger.GenerateKey("example.com/ledger")
	if err != nil {
		t.Fatal(err)
	}
	st := memledger.New()
	w := newTestLog(t)
	tests := []struct {
		name string
		o    ledger.IntegratorOptions
		ok   bool
	}{
		{"complete", ledger.IntegratorOptions{Store: st, Witness: w, Signer: signer, VerifierKey: vkey, Holder: "h"}, true},
		{"no verifier key", ledger.IntegratorOptions{Store: st, Witness: w, Signer: signer, Holder: "h"}, true},
		{"no store", ledger.IntegratorOptions{Witness: w, Signer: signer, Holder: "h"}, false},
		{"no witness", ledger.IntegratorOptions{Store: st, Signer: signer, Holder: "h"}, false},
		{"no signer", ledger.IntegratorOptions{Store: st, Witness: w, Holder: "h"}, false},
		{"no holder", ledger.IntegratorOptions{Store: st, Witness: w, Signer: signer}, false},
		{"batch too large", ledger.IntegratorOptions{Store: st, Witness: w, Signer: signer, Holder: "h", BatchSize: ledger.MaxBatch + 1}, false},
		{"verifier key of another signer", ledger.IntegratorOptions{Store: st, Witness: w, Signer: signer, Holder: "h", VerifierKey: otherVkey}, false},
	}
	for _, tc := range tests {
		_, err := ledger.NewIntegrator(tc.o)
		if (err == nil) != tc.ok || (err != nil && fault.ErrorCode(err) != fault.Invalid) {
			t.Errorf("NewIntegrator(%s) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func TestRun(t *testing.T) {
	l := newTestLog(t)
	l.add(t, 3)
	if err := l.in.Run(t.Context(), 0, 0); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("Run(interval 0) = %v, want invalid", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	// Idle for an hour: only Notify gets the next pass going.
	go func() { done <- l.in.Run(ctx, time.Millisecond, time.Hour) }()
	at := time.Now()
	late := exampleReceipts(20)
	l.commit(late...)
	for i, r := range late {
		e, err := ledger.NewEntry(r.JSON(), at.Add(time.Duration(i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.store.AddPending(ctx, []ledger.Entry{e}); err != nil {
			t.Fatal(err)
		}
		l.in.Notify()
	}
	for {
		st, err := l.store.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size == 23 {
			break
		}
		if time.Since(at) > time.Minute {
			t.Fatalf("State().Size = %d a minute after Notify, want 23", st.Size)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v, want context.Canceled", err)
	}
}
