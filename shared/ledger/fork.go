package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/autonomics/autonomics/shared/receipt"
)

// forkKey is a 128-bit digest naming a place (tenant, domain, subject,
// seq) or a link (tenant, domain, subject, prev_hash) of a receipt. Being
// of fixed size, it keeps the memory of fork detection independent of the
// receipts' strings, which anyone who can publish chooses.
type forkKey [16]byte

// digest returns the forkKey of the parts, each length-prefixed so that
// no two lists of parts share a digest input.
func digest(kind byte, parts ...string) forkKey {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte{kind})
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	var k forkKey
	copy(k[:], h.Sum(nil))
	return k
}

func placeKey(r *receipt.Receipt) forkKey {
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], uint64(r.Seq))
	return digest('s', r.TenantID, r.Domain, r.Subject, string(seq[:]))
}

func linkKey(r *receipt.Receipt) forkKey {
	return digest('p', r.TenantID, r.Domain, r.Subject, r.PrevHash)
}

// forkSeen is the first entry seen at a place or link.
type forkSeen struct {
	index int64
	seq   int64
}

// forkDetector finds forks among the entries of a log: two entries for
// one place (tenant, domain, subject, seq), or two entries of one
// instance with one prev_hash. A governor commits one receipt per place,
// each chained to the one before, so either means that a receipt no
// governor committed, or a rewritten one, reached the log. It keeps two
// maps of 16-byte digests, 70 to 140 bytes per entry (as the maps grow)
// however large the receipts: an audit of ten million entries holds about
// 1 GiB.
type forkDetector struct {
	places map[forkKey]int64
	links  map[forkKey]forkSeen
}

// maxForkHint bounds the entries newForkDetector allocates for up front,
// so that a checkpoint claiming a huge tree does not allocate before its
// tiles are fetched.
const maxForkHint = 1 << 22

// newForkDetector returns a detector sized for about n entries.
func newForkDetector(n int64) *forkDetector {
	n = min(max(n, 0), maxForkHint)
	return &forkDetector{places: make(map[forkKey]int64, n), links: make(map[forkKey]forkSeen, n)}
}

// add records r, the entry at index, and returns a Fork failure naming
// both entries when an earlier entry shares its place or its link.
func (d *forkDetector) add(index int64, r *receipt.Receipt) *VerifyError {
	ref := RefOf(r)
	p := placeKey(r)
	if first, ok := d.places[p]; ok {
		return failure(Fork, fmt.Sprintf("entries %d and %d (receipt %s)", first, index, ref),
			"two receipts for one (tenant, domain, subject, seq): entry %d, and entry %d (receipt %s)", first, index, r.Hash)
	}
	d.places[p] = index
	l := linkKey(r)
	if first, ok := d.links[l]; ok {
		return failure(Fork, fmt.Sprintf("entries %d and %d (receipts %s and seq %d)", first.index, index, RefOf(&receipt.Receipt{
			TenantID: r.TenantID, Domain: r.Domain, Subject: r.Subject, Seq: first.seq}), r.Seq),
			"two receipts of one instance follow prev_hash %s: entry %d (seq %d) and entry %d (seq %d, %s)",
			echo(r.PrevHash), first.index, first.seq, index, r.Seq, r.Hash)
	}
	d.links[l] = forkSeen{index: index, seq: r.Seq}
	return nil
}
