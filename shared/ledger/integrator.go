package ledger

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Defaults of IntegratorOptions.
const (
	DefaultLeaseTTL   = 10 * time.Second
	DefaultBatchSize  = 2000
	DefaultWriteChunk = 500
	DefaultLinger     = 20 * time.Millisecond
	DefaultMaxQueued  = 8000
)

// Step names a point of an integration at which IntegratorOptions.Interrupt
// is called.
type Step string

// Steps of an integration, in order. A batch written at once
// (Store.AppendBatch) passes StepCommitted only.
const (
	// StepBegun follows the recording of the batch.
	StepBegun Step = "begun"
	// StepWritten follows each chunk of WriteChunk entries written.
	StepWritten Step = "written"
	// StepCommitted follows the commit, before the checkpoint is published.
	StepCommitted Step = "committed"
)

// IntegratorOptions configure an Integrator.
type IntegratorOptions struct {
	Store Store
	// Witness is the governors' store, read only: a pending entry joins
	// the log only when the receipt stored at its place has its hash.
	// Required.
	Witness ReceiptWitness
	// Signer signs checkpoints; its key name is the log's origin.
	Signer note.Signer
	// VerifierKey is the signer's verifier key, recorded with each state.
	VerifierKey string
	// Holder names this integrator in the lease; unique per process.
	Holder string
	// LeaseTTL is how long a lease lasts without renewal; DefaultLeaseTTL
	// when zero. Every pass and every batch step renews it.
	LeaseTTL time.Duration
	// BatchSize is the most entries one pass integrates; DefaultBatchSize
	// when zero, at most MaxBatch.
	BatchSize int
	// WriteChunk is the number of entries per WriteEntries call;
	// DefaultWriteChunk when zero.
	WriteChunk int
	// Clock returns the time; time.Now when nil.
	Clock func() time.Time
	// Publish announces a new checkpoint; nil publishes nothing. A
	// failure is logged and the checkpoint is published again by a later
	// pass, so every checkpoint is published at least once per holder.
	Publish func(ctx context.Context, signed []byte, cp Checkpoint) error
	// Logger receives one line per integrated batch; slog.Default() when nil.
	Logger *slog.Logger
	// Observe, when set, receives the outcome of every pass, for metrics.
	Observe func(Pass, error)
	// MeterProvider receives the integrator's metrics (the refusal
	// counter, RefusedMetric); none are recorded when nil.
	MeterProvider metric.MeterProvider
	// Linger is how long Run waits, after an entry is submitted while it
	// is idle, before the pass that integrates it, so that entries
	// submitted together share a batch (and its tiles, checkpoint and
	// state writes); DefaultLinger when zero. Entries submitted during a
	// pass go into the next one, which starts as soon as it ends when they
	// fill a batch, Linger after it otherwise.
	Linger time.Duration
	// MaxQueued bounds the entries Submit holds in memory; beyond it,
	// Submit answers Deferred. DefaultMaxQueued when zero, at most
	// MaxBatch.
	MaxQueued int
	// Interrupt, when set, is called at every Step; an error it returns
	// ends the pass there with that error, as if the process had died.
	// It exists to test recovery.
	Interrupt func(Step) error
}

// Integrator appends pending entries to the log in batches, one pass at a
// time, while it holds the log's lease. It is safe for concurrent use;
// passes of one Integrator run one after the other.
type Integrator struct {
	o       IntegratorOptions
	refused metric.Int64Counter

	mu        sync.Mutex
	published int64 // size of the last checkpoint published; -1 for none
	// leaseUntil is when the lease this integrator last took or renewed
	// expires; zero when it does not hold it.
	leaseUntil time.Time
	// head is the state this integrator last committed or read, when no
	// batch follows it and the lease has been held since; nil otherwise.
	head    *State
	wake    chan struct{}
	running bool // Run is running

	// The entries submitted (Submit) and not yet resolved: queue by hash,
	// order in order of submission, from next on not yet taken by a pass.
	qmu       sync.Mutex
	queue     map[string]*queued
	order     []*queued
	accepting bool // a Run loop holds the lease: Submit queues entries
	submitted chan struct{}
}

// queued is an entry handed to Submit, and what became of it once done
// is closed.
type queued struct {
	entry Entry
	taken bool
	done  chan struct{}
	adm   Admission
	err   error
}

// NewIntegrator checks opts and returns an Integrator.
func NewIntegrator(opts IntegratorOptions) (*Integrator, error) {
	const op = "ledger.NewIntegrator"
	switch {
	case opts.Store == nil:
		return nil, fault.Errorf(fault.Invalid, op, "a store is required")
	case opts.Witness == nil:
		return nil, fault.Errorf(fault.Invalid, op, "a receipt witness (the governors' store) is required")
	case opts.Signer == nil:
		return nil, fault.Errorf(fault.Invalid, op, "a signer is required")
	case opts.Holder == "":
		return nil, fault.Errorf(fault.Invalid, op, "a holder id is required")
	case opts.BatchSize < 0 || opts.BatchSize > MaxBatch:
		return nil, fault.Errorf(fault.Invalid, op, "batch size %d outside 1…%d", opts.BatchSize, MaxBatch)
	}
	if opts.VerifierKey != "" {
		v, err := NewVerifier(opts.VerifierKey)
		if err != nil {
			return nil, err
		}
		if v.Name() != opts.Signer.Name() || v.KeyHash() != opts.Signer.KeyHash() {
			return nil, fault.Errorf(fault.Invalid, op, "verifier key %s is not the signer's key", opts.VerifierKey)
		}
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.WriteChunk <= 0 {
		opts.WriteChunk = DefaultWriteChunk
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Linger <= 0 {
		opts.Linger = DefaultLinger
	}
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = DefaultMaxQueued
	}
	opts.MaxQueued = min(opts.MaxQueued, MaxBatch)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	// Instrument constructors only fail on invalid names, which are fixed here.
	refused, _ := mp.Meter(instrumentation).Int64Counter(RefusedMetric,
		metric.WithDescription("Pending receipts dropped because the governors' store holds another receipt, or none, at their place; by reason."))
	return &Integrator{o: opts, refused: refused, published: -1, wake: make(chan struct{}, 1),
		queue: map[string]*queued{}, submitted: make(chan struct{}, 1)}, nil
}

// instrumentation names the integrator's meter.
const instrumentation = "github.com/autonomics/autonomics/shared/ledger"

// RefusedMetric is the counter of pending receipts the integrator dropped
// because the governors' store does not vouch for them, with attribute
// "reason" (RefusedUnstored or RefusedOtherStored).
const RefusedMetric = "autonomics.ledger.receipts.refused"

// maxRefusalLines bounds the log lines of one pass about dropped entries;
// a summary line counts the rest.
const maxRefusalLines = 20

// Origin returns the origin line of the checkpoints the integrator signs.
func (in *Integrator) Origin() string { return in.o.Signer.Name() }

// Pass reports what one call of Integrate did.
type Pass struct {
	// Holder is the lease holder: this integrator's Holder when Held.
	Holder string
	// Held reports whether this integrator held the lease.
	Held bool
	// Resumed reports that the pass completed a batch begun earlier,
	// possibly by another integrator that stopped part-way.
	Resumed bool
	// Integrated is the number of entries the pass added to the log.
	Integrated int
	// Size is the log's size after the pass; Checkpoint its signed note.
	Size       int64
	Checkpoint []byte
	// Latencies are, for each integrated entry, the time from its
	// governor's commit (the receipt's decided_at; its arrival when that
	// does not parse) to the commit of the checkpoint that includes it.
	Latencies []time.Duration
	// Submitted is the number of submitted entries (Submit) the pass took;
	// Known those of them already in the log.
	Submitted, Known int
	// Queued is the number of submitted entries waiting, not taken, when
	// the pass ended: those that arrived while it ran.
	Queued int
	// Abandoned reports that the pass replaced a batch in progress some
	// of whose entries were never written (see Store.AbandonBatch).
	Abandoned bool
	// Refused counts pending entries left out because their stored leaf
	// is not the receipt their hash names.
	Refused int
	// Forged counts pending entries dropped because the governors' store
	// holds another receipt, or none, at their (tenant, domain, subject,
	// seq): receipts no governor committed.
	Forged int
}

// Integrate runs one pass: it acquires or renews the lease and, if it
// holds it, completes the batch in progress or takes up to BatchSize
// pending entries, drops those the witness does not vouch for, integrates
// the others, commits the new signed checkpoint and publishes it. A log
// without any checkpoint gets one of size 0. It returns a pass with Held
// false when another integrator holds the lease.
func (in *Integrator) Integrate(ctx context.Context) (Pass, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	p, err := in.integrate(ctx)
	p.Queued = in.queuedCount()
	if in.running {
		// Submit queues entries while Run's passes hold the lease.
		in.setAccepting(err == nil && p.Held || err != nil && fault.ErrorCode(err) != fault.Conflict && in.accepts())
	}
	if in.o.Observe != nil {
		in.o.Observe(p, err)
	}
	return p, err
}

func (in *Integrator) integrate(ctx context.Context) (Pass, error) {
	s := in.o.Store
	// A lease with more than three quarters of its time to run is not
	// renewed: every batch renews it, and a holder that lost it is fenced
	// off anyway.
	if now := in.o.Clock(); in.leaseUntil.Sub(now) < in.o.LeaseTTL*3/4 {
		if !in.leaseUntil.After(now) {
			in.head = nil // the lease lapsed: another holder may have changed the log
		}
		lease, err := s.AcquireLease(ctx, in.o.Holder, now, in.o.LeaseTTL)
		if err != nil {
			return Pass{}, err
		}
		if lease.Holder != in.o.Holder {
			in.published, in.leaseUntil, in.head = -1, time.Time{}, nil
			in.setAccepting(false)
			return Pass{Holder: lease.Holder}, nil
		}
		in.leaseUntil = lease.ExpiresAt
	}
	pass := Pass{Holder: in.o.Holder, Held: true}
	var taken []*queued
	p, err := in.integrateHeld(ctx, pass, &taken)
	if fault.ErrorCode(err) == fault.Conflict {
		in.leaseUntil = time.Time{} // perhaps fenced off: ask again next time
		in.setAccepting(false)
	}
	// What the pass did not settle is not in the log: the submitter's
	// caller (a push) fails, and its delivery is retried.
	for _, q := range taken {
		if err == nil {
			in.resolve(q, Deferred, nil)
		} else {
			in.resolve(q, Deferred, fault.Errorf(fault.Unavailable, "ledger.Integrate", "the pass that took receipt %s failed: %s", q.entry.Hash, fault.ErrorMessage(err)))
		}
	}
	return p, err
}

// integrateHeld is the part of a pass that runs while holding the lease.
// The submitted entries it takes are appended to *taken until it settles
// them (resolve); integrate settles the rest.
func (in *Integrator) integrateHeld(ctx context.Context, pass Pass, taken *[]*queued) (Pass, error) {
	const op = "ledger.Integrate"
	s := in.o.Store
	// The state this integrator committed, with no batch after it, saves
	// the pass reading it back while the lease has been held since; a
	// holder that changed the log meanwhile (clocks far apart) makes
	// BeginBatch refuse the stale size, and the pass fail.
	head := in.head
	in.head = nil // until this pass succeeds
	var (
		st         State
		b          Batch
		inProgress bool
		err        error
	)
	if head != nil {
		st = *head
	} else {
		if st, err = s.State(ctx); err != nil {
			return pass, err
		}
		if err := in.checkState(st); err != nil {
			return pass, err
		}
	}
	pass.Size, pass.Checkpoint = st.Size, st.Checkpoint
	if st.Checkpoint != nil && in.published != st.Size {
		in.publish(ctx, st)
	}
	if head == nil {
		if b, inProgress, err = s.Batch(ctx); err != nil {
			return pass, err
		}
	}
	decided := map[string]time.Time{}
	var entries, carried []Entry
	if inProgress {
		pass.Resumed = true
		complete, err := in.batchEntries(ctx, b, decided)
		if err != nil {
			return pass, err
		}
		if len(complete) == len(b.Hashes) {
			return in.complete(ctx, pass, st, b, complete, decided, nil, false)
		}
		// Entries held in memory by an integrator that stopped were never
		// written: their deliveries were not acknowledged and come again.
		// The batch is replaced by one of the entries that were written
		// (or are pending), vouched for already.
		f := in.fence()
		if err := s.AbandonBatch(ctx, f, b); err != nil {
			return pass, err
		}
		in.leaseUntil = f.Now.Add(f.TTL)
		pass.Abandoned = true
		in.o.Logger.WarnContext(ctx, "ledger batch abandoned: some of its entries were never written", "start", b.Start,
			"entries", len(b.Hashes), "kept", len(complete))
		carried = complete
	}
	inBatch := make(map[string]bool, len(carried))
	for _, e := range carried {
		inBatch[e.Hash] = true
	}
	room := max(in.o.BatchSize-len(carried), 0)
	// A share of every batch is kept for the pending entries, so that
	// submissions cannot starve them.
	subs := in.take(max(room-room/8, min(room, 1)))
	*taken = subs
	pass.Submitted = len(subs)
	var cs []candidate
	var fresh []*queued
	var subStored map[ReceiptRef]string
	// The pending entries are asked for while the submitted ones are
	// looked into: the query depends on neither answer.
	var (
		pending  []Entry
		gPending errgroup.Group
	)
	if limit := room - len(subs); limit > 0 { // no room, no query (a limit of 0 would mean all)
		gPending.Go(func() (err error) {
			pending, err = s.Pending(ctx, limit)
			return err
		})
	}
	if len(subs) > 0 {
		// The log (is it there already?) and the governors' store (did a
		// governor commit it?) are asked about the submitted entries at
		// once: neither answer depends on the other, and a duplicate
		// costs only the witness's wasted read. The log is asked for its
		// written entries only (Store.Written): a submitted receipt that
		// is also pending (pushed twice, once to an instance that does
		// not integrate) leaves its pending record behind, for Pending to
		// delete when it next meets it.
		hashes := make([]string, len(subs))
		parsed := make([]*receipt.Receipt, len(subs))
		refs := make([]ReceiptRef, 0, len(subs))
		for i, q := range subs {
			hashes[i] = q.entry.Hash
			if r, err := checkLeaf(q.entry.Hash, q.entry.Leaf); err == nil {
				parsed[i] = &r
				refs = append(refs, RefOf(&r))
			}
		}
		var known map[string]Entry
		var g errgroup.Group
		g.Go(func() (err error) {
			known, err = s.Written(ctx, hashes)
			return err
		})
		g.Go(func() (err error) {
			subStored, err = storedHashes(ctx, in.o.Witness, refs)
			return err
		})
		if err := g.Wait(); err != nil {
			_ = gPending.Wait()
			return pass, err
		}
		for i, q := range subs {
			k, ok := known[q.entry.Hash]
			switch {
			case inBatch[q.entry.Hash]:
				fresh = append(fresh, q) // integrated with the batch carried over
				continue
			case ok && k.Index < st.Size:
				pass.Known++
				in.resolve(q, Known, nil)
				continue
			}
			r := parsed[i]
			if r == nil { // Submit takes only entries NewEntry made
				pass.Refused++
				in.resolve(q, Unvouched, nil)
				continue
			}
			inBatch[q.entry.Hash] = true
			decided[q.entry.Hash] = decidedAt(r, q.entry.ArrivedAt)
			fresh = append(fresh, q)
			cs = append(cs, candidate{entry: q.entry, ref: RefOf(r), exec: r.ExecutionID})
		}
	}
	vouched, forged := split(cs, subStored)
	if err := gPending.Wait(); err != nil {
		return pass, err
	}
	var pcs []candidate
	for _, e := range pending {
		if inBatch[e.Hash] {
			continue
		}
		r, err := checkLeaf(e.Hash, e.Leaf)
		if err != nil {
			pass.Refused++
			in.o.Logger.ErrorContext(ctx, "pending ledger entry refused", "receipt_hash", e.Hash, "error", err.Error())
			continue
		}
		inBatch[e.Hash] = true
		decided[e.Hash] = decidedAt(&r, e.ArrivedAt)
		pcs = append(pcs, candidate{entry: e, ref: RefOf(&r), exec: r.ExecutionID})
	}
	pv, pf, err := vouch(ctx, in.o.Witness, pcs)
	if err != nil {
		return pass, err
	}
	vouched, forged = append(vouched, pv...), append(forged, pf...)
	if len(forged) > 0 {
		if err := in.drop(ctx, forged); err != nil {
			return pass, err
		}
		pass.Forged = len(forged)
		refused := make(map[string]bool, len(forged))
		for _, u := range forged {
			refused[u.entry.Hash] = true
		}
		kept := fresh[:0]
		for _, q := range fresh {
			if refused[q.entry.Hash] {
				in.resolve(q, Unvouched, nil)
			} else {
				kept = append(kept, q)
			}
		}
		fresh = kept
	}
	*taken = fresh
	entries = append(carried, vouched...)
	if len(entries) == 0 && st.Checkpoint != nil && !pass.Abandoned {
		in.head = &st
		return pass, nil
	}
	b = Batch{Start: st.Size, Hashes: make([]string, len(entries)), Holder: in.o.Holder, CreatedAt: in.o.Clock().UTC()}
	for i, e := range entries {
		b.Hashes[i] = e.Hash
	}
	if len(entries) == 0 && st.Checkpoint != nil {
		return pass, nil // an abandoned batch of nothing written
	}
	if b.Start != st.Size {
		return pass, fault.Errorf(fault.Internal, op, "batch starts at %d, the log's size is %d", b.Start, st.Size)
	}
	return in.complete(ctx, pass, st, b, entries, decided, taken, true)
}

// decidedAt is when r was committed (its decided_at), or else fallback.
func decidedAt(r *receipt.Receipt, fallback time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, r.DecidedAt); err == nil {
		return t
	}
	return fallback
}

// drop removes the entries the witness does not vouch for from the
// pending ones, then counts and logs them.
func (in *Integrator) drop(ctx context.Context, forged []unvouched) error {
	hashes := make([]string, 0, len(forged))
	for _, u := range forged {
		if u.entry.Pending {
			hashes = append(hashes, u.entry.Hash)
		}
	}
	f := in.fence()
	if err := in.o.Store.DropPending(ctx, f, hashes); err != nil {
		return err
	}
	in.leaseUntil = f.Now.Add(f.TTL)
	counts := map[string]int64{}
	for i, u := range forged {
		counts[u.reason()]++
		if i >= maxRefusalLines {
			continue
		}
		in.o.Logger.ErrorContext(ctx, "receipt refused by the ledger: the governors did not store it",
			"reason", u.reason(), "receipt_hash", u.entry.Hash, "receipt", u.ref.String(),
			"execution_id", httpjson.Truncate(u.exec, httpjson.MaxEcho), "stored_hash", u.stored)
	}
	for reason, n := range counts {
		in.refused.Add(ctx, n, metric.WithAttributes(attribute.String("reason", reason)))
	}
	if len(forged) > maxRefusalLines {
		in.o.Logger.ErrorContext(ctx, "receipts refused by the ledger: the governors did not store them",
			"refused", len(forged), "logged", maxRefusalLines)
	}
	return nil
}

// checkState refuses to extend a log of another origin, or a state whose
// checkpoint does not describe it.
func (in *Integrator) checkState(st State) error {
	const op = "ledger.Integrate"
	if st.Checkpoint == nil {
		if st.Size != 0 {
			return fault.Errorf(fault.Internal, op, "log of size %d has no checkpoint", st.Size)
		}
		return nil
	}
	cp, err := CheckpointOf(st.Checkpoint)
	if err != nil {
		return fault.Errorf(fault.Internal, op, "stored checkpoint: %s", fault.ErrorMessage(err))
	}
	if cp.Origin != in.Origin() {
		return fault.Errorf(fault.Conflict, op, "the log's origin is %s, this integrator signs for %q", httpjson.Quote(cp.Origin), in.Origin())
	}
	if cp.Size != st.Size || cp.Root != st.Root {
		return fault.Errorf(fault.Internal, op, "stored checkpoint %s does not match the state (size %d, root %s)", cp, st.Size, st.Root)
	}
	return nil
}

// batchEntries loads the entries of a batch in progress that are stored
// (written, or pending), in batch order, and records their decision times
// in decided. All of them are there unless entries held in memory were
// never written.
func (in *Integrator) batchEntries(ctx context.Context, b Batch, decided map[string]time.Time) ([]Entry, error) {
	const op = "ledger.Integrate"
	found, err := in.o.Store.Lookup(ctx, b.Hashes)
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, 0, len(b.Hashes))
	for i, h := range b.Hashes {
		e, ok := found[h]
		if !ok {
			continue
		}
		r, err := checkLeaf(h, e.Leaf)
		if err != nil {
			return nil, err
		}
		if e.Index != Unassigned && e.Index != b.Start+int64(i) {
			return nil, fault.Errorf(fault.Internal, op, "entry %s has index %d, its batch puts it at %d", h, e.Index, b.Start+int64(i))
		}
		decided[h] = decidedAt(&r, e.ArrivedAt)
		entries = append(entries, e)
	}
	return entries, nil
}

// complete computes the tree after batch b, writes the entries, commits
// and publishes. A fresh batch, not begun yet, is begun first, unless it
// fits in one WriteChunk and in one transaction (MaxAppendWrites): its
// entries and its commit are then written at once (Store.AppendBatch),
// a third of the round trips, without the batch's record. The submitted
// entries in *taken are resolved Integrated once the commit succeeded.
func (in *Integrator) complete(ctx context.Context, pass Pass, st State, b Batch, entries []Entry, decided map[string]time.Time, taken *[]*queued, fresh bool) (Pass, error) {
	const op = "ledger.Integrate"
	tb := &treeBuilder{base: tlog.StoredHashCount(st.Size)}
	if st.Size > 0 {
		tb.old = newTreeReader(ctx, tlog.Tree{N: st.Size, Hash: st.Root}, in.o.Store.Tiles)
		// Authenticate the right edge of the stored tree before building on it.
		if _, err := tlog.TreeHash(st.Size, tb.old); err != nil {
			return pass, err
		}
	}
	for i, e := range entries {
		hs, err := tlog.StoredHashesForRecordHash(st.Size+int64(i), RecordHash(e.Leaf), tb)
		if err != nil {
			return pass, fault.Wrap(fault.Internal, op, err)
		}
		tb.hashes = append(tb.hashes, hs...)
	}
	size := b.End()
	root, err := tlog.TreeHash(size, tb)
	if err != nil {
		return pass, fault.Wrap(fault.Internal, op, err)
	}
	var tiles []TileData
	for _, t := range tlog.NewTiles(TileHeight, st.Size, size) {
		data, err := tlog.ReadTileData(t, tb)
		if err != nil {
			return pass, fault.Wrap(fault.Internal, op, err)
		}
		tiles = append(tiles, TileData{Tile: t, Data: data})
	}
	cp := Checkpoint{Origin: in.Origin(), Size: size, Root: root}
	signed, err := SignCheckpoint(cp, in.o.Signer)
	if err != nil {
		return pass, err
	}
	c := Commit{Batch: b, State: State{Size: size, Root: root, Checkpoint: signed, VerifierKey: in.o.VerifierKey}, Tiles: tiles}
	var now time.Time
	if fresh && len(entries) <= in.o.WriteChunk && AppendWrites(c, entries) <= MaxAppendWrites {
		now = in.o.Clock().UTC()
		c.State.UpdatedAt = now
		if err := in.o.Store.AppendBatch(ctx, in.fenceAt(now), c, entries); err != nil {
			return pass, err
		}
	} else {
		if fresh {
			f := in.fence()
			if err := in.o.Store.BeginBatch(ctx, f, b); err != nil {
				return pass, err
			}
			in.leaseUntil = f.Now.Add(f.TTL)
			if err := in.interrupt(StepBegun); err != nil {
				return pass, err
			}
		}
		for start := 0; start < len(entries); start += in.o.WriteChunk {
			chunk := entries[start:min(start+in.o.WriteChunk, len(entries))]
			if err := in.o.Store.WriteEntries(ctx, in.fenceAt(in.o.Clock()), b.Start+int64(start), chunk); err != nil {
				return pass, err
			}
			if err := in.interrupt(StepWritten); err != nil {
				return pass, err
			}
		}
		now = in.o.Clock().UTC()
		c.State.UpdatedAt = now
		if err := in.o.Store.CommitBatch(ctx, in.fenceAt(now), c); err != nil {
			return pass, err
		}
	}
	next := c.State
	in.head = &next
	in.leaseUntil = now.Add(in.o.LeaseTTL)
	pass.Integrated, pass.Size, pass.Checkpoint = len(entries), size, signed
	if taken != nil {
		for _, q := range *taken {
			in.resolve(q, Integrated, nil)
		}
		*taken = nil
	}
	pass.Latencies = make([]time.Duration, 0, len(entries))
	for _, e := range entries {
		at, ok := decided[e.Hash]
		if !ok || at.IsZero() {
			at = e.ArrivedAt
		}
		if !at.IsZero() {
			pass.Latencies = append(pass.Latencies, now.Sub(at))
		}
	}
	if err := in.interrupt(StepCommitted); err != nil {
		return pass, err
	}
	in.publish(ctx, next)
	if len(entries) > 0 {
		lat := slices.Clone(pass.Latencies)
		slices.Sort(lat)
		args := []any{"start", b.Start, "entries", len(entries), "size", size, "root", root.String(), "resumed", pass.Resumed}
		if len(lat) > 0 {
			args = append(args, "latency_p50_ms", lat[len(lat)/2].Milliseconds(), "latency_max_ms", lat[len(lat)-1].Milliseconds())
		}
		in.o.Logger.InfoContext(ctx, "ledger batch integrated", args...)
	}
	return pass, nil
}

func (in *Integrator) fence() Fence { return in.fenceAt(in.o.Clock()) }

func (in *Integrator) fenceAt(now time.Time) Fence {
	return Fence{Holder: in.o.Holder, Now: now, TTL: in.o.LeaseTTL}
}

func (in *Integrator) interrupt(s Step) error {
	if in.o.Interrupt == nil {
		return nil
	}
	return in.o.Interrupt(s)
}

// publish announces st's checkpoint and remembers it on success.
func (in *Integrator) publish(ctx context.Context, st State) {
	if in.o.Publish == nil {
		in.published = st.Size
		return
	}
	cp, err := CheckpointOf(st.Checkpoint)
	if err == nil {
		err = in.o.Publish(ctx, st.Checkpoint, cp)
	}
	if err != nil {
		in.o.Logger.WarnContext(ctx, "checkpoint not published; a later pass retries", "size", st.Size, "error", err.Error())
		return
	}
	in.published = st.Size
}

// Release gives up the lease, so that another integrator can take over
// without waiting for it to expire.
func (in *Integrator) Release(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.published, in.leaseUntil, in.head = -1, time.Time{}, nil
	return in.o.Store.ReleaseLease(ctx, in.o.Holder)
}

// Admission is what became of an entry handed to Submit.
type Admission int

// Admissions.
const (
	// Deferred: the integrator did not take the entry (it runs no loop,
	// does not hold the lease, or holds too many entries already); the
	// caller records it as pending (Store.AddPending) instead.
	Deferred Admission = iota
	// Integrated: the entry is in the log, under a committed checkpoint.
	Integrated
	// Known: the entry was in the log already.
	Known
	// Unvouched: the governors' store does not hold the receipt at its
	// place; it is not in the log and never will be (see ReceiptWitness).
	Unvouched
)

// String returns the admission's name.
func (a Admission) String() string {
	switch a {
	case Integrated:
		return "integrated"
	case Known:
		return "known"
	case Unvouched:
		return "unvouched"
	}
	return "deferred"
}

// Submit hands e, an entry NewEntry made, to the integrator and waits
// until the pass that takes it settles it: Integrated once the checkpoint
// that includes it is committed, Known or Unvouched, or an Unavailable
// error when the pass failed or ctx ended first (the caller's delivery is
// then retried; an entry integrated meanwhile is Known next time). This
// is the group commit of the push endpoint: a receipt costs the ledger
// its entry's write, and each batch its tiles, state and checkpoint,
// with no pending record. It answers Deferred at once, without waiting,
// unless Run is running and holds the lease, and while MaxQueued entries
// wait; the caller then records e as pending. Submissions of one hash
// share its fate.
func (in *Integrator) Submit(ctx context.Context, e Entry) (Admission, error) {
	const op = "ledger.Submit"
	if !IsReceiptHash(e.Hash) || len(e.Leaf) == 0 || len(e.Leaf) > MaxLeafBytes {
		return Deferred, fault.Errorf(fault.Invalid, op, "entry %s: want a receipt hash and a leaf of 1…%d bytes", httpjson.Quote(e.Hash), MaxLeafBytes)
	}
	in.qmu.Lock()
	q, ok := in.queue[e.Hash]
	if !ok {
		if !in.accepting || len(in.queue) >= in.o.MaxQueued {
			in.qmu.Unlock()
			return Deferred, nil
		}
		e.Index, e.Pending = Unassigned, false
		q = &queued{entry: e, done: make(chan struct{})}
		in.queue[e.Hash] = q
		in.order = append(in.order, q)
	}
	in.qmu.Unlock()
	select {
	case in.submitted <- struct{}{}:
	default:
	}
	select {
	case <-q.done:
		return q.adm, q.err
	case <-ctx.Done():
		return Deferred, fault.Wrap(fault.Unavailable, op, ctx.Err())
	}
}

// take removes up to n submitted entries from the queue's waiting ones,
// oldest first.
func (in *Integrator) take(n int) []*queued {
	in.qmu.Lock()
	defer in.qmu.Unlock()
	n = min(n, len(in.order))
	out := slices.Clone(in.order[:n])
	for _, q := range out {
		q.taken = true
	}
	in.order = slices.Delete(in.order, 0, n)
	if len(in.order) == 0 {
		in.order = nil // let the backing array go
	}
	return out
}

// resolve settles a submitted entry, once.
func (in *Integrator) resolve(q *queued, a Admission, err error) {
	in.qmu.Lock()
	defer in.qmu.Unlock()
	if in.queue[q.entry.Hash] != q {
		return
	}
	delete(in.queue, q.entry.Hash)
	q.adm, q.err = a, err
	close(q.done)
}

// setAccepting says whether Submit queues entries; once it does not, the
// waiting ones are Deferred.
func (in *Integrator) setAccepting(on bool) {
	in.qmu.Lock()
	in.accepting = on
	var waiting []*queued
	if !on {
		waiting, in.order = in.order, nil
	}
	in.qmu.Unlock()
	for _, q := range waiting {
		in.resolve(q, Deferred, nil)
	}
}

// Queued returns the number of submitted entries (Submit) waiting for a
// pass to take them.
func (in *Integrator) Queued() int { return in.queuedCount() }

// queuedCount returns the number of submitted entries not yet taken.
func (in *Integrator) queuedCount() int {
	in.qmu.Lock()
	defer in.qmu.Unlock()
	return len(in.order)
}

// maxBackoff bounds the wait of Run after consecutive failed passes.
const maxBackoff = 30 * time.Second

// Notify tells a running Run that an entry is pending, so that an idle
// loop runs its next pass within interval instead of idle. The push
// endpoint calls it for every receipt it records.
func (in *Integrator) Notify() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// Run integrates until ctx is done. After a pass that took a full batch
// (integrated, or dropped as forged), while a batch's worth of submitted
// entries (Submit) waits, or when at least an eighth of a batch of them
// arrived while the pass ran (Pass.Queued), the next one starts at once;
// while fewer wait, after Linger (at most interval); after another pass that
// integrated something, after interval; after a pass that found nothing
// pending, after idle, or interval after a Notify, whichever comes first
// (an idle of at most interval polls every interval). An entry submitted
// while Run waits starts the next pass Linger later. Errors are logged
// and the next pass retries, after a wait that doubles with each
// consecutive failure up to 30s. While Run holds the lease, Submit queues
// entries for its passes. It returns ctx's error, or an Invalid error for
// an interval that is not positive.
//
// A long idle spares the storage a query per interval while nothing
// arrives; it suits a deployment whose pushes reach the integrating
// instance (Notify, Submit), such as the local stack. Where pushes are
// spread over several instances, keep idle short: only the lease holder's
// own pushes wake it.
func (in *Integrator) Run(ctx context.Context, interval, idle time.Duration) error {
	if interval <= 0 {
		return fault.Errorf(fault.Invalid, "ledger.Run", "interval %v must be positive", interval)
	}
	in.mu.Lock()
	in.running = true
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.running = false
		in.mu.Unlock()
		in.setAccepting(false)
	}()
	idle = max(idle, interval)
	t := time.NewTimer(0)
	defer t.Stop()
	failures := 0
	waiting := false   // idle, waiting for a Notify
	due := time.Time{} // when the timer fires; zero when it fired
	reset := func(d time.Duration) {
		t.Reset(d)
		due = time.Now().Add(d)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-in.wake:
			if waiting {
				waiting = false
				reset(interval)
			}
			continue
		case <-in.submitted:
			if !due.IsZero() && time.Until(due) > in.o.Linger && in.queuedCount() > 0 {
				waiting = false
				reset(in.o.Linger)
			}
			continue
		case <-t.C:
		}
		waiting, due = false, time.Time{}
		p, err := in.Integrate(ctx)
		next := interval
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			next = min(interval<<min(failures, 16), maxBackoff)
			in.o.Logger.ErrorContext(ctx, "ledger integration failed", "code", fault.ErrorCode(err), "error", err.Error(), "retry_in", next.String())
		case err != nil:
		case p.Integrated+p.Forged >= in.o.BatchSize || in.queuedCount() >= in.o.BatchSize-in.o.BatchSize/8:
			failures, next = 0, 0 // a full batch waits
		case p.Queued >= max(in.o.BatchSize/8, 1):
			// What was submitted while the pass ran is a batch already:
			// waiting longer only delays it (the group commit's backlog).
			failures, next = 0, 0
		case in.queuedCount() > 0:
			failures, next = 0, min(in.o.Linger, interval)
		case p.Integrated == 0 && !p.Resumed:
			failures, next, waiting = 0, idle, idle > interval
		default:
			failures = 0
			select {
			case <-in.wake: // entries arrived during the pass
				next = 0
			default:
			}
		}
		reset(next)
	}
}

// accepts reports whether Submit queues entries.
func (in *Integrator) accepts() bool {
	in.qmu.Lock()
	defer in.qmu.Unlock()
	return in.accepting
}

// treeBuilder is the tlog.HashReader of a tree being extended: stored
// hashes below base come from the authenticated old tree, later ones from
// the hashes computed for the batch.
type treeBuilder struct {
	old    *treeReader
	base   int64
	hashes []tlog.Hash
}

func (tb *treeBuilder) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var old []int64
	for i, x := range indexes {
		switch {
		case x >= tb.base+int64(len(tb.hashes)):
			return nil, fault.Errorf(fault.Internal, "ledger.treeBuilder", "hash %d not computed yet", x)
		case x >= tb.base:
			out[i] = tb.hashes[x-tb.base]
		default:
			old = append(old, x)
		}
	}
	if len(old) == 0 {
		return out, nil
	}
	if tb.old == nil {
		return nil, fault.Errorf(fault.Internal, "ledger.treeBuilder", "hash %d of an empty tree", old[0])
	}
	hs, err := tb.old.ReadHashes(old)
	if err != nil {
		return nil, err
	}
	j := 0
	for i, x := range indexes {
		if x < tb.base {
			out[i] = hs[j]
			j++
		}
	}
	return out, nil
}

// CheckpointOf returns the body of a signed checkpoint note without
// verifying any signature; use OpenCheckpoint to verify.
func CheckpointOf(signed []byte) (Checkpoint, error) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return Checkpoint{}, fault.Errorf(fault.Invalid, "ledger.CheckpointOf", "not a signed note: no blank line before the signatures")
	}
	return ParseCheckpoint(signed[:i+1])
}
