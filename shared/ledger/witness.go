package ledger

import (
	"context"
	"fmt"
	"strings"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
)

// ReceiptRef is the place of a receipt in the governors' store: its
// governor instance and its seq. The governors store at most one receipt
// at a place.
type ReceiptRef struct {
	Key governor.Key
	Seq int64
}

// RefOf returns the place of r.
func RefOf(r *receipt.Receipt) ReceiptRef { return ReceiptRef{Key: r.Key(), Seq: r.Seq} }

// String names the place as "tenant/domain/subject seq N". Its parts come
// from receipts anyone can publish, so a part that is long or holds
// anything but letters, digits and ".-_:" is quoted and truncated
// (httpjson.Quote).
func (r ReceiptRef) String() string {
	return fmt.Sprintf("%s seq %d", instanceName(r.Key.Tenant, string(r.Key.Domain), r.Key.Subject), r.Seq)
}

// instanceName names an instance for messages, each part made safe to
// echo.
func instanceName(tenant, domain, subject string) string {
	return echo(tenant) + "/" + echo(domain) + "/" + echo(subject)
}

// echo returns s as it is when it is short and plain, and quoted and
// truncated otherwise.
func echo(s string) string {
	if s == "" || len(s) > httpjson.MaxEcho || strings.IndexFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-_:", c))
	}) >= 0 {
		return httpjson.Quote(s)
	}
	return s
}

// ReceiptWitness tells the integrator which receipts the governors
// stored: the integrator admits a pending entry to the log only when the
// witness reports, at the entry's (tenant, domain, subject, seq), a stored
// receipt with the entry's hash. Hashing its own JSON correctly proves
// nothing about a receipt, since anyone can compute the hash of a receipt
// they made up; having been committed by a governor does. The governors'
// store (the Firestore store, memstore) is the witness; the integrator
// only reads it.
type ReceiptWitness interface {
	// StoredHashes returns the hash of the receipt stored at each of refs,
	// in one batched read. A ref at which no receipt is stored, including
	// a ref at which none can be (an invalid tenant id, an empty subject,
	// a seq below 1), is absent from the map: that is not an error. An
	// error means the answer is unknown; the integrator then admits and
	// drops nothing, and retries.
	StoredHashes(ctx context.Context, refs []ReceiptRef) (map[ReceiptRef]string, error)
}

// Reasons of a refusal by the witness, the "reason" attribute of the
// refusal counter and of the refusal's log line.
const (
	// RefusedUnstored: no receipt is stored at the entry's place.
	RefusedUnstored = "unstored"
	// RefusedOtherStored: another receipt is stored at the entry's place.
	RefusedOtherStored = "other_stored"
)

// unvouched is a pending entry the witness does not vouch for.
type unvouched struct {
	entry Entry
	ref   ReceiptRef
	exec  string
	// stored is the hash of the receipt stored at ref, when found.
	stored string
	found  bool
}

func (u unvouched) reason() string {
	if !u.found {
		return RefusedUnstored
	}
	return RefusedOtherStored
}

// candidate is a pending entry whose leaf is intact, and its receipt's
// place.
type candidate struct {
	entry Entry
	ref   ReceiptRef
	exec  string
}

// vouch asks the witness about every candidate, in one call, and splits
// them into the entries it vouches for, in their order, and the others.
func vouch(ctx context.Context, w ReceiptWitness, cs []candidate) ([]Entry, []unvouched, error) {
	if len(cs) == 0 {
		return nil, nil, nil
	}
	refs := make([]ReceiptRef, len(cs))
	for i, c := range cs {
		refs[i] = c.ref
	}
	stored, err := storedHashes(ctx, w, refs)
	if err != nil {
		return nil, nil, err
	}
	vouched, refused := split(cs, stored)
	return vouched, refused, nil
}

// storedHashes asks the witness about refs, each once, in one call; no
// refs ask nothing.
func storedHashes(ctx context.Context, w ReceiptWitness, refs []ReceiptRef) (map[ReceiptRef]string, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	distinct := make([]ReceiptRef, 0, len(refs))
	seen := make(map[ReceiptRef]bool, len(refs))
	for _, r := range refs {
		if !seen[r] {
			seen[r] = true
			distinct = append(distinct, r)
		}
	}
	return w.StoredHashes(ctx, distinct)
}

// split divides the candidates into the entries whose place holds their
// hash in stored (the witness's answer), in their order, and the others.
func split(cs []candidate, stored map[ReceiptRef]string) ([]Entry, []unvouched) {
	entries := make([]Entry, 0, len(cs))
	var refused []unvouched
	for _, c := range cs {
		h, ok := stored[c.ref]
		if ok && h == c.entry.Hash {
			entries = append(entries, c.entry)
			continue
		}
		refused = append(refused, unvouched{entry: c.entry, ref: c.ref, exec: c.exec, stored: h, found: ok})
	}
	return entries, refused
}

// DeliveryWitness answers the governors' engine about delivery: a
// decision publishes its receipt after every other message it emitted,
// so a receipt the ledger holds, integrated or pending, proves the whole
// decision delivered. It reads Store.Lookup only.
type DeliveryWitness struct {
	Store Store
}

// Witnessed returns the hashes among hashes whose receipts the ledger
// holds.
func (w DeliveryWitness) Witnessed(ctx context.Context, hashes []string) (map[string]bool, error) {
	found, err := w.Store.Lookup(ctx, hashes)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(found))
	for h := range found {
		out[h] = true
	}
	return out, nil
}
