// Package webhooktest is the conformance suite of webhook.Store (Run) and
// the test doubles of the actuator's tests: a controlled clock, a
// recording publisher, a programmable receiver and the action messages the
// governors publish.
package webhooktest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/webhook"
)

// Epoch is the controlled clock's start.
var Epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Clock is a controlled clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at Epoch.
func NewClock() *Clock { return &Clock{t: Epoch} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Publisher records what is published; Fail makes the next publications
// fail while it is set.
type Publisher struct {
	mu   sync.Mutex
	msgs []store.Message
	fail bool
}

// Publish records m.
func (p *Publisher) Publish(ctx context.Context, m store.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return fault.Errorf(fault.Unavailable, "webhooktest.Publish", "publishing is down")
	}
	p.msgs = append(p.msgs, m)
	return nil
}

// Fail sets whether publications fail.
func (p *Publisher) Fail(on bool) {
	p.mu.Lock()
	p.fail = on
	p.mu.Unlock()
}

// On returns the messages published to topic.
func (p *Publisher) On(topic string) []store.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []store.Message
	for _, m := range p.msgs {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// Request is one request a Receiver got.
type Request struct {
	ID, Timestamp, Signature string
	Header                   http.Header
	Body                     []byte
	At                       time.Time
}

// Receiver is an HTTP server on 127.0.0.1 that records every request and
// answers with Respond (200 when nil).
type Receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Request
	respond  func(Request, int) (int, string)
	notify   chan struct{}
}

// NewReceiver starts a Receiver, closed when the test ends.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{notify: make(chan struct{}, 1<<16)}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// Respond sets how the receiver answers: given the request and how many
// requests with its webhook-id came before it, a status and a body.
func (r *Receiver) Respond(f func(req Request, seen int) (int, string)) {
	r.mu.Lock()
	r.respond = f
	r.mu.Unlock()
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	rq := Request{
		ID: req.Header.Get(webhook.HeaderID), Timestamp: req.Header.Get(webhook.HeaderTimestamp),
		Signature: req.Header.Get(webhook.HeaderSignature), Header: req.Header.Clone(), Body: body, At: time.Now(),
	}
	r.mu.Lock()
	seen := 0
	for _, p := range r.requests {
		if p.ID == rq.ID {
			seen++
		}
	}
	r.requests = append(r.requests, rq)
	respond := r.respond
	r.mu.Unlock()
	status, text := http.StatusOK, "ok"
	if respond != nil {
		status, text = respond(rq, seen)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Requests returns the requests received so far.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// IDs returns the webhook-ids received, in order.
func (r *Receiver) IDs() []string {
	var out []string
	for _, q := range r.Requests() {
		out = append(out, q.ID)
	}
	return out
}

// WaitFor waits until the receiver has n requests, or fails the test
// after a minute.
func (r *Receiver) WaitFor(t testing.TB, n int) []Request {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		if got := r.Requests(); len(got) >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("receiver got %d requests, want %d", len(r.Requests()), n)
		}
	}
}

// ActionSpec describes an action message.
type ActionSpec struct {
	ID      string
	Domain  governor.Domain
	Kind    string
	Tenant  string
	Subject string
	Time    time.Time
	Data    string
}

// Message returns the action's Pub/Sub message as the engine's outbox
// publishes it: binary mode, source autonomics/governor/<domain>, type
// autonomics.action.<kind>, the attribute action, ordering key tenant.
func (s ActionSpec) Message() event.Message {
	if s.Time.IsZero() {
		s.Time = Epoch
	}
	ev := governor.Event{
		ID: s.ID, Source: engine.GovernorSourcePrefix + string(s.Domain), Type: engine.ActionTypePrefix + s.Kind,
		Domain: s.Domain, Tenant: s.Tenant, Subject: s.Subject, Time: s.Time,
		CorrelationID: "corr-" + s.ID, CausationID: "receipt-" + s.ID, CascadeDepth: 1,
	}
	if s.Data != "" {
		ev.Data = json.RawMessage(s.Data)
	}
	data, attrs := event.Encode(ev)
	attrs[webhook.AttrAction] = s.Kind
	return event.Message{Data: data, Attributes: attrs, ID: "msg-" + s.ID, PublishTime: s.Time, OrderingKey: s.Tenant}
}

// Action decodes the spec's message with the given kinds, failing the test
// on an error.
func (s ActionSpec) Action(t testing.TB, kinds webhook.Kinds) webhook.Action {
	t.Helper()
	a, err := webhook.DecodeAction(s.Message(), kinds)
	if err != nil {
		t.Fatalf("DecodeAction(%+v): %v", s, err)
	}
	return a
}

// ErrInjected is the error of an injected fault.
var ErrInjected = errors.New("injected fault")

// Faulty wraps a Store and lets a test fail transactions by what they
// write, as a process that stops before it commits leaves the store: not
// written at all.
type Faulty struct {
	webhook.Store
	mu sync.Mutex
	// write, when set, sees each write of a transaction (the record: an
	// Endpoint, Action, Delivery, Lane or Attempt; a string id for a
	// delete) and fails the transaction by returning true.
	write func(v any) bool
}

// FailWrites sets the predicate of the writes that fail their
// transaction; nil stops failing.
func (f *Faulty) FailWrites(write func(v any) bool) {
	f.mu.Lock()
	f.write = write
	f.mu.Unlock()
}

// RunTx runs the transaction, failing it at the first write selected.
func (f *Faulty) RunTx(ctx context.Context, fn func(ctx context.Context, tx webhook.Tx) error) error {
	f.mu.Lock()
	w := f.write
	f.mu.Unlock()
	if w == nil {
		return f.Store.RunTx(ctx, fn)
	}
	return f.Store.RunTx(ctx, func(ctx context.Context, tx webhook.Tx) error {
		return fn(ctx, faultyTx{Tx: tx, write: w})
	})
}

type faultyTx struct {
	webhook.Tx
	write func(v any) bool
}

func (t faultyTx) check(v any) error {
	if t.write(v) {
		return fault.Wrap(fault.Unavailable, "webhooktest.Faulty", ErrInjected)
	}
	return nil
}

func (t faultyTx) PutEndpoint(e webhook.Endpoint) error {
	if err := t.check(e); err != nil {
		return err
	}
	return t.Tx.PutEndpoint(e)
}

func (t faultyTx) PutAction(a webhook.Action) error {
	if err := t.check(a); err != nil {
		return err
	}
	return t.Tx.PutAction(a)
}

func (t faultyTx) PutDelivery(d webhook.Delivery) error {
	if err := t.check(d); err != nil {
		return err
	}
	return t.Tx.PutDelivery(d)
}

func (t faultyTx) PutLane(l webhook.Lane) error {
	if err := t.check(l); err != nil {
		return err
	}
	return t.Tx.PutLane(l)
}

func (t faultyTx) PutAttempt(a webhook.Attempt) error {
	if err := t.check(a); err != nil {
		return err
	}
	return t.Tx.PutAttempt(a)
}
