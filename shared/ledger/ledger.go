package ledger

import (
	"context"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// TileHeight is the height of the stored and served tiles: C2SP
// tlog-tiles fixes it at 8, so a full tile holds 256 hashes.
const TileHeight = 8

// TileWidth is the number of hashes in a full tile.
const TileWidth = 1 << TileHeight

// MaxLeafBytes is the largest leaf the log accepts: entry bundles prefix
// every entry with a big-endian uint16 length.
const MaxLeafBytes = 1<<16 - 1

// MaxBatch bounds the number of entries one integration assigns, so that
// the batch document stays far below Firestore's 1 MiB document limit.
const MaxBatch = 20000

// Unassigned is the Index of an entry that is pending integration.
const Unassigned int64 = -1

// Entry is one receipt on its way into the log, or in it.
type Entry struct {
	// Hash is the receipt's hash (64 lowercase hex digits), the entry's key.
	Hash string
	// Leaf is the receipt's canonical JSON including "hash": the bytes the
	// Merkle tree commits to.
	Leaf []byte
	// Index is the entry's position in the log, or Unassigned.
	Index int64
	// ArrivedAt is when the entry reached the integrator (its push), or was
	// first recorded as pending.
	ArrivedAt time.Time
	// Pending reports that the store holds a pending record of the entry
	// (Store.Pending and Store.Lookup set it): WriteEntries removes that
	// record, and writes nothing else for an entry without one (a record
	// left behind is never returned by Pending once the entry is written).
	Pending bool
}

// State is the committed head of the log.
type State struct {
	// Size is the number of entries in the tree.
	Size int64
	// Root is the RFC 6962 Merkle tree hash of the first Size entries.
	Root tlog.Hash
	// Checkpoint is the signed note of (origin, Size, Root); nil for a log
	// that never committed.
	Checkpoint []byte
	// VerifierKey is the note verifier key of the checkpoint's signer.
	VerifierKey string
	// UpdatedAt is when the state was committed.
	UpdatedAt time.Time
}

// Batch is an integration in progress: the entries with the given hashes
// get the indices Start, Start+1, … in that order. A batch is written
// before any index is assigned and deleted by the commit, so an
// integrator that stops part-way leaves a batch the next one completes
// exactly as planned, or, when some of its entries were never written
// (they were held in memory), abandons and replaces with one of those
// that were (Store.AbandonBatch).
type Batch struct {
	Start  int64
	Hashes []string
	// Holder is the integrator that began the batch.
	Holder    string
	CreatedAt time.Time
}

// End returns the tree size after the batch.
func (b Batch) End() int64 { return b.Start + int64(len(b.Hashes)) }

// Lease says which integrator may change the log, and until when.
type Lease struct {
	Holder    string
	ExpiresAt time.Time
}

// Fence identifies the integrator making a change: the change is refused
// unless Holder holds an unexpired lease at Now, and it extends the lease
// to Now+TTL.
type Fence struct {
	Holder string
	Now    time.Time
	TTL    time.Duration
}

// TileData is a tile of height TileHeight and its hashes.
type TileData struct {
	Tile tlog.Tile
	Data []byte
}

// Commit is the end of a batch: the new state and the tiles that changed.
type Commit struct {
	Batch Batch
	State State
	Tiles []TileData
}

// Store is the storage port of the ledger. Adapters (memledger, the
// Firestore ledger) implement it and prove it with the conformance suite
// in ledgertest.
type Store interface {
	// AddPending records entries as pending unless an entry with the same
	// hash is pending or in the log, and returns how many were new.
	AddPending(ctx context.Context, entries []Entry) (int, error)
	// DropPending forgets the pending entries with the given hashes, as if
	// they had never arrived: the integrator drops the entries the
	// governors' store does not vouch for. Entries written to the log and
	// entries of the batch in progress are kept, and unknown hashes are
	// ignored. It fails with a fault.Conflict error unless f holds the
	// lease, which it renews.
	DropPending(ctx context.Context, f Fence, hashes []string) error
	// Pending returns up to limit pending entries (all of them when limit
	// is 0) in hash order, with Pending set. An entry written to the log is never returned, even if
	// it was recorded as pending again. (Hash order, not arrival order:
	// no index of a monotonic arrival time is needed, which would be a
	// write hotspot; each pass integrates the entries it took, so a
	// backlog drains in order of hash.)
	Pending(ctx context.Context, limit int) ([]Entry, error)
	// Lookup returns the stored entries with the given hashes, pending
	// ones with Index Unassigned and Pending set; missing hashes are
	// absent from the map. An entry written by a batch not yet committed
	// has its planned index, at or above the committed size.
	Lookup(ctx context.Context, hashes []string) (map[string]Entry, error)
	// Written returns the entries with the given hashes that a batch has
	// written at an index (committed, or planned by the batch in progress:
	// at or above the committed size), without looking at pending
	// records: Pending is false even when the store also holds one, and a
	// hash that is only pending is absent. It is Lookup for a caller that
	// only asks whether the log has an entry, at half the reads.
	Written(ctx context.Context, hashes []string) (map[string]Entry, error)
	// Leaves returns the leaves of the committed entries with indices
	// start…end-1, in index order: a fault.NotFound error when one is
	// not committed, fault.Internal when the stored entries contradict
	// their positions.
	Leaves(ctx context.Context, start, end int64) ([][]byte, error)
	// Tiles returns the data of each tile: exactly W hashes of the stored
	// tile (L, N), which must hold at least W. H must be TileHeight.
	Tiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error)
	// State returns the committed state; the zero State for a new log.
	State(ctx context.Context) (State, error)
	// Batch returns the batch in progress, if any.
	Batch(ctx context.Context) (Batch, bool, error)
	// AcquireLease makes holder the lease holder until now+ttl when the
	// lease is free, expired or already held by holder, and returns the
	// lease as it is afterwards.
	AcquireLease(ctx context.Context, holder string, now time.Time, ttl time.Duration) (Lease, error)
	// ReleaseLease gives up holder's lease; it does nothing when holder
	// does not hold it.
	ReleaseLease(ctx context.Context, holder string) error
	// BeginBatch records b as the batch in progress. It fails with a
	// fault.Conflict error unless f holds the lease, no batch is in
	// progress and b.Start is the committed size.
	BeginBatch(ctx context.Context, f Fence, b Batch) error
	// WriteEntries stores entries as the entries at indices start,
	// start+1, … and removes them from the pending entries (the pending
	// records of those with Pending set; Pending skips the others' from
	// then on). It is idempotent; the entries become readable by index
	// (Leaves) when their batch is committed. It fails with a
	// fault.Conflict error unless f holds the lease (which it does not
	// renew), so that an integrator that lost the lease writes nothing
	// once another one took it over.
	WriteEntries(ctx context.Context, f Fence, start int64, entries []Entry) error
	// AbandonBatch ends the batch in progress b without committing it: an
	// integrator does so when some of b's entries were never written (an
	// integrator that stopped part-way through a batch of entries it held
	// in memory) and starts a new batch at the same size with those that
	// were. It fails with a fault.Conflict error unless f holds the
	// lease, which it renews, and b is the batch in progress (same start
	// and hashes).
	AbandonBatch(ctx context.Context, f Fence, b Batch) error
	// CommitBatch stores c's tiles and state and ends the batch, in one
	// transaction. It fails with a fault.Conflict error unless f holds
	// the lease, c.Batch is the batch in progress (same start and hashes)
	// and the committed size is c.Batch.Start.
	CommitBatch(ctx context.Context, f Fence, c Commit) error
	// AppendBatch writes entries, the entries of c.Batch in its order,
	// and commits c, in one transaction: what BeginBatch, WriteEntries
	// and CommitBatch do one after the other, with nothing written unless
	// all is, so that no batch is ever in progress. It fails with a
	// fault.Conflict error unless f holds the lease, which it renews, no
	// batch is in progress and the committed size is c.Batch.Start, and
	// with a fault.Invalid error for entries that are not c.Batch's or
	// whose writes (AppendWrites) exceed MaxAppendWrites.
	AppendBatch(ctx context.Context, f Fence, c Commit, entries []Entry) error
}

// CheckBatch validates a batch before it is stored: a start at or above
// 0, at most MaxBatch receipt hashes, none repeated. Adapters call it.
func CheckBatch(b Batch) error {
	const op = "ledger.CheckBatch"
	if b.Start < 0 || len(b.Hashes) > MaxBatch {
		return fault.Errorf(fault.Invalid, op, "batch at %d of %d entries: want a start ≥ 0 and at most %d entries", b.Start, len(b.Hashes), MaxBatch)
	}
	seen := make(map[string]bool, len(b.Hashes))
	for _, h := range b.Hashes {
		if !IsReceiptHash(h) {
			return fault.Errorf(fault.Invalid, op, "%s is not a receipt hash", httpjson.Quote(h))
		}
		if seen[h] {
			return fault.Errorf(fault.Invalid, op, "entry %s appears twice in the batch", h)
		}
		seen[h] = true
	}
	return nil
}

// MaxAppendWrites is the most writes one AppendBatch makes: Firestore's
// limit on the writes of a transaction.
const MaxAppendWrites = 500

// AppendWrites returns the writes AppendBatch makes for c and entries:
// one per entry and one more per entry with a pending record to delete,
// one per tile, the state and the lease.
func AppendWrites(c Commit, entries []Entry) int {
	n := len(c.Tiles) + 2
	for _, e := range entries {
		n++
		if e.Pending {
			n++
		}
	}
	return n
}

// CheckAppend checks what AppendBatch is given: a valid commit (see
// CheckCommit) whose batch names entries, valid entries, in order, and
// writes that fit in one transaction.
func CheckAppend(c Commit, entries []Entry) error {
	const op = "ledger.CheckAppend"
	if err := CheckCommit(c); err != nil {
		return err
	}
	if len(entries) != len(c.Batch.Hashes) {
		return fault.Errorf(fault.Invalid, op, "%d entries for a batch of %d", len(entries), len(c.Batch.Hashes))
	}
	for i, e := range entries {
		if e.Hash != c.Batch.Hashes[i] || len(e.Leaf) == 0 {
			return fault.Errorf(fault.Invalid, op, "entry %d is %s, the batch names %s there; want its leaf", i, httpjson.Quote(e.Hash), c.Batch.Hashes[i])
		}
	}
	if n := AppendWrites(c, entries); n > MaxAppendWrites {
		return fault.Errorf(fault.Invalid, op, "%d writes do not fit in one transaction of at most %d", n, MaxAppendWrites)
	}
	return nil
}

// CheckCommit validates a commit before it is stored: a valid batch, a
// state of the batch's end size with a checkpoint, and exactly the tiles
// the batch changes (tlog.NewTiles), each with W hashes. Adapters call it.
func CheckCommit(c Commit) error {
	const op = "ledger.CheckCommit"
	if err := CheckBatch(c.Batch); err != nil {
		return err
	}
	if c.State.Size != c.Batch.End() || len(c.State.Checkpoint) == 0 {
		return fault.Errorf(fault.Invalid, op, "state of size %d after a batch ending at %d, checkpoint of %d bytes", c.State.Size, c.Batch.End(), len(c.State.Checkpoint))
	}
	want := tlog.NewTiles(TileHeight, c.Batch.Start, c.Batch.End())
	if len(c.Tiles) != len(want) {
		return fault.Errorf(fault.Invalid, op, "%d tiles for a batch from %d to %d, which changes %d", len(c.Tiles), c.Batch.Start, c.Batch.End(), len(want))
	}
	for i, t := range c.Tiles {
		if t.Tile != want[i] || len(t.Data) != t.Tile.W*tlog.HashSize {
			return fault.Errorf(fault.Invalid, op, "tile %s with %d bytes, want %s", TilePath(t.Tile), len(t.Data), TilePath(want[i]))
		}
	}
	return nil
}
