package ledger

import (
	"context"
	"encoding/binary"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Log serves the read side of a ledger from its Store: the latest signed
// checkpoint, inclusion and consistency proofs, and the tiles and entry
// bundles of C2SP tlog-tiles. Every hash it serves in a proof comes from
// tiles authenticated against the latest checkpoint's root, so a store
// altered behind the integrator's back yields an error rather than a
// proof. It is safe for concurrent use.
type Log struct {
	store Store
	cache *tileCache
}

// cachedTiles bounds the authenticated full tiles a Log keeps in memory
// (8 KiB each).
const cachedTiles = 4096

// NewLog returns a Log reading s.
func NewLog(s Store) *Log { return &Log{store: s, cache: newTileCache(cachedTiles)} }

// State returns the committed state; a fault.NotFound error when the
// log has no checkpoint yet.
func (l *Log) State(ctx context.Context) (State, error) {
	st, err := l.store.State(ctx)
	if err != nil {
		return st, err
	}
	if st.Checkpoint == nil {
		return st, fault.Errorf(fault.NotFound, "ledger.State", "the ledger has no checkpoint yet")
	}
	return st, nil
}

// reader returns a hash reader of the tree st describes.
func (l *Log) reader(ctx context.Context, st State) *treeReader {
	r := newTreeReader(ctx, tlog.Tree{N: st.Size, Hash: st.Root}, l.store.Tiles)
	r.cache = l.cache
	return r
}

// treeSize resolves a requested tree size: 0 means the latest.
func treeSize(op string, size int64, st State) (int64, error) {
	switch {
	case size == 0:
		return st.Size, nil
	case size < 0 || size > st.Size:
		return 0, fault.Errorf(fault.Invalid, op, "tree size %d is outside 1…%d, the ledger's size", size, st.Size)
	}
	return size, nil
}

// rootAt returns the root of the tree of size n ≤ st.Size.
func rootAt(n int64, st State, r tlog.HashReader) (tlog.Hash, error) {
	if n == st.Size {
		return st.Root, nil
	}
	return tlog.TreeHash(n, r)
}

// IsReceiptHash reports whether s has the form of a receipt hash: 64
// lowercase hex digits.
func IsReceiptHash(s string) bool {
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

// InclusionProof returns the proof that the receipt with hash is in the
// tree of size size (0: the latest). It is a fault.NotFound error when
// the receipt is not in that tree, and fault.Conflict when the stored
// entry does not match the stored tiles.
func (l *Log) InclusionProof(ctx context.Context, hash string, size int64) (InclusionProof, error) {
	const op = "ledger.InclusionProof"
	if !IsReceiptHash(hash) {
		return InclusionProof{}, fault.Errorf(fault.Invalid, op, "%s is not a receipt hash (64 lowercase hex digits)", httpjson.Quote(hash))
	}
	st, err := l.State(ctx)
	if err != nil {
		return InclusionProof{}, err
	}
	n, err := treeSize(op, size, st)
	if err != nil {
		return InclusionProof{}, err
	}
	found, err := l.store.Lookup(ctx, []string{hash})
	if err != nil {
		return InclusionProof{}, err
	}
	e, ok := found[hash]
	switch {
	case !ok:
		return InclusionProof{}, fault.Errorf(fault.NotFound, op, "receipt %s is not in the ledger", hash)
	case e.Index == Unassigned || e.Index >= st.Size:
		return InclusionProof{}, fault.Errorf(fault.NotFound, op, "receipt %s is pending integration", hash)
	case e.Index >= n:
		return InclusionProof{}, fault.Errorf(fault.NotFound, op, "receipt %s has index %d, outside the tree of size %d", hash, e.Index, n)
	}
	r := l.reader(ctx, st)
	p, err := l.prove(r, st, n, e)
	if err != nil {
		return InclusionProof{}, err
	}
	return p, nil
}

// prove builds the inclusion proof of entry e in the tree of size n after
// checking the entry against its leaf hash in the tiles.
func (l *Log) prove(r *treeReader, st State, n int64, e Entry) (InclusionProof, error) {
	const op = "ledger.InclusionProof"
	where := fmt.Sprintf("entry %d (receipt %s)", e.Index, e.Hash)
	rec, err := receipt.Parse(e.Leaf)
	if err != nil {
		return InclusionProof{}, fault.Errorf(fault.Conflict, op, "%s: stored leaf is not a receipt: %s", where, fault.ErrorMessage(err))
	}
	leafHash, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, e.Index)})
	if err != nil {
		return InclusionProof{}, err
	}
	if leafHash[0] != RecordHash(e.Leaf) {
		return InclusionProof{}, fault.Errorf(fault.Conflict, op, "%s: stored leaf does not hash to its leaf hash in %s", where, TilePath(tlog.TileForIndex(TileHeight, tlog.StoredHashIndex(0, e.Index))))
	}
	proof, err := tlog.ProveRecord(n, e.Index, r)
	if err != nil {
		return InclusionProof{}, wrapTlog(op, err)
	}
	root, err := rootAt(n, st, r)
	if err != nil {
		return InclusionProof{}, wrapTlog(op, err)
	}
	return InclusionProof{Index: e.Index, TreeSize: n, RootHash: root, ReceiptHash: e.Hash, Receipt: rec, Proof: proof}, nil
}

func wrapTlog(op string, err error) error {
	if fault.ErrorCode(err) != fault.Internal {
		return err
	}
	return fault.Wrap(fault.Internal, op, err)
}

// ConsistencyProof returns the proof that the tree of size to (0: the
// latest) extends the tree of size from.
func (l *Log) ConsistencyProof(ctx context.Context, from, to int64) (ConsistencyProof, error) {
	const op = "ledger.ConsistencyProof"
	st, err := l.State(ctx)
	if err != nil {
		return ConsistencyProof{}, err
	}
	to, err = treeSize(op, to, st)
	if err != nil {
		return ConsistencyProof{}, err
	}
	if from < 0 || from > to {
		return ConsistencyProof{}, fault.Errorf(fault.Invalid, op, "from=%d must be within 0…%d (to)", from, to)
	}
	r := l.reader(ctx, st)
	p := ConsistencyProof{From: from, To: to, FromRoot: EmptyRoot, Proof: tlog.TreeProof{}}
	if p.ToRoot, err = rootAt(to, st, r); err != nil {
		return ConsistencyProof{}, wrapTlog(op, err)
	}
	if from == 0 {
		return p, nil
	}
	if p.FromRoot, err = rootAt(from, st, r); err != nil {
		return ConsistencyProof{}, wrapTlog(op, err)
	}
	if p.Proof, err = tlog.ProveTree(to, from, r); err != nil {
		return ConsistencyProof{}, wrapTlog(op, err)
	}
	return p, nil
}

// Tile returns the data of tile t (height TileHeight, L ≥ 0) of the
// latest tree. A tile beyond the tree is a fault.NotFound error.
func (l *Log) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	const op = "ledger.Tile"
	st, err := l.State(ctx)
	if err != nil {
		return nil, err
	}
	if err := tileInTree(op, t, st.Size); err != nil {
		return nil, err
	}
	data, err := l.store.Tiles(ctx, []tlog.Tile{t})
	if err != nil {
		return nil, err
	}
	return data[0], nil
}

// tileInTree checks that t is a tile of height TileHeight that the tree of
// size n holds (entry bundles have L = -1).
func tileInTree(op string, t tlog.Tile, n int64) error {
	if t.H != TileHeight || t.L < -1 || t.L > 63 || t.N < 0 || t.W < 1 || t.W > TileWidth {
		return fault.Errorf(fault.Invalid, op, "%s is not a tile of height %d", TilePath(t), TileHeight)
	}
	level := max(t.L, 0)
	if level*TileHeight >= 63 || t.N > (n>>(level*TileHeight))>>TileHeight || t.N<<TileHeight+int64(t.W) > n>>(level*TileHeight) {
		return fault.Errorf(fault.NotFound, op, "%s is not in the tree of size %d", TilePath(t), n)
	}
	return nil
}

// EntryBundle returns entry bundle n of width w of the latest tree: the
// leaves of entries n·256 … n·256+w−1, each prefixed with its length as a
// big-endian uint16.
func (l *Log) EntryBundle(ctx context.Context, n int64, w int) ([]byte, error) {
	const op = "ledger.EntryBundle"
	st, err := l.State(ctx)
	if err != nil {
		return nil, err
	}
	if err := tileInTree(op, tlog.Tile{H: TileHeight, L: -1, N: n, W: w}, st.Size); err != nil {
		return nil, err
	}
	leaves, err := l.store.Leaves(ctx, n<<TileHeight, n<<TileHeight+int64(w))
	if err != nil {
		return nil, err
	}
	return EncodeBundle(leaves)
}

// EncodeBundle encodes leaves as a C2SP tlog-tiles entry bundle.
func EncodeBundle(leaves [][]byte) ([]byte, error) {
	size := 0
	for i, leaf := range leaves {
		if len(leaf) > MaxLeafBytes {
			return nil, fault.Errorf(fault.Invalid, "ledger.EncodeBundle", "leaf %d is %d bytes, at most %d fit", i, len(leaf), MaxLeafBytes)
		}
		size += 2 + len(leaf)
	}
	out := make([]byte, 0, size)
	for _, leaf := range leaves {
		out = binary.BigEndian.AppendUint16(out, uint16(len(leaf)))
		out = append(out, leaf...)
	}
	return out, nil
}

// DecodeBundle splits an entry bundle into its leaves.
func DecodeBundle(data []byte) ([][]byte, error) {
	var leaves [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, fault.Errorf(fault.Invalid, "ledger.DecodeBundle", "entry %d: truncated length prefix", len(leaves))
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, fault.Errorf(fault.Invalid, "ledger.DecodeBundle", "entry %d: %d bytes announced, %d left", len(leaves), n, len(data)-2)
		}
		leaves = append(leaves, data[2:2+n])
		data = data[2+n:]
	}
	return leaves, nil
}
