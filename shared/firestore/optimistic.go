//lint:file-ignore SA1019 WriteBatch is the client's only atomic commit outside a transaction: a Transaction always costs a BeginTransaction round trip, and BulkWriter's writes are not atomic.

package firestore

import (
	"context"
	"errors"
	"sort"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/store"
)

// errOptimisticFailed ends an optimistic commit that cannot serve the
// function (a read it cannot hold) or whose commit lost a race: RunTx
// runs the function again in a Firestore transaction.
var errOptimisticFailed = errors.New("firestore: optimistic commit not applicable")

// runOptimistic runs fn once as an optimistic commit: Dedup reads the
// marker and the instance in one BatchGetDocuments outside any
// transaction, and the writes go in one Commit, atomic like a
// transaction's, with a precondition for each document read: the
// marker must still be absent, the instance absent or unchanged since
// its read (its update time), and the receipt absent. A commit whose
// preconditions fail wrote nothing, and a commit that succeeds is exactly
// what a transaction reading the same documents would have committed; a
// plain decision thus costs a read, a commit and no BeginTransaction.
//
// It returns errOptimisticFailed when fn reads anything else (an
// instance its row needs, a second marker) or when the commit fails a
// precondition or aborts: the caller runs fn in a transaction, which
// serves every read and resolves the race as it always has (a concurrent
// duplicate is found as a duplicate, a receipt at a taken seq is a
// Conflict).
func (s *Store) runOptimistic(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	const op = "firestore.RunTx"
	b := &batchStager{}
	t := &tx{
		s: s, stage: b, optimistic: true,
		get:    func(ref *fs.DocumentRef) (*fs.DocumentSnapshot, error) { return ref.Get(ctx) },
		getAll: func(refs []*fs.DocumentRef) ([]*fs.DocumentSnapshot, error) { return s.c.GetAll(ctx, refs) },
	}
	if err := fn(ctx, t); err != nil {
		return err
	}
	if len(b.writes) == 0 {
		return nil
	}
	batch := s.c.Batch()
	for _, w := range b.writes {
		w(batch)
	}
	_, err := batch.Commit(ctx)
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.AlreadyExists, codes.FailedPrecondition, codes.NotFound, codes.Aborted:
		return errOptimisticFailed
	}
	if ctx.Err() != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	return wrapErr(op, err)
}

// stager collects the writes of a decision: in a Firestore transaction
// (txStager) or in an optimistic commit (batchStager).
type stager interface {
	// create writes a document that must not exist.
	create(ref *fs.DocumentRef, doc map[string]any) error
	// absent writes a document the decision read as absent.
	absent(ref *fs.DocumentRef, doc map[string]any) error
	// replace writes the whole of a document the decision read as read.
	replace(ref *fs.DocumentRef, read *fs.DocumentSnapshot, doc map[string]any) error
	// set writes a document the decision did not read.
	set(ref *fs.DocumentRef, doc map[string]any) error
	// delete deletes a document the decision did not read.
	delete(ref *fs.DocumentRef) error
}

// txStager stages writes in a transaction, whose reads hold the
// documents read: what it read absent or as it was is simply written.
type txStager struct{ t *fs.Transaction }

func (s txStager) create(ref *fs.DocumentRef, doc map[string]any) error { return s.t.Create(ref, doc) }
func (s txStager) absent(ref *fs.DocumentRef, doc map[string]any) error { return s.t.Set(ref, doc) }
func (s txStager) replace(ref *fs.DocumentRef, _ *fs.DocumentSnapshot, doc map[string]any) error {
	return s.t.Set(ref, doc)
}
func (s txStager) set(ref *fs.DocumentRef, doc map[string]any) error { return s.t.Set(ref, doc) }
func (s txStager) delete(ref *fs.DocumentRef) error                  { return s.t.Delete(ref) }

// batchStager stages writes for an optimistic commit, each document read
// with the precondition that holds it to what was read.
type batchStager struct{ writes []func(*fs.WriteBatch) }

func (s *batchStager) add(w func(*fs.WriteBatch)) error {
	s.writes = append(s.writes, w)
	return nil
}

func (s *batchStager) create(ref *fs.DocumentRef, doc map[string]any) error {
	return s.add(func(b *fs.WriteBatch) { b.Create(ref, doc) })
}

func (s *batchStager) absent(ref *fs.DocumentRef, doc map[string]any) error {
	return s.create(ref, doc)
}

// replace writes doc over a document read as existing with every one of
// doc's top-level fields (a whole-document write, the fields of the
// layout being fixed) on the condition that it is unchanged since read,
// and creates a document read as absent.
func (s *batchStager) replace(ref *fs.DocumentRef, read *fs.DocumentSnapshot, doc map[string]any) error {
	if read == nil || !read.Exists() {
		return s.create(ref, doc)
	}
	fields := make([]string, 0, len(doc))
	for f := range doc {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	ups := make([]fs.Update, len(fields))
	for i, f := range fields {
		ups[i] = fs.Update{Path: f, Value: doc[f]}
	}
	at := read.UpdateTime
	return s.add(func(b *fs.WriteBatch) { b.Update(ref, ups, fs.LastUpdateTime(at)) })
}

func (s *batchStager) set(ref *fs.DocumentRef, doc map[string]any) error {
	return s.add(func(b *fs.WriteBatch) { b.Set(ref, doc) })
}

func (s *batchStager) delete(ref *fs.DocumentRef) error {
	return s.add(func(b *fs.WriteBatch) { b.Delete(ref) })
}
