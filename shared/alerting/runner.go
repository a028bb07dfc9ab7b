package alerting

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
)

// Publisher publishes one notification and waits for the broker's ack.
type Publisher interface {
	Publish(ctx context.Context, n Notification) error
}

// Defaults of RunnerOptions.
const (
	DefaultLeaseName       = "evaluator"
	DefaultLeaseTTL        = time.Minute
	DefaultSeriesRetention = 48 * time.Hour
)

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	Store     Store
	Publisher Publisher
	Series    *SeriesSet
	// Holder identifies this instance in the lease.
	Holder string
	// LeaseName and LeaseTTL default to DefaultLeaseName and
	// DefaultLeaseTTL. The TTL must exceed the evaluation interval.
	LeaseName string
	LeaseTTL  time.Duration
	// SeriesRetention is how long a series without samples is kept.
	SeriesRetention time.Duration
	// Clock returns the evaluation time; time.Now when nil.
	Clock   func() time.Time
	Options Options
	// Fairness configures the noisy-neighbour detector; nil disables it.
	Fairness *FairnessOptions
	Logger   *slog.Logger
}

// Runner runs evaluation cycles. It is safe for concurrent use; cycles
// run one at a time.
type Runner struct {
	o    RunnerOptions
	mu   sync.Mutex
	last Report
}

// Report describes one evaluation cycle.
type Report struct {
	At time.Time `json:"at"`
	// Evaluated is false when another instance holds the lease.
	Evaluated    bool      `json:"evaluated"`
	Holder       string    `json:"holder"`
	LeaseExpires time.Time `json:"lease_expires"`
	Policies     int       `json:"policies"`
	Series       int       `json:"series"`
	Pending      int       `json:"pending"`
	Firing       int       `json:"firing"`
	Changed      int       `json:"changed"`
	Deleted      int       `json:"deleted"`
	Notified     int       `json:"notified"`
	Republished  int       `json:"republished"`
}

// NewRunner checks the options and returns a Runner.
func NewRunner(o RunnerOptions) (*Runner, error) {
	const op = "alerting.NewRunner"
	if o.Store == nil || o.Publisher == nil || o.Series == nil {
		return nil, governor.Errorf(governor.Invalid, op, "store, publisher and series are required")
	}
	if o.Holder == "" {
		return nil, governor.Errorf(governor.Invalid, op, "holder id is required")
	}
	if o.LeaseName == "" {
		o.LeaseName = DefaultLeaseName
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.SeriesRetention <= 0 {
		o.SeriesRetention = DefaultSeriesRetention
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Fairness != nil {
		if err := o.Fairness.Validate(); err != nil {
			return nil, err
		}
	}
	return &Runner{o: o}, nil
}

// Holder returns this runner's holder id.
func (r *Runner) Holder() string { return r.o.Holder }

// LastReport returns the report of the latest cycle.
func (r *Runner) LastReport() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Evaluate runs one cycle: prune old series, acquire or renew the lease,
// and, if this instance holds it, re-publish what earlier cycles recorded
// but did not send, evaluate policies and fairness, commit the changes
// fenced by the lease and publish the new notifications.
func (r *Runner) Evaluate(ctx context.Context) (Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep, err := r.evaluate(ctx)
	r.last = rep
	return rep, err
}

func (r *Runner) evaluate(ctx context.Context) (Report, error) {
	const op = "alerting.Runner.Evaluate"
	now := r.o.Clock().UTC()
	rep := Report{At: now}
	r.o.Series.Prune(now.Add(-r.o.SeriesRetention))
	rep.Series = r.o.Series.Len()
	lease, err := r.o.Store.AcquireLease(ctx, r.o.LeaseName, r.o.Holder, now, r.o.LeaseTTL)
	if err != nil {
		return rep, err
	}
	rep.Holder, rep.LeaseExpires = lease.Holder, lease.Expires
	wasHolder := r.last.Evaluated
	if !lease.HeldBy(r.o.Holder, now) {
		if wasHolder {
			r.o.Logger.WarnContext(ctx, "evaluation lease lost", "holder", lease.Holder, "expires", lease.Expires)
		}
		return rep, nil
	}
	if !wasHolder {
		r.o.Logger.InfoContext(ctx, "evaluation lease acquired", "holder", r.o.Holder, "expires", lease.Expires)
	}
	rep.Evaluated = true
	alerts, err := r.o.Store.Alerts(ctx)
	if err != nil {
		return rep, err
	}
	policies, err := r.o.Store.Policies(ctx)
	if err != nil {
		return rep, err
	}
	silences, err := r.o.Store.Silences(ctx)
	if err != nil {
		return rep, err
	}
	rep.Policies = len(policies)
	var errs []error
	for i := range alerts {
		a := &alerts[i]
		if len(a.Outbox) == 0 {
			continue
		}
		sent, err := r.publish(ctx, a)
		rep.Republished += len(sent)
		errs = append(errs, err)
	}
	out := Evaluate(Input{Now: now, Policies: policies, Silences: silences, Alerts: alerts, Series: r.o.Series, Options: r.o.Options})
	if f := r.o.Fairness; f != nil {
		fo := EvaluateFairness(FairnessInput{Now: now, Alerts: alerts, Series: r.o.Series, Retention: r.o.Options.withDefaults().ResolvedRetention, FairnessOptions: *f})
		out.Put = append(out.Put, fo.Put...)
		out.Delete = append(out.Delete, fo.Delete...)
		out.Notifications = append(out.Notifications, fo.Notifications...)
		out.Pending += fo.Pending
		out.Firing += fo.Firing
	}
	rep.Pending, rep.Firing = out.Pending, out.Firing
	if len(out.Put) > 0 || len(out.Delete) > 0 {
		fence := Fence{Lease: r.o.LeaseName, Holder: r.o.Holder, Now: r.o.Clock().UTC()}
		if err := r.o.Store.CommitAlerts(ctx, fence, out.Put, out.Delete); err != nil {
			return rep, errors.Join(append(errs, err)...)
		}
	}
	rep.Changed, rep.Deleted = len(out.Put), len(out.Delete)
	fresh := make(map[string]bool, len(out.Notifications))
	for _, n := range out.Notifications {
		fresh[n.ID] = true
	}
	for i := range out.Put {
		a := &out.Put[i]
		for _, n := range a.Outbox {
			if fresh[n.ID] {
				r.o.Logger.InfoContext(ctx, "alert notification", "id", n.ID, "type", n.Type,
					"policy", a.Policy, "fingerprint", a.Fingerprint, "labels", a.Labels.String(),
					"state", a.State, "value", a.Value)
			}
		}
		if len(a.Outbox) == 0 {
			continue
		}
		sent, err := r.publish(ctx, a)
		rep.Notified += len(sent)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return rep, governor.Wrap(governor.Unavailable, op, err)
	}
	return rep, nil
}

// publish publishes a's outbox in order, stopping at the first failure,
// and marks what it published as sent, in the store and in a.
func (r *Runner) publish(ctx context.Context, a *Alert) ([]string, error) {
	var sent []string
	var perr error
	for _, n := range a.Outbox {
		if err := r.o.Publisher.Publish(ctx, n); err != nil {
			perr = governor.Wrap(governor.Unavailable, "alerting.Runner.publish "+n.ID, err)
			r.o.Logger.WarnContext(ctx, "notification not published, will retry", "id", n.ID, "error", err.Error())
			break
		}
		sent = append(sent, n.ID)
	}
	if len(sent) == 0 {
		return nil, perr
	}
	if err := r.o.Store.MarkSent(ctx, a.Fingerprint, sent...); err != nil {
		// The next cycle publishes them again, with the same ids.
		return sent, errors.Join(perr, err)
	}
	a.MarkSent(sent...)
	return sent, perr
}

// Release gives up the lease if this instance holds it.
func (r *Runner) Release(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last.Evaluated = false
	return r.o.Store.ReleaseLease(ctx, r.o.LeaseName, r.o.Holder)
}
