package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/memwebhook"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

var ctx = context.Background()

var kinds = webhook.KindsOf(machines.New(nil))

// fixture is a Deliverer on the in-memory store and a controlled clock,
// with a receiver on 127.0.0.1.
type fixture struct {
	t      *testing.T
	d      *webhook.Deliverer
	store  *webhooktest.Faulty
	clock  *webhooktest.Clock
	pub    *webhooktest.Publisher
	recv   *webhooktest.Receiver
	secret webhook.Secret
	topics topic.Names
}

func newFixture(t *testing.T, guard *webhook.Guard) *fixture {
	t.Helper()
	if guard == nil {
		guard = &webhook.Guard{AllowLoopback: true}
	}
	f := &fixture{
		t: t, store: &webhooktest.Faulty{Store: memwebhook.New()}, clock: webhooktest.NewClock(), pub: &webhooktest.Publisher{},
		recv: webhooktest.NewReceiver(t), secret: webhook.NewSecret(), topics: topic.Names{Prefix: "t-"},
	}
	d, err := webhook.New(webhook.Options{
		Store: f.store, Publisher: f.pub, Topics: f.topics, Kinds: kinds, Guard: guard, InlineSecrets: true, Clock: f.clock.Now,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	t.Cleanup(func() { _ = d.Wait(ctx) })
	return f
}

// endpoint registers an endpoint at url (the receiver's when empty).
func (f *fixture) endpoint(id, url string, kinds ...string) webhook.Endpoint {
	f.t.Helper()
	if url == "" {
		url = f.recv.URL
	}
	if len(kinds) == 0 {
		kinds = []string{webhook.AllKinds}
	}
	e, _, err := f.d.PutEndpoint(ctx, webhook.Endpoint{ID: id, URL: url, Kinds: kinds, Secrets: []string{f.secret.Encode()}})
	if err != nil {
		f.t.Fatalf("PutEndpoint %s: %v", id, err)
	}
	return e
}

// action accepts an action and waits for the attempts it starts.
func (f *fixture) action(id, tenant string) webhook.Action {
	f.t.Helper()
	return f.actionOf(webhooktest.ActionSpec{ID: id, Domain: governor.MultiTenant, Kind: "tenant.provision", Tenant: tenant, Time: f.clock.Now(), Data: `{"plan":"pro"}`})
}

func (f *fixture) actionOf(spec webhooktest.ActionSpec) webhook.Action {
	f.t.Helper()
	a := spec.Action(f.t, kinds)
	acc, err := f.d.Accept(ctx, a)
	if err != nil {
		f.t.Fatalf("Accept %s: %v", spec.ID, err)
	}
	f.d.Dispatch(acc.Heads...).Wait(ctx)
	return a
}

// sweep advances the clock by d and sweeps.
func (f *fixture) sweep(d time.Duration) webhook.Swept {
	f.t.Helper()
	f.clock.Advance(d)
	s, err := f.d.Sweep(ctx, 0)
	if err != nil {
		f.t.Fatalf("Sweep: %v", err)
	}
	return s
}

func (f *fixture) history(id string) webhook.History {
	f.t.Helper()
	h, err := f.d.History(ctx, id)
	if err != nil {
		f.t.Fatalf("History %s: %v", id, err)
	}
	return h
}

func status(code int) func(webhooktest.Request, int) (int, string) {
	return func(webhooktest.Request, int) (int, string) { return code, http.StatusText(code) }
}

func TestDeliveryIsAStandardWebhook(t *testing.T) {
	f := newFixture(t, nil)
	f.endpoint("ops", "")
	a := f.action("act-1", "acme")
	reqs := f.recv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.ID != "act-1" || r.Timestamp != fmt.Sprint(f.clock.Now().Unix()) {
		t.Errorf("webhook-id %q, webhook-timestamp %q; want act-1, %d", r.ID, r.Timestamp, f.clock.Now().Unix())
	}
	if err := webhook.Verify(r.Header, r.Body, f.clock.Now(), 0, f.secret); err != nil {
		t.Errorf("the receiver cannot verify the signature: %v", err)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var p webhook.Payload
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "tenant.provision" || p.ActionID != "act-1" || p.TenantID != "acme" || p.Domain != "multi_tenant" ||
		string(p.Data) != `{"plan":"pro"}` || p.ReceiptHash != a.CausationID || p.Timestamp != a.Time.Format(time.RFC3339Nano) {
		t.Errorf("payload %+v", p)
	}
}

func TestTransientFailureRetriesWithBackoff(t *testing.T) {
	f := newFixture(t, nil)
	f.recv.Respond(func(r webhooktest.Request, seen int) (int, string) {
		if seen < 2 {
			return http.StatusServiceUnavailable, "busy"
		}
		return http.StatusOK, "ok"
	})
	f.endpoint("ops", "")
	f.action("act-1", "acme")
	del := webhook.DeliveryID("ops", "act-1")
	var starts []time.Time
	for n := 1; n <= 2; n++ {
		wait := webhook.DefaultPolicy.Delay(n, del)
		f.sweep(wait - time.Second)
		if got := len(f.recv.Requests()); got != n {
			t.Fatalf("a second before retry %d, the receiver has %d requests, want %d", n, got, n)
		}
		f.sweep(time.Second)
		if got := len(f.recv.Requests()); got != n+1 {
			t.Fatalf("at retry %d (after %v), the receiver has %d requests, want %d", n, wait, got, n+1)
		}
	}
	h := f.history("act-1")
	for _, a := range h.Attempts {
		starts = append(starts, a.StartedAt)
	}
	if len(starts) != 3 || h.Deliveries[0].State != webhook.Succeeded {
		t.Fatalf("%d attempts, state %s; want 3, delivered", len(starts), h.Deliveries[0].State)
	}
	if d1, d2 := starts[1].Sub(starts[0]), starts[2].Sub(starts[1]); d2 <= d1 {
		t.Errorf("backoff did not grow: %v then %v", d1, d2)
	}
	for _, id := range f.recv.IDs() {
		if id != "act-1" {
			t.Errorf("a retry carried webhook-id %q, want act-1 every time", id)
		}
	}
	if got := []webhook.Outcome{h.Attempts[0].Outcome, h.Attempts[1].Outcome, h.Attempts[2].Outcome}; !slices.Equal(got, []webhook.Outcome{webhook.Retry, webhook.Retry, webhook.Delivered}) {
		t.Errorf("attempt outcomes %v", got)
	}
	if h.Attempts[0].Status != 503 || h.Attempts[0].Response != "busy" {
		t.Errorf("first attempt recorded %d %q, want 503 busy", h.Attempts[0].Status, h.Attempts[0].Response)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	f := newFixture(t, nil)
	f.recv.Respond(func(r webhooktest.Request, seen int) (int, string) {
		if seen == 0 {
			return http.StatusTooManyRequests, "slow down"
		}
		return http.StatusOK, ""
	})
	srv := f.recv.Config.Handler
	f.recv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "600")
		srv.ServeHTTP(w, r)
	})
	f.endpoint("ops", "")
	f.action("act-1", "acme")
	f.sweep(599 * time.Second)
	if n := len(f.recv.Requests()); n != 1 {
		t.Fatalf("retried after %d requests before Retry-After: 600 had passed", n)
	}
	f.sweep(time.Second)
	if n := len(f.recv.Requests()); n != 2 {
		t.Fatalf("receiver has %d requests once Retry-After passed, want 2", n)
	}
}

func TestRetriesExhaustedAfterThreeDays(t *testing.T) {
	f := newFixture(t, nil)
	f.recv.Respond(status(http.StatusInternalServerError))
	f.endpoint("ops", "")
	a := f.action("act-1", "acme")
	start := f.clock.Now()
	for i := 0; i < 200 && f.history("act-1").Deliveries[0].State == webhook.Pending; i++ {
		f.sweep(30 * time.Minute)
	}
	h := f.history("act-1")
	del := h.Deliveries[0]
	if del.State != webhook.Failed || del.Failure != webhook.FailureExhausted || !del.Reported {
		t.Fatalf("delivery %s (%s), reported %v; want failed, exhausted, reported", del.State, del.Failure, del.Reported)
	}
	last := h.Attempts[len(h.Attempts)-1].StartedAt
	if last.Sub(start) > webhook.DefaultPolicy.MaxAge || last.Sub(start) < 48*time.Hour {
		t.Errorf("last attempt %v after the first, want within 72h and past 48h", last.Sub(start))
	}
	if len(h.Attempts) < 10 || len(h.Attempts) > 20 {
		t.Errorf("%d attempts in 3 days", len(h.Attempts))
	}
	dl := f.pub.On(f.topics.DeadLetter())
	if len(dl) != 1 || string(dl[0].Data) != string(a.Raw) || dl[0].Attributes[deadletter.AttrCode] != string(fault.Unavailable) ||
		!strings.Contains(dl[0].Attributes[deadletter.AttrReason], "retries exhausted") {
		t.Errorf("dead letters %+v", dl)
	}
	if got := f.pub.On(f.topics.Internal(governor.MultiTenant)); len(got) != 1 {
		t.Errorf("%d actuation_failed events, want 1", len(got))
	}
}

func TestStatusClassification(t *testing.T) {
	tests := []struct {
		status int
		want   webhook.State
	}{
		{200, webhook.Succeeded}, {204, webhook.Succeeded},
		{400, webhook.Failed}, {401, webhook.Failed}, {403, webhook.Failed}, {404, webhook.Failed}, {422, webhook.Failed},
		{301, webhook.Pending}, {307, webhook.Pending}, {408, webhook.Pending}, {429, webhook.Pending},
		{500, webhook.Pending}, {502, webhook.Pending}, {503, webhook.Pending}, {504, webhook.Pending},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			f := newFixture(t, nil)
			f.recv.Respond(status(tt.status))
			f.endpoint("ops", "")
			f.action("act-1", "acme")
			h := f.history("act-1")
			if got := h.Deliveries[0].State; got != tt.want || len(h.Attempts) != 1 {
				t.Errorf("after HTTP %d: state %s with %d attempts, want %s after 1", tt.status, got, len(h.Attempts), tt.want)
			}
			if tt.want == webhook.Failed && len(f.pub.On(f.topics.DeadLetter())) != 1 {
				t.Errorf("a permanent failure was not dead-lettered")
			}
		})
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	f := newFixture(t, nil)
	f.recv.Respond(status(http.StatusGone))
	f.endpoint("ops", "")
	f.action("act-1", "acme")
	ep, err := f.d.Endpoint(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if !ep.Disabled || !strings.Contains(ep.DisabledReason, "410") {
		t.Errorf("endpoint after 410: disabled %v (%q), want disabled for 410", ep.Disabled, ep.DisabledReason)
	}
	if del := f.history("act-1").Deliveries[0]; del.State != webhook.Failed || del.Failure != webhook.FailureGone {
		t.Errorf("delivery %s (%s), want failed (gone)", del.State, del.Failure)
	}
	f.action("act-2", "acme")
	f.sweep(time.Hour)
	if n := len(f.recv.Requests()); n != 1 {
		t.Errorf("a disabled endpoint received %d requests, want only the one answered 410", n)
	}
	if dels := f.history("act-2").Deliveries; len(dels) != 0 {
		t.Errorf("an action after the 410 was queued for the disabled endpoint: %+v", dels)
	}
}

func TestDisabledEndpointHoldsItsQueueUntilEnabled(t *testing.T) {
	f := newFixture(t, nil)
	f.recv.Respond(status(http.StatusServiceUnavailable))
	ep := f.endpoint("ops", "")
	f.action("act-1", "acme")
	ep.Disabled = true
	if _, _, err := f.d.PutEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	f.sweep(time.Hour)
	if del := f.history("act-1").Deliveries[0]; !del.Held || len(f.recv.Requests()) != 1 {
		t.Fatalf("delivery held %v after %d requests; want held after the first", del.Held, len(f.recv.Requests()))
	}
	f.recv.Respond(status(http.StatusOK))
	ep.Disabled = false
	if _, _, err := f.d.PutEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	_ = f.d.Wait(ctx)
	if del := f.history("act-1").Deliveries[0]; del.State != webhook.Succeeded {
		t.Errorf("after enabling, delivery %s, want delivered", del.State)
	}
}

func TestTenantOrderKeptWhileEarlierRetries(t *testing.T) {
	f := newFixture(t, nil)
	failing := true
	f.recv.Respond(func(r webhooktest.Request, seen int) (int, string) {
		if r.ID == "acme-1" && failing {
			return http.StatusServiceUnavailable, ""
		}
		return http.StatusOK, ""
	})
	f.endpoint("ops", "")
	f.action("acme-1", "acme")
	f.action("acme-2", "acme")
	f.action("beta-1", "beta")
	f.sweep(time.Minute)
	if got, want := f.recv.IDs(), []string{"acme-1", "beta-1", "acme-1"}; !slices.Equal(got, want) {
		t.Fatalf("while acme-1 retries: received %q, want %q (acme-2 waits, beta is another lane)", got, want)
	}
	failing = false
	f.sweep(time.Hour)
	if got, want := f.recv.IDs(), []string{"acme-1", "beta-1", "acme-1", "acme-1", "acme-2"}; !slices.Equal(got, want) {
		t.Errorf("received %q, want %q", got, want)
	}
}

func TestSlowEndpointDoesNotBlockAnother(t *testing.T) {
	f := newFixture(t, nil)
	slow := webhooktest.NewReceiver(t)
	release := make(chan struct{})
	slow.Respond(func(webhooktest.Request, int) (int, string) {
		<-release
		return http.StatusOK, ""
	})
	defer close(release)
	e := f.endpoint("slow", slow.URL)
	e.Timeout = 2 * time.Second
	if _, _, err := f.d.PutEndpoint(ctx, e); err != nil {
		t.Fatal(err)
	}
	f.endpoint("fast", "")
	start := time.Now()
	for i := range 5 {
		a := webhooktest.ActionSpec{ID: fmt.Sprintf("act-%d", i), Domain: governor.MultiTenant, Kind: "tenant.provision", Tenant: "acme", Time: f.clock.Now()}.Action(t, kinds)
		acc, err := f.d.Accept(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		f.d.Dispatch(acc.Heads...)
	}
	f.recv.WaitFor(t, 1)
	if d := time.Since(start); d > time.Second {
		t.Errorf("the fast endpoint got its first action after %v, behind the slow one", d)
	}
	if n := len(slow.Requests()); n > 1 {
		t.Errorf("the slow endpoint got %d requests while its first was in flight", n)
	}
}

func TestCrashBetweenDeliveryAndRecording(t *testing.T) {
	f := newFixture(t, nil)
	f.endpoint("ops", "")
	// The process stops after the receiver answered and before the
	// outcome was written: the record's transaction never commits.
	f.store.FailWrites(func(v any) bool {
		a, ok := v.(webhook.Attempt)
		return ok && a.Outcome == webhook.Delivered
	})
	f.action("act-1", "acme")
	if n := len(f.recv.Requests()); n != 1 {
		t.Fatalf("receiver got %d requests, want 1", n)
	}
	if del := f.history("act-1").Deliveries[0]; del.State != webhook.Pending || del.Lease == "" {
		t.Fatalf("after the crash the delivery is %s (lease %q), want pending under its lease", del.State, del.Lease)
	}
	f.store.FailWrites(nil)
	f.sweep(time.Second)
	if n := len(f.recv.Requests()); n != 1 {
		t.Fatalf("repeated within the lease: %d requests", n)
	}
	f.sweep(webhook.DefaultTimeout + time.Minute)
	if got := f.recv.IDs(); !slices.Equal(got, []string{"act-1", "act-1"}) {
		t.Fatalf("receiver saw %q, want act-1 twice (the same webhook-id)", got)
	}
	h := f.history("act-1")
	if h.Deliveries[0].State != webhook.Succeeded || len(h.Attempts) != 2 || h.Attempts[0].Outcome != webhook.Unknown || h.Attempts[1].Outcome != webhook.Delivered {
		t.Errorf("history: state %s, attempts %+v; want delivered, [unknown, delivered]", h.Deliveries[0].State, h.Attempts)
	}
}

func TestCrashBeforeTheActionIsRecordedLosesNothing(t *testing.T) {
	f := newFixture(t, nil)
	f.endpoint("ops", "")
	f.store.FailWrites(func(v any) bool { _, ok := v.(webhook.Action); return ok })
	a := webhooktest.ActionSpec{ID: "act-1", Domain: governor.MultiTenant, Kind: "tenant.provision", Tenant: "acme", Time: f.clock.Now()}.Action(t, kinds)
	if _, err := f.d.Accept(ctx, a); fault.ErrorCode(err) != fault.Unavailable {
		t.Fatalf("Accept during the fault = %v, want unavailable (the push is redelivered)", err)
	}
	if _, err := f.d.History(ctx, "act-1"); fault.ErrorCode(err) != fault.NotFound {
		t.Fatalf("after the fault the action is recorded: %v", err)
	}
	f.store.FailWrites(nil)
	f.actionOf(webhooktest.ActionSpec{ID: "act-1", Domain: governor.MultiTenant, Kind: "tenant.provision", Tenant: "acme", Time: f.clock.Now()})
	if got := f.recv.IDs(); !slices.Equal(got, []string{"act-1"}) {
		t.Errorf("after the redelivered push the receiver saw %q", got)
	}
}

func TestDuplicatePushDeliversOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.endpoint("ops", "")
	f.action("act-1", "acme")
	acc, err := f.d.Accept(ctx, webhooktest.ActionSpec{ID: "act-1", Domain: governor.MultiTenant, Kind: "tenant.provision", Tenant: "acme"}.Action(t, kinds))
	if err != nil || !acc.Duplicate || len(acc.Queued) != 0 {
		t.Errorf("second Accept = %+v, %v; want a duplicate queuing nothing", acc, err)
	}
	if n := len(f.recv.Requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestRedeliverSendsTheSameWebhookID(t *testing.T) {
	f := newFixture(t, nil)
	f.endpoint("ops", "")
	f.action("act-1", "acme")
	res, b, err := f.d.Redeliver(ctx, "act-1", "")
	if err != nil {
		t.Fatal(err)
	}
	b.Wait(ctx)
	if len(res) != 1 || res[0].Cycle != 2 || res[0].Status != "sent" {
		t.Errorf("Redeliver = %+v, want one sent in cycle 2", res)
	}
	if got := f.recv.IDs(); !slices.Equal(got, []string{"act-1", "act-1"}) {
		t.Errorf("receiver saw %q", got)
	}
	if _, _, err := f.d.Redeliver(ctx, "nope", ""); fault.ErrorCode(err) != fault.NotFound {
		t.Errorf("Redeliver of an unknown action = %v, want not_found", err)
	}
	if _, _, err := f.d.Redeliver(ctx, "act-1", "nope"); fault.ErrorCode(err) != fault.NotFound {
		t.Errorf("Redeliver to an unknown endpoint = %v, want not_found", err)
	}
}

func TestReplayWindow(t *testing.T) {
	f := newFixture(t, nil)
	f.endpoint("ops", "")
	for i := range 4 {
		f.action(fmt.Sprintf("act-%d", i), "acme")
		f.clock.Advance(time.Minute)
	}
	f.actionOf(webhooktest.ActionSpec{ID: "inv-1", Domain: governor.Billing, Kind: "billing.issue_invoice", Tenant: "acme", Time: webhooktest.Epoch.Add(90 * time.Second), Data: `{}`})
	e := f.endpoint("late", "", "tenant.provision")
	before := len(f.recv.Requests())
	res, b, err := f.d.Replay(ctx, e.ID, webhooktest.Epoch.Add(time.Minute), webhooktest.Epoch.Add(3*time.Minute), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	b.Wait(ctx)
	_ = f.d.Wait(ctx)
	if res.Actions != 3 || res.Queued != 2 {
		t.Errorf("Replay = %+v, want 3 actions examined, 2 of its kind queued", res)
	}
	if got := f.recv.IDs()[before:]; !slices.Equal(got, []string{"act-1", "act-2"}) {
		t.Errorf("replayed %q, want act-1, act-2 in order", got)
	}
	page, _, err := f.d.Replay(ctx, e.ID, webhooktest.Epoch, webhooktest.Epoch.Add(time.Hour), "", 2)
	if err != nil || page.Next == "" {
		t.Fatalf("Replay with limit 2 = %+v, %v; want a next cursor", page, err)
	}
	rest, _, err := f.d.Replay(ctx, e.ID, webhooktest.Epoch, webhooktest.Epoch.Add(time.Hour), page.Next, 10)
	if err != nil || rest.Actions != 3 || rest.Next != "" {
		t.Errorf("Replay after %s = %+v, %v; want the 3 remaining actions", page.Next, rest, err)
	}
	if _, _, err := f.d.Replay(ctx, e.ID, webhooktest.Epoch.Add(time.Hour), webhooktest.Epoch, "", 0); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("Replay of an empty window = %v, want invalid", err)
	}
}

func TestActuationFailedPublishedToTheEmittersInternalTopic(t *testing.T) {
	ms := machines.New(nil)
	for _, spec := range []webhooktest.ActionSpec{
		{ID: "inv-1", Domain: governor.Billing, Kind: "billing.issue_invoice", Tenant: "acme", Subject: "2026-03", Data: `{"amount":1}`},
		{ID: "thr-1", Domain: governor.QuotaSLA, Kind: "tenant.throttle", Tenant: "acme", Subject: "api_calls"},
		{ID: "prov-1", Domain: governor.MultiTenant, Kind: "tenant.provision", Tenant: "acme"},
	} {
		t.Run(string(spec.Domain), func(t *testing.T) {
			f := newFixture(t, nil)
			f.recv.Respond(status(http.StatusBadRequest))
			f.endpoint("ops", "")
			spec.Time = f.clock.Now()
			a := f.actionOf(spec)
			msgs := f.pub.On(f.topics.Internal(spec.Domain))
			if len(msgs) != 1 {
				t.Fatalf("%d messages on %s, want 1", len(msgs), f.topics.Internal(spec.Domain))
			}
			m := msgs[0]
			if m.OrderingKey != "acme" {
				t.Errorf("ordering key %q, want the tenant", m.OrderingKey)
			}
			ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
			if err != nil {
				t.Fatalf("the governor cannot decode it: %v", err)
			}
			if err := ms[spec.Domain].CheckEvent(ev); err != nil {
				t.Errorf("the %s machine refuses it: %v", spec.Domain, err)
			}
			sender, err := engine.SenderOf(true, ev)
			if err != nil || sender != governor.SenderActuator || !ms[spec.Domain].May(sender, ev.Name) {
				t.Errorf("sender %s, %v: the governor would not accept it from the internal topic", sender, err)
			}
			if ev.Source != webhook.Source || ev.Tenant != "acme" || ev.Subject != a.Subject || ev.Name != governor.ActuationFailed ||
				ev.ID != webhook.FailureID(a.ID, "ops", 1) || ev.CausationID != a.CausationID {
				t.Errorf("event %+v", ev)
			}
			var data governor.ActuationFailure
			if err := json.Unmarshal(ev.Data, &data); err != nil || data.ActionID != a.ID || data.Kind != spec.Kind || data.Attempts != 1 || !strings.Contains(data.Reason, "HTTP 400") {
				t.Errorf("data %s (%v)", ev.Data, err)
			}
		})
	}
}

func TestFailureReportRetriedWhenPublishingFails(t *testing.T) {
	f := newFixture(t, nil)
	f.recv.Respond(status(http.StatusNotFound))
	f.endpoint("ops", "")
	f.pub.Fail(true)
	f.action("act-1", "acme")
	if del := f.history("act-1").Deliveries[0]; del.State != webhook.Failed || del.Reported {
		t.Fatalf("delivery %s reported %v, want failed and not reported", del.State, del.Reported)
	}
	f.pub.Fail(false)
	if s := f.sweep(time.Minute); s.Reported != 1 {
		t.Errorf("sweep reported %d, want 1", s.Reported)
	}
	f.sweep(time.Minute)
	if n := len(f.pub.On(f.topics.Internal(governor.MultiTenant))); n != 1 {
		t.Errorf("%d actuation_failed events, want exactly 1", n)
	}
}

func TestDeletedEndpointFailsItsQueue(t *testing.T) {
	f := newFixture(t, nil)
	f.recv.Respond(status(http.StatusServiceUnavailable))
	f.endpoint("ops", "")
	f.action("act-1", "acme")
	f.action("act-2", "acme")
	if err := f.d.DeleteEndpoint(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	f.sweep(time.Hour)
	f.sweep(time.Hour)
	for _, id := range []string{"act-1", "act-2"} {
		if del := f.history(id).Deliveries[0]; del.State != webhook.Failed || del.Failure != webhook.FailureDeleted || !del.Reported {
			t.Errorf("%s: %s (%s), reported %v; want failed, endpoint_deleted, reported", id, del.State, del.Failure, del.Reported)
		}
	}
	if err := f.d.DeleteEndpoint(ctx, "ops"); fault.ErrorCode(err) != fault.NotFound {
		t.Errorf("deleting it again = %v, want not_found", err)
	}
}

func TestDecodeActionRefusesForgeries(t *testing.T) {
	base := webhooktest.ActionSpec{ID: "a-1", Domain: governor.MultiTenant, Kind: "tenant.provision", Tenant: "acme"}
	tests := []struct {
		name   string
		mutate func(m *event.Message)
	}{
		{"source of an outside producer", func(m *event.Message) { m.Attributes["ce-source"] = "billing-system" }},
		{"source of the monitor", func(m *event.Message) { m.Attributes["ce-source"] = engine.MonitorSource }},
		{"kind the domain does not emit", func(m *event.Message) {
			m.Attributes["ce-type"] = engine.ActionTypePrefix + "billing.issue_invoice"
			m.Attributes["action"] = "billing.issue_invoice"
		}},
		{"action attribute differs from the type", func(m *event.Message) { m.Attributes["action"] = "tenant.suspend" }},
		{"not an action type", func(m *event.Message) { m.Attributes["ce-type"] = "autonomics.multi_tenant.provision" }},
		{"id with a dot", func(m *event.Message) { m.Attributes["ce-id"] = "a.1" }},
		{"bad tenant", func(m *event.Message) { m.Attributes["ce-tenantid"] = "../x" }},
		{"broadcast subject", func(m *event.Message) { m.Attributes["ce-subject"] = "*" }},
		{"data not an object", func(m *event.Message) { m.Data = []byte(`[1]`) }},
		{"duplicate keys in data", func(m *event.Message) { m.Data = []byte(`{"a":1,"a":2}`) }},
		{"oversized data", func(m *event.Message) { m.Data = []byte(`{"a":"` + strings.Repeat("x", event.MaxDataBytes) + `"}`) }},
		{"structured mode", func(m *event.Message) { m.Attributes["content-type"] = event.StructuredContentType }},
		{"attributes differing in case", func(m *event.Message) { m.Attributes["CE-ID"] = "other" }},
		{"no time", func(m *event.Message) { delete(m.Attributes, "ce-time"); m.PublishTime = time.Time{} }},
	}
	if _, err := webhook.DecodeAction(base.Message(), kinds); err != nil {
		t.Fatalf("the genuine action: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base.Message()
			tt.mutate(&m)
			_, err := webhook.DecodeAction(m, kinds)
			if fault.ErrorCode(err) != fault.Invalid {
				t.Fatalf("DecodeAction = %v, want invalid", err)
			}
			if len(fault.ErrorMessage(err)) > 600 {
				t.Errorf("the error echoes %d bytes", len(fault.ErrorMessage(err)))
			}
		})
	}
}

func TestBodyIsTheSameOnEveryCall(t *testing.T) {
	a := webhooktest.ActionSpec{ID: "a-1", Domain: governor.Billing, Kind: "billing.issue_invoice", Tenant: "acme", Data: `{ "b": 1, "a": [1, 2] }`}.Action(t, kinds)
	first := a.Body()
	for range 5 {
		if got := a.Body(); string(got) != string(first) {
			t.Fatalf("Body changed: %s then %s", first, got)
		}
	}
}

func TestEndpointChecks(t *testing.T) {
	inline := webhook.NewSecret().Encode()
	ref := "projects/p/secrets/s/versions/latest"
	tests := []struct {
		name   string
		e      webhook.Endpoint
		inline bool
		ok     bool
	}{
		{"https with an inline secret", webhook.Endpoint{ID: "a", URL: "https://hooks.example.com/x", Kinds: []string{"tenant.provision"}, Secrets: []string{inline}}, true, true},
		{"two secrets while rotating", webhook.Endpoint{ID: "a", URL: "https://hooks.example.com/x", Kinds: []string{"*"}, Secrets: []string{inline, ref}}, true, true},
		{"inline secrets refused", webhook.Endpoint{ID: "a", URL: "https://hooks.example.com/x", Kinds: []string{"*"}, Secrets: []string{inline}}, false, false},
		{"a reference when inline is refused", webhook.Endpoint{ID: "a", URL: "https://hooks.example.com/x", Kinds: []string{"*"}, Secrets: []string{ref}}, false, true},
		{"three secrets", webhook.Endpoint{ID: "a", URL: "https://hooks.example.com/x", Kinds: []string{"*"}, Secrets: []string{inline, inline, inline}}, true, false},
		{"no secret", webhook.Endpoint{ID: "a", URL: "https://hooks.example.com/x", Kinds: []string{"*"}}, true, false},
		{"unknown kind", webhook.Endpoint{ID: "a", URL: "https://hooks.example.com/x", Kinds: []string{"tenant.explode"}, Secrets: []string{inline}}, true, false},
		{"no kinds", webhook.Endpoint{ID: "a", URL: "https://hooks.example.com/x", Secrets: []string{inline}}, true, false},
		{"bad id", webhook.Endpoint{ID: "A/b", URL: "https://hooks.example.com/x", Kinds: []string{"*"}, Secrets: []string{inline}}, true, false},
		{"timeout too long", webhook.Endpoint{ID: "a", URL: "https://hooks.example.com/x", Kinds: []string{"*"}, Secrets: []string{inline}, Timeout: time.Minute}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Check(&webhook.Guard{}, kinds, tt.inline)
			if (err == nil) != tt.ok {
				t.Errorf("Check = %v, want ok %v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), strings.TrimPrefix(inline, "whsec_")) {
				t.Errorf("the error %q repeats the secret", err)
			}
		})
	}
}
