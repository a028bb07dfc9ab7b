package ledger

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Problem names what a verification found wrong.
type Problem string

// The problems verification reports.
const (
	// BadReceipt: a receipt does not parse, or its hash is not the hash of
	// its canonical JSON.
	BadReceipt Problem = "bad_receipt"
	// WrongReceipt: a proof or entry names another receipt than the one given.
	WrongReceipt Problem = "wrong_receipt"
	// WrongTreeSize: a proof is for another tree size than the checkpoint.
	WrongTreeSize Problem = "wrong_tree_size"
	// WrongOrigin: two checkpoints are of different logs.
	WrongOrigin Problem = "wrong_origin"
	// NotIncluded: an inclusion proof does not lead to the checkpoint's root.
	NotIncluded Problem = "not_included"
	// Inconsistent: a checkpoint is not an extension of an earlier one.
	Inconsistent Problem = "inconsistent"
	// BrokenChain: a tenant's receipts do not form intact hash chains.
	BrokenChain Problem = "broken_chain"
	// TileMismatch: a tile does not hash to its parent tile's hash, or the
	// right-edge tiles do not hash to the checkpoint's root.
	TileMismatch Problem = "tile_mismatch"
	// EntryMismatch: an entry does not hash to its leaf hash in the tile.
	EntryMismatch Problem = "entry_mismatch"
	// Malformed: a proof, export, tile or bundle is not well formed.
	Malformed Problem = "malformed"
	// Fork: two receipts for one (tenant, domain, subject, seq), or two
	// receipts of one instance with one prev_hash; a governor commits
	// neither, so one of them was made up or rewritten.
	Fork Problem = "fork"
)

// VerifyError reports the first failed check of a verification and where
// it failed: a receipt, an index, a tile path, a checkpoint.
type VerifyError struct {
	Problem Problem
	// Where locates the failure, e.g. "entry 785 (tile/entries/003)" or
	// "receipt acme/billing/2026-11 seq 4".
	Where  string
	Detail string
}

// Error implements error.
func (e *VerifyError) Error() string {
	return fmt.Sprintf("ledger verification failed at %s: %s: %s", e.Where, e.Problem, e.Detail)
}

// Unwrap returns a fault.Conflict error: the evidence contradicts
// itself, and retrying does not help.
func (e *VerifyError) Unwrap() error {
	return fault.Errorf(fault.Conflict, "ledger.Verify", "%s at %s", e.Problem, e.Where)
}

func failure(p Problem, where, format string, args ...any) *VerifyError {
	return &VerifyError{Problem: p, Where: where, Detail: fmt.Sprintf(format, args...)}
}

// InclusionProof proves that a receipt is the entry at Index of the tree
// of size TreeSize. It is what GET /v1/receipts/{hash}/proof returns.
type InclusionProof struct {
	Index    int64 `json:"index"`
	TreeSize int64 `json:"tree_size"`
	// RootHash is the root of the tree of size TreeSize, for comparison
	// with a checkpoint; verification uses the checkpoint's root.
	RootHash    tlog.Hash `json:"root_hash"`
	ReceiptHash string    `json:"receipt_hash"`
	// Receipt is the leaf: the receipt's canonical JSON.
	Receipt receipt.Receipt `json:"receipt"`
	// Proof is the RFC 6962 audit path, each hash in base64.
	Proof tlog.RecordProof `json:"proof"`
}

// ConsistencyProof proves that the tree of size To extends the tree of
// size From. It is what GET /v1/proofs/consistency returns.
type ConsistencyProof struct {
	From     int64          `json:"from"`
	To       int64          `json:"to"`
	FromRoot tlog.Hash      `json:"from_root"`
	ToRoot   tlog.Hash      `json:"to_root"`
	Proof    tlog.TreeProof `json:"proof"`
}

// VerifyInclusion checks that r is intact and that p proves it to be the
// entry at p.Index of the tree cp describes. cp must come from a verified
// checkpoint (OpenCheckpoint). p.Receipt, when set, must be r.
func VerifyInclusion(r *receipt.Receipt, p *InclusionProof, cp Checkpoint) error {
	where := fmt.Sprintf("receipt %s/%s/%s seq %d (index %d)", r.TenantID, r.Domain, r.Subject, r.Seq, p.Index)
	leaf := r.JSON()
	if err := verifyLeaf(r, leaf, where); err != nil {
		return err
	}
	if p.ReceiptHash != "" && p.ReceiptHash != r.Hash {
		return failure(WrongReceipt, where, "the proof is for receipt %s, not %s", p.ReceiptHash, r.Hash)
	}
	if p.Receipt.Hash != "" && p.Receipt.Hash != r.Hash {
		return failure(WrongReceipt, where, "the proof carries receipt %s, not %s", p.Receipt.Hash, r.Hash)
	}
	if p.TreeSize != cp.Size {
		return failure(WrongTreeSize, where, "the proof is for tree size %d, the checkpoint has size %d; fetch the proof with ?size=%d", p.TreeSize, cp.Size, cp.Size)
	}
	return checkRecord(p.Proof, cp, p.Index, RecordHash(leaf), where)
}

// verifyLeaf checks a receipt's own hash.
func verifyLeaf(r *receipt.Receipt, leaf []byte, where string) error {
	if h := r.ComputeHash(); h != r.Hash {
		return failure(BadReceipt, where, "hash is %s, the receipt's canonical JSON hashes to %s", r.Hash, h)
	}
	if len(leaf) > MaxLeafBytes {
		return failure(BadReceipt, where, "receipt is %d bytes, the log holds at most %d", len(leaf), MaxLeafBytes)
	}
	return nil
}

func checkRecord(p tlog.RecordProof, cp Checkpoint, index int64, h tlog.Hash, where string) error {
	if index < 0 || index >= cp.Size {
		return failure(NotIncluded, where, "index %d is outside the tree of size %d", index, cp.Size)
	}
	if err := tlog.CheckRecord(p, cp.Size, cp.Root, index, h); err != nil {
		return failure(NotIncluded, where, "the inclusion proof does not lead to the root %s of the tree of size %d", cp.Root, cp.Size)
	}
	return nil
}

// VerifyConsistency checks that the tree of checkpoint newer extends the
// tree of checkpoint older, with proof p between their sizes. Both
// checkpoints must be verified (OpenCheckpoint).
func VerifyConsistency(older, newer Checkpoint, p *ConsistencyProof) error {
	where := fmt.Sprintf("checkpoints of size %d and %d", older.Size, newer.Size)
	switch {
	case older.Origin != newer.Origin:
		return failure(WrongOrigin, where, "origins %s and %s differ", httpjson.Quote(older.Origin), httpjson.Quote(newer.Origin))
	case older.Size > newer.Size:
		return failure(Inconsistent, where, "the newer checkpoint is smaller than the older one")
	case p.From != older.Size || p.To != newer.Size:
		return failure(WrongTreeSize, where, "the proof is from size %d to %d", p.From, p.To)
	case older.Size == 0:
		if older.Root != EmptyRoot {
			return failure(Inconsistent, where, "the empty tree's root is %s, the checkpoint says %s", EmptyRoot, older.Root)
		}
		return nil
	}
	if err := tlog.CheckTree(p.Proof, newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return failure(Inconsistent, where, "the tree %s does not extend the tree %s", newer, older)
	}
	return nil
}
