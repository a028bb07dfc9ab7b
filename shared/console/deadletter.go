package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// AttrPubSubSourceSubscription is the attribute Pub/Sub adds to a message
// it forwards to a dead-letter topic when a subscription's delivery
// attempts are exhausted: deadletter.AttrPubSubSourceSubscription.
const AttrPubSubSourceSubscription = deadletter.AttrPubSubSourceSubscription

// RecordDeadLetter records one message of the dead-letter topic, received
// at now; recording the same message id again changes nothing. The
// message must have an id (Pub/Sub always gives one).
func (c *Console) RecordDeadLetter(ctx context.Context, m event.Message) (DeadLetter, bool, error) {
	const op = "console.RecordDeadLetter"
	if err := ValidID("message id", m.ID); err != nil {
		return DeadLetter{}, false, fault.Errorf(fault.Invalid, op, "dead-letter message: %s", fault.ErrorMessage(err))
	}
	a, l := m.Attributes, deadletter.Parse(m.Attributes)
	d := DeadLetter{
		ID: m.ID, ReceivedAt: c.o.Now().UTC(), PublishTime: m.PublishTime,
		Reason: l.Reason, Code: string(l.Code), Domain: l.Domain,
		Type: a["ce-type"], Tenant: a["ce-tenantid"], Subject: a["ce-subject"], Source: a["ce-source"], EventID: a["ce-id"],
		Attributes: m.Attributes, Data: m.Data,
	}
	if d.Attributes == nil {
		d.Attributes = map[string]string{}
	}
	// Structured-mode events carry their attributes in the data.
	if ev, err := event.Decode(event.Message{Data: m.Data, Attributes: l.Attributes}); err == nil {
		d.Type, d.Tenant, d.Subject, d.Source, d.EventID = ev.Type, ev.Tenant, ev.Subject, ev.Source, ev.ID
	}
	_, _, refusal := c.replayPlan(d)
	d.Replayable, d.Refusal = refusal == "", refusal
	created, err := c.o.Records.PutDeadLetter(ctx, d)
	if err != nil {
		return DeadLetter{}, false, err
	}
	if created && c.newDL.Add(1)%int64(c.lim.PruneEvery) == 0 {
		if err := c.o.Records.Prune(ctx, c.o.Now()); err != nil {
			c.o.Logger.WarnContext(ctx, "pruning the dead letters failed; the next pruning retries", "error", err.Error())
		}
	}
	return d, created, nil
}

// replayPlan says where a replay of d goes and what it publishes, or why
// it is refused. Only governor events that came by a domain topic are
// replayed, to the domain topic of their domain, so that the engine
// validates them as any event from outside; events of internal topics
// (Autonomics' own sources, cascade extensions), actions, Marketplace
// notifications and messages that are no CloudEvent are refused.
func (c *Console) replayPlan(d DeadLetter) (governor.Domain, store.Message, string) {
	l := deadletter.Parse(d.Attributes)
	attrs := l.Attributes
	if l.Truncated {
		return "", store.Message{}, "the message was truncated when it was dead-lettered"
	}
	var domain governor.Domain
	if sub := l.SourceSubscription; sub != "" {
		dom, internal, ok := subscriptionDomain(c.o.Topics, sub)
		switch {
		case !ok:
			return "", store.Message{}, "it was dead-lettered by subscription " + quote(sub) + ", which delivers no governor domain topic"
		case internal:
			return "", store.Message{}, "it came from the internal topic " + c.o.Topics.Internal(dom) + "; only events from outside may be replayed"
		}
		domain = dom
	} else {
		if !slices.Contains(governor.Domains, governor.Domain(d.Domain)) {
			return "", store.Message{}, "it was dead-lettered by " + quote(d.Domain) + ", not by a governor: only governor events may be replayed"
		}
		domain = governor.Domain(d.Domain)
	}
	ev, err := event.Decode(event.Message{Data: d.Data, Attributes: attrs})
	if err != nil {
		return "", store.Message{}, "it is not a governor event: " + fault.ErrorMessage(err)
	}
	if ev.Domain != domain {
		return "", store.Message{}, "its type " + quote(ev.Type) + " is not of the " + string(domain) + " governor"
	}
	if internalEvent(ev) {
		return "", store.Message{}, "its source " + quote(ev.Source) + " or cascade extensions say it came from an internal topic; only events from outside may be replayed"
	}
	return domain, store.Message{Topic: c.o.Topics.Domain(domain), Data: d.Data, Attributes: attrs, OrderingKey: ev.Tenant}, ""
}

// internalEvent reports whether ev claims what only Autonomics' own
// components send.
func internalEvent(ev governor.Event) bool {
	p := engine.ReservedSourcePrefix
	reserved := len(ev.Source) >= len(p) && strings.EqualFold(ev.Source[:len(p)], p)
	return reserved || ev.CausationID != "" || ev.CorrelationID != "" || ev.CascadeDepth != 0
}

// subscriptionDomain returns the domain whose domain or internal topic sub
// (an id or a full resource name) delivers.
func subscriptionDomain(n topic.Names, sub string) (governor.Domain, bool, bool) {
	if i := strings.LastIndex(sub, "/"); i >= 0 {
		sub = sub[i+1:]
	}
	t, ok := strings.CutSuffix(sub, topic.PushSuffix)
	if !ok {
		return "", false, false
	}
	d, ok := n.DomainOf(t)
	if !ok {
		return "", false, false
	}
	return d, t == n.Internal(d), true
}

// Replay republishes the dead letter id to the domain topic of its
// domain, with its original data and attributes and the tenant as
// ordering key, and records that by replayed it. A dead letter that may
// not be replayed is a Conflict error saying why. It returns the id of
// the published message.
func (c *Console) Replay(ctx context.Context, id, by string) (string, error) {
	const op = "console.Replay"
	if err := ValidID("dead letter id", id); err != nil {
		return "", err
	}
	d, err := c.o.Records.DeadLetter(ctx, id)
	if err != nil {
		return "", err
	}
	domain, msg, refusal := c.replayPlan(d)
	if refusal != "" {
		return "", fault.Errorf(fault.Conflict, op, "dead letter %s may not be replayed: %s", quote(id), refusal)
	}
	msgID := d.EventID
	if p, ok := c.o.Publisher.(IDPublisher); ok {
		msgID, err = p.PublishID(ctx, msg)
	} else {
		err = c.o.Publisher.Publish(ctx, msg)
	}
	if err != nil {
		return "", fault.Wrap(fault.Unavailable, op, err)
	}
	if by == "" {
		by = "local"
	}
	rp := Replay{By: by, At: c.o.Now().UTC(), MessageID: msgID}
	c.o.Logger.InfoContext(ctx, "dead letter replayed", "dead_letter", id, "domain", domain, "topic", msg.Topic, "by", by, "message_id", msgID)
	if err := c.o.Records.MarkReplayed(ctx, id, rp); err != nil {
		// Published already: the replay stands; only its record is missing.
		c.o.Logger.ErrorContext(ctx, "dead letter replayed but the replay was not recorded", "dead_letter", id, "by", by, "error", err.Error())
	}
	return msgID, nil
}

// newEventID returns a random event id for an operator's event.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "console-" + hex.EncodeToString(b[:])
}

// SendRequest is an event an operator sends.
type SendRequest struct {
	Type    string `json:"type"`
	Tenant  string `json:"tenant"`
	Subject string `json:"subject"`
	// Data is the event's JSON object; {} when absent.
	Data []byte `json:"data"`
}

// Send builds a CloudEvent from req with source console/<by> ("local"
// when by is empty), validates it as the engine validates an event from
// outside (envelope, type, sender rules, data schema) and publishes it to
// the domain topic of its domain. It returns the event id.
func (c *Console) Send(ctx context.Context, by string, req SendRequest) (string, error) {
	const op = "console.Send"
	if by == "" {
		by = "local"
	}
	data := req.Data
	if len(strings.TrimSpace(string(data))) == 0 {
		data = []byte("{}")
	}
	if len(data) > event.MaxDataBytes {
		return "", fault.Errorf(fault.Invalid, op, "data is %d bytes, limit %d", len(data), event.MaxDataBytes)
	}
	if err := event.ValidTenant(req.Tenant); err != nil {
		return "", fault.Errorf(fault.Invalid, op, "%s", fault.ErrorMessage(err))
	}
	if req.Subject != "" {
		if err := event.ValidSubject(req.Subject); err != nil {
			return "", fault.Errorf(fault.Invalid, op, "%s", fault.ErrorMessage(err))
		}
	}
	ev := governor.Event{
		ID: newEventID(), Source: "console/" + urlPathEscape(by), Type: req.Type, Tenant: req.Tenant,
		Subject: req.Subject, Time: c.o.Now().UTC(), Data: data,
	}
	raw, attrs := event.Encode(ev)
	dec, err := event.Decode(event.Message{Data: raw, Attributes: attrs})
	if err != nil {
		return "", fault.Errorf(fault.Invalid, op, "%s", fault.ErrorMessage(err))
	}
	m := c.o.Machines[dec.Domain]
	if m == nil {
		return "", fault.Errorf(fault.Invalid, op, "type %s: no governor serves domain %s", quote(req.Type), quote(string(dec.Domain)))
	}
	if err := m.CheckEvent(dec); err != nil {
		return "", fault.Errorf(fault.Invalid, op, "%s", fault.ErrorMessage(err))
	}
	sender, err := engine.SenderOf(false, dec)
	if err != nil {
		return "", fault.Errorf(fault.Invalid, op, "%s", fault.ErrorMessage(err))
	}
	if !m.May(sender, dec.Name) {
		return "", fault.Errorf(fault.Invalid, op, "%s may not be sent from outside (it is sent by %s)", dec.Type, joinSenders(m.SendersOf(dec.Name)))
	}
	msg := store.Message{Topic: c.o.Topics.Domain(dec.Domain), Data: raw, Attributes: attrs, OrderingKey: dec.Tenant}
	if err := c.o.Publisher.Publish(ctx, msg); err != nil {
		return "", fault.Wrap(fault.Unavailable, op, err)
	}
	c.o.Logger.InfoContext(ctx, "event sent from the console", "type", dec.Type, "tenant", dec.Tenant, "subject", dec.Subject, "id", ev.ID, "by", by)
	return ev.ID, nil
}

func joinSenders(ss []governor.Sender) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// AdvanceClock advances tenant's test clock to to. Without a test clock
// it is a NotFound error.
func (c *Console) AdvanceClock(ctx context.Context, tenant string, to time.Time, by string) ([]Fired, error) {
	const op = "console.AdvanceClock"
	if c.o.Clock == nil {
		return nil, fault.Errorf(fault.NotFound, op, "this deployment has no test clocks")
	}
	if err := event.ValidTenant(tenant); err != nil {
		return nil, err
	}
	fired, err := c.o.Clock.Advance(ctx, tenant, to)
	c.o.Logger.InfoContext(ctx, "test clock advanced", "tenant", tenant, "to", to, "fired", len(fired), "by", by)
	return fired, err
}
