package memstore

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// MaxAttempts is how many times RunTx runs a transaction that conflicts
// with concurrent commits before it gives up with a fault.Unavailable
// error.
const MaxAttempts = 100

// Page sizes of Receipts.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Store is an in-memory store.Store. The zero value is not usable; call
// New.
type Store struct {
	mu sync.RWMutex
	// rev counts commits; a document's rev is the commit that wrote it.
	rev int64
	// written counts dedup markers, to order them by writing.
	written   int64
	instances map[governor.Key]instanceRec
	dedups    map[dedupKey]dedupRec
	// markers maps a store.MarkerID to its marker's key.
	markers  map[string]dedupKey
	receipts map[governor.Key][]receiptRec
	timers   map[string]store.TimerEntry
	// tenants is the tenant index, sorted: a tenant enters it with the
	// first receipt of its first instance.
	tenants []string
	// swept is the sweep's position in each shard (Swept).
	swept [store.Shards]sweptPos
}

// sweptPos is the last marker the sweep dealt with in a shard, by
// created_at then marker id; id "" for none.
type sweptPos struct {
	at time.Time
	id string
}

// covers reports whether the marker id created at at is at or before p.
func (p sweptPos) covers(at time.Time, id string) bool {
	return p.id != "" && cmp.Or(at.Compare(p.at), store.CompareMarkers(id, p.id)) <= 0
}

// sweptPast reports whether the sweep moved past the marker id of rec.
func (s *Store) sweptPast(id string, rec dedupRec) bool {
	shard, ok := store.SweepShard(id)
	return ok && s.swept[shard].covers(rec.createdAt, id)
}

var _ store.Store = (*Store)(nil)

type instanceRec struct {
	inst governor.Instance
	rev  int64
}

type dedupKey struct {
	key        governor.Key
	source, id string
}

// dedupRec is a dedup marker and the outbox of its decision, delivered
// together.
type dedupRec struct {
	d         store.Dedup
	rev       int64
	outbox    []store.OutboxEntry
	delivered bool
	// createdAt is the earliest entry's created_at; pos the marker's rank
	// in writing order.
	createdAt time.Time
	pos       int64
}

// marker returns the marker as a transaction reads it, entries copied.
func (r dedupRec) marker(id string) store.Marker {
	m := store.Marker{ReceiptHash: r.d.ReceiptHash, Delivered: r.delivered, Outbox: make([]store.OutboxEntry, len(r.outbox))}
	for i, e := range r.outbox {
		e = cloneEntry(e)
		e.Delivered, e.Marker = r.delivered, id
		m.Outbox[i] = e
	}
	return m
}

type receiptRec struct {
	r receipt.Receipt
	// at is decided_at, parsed and truncated to microseconds.
	at time.Time
}

// docKey names a document a transaction read.
type docKey struct {
	key   governor.Key
	dedup bool
	// source and id of a dedup marker.
	source, id string
}

// New returns an empty store.
func New() *Store {
	return &Store{
		instances: map[governor.Key]instanceRec{},
		dedups:    map[dedupKey]dedupRec{},
		markers:   map[string]dedupKey{},
		receipts:  map[governor.Key][]receiptRec{},
		timers:    map[string]store.TimerEntry{},
	}
}

// normTime returns t in UTC with microsecond precision, as Firestore keeps
// timestamps.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// errConflict reports that a transaction read a document that a
// concurrent commit changed.
var errConflict = errors.New("memstore: transaction conflict")

// RunTx runs fn in an optimistic transaction: reads record the revision of
// what they read, and the commit succeeds only if none of it changed
// meanwhile; otherwise fn runs again, up to MaxAttempts times. An error
// returned by fn aborts the transaction and is returned as is.
func (s *Store) RunTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	const op = "memstore.RunTx"
	for range MaxAttempts {
		if err := ctx.Err(); err != nil {
			return fault.Wrap(fault.Unavailable, op, err)
		}
		t := &tx{s: s, reads: map[docKey]int64{}}
		if err := fn(ctx, t); err != nil {
			return err
		}
		err := s.commit(ctx, t)
		if !errors.Is(err, errConflict) {
			return err
		}
	}
	return fault.Errorf(fault.Unavailable, op, "transaction contention: gave up after %d attempts", MaxAttempts)
}

// revOf returns the revision of a document; 0 when it does not exist.
func (s *Store) revOf(k docKey) int64 {
	if k.dedup {
		return s.dedups[dedupKey{k.key, k.source, k.id}].rev
	}
	return s.instances[k.key].rev
}

func (s *Store) commit(ctx context.Context, t *tx) error {
	const op = "memstore.RunTx"
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	for k, rev := range t.reads {
		if s.revOf(k) != rev {
			return errConflict
		}
	}
	c := t.changes
	if c == nil {
		return nil
	}
	k := c.Instance.Key
	chain := s.receipts[k]
	i, exists := slices.BinarySearchFunc(chain, c.Receipt.Seq, func(r receiptRec, seq int64) int { return cmp.Compare(r.r.Seq, seq) })
	if exists {
		return fault.Errorf(fault.Conflict, op, "receipt %d of %s already exists", c.Receipt.Seq, k)
	}
	s.rev++
	s.instances[k] = instanceRec{inst: c.Instance, rev: s.rev}
	s.receipts[k] = slices.Insert(chain, i, receiptRec{r: c.Receipt, at: t.decidedAt})
	// The first receipt of an instance is the only decision that may add
	// its tenant to the index, as in the Firestore store.
	if c.Receipt.Seq == 1 {
		if j, found := slices.BinarySearch(s.tenants, k.Tenant); !found {
			s.tenants = slices.Insert(s.tenants, j, k.Tenant)
		}
	}
	if c.Dedup.EventID != "" {
		dk := dedupKey{k, c.Dedup.Source, c.Dedup.EventID}
		s.written++
		rec := dedupRec{d: c.Dedup, rev: s.rev, outbox: c.Outbox, delivered: len(c.Outbox) == 0, createdAt: t.decidedAt, pos: s.written}
		for i, e := range c.Outbox {
			if i == 0 || e.CreatedAt.Before(rec.createdAt) {
				rec.createdAt = e.CreatedAt
			}
		}
		s.dedups[dk] = rec
		s.markers[store.MarkerID(k, dk.source, dk.id)] = dk
	}
	// Cancelling first leaves armed a timer that is both cancelled and
	// armed.
	for _, id := range c.CancelTimers {
		delete(s.timers, id)
	}
	for _, e := range c.ArmTimers {
		s.timers[e.ID] = e
	}
	return nil
}

// tx is a transaction of a Store.
type tx struct {
	s         *Store
	reads     map[docKey]int64
	changes   *store.Changes
	decidedAt time.Time
}

// read records the revision of a document the transaction read.
func (t *tx) read(k docKey, rev int64) {
	if _, ok := t.reads[k]; !ok {
		t.reads[k] = rev
	}
}

// Instance implements store.Tx.
func (t *tx) Instance(k governor.Key) (governor.Instance, error) {
	const op = "memstore.Tx.Instance"
	if t.changes != nil {
		return governor.Instance{}, fault.Errorf(fault.Internal, op, "read after Write")
	}
	if err := store.CheckKey(op, k); err != nil {
		return governor.Instance{}, err
	}
	t.s.mu.RLock()
	rec, ok := t.s.instances[k]
	t.s.mu.RUnlock()
	t.read(docKey{key: k}, rec.rev)
	if !ok {
		return governor.Instance{Key: k, State: governor.StateNone}, nil
	}
	return cloneInstance(rec.inst), nil
}

// Dedup implements store.Tx.
func (t *tx) Dedup(k governor.Key, source, id string) (store.Marker, bool, error) {
	const op = "memstore.Tx.Dedup"
	if t.changes != nil {
		return store.Marker{}, false, fault.Errorf(fault.Internal, op, "read after Write")
	}
	if err := store.CheckKey(op, k); err != nil {
		return store.Marker{}, false, err
	}
	t.s.mu.RLock()
	rec, ok := t.s.dedups[dedupKey{k, source, id}]
	var m store.Marker
	if ok {
		m = rec.marker(store.MarkerID(k, source, id))
	}
	t.s.mu.RUnlock()
	t.read(docKey{key: k, dedup: true, source: source, id: id}, rec.rev)
	return m, ok, nil
}

// Write implements store.Tx. It validates c and keeps a copy of it for the
// commit.
func (t *tx) Write(c store.Changes) error {
	const op = "memstore.Tx.Write"
	if t.changes != nil {
		return fault.Errorf(fault.Internal, op, "Write called twice in one transaction")
	}
	at, err := store.CheckChanges(op, &c)
	if err != nil {
		return err
	}
	cc := store.Changes{
		Instance:     cloneInstance(c.Instance),
		Dedup:        c.Dedup,
		Receipt:      cloneReceipt(c.Receipt),
		Outbox:       make([]store.OutboxEntry, len(c.Outbox)),
		ArmTimers:    make([]store.TimerEntry, len(c.ArmTimers)),
		CancelTimers: slices.Clone(c.CancelTimers),
	}
	cc.Dedup.Key = c.Instance.Key
	cc.Dedup.ExpireAt = normTime(c.Dedup.ExpireAt)
	for i, e := range c.Outbox {
		cc.Outbox[i] = cloneEntry(e)
	}
	for i, e := range c.ArmTimers {
		e.Due = normTime(e.Due)
		cc.ArmTimers[i] = e
	}
	t.changes = &cc
	t.decidedAt = normTime(at)
	return nil
}

// Instances implements store.Store.
func (s *Store) Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error) {
	const op = "memstore.Instances"
	if err := ctx.Err(); err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	if err := store.CheckID(op, "tenant id", tenant); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []governor.Instance
	for k, rec := range s.instances {
		if k.Tenant == tenant && (domain == "" || k.Domain == domain) {
			out = append(out, cloneInstance(rec.inst))
		}
	}
	slices.SortFunc(out, func(a, b governor.Instance) int {
		return cmp.Or(cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.Subject, b.Subject))
	})
	return out, nil
}

// Chain implements store.Store. A limit <= 0 means no limit.
func (s *Store) Chain(ctx context.Context, k governor.Key, after int64, limit int) ([]receipt.Receipt, error) {
	const op = "memstore.Chain"
	if err := ctx.Err(); err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	if err := store.CheckKey(op, k); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []receipt.Receipt
	for _, rec := range s.receipts[k] {
		if rec.r.Seq <= after {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, cloneReceipt(rec.r))
	}
	return out, nil
}

// receiptPath returns the path of a receipt in the Firestore layout, the
// content of page tokens.
func receiptPath(k governor.Key, seq int64) string {
	return fmt.Sprintf("tenants/%s/instances/%s:%s/receipts/%012d", k.Tenant, k.Domain, k.Subject, seq)
}

// parseToken returns the key and seq of the receipt a page token names.
func parseToken(op, token, tenant string) (governor.Key, int64, error) {
	bad := func(why string) error {
		return fault.Errorf(fault.Invalid, op, "page token %q: %s", token, why)
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return governor.Key{}, 0, bad("not base64url")
	}
	parts := strings.Split(string(b), "/")
	if len(parts) != 6 || parts[0] != "tenants" || parts[2] != "instances" || parts[4] != "receipts" {
		return governor.Key{}, 0, bad("not a receipt")
	}
	if parts[1] != tenant {
		return governor.Key{}, 0, bad("of another tenant")
	}
	domain, subject, ok := strings.Cut(parts[3], ":")
	seq, err := strconv.ParseInt(parts[5], 10, 64)
	if !ok || err != nil || len(parts[5]) != 12 {
		return governor.Key{}, 0, bad("not a receipt")
	}
	return governor.Key{Tenant: tenant, Domain: governor.Domain(domain), Subject: subject}, seq, nil
}

// compareReceipts orders receipts of one tenant by decision time, then by
// instance document id and seq, as Firestore orders them.
func compareReceipts(a, b *receiptRec) int {
	return cmp.Or(a.at.Compare(b.at),
		strings.Compare(a.r.Domain+":"+a.r.Subject, b.r.Domain+":"+b.r.Subject),
		cmp.Compare(a.r.Seq, b.r.Seq))
}

// compareNewest is the reverse of compareReceipts.
func compareNewest(a, b *receiptRec) int { return compareReceipts(b, a) }

// Receipts implements store.Store. PageSize <= 0 means DefaultPageSize; it
// is capped at MaxPageSize.
func (s *Store) Receipts(ctx context.Context, q store.ReceiptQuery) ([]receipt.Receipt, string, error) {
	const op = "memstore.Receipts"
	if err := ctx.Err(); err != nil {
		return nil, "", fault.Wrap(fault.Unavailable, op, err)
	}
	if err := store.CheckID(op, "tenant id", q.Tenant); err != nil {
		return nil, "", err
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		return nil, "", fault.Errorf(fault.Invalid, op, "from %v after to %v", q.From, q.To)
	}
	size := q.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	from, to := normTime(q.From), normTime(q.To)
	order := compareReceipts
	if q.Newest {
		order = compareNewest
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	var cursor *receiptRec
	if q.PageToken != "" {
		k, seq, err := parseToken(op, q.PageToken, q.Tenant)
		if err != nil {
			return nil, "", err
		}
		chain := s.receipts[k]
		i, ok := slices.BinarySearchFunc(chain, seq, func(r receiptRec, seq int64) int { return cmp.Compare(r.r.Seq, seq) })
		if !ok {
			return nil, "", fault.Errorf(fault.Invalid, op, "page token %q: no such receipt", q.PageToken)
		}
		cursor = &chain[i]
	}
	var match []*receiptRec
	for k, chain := range s.receipts {
		if k.Tenant != q.Tenant || (q.Domain != "" && k.Domain != q.Domain) || (q.Subject != "" && k.Subject != q.Subject) {
			continue
		}
		for i := range chain {
			rec := &chain[i]
			if (!q.From.IsZero() && rec.at.Before(from)) || (!q.To.IsZero() && !rec.at.Before(to)) {
				continue
			}
			if cursor != nil && order(rec, cursor) <= 0 {
				continue
			}
			match = append(match, rec)
		}
	}
	slices.SortFunc(match, order)
	next := ""
	if len(match) > size {
		match = match[:size]
		last := match[size-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(receiptPath(last.r.Key(), last.r.Seq)))
	}
	out := make([]receipt.Receipt, len(match))
	for i, rec := range match {
		out[i] = cloneReceipt(rec.r)
	}
	return out, next, nil
}

// ReceiptsByExecution implements store.Store. The receipts are ordered by
// tenant, domain, subject and seq.
func (s *Store) ReceiptsByExecution(ctx context.Context, executionID string) ([]receipt.Receipt, error) {
	const op = "memstore.ReceiptsByExecution"
	if err := ctx.Err(); err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	if executionID == "" {
		return nil, fault.Errorf(fault.Invalid, op, "empty execution id")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []receipt.Receipt
	for _, chain := range s.receipts {
		for _, rec := range chain {
			if rec.r.ExecutionID == executionID {
				out = append(out, cloneReceipt(rec.r))
			}
		}
	}
	slices.SortFunc(out, compareByInstance)
	return out, nil
}

// ReceiptsByCorrelation implements store.Store.
func (s *Store) ReceiptsByCorrelation(ctx context.Context, tenant, correlationID string, limit int) ([]receipt.Receipt, error) {
	const op = "memstore.ReceiptsByCorrelation"
	if err := ctx.Err(); err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	if err := store.CheckID(op, "tenant id", tenant); err != nil {
		return nil, err
	}
	if err := store.CheckCorrelationID(op, correlationID); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var match []*receiptRec
	for k, chain := range s.receipts {
		if k.Tenant != tenant {
			continue
		}
		for i := range chain {
			if chain[i].r.CorrelationID == correlationID {
				match = append(match, &chain[i])
			}
		}
	}
	slices.SortFunc(match, compareReceipts)
	match = match[:min(len(match), store.Limit(limit))]
	out := make([]receipt.Receipt, len(match))
	for i, rec := range match {
		out[i] = cloneReceipt(rec.r)
	}
	return out, nil
}

// Tenants implements store.Store.
func (s *Store) Tenants(ctx context.Context, q store.TenantQuery) ([]string, error) {
	const op = "memstore.Tenants"
	if err := ctx.Err(); err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	if err := store.CheckTenantQuery(op, q); err != nil {
		return nil, err
	}
	limit := store.Limit(q.Limit)
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, found := slices.BinarySearch(s.tenants, max(q.Prefix, q.After))
	if found && q.After >= q.Prefix {
		i++
	}
	var out []string
	for _, id := range s.tenants[i:] {
		if len(out) == limit || !strings.HasPrefix(id, q.Prefix) {
			break
		}
		out = append(out, id)
	}
	return out, nil
}

// compareByInstance orders receipts by tenant, domain, subject and seq.
func compareByInstance(a, b receipt.Receipt) int {
	return cmp.Or(strings.Compare(a.TenantID, b.TenantID), strings.Compare(a.Domain, b.Domain),
		strings.Compare(a.Subject, b.Subject), cmp.Compare(a.Seq, b.Seq))
}

// Outbox implements store.Store. The entries are in writing order.
func (s *Store) Outbox(ctx context.Context, receiptHash string) ([]store.OutboxEntry, error) {
	const op = "memstore.Outbox"
	if err := ctx.Err(); err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	if receiptHash == "" {
		return nil, fault.Errorf(fault.Invalid, op, "empty receipt hash")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var recs []dedupRec
	var ids []string
	for dk, rec := range s.dedups {
		if rec.d.ReceiptHash == receiptHash && len(rec.outbox) > 0 {
			id := store.MarkerID(dk.key, dk.source, dk.id)
			// A decision the sweep moved past was delivered.
			rec.delivered = rec.delivered || s.sweptPast(id, rec)
			recs = append(recs, rec)
			ids = append(ids, id)
		}
	}
	idx := make([]int, len(recs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(recs[a].pos, recs[b].pos) })
	var out []store.OutboxEntry
	for _, i := range idx {
		for _, e := range recs[i].marker(ids[i]).Outbox {
			if e.ReceiptHash == receiptHash {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// Undelivered implements store.Store: the entries of the undelivered
// markers created before before, up to limit markers (<= 0: no limit)
// taken by created_at then marker id, returned by created_at then entry
// id.
func (s *Store) Undelivered(ctx context.Context, before time.Time, limit int) ([]store.OutboxEntry, error) {
	const op = "memstore.Undelivered"
	if err := ctx.Err(); err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	before = normTime(before)
	type found struct {
		id  string
		rec dedupRec
	}
	var ms []found
	s.mu.RLock()
	for dk, rec := range s.dedups {
		if !rec.delivered && rec.createdAt.Before(before) {
			if id := store.MarkerID(dk.key, dk.source, dk.id); !s.sweptPast(id, rec) {
				ms = append(ms, found{id, rec})
			}
		}
	}
	slices.SortFunc(ms, func(a, b found) int {
		return cmp.Or(a.rec.createdAt.Compare(b.rec.createdAt), store.CompareMarkers(a.id, b.id))
	})
	if limit > 0 && len(ms) > limit {
		ms = ms[:limit]
	}
	var out []store.OutboxEntry
	for _, m := range ms {
		out = append(out, store.SortEntries(m.rec.marker(m.id).Outbox)...)
	}
	s.mu.RUnlock()
	return out, nil
}

// MarkDelivered implements store.Store. Ids that name no marker are
// ignored.
func (s *Store) MarkDelivered(ctx context.Context, markers ...string) error {
	const op = "memstore.MarkDelivered"
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range markers {
		dk, ok := s.markers[id]
		if !ok {
			continue
		}
		if rec := s.dedups[dk]; !rec.delivered {
			s.rev++
			rec.delivered, rec.rev = true, s.rev
			s.dedups[dk] = rec
		}
	}
	return nil
}

// Swept implements store.Store.
func (s *Store) Swept(ctx context.Context, last ...store.OutboxEntry) error {
	const op = "memstore.Swept"
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range last {
		shard, ok := store.SweepShard(e.Marker)
		if !ok {
			continue
		}
		if at := normTime(e.CreatedAt); !s.swept[shard].covers(at, e.Marker) {
			s.swept[shard] = sweptPos{at: at, id: e.Marker}
		}
	}
	return nil
}

// DueTimers implements store.Store. Timers due at the same time are
// ordered by id; a limit <= 0 means no limit.
func (s *Store) DueTimers(ctx context.Context, t time.Time, limit int) ([]store.TimerEntry, error) {
	const op = "memstore.DueTimers"
	if err := ctx.Err(); err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	t = normTime(t)
	s.mu.RLock()
	var out []store.TimerEntry
	for _, e := range s.timers {
		if !e.Due.After(t) {
			out = append(out, e)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b store.TimerEntry) int {
		return cmp.Or(a.Due.Compare(b.Due), strings.Compare(a.ID, b.ID))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DeleteTimer implements store.Store.
func (s *Store) DeleteTimer(ctx context.Context, id string) error {
	const op = "memstore.DeleteTimer"
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	if err := store.CheckID(op, "timer id", id); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.timers, id)
	s.mu.Unlock()
	return nil
}

// DeleteTimers implements store.Store in one step.
func (s *Store) DeleteTimers(ctx context.Context, ids ...string) error {
	const op = "memstore.DeleteTimers"
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	for _, id := range ids {
		if err := store.CheckID(op, "timer id", id); err != nil {
			return err
		}
	}
	s.mu.Lock()
	for _, id := range ids {
		delete(s.timers, id)
	}
	s.mu.Unlock()
	return nil
}

// MoveTimer implements store.Store.
func (s *Store) MoveTimer(ctx context.Context, k governor.Key, name string, due time.Time) (governor.Timer, error) {
	const op = "memstore.MoveTimer"
	if err := ctx.Err(); err != nil {
		return governor.Timer{}, fault.Wrap(fault.Unavailable, op, err)
	}
	if err := store.CheckKey(op, k); err != nil {
		return governor.Timer{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.instances[k]
	if !ok {
		return governor.Timer{}, fault.Errorf(fault.NotFound, op, "%s does not exist", k)
	}
	tm, ok := rec.inst.Timers[name]
	if !ok {
		return governor.Timer{}, fault.Errorf(fault.NotFound, op, "%s has no armed timer %s", k, name)
	}
	old := tm
	tm.Due = normTime(due)
	inst := cloneInstance(rec.inst)
	inst.Timers[name] = tm
	s.rev++
	s.instances[k] = instanceRec{inst: inst, rev: s.rev}
	s.timers[tm.ID] = store.TimerEntry{Timer: tm, Key: k}
	return old, nil
}

// cloneInstance returns a deep copy of inst with its times normalised and
// empty data and timers as nil.
func cloneInstance(inst governor.Instance) governor.Instance {
	out := inst
	out.Data = nil
	if len(inst.Data) > 0 {
		out.Data = slices.Clone(inst.Data)
	}
	out.Timers = nil
	if len(inst.Timers) > 0 {
		out.Timers = make(map[string]governor.Timer, len(inst.Timers))
		for name, t := range inst.Timers {
			out.Timers[name] = governor.Timer{Name: name, ID: t.ID, Due: normTime(t.Due)}
		}
	}
	out.UpdatedAt = normTime(inst.UpdatedAt)
	return out
}

// cloneReceipt returns a deep copy of r.
func cloneReceipt(r receipt.Receipt) receipt.Receipt {
	r.Actions = slices.Clone(r.Actions)
	if r.Actions == nil {
		r.Actions = []receipt.Action{}
	}
	return r
}

// cloneEntry returns a deep copy of e with its time normalised and empty
// data and attributes as nil.
func cloneEntry(e store.OutboxEntry) store.OutboxEntry {
	data := e.Data
	e.Data = nil
	if len(data) > 0 {
		e.Data = slices.Clone(data)
	}
	if len(e.Attributes) > 0 {
		e.Attributes = maps.Clone(e.Attributes)
	} else {
		e.Attributes = nil
	}
	e.CreatedAt = normTime(e.CreatedAt)
	return e
}
