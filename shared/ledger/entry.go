package ledger

import (
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
)

// NewEntry turns a published receipt (its JSON, as the receipts topic
// carries it) into a pending entry that arrived at now. The receipt must
// parse and its hash must be the hash of its canonical JSON; the leaf is
// the receipt's canonical JSON including "hash", whatever whitespace or
// member order data used. Failures are fault.Invalid errors: retrying
// cannot cure them. Their messages quote at most httpjson.MaxEcho bytes of
// any value of data, and are at most maxMessage bytes long.
//
// An entry is only a candidate: the integrator admits it to the log once
// the governors' store vouches for it (ReceiptWitness).
func NewEntry(data []byte, now time.Time) (Entry, error) {
	const op = "ledger.NewEntry"
	r, err := receipt.Parse(data)
	if err != nil {
		return Entry{}, fault.Errorf(fault.Invalid, op, "not a receipt: %s", httpjson.Truncate(fault.ErrorMessage(err), maxMessage))
	}
	if h := r.ComputeHash(); h != r.Hash {
		return Entry{}, fault.Errorf(fault.Invalid, op, "receipt %s: hash is %s, its canonical JSON hashes to %s",
			RefOf(&r), httpjson.Quote(r.Hash), h)
	}
	leaf := r.JSON()
	if len(leaf) > MaxLeafBytes {
		return Entry{}, fault.Errorf(fault.Invalid, op, "receipt %s is %d bytes, the log takes at most %d", RefOf(&r), len(leaf), MaxLeafBytes)
	}
	return Entry{Hash: r.Hash, Leaf: leaf, Index: Unassigned, ArrivedAt: now.UTC()}, nil
}

// maxMessage bounds the part of an error message that describes input.
const maxMessage = 2 * httpjson.MaxEcho

// checkLeaf reports whether leaf is the canonical JSON of an intact
// receipt whose hash is hash, and returns the receipt.
func checkLeaf(hash string, leaf []byte) (receipt.Receipt, error) {
	const op = "ledger.checkLeaf"
	r, err := receipt.Parse(leaf)
	if err != nil {
		return r, fault.Errorf(fault.Conflict, op, "entry %s: stored leaf is not a receipt: %s", hash, httpjson.Truncate(fault.ErrorMessage(err), maxMessage))
	}
	if r.Hash != hash {
		return r, fault.Errorf(fault.Conflict, op, "entry %s: stored leaf is receipt %s", hash, httpjson.Quote(r.Hash))
	}
	if h := r.ComputeHash(); h != hash {
		return r, fault.Errorf(fault.Conflict, op, "entry %s: stored leaf hashes to %s", hash, h)
	}
	if string(r.JSON()) != string(leaf) {
		return r, fault.Errorf(fault.Conflict, op, "entry %s: stored leaf is not canonical JSON", hash)
	}
	return r, nil
}

// RecordHash returns the RFC 6962 leaf hash of a leaf: SHA-256 of 0x00
// followed by the leaf.
func RecordHash(leaf []byte) tlog.Hash { return tlog.RecordHash(leaf) }
