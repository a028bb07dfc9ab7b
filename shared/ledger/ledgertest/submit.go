package ledgertest

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// submitted is the outcome of one Submit.
type submitted struct {
	adm ledger.Admission
	err error
}

// submitAll submits each of es to in from a goroutine of its own, waits
// until in holds them all (Queued), and returns the channel of every
// outcome, in no particular order, and a function that waits for them.
func submitAll(ctx context.Context, t *testing.T, in *ledger.Integrator, es []ledger.Entry) map[string]chan submitted {
	t.Helper()
	out := make(map[string]chan submitted, len(es))
	for _, e := range es {
		ch := make(chan submitted, 1)
		out[e.Hash] = ch
		go func() {
			adm, err := in.Submit(ctx, e)
			ch <- submitted{adm, err}
		}()
	}
	for in.Queued() < len(es) {
		for _, ch := range out {
			select {
			case o := <-ch:
				t.Fatalf("Submit answered %v, %v before any pass took it", o.adm, o.err)
			default:
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the integrator holds %d of %d submitted entries", in.Queued(), len(es))
		case <-time.After(time.Millisecond):
		}
	}
	return out
}

// runLoop runs in's loop with passes an hour apart, so that the test
// drives the passes, and returns once its first pass held the lease, and
// a function that stops it.
func runLoop(t *testing.T, in *ledger.Integrator, first <-chan ledger.Pass) (ledger.Pass, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = in.Run(ctx, time.Hour, time.Hour); close(done) }()
	stop := func() { cancel(); <-done }
	select {
	case p := <-first:
		return p, stop
	case <-t.Context().Done():
		stop()
		t.Fatal("the loop made no pass")
	}
	return ledger.Pass{}, stop
}

// firstPass returns an Observe hook that sends the first pass on the
// returned channel, and records every pass.
func firstPass() (func(ledger.Pass, error), <-chan ledger.Pass, *[]ledger.Pass) {
	ch := make(chan ledger.Pass, 1)
	var mu sync.Mutex
	var all []ledger.Pass
	return func(p ledger.Pass, err error) {
		mu.Lock()
		defer mu.Unlock()
		all = append(all, p)
		if err == nil && p.Held {
			select {
			case ch <- p:
			default:
			}
		}
	}, ch, &all
}

// testGroupCommit: receipts handed to a running integrator (the push
// endpoint's path) are integrated without a pending record, settled with
// the pass that commits them; made-up receipts are refused, known ones
// answered as such, and pending entries share the batches.
func testGroupCommit(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	g := newGovernors()
	rng := rand.New(rand.NewPCG(90, 90))
	rs := receipts(rng, "acme", 300)
	g.commit(rs...)
	es := entries(t, rs, t0)
	forged := entries(t, []receipt.Receipt{forge(lastOf(rs, rs[0].Key()), "forged-1"), forge(lastOf(rs, rs[1].Key()), "forged-2")}, t0)
	late := receipts(rng, "late", 1)
	g.commit(late...)
	if _, err := s.AddPending(ctx, entries(t, late, t0)); err != nil {
		t.Fatalf("AddPending = %v", err)
	}

	observe, first, _ := firstPass()
	// Batches of 400: the loop never finds a batch's worth waiting, and
	// leaves the passes to the test.
	in := integrator(t, s, "a", ledger.IntegratorOptions{Witness: g, BatchSize: 400, WriteChunk: 70, Linger: time.Hour, Observe: observe})
	// Without a loop holding the lease, nothing is taken.
	if adm, err := in.Submit(ctx, es[0]); err != nil || adm != ledger.Deferred {
		t.Fatalf("Submit before the loop runs = %v, %v; want deferred", adm, err)
	}
	bad := es[0]
	bad.Hash = "abc"
	if _, err := in.Submit(ctx, bad); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("Submit(entry with a short hash) = %v, want an Invalid error", err)
	}
	_, stop := runLoop(t, in, first)
	defer stop()
	outcomes := submitAll(ctx, t, in, append(append([]ledger.Entry{}, es...), forged...))
	for range 10 {
		if in.Queued() == 0 {
			break
		}
		if _, err := in.Integrate(ctx); err != nil {
			t.Fatalf("Integrate = %v", err)
		}
	}
	for _, e := range es {
		if o := <-outcomes[e.Hash]; o.err != nil || o.adm != ledger.Integrated {
			t.Errorf("Submit(%s) = %v, %v; want integrated", e.Hash, o.adm, o.err)
		}
	}
	for _, e := range forged {
		if o := <-outcomes[e.Hash]; o.err != nil || o.adm != ledger.Unvouched {
			t.Errorf("Submit(forged %s) = %v, %v; want unvouched", e.Hash, o.adm, o.err)
		}
	}
	drain(ctx, t, in, s)
	checkLog(ctx, t, s, append(append([]receipt.Receipt{}, rs...), late...))
	if pending, err := s.Pending(ctx, 0); err != nil || len(pending) != 0 {
		t.Errorf("Pending after the group commit = %d entries, %v; want none", len(pending), err)
	}
	// Delivered again, a receipt is known.
	again := submitAll(ctx, t, in, es[:3])
	if _, err := in.Integrate(ctx); err != nil {
		t.Fatalf("Integrate = %v", err)
	}
	for _, e := range es[:3] {
		if o := <-again[e.Hash]; o.err != nil || o.adm != ledger.Known {
			t.Errorf("Submit(%s) again = %v, %v; want known", e.Hash, o.adm, o.err)
		}
	}
	if st, err := s.State(ctx); err != nil || st.Size != int64(len(rs)+len(late)) {
		t.Errorf("State().Size after receipts delivered again = %d, %v; want %d", st.Size, err, len(rs)+len(late))
	}
	// Once the loop stops, the integrator takes nothing more.
	stop()
	if adm, err := in.Submit(ctx, es[0]); err != nil || adm != ledger.Deferred {
		t.Errorf("Submit after the loop stopped = %v, %v; want deferred", adm, err)
	}
}

// testSubmittedWhilePending: receipts delivered twice, once to an
// instance that recorded them as pending and once to the holder's
// running loop, are each logged once, and no pending record is left.
func testSubmittedWhilePending(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	g := newGovernors()
	rs := receipts(rand.New(rand.NewPCG(92, 92)), "acme", 20)
	g.commit(rs...)
	es := entries(t, rs, t0)
	observe, first, _ := firstPass()
	in := integrator(t, s, "a", ledger.IntegratorOptions{Witness: g, BatchSize: 400, Linger: time.Hour, Observe: observe})
	_, stop := runLoop(t, in, first)
	defer stop()
	// Recorded as pending after the loop's first pass, so that one pass
	// meets each of them twice.
	if _, err := s.AddPending(ctx, es[:10]); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	outcomes := submitAll(ctx, t, in, es)
	p, err := in.Integrate(ctx)
	if err != nil {
		t.Fatalf("Integrate = %v", err)
	}
	for _, e := range es {
		if o := <-outcomes[e.Hash]; o.err != nil || o.adm != ledger.Integrated {
			t.Errorf("Submit(%s) = %v, %v; want integrated", e.Hash, o.adm, o.err)
		}
	}
	if p.Integrated != len(es) {
		t.Errorf("pass integrated %d entries, want %d (each once)", p.Integrated, len(es))
	}
	if again, err := in.Integrate(ctx); err != nil || again.Integrated != 0 {
		t.Errorf("Integrate again = %d integrated, %v; want none", again.Integrated, err)
	}
	checkLog(ctx, t, s, rs)
	if pending, err := s.Pending(ctx, 0); err != nil || len(pending) != 0 {
		t.Errorf("Pending after both deliveries = %d entries, %v; want none", len(pending), err)
	}
}

// heldWrites is a Store whose WriteEntries or AppendBatch of the entry
// with hash hold waits until release is closed, after closing entered: a
// pass held in the middle.
type heldWrites struct {
	ledger.Store
	hold     string
	entered  chan struct{}
	release  chan struct{}
	enterOne sync.Once
}

func (h *heldWrites) WriteEntries(ctx context.Context, f ledger.Fence, start int64, es []ledger.Entry) error {
	if err := h.wait(ctx, es); err != nil {
		return err
	}
	return h.Store.WriteEntries(ctx, f, start, es)
}

func (h *heldWrites) AppendBatch(ctx context.Context, f ledger.Fence, c ledger.Commit, es []ledger.Entry) error {
	if err := h.wait(ctx, es); err != nil {
		return err
	}
	return h.Store.AppendBatch(ctx, f, c, es)
}

// wait holds the writing of es, when they hold the entry h.hold.
func (h *heldWrites) wait(ctx context.Context, es []ledger.Entry) error {
	for _, e := range es {
		if e.Hash == h.hold {
			h.enterOne.Do(func() { close(h.entered) })
			select {
			case <-h.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// testBacklogStartsNextPass: receipts submitted while the loop's pass
// runs, an eighth of a batch or more, start the next pass as soon as it
// ends instead of after Linger (an hour here): the group commit's backlog
// is a batch already.
func testBacklogStartsNextPass(t *testing.T, h Harness) {
	ctx := t.Context()
	g := newGovernors()
	rs := receipts(rand.New(rand.NewPCG(93, 93)), "acme", 17+11)
	g.commit(rs...)
	es := entries(t, rs, t0)
	// 17 pending entries: the loop's first pass takes a full batch of 16,
	// in hash order, so the next pass starts at once and takes the last;
	// that pass is held while it writes it.
	pending := slices.Clone(es[:17])
	slices.SortFunc(pending, func(a, b ledger.Entry) int { return strings.Compare(a.Hash, b.Hash) })
	if _, err := h.Store.AddPending(ctx, pending); err != nil {
		t.Fatalf("AddPending = %v", err)
	}
	s := &heldWrites{Store: h.Store, hold: pending[16].Hash, entered: make(chan struct{}), release: make(chan struct{})}
	observe, first, _ := firstPass()
	in := integrator(t, s, "a", ledger.IntegratorOptions{Witness: g, BatchSize: 16, Linger: time.Hour, Observe: observe})
	_, stop := runLoop(t, in, first)
	defer stop()
	select {
	case <-s.entered:
	case <-ctx.Done():
		close(s.release)
		t.Fatal("no pass took the 17th pending entry")
	}
	outcomes := submitAll(ctx, t, in, es[17:])
	close(s.release)
	for _, e := range es[17:] {
		select {
		case o := <-outcomes[e.Hash]:
			if o.err != nil || o.adm != ledger.Integrated {
				t.Errorf("Submit(%s) = %v, %v; want integrated", e.Hash, o.adm, o.err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("Submit(%s) is still waiting: the backlog waited for Linger", e.Hash)
		}
	}
	stop()
	checkLog(ctx, t, h.Store, rs)
}

// testGroupCommitRun: the loop itself integrates what is submitted, in
// batches shared by concurrent submissions.
func testGroupCommitRun(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	g := newGovernors()
	rs := receipts(rand.New(rand.NewPCG(91, 91)), "acme", 120)
	g.commit(rs...)
	es := entries(t, rs, t0)
	observe, first, _ := firstPass()
	in := integrator(t, s, "a", ledger.IntegratorOptions{Witness: g, BatchSize: 50, Linger: time.Millisecond, Observe: observe})
	loop, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = in.Run(loop, 5*time.Millisecond, 5*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	<-first
	var wg sync.WaitGroup
	for _, e := range es {
		wg.Go(func() {
			for {
				adm, err := in.Submit(ctx, e)
				if err == nil && adm == ledger.Integrated {
					return
				}
				if ctx.Err() != nil {
					t.Errorf("Submit(%s) = %v, %v", e.Hash, adm, err)
					return
				}
				time.Sleep(time.Millisecond) // a redelivery
			}
		})
	}
	wg.Wait()
	checkLog(ctx, t, s, rs)
}

// testCrashWithSubmitted: an integrator dies part-way through writing a
// batch of submitted entries, which it held in memory only. Their
// submitters are told (their deliveries come again), the next lease
// holder replaces the batch with the entries that were written, and the
// redelivered receipts join the log, each once.
func testCrashWithSubmitted(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
	clk := newClock()
	g := newGovernors()
	rs := receipts(rand.New(rand.NewPCG(92, 92)), "acme", 130)
	g.commit(rs...)
	es := entries(t, rs, clk.Now())
	var pub published

	observeA, firstA, _ := firstPass()
	written := 0
	a := integrator(t, s, "a", ledger.IntegratorOptions{
		Witness: g, Clock: clk.Now, BatchSize: 200, WriteChunk: 30, Linger: time.Hour, Observe: observeA, Publish: pub.publish,
		Interrupt: func(step ledger.Step) error {
			if step == ledger.StepWritten {
				if written++; written == 1 {
					return errKilled
				}
			}
			return nil
		},
	})
	_, stopA := runLoop(t, a, firstA)
	outcomes := submitAll(ctx, t, a, es)
	if _, err := a.Integrate(ctx); !errors.Is(err, errKilled) {
		t.Fatalf("Integrate(a) = %v, want it killed", err)
	}
	stopA() // a dies
	failed, deferred := 0, 0
	for _, e := range es {
		switch o := <-outcomes[e.Hash]; {
		case fault.ErrorCode(o.err) == fault.Unavailable:
			failed++
		case o.err == nil && o.adm == ledger.Deferred:
			deferred++
		default:
			t.Errorf("Submit(%s) to a, killed = %v, %v; want an Unavailable error or deferred", e.Hash, o.adm, o.err)
		}
	}
	if failed != len(es) || deferred != 0 {
		t.Errorf("a's submitters: %d failed, %d deferred; want all %d in the failed batch", failed, deferred, len(es))
	}
	if _, inProgress, err := s.Batch(ctx); err != nil || !inProgress {
		t.Fatalf("Batch after a died = %v, %v; want a's batch in progress", inProgress, err)
	}

	clk.Advance(ledger.DefaultLeaseTTL + time.Second)
	observeB, firstB, _ := firstPass()
	b := integrator(t, s, "b", ledger.IntegratorOptions{Witness: g, Clock: clk.Now, BatchSize: 200, Linger: time.Hour, Observe: observeB, Publish: pub.publish})
	p, stopB := runLoop(t, b, firstB)
	defer stopB()
	if !p.Resumed || !p.Abandoned || p.Integrated != 30 || p.Size != 30 {
		t.Errorf("b's first pass = resumed %v, abandoned %v, %d integrated, size %d; want a's batch replaced by the 30 entries a wrote",
			p.Resumed, p.Abandoned, p.Integrated, p.Size)
	}
	// Pub/Sub delivers every receipt again.
	again := submitAll(ctx, t, b, es)
	for range 10 {
		if b.Queued() == 0 {
			break
		}
		if _, err := b.Integrate(ctx); err != nil {
			t.Fatalf("Integrate(b) = %v", err)
		}
	}
	known, integrated := 0, 0
	for _, e := range es {
		switch o := <-again[e.Hash]; {
		case o.err == nil && o.adm == ledger.Known:
			known++
		case o.err == nil && o.adm == ledger.Integrated:
			integrated++
		default:
			t.Errorf("Submit(%s) to b = %v, %v; want known or integrated", e.Hash, o.adm, o.err)
		}
	}
	if known != 30 || integrated != 100 {
		t.Errorf("b's submitters: %d known, %d integrated; want 30 and 100", known, integrated)
	}
	checkLog(ctx, t, s, rs)
	pub.checkConsistent(ctx, t, ledger.NewLog(s))
}
