package ledgertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Harness is one empty log of the adapter under test.
type Harness struct {
	Store ledger.Store
	// SetTile replaces the stored data of tile (level, n) behind the log's
	// back; SetLeaf replaces the stored leaf of the entry with hash.
	SetTile func(ctx context.Context, level int, n int64, data []byte) error
	SetLeaf func(ctx context.Context, hash string, leaf []byte) error
}

// Origin is the origin of the logs the suite builds.
const Origin = "autonomics.test/ledger"

// key is a signer and its verifier.
type key struct {
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

var (
	keyOnce sync.Once
	testKey key
)

// signingKey returns the suite's key, generated once.
func signingKey(t testing.TB) key {
	t.Helper()
	keyOnce.Do(func() {
		skey, vkey, err := ledger.GenerateKey(Origin)
		if err != nil {
			panic(err)
		}
		s, _, err := ledger.NewSigner(skey)
		if err != nil {
			panic(err)
		}
		v, err := ledger.NewVerifier(vkey)
		if err != nil {
			panic(err)
		}
		testKey = key{signer: s, verifier: v, vkey: vkey}
	})
	return testKey
}

// clock is a settable clock for leases.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// quiet is a logger that drops everything.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// receipts returns n intact receipts of a few instances of tenant, each
// chain in order.
func receipts(rng *rand.Rand, tenant string, n int) []receipt.Receipt {
	const instances = 5
	insts := make([]governor.Instance, instances)
	for i := range insts {
		insts[i] = governor.Instance{Key: governor.Key{Tenant: tenant, Domain: governor.Domains[i%len(governor.Domains)], Subject: fmt.Sprintf("s-%d", i)}, State: governor.StateNone}
	}
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	out := make([]receipt.Receipt, 0, n)
	for i := range n {
		inst := &insts[rng.IntN(instances)]
		ev := governor.Event{
			ID: fmt.Sprintf("ev-%d-%d", i, rng.Uint32()), Source: "//ledgertest", Type: governor.TypeOf(inst.Domain, "step"),
			Domain: inst.Domain, Name: "step", Tenant: tenant, Subject: inst.Subject,
		}
		d := governor.Decision{Outcome: governor.Accepted, From: inst.State, To: "active"}
		if rng.IntN(4) == 0 {
			d.Emits = []governor.Emit{{Kind: governor.KindActuate, Type: "tenant.throttle", Domain: inst.Domain, Subject: inst.Subject}}
		}
		r := receipt.New(*inst, ev, d, at.Add(time.Duration(i)*time.Millisecond))
		inst.Version, inst.LastHash, inst.State = r.Seq, r.Hash, "active"
		out = append(out, r)
	}
	return out
}

// governors holds the receipts the governors committed, as the suite's
// tests commit them: the witness of the suite's integrators. It is safe
// for concurrent use.
type governors struct {
	mu     sync.Mutex
	stored map[ledger.ReceiptRef]string
	// fail, when set, is the error of every StoredHashes.
	fail error
	// asked counts the refs asked about.
	asked int
}

func newGovernors() *governors { return &governors{stored: map[ledger.ReceiptRef]string{}} }

// commit records rs as committed, each at its place.
func (g *governors) commit(rs ...receipt.Receipt) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range rs {
		g.stored[ledger.RefOf(&rs[i])] = rs[i].Hash
	}
}

// StoredHashes implements ledger.ReceiptWitness.
func (g *governors) StoredHashes(_ context.Context, refs []ledger.ReceiptRef) (map[ledger.ReceiptRef]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return nil, g.fail
	}
	g.asked += len(refs)
	out := make(map[ledger.ReceiptRef]string, len(refs))
	for _, r := range refs {
		if h, ok := g.stored[r]; ok {
			out[r] = h
		}
	}
	return out, nil
}

// entries returns the pending entries of rs, arriving one microsecond
// apart from start.
func entries(t testing.TB, rs []receipt.Receipt, start time.Time) []ledger.Entry {
	t.Helper()
	out := make([]ledger.Entry, len(rs))
	for i := range rs {
		e, err := ledger.NewEntry(rs[i].JSON(), start.Add(time.Duration(i)*time.Microsecond))
		if err != nil {
			t.Fatalf("NewEntry(receipt %d) = %v", i, err)
		}
		out[i] = e
	}
	return out
}

// integrator returns an integrator of s named holder.
func integrator(t testing.TB, s ledger.Store, holder string, opts ledger.IntegratorOptions) *ledger.Integrator {
	t.Helper()
	k := signingKey(t)
	opts.Store, opts.Signer, opts.VerifierKey, opts.Holder = s, k.signer, k.vkey, holder
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	in, err := ledger.NewIntegrator(opts)
	if err != nil {
		t.Fatalf("NewIntegrator(%s) = %v", holder, err)
	}
	return in
}

// drain runs passes of in until nothing is pending and no batch is in
// progress, and returns the last pass.
func drain(ctx context.Context, t testing.TB, in *ledger.Integrator, s ledger.Store) ledger.Pass {
	t.Helper()
	var last ledger.Pass
	for i := 0; ; i++ {
		p, err := in.Integrate(ctx)
		if err != nil {
			t.Fatalf("Integrate (pass %d) = %v", i, err)
		}
		if !p.Held {
			t.Fatalf("Integrate (pass %d): lease held by %q", i, p.Holder)
		}
		last = p
		pending, err := s.Pending(ctx, 1)
		if err != nil {
			t.Fatalf("Pending = %v", err)
		}
		_, inProgress, err := s.Batch(ctx)
		if err != nil {
			t.Fatalf("Batch = %v", err)
		}
		if len(pending) == 0 && !inProgress && p.Integrated == 0 {
			return last
		}
		if i > 100000 {
			t.Fatalf("Integrate did not drain the log")
		}
	}
}

// openState verifies the state's checkpoint with the suite's key.
func openState(t testing.TB, st ledger.State) ledger.Checkpoint {
	t.Helper()
	cp, err := ledger.OpenCheckpoint(st.Checkpoint, signingKey(t).verifier)
	if err != nil {
		t.Fatalf("OpenCheckpoint(state checkpoint) = %v", err)
	}
	if cp.Size != st.Size || cp.Root != st.Root {
		t.Fatalf("checkpoint %v does not describe the state (size %d, root %s)", cp, st.Size, st.Root)
	}
	return cp
}

// checkLog checks that the log holds exactly the receipts rs, each once,
// that every index holds the receipt the lookup says, that the audit
// passes and that every receipt's inclusion proof verifies.
func checkLog(ctx context.Context, t testing.TB, s ledger.Store, rs []receipt.Receipt) ledger.Checkpoint {
	t.Helper()
	st, err := s.State(ctx)
	if err != nil {
		t.Fatalf("State = %v", err)
	}
	cp := openState(t, st)
	if st.Size != int64(len(rs)) {
		t.Errorf("State().Size = %d, want %d (every receipt once)", st.Size, len(rs))
	}
	hashes := make([]string, len(rs))
	for i := range rs {
		hashes[i] = rs[i].Hash
	}
	found, err := s.Lookup(ctx, hashes)
	if err != nil {
		t.Fatalf("Lookup = %v", err)
	}
	byIndex := map[int64]string{}
	for _, h := range hashes {
		e, ok := found[h]
		switch {
		case !ok:
			t.Errorf("Lookup(%s): missing", h)
		case e.Index < 0 || e.Index >= st.Size:
			t.Errorf("Lookup(%s).Index = %d, want 0…%d", h, e.Index, st.Size-1)
		case byIndex[e.Index] != "":
			t.Errorf("index %d assigned to %s and %s", e.Index, byIndex[e.Index], h)
		default:
			byIndex[e.Index] = h
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	leaves, err := s.Leaves(ctx, 0, st.Size)
	if err != nil {
		t.Fatalf("Leaves(0, %d) = %v", st.Size, err)
	}
	for i, leaf := range leaves {
		if want := found[byIndex[int64(i)]].Leaf; string(leaf) != string(want) {
			t.Fatalf("Leaves[%d] = %.60s…, want the leaf of %s", i, leaf, byIndex[int64(i)])
		}
	}
	log := ledger.NewLog(s)
	if _, err := ledger.Audit(ctx, log, cp); err != nil {
		t.Fatalf("Audit(%v) = %v", cp, err)
	}
	for i := range rs {
		p, err := log.InclusionProof(ctx, rs[i].Hash, 0)
		if err != nil {
			t.Fatalf("InclusionProof(%s) = %v", rs[i].Hash, err)
		}
		if err := ledger.VerifyInclusion(&rs[i], &p, cp); err != nil {
			t.Fatalf("VerifyInclusion(receipt %d) = %v", i, err)
		}
	}
	return cp
}

// checkCode fails the test unless err carries code want.
func checkCode(t testing.TB, call string, err error, want fault.Code) {
	t.Helper()
	if got := fault.ErrorCode(err); got != want {
		t.Errorf("%s = %v (code %q), want code %q", call, err, got, want)
	}
}
