package ledger

import (
	"bytes"
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/receipt"
)

// AuditReport summarises a successful Audit.
type AuditReport struct {
	Size    int64
	Tiles   int
	Bundles int
}

// Audit reads every tile and entry bundle of the tree cp describes from
// src and checks them against each other and against cp's root, as a log
// monitor does: every entry is an intact receipt (its hash is the hash of
// its canonical JSON, and the entry is that canonical JSON) whose leaf hash
// is its hash in the level-0 tile; every full tile hashes to its hash in
// the tile above; the right-edge tiles hash to the root; and the log holds
// no fork: no two entries for one (tenant, domain, subject, seq), no two
// entries of one instance with one prev_hash (problem Fork, naming both
// indices and the receipt). The first failure is returned as a
// *VerifyError naming the tile path and, for entries, the index. cp must
// come from a verified checkpoint.
//
// Fork detection keeps a fixed-size digest of every entry's place and
// link, 70 to 140 bytes per entry whatever the receipts hold.
//
// Other errors (a tile that cannot be fetched) are returned as they are.
func Audit(ctx context.Context, src TileSource, cp Checkpoint) (AuditReport, error) {
	rep := AuditReport{Size: cp.Size}
	if cp.Size == 0 {
		if cp.Root != EmptyRoot {
			return rep, failure(TileMismatch, "checkpoint", "the empty tree's root is %s, the checkpoint says %s", EmptyRoot, cp.Root)
		}
		return rep, nil
	}
	// below holds the hashes of the full tiles of the level below, in order.
	var below []tlog.Hash
	var leafTiles []TileData
	edge := map[int]TileData{}
	for level := 0; level*TileHeight < 63 && cp.Size>>(level*TileHeight) > 0; level++ {
		nodes := cp.Size >> (level * TileHeight)
		var full []tlog.Hash
		for n := int64(0); n<<TileHeight < nodes; n++ {
			t := tlog.Tile{H: TileHeight, L: level, N: n, W: int(min(TileWidth, nodes-n<<TileHeight))}
			path := TilePath(t)
			data, err := src.Tile(ctx, t)
			if err != nil {
				return rep, err
			}
			rep.Tiles++
			if len(data) != t.W*tlog.HashSize {
				return rep, failure(Malformed, path, "tile is %d bytes, want %d", len(data), t.W*tlog.HashSize)
			}
			for i := range t.W {
				if j := n<<TileHeight + int64(i); level > 0 && j < int64(len(below)) && !bytes.Equal(below[j][:], data[i*tlog.HashSize:(i+1)*tlog.HashSize]) {
					child := TilePath(tlog.Tile{H: TileHeight, L: level - 1, N: j, W: TileWidth})
					return rep, failure(TileMismatch, child, "the tile hashes to %s, hash %d of %s is %s", below[j], i, path, hashAt(data, i))
				}
			}
			if level == 0 {
				leafTiles = append(leafTiles, TileData{Tile: t, Data: data})
			}
			if t.W == TileWidth {
				full = append(full, tileHash(data))
			}
			if n<<TileHeight+TileWidth >= nodes {
				edge[level] = TileData{Tile: t, Data: data}
			}
		}
		below = full
	}
	root, err := tlog.TreeHash(cp.Size, edgeReader(edge))
	if err != nil {
		return rep, failure(Malformed, "right edge", "%v", err)
	}
	if root != cp.Root {
		var paths []string
		for l := 0; l < len(edge); l++ {
			if e, ok := edge[l]; ok {
				paths = append(paths, TilePath(e.Tile))
			}
		}
		return rep, failure(TileMismatch, fmt.Sprint(paths), "the right-edge tiles hash to %s, the checkpoint's root is %s", root, cp.Root)
	}
	// The tiles are now authenticated; check the entries against them.
	forks := newForkDetector(cp.Size)
	for _, td := range leafTiles {
		if err := auditBundle(ctx, src, td.Tile, td.Data, forks); err != nil {
			return rep, err
		}
		rep.Bundles++
	}
	return rep, nil
}

// auditBundle checks the entry bundle of level-0 tile t, and records its
// entries in forks.
func auditBundle(ctx context.Context, src TileSource, t tlog.Tile, tile []byte, forks *forkDetector) error {
	bt := tlog.Tile{H: TileHeight, L: -1, N: t.N, W: t.W}
	path := TilePath(bt)
	data, err := src.EntryBundle(ctx, t.N, t.W)
	if err != nil {
		return err
	}
	leaves, err := DecodeBundle(data)
	if err != nil {
		return failure(Malformed, path, "%v", err)
	}
	if len(leaves) != t.W {
		return failure(Malformed, path, "bundle holds %d entries, want %d", len(leaves), t.W)
	}
	for i, leaf := range leaves {
		index := t.N<<TileHeight + int64(i)
		where := fmt.Sprintf("entry %d (%s)", index, path)
		if h := RecordHash(leaf); !bytes.Equal(h[:], tile[i*tlog.HashSize:(i+1)*tlog.HashSize]) {
			return failure(EntryMismatch, where, "the entry's leaf hash is %s, %s says %s", h, TilePath(t), hashAt(tile, i))
		}
		r, err := receipt.Parse(leaf)
		if err != nil {
			return failure(BadReceipt, where, "the entry is not a receipt: %v", err)
		}
		if err := verifyLeaf(&r, leaf, where); err != nil {
			return err
		}
		if !bytes.Equal(r.JSON(), leaf) {
			return failure(BadReceipt, where, "the entry is not the receipt's canonical JSON")
		}
		if ve := forks.add(index, &r); ve != nil {
			return ve
		}
	}
	return nil
}

func hashAt(data []byte, i int) tlog.Hash {
	var h tlog.Hash
	copy(h[:], data[i*tlog.HashSize:])
	return h
}

// edgeReader serves stored hashes from the right-edge tiles by level.
type edgeReader map[int]TileData

func (e edgeReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		t := tlog.TileForIndex(TileHeight, x)
		td, ok := e[t.L]
		if !ok {
			return nil, fmt.Errorf("no tile at level %d for hash %d", t.L, x)
		}
		h, err := tlog.HashFromTile(td.Tile, td.Data, x)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}
