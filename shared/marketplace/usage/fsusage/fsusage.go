// Package fsusage is the Firestore usage.WindowStore of the usage
// reporter. It lives in the monitor's database
// (platform.Clients.MonitorFirestore), under marketplace/{namespace}, apart
// from governor state, which the reporter only reads.
//
// Documents:
//
//	marketplace/{namespace}/usage/{entitlement}~{metric}
//	  entitlement, metric, tenant     string
//	  end, first_seen, updated_at     timestamp
//	  usage, version                  integer
//	  pending                         array of maps: start, end, recorded_at
//	                                  (timestamp), value, usage (integer),
//	                                  operation_id, consumer_id, metric_name
//	                                  (string)
//	marketplace/{namespace}/usage_blocks/{entitlement}
//	  entitlement, tenant, code, reason  string
//	  window_start, since                timestamp
//
// Cursors are read by id and by equality on entitlement (a single-field
// index); pending is never queried and may be exempt from indexing.
package fsusage

import (
	"context"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore/fserr"
	"github.com/autonomics/autonomics/shared/marketplace/usage"
)

// Collection names.
const (
	ColRoot   = "marketplace"
	ColUsage  = "usage"
	ColBlocks = "usage_blocks"
)

// DefaultNamespace is the namespace when Options.Namespace is empty.
const DefaultNamespace = "default"

// DefaultMaxAttempts bounds transaction attempts on contention.
const DefaultMaxAttempts = 10

// Options configure a Store.
type Options struct {
	// Namespace separates deployments sharing a database;
	// DefaultNamespace when empty.
	Namespace string
	// MaxAttempts bounds transaction attempts; DefaultMaxAttempts when 0.
	MaxAttempts int
}

// Store is the Firestore usage.WindowStore.
type Store struct {
	c    *fs.Client
	root *fs.DocumentRef
	o    Options
}

var _ usage.WindowStore = (*Store)(nil)

// New returns a Store using client, the client of the monitor's database.
func New(client *fs.Client, o Options) (*Store, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if !usage.ValidID(o.Namespace) {
		return nil, fault.Errorf(fault.Invalid, "fsusage.New", "namespace %q: want 1 to 128 of [A-Za-z0-9._-]", o.Namespace)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	return &Store{c: client, root: client.Collection(ColRoot).Doc(o.Namespace), o: o}, nil
}

func (s *Store) cursor(entitlement, metric string) *fs.DocumentRef {
	return s.root.Collection(ColUsage).Doc(usage.CursorID(entitlement, metric))
}

// Ping reads one cursor: a health check.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.root.Collection(ColUsage).Limit(1).Documents(ctx).GetAll()
	return fserr.Wrap("fsusage.Ping", err)
}

// Cursor reads the cursor of (entitlement, metric).
func (s *Store) Cursor(ctx context.Context, entitlement, metric string) (usage.Cursor, bool, error) {
	const op = "fsusage.Cursor"
	if !usage.ValidID(entitlement) || !usage.ValidID(metric) {
		return usage.Cursor{}, false, fault.Errorf(fault.Invalid, op, "cursor %q/%q: ids must be 1-128 of [A-Za-z0-9._-]", entitlement, metric)
	}
	snap, err := s.cursor(entitlement, metric).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return usage.Cursor{}, false, nil
	}
	if err != nil {
		return usage.Cursor{}, false, fserr.Wrap(op, err)
	}
	c, err := decodeCursor(snap)
	return c, err == nil, err
}

// Cursors reads the cursors of an entitlement, in metric order.
func (s *Store) Cursors(ctx context.Context, entitlement string) ([]usage.Cursor, error) {
	const op = "fsusage.Cursors"
	if !usage.ValidID(entitlement) {
		return nil, fault.Errorf(fault.Invalid, op, "entitlement %q: want 1-128 of [A-Za-z0-9._-]", entitlement)
	}
	snaps, err := s.root.Collection(ColUsage).Where("entitlement", "==", entitlement).Limit(usage.MaxCursors).Documents(ctx).GetAll()
	if err != nil {
		return nil, fserr.Wrap(op, err)
	}
	out := make([]usage.Cursor, 0, len(snaps))
	for _, snap := range snaps {
		c, err := decodeCursor(snap)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	// Document ids sort as {entitlement}~{metric}, which is metric order.
	return out, nil
}

// PutCursor writes c in a transaction over version c.Version-1.
func (s *Store) PutCursor(ctx context.Context, c usage.Cursor) error {
	const op = "fsusage.PutCursor"
	if err := usage.ValidCursor(c); err != nil {
		return fault.Wrap(fault.Invalid, op, err)
	}
	ref := s.cursor(c.Entitlement, c.Metric)
	err := s.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		snap, err := t.Get(ref)
		var have int64
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return err
		default:
			v, err := snap.DataAt("version")
			if err != nil {
				return fault.Errorf(fault.Internal, op, "cursor %s: no version", ref.ID)
			}
			have, _ = v.(int64)
		}
		if have != c.Version-1 {
			return fault.Errorf(fault.Conflict, op, "cursor %s is at version %d, not %d", ref.ID, have, c.Version-1)
		}
		return t.Set(ref, encodeCursor(c))
	}, fs.MaxAttempts(s.o.MaxAttempts))
	return fserr.Wrap(op, err)
}

// Block reads an entitlement's block.
func (s *Store) Block(ctx context.Context, entitlement string) (usage.Block, bool, error) {
	const op = "fsusage.Block"
	if !usage.ValidID(entitlement) {
		return usage.Block{}, false, fault.Errorf(fault.Invalid, op, "entitlement %q: want 1-128 of [A-Za-z0-9._-]", entitlement)
	}
	snap, err := s.root.Collection(ColBlocks).Doc(entitlement).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return usage.Block{}, false, nil
	}
	if err != nil {
		return usage.Block{}, false, fserr.Wrap(op, err)
	}
	var d blockDoc
	if err := snap.DataTo(&d); err != nil {
		return usage.Block{}, false, fault.Wrap(fault.Internal, op, err)
	}
	return usage.Block{Entitlement: d.Entitlement, Tenant: d.Tenant, Code: d.Code, Reason: d.Reason, WindowStart: d.WindowStart.UTC(), Since: d.Since.UTC()}, true, nil
}

// PutBlock writes b.
func (s *Store) PutBlock(ctx context.Context, b usage.Block) error {
	const op = "fsusage.PutBlock"
	if !usage.ValidID(b.Entitlement) || !usage.ValidID(b.Tenant) {
		return fault.Errorf(fault.Invalid, op, "block %q of tenant %q: ids must be 1-128 of [A-Za-z0-9._-]", b.Entitlement, b.Tenant)
	}
	d := blockDoc{Entitlement: b.Entitlement, Tenant: b.Tenant, Code: b.Code, Reason: b.Reason, WindowStart: b.WindowStart, Since: b.Since}
	_, err := s.root.Collection(ColBlocks).Doc(b.Entitlement).Set(ctx, d)
	return fserr.Wrap(op, err)
}

// DeleteBlock removes an entitlement's block.
func (s *Store) DeleteBlock(ctx context.Context, entitlement string) error {
	const op = "fsusage.DeleteBlock"
	if !usage.ValidID(entitlement) {
		return fault.Errorf(fault.Invalid, op, "entitlement %q: want 1-128 of [A-Za-z0-9._-]", entitlement)
	}
	_, err := s.root.Collection(ColBlocks).Doc(entitlement).Delete(ctx)
	return fserr.Wrap(op, err)
}

type blockDoc struct {
	Entitlement string    `firestore:"entitlement"`
	Tenant      string    `firestore:"tenant"`
	Code        string    `firestore:"code"`
	Reason      string    `firestore:"reason"`
	WindowStart time.Time `firestore:"window_start"`
	Since       time.Time `firestore:"since"`
}

type windowDoc struct {
	Start       time.Time `firestore:"start"`
	End         time.Time `firestore:"end"`
	Value       int64     `firestore:"value"`
	Usage       int64     `firestore:"usage"`
	OperationID string    `firestore:"operation_id"`
	ConsumerID  string    `firestore:"consumer_id"`
	MetricName  string    `firestore:"metric_name"`
	RecordedAt  time.Time `firestore:"recorded_at"`
}

type cursorDoc struct {
	Entitlement string      `firestore:"entitlement"`
	Metric      string      `firestore:"metric"`
	Tenant      string      `firestore:"tenant"`
	End         time.Time   `firestore:"end"`
	Usage       int64       `firestore:"usage"`
	Pending     []windowDoc `firestore:"pending"`
	Version     int64       `firestore:"version"`
	FirstSeen   time.Time   `firestore:"first_seen"`
	UpdatedAt   time.Time   `firestore:"updated_at"`
}

func encodeCursor(c usage.Cursor) cursorDoc {
	d := cursorDoc{
		Entitlement: c.Entitlement, Metric: c.Metric, Tenant: c.Tenant, End: c.End, Usage: c.Usage,
		Pending: make([]windowDoc, 0, len(c.Pending)), Version: c.Version, FirstSeen: c.FirstSeen, UpdatedAt: c.UpdatedAt,
	}
	for _, w := range c.Pending {
		d.Pending = append(d.Pending, windowDoc{
			Start: w.Start, End: w.End, Value: w.Value, Usage: w.Usage, OperationID: w.OperationID,
			ConsumerID: w.ConsumerID, MetricName: w.MetricName, RecordedAt: w.RecordedAt,
		})
	}
	return d
}

func decodeCursor(snap *fs.DocumentSnapshot) (usage.Cursor, error) {
	var d cursorDoc
	if err := snap.DataTo(&d); err != nil {
		return usage.Cursor{}, fault.Wrap(fault.Internal, "fsusage.decodeCursor "+snap.Ref.ID, err)
	}
	c := usage.Cursor{
		Entitlement: d.Entitlement, Metric: d.Metric, Tenant: d.Tenant, End: d.End.UTC(), Usage: d.Usage,
		Version: d.Version, FirstSeen: d.FirstSeen.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}
	for _, w := range d.Pending {
		c.Pending = append(c.Pending, usage.Window{
			Start: w.Start.UTC(), End: w.End.UTC(), Value: w.Value, Usage: w.Usage, OperationID: w.OperationID,
			ConsumerID: w.ConsumerID, MetricName: w.MetricName, RecordedAt: w.RecordedAt.UTC(),
		})
	}
	return c, nil
}
