package firestore

import (
	"context"

	fs "cloud.google.com/go/firestore"
	"golang.org/x/sync/errgroup"

	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/store"
)

// Bounds of one batched read of StoredHashes. A read of more receipts
// than witnessReadDocs (a default integration batch of 2,000 is eight
// reads), or of ones whose document names add up to more than
// witnessReadBytes (far below Firestore's 10 MiB request limit), is split
// into reads that run concurrently, readConcurrency at a time.
const (
	witnessReadDocs  = 250
	witnessReadBytes = 2 << 20
)

var _ ledger.ReceiptWitness = (*Store)(nil)

// StoredHashes implements ledger.ReceiptWitness: it reads the receipt
// documents at refs (tenants/{tenant}/instances/{domain}:{subject}/
// receipts/{seq}) in one batched read (GetAll) and returns the "hash"
// field of those that exist. It only reads, so the integrator may use a
// client with read-only access to the governors' database.
//
// A ref that no receipt document can have (a tenant id or instance id
// that is not a document id, a seq outside 1…store.MaxSeq) is absent
// without being read: receipts arrive from anyone who can publish, and
// their names must not become document paths. A stored document without
// a string hash vouches for no receipt: it is reported with the hash "".
// Errors are fault.Unavailable when Firestore or ctx fails
// transiently, and carry the codes of the package's other errors
// otherwise.
func (s *Store) StoredHashes(ctx context.Context, refs []ledger.ReceiptRef) (map[ledger.ReceiptRef]string, error) {
	const op = "firestore.StoredHashes"
	if err := checkLive(ctx, op); err != nil {
		return nil, err
	}
	out := make(map[ledger.ReceiptRef]string, len(refs))
	var (
		reads [][]ledger.ReceiptRef
		cur   []ledger.ReceiptRef
		bytes int
	)
	seen := make(map[ledger.ReceiptRef]bool, len(refs))
	for _, r := range refs {
		if seen[r] || !storable(r) {
			continue
		}
		seen[r] = true
		n := len(r.Key.Tenant) + len(r.Key.Domain) + len(r.Key.Subject) + 64
		if len(cur) == witnessReadDocs || (len(cur) > 0 && bytes+n > witnessReadBytes) {
			reads = append(reads, cur)
			cur, bytes = nil, 0
		}
		cur = append(cur, r)
		bytes += n
	}
	if len(cur) > 0 {
		reads = append(reads, cur)
	}
	hashes := make([][]string, len(reads))
	found := make([][]bool, len(reads))
	var g errgroup.Group
	g.SetLimit(readConcurrency)
	for i, read := range reads {
		g.Go(func() error {
			docs := make([]*fs.DocumentRef, len(read))
			for j, r := range read {
				docs[j] = s.receiptsRef(r.Key).Doc(seqID(r.Seq))
			}
			snaps, err := s.c.GetAll(ctx, docs)
			if err != nil {
				return wrapErr(op, err)
			}
			hashes[i], found[i] = make([]string, len(read)), make([]bool, len(read))
			for j, snap := range snaps {
				if snap.Exists() {
					if v, err := snap.DataAt("hash"); err == nil {
						hashes[i][j], _ = v.(string)
					}
					found[i][j] = true
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := checkLive(ctx, op); err != nil {
		return nil, err
	}
	for i, read := range reads {
		for j, r := range read {
			if found[i][j] {
				out[r] = hashes[i][j]
			}
		}
	}
	return out, nil
}

// storable reports whether a receipt can be stored at r.
func storable(r ledger.ReceiptRef) bool {
	if r.Seq < 1 || r.Seq > store.MaxSeq {
		return false
	}
	return store.CheckKey("firestore.StoredHashes", r.Key) == nil
}
