package cost

import (
	"context"
	"time"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// Store is a store.Store that records, per method, the calls made through
// it and the documents they touch as the store interface sees them: a
// transaction's reads and the writes its Changes stand for (the instance,
// the dedup marker, the receipt, each outbox entry and armed timer; each
// cancelled timer is a delete), the entries MarkDelivered updates, the
// entries and timers the queries return. What an adapter does inside (an
// index document, one RPC per entry marked delivered) only shows at the
// client level: see Recorder.UnaryInterceptor.
//
// Each call is one interval of the recorder's round trips, a transaction
// included, however many round trips it takes inside.
type Store struct {
	inner store.Store
	rec   *Recorder
}

var _ store.Store = (*Store)(nil)

// NewStore returns a Store recording the calls to inner in rec.
func NewStore(inner store.Store, rec *Recorder) *Store { return &Store{inner: inner, rec: rec} }

// Operation names of Store and Publisher.
const (
	OpRunTx                 = "store.RunTx"
	OpTxAttempt             = "store.Tx.attempt"
	OpTxInstance            = "store.Tx.Instance"
	OpTxDedup               = "store.Tx.Dedup"
	OpTxWrite               = "store.Tx.Write"
	OpInstances             = "store.Instances"
	OpChain                 = "store.Chain"
	OpReceipts              = "store.Receipts"
	OpReceiptsByExecution   = "store.ReceiptsByExecution"
	OpReceiptsByCorrelation = "store.ReceiptsByCorrelation"
	OpTenants               = "store.Tenants"
	OpOutbox                = "store.Outbox"
	OpUndelivered           = "store.Undelivered"
	OpMarkDelivered         = "store.MarkDelivered"
	OpSwept                 = "store.Swept"
	OpDueTimers             = "store.DueTimers"
	OpDeleteTimer           = "store.DeleteTimer"
	OpMoveTimer             = "store.MoveTimer"
	OpPublish               = "publisher.Publish"
)

// call records one call of op that touched p.
func (s *Store) call(op string, f func() (Op, error)) error {
	sp := s.rec.begin(op)
	p, err := f()
	p.Calls = 1
	s.rec.count(op, sp, p)
	return err
}

// RunTx implements store.Store.
func (s *Store) RunTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	return s.call(OpRunTx, func() (Op, error) {
		return Op{}, s.inner.RunTx(ctx, func(ctx context.Context, t store.Tx) error {
			s.rec.count(OpTxAttempt, nil, Op{Calls: 1})
			return fn(ctx, &tx{inner: t, rec: s.rec})
		})
	})
}

// tx records the calls of one transaction attempt.
type tx struct {
	inner store.Tx
	rec   *Recorder
}

func (t *tx) Instance(k governor.Key) (governor.Instance, error) {
	inst, err := t.inner.Instance(k)
	t.rec.count(OpTxInstance, nil, Op{Calls: 1, Reads: 1})
	return inst, err
}

func (t *tx) Dedup(k governor.Key, source, id string) (store.Marker, bool, error) {
	m, found, err := t.inner.Dedup(k, source, id)
	t.rec.count(OpTxDedup, nil, Op{Calls: 1, Reads: 1})
	return m, found, err
}

func (t *tx) Write(c store.Changes) error {
	err := t.inner.Write(c)
	t.rec.count(OpTxWrite, nil, ChangesCost(c))
	return err
}

// ChangesCost is what the writes of one decision stand for at the store
// interface: one write each for the instance, the dedup marker (when it
// has an event id; it holds the outbox entries), the receipt and every
// armed timer, and a delete per cancelled timer that is not armed again.
func ChangesCost(c store.Changes) Op {
	o := Op{Calls: 1, Writes: 2}
	if c.Dedup.EventID != "" {
		o.Writes++
	}
	timers := map[string]bool{}
	for _, e := range c.ArmTimers {
		if !timers[e.ID] {
			timers[e.ID] = true
			o.Writes++
		}
	}
	for _, id := range c.CancelTimers {
		if !timers[id] {
			timers[id] = true
			o.Deletes++
		}
	}
	return o
}

// Instances implements store.Store.
func (s *Store) Instances(ctx context.Context, tenant string, domain governor.Domain) (out []governor.Instance, err error) {
	err = s.call(OpInstances, func() (Op, error) {
		out, err = s.inner.Instances(ctx, tenant, domain)
		return Op{Reads: max(1, int64(len(out)))}, err
	})
	return out, err
}

// Chain implements store.Store.
func (s *Store) Chain(ctx context.Context, k governor.Key, after int64, limit int) (out []receipt.Receipt, err error) {
	err = s.call(OpChain, func() (Op, error) {
		out, err = s.inner.Chain(ctx, k, after, limit)
		return Op{Reads: max(1, int64(len(out)))}, err
	})
	return out, err
}

// Receipts implements store.Store.
func (s *Store) Receipts(ctx context.Context, q store.ReceiptQuery) (out []receipt.Receipt, next string, err error) {
	err = s.call(OpReceipts, func() (Op, error) {
		out, next, err = s.inner.Receipts(ctx, q)
		return Op{Reads: max(1, int64(len(out)))}, err
	})
	return out, next, err
}

// ReceiptsByExecution implements store.Store.
func (s *Store) ReceiptsByExecution(ctx context.Context, executionID string) (out []receipt.Receipt, err error) {
	err = s.call(OpReceiptsByExecution, func() (Op, error) {
		out, err = s.inner.ReceiptsByExecution(ctx, executionID)
		return Op{Reads: max(1, int64(len(out)))}, err
	})
	return out, err
}

// ReceiptsByCorrelation implements store.Store.
func (s *Store) ReceiptsByCorrelation(ctx context.Context, tenant, correlationID string, limit int) (out []receipt.Receipt, err error) {
	err = s.call(OpReceiptsByCorrelation, func() (Op, error) {
		out, err = s.inner.ReceiptsByCorrelation(ctx, tenant, correlationID, limit)
		return Op{Reads: max(1, int64(len(out)))}, err
	})
	return out, err
}

// Tenants implements store.Store.
func (s *Store) Tenants(ctx context.Context, q store.TenantQuery) (out []string, err error) {
	err = s.call(OpTenants, func() (Op, error) {
		out, err = s.inner.Tenants(ctx, q)
		return Op{Reads: max(1, int64(len(out)))}, err
	})
	return out, err
}

// Outbox implements store.Store.
func (s *Store) Outbox(ctx context.Context, receiptHash string) (out []store.OutboxEntry, err error) {
	err = s.call(OpOutbox, func() (Op, error) {
		out, err = s.inner.Outbox(ctx, receiptHash)
		return Op{Reads: max(1, int64(len(out)))}, err
	})
	return out, err
}

// Undelivered implements store.Store.
func (s *Store) Undelivered(ctx context.Context, before time.Time, limit int) (out []store.OutboxEntry, err error) {
	err = s.call(OpUndelivered, func() (Op, error) {
		out, err = s.inner.Undelivered(ctx, before, limit)
		return Op{Reads: max(1, int64(len(out)))}, err
	})
	return out, err
}

// Swept implements store.Store: a read and a write (the sweep
// document).
func (s *Store) Swept(ctx context.Context, last ...store.OutboxEntry) error {
	return s.call(OpSwept, func() (Op, error) {
		return Op{Reads: 1, Writes: 1}, s.inner.Swept(ctx, last...)
	})
}

// MarkDelivered implements store.Store: a write per id.
func (s *Store) MarkDelivered(ctx context.Context, ids ...string) error {
	return s.call(OpMarkDelivered, func() (Op, error) {
		return Op{Writes: int64(len(ids))}, s.inner.MarkDelivered(ctx, ids...)
	})
}

// DueTimers implements store.Store.
func (s *Store) DueTimers(ctx context.Context, t time.Time, limit int) (out []store.TimerEntry, err error) {
	err = s.call(OpDueTimers, func() (Op, error) {
		out, err = s.inner.DueTimers(ctx, t, limit)
		return Op{Reads: max(1, int64(len(out)))}, err
	})
	return out, err
}

// DeleteTimer implements store.Store: a delete.
func (s *Store) DeleteTimer(ctx context.Context, id string) error {
	return s.call(OpDeleteTimer, func() (Op, error) {
		return Op{Deletes: 1}, s.inner.DeleteTimer(ctx, id)
	})
}

// MoveTimer implements store.Store: a read and two writes (the instance
// and the timer).
func (s *Store) MoveTimer(ctx context.Context, k governor.Key, name string, due time.Time) (out governor.Timer, err error) {
	err = s.call(OpMoveTimer, func() (Op, error) {
		out, err = s.inner.MoveTimer(ctx, k, name, due)
		return Op{Reads: 1, Writes: 2}, err
	})
	return out, err
}

// publisher is the engine's Publisher port.
type publisher interface {
	Publish(ctx context.Context, m store.Message) error
}

// Publisher is an engine.Publisher that records every message published
// through it: a call, a message and its billable volume, and its interval
// among the recorder's round trips.
type Publisher struct {
	inner publisher
	rec   *Recorder
}

// NewPublisher returns a Publisher recording the messages given to inner
// in rec.
func NewPublisher(inner publisher, rec *Recorder) *Publisher {
	return &Publisher{inner: inner, rec: rec}
}

// Publish publishes m through the inner publisher and records it, failed
// or not: a failed publication was still a round trip.
func (p *Publisher) Publish(ctx context.Context, m store.Message) error {
	sp := p.rec.begin(OpPublish)
	err := p.inner.Publish(ctx, m)
	n := MessageBytes(m.Data, m.Attributes, m.OrderingKey)
	o := Op{Calls: 1, PublishBytes: max(n, MinRequestBytes), DeliveryBytes: max(n, MinRequestBytes)}
	if err == nil {
		o.Messages = 1
	}
	p.rec.count(OpPublish, sp, o)
	return err
}
