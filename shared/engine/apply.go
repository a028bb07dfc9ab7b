package engine

import (
	"context"
	"crypto/rand"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// applyOne applies ev to its own instance in four steps: the decision's
// transaction, under the instance's stripe (decideInTx); its metrics, span
// attributes and log line (observe); then the publication of what it left
// to publish.
func (e *Engine) applyOne(ctx context.Context, m *governor.Machine, ev governor.Event) (Result, error) {
	start := time.Now()
	ctx, span := e.in.tracer.Start(ctx, "autonomics.apply "+string(ev.Domain))
	defer span.End()
	// Attributes cost allocations; unsampled spans skip them.
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("autonomics.tenant_id", ev.Tenant), attribute.String("autonomics.domain", string(ev.Domain)),
			attribute.String("autonomics.subject", ev.Subject), attribute.String("autonomics.event_type", ev.Type),
			attribute.String("autonomics.execution_id", ev.ID))
	}
	// Emitted events and the receipt carry this span's context.
	ev.TraceParent = traceparent(ctx)
	var d txResult
	var err error
	e.withStripe(ev.Key(), func() { d, err = e.decideInTx(ctx, m, ev) })
	e.observe(ctx, span, &ev, start, &d, err)
	if err != nil {
		if fault.ErrorCode(err) == fault.Internal && ctx.Err() != nil {
			err = fault.Wrap(fault.Unavailable, "engine.apply", err)
		}
		return d.res, err
	}
	if !d.res.Duplicate {
		// The ledger's receipt records the delivery: nothing to write,
		// unless no ledger witnesses it.
		n, done, err := e.publish(ctx, d.outbox)
		d.res.Published = n
		if e.o.Witness == nil {
			e.markDelivered(ctx, done)
		}
		return d.res, err
	}
	// A duplicate publishes again what its decision may not have
	// delivered, unless the ledger holds its receipt, and records it.
	if len(d.outbox) > 0 {
		held, err := e.witnessed(ctx, []string{d.res.Receipt.Hash})
		if err != nil {
			return d.res, err
		}
		if held[d.res.Receipt.Hash] {
			return d.res, nil
		}
	}
	n, done, err := e.publish(ctx, d.outbox)
	d.res.Published = n
	e.markDelivered(ctx, done)
	return d.res, err
}

// stripe returns the mutex of an instance key.
func (e *Engine) stripe(k governor.Key) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(k.String()))
	return &e.stripes[h.Sum32()%uint32(len(e.stripes))]
}

// withStripe runs fn holding the stripe of instance k. The stripe is
// unlocked however fn ends: a panic in a decision propagates to the caller
// (the Functions Framework recovers it per request) without leaving the
// stripe locked for the life of the process.
func (e *Engine) withStripe(k governor.Key, fn func()) {
	mu := e.stripe(k)
	mu.Lock()
	defer mu.Unlock()
	fn()
}

// txResult is what the transaction of one event leaves for the steps
// after it: the result, the outbox entries to publish and how many times
// the transaction ran.
type txResult struct {
	res Result
	// outbox holds a new decision's entries, or those a duplicate's
	// decision has not delivered yet.
	outbox   []store.OutboxEntry
	attempts int
}

// decideInTx decides ev in one storage transaction, run as many times as
// the store runs it. Each attempt reads the dedup marker, the instance and
// the instances its row needs, decides, and writes the new state, the
// marker, the receipt, the outbox and the timer changes in one tx.Write; a
// duplicate writes nothing. Nothing in it has an effect outside the
// transaction.
func (e *Engine) decideInTx(ctx context.Context, m *governor.Machine, ev governor.Event) (txResult, error) {
	ctx, span := e.in.tracer.Start(ctx, "autonomics.transaction")
	defer span.End()
	var d txResult
	err := e.o.Store.RunTx(ctx, func(ctx context.Context, tx store.Tx) error {
		d.attempts++
		d.res, d.outbox = Result{Key: ev.Key()}, nil
		return e.decideAttempt(ctx, tx, m, &ev, &d)
	})
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("autonomics.transaction.attempts", d.attempts))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return d, err
}

// decideAttempt is one run of decideInTx's transaction, filling d.
func (e *Engine) decideAttempt(ctx context.Context, tx store.Tx, m *governor.Machine, ev *governor.Event, d *txResult) error {
	key := d.res.Key
	marker, found, err := tx.Dedup(key, ev.Source, ev.ID)
	if err != nil {
		return err
	}
	if found {
		// A duplicate publishes again what its decision has not
		// delivered yet, from the marker just read.
		d.res.Duplicate = true
		d.res.Receipt.Hash = marker.ReceiptHash
		if !marker.Delivered {
			d.outbox = marker.Outbox
		}
		return nil
	}
	inst, err := tx.Instance(key)
	if err != nil {
		return err
	}
	inst.Key = key
	reads, err := e.reads(tx, m, inst, *ev)
	if err != nil {
		return err
	}
	now := e.o.Clock().UTC()
	_, dspan := e.in.tracer.Start(ctx, "autonomics.decide")
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	decideInst, moved := e.testClockDue(inst, *ev, now)
	dec, err := m.Decide(governor.Input{Instance: decideInst, Event: *ev, Reads: reads, Provider: e.o.ProviderTenant, Now: now, Nonce: nonce})
	if err != nil {
		dspan.End()
		return err
	}
	if moved != nil {
		restoreTimer(dec.Timers, strings.TrimPrefix(string(ev.Name), governor.TimeoutPrefix), *moved)
	}
	r := receipt.New(inst, *ev, dec, now)
	if dspan.IsRecording() {
		dspan.SetAttributes(attribute.String("autonomics.outcome", string(dec.Outcome)), attribute.Int64("autonomics.seq", r.Seq))
	}
	dspan.End()
	d.outbox = e.outbox(*ev, r, dec, now)
	arm, cancel := timerChanges(key, inst.Timers, dec.Timers)
	d.res.Receipt = r
	return tx.Write(store.Changes{
		Instance: governor.Instance{
			Key: key, State: dec.To, Version: r.Seq, LastHash: r.Hash,
			Data: dec.Data, Timers: dec.Timers, UpdatedAt: now,
		},
		Dedup: store.Dedup{
			Key: key, Source: ev.Source, EventID: ev.ID,
			ReceiptHash: r.Hash, ExpireAt: now.Add(e.o.DedupTTL),
		},
		Receipt:      r,
		Outbox:       d.outbox,
		ArmTimers:    arm,
		CancelTimers: cancel,
	})
}
