package webhook

import (
	"context"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// Bounds of the operations that take many records.
const (
	DefaultSweepLimit  = 500
	DefaultReplayLimit = 100
	MaxReplayLimit     = 500
)

// Swept reports what one sweep did.
type Swept struct {
	// Reported counts failed deliveries dead-lettered and reported.
	Reported int `json:"reported"`
	// Due counts the due deliveries found, Finished those whose attempts
	// all ended before the sweep's deadline.
	Due      int  `json:"due"`
	Finished bool `json:"finished"`
}

// Sweep reports the failures not yet reported, then attempts up to limit
// due deliveries (retries whose time has come, and deliveries whose
// attempt's lease ran out unrecorded), waiting for them until ctx is done.
func (d *Deliverer) Sweep(ctx context.Context, limit int) (Swept, error) {
	if limit <= 0 {
		limit = DefaultSweepLimit
	}
	var s Swept
	failed, err := d.o.Store.Unreported(ctx, limit)
	if err != nil {
		return s, err
	}
	for _, del := range failed {
		if d.report(ctx, del) {
			s.Reported++
		}
	}
	due, err := d.o.Store.Due(ctx, d.now(), limit)
	if err != nil {
		return s, err
	}
	ids := make([]string, len(due))
	for i, del := range due {
		ids[i] = del.ID
	}
	s.Due = len(ids)
	s.Finished = d.Dispatch(ids...).Wait(ctx)
	return s, nil
}

// Resume makes the held deliveries of an endpoint due now and dispatches
// them: after the endpoint is enabled again, or deleted (they then fail
// for good). It returns the batch of attempts.
func (d *Deliverer) Resume(ctx context.Context, endpointID string) (*Batch, error) {
	held, err := d.o.Store.Held(ctx, endpointID, DefaultSweepLimit)
	if err != nil {
		return &Batch{}, err
	}
	var ids []string
	for _, h := range held {
		err := d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
			del, ok, err := tx.Delivery(h.ID)
			if err != nil || !ok || !del.Held || del.State != Pending {
				return err
			}
			del.Held, del.Due, del.UpdatedAt = false, d.now(), d.now()
			return tx.PutDelivery(del)
		})
		if err != nil {
			return &Batch{}, err
		}
		ids = append(ids, h.ID)
	}
	return d.Dispatch(ids...), nil
}

// Redelivered reports a redelivery to one endpoint.
type Redelivered struct {
	EndpointID string `json:"endpoint_id"`
	// Status is "queued" (a new cycle, behind the lane's deliveries under
	// way), "sent" (at the head of its lane: attempted at once) or
	// "already_pending" (it has not finished yet).
	Status string `json:"status"`
	Cycle  int    `json:"cycle"`
}

// Redeliver queues an action again, with the same webhook-id, to one
// endpoint, or (endpointID "") to every enabled endpoint receiving its
// kind. A delivery still under way is left as it is. It returns NotFound
// for an unknown action or endpoint, Conflict for a disabled endpoint or
// one that does not receive the action's kind, and the batch of attempts
// started.
func (d *Deliverer) Redeliver(ctx context.Context, actionID, endpointID string) ([]Redelivered, *Batch, error) {
	const op = "webhook.Redeliver"
	a, err := d.action(ctx, actionID)
	if err != nil {
		return nil, &Batch{}, err
	}
	var targets []Endpoint
	if endpointID != "" {
		ep, err := d.Endpoint(ctx, endpointID)
		if err != nil {
			return nil, &Batch{}, err
		}
		switch {
		case ep.Disabled:
			return nil, &Batch{}, fault.Errorf(fault.Conflict, op, "endpoint %s is disabled (%s)", quote(ep.ID), ep.DisabledReason)
		case !ep.Wants(a.Kind):
			return nil, &Batch{}, fault.Errorf(fault.Conflict, op, "endpoint %s does not receive %s actions", quote(ep.ID), a.Kind)
		}
		targets = []Endpoint{ep}
	} else {
		eps, err := d.o.Store.Endpoints(ctx)
		if err != nil {
			return nil, &Batch{}, err
		}
		for _, ep := range eps {
			if !ep.Disabled && ep.Wants(a.Kind) {
				targets = append(targets, ep)
			}
		}
	}
	out := []Redelivered{}
	var heads []string
	for _, ep := range targets {
		r, head, err := d.requeue(ctx, a, ep.ID)
		if err != nil {
			return out, d.Dispatch(heads...), err
		}
		out = append(out, r)
		if head != "" {
			heads = append(heads, head)
		}
	}
	return out, d.Dispatch(heads...), nil
}

// requeue queues a new cycle of an action's delivery to an endpoint.
func (d *Deliverer) requeue(ctx context.Context, a Action, endpointID string) (Redelivered, string, error) {
	var r Redelivered
	var head string
	err := d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		now := d.now()
		r, head = Redelivered{EndpointID: endpointID}, ""
		id := DeliveryID(endpointID, a.ID)
		del, ok, err := tx.Delivery(id)
		if err != nil {
			return err
		}
		if ok && (del.State == Queued || del.State == Pending) {
			r.Status, r.Cycle = "already_pending", del.Cycle
			return nil
		}
		lane, tail, err := readLane(tx, LaneID(endpointID, a.Tenant))
		if err != nil {
			return err
		}
		if tail != nil && tail.ID == id {
			lane, tail = Lane{ID: lane.ID}, nil
		}
		if !ok {
			del = Delivery{
				ID: id, ActionID: a.ID, EndpointID: endpointID, Tenant: a.Tenant, Kind: a.Kind, Domain: a.Domain,
				Lane: LaneID(endpointID, a.Tenant), ActionTime: a.Time, CreatedAt: now,
			}
		}
		del.Cycle++
		del.Attempts, del.FirstAttempt, del.Lease, del.Held = 0, time.Time{}, "", false
		del.Failure, del.Reason, del.Reported, del.DeliveredAt = "", "", false, time.Time{}
		isHead, err := enqueue(tx, lane, tail, &del, now)
		if err != nil {
			return err
		}
		r.Cycle, r.Status = del.Cycle, "queued"
		if isHead {
			r.Status, head = "sent", del.ID
		}
		return nil
	})
	return r, head, err
}

// action returns a recorded action, or a NotFound error.
func (d *Deliverer) action(ctx context.Context, id string) (Action, error) {
	var a Action
	var ok bool
	err := d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		a, ok, err = tx.Action(id)
		return err
	})
	if err != nil {
		return Action{}, err
	}
	if !ok {
		return Action{}, fault.Errorf(fault.NotFound, "webhook.Action", "no action %s has been recorded", quote(id))
	}
	return a, nil
}

// Replayed reports a replay of a window.
type Replayed struct {
	// Actions counts the recorded actions of the window examined; Queued
	// those of the endpoint's kinds queued again; Pending those whose
	// delivery was still under way.
	Actions int `json:"actions"`
	Queued  int `json:"queued"`
	Pending int `json:"already_pending"`
	// Next is the id to pass as after to continue, "" at the window's end.
	Next string `json:"next,omitempty"`
}

// Replay queues again, in decision order, every recorded action decided
// in [from, to) of the kinds an endpoint receives, up to limit actions
// examined, after the action named after when it is set. The endpoint
// must exist (NotFound) and be enabled (Conflict).
func (d *Deliverer) Replay(ctx context.Context, endpointID string, from, to time.Time, after string, limit int) (Replayed, *Batch, error) {
	const op = "webhook.Replay"
	var r Replayed
	if limit <= 0 {
		limit = DefaultReplayLimit
	}
	limit = min(limit, MaxReplayLimit)
	if !from.Before(to) {
		return r, &Batch{}, fault.Errorf(fault.Invalid, op, "from must be before to")
	}
	ep, err := d.Endpoint(ctx, endpointID)
	if err != nil {
		return r, &Batch{}, err
	}
	if ep.Disabled {
		return r, &Batch{}, fault.Errorf(fault.Conflict, op, "endpoint %s is disabled (%s)", quote(ep.ID), ep.DisabledReason)
	}
	var afterTime time.Time
	if after != "" {
		a, err := d.action(ctx, after)
		if err != nil {
			return r, &Batch{}, fault.Errorf(fault.Invalid, op, "after: %s", fault.ErrorMessage(err))
		}
		afterTime = a.Time
	}
	acts, err := d.o.Store.Actions(ctx, from, to, afterTime, after, limit)
	if err != nil {
		return r, &Batch{}, err
	}
	var heads []string
	for _, a := range acts {
		r.Actions++
		if !ep.Wants(a.Kind) {
			continue
		}
		res, head, err := d.requeue(ctx, a, ep.ID)
		if err != nil {
			return r, d.Dispatch(heads...), err
		}
		if res.Status == "already_pending" {
			r.Pending++
		} else {
			r.Queued++
		}
		if head != "" {
			heads = append(heads, head)
		}
	}
	if len(acts) == limit {
		r.Next = acts[len(acts)-1].ID
	}
	return r, d.Dispatch(heads...), nil
}

// History is an action's record, its deliveries and their attempts.
type History struct {
	Action     Action
	Deliveries []Delivery
	Attempts   []Attempt
}

// History returns the deliveries and attempts of a recorded action, or a
// NotFound error.
func (d *Deliverer) History(ctx context.Context, actionID string) (History, error) {
	a, err := d.action(ctx, actionID)
	if err != nil {
		return History{}, err
	}
	dels, err := d.o.Store.DeliveriesOf(ctx, actionID)
	if err != nil {
		return History{}, err
	}
	atts, err := d.o.Store.AttemptsOf(ctx, actionID)
	if err != nil {
		return History{}, err
	}
	return History{Action: a, Deliveries: dels, Attempts: atts}, nil
}
