package memstore

import (
	"cmp"
	"context"
	"slices"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/store"
)

var _ ledger.ReceiptWitness = (*Store)(nil)

// StoredHashes implements ledger.ReceiptWitness: the hash of the receipt
// committed at each ref, read under one lock. Refs at which no receipt is
// stored, or can be (ids Firestore would refuse, a seq outside
// 1…store.MaxSeq), are absent, as in the Firestore store.
func (s *Store) StoredHashes(ctx context.Context, refs []ledger.ReceiptRef) (map[ledger.ReceiptRef]string, error) {
	const op = "memstore.StoredHashes"
	if err := ctx.Err(); err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[ledger.ReceiptRef]string, len(refs))
	for _, r := range refs {
		if r.Seq < 1 || r.Seq > store.MaxSeq || store.CheckKey(op, r.Key) != nil {
			continue
		}
		chain := s.receipts[r.Key]
		if i, ok := slices.BinarySearchFunc(chain, r.Seq, func(rec receiptRec, seq int64) int { return cmp.Compare(rec.r.Seq, seq) }); ok {
			out[r] = chain[i].r.Hash
		}
	}
	return out, nil
}
