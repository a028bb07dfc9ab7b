package receipt

import (
	"fmt"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// Problem names what is wrong with a receipt in a chain.
type Problem string

// The problems Verify reports, in the order a receipt is checked.
const (
	// HashMismatch: hash is not the SHA-256 of the receipt's canonical JSON.
	HashMismatch Problem = "hash_mismatch"
	// Malformed: seq, outcome, decided_at, data_digest or an action kind
	// has an impossible value.
	Malformed Problem = "malformed"
	// WrongInstance: the receipt belongs to another instance than the
	// chain's first receipt.
	WrongInstance Problem = "wrong_instance"
	// BadSequence: seq is not 1 at the start of a chain, or not the
	// previous seq plus one.
	BadSequence Problem = "bad_sequence"
	// BrokenLink: prev_hash is not the previous receipt's hash, or not
	// ZeroHash for seq 1.
	BrokenLink Problem = "broken_link"
	// BadActionID: an action id is not ActionID of its index.
	BadActionID Problem = "bad_action_id"
)

// ChainError reports the first bad receipt of a chain: its index in the
// receipts given to Verify (or added to a Verifier), its seq and the
// problem.
type ChainError struct {
	Index   int
	Seq     int64
	Problem Problem
	Detail  string
}

// Error implements error.
func (e *ChainError) Error() string {
	return fmt.Sprintf("receipt chain broken at index %d (seq %d): %s: %s", e.Index, e.Seq, e.Problem, e.Detail)
}

// Unwrap returns a fault.Conflict error, so that a broken chain is
// reported as stored data contradicting itself and is never retried.
func (e *ChainError) Unwrap() error {
	return fault.Errorf(fault.Conflict, "receipt.Verify", "%s at seq %d", e.Problem, e.Seq)
}

// Verify checks that chain is one instance's receipts from seq 1 on, each
// intact and linked to the one before. It returns nil or a *ChainError
// naming the first bad receipt. An empty chain is valid. Verify cannot
// detect a consistently rewritten last receipt; see Verifier.Head.
func Verify(chain []Receipt) error {
	var v Verifier
	for i := range chain {
		if err := v.Add(&chain[i]); err != nil {
			return err
		}
	}
	return nil
}

// Verifier checks one instance's chain receipt by receipt, holding only the
// last receipt's position, so that long chains can be verified page by page.
// The zero Verifier expects a chain that starts at seq 1. A Verifier is not
// safe for concurrent use.
type Verifier struct {
	started bool
	tenant  string
	domain  string
	subject string
	seq     int64
	hash    string
	n       int
	err     *ChainError
	scratch []byte
}

// NewVerifier returns a Verifier for a chain that starts at seq 1.
func NewVerifier() *Verifier { return &Verifier{} }

// NewVerifierAfter returns a Verifier for the receipts that follow prev,
// for example the next page of a chain whose earlier pages were verified
// before: the first receipt added must belong to prev's instance, have seq
// prev.Seq+1 and link to prev.Hash. prev itself is trusted, not checked.
func NewVerifierAfter(prev Receipt) *Verifier {
	return &Verifier{
		started: true,
		tenant:  prev.TenantID,
		domain:  prev.Domain,
		subject: prev.Subject,
		seq:     prev.Seq,
		hash:    prev.Hash,
	}
}

// Add checks r as the next receipt of the chain. It returns nil or the
// *ChainError of the first bad receipt; once a receipt failed, every later
// Add returns that same error.
func (v *Verifier) Add(r *Receipt) error {
	if v.err != nil {
		return v.err
	}
	if p, detail := v.check(r); p != "" {
		v.err = &ChainError{Index: v.n, Seq: r.Seq, Problem: p, Detail: detail}
		return v.err
	}
	if !v.started {
		v.started = true
		v.tenant, v.domain, v.subject = r.TenantID, r.Domain, r.Subject
	}
	v.seq = r.Seq
	v.hash = r.Hash
	v.n++
	return nil
}

// Count returns the number of receipts that passed.
func (v *Verifier) Count() int { return v.n }

// Head returns the seq and hash of the last receipt that passed (or the
// position NewVerifierAfter started from); 0 and ZeroHash before any. A
// verifier cannot tell a rewritten last receipt whose hash was recomputed
// from the original, so callers compare Head with the instance's Version
// and LastHash.
func (v *Verifier) Head() (seq int64, hash string) {
	if !v.started {
		return 0, ZeroHash
	}
	return v.seq, v.hash
}

// check returns the first problem of r, or "".
func (v *Verifier) check(r *Receipt) (Problem, string) {
	if v.scratch == nil {
		v.scratch = make([]byte, 0, 2048)
	}
	h, scratch := r.hash(v.scratch)
	v.scratch = scratch
	if string(h[:]) != r.Hash {
		return HashMismatch, fmt.Sprintf("hash is %q, canonical JSON hashes to %s", r.Hash, string(h[:]))
	}
	if detail := malformed(r); detail != "" {
		return Malformed, detail
	}
	if v.started && (r.TenantID != v.tenant || r.Domain != v.domain || r.Subject != v.subject) {
		return WrongInstance, fmt.Sprintf("receipt of %s/%s/%s in the chain of %s/%s/%s",
			r.TenantID, r.Domain, r.Subject, v.tenant, v.domain, v.subject)
	}
	want, prev := int64(1), ZeroHash
	if v.started {
		want, prev = v.seq+1, v.hash
	}
	if r.Seq != want {
		return BadSequence, fmt.Sprintf("seq is %d, want %d", r.Seq, want)
	}
	if r.PrevHash != prev {
		return BrokenLink, fmt.Sprintf("prev_hash is %q, want %s", r.PrevHash, prev)
	}
	for i := range r.Actions {
		if id := actionID(r, i); string(id[:]) != r.Actions[i].ID {
			return BadActionID, fmt.Sprintf("actions[%d].id is %q, want %s", i, r.Actions[i].ID, string(id[:]))
		}
	}
	return "", ""
}

// malformed describes the first impossible value of r, or returns "".
func malformed(r *Receipt) string {
	switch {
	case r.Seq < 1 || r.Seq > MaxSeq:
		return fmt.Sprintf("seq %d outside 1…%d", r.Seq, MaxSeq)
	case r.Outcome != string(governor.Accepted) && r.Outcome != string(governor.Rejected):
		return fmt.Sprintf("outcome %q is neither accepted nor rejected", r.Outcome)
	case !isHex64(r.DataDigest):
		return fmt.Sprintf("data_digest %q is not 64 lowercase hex digits", r.DataDigest)
	case !isUTCTime(r.DecidedAt):
		return fmt.Sprintf("decided_at %q is not an RFC 3339 UTC time", r.DecidedAt)
	}
	for i := range r.Actions {
		if k := r.Actions[i].Kind; k != string(governor.KindEvent) && k != string(governor.KindActuate) {
			return fmt.Sprintf("actions[%d].kind %q is neither event nor actuate", i, k)
		}
	}
	return ""
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isUTCTime(s string) bool {
	if !strings.HasSuffix(s, "Z") {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}
