package usage

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/autonomics/autonomics/shared/fault"
)

// MemStore is a WindowStore in memory, for tests and local runs. It is
// safe for concurrent use and passes the usagetest conformance suite.
type MemStore struct {
	mu      sync.Mutex
	cursors map[string]Cursor
	blocks  map[string]Block
}

var _ WindowStore = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{cursors: map[string]Cursor{}, blocks: map[string]Block{}}
}

// CursorID is the id of the cursor of (entitlement, metric):
// "{entitlement}~{metric}".
func CursorID(entitlement, metric string) string { return entitlement + "~" + metric }

// Cursor returns a copy of the stored cursor.
func (m *MemStore) Cursor(ctx context.Context, entitlement, metric string) (Cursor, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.cursors[CursorID(entitlement, metric)]
	return clone(c), ok, nil
}

// Cursors returns the entitlement's cursors in metric order.
func (m *MemStore) Cursors(ctx context.Context, entitlement string) ([]Cursor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Cursor
	for id, c := range m.cursors {
		if strings.HasPrefix(id, entitlement+"~") {
			out = append(out, clone(c))
		}
	}
	slices.SortFunc(out, func(a, b Cursor) int { return strings.Compare(a.Metric, b.Metric) })
	if len(out) > MaxCursors {
		out = out[:MaxCursors]
	}
	return out, nil
}

// PutCursor writes c over version c.Version-1.
func (m *MemStore) PutCursor(ctx context.Context, c Cursor) error {
	const op = "usage.MemStore.PutCursor"
	if err := ValidCursor(c); err != nil {
		return fault.Wrap(fault.Invalid, op, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id := CursorID(c.Entitlement, c.Metric)
	if cur := m.cursors[id]; cur.Version != c.Version-1 {
		return fault.Errorf(fault.Conflict, op, "cursor %s is at version %d, not %d", id, cur.Version, c.Version-1)
	}
	m.cursors[id] = clone(c)
	return nil
}

// Block returns the entitlement's block.
func (m *MemStore) Block(ctx context.Context, entitlement string) (Block, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blocks[entitlement]
	return b, ok, nil
}

// PutBlock writes b.
func (m *MemStore) PutBlock(ctx context.Context, b Block) error {
	if !validID(b.Entitlement) || !validID(b.Tenant) {
		return fault.Errorf(fault.Invalid, "usage.MemStore.PutBlock", "block %q of tenant %q: ids must be 1-128 of [A-Za-z0-9._-]", b.Entitlement, b.Tenant)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocks[b.Entitlement] = b
	return nil
}

// DeleteBlock removes the entitlement's block.
func (m *MemStore) DeleteBlock(ctx context.Context, entitlement string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blocks, entitlement)
	return nil
}

// clone copies c's pending windows so that callers share nothing with the
// store.
func clone(c Cursor) Cursor {
	c.Pending = slices.Clone(c.Pending)
	return c
}
