// Package memwebhook is the in-memory webhook.Store: for tests, the
// benchmark and a single process that may lose its state. Transactions run
// one at a time and apply their writes only when they succeed; a read
// after a write is refused, as Firestore refuses it.
package memwebhook

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/webhook"
)

// Store is an in-memory webhook.Store. The zero value is not usable; call
// New.
type Store struct {
	mu         sync.Mutex
	endpoints  map[string]webhook.Endpoint
	actions    map[string]webhook.Action
	deliveries map[string]webhook.Delivery
	lanes      map[string]webhook.Lane
	attempts   map[string]webhook.Attempt
}

var _ webhook.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		endpoints: map[string]webhook.Endpoint{}, actions: map[string]webhook.Action{},
		deliveries: map[string]webhook.Delivery{}, lanes: map[string]webhook.Lane{}, attempts: map[string]webhook.Attempt{},
	}
}

// tx buffers a transaction's writes.
type tx struct {
	s      *Store
	writes []func()
}

// RunTx runs f alone and applies its writes if it returns nil.
func (s *Store) RunTx(ctx context.Context, f func(ctx context.Context, tx webhook.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &tx{s: s}
	if err := f(ctx, t); err != nil {
		return err
	}
	for _, w := range t.writes {
		w()
	}
	return nil
}

func (t *tx) read() error {
	if len(t.writes) > 0 {
		return webhook.ErrReadAfterWrite
	}
	return nil
}

func (t *tx) Endpoint(id string) (webhook.Endpoint, bool, error) {
	if err := t.read(); err != nil {
		return webhook.Endpoint{}, false, err
	}
	e, ok := t.s.endpoints[id]
	return cloneEndpoint(e), ok, nil
}

func (t *tx) Action(id string) (webhook.Action, bool, error) {
	if err := t.read(); err != nil {
		return webhook.Action{}, false, err
	}
	a, ok := t.s.actions[id]
	return cloneAction(a), ok, nil
}

func (t *tx) Delivery(id string) (webhook.Delivery, bool, error) {
	if err := t.read(); err != nil {
		return webhook.Delivery{}, false, err
	}
	d, ok := t.s.deliveries[id]
	return d, ok, nil
}

func (t *tx) Lane(id string) (webhook.Lane, bool, error) {
	if err := t.read(); err != nil {
		return webhook.Lane{}, false, err
	}
	l, ok := t.s.lanes[id]
	return l, ok, nil
}

func (t *tx) PutEndpoint(e webhook.Endpoint) error {
	e = cloneEndpoint(e)
	t.writes = append(t.writes, func() { t.s.endpoints[e.ID] = e })
	return nil
}

func (t *tx) DeleteEndpoint(id string) error {
	t.writes = append(t.writes, func() { delete(t.s.endpoints, id) })
	return nil
}

func (t *tx) PutAction(a webhook.Action) error {
	a = cloneAction(a)
	t.writes = append(t.writes, func() { t.s.actions[a.ID] = a })
	return nil
}

func (t *tx) PutDelivery(d webhook.Delivery) error {
	t.writes = append(t.writes, func() { t.s.deliveries[d.ID] = d })
	return nil
}

func (t *tx) PutLane(l webhook.Lane) error {
	t.writes = append(t.writes, func() { t.s.lanes[l.ID] = l })
	return nil
}

func (t *tx) DeleteLane(id string) error {
	t.writes = append(t.writes, func() { delete(t.s.lanes, id) })
	return nil
}

func (t *tx) PutAttempt(a webhook.Attempt) error {
	t.writes = append(t.writes, func() { t.s.attempts[webhook.AttemptID(a.DeliveryID, a.N)] = a })
	return nil
}

// Endpoints returns every endpoint, by id.
func (s *Store) Endpoints(ctx context.Context) ([]webhook.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]webhook.Endpoint, 0, len(s.endpoints))
	for _, id := range slices.Sorted(maps.Keys(s.endpoints)) {
		out = append(out, cloneEndpoint(s.endpoints[id]))
	}
	return out, nil
}

// deliveries returns the deliveries keep selects, sorted by less.
func (s *Store) deliveriesWhere(keep func(*webhook.Delivery) bool, less func(a, b webhook.Delivery) int, limit int) []webhook.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []webhook.Delivery
	for _, d := range s.deliveries {
		if keep(&d) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, less)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

func byID(a, b webhook.Delivery) int { return cmp.Compare(a.ID, b.ID) }

// Due returns the due deliveries, earliest first.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]webhook.Delivery, error) {
	return s.deliveriesWhere(func(d *webhook.Delivery) bool {
		return d.State == webhook.Pending && !d.Held && !d.Due.IsZero() && !d.Due.After(now)
	}, func(a, b webhook.Delivery) int {
		return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.ID, b.ID))
	}, limit), nil
}

// Unreported returns failed deliveries not yet reported.
func (s *Store) Unreported(ctx context.Context, limit int) ([]webhook.Delivery, error) {
	return s.deliveriesWhere(func(d *webhook.Delivery) bool { return d.State == webhook.Failed && !d.Reported }, byID, limit), nil
}

// Held returns an endpoint's held deliveries.
func (s *Store) Held(ctx context.Context, endpointID string, limit int) ([]webhook.Delivery, error) {
	return s.deliveriesWhere(func(d *webhook.Delivery) bool {
		return d.Held && d.State == webhook.Pending && d.EndpointID == endpointID
	}, byID, limit), nil
}

// DeliveriesOf returns an action's deliveries, by endpoint id.
func (s *Store) DeliveriesOf(ctx context.Context, actionID string) ([]webhook.Delivery, error) {
	return s.deliveriesWhere(func(d *webhook.Delivery) bool { return d.ActionID == actionID }, func(a, b webhook.Delivery) int {
		return cmp.Compare(a.EndpointID, b.EndpointID)
	}, 0), nil
}

// AttemptsOf returns an action's attempts, by endpoint id and number.
func (s *Store) AttemptsOf(ctx context.Context, actionID string) ([]webhook.Attempt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []webhook.Attempt
	for _, a := range s.attempts {
		if a.ActionID == actionID {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b webhook.Attempt) int {
		return cmp.Or(cmp.Compare(a.EndpointID, b.EndpointID), cmp.Compare(a.N, b.N))
	})
	return out, nil
}

// Actions returns the actions of a window, by time and id.
func (s *Store) Actions(ctx context.Context, from, to, afterTime time.Time, afterID string, limit int) ([]webhook.Action, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []webhook.Action
	for _, a := range s.actions {
		if a.Time.Before(from) || !a.Time.Before(to) {
			continue
		}
		if afterID != "" && cmp.Or(a.Time.Compare(afterTime), cmp.Compare(a.ID, afterID)) <= 0 {
			continue
		}
		out = append(out, cloneAction(a))
	}
	slices.SortFunc(out, func(a, b webhook.Action) int { return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID)) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func cloneEndpoint(e webhook.Endpoint) webhook.Endpoint {
	e.Kinds = slices.Clone(e.Kinds)
	e.Secrets = slices.Clone(e.Secrets)
	return e
}

func cloneAction(a webhook.Action) webhook.Action {
	a.Data = json.RawMessage(slices.Clone([]byte(a.Data)))
	a.Raw = slices.Clone(a.Raw)
	a.Attributes = maps.Clone(a.Attributes)
	return a
}
