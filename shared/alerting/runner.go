package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
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
	// DefaultParallelism bounds the queries a cycle runs at once.
	DefaultParallelism = 8
	// DefaultQueryTimeout bounds one query.
	DefaultQueryTimeout = 10 * time.Second
	// DefaultMaxSeriesPerPolicy bounds the series one policy may return.
	DefaultMaxSeriesPerPolicy = 1000
	// DefaultMaxSeriesPerQuery bounds the series of one query shared by
	// several simple policies.
	DefaultMaxSeriesPerQuery = 10 * DefaultMaxSeriesPerPolicy
)

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	Store     Store
	Publisher Publisher
	// Querier answers the policies' PromQL: the metrics engine.
	Querier Querier
	// Holder identifies this instance in the lease.
	Holder string
	// LeaseName and LeaseTTL default to DefaultLeaseName and
	// DefaultLeaseTTL. The TTL must exceed the evaluation interval.
	LeaseName string
	LeaseTTL  time.Duration
	// SeriesRetention is how long a series without samples still counts as
	// quiet rather than gone (CompileOptions); 0 means
	// DefaultSeriesRetention.
	SeriesRetention time.Duration
	// Parallelism bounds the queries run at once; 0 means
	// DefaultParallelism.
	Parallelism int
	// QueryTimeout bounds one query; 0 means DefaultQueryTimeout.
	QueryTimeout time.Duration
	// MaxSeriesPerPolicy bounds the series one policy may return: a policy
	// returning more fails for the cycle (its alerts keep their state);
	// 0 means DefaultMaxSeriesPerPolicy.
	MaxSeriesPerPolicy int
	// MaxSeriesPerQuery bounds the series of one query shared by the
	// simple policies of a metric: a shared answer with more series (or
	// over the engine's response limit, ErrAnswerTooLarge) is replaced by
	// the policies' own queries. 0 means DefaultMaxSeriesPerQuery.
	MaxSeriesPerQuery int
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
	// Failed counts the policies whose queries failed this cycle; their
	// alerts kept their state. FairnessFailed says that the fairness
	// query failed.
	Failed         int  `json:"failed_policies"`
	FairnessFailed bool `json:"fairness_failed,omitempty"`
	Pending        int  `json:"pending"`
	Firing         int  `json:"firing"`
	Changed        int  `json:"changed"`
	Deleted        int  `json:"deleted"`
	Notified       int  `json:"notified"`
	Republished    int  `json:"republished"`
}

// NewRunner checks the options and returns a Runner.
func NewRunner(o RunnerOptions) (*Runner, error) {
	const op = "alerting.NewRunner"
	if o.Store == nil || o.Publisher == nil || o.Querier == nil {
		return nil, fault.Errorf(fault.Invalid, op, "store, publisher and querier are required")
	}
	if o.Holder == "" {
		return nil, fault.Errorf(fault.Invalid, op, "holder id is required")
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
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.MaxSeriesPerPolicy <= 0 {
		o.MaxSeriesPerPolicy = DefaultMaxSeriesPerPolicy
	}
	if o.MaxSeriesPerQuery <= 0 {
		o.MaxSeriesPerQuery = DefaultMaxSeriesPerQuery
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

// Evaluate runs one cycle: acquire or renew the lease and, if this
// instance holds it, re-publish what earlier cycles recorded but did not
// send, query the metrics engine for every policy (the simple policies of
// one metric share their queries) and for fairness,
// evaluate, commit the changes fenced by the lease and publish the new
// notifications. A policy whose queries fail keeps its alerts' state and
// the cycle returns an Unavailable error after committing the rest.
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
	results, qerr := r.query(ctx, policies, now)
	rep.Failed = len(policies) - len(results)
	if qerr != nil {
		errs = append(errs, qerr)
	}
	out := Evaluate(Input{Now: now, Policies: policies, Silences: silences, Alerts: alerts, Results: results, Options: r.o.Options})
	if f := r.o.Fairness; f != nil {
		elems, err := r.run(ctx, FairnessQuery(*f), now)
		if err != nil {
			rep.FairnessFailed = true
			errs = append(errs, fmt.Errorf("fairness: %w", err))
		} else {
			fo := EvaluateFairness(FairnessInput{Now: now, Alerts: alerts, Shares: ParseShares(elems, *f), Retention: r.o.Options.withDefaults().ResolvedRetention, FairnessOptions: *f})
			out.Put = append(out.Put, fo.Put...)
			out.Delete = append(out.Delete, fo.Delete...)
			out.Notifications = append(out.Notifications, fo.Notifications...)
			out.Pending += fo.Pending
			out.Firing += fo.Firing
		}
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
		return rep, fault.Wrap(fault.Unavailable, op, err)
	}
	return rep, nil
}

// query answers the queries of every policy at now, at most Parallelism
// queries at once, and returns the active series of the policies whose
// queries all succeeded, with an error summing up the failures. The
// simple policies of one metric share their queries (see plan); a shared
// answer over MaxSeriesPerQuery or the engine's response limit is
// replaced by the policies' own queries.
func (r *Runner) query(ctx context.Context, policies []Policy, now time.Time) (map[string][]Active, error) {
	const op = "alerting.Runner.query"
	co := CompileOptions{Lookback: r.o.Options.withDefaults().Lookback, SeriesRetention: r.o.SeriesRetention}
	compiled := make([][]Query, len(policies))
	answers := make([][][]Element, len(policies))
	failed := make([]error, len(policies))
	for i := range policies {
		compiled[i] = policies[i].Compile(co)
		answers[i] = make([][]Element, len(compiled[i]))
	}
	var mu sync.Mutex
	// answer records the answer of one slot; the caller holds mu.
	answer := func(s querySlot, elems []Element, err error) {
		if err == nil && len(elems) > r.o.MaxSeriesPerPolicy {
			err = fault.Errorf(fault.Invalid, op, "returns %d series, limit %d per policy", len(elems), r.o.MaxSeriesPerPolicy)
			elems = nil
		}
		if err != nil && failed[s.policy] == nil {
			failed[s.policy] = err
		}
		answers[s.policy][s.query] = elems
	}
	jobs := plan(policies, compiled, co)
	var own []querySlot
	r.parallel(len(jobs), func(k int) {
		jb := &jobs[k]
		elems, err := r.run(ctx, jb.expr, now)
		if jb.shared && (errors.Is(err, ErrAnswerTooLarge) || err == nil && len(elems) > r.o.MaxSeriesPerQuery) {
			r.o.Logger.WarnContext(ctx, "shared query too large, its policies are queried one by one",
				"policies", len(jb.slots), "series", len(elems), "limit", r.o.MaxSeriesPerQuery)
			mu.Lock()
			own = append(own, jb.slots...)
			mu.Unlock()
			return
		}
		var parts [][]Element
		switch {
		case err != nil:
			parts = make([][]Element, len(jb.slots))
		case jb.shared:
			parts = jb.split(policies, elems)
		default:
			parts = [][]Element{elems}
		}
		mu.Lock()
		defer mu.Unlock()
		for i, s := range jb.slots {
			answer(s, parts[i], err)
		}
	})
	r.parallel(len(own), func(k int) {
		s := own[k]
		elems, err := r.run(ctx, compiled[s.policy][s.query].Expr, now)
		mu.Lock()
		defer mu.Unlock()
		answer(s, elems, err)
	})
	results := make(map[string][]Active, len(policies))
	var errs []error
	for i := range policies {
		p := &policies[i]
		if err := failed[i]; err != nil {
			if len(errs) < 3 {
				errs = append(errs, fmt.Errorf("policy %s: %w", p.Name, err))
			}
			r.o.Logger.WarnContext(ctx, "policy not evaluated, its alerts keep their state", "policy", p.Name, "error", err.Error())
			continue
		}
		results[p.Name] = p.Activate(compiled[i], answers[i])
	}
	if n := len(policies) - len(results); n > 0 {
		return results, fault.Wrap(fault.Unavailable, op, fmt.Errorf("%d of %d policies not evaluated: %w", n, len(policies), errors.Join(errs...)))
	}
	return results, nil
}

// parallel calls do(0), …, do(n-1), at most Parallelism at once, and
// returns when all have returned.
func (r *Runner) parallel(n int, do func(int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(r.o.Parallelism, n) {
		wg.Go(func() {
			for k := range next {
				do(k)
			}
		})
	}
	for k := range n {
		next <- k
	}
	close(next)
	wg.Wait()
}

// run runs one query within the query timeout.
func (r *Runner) run(ctx context.Context, expr string, at time.Time) ([]Element, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.QueryTimeout)
	defer cancel()
	return r.o.Querier.Query(ctx, expr, at)
}

// publish publishes a's outbox in order, stopping at the first failure,
// and marks what it published as sent, in the store and in a.
func (r *Runner) publish(ctx context.Context, a *Alert) ([]string, error) {
	var sent []string
	var perr error
	for _, n := range a.Outbox {
		if err := r.o.Publisher.Publish(ctx, n); err != nil {
			perr = fault.Wrap(fault.Unavailable, "alerting.Runner.publish "+n.ID, err)
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
