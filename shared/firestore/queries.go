package firestore

import (
	"cmp"
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
		return nil, "", governor.Errorf(governor.Invalid, op, "from %v after to %v", q.From, q.To)
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
			return nil, "", governor.Errorf(governor.Invalid, op, "page token %q: no such receipt", q.PageToken)
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
		return governor.Errorf(governor.Invalid, op, "page token %q: %s", token, why)
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
		return nil, governor.Errorf(governor.Invalid, op, "empty execution id")
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

// Outbox implements store.Store. The entries are in writing order.
func (s *Store) Outbox(ctx context.Context, receiptHash string) ([]store.OutboxEntry, error) {
	const op = "firestore.Outbox"
	if receiptHash == "" {
		return nil, governor.Errorf(governor.Invalid, op, "empty receipt hash")
	}
	recs, err := getAll(ctx, op, s.c.Collection(colOutbox).Where("receipt_hash", "==", receiptHash), decodeOutbox)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(recs, func(a, b outboxRecord) int {
		return cmp.Or(cmp.Compare(a.position, b.position), strings.Compare(a.ID, b.ID))
	})
	out := make([]store.OutboxEntry, len(recs))
	for i, r := range recs {
		out[i] = r.OutboxEntry
	}
	return out, nil
}

// Undelivered implements store.Store. Entries created at the same time are
// ordered by id; a limit <= 0 means no limit.
func (s *Store) Undelivered(ctx context.Context, before time.Time, limit int) ([]store.OutboxEntry, error) {
	const op = "firestore.Undelivered"
	q := s.c.Collection(colOutbox).Where("delivered", "==", false).Where("created_at", "<", before).
		OrderBy("created_at", fs.Asc).OrderBy(fs.DocumentID, fs.Asc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	recs, err := getAll(ctx, op, q, decodeOutbox)
	if err != nil {
		return nil, err
	}
	out := make([]store.OutboxEntry, len(recs))
	for i, r := range recs {
		out[i] = r.OutboxEntry
	}
	return out, nil
}

// MarkDelivered implements store.Store. Unknown ids are ignored.
func (s *Store) MarkDelivered(ctx context.Context, ids ...string) error {
	const op = "firestore.MarkDelivered"
	for _, id := range ids {
		if err := store.CheckID(op, "outbox id", id); err != nil {
			return err
		}
	}
	for _, id := range ids {
		_, err := s.outboxRef(id).Update(ctx, []fs.Update{{Path: "delivered", Value: true}})
		if err != nil && status.Code(err) != codes.NotFound {
			return wrapErr(op, err)
		}
	}
	return nil
}

// DueTimers implements store.Store. Timers due at the same time are
// ordered by id; a limit <= 0 means no limit.
func (s *Store) DueTimers(ctx context.Context, t time.Time, limit int) ([]store.TimerEntry, error) {
	const op = "firestore.DueTimers"
	q := s.c.Collection(colTimers).Where("due", "<=", t).OrderBy("due", fs.Asc).OrderBy(fs.DocumentID, fs.Asc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	return getAll(ctx, op, q, decodeTimer)
}

// DeleteTimer implements store.Store.
func (s *Store) DeleteTimer(ctx context.Context, id string) error {
	const op = "firestore.DeleteTimer"
	if err := store.CheckID(op, "timer id", id); err != nil {
		return err
	}
	_, err := s.timerRef(id).Delete(ctx)
	return wrapErr(op, err)
}
