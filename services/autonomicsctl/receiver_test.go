package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ingest"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/memwebhook"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// receiverFixture is a receiver on 127.0.0.1 whose provisioner reports to
// an ingest API in the same process, publishing to a queue.
type receiverFixture struct {
	t       *testing.T
	secrets map[string]string
	recv    *receiver
	srv     *httptest.Server
	ingest  *httptest.Server
	// published are the ingest API's accepted events.
	published *queue
}

func mustWhsec(t *testing.T) string {
	t.Helper()
	s, err := newWhsec()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newReceiverFixture(t *testing.T) *receiverFixture {
	t.Helper()
	f := &receiverFixture{t: t, secrets: map[string]string{}, published: &queue{}}
	key := mustWhsec(t)
	keyBytes, err := decodeWhsec(key)
	if err != nil {
		t.Fatal(err)
	}
	ms := machines.New(nil)
	rules, err := ingest.ParseRules(producerRules(), ms)
	if err != nil {
		t.Fatalf("ParseRules(producerRules()) = %v", err)
	}
	api, err := ingest.New(ingest.Options{
		Rules: rules, Keys: ingest.Keys{provisionerKeyID: keyBytes}, Publisher: f.published,
		Machines: ms, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ingest = httptest.NewServer(api.Handler())
	t.Cleanup(f.ingest.Close)
	c := receiverConfig{
		Endpoints: map[string]receiverEndpoint{},
		Ingest:    receiverIngest{URL: f.ingest.URL, Producer: provisionerName, KeyID: provisionerKeyID, Key: key},
	}
	for _, e := range stackEndpoints {
		f.secrets[e.ID] = mustWhsec(t)
		c.Endpoints[e.ID] = receiverEndpoint{Secret: f.secrets[e.ID], FailFirst: e.FailFirst}
	}
	f.recv, err = newReceiver(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.recv.handler())
	t.Cleanup(f.srv.Close)
	return f
}

// hookURL returns the receiver's URL of an endpoint.
func (f *receiverFixture) hookURL(endpoint string) string { return f.srv.URL + "/hooks/" + endpoint }

// log reads the receiver's log.
func (f *receiverFixture) log() receiverLog {
	f.t.Helper()
	l, err := newAPIClient("receiver", f.srv.URL).ReceiverLog(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

// deliverer returns the actuator's deliverer on an in-memory store, with
// the real clock (the receiver checks timestamps against it) and retries
// after 10ms.
func deliverer(t *testing.T) *webhook.Deliverer {
	t.Helper()
	d, err := webhook.New(webhook.Options{
		Store: memwebhook.New(), Publisher: &webhooktest.Publisher{}, Topics: topic.Names{},
		Kinds: webhook.KindsOf(machines.New(nil)), Guard: &webhook.Guard{AllowLoopback: true}, InlineSecrets: true,
		Policy: webhook.Policy{Initial: 10 * time.Millisecond, Multiplier: 1, MaxAge: time.Minute},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Wait(context.Background()) })
	return d
}

// deliver has d accept the action of spec and attempts it until its
// deliveries finish, sweeping for retries.
func deliver(t *testing.T, d *webhook.Deliverer, spec webhooktest.ActionSpec) webhook.History {
	t.Helper()
	ctx := context.Background()
	a := spec.Action(t, webhook.KindsOf(machines.New(nil)))
	acc, err := d.Accept(ctx, a)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	d.Dispatch(acc.Heads...).Wait(ctx)
	for range 100 {
		h, err := d.History(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(h.Deliveries, func(x webhook.Delivery) bool {
			return x.State == webhook.Pending || x.State == webhook.Queued
		}) {
			return h
		}
		time.Sleep(15 * time.Millisecond)
		if _, err := d.Sweep(ctx, 0); err != nil {
			t.Fatal(err)
		}
		_ = d.Wait(ctx)
	}
	t.Fatalf("deliveries of %s not finished", a.ID)
	return webhook.History{}
}

func statusesOf(h webhook.History, endpoint string) []int {
	var out []int
	for _, a := range h.Attempts {
		if a.EndpointID == endpoint {
			out = append(out, a.Status)
		}
	}
	return out
}

// TestReceiverAcceptsWhatTheActuatorSigns has the actuator's deliverer
// deliver actions to the receiver, which verifies them with the reference
// implementation of Standard Webhooks; during a rotation the actuator
// signs with two secrets and the receiver holds only the new one.
func TestReceiverAcceptsWhatTheActuatorSigns(t *testing.T) {
	f := newReceiverFixture(t)
	d := deliverer(t)
	ctx := context.Background()
	old := mustWhsec(t)
	for _, e := range []webhook.Endpoint{
		{ID: endpointProvider, URL: f.hookURL(endpointProvider), Kinds: []string{webhook.AllKinds}, Secrets: []string{old, f.secrets[endpointProvider]}},
		{ID: endpointBilling, URL: f.hookURL(endpointBilling), Kinds: []string{flakyKind}, Secrets: []string{f.secrets[endpointBilling]}},
	} {
		if _, _, err := d.PutEndpoint(ctx, e); err != nil {
			t.Fatalf("PutEndpoint %s: %v", e.ID, err)
		}
	}
	h := deliver(t, d, webhooktest.ActionSpec{ID: "act-approve", Domain: governor.CustomerAccount, Kind: "marketplace.approve_account", Tenant: "acme", Subject: "default", Time: time.Now()})
	if got := statusesOf(h, endpointProvider); !slices.Equal(got, []int{200}) {
		t.Errorf("approve_account to %s: statuses %v, want [200]", endpointProvider, got)
	}
	// The flaky endpoint fails twice and recovers; the provider's gets it
	// at once.
	h = deliver(t, d, webhooktest.ActionSpec{ID: "act-invoice", Domain: governor.Billing, Kind: flakyKind, Tenant: "acme", Subject: "2026-11", Time: time.Now(), Data: `{"amount":100}`})
	if got := statusesOf(h, endpointBilling); !slices.Equal(got, []int{503, 503, 200}) {
		t.Errorf("issue_invoice to %s: statuses %v, want [503 503 200]", endpointBilling, got)
	}
	if got := statusesOf(h, endpointProvider); !slices.Equal(got, []int{200}) {
		t.Errorf("issue_invoice to %s: statuses %v, want [200]", endpointProvider, got)
	}
	l := f.log()
	if len(l.Refused) != 0 {
		t.Errorf("the receiver refused %v", l.Refused)
	}
	for _, want := range []struct {
		endpoint, id string
		statuses     []int
	}{
		{endpointProvider, "act-approve", []int{200}},
		{endpointProvider, "act-invoice", []int{200}},
		{endpointBilling, "act-invoice", []int{503, 503, 200}},
	} {
		ra, ok := received(l, want.endpoint, want.id)
		if !ok {
			t.Errorf("the receiver has no record of %s on %s", want.id, want.endpoint)
			continue
		}
		if got := requestStatuses(ra.Requests); !slices.Equal(got, want.statuses) || ra.Delivered != 1 {
			t.Errorf("%s on %s: answered %v, delivered %d; want %v, 1", want.id, want.endpoint, got, ra.Delivered, want.statuses)
		}
		for _, q := range ra.Requests {
			if !q.Verified {
				t.Errorf("%s on %s: an unverified request was recorded", want.id, want.endpoint)
			}
		}
	}
}

// signedRequest returns a delivery of body to url signed as the actuator
// signs (shared/webhook) with secret, at now.
func signedRequest(t *testing.T, url, id string, body []byte, now time.Time, secret string) *http.Request {
	t.Helper()
	s, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	webhook.Headers(req.Header, id, now, body, s)
	return req
}

func actionBody(id, kind, tenant string) []byte {
	b, _ := json.Marshal(webhook.Payload{
		Type: kind, Timestamp: time.Now().UTC().Format(time.RFC3339Nano), Data: json.RawMessage(`{}`),
		ActionID: id, TenantID: tenant, Domain: "multi_tenant", Subject: "default",
	})
	return b
}

// TestReceiverRefusesBadSignatures checks that a tampered body, a wrong
// secret, a stale timestamp and missing headers are answered 401 and
// recorded apart, without acting on them.
func TestReceiverRefusesBadSignatures(t *testing.T) {
	f := newReceiverFixture(t)
	url := f.hookURL(endpointProvider)
	secret := f.secrets[endpointProvider]
	body := actionBody("act-1", actionProvision, "acme")
	now := time.Now()
	tampered := func() *http.Request {
		req := signedRequest(t, url, "act-1", body, now, secret)
		changed := bytes.Replace(body, []byte(`"acme"`), []byte(`"globex"`), 1)
		req.Body = io.NopCloser(bytes.NewReader(changed))
		return req
	}
	unsigned := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	unsigned.Header.Set("webhook-id", "act-1")
	tests := []struct {
		name string
		req  *http.Request
	}{
		{"tampered body", tampered()},
		{"wrong secret", signedRequest(t, url, "act-1", body, now, mustWhsec(t))},
		{"other endpoint's secret", signedRequest(t, url, "act-1", body, now, f.secrets[endpointBilling])},
		{"stale timestamp", signedRequest(t, url, "act-1", body, now.Add(-10*time.Minute), secret)},
		{"no signature", unsigned},
	}
	h := f.recv.handler()
	for _, tt := range tests {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, tt.req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s: answered %d, want 401", tt.name, w.Code)
		}
	}
	l := f.log()
	if len(l.Received) != 0 || len(l.Refused) != len(tests) {
		t.Errorf("log has %d received and %d refused, want 0 and %d", len(l.Received), len(l.Refused), len(tests))
	}
	if n := len(f.published.msgs); n != 0 {
		t.Errorf("the provisioner reported %d events for refused deliveries", n)
	}
	// The same delivery, signed right, is accepted.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, signedRequest(t, url, "act-1", body, now, secret))
	if w.Code != http.StatusOK {
		t.Errorf("the signed delivery: answered %d %s, want 200", w.Code, w.Body)
	}
}

// TestReceiverProvisionsThroughIngest checks the loop: tenant.provision
// makes the receiver send multi_tenant.provisioned to the ingest API,
// signed, which accepts and publishes it with the provisioner's source; a
// redelivery is recognised by its webhook-id and provisions nothing more.
func TestReceiverProvisionsThroughIngest(t *testing.T) {
	f := newReceiverFixture(t)
	url := f.hookURL(endpointProvider)
	h := f.recv.handler()
	body := actionBody("act-prov", actionProvision, "acme")
	for i := range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, signedRequest(t, url, "act-prov", body, time.Now(), f.secrets[endpointProvider]))
		if w.Code != http.StatusOK {
			t.Fatalf("delivery %d: answered %d %s, want 200", i+1, w.Code, w.Body)
		}
	}
	if n := len(f.published.msgs); n != 1 {
		t.Fatalf("the ingest API published %d events, want 1", n)
	}
	m := f.published.msgs[0]
	ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
	if err != nil {
		t.Fatalf("decode the published event: %v", err)
	}
	if ev.Type != provisionedType || ev.Source != provisionerSource || ev.Tenant != "acme" || ev.ID != provisionedEventID("act-prov") ||
		m.Topic != (topic.Names{}).Domain(governor.MultiTenant) || m.OrderingKey != "acme" {
		t.Errorf("published %s %s from %s for %s on %s (key %s); want %s %s from %s for acme on the multi_tenant topic",
			ev.Type, ev.ID, ev.Source, ev.Tenant, m.Topic, m.OrderingKey, provisionedType, provisionedEventID("act-prov"), provisionerSource)
	}
	ra, ok := received(f.log(), endpointProvider, "act-prov")
	switch {
	case !ok:
		t.Fatal("no record of act-prov")
	case ra.Delivered != 2 || ra.Provisioned == nil || ra.Provisioned.Source != provisionerSource || ra.Requests[1].Note != "duplicate":
		t.Errorf("record %+v: want delivered twice, provisioned once from %s, the second a duplicate", ra, provisionerSource)
	}
}

// TestReceiverRetriesWhenIngestFails checks that the receiver answers 5xx
// while the ingest API is down, so the actuator retries, and provisions on
// the retry.
func TestReceiverRetriesWhenIngestFails(t *testing.T) {
	f := newReceiverFixture(t)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"code":"unavailable","message":"down"}}`)
	}))
	defer down.Close()
	up := f.recv.ingest.URL
	f.recv.ingest.URL = down.URL
	h := f.recv.handler()
	body := actionBody("act-prov", actionProvision, "globex")
	send := func() int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, signedRequest(t, f.hookURL(endpointProvider), "act-prov", body, time.Now(), f.secrets[endpointProvider]))
		return w.Code
	}
	if code := send(); code/100 != 5 {
		t.Errorf("with the ingest API down: answered %d, want 5xx", code)
	}
	f.recv.ingest.URL = up
	if code := send(); code != http.StatusOK {
		t.Errorf("with the ingest API up: answered %d, want 200", code)
	}
	if n := len(f.published.msgs); n != 1 {
		t.Errorf("published %d events, want 1", n)
	}
}

// TestReceiverConfig checks that the configuration is refused without
// quoting a secret.
func TestReceiverConfig(t *testing.T) {
	good := receiverConfig{
		Endpoints: map[string]receiverEndpoint{"p": {Secret: mustWhsec(t)}},
		Ingest:    receiverIngest{URL: "http://127.0.0.1:1", Producer: "p", KeyID: "k", Key: mustWhsec(t)},
	}
	if err := good.check(); err != nil {
		t.Fatalf("check() = %v", err)
	}
	short := "whsec_" + strings.Repeat("A", 8)
	for name, mutate := range map[string]func(c *receiverConfig){
		"short secret": func(c *receiverConfig) { c.Endpoints = map[string]receiverEndpoint{"p": {Secret: short}} },
		"no prefix":    func(c *receiverConfig) { c.Ingest.Key = strings.TrimPrefix(c.Ingest.Key, "whsec_") },
		"no endpoints": func(c *receiverConfig) { c.Endpoints = nil },
		"negative fail": func(c *receiverConfig) {
			c.Endpoints = map[string]receiverEndpoint{"p": {Secret: c.Ingest.Key, FailFirst: -1}}
		},
		"no ingest url": func(c *receiverConfig) { c.Ingest.URL = "" },
	} {
		c := good
		c.Endpoints = map[string]receiverEndpoint{"p": good.Endpoints["p"]}
		mutate(&c)
		err := c.check()
		if err == nil {
			t.Errorf("%s: check() = nil", name)
			continue
		}
		if fault.ErrorCode(err) != fault.Invalid || strings.Contains(err.Error(), c.Ingest.Key) || strings.Contains(err.Error(), short) {
			t.Errorf("%s: check() = %v, want an Invalid error that quotes no secret", name, err)
		}
	}
}

// TestProvisionedEventID checks that the id is derived from the event id
// and bounded.
func TestProvisionedEventID(t *testing.T) {
	if a := provisionedEventID("x"); a != "provisioned-x" {
		t.Errorf("provisionedEventID(x) = %q, want provisioned-x", a)
	}
	long := strings.Repeat("a", 300)
	if id := provisionedEventID(long); len(id) > maxIngestEventID || id == provisionedEventID(long+"b") {
		t.Errorf("provisionedEventID of a long id = %q (%d bytes)", id, len(id))
	}
}

func TestActuatorPushSubscription(t *testing.T) {
	cfg := stackConfig{QueryPort: 8791, TopicPrefix: "x-"}
	s := cfg.actuatorPushSubscription()
	if s.Name != "x-autonomics-actions-actuator-push" || s.Topic != "x-autonomics-actions" || !s.Ordered ||
		s.PushEndpoint != "http://127.0.0.1:8794/v1/actions/push" || s.DeadLetterTopic != "" {
		t.Errorf("actuatorPushSubscription() = %+v", s)
	}
	if got := []int{cfg.actuatorPort(), cfg.ingestPort(), cfg.receiverPort()}; !slices.Equal(got, []int{8794, 8795, 8796}) {
		t.Errorf("actuator, ingest and receiver ports = %v, want 8794, 8795, 8796", got)
	}
	if u := cfg.hookURL(endpointBilling); u != "http://127.0.0.1:8796/hooks/"+endpointBilling {
		t.Errorf("hookURL = %s", u)
	}
}
