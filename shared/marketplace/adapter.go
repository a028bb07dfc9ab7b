package marketplace

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/api/cloudcommerceprocurement/v1"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// Metric names.
const (
	// MetricNotifications counts notifications by event_type and outcome.
	MetricNotifications = "autonomics.marketplace.notifications"
	// MetricDrift counts entitlements whose governor differs from
	// Procurement, by state.
	MetricDrift = "autonomics.marketplace.drift"
)

// Outcomes of a notification.
const (
	OutcomeMapped      = "mapped"
	OutcomeIgnored     = "ignored"
	OutcomeInvalid     = "invalid"
	OutcomeUnavailable = "unavailable"
)

// DeadLetterDomain is the domain (deadletter.AttrDomain) of the adapter's
// dead letters.
const DeadLetterDomain = "marketplace"

// AttrEventType is the dead-letter attribute naming the notification's
// eventType, when it decoded.
const AttrEventType = "marketplace_event_type"

// PushPath is the path Handler serves.
const PushPath = "/v1/notifications/push"

// meterName is the instrumentation scope of the package's metrics.
const meterName = "github.com/autonomics/autonomics/shared/marketplace"

// ProcurementReader reads entitlements and accounts from the Procurement
// API. Its errors are *fault.Error values: NotFound for a resource
// that does not exist, Unavailable for transient faults, Invalid for
// refused requests.
type ProcurementReader interface {
	GetEntitlement(ctx context.Context, id string) (*cloudcommerceprocurement.Entitlement, error)
	GetAccount(ctx context.Context, id string) (*cloudcommerceprocurement.Account, error)
}

// Linker resolves Procurement accounts to tenants: the part of Accounts
// the adapter and the reconciler use.
type Linker interface {
	Link(ctx context.Context, account, source string) (Link, error)
	ByAccount(ctx context.Context, account string) (Link, error)
}

// AdapterOptions configure an Adapter.
type AdapterOptions struct {
	// Provider is the Procurement provider id; notifications for another
	// provider are dead-lettered.
	Provider    string
	Procurement ProcurementReader
	Accounts    Linker
	Publisher   engine.Publisher
	Topics      topic.Names
	// Logger receives a line per notification; slog.Default() when nil.
	Logger *slog.Logger
	// MeterProvider receives the notifications counter; no-op when nil.
	MeterProvider metric.MeterProvider
	// Now stamps the events; time.Now when nil.
	Now func() time.Time
	// Callers, when set, are the only caller emails (the push
	// subscription's identity) Handler accepts; others are answered 403
	// and change nothing.
	Callers []string
}

// Adapter turns Marketplace notifications into governor events. It is
// safe for concurrent use.
type Adapter struct {
	o             AdapterOptions
	source        string
	notifications metric.Int64Counter
}

// NewAdapter returns an Adapter after checking its options.
func NewAdapter(o AdapterOptions) (*Adapter, error) {
	const op = "marketplace.NewAdapter"
	if err := validProvider(o.Provider); err != nil {
		return nil, fault.Errorf(fault.Invalid, op, "%s", fault.ErrorMessage(err))
	}
	if o.Procurement == nil || o.Accounts == nil || o.Publisher == nil {
		return nil, fault.Errorf(fault.Invalid, op, "procurement, accounts and publisher are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = noop.NewMeterProvider()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c, err := o.MeterProvider.Meter(meterName).Int64Counter(MetricNotifications,
		metric.WithDescription("Marketplace notifications handled, by event type and outcome."))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	return &Adapter{o: o, source: engine.MarketplaceSourcePrefix + o.Provider, notifications: c}, nil
}

// validProvider checks a provider id: it names the events' source.
func validProvider(p string) error {
	if r := idReason(p); r != "" {
		return fault.Errorf(fault.Invalid, "marketplace.Provider", "provider id %s: %s", quote(p), r)
	}
	return nil
}

// Result says what handling one notification did.
type Result struct {
	// Outcome is OutcomeMapped, OutcomeIgnored, OutcomeInvalid
	// (dead-lettered) or OutcomeUnavailable (to be redelivered).
	Outcome string `json:"outcome"`
	// Reason says why a notification was ignored or dead-lettered.
	Reason string `json:"reason,omitempty"`
	// State is the Procurement state read, when one was.
	State string `json:"state,omitempty"`
	// Tenant is the tenant the events went to.
	Tenant string `json:"tenant,omitempty"`
	// Events are the types of the events published, in order.
	Events []string `json:"events,omitempty"`
}

// MaxDeadLetterBody bounds the part of a refused push body that is
// dead-lettered: a body that is no push delivery is kept up to this many
// bytes.
const MaxDeadLetterBody = 64 << 10

// AttrTruncated is the dead-letter attribute marking a push body kept
// only in part (deadletter.AttrTruncated): it holds the number of bytes
// kept.
const AttrTruncated = deadletter.AttrTruncated

// Handler serves POST /v1/notifications/push: a Pub/Sub push delivery of
// a Marketplace notification, capped at event.MaxPushBytes. It answers 204
// once the notification is done with (mapped, ignored or dead-lettered)
// and 503 when Pub/Sub should redeliver it. A body that is no push
// delivery, or over the cap, can never succeed: Pub/Sub would redeliver
// any other answer, so it is dead-lettered (its first MaxDeadLetterBody
// bytes, with the reason) and acknowledged with 204; only a failure to
// dead-letter it is a 503. With AdapterOptions.Callers set, a push from
// another identity is answered 403 and nothing is read.
func (a *Adapter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PushPath, func(w http.ResponseWriter, r *http.Request) {
		const op = "marketplace.push"
		ctx := r.Context()
		if !Allowed(a.o.Callers, r) {
			Forbidden(w, "only the push identity of the notifications subscription may push notifications")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, event.MaxPushBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if !errors.As(err, &tooBig) {
				httpjson.Error(w, fault.Errorf(fault.Unavailable, op, "reading the push body: %s", httpjson.Truncate(err.Error(), 200)))
				return
			}
			cause := &fault.Error{Code: fault.Invalid, Op: op, Message: "push body exceeds " + strconv.Itoa(event.MaxPushBytes) + " bytes", Err: tooBig}
			a.refuse(ctx, w, body, cause)
			return
		}
		m, err := event.ParsePush(body)
		if err != nil {
			a.refuse(ctx, w, body, err)
			return
		}
		if _, err := a.Handle(ctx, m); err != nil {
			httpjson.Error(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// refuse dead-letters a push body that is no push delivery (at most
// MaxDeadLetterBody bytes of it) with the reason and acknowledges it;
// only a failure to publish is answered 503, so that Pub/Sub redelivers.
func (a *Adapter) refuse(ctx context.Context, w http.ResponseWriter, body []byte, cause error) {
	attrs := map[string]string{}
	if len(body) > MaxDeadLetterBody {
		body = body[:MaxDeadLetterBody]
		attrs[AttrTruncated] = strconv.Itoa(MaxDeadLetterBody)
	}
	a.notifications.Add(ctx, 1, metric.WithAttributes(attribute.String("event_type", "unknown"), attribute.String("outcome", OutcomeInvalid)))
	a.o.Logger.WarnContext(ctx, "push body refused and dead-lettered", "error", fault.ErrorMessage(cause), "bytes", len(body))
	if err := a.deadLetter(ctx, event.Message{Data: body, Attributes: attrs}, Notification{}, cause); err != nil {
		httpjson.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Handle handles one notification message. It returns an Unavailable
// error when the message must be redelivered (Procurement or publishing
// failed) and nil otherwise, including when the message was ignored or
// dead-lettered.
func (a *Adapter) Handle(ctx context.Context, m event.Message) (Result, error) {
	start := time.Now()
	n, res, err := a.handle(ctx, m)
	if err != nil && !fault.IsRetryable(err) {
		res = Result{Outcome: OutcomeInvalid, Reason: fault.ErrorMessage(err)}
		if dlErr := a.deadLetter(ctx, m, n, err); dlErr != nil {
			res, err = Result{Outcome: OutcomeUnavailable, Reason: fault.ErrorMessage(dlErr)}, dlErr
		} else {
			err = nil
		}
	} else if err != nil {
		res = Result{Outcome: OutcomeUnavailable, Reason: fault.ErrorMessage(err), State: res.State, Tenant: res.Tenant}
	}
	eventType := n.EventType
	if _, known := RuleOf(eventType); !known {
		// Bound the metric's cardinality: unknown types share one value.
		eventType = "unknown"
	}
	a.notifications.Add(ctx, 1, metric.WithAttributes(attribute.String("event_type", eventType), attribute.String("outcome", res.Outcome)))
	level := slog.LevelInfo
	switch res.Outcome {
	case OutcomeInvalid:
		level = slog.LevelWarn
	case OutcomeUnavailable:
		level = slog.LevelError
	}
	a.o.Logger.Log(ctx, level, "marketplace notification",
		"message_id", m.ID, "event_id", n.EventID, "event_type", n.EventType, "resource", string(n.Resource), "id", n.ID,
		"outcome", res.Outcome, "reason", res.Reason, "state", res.State, "tenant", res.Tenant,
		"events", strings.Join(res.Events, ","), "latency_ms", float64(time.Since(start).Microseconds())/1000)
	return res, err
}

// handle decodes, reads, resolves and publishes; a non-retryable error
// means dead-letter.
func (a *Adapter) handle(ctx context.Context, m event.Message) (Notification, Result, error) {
	const op = "marketplace.Handle"
	n, err := Decode(m.Data)
	if err != nil {
		return n, Result{}, err
	}
	if n.ProviderID != a.o.Provider {
		return n, Result{}, fault.Errorf(fault.Invalid, op, "providerId %s is not this provider's (%s)", quote(n.ProviderID), a.o.Provider)
	}
	rule, ok := RuleOf(n.EventType)
	if !ok {
		return n, Result{}, fault.Errorf(fault.Invalid, op, "eventType %s is unknown", quote(n.EventType))
	}
	if rule.Resource != n.Resource {
		return n, Result{}, fault.Errorf(fault.Invalid, op, "%s carries an %s, want an %s", n.EventType, n.Resource, rule.Resource)
	}
	if rule.Ignored != "" {
		return n, Result{Outcome: OutcomeIgnored, Reason: rule.Ignored}, nil
	}
	var res Result
	var ent *cloudcommerceprocurement.Entitlement
	var account string
	if n.Resource == ResourceEntitlement {
		ent, err = a.o.Procurement.GetEntitlement(ctx, n.ID)
		switch {
		case fault.ErrorCode(err) == fault.NotFound:
			res.State = StateGone
		case err != nil:
			return n, res, err
		default:
			if ent == nil {
				return n, res, fault.Errorf(fault.Unavailable, op, "procurement returned no entitlement %s", n.ID)
			}
			res.State = ent.State
			if account, err = AccountOf(ent.Account); err != nil {
				return n, res, err
			}
		}
	} else {
		account = n.ID
		acct, err := a.o.Procurement.GetAccount(ctx, n.ID)
		switch {
		case fault.ErrorCode(err) == fault.NotFound:
			res.State = StateGone
		case err != nil:
			return n, res, err
		case acct != nil:
			res.State = acct.State
		}
	}
	names, reason := rule.Events(res.State)
	if len(names) == 0 {
		res.Outcome, res.Reason = OutcomeIgnored, reason
		return n, res, nil
	}
	var link Link
	if n.Resource == ResourceAccount {
		// Closing needs a tenant that exists: never link an account just
		// to close it.
		link, err = a.o.Accounts.ByAccount(ctx, account)
		if fault.ErrorCode(err) == fault.NotFound {
			res.Outcome, res.Reason = OutcomeIgnored, "the account is not linked to a tenant"
			return n, res, nil
		}
	} else {
		link, err = a.o.Accounts.Link(ctx, account, LinkedByNotification)
	}
	if err != nil {
		return n, res, err
	}
	res.Tenant = link.Tenant
	subject := n.ID
	if n.Resource == ResourceAccount {
		subject = governor.DefaultSubject
	}
	evs := BuildEvents(rule.Resource.Domain(), names, ent, link.Tenant, subject, a.source, n.EventID, a.o.Now())
	for _, ev := range evs {
		if err := publish(ctx, a.o.Publisher, a.o.Topics.Domain(ev.Domain), ev); err != nil {
			return n, res, err
		}
		res.Events = append(res.Events, governor.TypeOf(ev.Domain, ev.Name))
	}
	res.Outcome = OutcomeMapped
	return n, res, nil
}

// BuildEvents returns the events names become for one instance: ids
// idBase, idBase-2, idBase-3… in order, data from the entitlement (nil for
// account events).
func BuildEvents(domain governor.Domain, names []governor.EventName, ent *cloudcommerceprocurement.Entitlement,
	tenant, subject, source, idBase string, now time.Time) []governor.Event {
	out := make([]governor.Event, 0, len(names))
	for i, name := range names {
		id := idBase
		if i > 0 {
			id += "-" + strconv.Itoa(i+1)
		}
		ev := governor.Event{
			ID: id, Source: source, Type: governor.TypeOf(domain, name), Domain: domain, Name: name,
			Tenant: tenant, Subject: subject, Time: now.UTC(),
		}
		if domain == governor.Entitlement {
			ev.Data = Payload(name, ent)
		}
		out = append(out, ev)
	}
	return out
}

// publish publishes ev to topic in binary mode, ordered by tenant.
func publish(ctx context.Context, p engine.Publisher, topic string, ev governor.Event) error {
	data, attrs := event.Encode(ev)
	err := p.Publish(ctx, store.Message{Topic: topic, Data: data, Attributes: attrs, OrderingKey: ev.Tenant})
	if err != nil {
		return fault.Wrap(fault.Unavailable, "marketplace.publish", err)
	}
	return nil
}

// AccountOf returns the account id of an entitlement's account resource
// name (providers/{p}/accounts/{a} or accounts/{a}).
func AccountOf(name string) (string, error) {
	const op = "marketplace.AccountOf"
	i := strings.LastIndex(name, "accounts/")
	if name == "" || i < 0 || (i > 0 && name[i-1] != '/') {
		return "", fault.Errorf(fault.Invalid, op, "entitlement account %s: want providers/{provider}/accounts/{account}", quote(name))
	}
	id := name[i+len("accounts/"):]
	if err := ValidAccount(id); err != nil {
		return "", fault.Errorf(fault.Invalid, op, "entitlement account %s: %s", quote(name), fault.ErrorMessage(err))
	}
	return id, nil
}

// deadLetter copies the message to the dead-letter topic with the reason.
func (a *Adapter) deadLetter(ctx context.Context, m event.Message, n Notification, cause error) error {
	dl := deadletter.New(a.o.Topics.DeadLetter(), m, DeadLetterDomain, fault.ErrorCode(cause), fault.ErrorMessage(cause))
	if n.EventType != "" {
		dl.Attributes[AttrEventType] = n.EventType
	}
	if err := a.o.Publisher.Publish(ctx, dl); err != nil {
		return fault.Wrap(fault.Unavailable, "marketplace.deadLetter", err)
	}
	return nil
}
