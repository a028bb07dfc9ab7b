// Package memalerts is an in-memory alerting.Store for tests and local
// runs. It passes the same conformance suite (alertingtest) as the
// Firestore adapter: values are copied in and out, times are kept in UTC
// with microsecond precision, and commits are fenced by the lease.
package memalerts

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
)

// Store is the in-memory alerting.Store. The zero value is not usable;
// call New.
type Store struct {
	mu       sync.Mutex
	policies map[string]alerting.Policy
	silences map[string]alerting.Silence
	alerts   map[string]alerting.Alert
	leases   map[string]alerting.Lease
}

var _ alerting.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		policies: map[string]alerting.Policy{},
		silences: map[string]alerting.Silence{},
		alerts:   map[string]alerting.Alert{},
		leases:   map[string]alerting.Lease{},
	}
}

func check(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	return nil
}

// t truncates to microseconds in UTC, as Firestore keeps times.
func t(x time.Time) time.Time {
	if x.IsZero() {
		return time.Time{}
	}
	return x.UTC().Truncate(time.Microsecond)
}

func copyPolicy(p alerting.Policy) alerting.Policy {
	p.Labels = p.Labels.Clone()
	return p
}

func copySilence(s alerting.Silence) alerting.Silence {
	s.Matchers = s.Matchers.Clone()
	s.StartsAt, s.EndsAt, s.CreatedAt = t(s.StartsAt), t(s.EndsAt), t(s.CreatedAt)
	return s
}

func copyAlert(a alerting.Alert) alerting.Alert {
	a = a.Clone()
	a.ActiveAt, a.FiredAt, a.ResolvedAt = t(a.ActiveAt), t(a.FiredAt), t(a.ResolvedAt)
	a.LastNotifiedAt, a.KeepFiringSince, a.UpdatedAt = t(a.LastNotifiedAt), t(a.KeepFiringSince), t(a.UpdatedAt)
	for i := range a.Outbox {
		a.Outbox[i].Time = t(a.Outbox[i].Time)
	}
	return a
}

// PutPolicy implements alerting.Store.
func (s *Store) PutPolicy(ctx context.Context, p alerting.Policy) (bool, error) {
	const op = "memalerts.PutPolicy"
	if err := check(ctx, op); err != nil {
		return false, err
	}
	if err := p.Validate(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exists := s.policies[p.Name]
	s.policies[p.Name] = copyPolicy(p)
	return !exists, nil
}

// Policy implements alerting.Store.
func (s *Store) Policy(ctx context.Context, name string) (alerting.Policy, error) {
	const op = "memalerts.Policy"
	if err := check(ctx, op); err != nil {
		return alerting.Policy{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.policies[name]
	if !ok {
		return alerting.Policy{}, fault.Errorf(fault.NotFound, op, "no policy %q", name)
	}
	return copyPolicy(p), nil
}

// DeletePolicy implements alerting.Store.
func (s *Store) DeletePolicy(ctx context.Context, name string) error {
	const op = "memalerts.DeletePolicy"
	if err := check(ctx, op); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.policies[name]; !ok {
		return fault.Errorf(fault.NotFound, op, "no policy %q", name)
	}
	delete(s.policies, name)
	return nil
}

// Policies implements alerting.Store.
func (s *Store) Policies(ctx context.Context) ([]alerting.Policy, error) {
	if err := check(ctx, "memalerts.Policies"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]alerting.Policy, 0, len(s.policies))
	for _, p := range s.policies {
		out = append(out, copyPolicy(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PutSilence implements alerting.Store.
func (s *Store) PutSilence(ctx context.Context, sl alerting.Silence) (bool, error) {
	const op = "memalerts.PutSilence"
	if err := check(ctx, op); err != nil {
		return false, err
	}
	if err := alerting.ValidName("silence id", sl.ID); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exists := s.silences[sl.ID]
	s.silences[sl.ID] = copySilence(sl)
	return !exists, nil
}

// Silence implements alerting.Store.
func (s *Store) Silence(ctx context.Context, id string) (alerting.Silence, error) {
	const op = "memalerts.Silence"
	if err := check(ctx, op); err != nil {
		return alerting.Silence{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.silences[id]
	if !ok {
		return alerting.Silence{}, fault.Errorf(fault.NotFound, op, "no silence %q", id)
	}
	return copySilence(sl), nil
}

// DeleteSilence implements alerting.Store.
func (s *Store) DeleteSilence(ctx context.Context, id string) error {
	const op = "memalerts.DeleteSilence"
	if err := check(ctx, op); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.silences[id]; !ok {
		return fault.Errorf(fault.NotFound, op, "no silence %q", id)
	}
	delete(s.silences, id)
	return nil
}

// Silences implements alerting.Store.
func (s *Store) Silences(ctx context.Context) ([]alerting.Silence, error) {
	if err := check(ctx, "memalerts.Silences"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]alerting.Silence, 0, len(s.silences))
	for _, sl := range s.silences {
		out = append(out, copySilence(sl))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Alerts implements alerting.Store.
func (s *Store) Alerts(ctx context.Context) ([]alerting.Alert, error) {
	if err := check(ctx, "memalerts.Alerts"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]alerting.Alert, 0, len(s.alerts))
	for _, a := range s.alerts {
		out = append(out, copyAlert(a))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out, nil
}

// Alert implements alerting.Store.
func (s *Store) Alert(ctx context.Context, fp string) (alerting.Alert, error) {
	const op = "memalerts.Alert"
	if err := check(ctx, op); err != nil {
		return alerting.Alert{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.alerts[fp]
	if !ok {
		return alerting.Alert{}, fault.Errorf(fault.NotFound, op, "no alert %q", fp)
	}
	return copyAlert(a), nil
}

// CommitAlerts implements alerting.Store; the commit is one transaction.
func (s *Store) CommitAlerts(ctx context.Context, f alerting.Fence, put []alerting.Alert, del []string) error {
	const op = "memalerts.CommitAlerts"
	if err := check(ctx, op); err != nil {
		return err
	}
	for i := range put {
		if err := put[i].Validate(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.leases[f.Lease]
	if !l.HeldBy(f.Holder, f.Now) {
		return fault.Errorf(fault.Conflict, op, "lease %q is not held by %q at %s (holder %q until %s)",
			f.Lease, f.Holder, f.Now.UTC().Format(time.RFC3339Nano), l.Holder, l.Expires.UTC().Format(time.RFC3339Nano))
	}
	for _, a := range put {
		s.alerts[a.Fingerprint] = copyAlert(a)
	}
	for _, fp := range del {
		delete(s.alerts, fp)
	}
	return nil
}

// MarkSent implements alerting.Store.
func (s *Store) MarkSent(ctx context.Context, fp string, ids ...string) error {
	if err := check(ctx, "memalerts.MarkSent"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.alerts[fp]
	if !ok {
		return nil
	}
	a = a.Clone()
	if a.MarkSent(ids...) {
		s.alerts[fp] = a
	}
	return nil
}

// AcquireLease implements alerting.Store.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (alerting.Lease, error) {
	const op = "memalerts.AcquireLease"
	if err := check(ctx, op); err != nil {
		return alerting.Lease{}, err
	}
	if err := alerting.ValidName("lease name", name); err != nil {
		return alerting.Lease{}, err
	}
	if holder == "" || ttl <= 0 {
		return alerting.Lease{}, fault.Errorf(fault.Invalid, op, "lease %q needs a holder and a positive ttl", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[name]
	switch {
	case ok && l.Holder == holder:
		l.Expires = t(now.Add(ttl))
	case !ok || !now.Before(l.Expires):
		l = alerting.Lease{Name: name, Holder: holder, Expires: t(now.Add(ttl)), AcquiredAt: t(now)}
	default:
		return l, nil
	}
	s.leases[name] = l
	return l, nil
}

// ReleaseLease implements alerting.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := check(ctx, "memalerts.ReleaseLease"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[name]; ok && l.Holder == holder {
		delete(s.leases, name)
	}
	return nil
}
