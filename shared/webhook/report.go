package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
)

// failureIDTag separates the ids of actuation_failed events from every
// other SHA-256 use.
const failureIDTag = "autonomics.actuator.webhooks.failure.v1"

// FailureID is the deterministic id of the actuation_failed event of a
// delivery's failure: derived from the action id, the endpoint and the
// delivery's cycle, so that reporting the same failure twice is one event
// to the governor and a failed redelivery is another.
func FailureID(actionID, endpointID string, cycle int) string {
	h := sha256.New()
	for _, s := range []string{failureIDTag, actionID, endpointID, strconv.Itoa(cycle)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "af-" + hex.EncodeToString(h.Sum(nil))
}

// FailureEvent is the actuation_failed event that tells the governor
// which emitted a an action that its delivery failed for good: on the
// emitting instance (the action's tenant and subject), from Source, in the
// action's correlation and caused by the receipt that emitted it.
func FailureEvent(a Action, del Delivery, now time.Time) governor.Event {
	data, _ := json.Marshal(governor.ActuationFailure{
		ActionID: a.ID, Kind: a.Kind, Attempts: del.Attempts,
		Reason: truncate("webhook endpoint "+del.EndpointID+": "+del.Reason, governor.MaxFailureReason),
	})
	return governor.Event{
		ID: FailureID(a.ID, del.EndpointID, del.Cycle), Source: Source,
		Type: governor.TypeOf(a.Domain, governor.ActuationFailed), Domain: a.Domain, Name: governor.ActuationFailed,
		Tenant: a.Tenant, Subject: a.Subject, Time: now, Data: data,
		CorrelationID: a.CorrelationID, CausationID: a.CausationID, TraceParent: a.TraceParent,
	}
}

// FailureMessage renders FailureEvent for the emitting domain's internal
// topic, ordered by tenant.
func FailureMessage(topics interface {
	Internal(governor.Domain) string
}, a Action, del Delivery, now time.Time) store.Message {
	data, attrs := event.Encode(FailureEvent(a, del, now))
	return store.Message{Topic: topics.Internal(a.Domain), Data: data, Attributes: attrs, OrderingKey: a.Tenant}
}

// DeadLetterMessage is the action's message as received, for the
// dead-letter topic, with the reason and the delivery's endpoint and
// attempt count.
func DeadLetterMessage(deadLetterTopic string, a Action, del Delivery) store.Message {
	code := fault.Invalid
	if del.Failure == FailureExhausted {
		code = fault.Unavailable
	}
	m := deadletter.New(deadLetterTopic, event.Message{ID: a.MessageID, Data: a.Raw, Attributes: a.Attributes},
		DeadLetterDomain, code, "webhook endpoint "+del.EndpointID+": "+del.Reason)
	m.Attributes[AttrEndpoint] = del.EndpointID
	m.Attributes[AttrAttempts] = strconv.Itoa(del.Attempts)
	return m
}

// report dead-letters a failed delivery's action and tells the emitting
// governor, then marks the delivery reported. A failure to publish leaves
// it unreported for the next sweep.
func (d *Deliverer) report(ctx context.Context, del Delivery) bool {
	var a Action
	var ok bool
	err := d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		a, ok, err = tx.Action(del.ActionID)
		return err
	})
	if err != nil {
		d.o.Logger.WarnContext(ctx, "failure not reported; the next sweep does", "delivery", del.ID, "error", err.Error())
		return false
	}
	if ok {
		now := d.now()
		if err := d.o.Publisher.Publish(ctx, DeadLetterMessage(d.o.Topics.DeadLetter(), a, del)); err != nil {
			d.o.Logger.WarnContext(ctx, "action not dead-lettered; the next sweep retries", "delivery", del.ID, "error", err.Error())
			return false
		}
		if err := d.o.Publisher.Publish(ctx, FailureMessage(d.o.Topics, a, del, now)); err != nil {
			d.o.Logger.WarnContext(ctx, "actuation_failed not published; the next sweep retries", "delivery", del.ID, "error", err.Error())
			return false
		}
	}
	d.o.Logger.ErrorContext(ctx, "webhook delivery failed for good", "delivery", del.ID, "action_id", del.ActionID, "kind", del.Kind,
		"domain", del.Domain, "tenant", del.Tenant, "endpoint", del.EndpointID, "attempts", del.Attempts, "reason", del.Reason)
	err = d.o.Store.RunTx(ctx, func(ctx context.Context, tx Tx) error {
		cur, ok, err := tx.Delivery(del.ID)
		if err != nil || !ok || cur.State != Failed || cur.Reported {
			return err
		}
		cur.Reported = true
		return tx.PutDelivery(cur)
	})
	if err != nil {
		d.o.Logger.WarnContext(ctx, "failure reported but not marked; it may be reported again (same event id)", "delivery", del.ID, "error", err.Error())
		return false
	}
	return true
}
