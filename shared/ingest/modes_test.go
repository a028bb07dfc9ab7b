package ingest_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ingest"
)

// sdkEvent is a billing.usage_recorded event built with the CloudEvents
// SDK, as a Go producer would.
func sdkEvent(t testing.TB, id, tenant string) cloudevents.Event {
	t.Helper()
	e := cloudevents.New()
	e.SetID(id)
	e.SetSource("https://billing.example/meters")
	e.SetType("autonomics.billing.usage_recorded")
	e.SetSubject("invoice-1")
	e.SetTime(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	e.SetExtension("tenantid", tenant)
	if err := e.SetData(cloudevents.ApplicationJSON, map[string]any{"meter": "api_calls", "quantity": 7}); err != nil {
		t.Fatal(err)
	}
	return e
}

// checkPublished checks that p is the event with id for tenant as the
// governors will decode it: on the billing topic, the producer's source,
// the tenant as ordering key, binary mode as event.Encode renders it.
func checkPublished(t *testing.T, p published, id, tenant, source string) {
	t.Helper()
	if p.domain != governor.Billing || p.ev.ID != id || p.ev.Tenant != tenant || p.ev.Source != source {
		t.Errorf("published %s %s/%s for %s, want billing ingest event %s/%s for %s", p.domain, p.ev.Source, p.ev.ID, p.ev.Tenant, source, id, tenant)
	}
	if p.orderingKey != tenant {
		t.Errorf("ordering key %q, want the tenant %q", p.orderingKey, tenant)
	}
	_, want := event.Encode(p.ev)
	if !equalMaps(p.attrs, want) {
		t.Errorf("attributes %v, want event.Encode's %v", p.attrs, want)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestBinaryModeIsPublished(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), f.url(), sdkEvent(t, "use-1", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.token(billingEmail))
	a := f.do(req)
	r := a.result()
	if a.status != http.StatusAccepted || r.Status != ingest.StatusAccepted || r.ID != "use-1" || r.Source != "ingest/billing" || r.Tenant != "acme" {
		t.Fatalf("answer %d %s, want 202 accepted with the producer's source", a.status, a.body)
	}
	got := f.pull(1, 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("pulled %d messages, want 1", len(got))
	}
	checkPublished(t, got[0], "use-1", "acme", "ingest/billing")
	if string(got[0].ev.Data) != `{"meter":"api_calls","quantity":7}` || got[0].ev.Subject != "invoice-1" || !got[0].ev.Time.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("published event %+v does not carry the event's data, subject and time", got[0].ev)
	}
}

func TestStructuredModeIsPublished(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	req, err := http.NewRequest(http.MethodPost, f.url(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := sdkEvent(t, "use-2", "globex")
	if err := cehttp.WriteRequest(binding.WithForceStructured(context.Background()), (*binding.EventMessage)(&e), req); err != nil {
		t.Fatal(err)
	}
	if ct := req.Header.Get("Content-Type"); ct != ingest.StructuredContentType {
		t.Fatalf("the SDK wrote Content-Type %q", ct)
	}
	req.Header.Set("Authorization", "Bearer "+f.token(billingEmail))
	a := f.do(req)
	if a.status != http.StatusAccepted || a.result().Status != ingest.StatusAccepted {
		t.Fatalf("answer %d %s, want 202 accepted", a.status, a.body)
	}
	got := f.pull(1, 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("pulled %d messages, want 1", len(got))
	}
	checkPublished(t, got[0], "use-2", "globex", "ingest/billing")
	if string(got[0].ev.Data) != `{"meter":"api_calls","quantity":7}` {
		t.Errorf("data %s", got[0].ev.Data)
	}
}

// TestBatchIsPublishedPerEvent sends a batch of valid and invalid events:
// each valid one is published, in order per tenant, each invalid one
// refused with its reason; the answer has one result per event.
func TestBatchIsPublishedPerEvent(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	events := []cloudevents.Event{sdkEvent(t, "b-1", "acme"), sdkEvent(t, "b-2", "globex"), sdkEvent(t, "b-3", "acme")}
	bad := sdkEvent(t, "b-bad", "initech") // a tenant billing may not send for
	events = slices.Insert(events, 1, bad)
	req, err := cehttp.NewHTTPRequestFromEvents(context.Background(), f.url(), events)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.token(billingEmail))
	a := f.do(req)
	rs := a.results()
	if a.status != http.StatusOK || len(rs) != 4 {
		t.Fatalf("answer %d %s, want 200 with 4 results", a.status, a.body)
	}
	for i, want := range []string{ingest.StatusAccepted, ingest.StatusRefused, ingest.StatusAccepted, ingest.StatusAccepted} {
		if rs[i].Index != i || rs[i].Status != want {
			t.Errorf("result %d = %+v, want index %d %s", i, rs[i], i, want)
		}
	}
	if rs[1].Error == nil || rs[1].Error.Code != string(ingest.CodeForbidden) || rs[1].ID != "b-bad" {
		t.Errorf("result of the refused event = %+v, want forbidden", rs[1])
	}
	got := f.pull(3, 10*time.Second)
	var acme []string
	for _, p := range got {
		if p.ev.Tenant == "acme" {
			acme = append(acme, p.ev.ID)
		}
		if p.ev.ID == "b-bad" {
			t.Errorf("the refused event was published")
		}
	}
	if len(got) != 3 || !slices.Equal(acme, []string{"b-1", "b-3"}) {
		t.Errorf("published %d events, acme's in order %q; want 3, acme's b-1 then b-3", len(got), acme)
	}
}

// TestMarketplaceProducerGetsMarketplaceSource checks that a marketplace
// producer's events carry marketplace/<name>, which the engine classifies
// as the marketplace class, whatever source the caller sent.
func TestMarketplaceProducerGetsMarketplaceSource(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := activated("mp-1", "acme").with("source", "ingest/billing").json(t)
	a := f.post(f.signedHeaders(adapterKeyID, time.Now(), body, structured()), body)
	if a.status != http.StatusAccepted || a.result().Source != "marketplace/adapter" {
		t.Fatalf("answer %d %s, want 202 with source marketplace/adapter", a.status, a.body)
	}
	got := f.pull(1, 10*time.Second)
	if len(got) != 1 || got[0].domain != governor.Entitlement || got[0].ev.Source != "marketplace/adapter" {
		t.Fatalf("published %+v, want one entitlement event with source marketplace/adapter", got)
	}
}
