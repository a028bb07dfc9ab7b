package firestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore/fserr"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
)

// DefaultMaxAttempts is the number of transaction attempts when
// Options.MaxAttempts is 0. It is generous because the Firestore emulator
// aborts contended transactions with "Transaction lock timeout".
const DefaultMaxAttempts = 50

// Page sizes of Receipts.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Options configure a Store.
type Options struct {
	// MaxAttempts is how many times RunTx attempts a transaction that
	// aborts on contention; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// SweepName is the id of the sweep's document under "sweeps" (see
	// Store.Swept); DefaultSweepName when empty. Tests sharing a database
	// use one name per engine.
	SweepName string
}

// DefaultSweepName names the sweep document when Options.SweepName is
// empty.
const DefaultSweepName = "default"

// Store is the Firestore store.Store.
type Store struct {
	c           *fs.Client
	maxAttempts int
	sweepName   string
}

var _ store.Store = (*Store)(nil)

// New returns a Store using client.
func New(client *fs.Client, opts Options) *Store {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.SweepName == "" {
		opts.SweepName = DefaultSweepName
	}
	return &Store{c: client, maxAttempts: opts.MaxAttempts, sweepName: opts.SweepName}
}

// Collection and field names of the layout; see the package documentation.
const (
	colTenants   = "tenants"
	colInstances = "instances"
	colReceipts  = "receipts"
	colDedup     = "dedup"
	colTimers    = "timers"
	colSweeps    = "sweeps"
)

func (s *Store) tenantRef(tenant string) *fs.DocumentRef {
	return s.c.Collection(colTenants).Doc(tenant)
}

// instanceID is the document id of an instance within its tenant.
func instanceID(k governor.Key) string { return string(k.Domain) + ":" + k.Subject }

func (s *Store) instanceRef(k governor.Key) *fs.DocumentRef {
	return s.tenantRef(k.Tenant).Collection(colInstances).Doc(instanceID(k))
}

// seqID is the document id of a receipt: its seq zero-padded to twelve
// digits, so that document ids sort in seq order.
func seqID(seq int64) string { return fmt.Sprintf("%012d", seq) }

func (s *Store) receiptsRef(k governor.Key) *fs.CollectionRef {
	return s.instanceRef(k).Collection(colReceipts)
}

// dedupID is the document id of the dedup marker of (k, source, id)
// within k's tenant: store.MarkerHash.
func dedupID(k governor.Key, source, id string) string { return store.MarkerHash(k, source, id) }

func (s *Store) dedupRef(k governor.Key, source, id string) *fs.DocumentRef {
	return s.tenantRef(k.Tenant).Collection(colDedup).Doc(dedupID(k, source, id))
}

func (s *Store) sweepRef() *fs.DocumentRef { return s.c.Collection(colSweeps).Doc(s.sweepName) }

func (s *Store) timerRef(id string) *fs.DocumentRef { return s.c.Collection(colTimers).Doc(id) }

// RunTx implements store.Store. It first runs fn once as an optimistic
// commit (optimistic.go): its reads are one batched read outside any
// transaction and its writes one atomic commit whose preconditions
// require every document read to be unchanged, which saves the
// BeginTransaction round trip of a Firestore transaction. When that
// attempt cannot serve fn (it reads an instance other than the one its
// marker was read with) or its commit loses a race, fn runs again in a
// Firestore transaction, as many times as the transaction runs it. An
// error fn returns aborts either and is returned as is (once the
// attempts are exhausted, for an error wrapping an aborted read).
func (s *Store) RunTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	if err := s.runOptimistic(ctx, fn); !errors.Is(err, errOptimisticFailed) {
		return err
	}
	return s.runTx(ctx, fn)
}

// runTx runs fn in a Firestore transaction.
func (s *Store) runTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	const op = "firestore.RunTx"
	var fnErr error
	err := s.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		fnErr = fn(ctx, &tx{s: s, stage: txStager{t}, get: t.Get, getAll: t.GetAll})
		return fnErr
	}, fs.MaxAttempts(s.maxAttempts))
	if err == nil || (fnErr != nil && err == fnErr) {
		return err
	}
	if ctx.Err() != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	return wrapErr(op, err)
}

// tx is one attempt of a decision's storage transaction, either a
// Firestore transaction or an optimistic commit: get and getAll read
// (through the transaction, or outside any), stage collects the writes.
type tx struct {
	s      *Store
	stage  stager
	get    func(*fs.DocumentRef) (*fs.DocumentSnapshot, error)
	getAll func([]*fs.DocumentRef) ([]*fs.DocumentSnapshot, error)
	// optimistic is set for an optimistic commit, which serves the
	// decision of one instance: the first it reads (with its marker, or
	// alone) and the one it writes.
	optimistic bool
	written    bool
	// prefetched is the instance Dedup read with its marker, for the
	// Instance call of the same key.
	prefetched    *fs.DocumentSnapshot
	prefetchedKey governor.Key
}

// Instance implements store.Tx. The instance Dedup read along with its
// marker is served without another read.
func (t *tx) Instance(k governor.Key) (governor.Instance, error) {
	const op = "firestore.Tx.Instance"
	if t.written {
		return governor.Instance{}, fault.Errorf(fault.Internal, op, "read after Write")
	}
	if err := store.CheckKey(op, k); err != nil {
		return governor.Instance{}, err
	}
	snap := t.prefetched
	if snap == nil || t.prefetchedKey != k {
		if t.optimistic && snap != nil {
			// A second instance: no write of the commit can hold it
			// to the value read.
			return governor.Instance{}, errOptimisticFailed
		}
		var err error
		snap, err = t.get(t.s.instanceRef(k))
		if err != nil && status.Code(err) != codes.NotFound {
			return governor.Instance{}, wrapErr(op, err)
		}
		if t.optimistic {
			t.prefetched, t.prefetchedKey = snap, k
		}
	}
	if snap == nil || !snap.Exists() {
		return governor.Instance{Key: k, State: governor.StateNone}, nil
	}
	return decodeInstance(snap)
}

// Dedup implements store.Tx. It reads the marker and the instance k in
// one BatchGetDocuments: the engine reads the instance next.
func (t *tx) Dedup(k governor.Key, source, id string) (store.Marker, bool, error) {
	const op = "firestore.Tx.Dedup"
	if t.written {
		return store.Marker{}, false, fault.Errorf(fault.Internal, op, "read after Write")
	}
	if err := store.CheckKey(op, k); err != nil {
		return store.Marker{}, false, err
	}
	if t.optimistic && t.prefetched != nil {
		// A second read: the commit serves one instance's decision.
		return store.Marker{}, false, errOptimisticFailed
	}
	snaps, err := t.getAll([]*fs.DocumentRef{t.s.dedupRef(k, source, id), t.s.instanceRef(k)})
	if err != nil {
		return store.Marker{}, false, wrapErr(op, err)
	}
	if len(snaps) != 2 {
		return store.Marker{}, false, fault.Errorf(fault.Internal, op, "read %d documents, want 2", len(snaps))
	}
	t.prefetched, t.prefetchedKey = snaps[1], k
	if !snaps[0].Exists() {
		return store.Marker{}, false, nil
	}
	m, err := decodeMarker(snaps[0], k.Tenant)
	if err != nil {
		return store.Marker{}, false, err
	}
	return m, true, nil
}

// Write implements store.Tx: it validates c and stages its writes. The
// receipt and, in an optimistic commit, the marker are created with the
// precondition that they do not exist, so a transaction's commit fails
// with a fault.Conflict error rather than overwrite a receipt. The first
// receipt of an instance also reads the tenant document and writes it
// when it is absent.
func (t *tx) Write(c store.Changes) error {
	const op = "firestore.Tx.Write"
	if t.written {
		return fault.Errorf(fault.Internal, op, "Write called twice in one transaction")
	}
	decidedAt, err := store.CheckChanges(op, &c)
	if err != nil {
		return err
	}
	k := c.Instance.Key
	if t.optimistic && (t.prefetched == nil || t.prefetchedKey != k) {
		// The instance was not read: nothing holds it to its value.
		return errOptimisticFailed
	}
	// The first receipt of an instance (seq 1: the instance did not
	// exist) adds its tenant to the index unless it is there: the only
	// decision that reads the tenant document, all reads coming before
	// the writes. Every other decision writes what it wrote before.
	newTenant := false
	if c.Receipt.Seq == 1 {
		_, err := t.get(t.s.tenantRef(k.Tenant))
		switch {
		case status.Code(err) == codes.NotFound:
			newTenant = true
		case err != nil:
			return wrapErr(op, err)
		}
	}
	t.written = true
	stage := func(err error) error {
		if err != nil {
			return fault.Wrap(fault.Invalid, op, err)
		}
		return nil
	}
	if newTenant {
		// In a transaction, Set, not Create: its read already keeps a
		// concurrent first receipt from creating it meanwhile, and a
		// precondition failure would surface as a Conflict of the
		// decision. An optimistic commit creates it.
		if err := stage(t.stage.absent(t.s.tenantRef(k.Tenant), tenantDoc(k.Tenant, decidedAt))); err != nil {
			return err
		}
	}
	if err := stage(t.stage.replace(t.s.instanceRef(k), t.prefetched, instanceDoc(c.Instance))); err != nil {
		return err
	}
	// The decision's outbox lives in its dedup marker (validation refuses
	// entries without one): one document for the event, its receipt and
	// its messages.
	if c.Dedup.EventID != "" {
		ref := t.s.dedupRef(k, c.Dedup.Source, c.Dedup.EventID)
		if err := stage(t.stage.absent(ref, dedupDoc(k, c.Dedup, c.Outbox, store.Shard(ref.ID), decidedAt))); err != nil {
			return err
		}
	}
	if err := stage(t.stage.create(t.s.receiptsRef(k).Doc(seqID(c.Receipt.Seq)), receiptDoc(&c.Receipt, decidedAt))); err != nil {
		return err
	}
	// One write per timer document: a timer both cancelled and armed stays
	// armed, and a timer cancelled twice is deleted once.
	timers := map[string]bool{}
	for _, e := range c.ArmTimers {
		timers[e.ID] = true
	}
	for _, id := range c.CancelTimers {
		if timers[id] {
			continue
		}
		timers[id] = true
		if err := stage(t.stage.delete(t.s.timerRef(id))); err != nil {
			return err
		}
	}
	for _, e := range c.ArmTimers {
		if err := stage(t.stage.set(t.s.timerRef(e.ID), timerDoc(e))); err != nil {
			return err
		}
	}
	return nil
}

// MoveTimer implements store.Store in one transaction over the instance
// and its timer document.
func (s *Store) MoveTimer(ctx context.Context, k governor.Key, name string, due time.Time) (governor.Timer, error) {
	const op = "firestore.MoveTimer"
	if err := store.CheckKey(op, k); err != nil {
		return governor.Timer{}, err
	}
	var old governor.Timer
	err := s.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		snap, err := t.Get(s.instanceRef(k))
		if status.Code(err) == codes.NotFound {
			return fault.Errorf(fault.NotFound, op, "%s does not exist", k)
		}
		if err != nil {
			return wrapErr(op, err)
		}
		inst, err := decodeInstance(snap)
		if err != nil {
			return err
		}
		tm, ok := inst.Timers[name]
		if !ok {
			return fault.Errorf(fault.NotFound, op, "%s has no armed timer %s", k, name)
		}
		old = tm
		tm.Due = due.UTC()
		inst.Timers[name] = tm
		if err := t.Set(s.instanceRef(k), instanceDoc(inst)); err != nil {
			return fault.Wrap(fault.Invalid, op, err)
		}
		return t.Set(s.timerRef(tm.ID), timerDoc(store.TimerEntry{Timer: tm, Key: k}))
	}, fs.MaxAttempts(s.maxAttempts))
	if err != nil {
		return governor.Timer{}, wrapErr(op, err)
	}
	return old, nil
}

// IndexTenants adds to the tenant index every tenant that has documents
// (instances, dedup markers) but no tenant document, as data written
// before the index existed has, with created_at now. It lists the tenant
// ids the database holds, missing documents included, reads them in
// batches and creates the missing ones; it is idempotent and safe to run
// while decisions commit. It returns how many it created.
func (s *Store) IndexTenants(ctx context.Context, now time.Time) (int, error) {
	const op = "firestore.IndexTenants"
	const batch = 300
	added := 0
	flush := func(refs []*fs.DocumentRef) error {
		snaps, err := s.c.GetAll(ctx, refs)
		if err != nil {
			return wrapErr(op, err)
		}
		for _, snap := range snaps {
			if snap.Exists() {
				continue
			}
			_, err := snap.Ref.Create(ctx, tenantDoc(snap.Ref.ID, now))
			switch {
			case err == nil:
				added++
			case status.Code(err) != codes.AlreadyExists:
				return wrapErr(op, err)
			}
		}
		return nil
	}
	var refs []*fs.DocumentRef
	it := s.c.Collection(colTenants).DocumentRefs(ctx)
	for {
		ref, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return added, wrapErr(op, err)
		}
		if refs = append(refs, ref); len(refs) == batch {
			if err := flush(refs); err != nil {
				return added, err
			}
			refs = refs[:0]
		}
	}
	if len(refs) > 0 {
		if err := flush(refs); err != nil {
			return added, err
		}
	}
	return added, nil
}

// wrapErr is fserr.Wrap.
func wrapErr(op string, err error) error { return fserr.Wrap(op, err) }
