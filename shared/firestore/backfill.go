package firestore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/store"
)

// colLegacyOutbox is the global outbox collection of the versions before
// the outbox moved into the dedup markers; only DrainLegacyOutbox reads it.
const colLegacyOutbox = "outbox"

// Page sizes of the backfills: documents read per query, and so written
// per BulkWriter at most.
const (
	DefaultBackfillPage = 500
	MaxBackfillPage     = 500
)

// BackfillOptions configure BackfillTimerShards and DrainLegacyOutbox.
type BackfillOptions struct {
	// Page is how many documents one query reads, 1 to MaxBackfillPage;
	// 0 means DefaultBackfillPage. Only one page is held at a time.
	Page int
	// DryRun only counts: nothing is written or published.
	DryRun bool
}

// Backfill is what a backfill found and did.
type Backfill struct {
	// Read is how many documents it read.
	Read int
	// Pending is how many of them needed the change: timers without
	// their shard, legacy outbox entries not delivered.
	Pending int
	// Updated is how many it changed: timers given their shard, legacy
	// entries published and marked delivered. Always 0 in a dry run.
	Updated int
}

// backfillPage checks the page size of opts.
func backfillPage(op string, opts BackfillOptions) (int, error) {
	switch {
	case opts.Page == 0:
		return DefaultBackfillPage, nil
	case opts.Page < 0 || opts.Page > MaxBackfillPage:
		return 0, fault.Errorf(fault.Invalid, op, "page %d: want 1 to %d", opts.Page, MaxBackfillPage)
	}
	return opts.Page, nil
}

// BackfillTimerShards gives every timer document its shard field
// (store.Shard of its id, as the current writer sets it) where the field
// is missing or holds another value: timers written before the field
// existed are not listed by DueTimers, so they would never fire. It reads
// the timers collection in document id order (no index needed), a page
// at a time and the shard field alone, and updates each page's stale
// documents through one BulkWriter; a timer deleted meanwhile is skipped.
// It is idempotent: a second run updates nothing. Run it once no writer
// of the previous version is left, or again until Pending is 0: such a
// writer rewrites a timer whole, without the field.
func (s *Store) BackfillTimerShards(ctx context.Context, opts BackfillOptions) (Backfill, error) {
	const op = "firestore.BackfillTimerShards"
	var b Backfill
	page, err := backfillPage(op, opts)
	if err != nil {
		return b, err
	}
	var last *fs.DocumentSnapshot
	for {
		q := s.c.Collection(colTimers).Select("shard").OrderBy(fs.DocumentID, fs.Asc).Limit(page)
		if last != nil {
			q = q.StartAfter(last)
		}
		snaps, err := q.Documents(ctx).GetAll()
		if err != nil {
			return b, wrapErr(op, err)
		}
		var stale []*fs.DocumentRef
		for _, snap := range snaps {
			b.Read++
			if shard, ok := snap.Data()["shard"].(int64); !ok || shard != int64(store.Shard(snap.Ref.ID)) {
				stale = append(stale, snap.Ref)
			}
		}
		b.Pending += len(stale)
		if !opts.DryRun {
			n, err := s.updateEach(ctx, op, stale, func(ref *fs.DocumentRef) []fs.Update {
				return []fs.Update{{Path: "shard", Value: int64(store.Shard(ref.ID))}}
			})
			b.Updated += n
			if err != nil {
				return b, err
			}
		}
		if len(snaps) < page {
			return b, nil
		}
		last = snaps[len(snaps)-1]
	}
}

// legacyEntry is an undelivered entry of the former global outbox.
type legacyEntry struct {
	ref       *fs.DocumentRef
	msg       store.Message
	createdAt time.Time
	position  int64
}

// decodeLegacyEntry decodes a document of the former global outbox:
// topic, ordering_key, receipt_hash (strings), data (bytes), attributes
// (map of strings), created_at (timestamp), delivered (boolean), position
// (integer, its index in its decision).
func decodeLegacyEntry(snap *fs.DocumentSnapshot) (legacyEntry, error) {
	const op = "firestore.decodeLegacyEntry"
	d := newDecoder(snap)
	e := legacyEntry{
		ref: snap.Ref,
		msg: store.Message{
			Topic:       d.str("topic"),
			Data:        d.bytes("data"),
			OrderingKey: d.str("ordering_key"),
		},
		createdAt: d.time("created_at"),
		position:  d.int("position"),
	}
	if attrs := d.maps("attributes"); len(attrs) > 0 {
		e.msg.Attributes = make(map[string]string, len(attrs))
		for k := range attrs {
			e.msg.Attributes[k] = str(d, attrs, k)
		}
	}
	if d.err == nil && e.msg.Topic == "" {
		d.err = errors.New("field topic is empty")
	}
	if d.err != nil {
		return legacyEntry{}, d.fail(op)
	}
	return e, nil
}

// DrainLegacyOutbox publishes, with publish, every entry of the former
// global outbox collection (outbox/{id}) that is not delivered, as the
// store.Message it was (topic, data, attributes, ordering key), and marks
// it delivered: those entries are not swept any more. It reads the
// entries where delivered == false in document id order, a page at a time
// (the automatic single-field index on delivered serves that query: no
// composite index), publishes each page's entries one at a time in the
// order the previous sweep published them (created_at, then position in
// their decision, then id), and marks the published ones through one
// BulkWriter. Order is kept within a page only: consumers deduplicate by
// message id and tolerate reordering, as after any sweep.
//
// A publish failure stops the drain with an Unavailable error once the
// entries published before it are marked, so that a second run resumes
// with the first entry not published; an entry published but not marked
// (the marking failed) is published again by the next run. A malformed
// entry stops it with an Internal error before its page is published. A
// second run after a complete one publishes nothing. With opts.DryRun
// publish is not called and may be nil.
func (s *Store) DrainLegacyOutbox(ctx context.Context, publish func(context.Context, store.Message) error, opts BackfillOptions) (Backfill, error) {
	const op = "firestore.DrainLegacyOutbox"
	var b Backfill
	page, err := backfillPage(op, opts)
	if err != nil {
		return b, err
	}
	if publish == nil && !opts.DryRun {
		return b, fault.Errorf(fault.Invalid, op, "no publish function")
	}
	var last *fs.DocumentSnapshot
	for {
		q := s.c.Collection(colLegacyOutbox).Where("delivered", "==", false).
			OrderBy(fs.DocumentID, fs.Asc).Limit(page)
		if last != nil {
			q = q.StartAfter(last)
		}
		snaps, err := q.Documents(ctx).GetAll()
		if err != nil {
			return b, wrapErr(op, err)
		}
		entries := make([]legacyEntry, 0, len(snaps))
		for _, snap := range snaps {
			e, err := decodeLegacyEntry(snap)
			if err != nil {
				return b, err
			}
			entries = append(entries, e)
		}
		b.Read += len(snaps)
		b.Pending += len(entries)
		if !opts.DryRun {
			slices.SortStableFunc(entries, func(x, y legacyEntry) int {
				return cmp.Or(x.createdAt.Compare(y.createdAt), cmp.Compare(x.position, y.position), strings.Compare(x.ref.ID, y.ref.ID))
			})
			published := make([]*fs.DocumentRef, 0, len(entries))
			var perr error
			for _, e := range entries {
				if err := publish(ctx, e.msg); err != nil {
					perr = fault.Wrap(fault.Unavailable, op+" publish outbox/"+e.ref.ID+" to "+e.msg.Topic, err)
					break
				}
				published = append(published, e.ref)
			}
			n, err := s.updateEach(ctx, op, published, func(*fs.DocumentRef) []fs.Update {
				return []fs.Update{{Path: "delivered", Value: true}}
			})
			b.Updated += n
			if perr != nil {
				return b, perr
			}
			if err != nil {
				return b, err
			}
		}
		if len(snaps) < page {
			return b, nil
		}
		last = snaps[len(snaps)-1]
	}
}

// updateEach applies update(ref) to each document of refs, which must be
// distinct, through one BulkWriter, and returns how many it updated.
// Documents that no longer exist are skipped; the first other failure is
// returned once every write queued has finished.
func (s *Store) updateEach(ctx context.Context, op string, refs []*fs.DocumentRef, update func(*fs.DocumentRef) []fs.Update) (int, error) {
	if len(refs) == 0 {
		return 0, nil
	}
	bw := s.c.BulkWriter(ctx)
	jobs := make([]*fs.BulkWriterJob, 0, len(refs))
	var first error
	for _, ref := range refs {
		job, err := bw.Update(ref, update(ref))
		if err != nil {
			first = wrapErr(op, err)
			break
		}
		jobs = append(jobs, job)
	}
	bw.End()
	n := 0
	for _, job := range jobs {
		_, err := job.Results()
		switch {
		case err == nil:
			n++
		case status.Code(err) == codes.NotFound:
		case first == nil:
			first = wrapErr(op, err)
		}
	}
	return n, first
}
