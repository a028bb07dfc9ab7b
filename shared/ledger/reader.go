package ledger

import (
	"context"
	"errors"
	"sync"

	"github.com/autonomics/autonomics/shared/fault"
	"golang.org/x/mod/sumdb/tlog"
)

// tileFetcher returns the data of tiles of height TileHeight, as
// Store.Tiles does.
type tileFetcher func(ctx context.Context, tiles []tlog.Tile) ([][]byte, error)

// treeReader is a tlog.HashReader for the stored hashes of one tree: it
// fetches tiles, authenticates them against the tree's root hash the
// first time (with tlog.TileHashReader) and serves later reads from the
// authenticated tiles. It is not safe for concurrent use.
type treeReader struct {
	ctx      context.Context
	tree     tlog.Tree
	fetch    tileFetcher
	verified map[tlog.Tile][]byte
	fetched  map[tlog.Tile][]byte
	// cache, when set, shares authenticated tiles between readers.
	cache *tileCache
}

func newTreeReader(ctx context.Context, tree tlog.Tree, fetch tileFetcher) *treeReader {
	return &treeReader{ctx: ctx, tree: tree, fetch: fetch, verified: map[tlog.Tile][]byte{}, fetched: map[tlog.Tile][]byte{}}
}

// tileCache holds tiles that were authenticated against a checkpoint. A
// full tile never changes once written, and the log only grows by
// extending its authenticated right edge, so a full tile authenticated
// once is valid in every later tree of the log; partial tiles are kept for
// the one tree they were authenticated against. It is safe for concurrent
// use and holds at most maxTiles full tiles.
type tileCache struct {
	mu       sync.Mutex
	maxTiles int
	full     map[tlog.Tile][]byte
	edgeTree tlog.Tree
	edge     map[tlog.Tile][]byte
}

func newTileCache(maxTiles int) *tileCache {
	return &tileCache{maxTiles: maxTiles, full: map[tlog.Tile][]byte{}, edge: map[tlog.Tile][]byte{}}
}

// get returns tile t of tree, if it was authenticated.
func (c *tileCache) get(tree tlog.Tree, t tlog.Tile) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.W == TileWidth {
		d, ok := c.full[t]
		return d, ok
	}
	if tree != c.edgeTree {
		return nil, false
	}
	d, ok := c.edge[t]
	return d, ok
}

// put records tile t as authenticated against tree.
func (c *tileCache) put(tree tlog.Tree, t tlog.Tile, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.W == TileWidth {
		if len(c.full) >= c.maxTiles {
			clear(c.full)
		}
		c.full[t] = data
		return
	}
	if tree != c.edgeTree {
		c.edgeTree = tree
		clear(c.edge)
	}
	c.edge[t] = data
}

// errInconsistentTiles marks tiles that do not hash to the tree's root.
var errInconsistentTiles = errors.New("stored tiles do not match the checkpoint")

// ReadHashes implements tlog.HashReader.
func (r *treeReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= tlog.StoredHashIndex(0, r.tree.N) {
			return nil, fault.Errorf(fault.Invalid, "ledger.ReadHashes", "hash %d is not in the tree of size %d", x, r.tree.N)
		}
		t := treeTile(x, r.tree.N)
		data, ok := r.verified[t]
		if !ok && r.cache != nil {
			data, ok = r.cache.get(r.tree, t)
		}
		if !ok {
			return r.authenticate(indexes)
		}
		h, err := tlog.HashFromTile(t, data, x)
		if err != nil {
			return nil, fault.Wrap(fault.Internal, "ledger.ReadHashes", err)
		}
		out[i] = h
	}
	return out, nil
}

// authenticate reads indexes through tlog.TileHashReader, which checks the
// tiles against the root and saves them in r.verified.
func (r *treeReader) authenticate(indexes []int64) ([]tlog.Hash, error) {
	hashes, err := tlog.TileHashReader(r.tree, (*tileReader)(r)).ReadHashes(indexes)
	if err == nil {
		return hashes, nil
	}
	var ge *fault.Error
	if errors.As(err, &ge) {
		return nil, err
	}
	return nil, fault.Errorf(fault.Conflict, "ledger.ReadHashes", "%v of tree size %d: %v", errInconsistentTiles, r.tree.N, err)
}

// tileReader is the tlog.TileReader view of a treeReader.
type tileReader treeReader

func (r *tileReader) Height() int { return TileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	var missing []tlog.Tile
	var at []int
	for i, t := range tiles {
		if d, ok := r.verified[t]; ok {
			out[i] = d
		} else if d, ok := r.fetched[t]; ok {
			out[i] = d
		} else {
			missing = append(missing, t)
			at = append(at, i)
		}
	}
	if len(missing) > 0 {
		data, err := r.fetch(r.ctx, missing)
		if err != nil {
			return nil, err
		}
		for j, d := range data {
			out[at[j]] = d
			r.fetched[missing[j]] = d
		}
	}
	return out, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		r.verified[t] = data[i]
		delete(r.fetched, t)
		if r.cache != nil {
			r.cache.put(r.tree, t, data[i])
		}
	}
}

// treeTile returns the tile of height TileHeight that holds stored hash x
// in the tree of size n: as wide as the tree allows at its level.
func treeTile(x, n int64) tlog.Tile {
	t := tlog.TileForIndex(TileHeight, x)
	t.W = TileWidth
	if limit := n >> (t.L * TileHeight); t.N<<TileHeight+TileWidth >= limit {
		t.W = int(limit - t.N<<TileHeight)
	}
	return t
}

// tileHash returns the Merkle hash of the subtree a full tile spans.
func tileHash(data []byte) tlog.Hash {
	if len(data) == tlog.HashSize {
		var h tlog.Hash
		copy(h[:], data)
		return h
	}
	n := len(data) / 2
	return tlog.NodeHash(tileHash(data[:n]), tileHash(data[n:]))
}
