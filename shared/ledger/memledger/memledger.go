// Package memledger is the in-memory ledger.Store of Autonomics. It backs
// unit tests and single-process tools, and passes the same conformance
// suite (ledgertest) as the Firestore ledger.
package memledger

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
)

// Store is an in-memory ledger.Store. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	entries map[string]*ledger.Entry
	pending map[string]bool
	byIndex map[int64]string
	tiles   map[[2]int64][]byte
	state   ledger.State
	batch   *ledger.Batch
	lease   ledger.Lease
}

var _ ledger.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		entries: map[string]*ledger.Entry{},
		pending: map[string]bool{},
		byIndex: map[int64]string{},
		tiles:   map[[2]int64][]byte{},
	}
}

func live(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	return nil
}

// AddPending implements ledger.Store.
func (s *Store) AddPending(ctx context.Context, entries []ledger.Entry) (int, error) {
	const op = "memledger.AddPending"
	if err := live(ctx, op); err != nil {
		return 0, err
	}
	for _, e := range entries {
		if !ledger.IsReceiptHash(e.Hash) || len(e.Leaf) == 0 || len(e.Leaf) > ledger.MaxLeafBytes {
			return 0, fault.Errorf(fault.Invalid, op, "entry %q: want a receipt hash and a leaf of 1…%d bytes", e.Hash, ledger.MaxLeafBytes)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	added := 0
	for _, e := range entries {
		if _, ok := s.entries[e.Hash]; ok {
			continue
		}
		s.entries[e.Hash] = &ledger.Entry{Hash: e.Hash, Leaf: slices.Clone(e.Leaf), Index: ledger.Unassigned, ArrivedAt: e.ArrivedAt.UTC()}
		s.pending[e.Hash] = true
		added++
	}
	return added, nil
}

// DropPending implements ledger.Store.
func (s *Store) DropPending(ctx context.Context, f ledger.Fence, hashes []string) error {
	const op = "memledger.DropPending"
	if err := live(ctx, op); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.holds(op, f); err != nil {
		return err
	}
	s.renew(f)
	var inBatch map[string]bool
	if s.batch != nil {
		inBatch = make(map[string]bool, len(s.batch.Hashes))
		for _, h := range s.batch.Hashes {
			inBatch[h] = true
		}
	}
	for _, h := range hashes {
		if !s.pending[h] || inBatch[h] {
			continue
		}
		delete(s.pending, h)
		if e := s.entries[h]; e != nil && e.Index == ledger.Unassigned {
			delete(s.entries, h)
		}
	}
	return nil
}

// Pending implements ledger.Store.
func (s *Store) Pending(ctx context.Context, limit int) ([]ledger.Entry, error) {
	if err := live(ctx, "memledger.Pending"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ledger.Entry, 0, len(s.pending))
	for h := range s.pending {
		e := copyEntry(s.entries[h])
		e.Pending = true
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b ledger.Entry) int { return cmp.Compare(a.Hash, b.Hash) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func copyEntry(e *ledger.Entry) ledger.Entry {
	c := *e
	c.Leaf = slices.Clone(e.Leaf)
	return c
}

// Lookup implements ledger.Store.
func (s *Store) Lookup(ctx context.Context, hashes []string) (map[string]ledger.Entry, error) {
	if err := live(ctx, "memledger.Lookup"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]ledger.Entry, len(hashes))
	for _, h := range hashes {
		if e, ok := s.entries[h]; ok {
			c := copyEntry(e)
			c.Pending = s.pending[h]
			out[h] = c
		}
	}
	return out, nil
}

// Written implements ledger.Store.
func (s *Store) Written(ctx context.Context, hashes []string) (map[string]ledger.Entry, error) {
	if err := live(ctx, "memledger.Written"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]ledger.Entry, len(hashes))
	for _, h := range hashes {
		if e, ok := s.entries[h]; ok && e.Index != ledger.Unassigned {
			c := copyEntry(e)
			c.Pending = false
			out[h] = c
		}
	}
	return out, nil
}

// Leaves implements ledger.Store.
func (s *Store) Leaves(ctx context.Context, start, end int64) ([][]byte, error) {
	const op = "memledger.Leaves"
	if err := live(ctx, op); err != nil {
		return nil, err
	}
	if start < 0 || end < start {
		return nil, fault.Errorf(fault.Invalid, op, "range %d…%d", start, end)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, 0, end-start)
	for i := start; i < end; i++ {
		h, ok := s.byIndex[i]
		if !ok {
			return nil, fault.Errorf(fault.NotFound, op, "entry %d is not in the log", i)
		}
		e := s.entries[h]
		if e == nil || e.Index != i {
			return nil, fault.Errorf(fault.Internal, op, "entry %d is receipt %s, whose stored entry says otherwise", i, h)
		}
		out = append(out, slices.Clone(e.Leaf))
	}
	return out, nil
}

// Tiles implements ledger.Store.
func (s *Store) Tiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error) {
	const op = "memledger.Tiles"
	if err := live(ctx, op); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != ledger.TileHeight || t.L < 0 || t.W < 1 || t.W > ledger.TileWidth {
			return nil, fault.Errorf(fault.Invalid, op, "%s is not a hash tile of height %d", ledger.TilePath(t), ledger.TileHeight)
		}
		data := s.tiles[[2]int64{int64(t.L), t.N}]
		if len(data) < t.W*tlog.HashSize {
			return nil, fault.Errorf(fault.NotFound, op, "%s is not stored (%d hashes stored)", ledger.TilePath(t), len(data)/tlog.HashSize)
		}
		out[i] = slices.Clone(data[:t.W*tlog.HashSize])
	}
	return out, nil
}

// State implements ledger.Store.
func (s *Store) State(ctx context.Context) (ledger.State, error) {
	if err := live(ctx, "memledger.State"); err != nil {
		return ledger.State{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.Checkpoint = slices.Clone(st.Checkpoint)
	return st, nil
}

// Batch implements ledger.Store.
func (s *Store) Batch(ctx context.Context) (ledger.Batch, bool, error) {
	if err := live(ctx, "memledger.Batch"); err != nil {
		return ledger.Batch{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch == nil {
		return ledger.Batch{}, false, nil
	}
	b := *s.batch
	b.Hashes = slices.Clone(b.Hashes)
	return b, true, nil
}

// AcquireLease implements ledger.Store.
func (s *Store) AcquireLease(ctx context.Context, holder string, now time.Time, ttl time.Duration) (ledger.Lease, error) {
	const op = "memledger.AcquireLease"
	if err := live(ctx, op); err != nil {
		return ledger.Lease{}, err
	}
	if holder == "" || ttl <= 0 {
		return ledger.Lease{}, fault.Errorf(fault.Invalid, op, "a holder and a positive ttl are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease.Holder == "" || s.lease.Holder == holder || !now.Before(s.lease.ExpiresAt) {
		s.lease = ledger.Lease{Holder: holder, ExpiresAt: now.Add(ttl).UTC()}
	}
	return s.lease, nil
}

// ReleaseLease implements ledger.Store.
func (s *Store) ReleaseLease(ctx context.Context, holder string) error {
	if err := live(ctx, "memledger.ReleaseLease"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease.Holder == holder {
		s.lease = ledger.Lease{}
	}
	return nil
}

// holds checks that f's holder holds the lease; s.mu is held.
func (s *Store) holds(op string, f ledger.Fence) error {
	if s.lease.Holder != f.Holder || f.Holder == "" {
		return fault.Errorf(fault.Conflict, op, "%q does not hold the lease (held by %q)", f.Holder, s.lease.Holder)
	}
	return nil
}

// renew extends the lease f holds; s.mu is held.
func (s *Store) renew(f ledger.Fence) {
	if f.TTL > 0 {
		s.lease.ExpiresAt = f.Now.Add(f.TTL).UTC()
	}
}

// BeginBatch implements ledger.Store.
func (s *Store) BeginBatch(ctx context.Context, f ledger.Fence, b ledger.Batch) error {
	const op = "memledger.BeginBatch"
	if err := live(ctx, op); err != nil {
		return err
	}
	if err := ledger.CheckBatch(b); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.holds(op, f); err != nil {
		return err
	}
	if err := s.startsAt(op, b.Start); err != nil {
		return err
	}
	s.renew(f)
	c := b
	c.Hashes = slices.Clone(b.Hashes)
	c.CreatedAt = b.CreatedAt.UTC()
	s.batch = &c
	return nil
}

// WriteEntries implements ledger.Store.
func (s *Store) WriteEntries(ctx context.Context, f ledger.Fence, start int64, entries []ledger.Entry) error {
	const op = "memledger.WriteEntries"
	if err := live(ctx, op); err != nil {
		return err
	}
	for _, e := range entries {
		if !ledger.IsReceiptHash(e.Hash) || len(e.Leaf) == 0 {
			return fault.Errorf(fault.Invalid, op, "entry %q: want a receipt hash and a leaf", e.Hash)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.holds(op, f); err != nil {
		return err
	}
	s.write(start, entries)
	return nil
}

// write stores entries at start onwards, no longer pending. Called with
// s.mu held.
func (s *Store) write(start int64, entries []ledger.Entry) {
	for i, e := range entries {
		s.entries[e.Hash] = &ledger.Entry{Hash: e.Hash, Leaf: slices.Clone(e.Leaf), Index: start + int64(i), ArrivedAt: e.ArrivedAt.UTC()}
		delete(s.pending, e.Hash)
	}
}

// AbandonBatch implements ledger.Store.
func (s *Store) AbandonBatch(ctx context.Context, f ledger.Fence, b ledger.Batch) error {
	const op = "memledger.AbandonBatch"
	if err := live(ctx, op); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.holds(op, f); err != nil {
		return err
	}
	if s.batch == nil || s.batch.Start != b.Start || !slices.Equal(s.batch.Hashes, b.Hashes) {
		return fault.Errorf(fault.Conflict, op, "the batch at %d of %d entries is not in progress", b.Start, len(b.Hashes))
	}
	s.renew(f)
	s.batch = nil
	return nil
}

// CommitBatch implements ledger.Store.
func (s *Store) CommitBatch(ctx context.Context, f ledger.Fence, c ledger.Commit) error {
	const op = "memledger.CommitBatch"
	if err := live(ctx, op); err != nil {
		return err
	}
	if err := ledger.CheckCommit(c); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.holds(op, f); err != nil {
		return err
	}
	switch {
	case s.batch == nil:
		return fault.Errorf(fault.Conflict, op, "no batch is in progress")
	case s.batch.Start != c.Batch.Start || !slices.Equal(s.batch.Hashes, c.Batch.Hashes):
		return fault.Errorf(fault.Conflict, op, "the batch in progress (at %d, %d entries) is not the batch committed (at %d, %d entries)",
			s.batch.Start, len(s.batch.Hashes), c.Batch.Start, len(c.Batch.Hashes))
	case s.state.Size != c.Batch.Start:
		return fault.Errorf(fault.Conflict, op, "batch starts at %d, the log's size is %d", c.Batch.Start, s.state.Size)
	}
	s.renew(f)
	s.commit(c)
	s.batch = nil
	return nil
}

// commit stores c's tiles, the indexes of its batch and its state.
// Called with s.mu held.
func (s *Store) commit(c ledger.Commit) {
	for _, t := range c.Tiles {
		s.tiles[[2]int64{int64(t.Tile.L), t.Tile.N}] = slices.Clone(t.Data)
	}
	for i, h := range c.Batch.Hashes {
		s.byIndex[c.Batch.Start+int64(i)] = h
	}
	st := c.State
	st.Checkpoint = slices.Clone(st.Checkpoint)
	st.UpdatedAt = st.UpdatedAt.UTC()
	s.state = st
}

// startsAt fails with a fault.Conflict error unless a new batch may
// start at start: none is in progress and the log's size is start.
// Called with s.mu held.
func (s *Store) startsAt(op string, start int64) error {
	switch {
	case s.batch != nil:
		return fault.Errorf(fault.Conflict, op, "a batch at %d is in progress", s.batch.Start)
	case start != s.state.Size:
		return fault.Errorf(fault.Conflict, op, "batch starts at %d, the log's size is %d", start, s.state.Size)
	}
	return nil
}

// AppendBatch implements ledger.Store.
func (s *Store) AppendBatch(ctx context.Context, f ledger.Fence, c ledger.Commit, entries []ledger.Entry) error {
	const op = "memledger.AppendBatch"
	if err := live(ctx, op); err != nil {
		return err
	}
	if err := ledger.CheckAppend(c, entries); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.holds(op, f); err != nil {
		return err
	}
	if err := s.startsAt(op, c.Batch.Start); err != nil {
		return err
	}
	s.renew(f)
	s.write(c.Batch.Start, entries)
	s.commit(c)
	return nil
}

// SetTile replaces the stored data of tile (level, n) behind the log's
// back. It exists to test that verification detects tampering.
func (s *Store) SetTile(level int, n int64, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tiles[[2]int64{int64(level), n}] = slices.Clone(data)
}

// SetLeaf replaces the stored leaf of entry hash behind the log's back.
// It exists to test that verification detects tampering.
func (s *Store) SetLeaf(hash string, leaf []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[hash]; ok {
		e.Leaf = slices.Clone(leaf)
	}
}
