package firestore

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// getAll runs q and decodes every document with decode.
func getAll[T any](ctx context.Context, op string, q fs.Query, decode func(*fs.DocumentSnapshot) (T, error)) ([]T, error) {
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, wrapErr(op, err)
	}
	out := make([]T, 0, len(snaps))
	for _, snap := range snaps {
		v, err := decode(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Instances implements store.Store.
func (s *Store) Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error) {
	const op = "firestore.Instances"
	if err := store.CheckID(op, "tenant id", tenant); err != nil {
		return nil, err
	}
	q := s.tenantRef(tenant).Collection(colInstances).Query
	if domain != "" {
		q = q.Where("domain", "==", string(domain))
	}
	out, err := getAll(ctx, op, q, decodeInstance)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b governor.Instance) int {
		return cmp.Or(cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.Subject, b.Subject))
	})
	return out, nil
}

// Chain implements store.Store: it reads the instance's receipts in
// document id order. A limit <= 0 means no limit.
func (s *Store) Chain(ctx context.Context, k governor.Key, after int64, limit int) ([]receipt.Receipt, error) {
	const op = "firestore.Chain"
	if err := store.CheckKey(op, k); err != nil {
		return nil, err
	}
	q := s.receiptsRef(k).OrderBy(fs.DocumentID, fs.Asc)
	if after > 0 {
		q = q.StartAfter(seqID(after))
	}
	if limit > 0 {
		q = q.Limit(limit)
	}
	return getAll(ctx, op, q, decodeReceipt)
}

// Receipts implements store.Store with a collection-group query on
// receipts, ordered by decided_at_ts and document path, both descending
// when q.Newest. PageSize <= 0
// means DefaultPageSize; it is capped at MaxPageSize. The page token is the
// base64url of the last receipt's document path.
func (s *Store) Receipts(ctx context.Context, q store.ReceiptQuery) ([]receipt.Receipt, string, error) {
	const op = "firestore.Receipts"
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

	query := s.c.CollectionGroup(colReceipts).Where("tenant_id", "==", q.Tenant)
	if q.Domain != "" {
		query = query.Where("domain", "==", string(q.Domain))
	}
	if q.Subject != "" {
		query = query.Where("subject", "==", q.Subject)
	}
	if !q.From.IsZero() {
		query = query.Where("decided_at_ts", ">=", q.From)
	}
	if !q.To.IsZero() {
		query = query.Where("decided_at_ts", "<", q.To)
	}
	dir := fs.Asc
	if q.Newest {
		dir = fs.Desc
	}
	query = query.OrderBy("decided_at_ts", dir).OrderBy(fs.DocumentID, dir)
	if q.PageToken != "" {
		ref, err := s.tokenRef(op, q.PageToken, q.Tenant)
		if err != nil {
			return nil, "", err
		}
		snap, err := ref.Get(ctx)
		if status.Code(err) == codes.NotFound {
			return nil, "", fault.Errorf(fault.Invalid, op, "page token %q: no such receipt", q.PageToken)
		}
		if err != nil {
			return nil, "", wrapErr(op, err)
		}
		query = query.StartAfter(snap)
	}
	snaps, err := query.Limit(size + 1).Documents(ctx).GetAll()
	if err != nil {
		return nil, "", wrapErr(op, err)
	}
	next := ""
	if len(snaps) > size {
		snaps = snaps[:size]
		next = base64.RawURLEncoding.EncodeToString([]byte(relativePath(snaps[size-1].Ref)))
	}
	out := make([]receipt.Receipt, len(snaps))
	for i, snap := range snaps {
		if out[i], err = decodeReceipt(snap); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// relativePath returns the path of ref below the database's documents.
func relativePath(ref *fs.DocumentRef) string {
	const sep = "/documents/"
	p := ref.Path
	if i := strings.Index(p, sep); i >= 0 {
		return p[i+len(sep):]
	}
	return p
}

// tokenRef returns the receipt document a page token names, which must
// belong to tenant.
func (s *Store) tokenRef(op, token, tenant string) (*fs.DocumentRef, error) {
	bad := func(why string) error {
		return fault.Errorf(fault.Invalid, op, "page token %q: %s", token, why)
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, bad("not base64url")
	}
	parts := strings.Split(string(b), "/")
	if len(parts) != 6 || parts[0] != colTenants || parts[2] != colInstances || parts[4] != colReceipts {
		return nil, bad("not a receipt")
	}
	if parts[1] != tenant {
		return nil, bad("of another tenant")
	}
	for _, p := range parts {
		if store.CheckID(op, "id", p) != nil {
			return nil, bad("not a receipt")
		}
	}
	return s.c.Doc(string(b)), nil
}

// ReceiptsByExecution implements store.Store with a collection-group query
// on execution_id. The receipts are ordered by tenant, domain, subject and
// seq.
func (s *Store) ReceiptsByExecution(ctx context.Context, executionID string) ([]receipt.Receipt, error) {
	const op = "firestore.ReceiptsByExecution"
	if executionID == "" {
		return nil, fault.Errorf(fault.Invalid, op, "empty execution id")
	}
	out, err := getAll(ctx, op, s.c.CollectionGroup(colReceipts).Where("execution_id", "==", executionID), decodeReceipt)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b receipt.Receipt) int {
		return cmp.Or(strings.Compare(a.TenantID, b.TenantID), strings.Compare(a.Domain, b.Domain),
			strings.Compare(a.Subject, b.Subject), cmp.Compare(a.Seq, b.Seq))
	})
	return out, nil
}

// ReceiptsByCorrelation implements store.Store with a collection-group
// query on receipts with tenant_id == and correlation_id ==, ordered by
// decided_at_ts and document path.
func (s *Store) ReceiptsByCorrelation(ctx context.Context, tenant, correlationID string, limit int) ([]receipt.Receipt, error) {
	const op = "firestore.ReceiptsByCorrelation"
	if err := store.CheckID(op, "tenant id", tenant); err != nil {
		return nil, err
	}
	if err := store.CheckCorrelationID(op, correlationID); err != nil {
		return nil, err
	}
	q := s.c.CollectionGroup(colReceipts).Where("tenant_id", "==", tenant).Where("correlation_id", "==", correlationID).
		OrderBy("decided_at_ts", fs.Asc).OrderBy(fs.DocumentID, fs.Asc).Limit(store.Limit(limit))
	return getAll(ctx, op, q, decodeReceipt)
}

// Tenants implements store.Store with a query on the tenants collection
// in document id order, between cursors: after q.After, and from q.Prefix
// to the first id past every id starting with it. The ids are checked
// against the prefix again, so that a database comparing ids otherwise
// than by code point returns no stray id.
func (s *Store) Tenants(ctx context.Context, q store.TenantQuery) ([]string, error) {
	const op = "firestore.Tenants"
	if err := store.CheckTenantQuery(op, q); err != nil {
		return nil, err
	}
	query := s.c.Collection(colTenants).Select().OrderBy(fs.DocumentID, fs.Asc)
	if q.After >= q.Prefix && q.After != "" {
		query = query.StartAfter(q.After)
	} else if q.Prefix != "" {
		query = query.StartAt(q.Prefix)
	}
	if end, ok := store.PrefixEnd(q.Prefix); ok {
		query = query.EndBefore(end)
	}
	snaps, err := query.Limit(store.Limit(q.Limit)).Documents(ctx).GetAll()
	if err != nil {
		return nil, wrapErr(op, err)
	}
	out := make([]string, 0, len(snaps))
	for _, snap := range snaps {
		if id := snap.Ref.ID; strings.HasPrefix(id, q.Prefix) {
			out = append(out, id)
		}
	}
	return out, nil
}

// Outbox implements store.Store with a collection-group query on the
// dedup markers with receipt_hash ==. The entries are in writing order.
func (s *Store) Outbox(ctx context.Context, receiptHash string) ([]store.OutboxEntry, error) {
	const op = "firestore.Outbox"
	if receiptHash == "" {
		return nil, fault.Errorf(fault.Invalid, op, "empty receipt hash")
	}
	snaps, err := s.c.CollectionGroup(colDedup).Where("receipt_hash", "==", receiptHash).Documents(ctx).GetAll()
	if err != nil {
		return nil, wrapErr(op, err)
	}
	var swept [store.Shards]sweepPosition
	if len(snaps) > 0 {
		if swept, err = s.sweepPositions(ctx, op); err != nil {
			return nil, err
		}
	}
	var out []store.OutboxEntry
	for _, snap := range snaps {
		m, err := markerOf(snap)
		if err != nil {
			return nil, err
		}
		// A decision the sweep moved past was delivered.
		at, _ := snap.DataAt("created_at")
		t, _ := at.(time.Time)
		p := swept[store.Shard(snap.Ref.ID)]
		delivered := m.Delivered || (p.path != "" && !p.after(t, relativePath(snap.Ref)))
		for _, e := range m.Outbox {
			if e.ReceiptHash == receiptHash {
				e.Delivered = delivered
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// undeliveredMarker is an undelivered dedup marker found by Undelivered.
type undeliveredMarker struct {
	createdAt time.Time
	path      string
	outbox    []store.OutboxEntry
}

// Undelivered implements store.Store: it reads the sweep's positions (one
// document), then runs one collection-group query on the dedup markers
// per shard, in parallel: shard ==, delivered == false, created_at <
// before, ordered by created_at then document path, starting after the
// shard's position, each limited to limit markers. The markers are merged
// in that order (document paths compared segment by segment, as
// Firestore compares them), and each one's entries returned together, by
// created_at then id.
func (s *Store) Undelivered(ctx context.Context, before time.Time, limit int) ([]store.OutboxEntry, error) {
	const op = "firestore.Undelivered"
	swept, err := s.sweepPositions(ctx, op)
	if err != nil {
		return nil, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		found []undeliveredMarker
		errs  = make([]error, store.Shards)
	)
	for shard := range store.Shards {
		wg.Go(func() {
			q := s.c.CollectionGroup(colDedup).Where("shard", "==", int64(shard)).Where("delivered", "==", false).
				Where("created_at", "<", before).OrderBy("created_at", fs.Asc).OrderBy(fs.DocumentID, fs.Asc)
			if p := swept[shard]; p.path != "" {
				q = q.StartAfter(p.at, s.c.Doc(p.path))
			}
			if limit > 0 {
				q = q.Limit(limit)
			}
			snaps, err := q.Documents(ctx).GetAll()
			if err != nil {
				errs[shard] = wrapErr(op, err)
				return
			}
			for _, snap := range snaps {
				m, err := markerOf(snap)
				if err != nil {
					errs[shard] = err
					return
				}
				at, _ := snap.DataAt("created_at")
				t, _ := at.(time.Time)
				mu.Lock()
				found = append(found, undeliveredMarker{createdAt: t, path: relativePath(snap.Ref), outbox: m.Outbox})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(found, func(a, b undeliveredMarker) int {
		return cmp.Or(a.createdAt.Compare(b.createdAt), comparePaths(a.path, b.path))
	})
	if limit > 0 && len(found) > limit {
		found = found[:limit]
	}
	var out []store.OutboxEntry
	for _, m := range found {
		out = append(out, store.SortEntries(m.outbox)...)
	}
	return out, nil
}

// sweepPosition is how far the sweep went in one shard: the created_at
// and document path of the last marker it dealt with ("" for none).
type sweepPosition struct {
	at   time.Time
	path string
}

// after reports whether a marker at (at, path) comes after p in the
// sweep's order.
func (p sweepPosition) after(at time.Time, path string) bool {
	return cmp.Or(at.Compare(p.at), comparePaths(path, p.path)) > 0
}

// comparePaths orders two document paths as Firestore orders document
// names: segment by segment, each bytewise. For markers, whose paths are
// tenants/{tenant}/dedup/{hash}, it is store.CompareMarkers.
func comparePaths(a, b string) int {
	for a != "" || b != "" {
		sa, ra, _ := strings.Cut(a, "/")
		sb, rb, _ := strings.Cut(b, "/")
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
		a, b = ra, rb
	}
	return 0
}

// sweepField is the field of the sweep document holding a shard's
// position.
func sweepField(shard int) string { return fmt.Sprintf("s%02d", shard) }

// sweepPositions reads the sweep document.
func (s *Store) sweepPositions(ctx context.Context, op string) ([store.Shards]sweepPosition, error) {
	snap, err := s.sweepRef().Get(ctx)
	if err != nil && status.Code(err) != codes.NotFound {
		return [store.Shards]sweepPosition{}, wrapErr(op, err)
	}
	return decodeSweep(op, snap)
}

// decodeSweep decodes the sweep document; a missing one has no
// positions.
func decodeSweep(op string, snap *fs.DocumentSnapshot) ([store.Shards]sweepPosition, error) {
	var out [store.Shards]sweepPosition
	if snap == nil || !snap.Exists() {
		return out, nil
	}
	for shard := range store.Shards {
		m, ok := snap.Data()[sweepField(shard)].(map[string]any)
		if !ok {
			continue
		}
		d := &decoder{path: snap.Ref.Path, m: m}
		out[shard] = sweepPosition{at: d.time("created_at"), path: d.str("path")}
		if d.err != nil {
			return out, d.fail(op)
		}
	}
	return out, nil
}

// Swept implements store.Store in one transaction on the sweep
// document: it reads the positions and merges the shards that move
// forward.
func (s *Store) Swept(ctx context.Context, last ...store.OutboxEntry) error {
	const op = "firestore.Swept"
	var pos [store.Shards]*sweepPosition
	for _, e := range last {
		tenant, hash, err := store.ParseMarkerID(op, e.Marker)
		if err != nil {
			continue
		}
		shard := store.Shard(hash)
		path := relativePath(s.tenantRef(tenant).Collection(colDedup).Doc(hash))
		if p := pos[shard]; p == nil || p.after(e.CreatedAt, path) {
			pos[shard] = &sweepPosition{at: e.CreatedAt, path: path}
		}
	}
	if !slices.ContainsFunc(pos[:], func(p *sweepPosition) bool { return p != nil }) {
		return nil
	}
	err := s.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		snap, err := t.Get(s.sweepRef())
		if err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		cur, err := decodeSweep(op, snap)
		if err != nil {
			return err
		}
		doc := map[string]any{}
		for shard, p := range pos {
			if p != nil && (cur[shard].path == "" || cur[shard].after(p.at, p.path)) {
				doc[sweepField(shard)] = map[string]any{"created_at": p.at, "path": p.path}
			}
		}
		if len(doc) == 0 {
			return nil
		}
		return t.Set(s.sweepRef(), doc, fs.MergeAll)
	}, fs.MaxAttempts(s.maxAttempts))
	return wrapErr(op, err)
}

// MarkDelivered implements store.Store: one update of delivered per
// marker, a single commit for one marker (the engine's case) and a
// BulkWriter for several (the sweep's). Ids that name no marker, malformed
// ones included, are ignored, as are missing markers.
func (s *Store) MarkDelivered(ctx context.Context, markers ...string) error {
	const op = "firestore.MarkDelivered"
	seen := map[string]bool{}
	var refs []*fs.DocumentRef
	for _, id := range markers {
		tenant, hash, err := store.ParseMarkerID(op, id)
		if err != nil || seen[id] {
			continue
		}
		seen[id] = true
		refs = append(refs, s.tenantRef(tenant).Collection(colDedup).Doc(hash))
	}
	update := []fs.Update{{Path: "delivered", Value: true}}
	switch len(refs) {
	case 0:
		return nil
	case 1:
		_, err := refs[0].Update(ctx, update)
		if err != nil && status.Code(err) != codes.NotFound {
			return wrapErr(op, err)
		}
		return nil
	}
	bw := s.c.BulkWriter(ctx)
	jobs := make([]*fs.BulkWriterJob, 0, len(refs))
	for _, ref := range refs {
		job, err := bw.Update(ref, update)
		if err != nil {
			bw.End()
			return wrapErr(op, err)
		}
		jobs = append(jobs, job)
	}
	bw.End()
	var errs []error
	for _, job := range jobs {
		if _, err := job.Results(); err != nil && status.Code(err) != codes.NotFound {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return wrapErr(op, errs[0])
	}
	return nil
}
