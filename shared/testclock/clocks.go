package testclock

import (
	"container/list"
	"context"
	"maps"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// DefaultMaxTenants is how many tenants' clocks a Memory keeps.
const DefaultMaxTenants = 10000

// State is a tenant's test clock between advances.
type State struct {
	// Offset is how far the tenant's clock runs ahead of real time; it
	// only grows.
	Offset time.Duration
	// To is the target of the last complete advance; zero before the
	// first.
	To time.Time
	// Timers maps the ids of the tenant's armed timers to the offset the
	// clock had when each was first seen.
	Timers map[string]time.Duration
}

// Clocks keeps the tenants' clocks.
type Clocks interface {
	// Load returns the tenant's clock; the zero State when it has none.
	Load(ctx context.Context, tenant string) (State, error)
	// Save replaces the tenant's clock.
	Save(ctx context.Context, tenant string, s State) error
}

// Memory keeps the clocks of the tenants advanced last in the process, at
// most max of them: the clock of a tenant dropped starts again at real
// time. It is safe for concurrent use.
type Memory struct {
	max int

	mu    sync.Mutex
	order *list.List // of string tenants, most recently saved first
	byID  map[string]*list.Element
	state map[string]State
}

// NewMemory returns a Memory of at most max tenants (DefaultMaxTenants
// when max <= 0).
func NewMemory(max int) *Memory {
	if max <= 0 {
		max = DefaultMaxTenants
	}
	return &Memory{max: max, order: list.New(), byID: map[string]*list.Element{}, state: map[string]State{}}
}

// Load implements Clocks.
func (m *Memory) Load(ctx context.Context, tenant string) (State, error) {
	if err := ctx.Err(); err != nil {
		return State{}, fault.Wrap(fault.Unavailable, "testclock.Memory.Load", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state[tenant]
	s.Timers = maps.Clone(s.Timers)
	return s, nil
}

// Save implements Clocks.
func (m *Memory) Save(ctx context.Context, tenant string, s State) error {
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, "testclock.Memory.Save", err)
	}
	s.Timers = maps.Clone(s.Timers)
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.byID[tenant]; ok {
		m.order.MoveToFront(e)
	} else {
		m.byID[tenant] = m.order.PushFront(tenant)
	}
	m.state[tenant] = s
	for m.order.Len() > m.max {
		e := m.order.Back()
		t := m.order.Remove(e).(string)
		delete(m.byID, t)
		delete(m.state, t)
	}
	return nil
}

// Len returns how many tenants' clocks m keeps.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.state)
}
