package ledger

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// TilePath returns the C2SP tlog-tiles path of t: "tile/<L>/<N>[.p/<W>]"
// for a hash tile, "tile/entries/<N>[.p/<W>]" for an entry bundle (L = -1).
// The height is implied: it is always TileHeight.
func TilePath(t tlog.Tile) string {
	p := t.Path() // tile/H/L/N[.p/W], with "data" for L = -1
	p = strings.TrimPrefix(p, fmt.Sprintf("tile/%d/", t.H))
	if rest, ok := strings.CutPrefix(p, "data/"); ok {
		return "tile/entries/" + rest
	}
	return "tile/" + p
}

// ParseTilePath parses a C2SP tlog-tiles path, the inverse of TilePath.
func ParseTilePath(path string) (tlog.Tile, error) {
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return tlog.Tile{}, fault.Errorf(fault.Invalid, "ledger.ParseTilePath", "%s does not start with tile/", httpjson.Quote(path))
	}
	if r, ok := strings.CutPrefix(rest, "entries/"); ok {
		rest = "data/" + r
	}
	t, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/%s", TileHeight, rest))
	if err != nil {
		return tlog.Tile{}, fault.Errorf(fault.Invalid, "ledger.ParseTilePath", "%s is not a tile path", httpjson.Quote(path))
	}
	return t, nil
}

// TileSource serves the tiles and entry bundles of a log: a Log, or a
// TileClient reading another deployment over HTTP.
type TileSource interface {
	// Tile returns the data of t, W hashes.
	Tile(ctx context.Context, t tlog.Tile) ([]byte, error)
	// EntryBundle returns entry bundle n of width w.
	EntryBundle(ctx context.Context, n int64, w int) ([]byte, error)
}

var _ TileSource = (*Log)(nil)

// TileClient reads a log through the C2SP tlog-tiles read paths
// (<prefix>/checkpoint, <prefix>/tile/…) over HTTP, as any tile client
// does. It needs no access to the log's storage.
type TileClient struct {
	// Prefix is the log's URL prefix, e.g. "https://query.example.com".
	Prefix string
	// HTTP is the client to use; http.DefaultClient when nil.
	HTTP *http.Client
}

var _ TileSource = (*TileClient)(nil)

// Checkpoint returns the log's latest signed checkpoint.
func (c *TileClient) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.get(ctx, "checkpoint", 1<<16)
}

// Tile implements TileSource.
func (c *TileClient) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	data, err := c.get(ctx, TilePath(t), int64(t.W)*tlog.HashSize)
	if err != nil {
		return nil, err
	}
	if len(data) != t.W*tlog.HashSize {
		return nil, fault.Errorf(fault.Invalid, "ledger.TileClient", "%s is %d bytes, want %d", TilePath(t), len(data), t.W*tlog.HashSize)
	}
	return data, nil
}

// EntryBundle implements TileSource.
func (c *TileClient) EntryBundle(ctx context.Context, n int64, w int) ([]byte, error) {
	return c.get(ctx, TilePath(tlog.Tile{H: TileHeight, L: -1, N: n, W: w}), int64(w)*(2+MaxLeafBytes))
}

// get fetches prefix/path, reading at most limit bytes.
func (c *TileClient) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	const op = "ledger.TileClient"
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.Prefix, "/")+"/"+path, nil)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, op, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fault.Errorf(fault.NotFound, op, "GET %s: not found", path)
	case resp.StatusCode >= 500:
		return nil, fault.Errorf(fault.Unavailable, op, "GET %s: %s", path, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fault.Errorf(fault.Invalid, op, "GET %s: %s", path, resp.Status)
	case int64(len(body)) > limit:
		return nil, fault.Errorf(fault.Invalid, op, "GET %s: response longer than %d bytes", path, limit)
	}
	return body, nil
}
