package engine

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
)

// Bounds of Tick.
const (
	// TickBudget is how long one Tick keeps starting to fire timers: the
	// scheduler calls it every minute, and a call that runs out of budget
	// leaves the rest to the next one.
	TickBudget = 50 * time.Second
	// TickBatch is how many due timers one round of a Tick reads, fires
	// and deletes.
	TickBatch = 1000
	// TickInFlight is how many timeouts a Tick publishes at once.
	TickInFlight = 64
	// tickCleanup bounds the deletion of timers already fired when the
	// caller's context ends first, so that they do not fire again.
	tickCleanup = 10 * time.Second
)

// Tick publishes every timer due at the clock's time as a timeout event
// and removes it, within TickBudget. It returns how many timers fired.
// limit bounds how many fire; limit <= 0 means no bound but the budget.
func (e *Engine) Tick(ctx context.Context, limit int) (int, error) {
	return e.TickWithin(ctx, limit, TickBudget)
}

// TickWithin is Tick with its own budget: it runs rounds of reading up to
// TickBatch due timers, publishing their timeouts TickInFlight at a time
// and deleting the published timers in batches, until no timer is due,
// limit timers fired or budget (measured on the wall clock) is spent; no
// publication starts after that. A timer is deleted only after its
// timeout was published, so a call that fails or is cut short loses no
// timer: the next call fires what is left, and a timeout published twice
// is applied once, its event id being the timer id.
func (e *Engine) TickWithin(ctx context.Context, limit int, budget time.Duration) (int, error) {
	ctx, span := e.in.tracer.Start(ctx, "autonomics.tick")
	defer span.End()
	deadline := time.Now().Add(budget)
	fired := 0
	for limit <= 0 || fired < limit {
		if err := ctx.Err(); err != nil {
			span.SetStatus(codes.Error, err.Error())
			return fired, fault.Wrap(fault.Unavailable, "engine.Tick", err)
		}
		if !time.Now().Before(deadline) {
			break
		}
		batch := TickBatch
		if limit > 0 {
			batch = min(batch, limit-fired)
		}
		now := e.o.Clock().UTC()
		due, err := e.o.Store.DueTimers(ctx, now, batch)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			return fired, err
		}
		n, err := e.fire(ctx, due, now, deadline)
		fired += n
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			return fired, err
		}
		if len(due) < batch || n < len(due) {
			// Nothing else was due, or the budget ended mid-round.
			break
		}
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("autonomics.timers.fired", fired))
	}
	return fired, nil
}

// fire publishes the timeouts of due, TickInFlight at a time, starting
// none after deadline or after a failure, then deletes the timers whose
// timeout was published. It returns how many were published.
func (e *Engine) fire(ctx context.Context, due []store.TimerEntry, now, deadline time.Time) (int, error) {
	if len(due) == 0 {
		return 0, nil
	}
	var (
		mu   sync.Mutex
		next int
		ok   = make([]bool, len(due))
		perr error
		wg   sync.WaitGroup
	)
	// take hands out the index of the next timer to publish, or -1 when
	// the round must stop.
	take := func() int {
		mu.Lock()
		defer mu.Unlock()
		if perr != nil || next == len(due) || ctx.Err() != nil || !time.Now().Before(deadline) {
			return -1
		}
		next++
		return next - 1
	}
	for range min(TickInFlight, len(due)) {
		wg.Go(func() {
			for i := take(); i >= 0; i = take() {
				t := due[i]
				e.in.timerLag.Record(ctx, float64(now.Sub(t.Due).Microseconds())/1000, labels(attribute.String("domain", string(t.Key.Domain))))
				err := e.o.Publisher.Publish(ctx, e.timeout(t, now))
				mu.Lock()
				if err == nil {
					ok[i] = true
				} else if perr == nil {
					perr = fault.Wrap(fault.Unavailable, "engine.Tick", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ids := make([]string, 0, len(due))
	for i, t := range due {
		if ok[i] {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) > 0 {
		dctx := ctx
		if ctx.Err() != nil {
			var cancel context.CancelFunc
			dctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), tickCleanup)
			defer cancel()
		}
		if err := e.o.Store.DeleteTimers(dctx, ids...); err != nil {
			// The timers stay armed and fire again; the governors drop
			// the repeated timeouts by their event id.
			return len(ids), err
		}
	}
	return len(ids), perr
}

// timeout is the message of timer t's timeout event, fired at now.
func (e *Engine) timeout(t store.TimerEntry, now time.Time) store.Message {
	ev := governor.Event{
		ID:      t.ID,
		Source:  TimerSource,
		Type:    governor.TypeOf(t.Key.Domain, governor.Timeout(t.Name)),
		Domain:  t.Key.Domain,
		Name:    governor.Timeout(t.Name),
		Tenant:  t.Key.Tenant,
		Subject: t.Key.Subject,
		Time:    now,
		Data:    json.RawMessage(`{"timer_id":` + strconv.Quote(t.ID) + `}`),
	}
	data, attrs := event.Encode(ev)
	return store.Message{Topic: e.o.Topics.Internal(t.Key.Domain), Data: data, Attributes: attrs, OrderingKey: t.Key.Tenant}
}
