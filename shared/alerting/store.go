package alerting

import (
	"context"
	"time"
)

// Store is the storage port of the monitor: policies, silences, alert
// states by fingerprint and the evaluation lease. Adapters (memalerts,
// firestore) pass the conformance suite in alertingtest.
//
// Getters of missing items return fault.NotFound errors; refused input
// is fault.Invalid; a fenced commit by an instance that does not hold
// the lease is fault.Conflict. Values are copied in and out. Times keep
// microsecond precision.
type Store interface {
	// PutPolicy creates or replaces a policy and reports whether it was
	// created.
	PutPolicy(ctx context.Context, p Policy) (created bool, err error)
	Policy(ctx context.Context, name string) (Policy, error)
	DeletePolicy(ctx context.Context, name string) error
	// Policies lists every policy by name.
	Policies(ctx context.Context) ([]Policy, error)

	// PutSilence creates or replaces a silence and reports whether it was
	// created.
	PutSilence(ctx context.Context, s Silence) (created bool, err error)
	Silence(ctx context.Context, id string) (Silence, error)
	DeleteSilence(ctx context.Context, id string) error
	// Silences lists every silence, expired ones included, by id.
	Silences(ctx context.Context) ([]Silence, error)

	// Alerts lists every alert by fingerprint.
	Alerts(ctx context.Context) ([]Alert, error)
	Alert(ctx context.Context, fingerprint string) (Alert, error)
	// CommitAlerts writes put and deletes del, each write fenced by the
	// lease: it fails with a fault.Conflict error, writing nothing
	// more, once f.Holder does not hold lease f.Lease at f.Now. Large
	// commits may be split into several transactions; each alert is
	// written whole in one of them.
	CommitAlerts(ctx context.Context, f Fence, put []Alert, del []string) error
	// MarkSent moves notifications from an alert's outbox to its sent ids
	// (see Alert.MarkSent). A missing alert or unknown id is ignored.
	MarkSent(ctx context.Context, fingerprint string, ids ...string) error

	// AcquireLease acquires lease name for holder until now+ttl, or renews
	// it if holder holds it, in one transaction, unless another holder's
	// lease is still valid at now. It returns the lease as it is after the
	// attempt: holder holds it when Lease.HeldBy(holder, now).
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (Lease, error)
	// ReleaseLease gives the lease up if holder holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Fence names the lease that guards a commit.
type Fence struct {
	Lease  string
	Holder string
	Now    time.Time
}
