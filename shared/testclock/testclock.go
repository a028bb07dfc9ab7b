package testclock

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// Defaults of Options.
const (
	// DefaultMaxTimers is how many timers one Advance fires at most.
	DefaultMaxTimers = 100
	// DefaultMaxAhead is how far ahead of the tenant's clock an advance
	// may go.
	DefaultMaxAhead = 5 * 365 * 24 * time.Hour
	// DefaultHold is how long the tick leaves a timer the test clock is
	// firing to the test clock.
	DefaultHold = time.Minute
	// DefaultPollEvery and DefaultWaitTimeout are how often and how long
	// Advance polls for the receipt of a fired timer.
	DefaultPollEvery   = 100 * time.Millisecond
	DefaultWaitTimeout = 30 * time.Second
	// publishAttempts is how many times a timeout is published before
	// Advance gives up on it.
	publishAttempts = 3
)

// ErrMoreDue is in the chain of the error Advance returns when it fired
// Options.MaxTimers timers and more fall due by the target: advancing
// again to the same time fires them.
var ErrMoreDue = errors.New("more timers fall due by the target")

// Store is what a test clock needs of the governors' store; store.Store
// has it.
type Store interface {
	// Instances lists the instances of a tenant, with their armed timers.
	Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error)
	// MoveTimer moves the due time of an armed timer.
	MoveTimer(ctx context.Context, k governor.Key, name string, due time.Time) (governor.Timer, error)
	// ReceiptsByExecution returns the receipts of the event with that id.
	ReceiptsByExecution(ctx context.Context, executionID string) ([]receipt.Receipt, error)
}

// Wait says how Advance waits for the receipt of a fired timer: it polls
// Store.ReceiptsByExecution every Every (DefaultPollEvery when zero) for
// at most Timeout (DefaultWaitTimeout when zero).
type Wait struct {
	Every   time.Duration
	Timeout time.Duration
}

// Options configure a Clock.
type Options struct {
	// Enabled is false in production: every call answers NotFound.
	Enabled   bool
	Store     Store
	Publisher engine.Publisher
	Topics    topic.Names
	// Clocks keeps the tenants' clocks; a Memory of DefaultMaxTenants
	// when nil.
	Clocks Clocks
	Wait   Wait
	// MaxTimers bounds the timers one Advance fires (DefaultMaxTimers
	// when zero), MaxAhead how far ahead of the tenant's clock it may go
	// (DefaultMaxAhead), Hold how long the tick leaves a timer being
	// fired to the test clock (DefaultHold).
	MaxTimers int
	MaxAhead  time.Duration
	Hold      time.Duration
	// Now returns real time; time.Now when nil.
	Now func() time.Time
}

// Fired is a timer an advance fired, and what its timeout decided.
type Fired struct {
	// Timer is the timer's name, TimerID its id, which is also the id of
	// the timeout event (the receipt's execution_id).
	Timer   string          `json:"timer"`
	TimerID string          `json:"timer_id"`
	Domain  governor.Domain `json:"domain"`
	Subject string          `json:"subject"`
	// Due is when the timer fell due on the tenant's clock.
	Due time.Time `json:"due"`
	// ReceiptHash, Outcome, Reason and Source are the receipt's hash,
	// outcome, reason and event_source: engine.TestClockSource, or
	// engine.TimerSource when the tick fired the timer first.
	ReceiptHash string `json:"receipt"`
	Outcome     string `json:"outcome"`
	Reason      string `json:"reason,omitempty"`
	Source      string `json:"event_source"`
}

// Clock is the test clocks of one stack. It is safe for concurrent use.
type Clock struct {
	o Options

	mu   sync.Mutex
	busy map[string]bool
}

// New returns a Clock after checking its options.
func New(o Options) (*Clock, error) {
	const op = "testclock.New"
	if o.Store == nil || o.Publisher == nil {
		return nil, fault.Errorf(fault.Invalid, op, "store and publisher are required")
	}
	if o.MaxTimers < 0 || o.MaxAhead < 0 || o.Hold < 0 || o.Wait.Every < 0 || o.Wait.Timeout < 0 {
		return nil, fault.Errorf(fault.Invalid, op, "negative bound")
	}
	if o.Clocks == nil {
		o.Clocks = NewMemory(DefaultMaxTenants)
	}
	if o.MaxTimers == 0 {
		o.MaxTimers = DefaultMaxTimers
	}
	if o.MaxAhead == 0 {
		o.MaxAhead = DefaultMaxAhead
	}
	if o.Hold == 0 {
		o.Hold = DefaultHold
	}
	if o.Wait.Every == 0 {
		o.Wait.Every = DefaultPollEvery
	}
	if o.Wait.Timeout == 0 {
		o.Wait.Timeout = DefaultWaitTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Clock{o: o, busy: map[string]bool{}}, nil
}

// Enabled reports whether test clocks are on.
func (c *Clock) Enabled() bool { return c.o.Enabled }

// check refuses calls in production and bad tenant ids.
func (c *Clock) check(op, tenant string) error {
	if !c.o.Enabled {
		return fault.Errorf(fault.NotFound, op, "there are no test clocks in production")
	}
	return event.ValidTenant(tenant)
}

// Now returns the time on the tenant's clock.
func (c *Clock) Now(ctx context.Context, tenant string) (time.Time, error) {
	const op = "testclock.Now"
	if err := c.check(op, tenant); err != nil {
		return time.Time{}, err
	}
	st, err := c.o.Clocks.Load(ctx, tenant)
	if err != nil {
		return time.Time{}, err
	}
	return c.o.Now().UTC().Add(st.Offset), nil
}

// armed is an armed timer of the tenant as Advance orders them.
type armed struct {
	key   governor.Key
	timer governor.Timer
	// due is when it falls due on the tenant's clock.
	due time.Time
}

// Advance moves the tenant's clock to to, firing every armed timer of the
// tenant that falls due by then, earliest first, each once its
// predecessor's receipt exists. to must be after the tenant's last
// advance and at most Options.MaxAhead ahead of its clock (Invalid
// otherwise). After Options.MaxTimers timers it stops with an error whose
// chain holds ErrMoreDue (a Conflict) when more fall due; on that and any
// other error it returns what fired before it, and the clock stands at
// the last fired timer's due time, so that advancing again to the same
// time goes on.
func (c *Clock) Advance(ctx context.Context, tenant string, to time.Time) ([]Fired, error) {
	const op = "testclock.Advance"
	if err := c.check(op, tenant); err != nil {
		return nil, err
	}
	if to.IsZero() {
		return nil, fault.Errorf(fault.Invalid, op, "no time to advance to")
	}
	to = to.UTC()
	if !c.lock(tenant) {
		return nil, fault.Errorf(fault.Conflict, op, "an advance of tenant %s is in progress", tenant)
	}
	defer c.unlock(tenant)
	st, err := c.o.Clocks.Load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if !st.To.IsZero() && !to.After(st.To) {
		return nil, fault.Errorf(fault.Invalid, op, "%s is not after the last advance of tenant %s, to %s",
			to.Format(time.RFC3339Nano), tenant, st.To.Format(time.RFC3339Nano))
	}
	if limit := c.o.Now().UTC().Add(st.Offset).Add(c.o.MaxAhead); to.After(limit) {
		return nil, fault.Errorf(fault.Invalid, op, "%s is more than %s ahead of the clock of tenant %s",
			to.Format(time.RFC3339), c.o.MaxAhead, tenant)
	}
	if st.Timers == nil {
		st.Timers = map[string]time.Duration{}
	}
	var out []Fired
	done := map[string]bool{}
	for {
		timers, err := c.armed(ctx, tenant, &st)
		if err != nil {
			return out, c.save(ctx, tenant, st, err)
		}
		i := slices.IndexFunc(timers, func(a armed) bool { return !done[a.timer.ID] })
		if i < 0 || timers[i].due.After(to) {
			break
		}
		next := timers[i]
		if len(out) >= c.o.MaxTimers {
			err := &fault.Error{Code: fault.Conflict, Op: op, Err: ErrMoreDue,
				Message: fmt.Sprintf("fired %d timers, the most one advance fires; the next, %s of %s/%s, falls due %s: advance again",
					len(out), next.timer.Name, next.key.Domain, next.key.Subject, next.due.Format(time.RFC3339))}
			return out, c.save(ctx, tenant, st, err)
		}
		// The clock moves to the timer's due time; timers its timeout arms
		// are armed at that time on the tenant's clock.
		if d := next.due.Sub(c.o.Now().UTC()); d > st.Offset {
			st.Offset = d
		}
		f, err := c.fire(ctx, next)
		done[next.timer.ID] = true
		if errors.Is(err, errGone) {
			continue
		}
		if err != nil {
			return out, c.save(ctx, tenant, st, err)
		}
		out = append(out, f)
	}
	if d := to.Sub(c.o.Now().UTC()); d > st.Offset {
		st.Offset = d
	}
	st.To = to
	return out, c.save(ctx, tenant, st, nil)
}

// save saves the tenant's clock and returns cause, or the saving error
// when cause is nil.
func (c *Clock) save(ctx context.Context, tenant string, st State, cause error) error {
	err := c.o.Clocks.Save(context.WithoutCancel(ctx), tenant, st)
	if cause != nil {
		return cause
	}
	return err
}

func (c *Clock) lock(tenant string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy[tenant] {
		return false
	}
	c.busy[tenant] = true
	return true
}

func (c *Clock) unlock(tenant string) {
	c.mu.Lock()
	delete(c.busy, tenant)
	c.mu.Unlock()
}

// armed lists the tenant's armed timers ordered by their due time on its
// clock, then domain, subject and name. A timer seen for the first time
// takes the clock's current offset; st keeps the offsets of the timers
// still armed only.
func (c *Clock) armed(ctx context.Context, tenant string, st *State) ([]armed, error) {
	insts, err := c.o.Store.Instances(ctx, tenant, "")
	if err != nil {
		return nil, err
	}
	var out []armed
	offsets := make(map[string]time.Duration, len(st.Timers))
	for _, in := range insts {
		k := in.Key
		if k.Tenant == "" {
			k = governor.Key{Tenant: tenant, Domain: in.Domain, Subject: in.Subject}
		}
		for name, t := range in.Timers {
			if t.Name == "" {
				t.Name = name
			}
			off, ok := st.Timers[t.ID]
			if !ok {
				off = st.Offset
			}
			offsets[t.ID] = off
			out = append(out, armed{key: k, timer: t, due: t.Due.UTC().Add(off)})
		}
	}
	st.Timers = offsets
	slices.SortFunc(out, func(a, b armed) int {
		return cmp.Or(a.due.Compare(b.due),
			cmp.Compare(slices.Index(governor.Domains, a.key.Domain), slices.Index(governor.Domains, b.key.Domain)),
			cmp.Compare(a.key.Domain, b.key.Domain), cmp.Compare(a.key.Subject, b.key.Subject),
			cmp.Compare(a.timer.Name, b.timer.Name))
	})
	return out, nil
}

// errGone marks a timer that was no longer armed when it was to be moved:
// cancelled or fired meanwhile.
var errGone = errors.New("timer no longer armed")

// fire fires one timer and waits for its receipt.
func (c *Clock) fire(ctx context.Context, a armed) (Fired, error) {
	const op = "testclock.fire"
	now := c.o.Now().UTC()
	// Should the timeout be lost, the tick fires the timer within Hold.
	if hold := now.Add(c.o.Hold); a.timer.Due.After(hold) {
		if _, err := c.o.Store.MoveTimer(ctx, a.key, a.timer.Name, hold); err != nil {
			if fault.ErrorCode(err) == fault.NotFound {
				return Fired{}, errGone
			}
			return Fired{}, err
		}
	}
	m := timeoutMessage(c.o.Topics, a.key, a.timer, now)
	var err error
	for attempt := range publishAttempts {
		if attempt > 0 {
			if err := sleep(ctx, time.Duration(attempt)*c.o.Wait.Every); err != nil {
				return Fired{}, fault.Wrap(fault.Unavailable, op, err)
			}
		}
		if err = c.o.Publisher.Publish(ctx, m); err == nil {
			break
		}
	}
	if err != nil {
		return Fired{}, fault.Wrap(fault.Unavailable, op+" publish timeout "+a.timer.Name+" of "+a.key.String(), err)
	}
	r, err := c.wait(ctx, a)
	if err != nil {
		return Fired{}, err
	}
	return Fired{
		Timer: a.timer.Name, TimerID: a.timer.ID, Domain: a.key.Domain, Subject: a.key.Subject, Due: a.due,
		ReceiptHash: r.Hash, Outcome: r.Outcome, Reason: r.Reason, Source: r.EventSource,
	}, nil
}

// timeoutMessage is the message of the timeout of timer t of instance k,
// as the engine's tick publishes it but with the test clock's source.
func timeoutMessage(names topic.Names, k governor.Key, t governor.Timer, now time.Time) store.Message {
	ev := governor.Event{
		ID:      t.ID,
		Source:  engine.TestClockSource,
		Type:    governor.TypeOf(k.Domain, governor.Timeout(t.Name)),
		Domain:  k.Domain,
		Name:    governor.Timeout(t.Name),
		Tenant:  k.Tenant,
		Subject: k.Subject,
		Time:    now,
		Data:    json.RawMessage(`{"timer_id":` + strconv.Quote(t.ID) + `}`),
	}
	data, attrs := event.Encode(ev)
	return store.Message{Topic: names.Internal(k.Domain), Data: data, Attributes: attrs, OrderingKey: k.Tenant}
}

// wait polls for the receipt of the timeout of a on its instance. When
// the tick fired the timer too, the one that fired it is preferred, then
// the test clock's. Transient store errors are polled through.
func (c *Clock) wait(ctx context.Context, a armed) (receipt.Receipt, error) {
	const op = "testclock.wait"
	ctx, cancel := context.WithTimeout(ctx, c.o.Wait.Timeout)
	defer cancel()
	var last error
	for {
		rs, err := c.o.Store.ReceiptsByExecution(ctx, a.timer.ID)
		switch {
		case err != nil && !fault.IsRetryable(err):
			return receipt.Receipt{}, err
		case err != nil:
			last = err
		}
		var found *receipt.Receipt
		for i := range rs {
			if r := &rs[i]; r.Key() == a.key && (found == nil || rank(r) > rank(found)) {
				found = r
			}
		}
		if found != nil {
			return *found, nil
		}
		if err := sleep(ctx, c.o.Wait.Every); err != nil {
			msg := fmt.Sprintf("no receipt for timeout %s of %s (timer %s) within %s: are test clocks on in the governors (%s not prod)?",
				a.timer.Name, a.key, a.timer.ID, c.o.Wait.Timeout, "AUTONOMICS_ENV")
			if last != nil {
				msg += "; last error: " + last.Error()
			}
			return receipt.Receipt{}, fault.Errorf(fault.Unavailable, op, "%s", msg)
		}
	}
}

// rank orders the receipts of one timeout: accepted before rejected, the
// test clock's before the tick's.
func rank(r *receipt.Receipt) int {
	n := 0
	if r.Outcome == string(governor.Accepted) {
		n += 2
	}
	if r.EventSource == engine.TestClockSource {
		n++
	}
	return n
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
