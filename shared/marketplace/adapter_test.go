package marketplace_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/api/cloudcommerceprocurement/v1"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/marketplace"
)

// naturalState is the state Procurement is in when each fixture's
// notification is sent.
var naturalState = map[string]string{
	"ACCOUNT_CREATION_REQUESTED":        marketplace.AccountActivationRequested,
	"ACCOUNT_ACTIVE":                    marketplace.AccountActive,
	"ACCOUNT_DELETED":                   marketplace.StateGone,
	"ENTITLEMENT_CREATION_REQUESTED":    marketplace.EntitlementActivationRequested,
	"ENTITLEMENT_OFFER_ACCEPTED":        marketplace.EntitlementActive,
	"ENTITLEMENT_ACTIVE":                marketplace.EntitlementActive,
	"ENTITLEMENT_RENEWED":               marketplace.EntitlementActive,
	"ENTITLEMENT_PLAN_CHANGE_REQUESTED": marketplace.EntitlementPendingPlanChangeApproval,
	"ENTITLEMENT_PLAN_CHANGED":          marketplace.EntitlementActive,
	"ENTITLEMENT_PLAN_CHANGE_CANCELLED": marketplace.EntitlementActive,
	"ENTITLEMENT_PENDING_CANCELLATION":  marketplace.EntitlementPendingCancellation,
	"ENTITLEMENT_CANCELLATION_REVERTED": marketplace.EntitlementActive,
	"ENTITLEMENT_CANCELLING":            marketplace.EntitlementCancelled,
	"ENTITLEMENT_CANCELLED":             marketplace.EntitlementCancelled,
	"ENTITLEMENT_DELETED":               marketplace.EntitlementCancelled,
	"ENTITLEMENT_OFFER_ENDED":           marketplace.EntitlementActive,
}

// TestEveryFixtureMapsAsTheTableSays feeds each fixture through the
// handler with Procurement in the state it is in when Marketplace sends
// it, and checks that what is published is what the table says.
func TestEveryFixtureMapsAsTheTableSays(t *testing.T) {
	files, err := os.ReadDir("testdata/notifications")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(f.Name(), ".json")
		t.Run(name, func(t *testing.T) {
			data := fixture(t, name)
			n, err := marketplace.Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			covered[n.EventType] = true
			rule, ok := marketplace.RuleOf(n.EventType)
			if !ok {
				t.Fatalf("no rule for %s", n.EventType)
			}
			state, ok := naturalState[n.EventType]
			if !ok {
				t.Fatalf("no natural state for %s", n.EventType)
			}
			h := newHarness(t)
			if _, err := h.accounts.Link(context.Background(), accountID, marketplace.LinkedBySignup); err != nil {
				t.Fatal(err)
			}
			switch {
			case n.Resource == marketplace.ResourceAccount && state != marketplace.StateGone:
				h.proc.accounts[accountID] = &cloudcommerceprocurement.Account{Name: "accounts/" + accountID, State: state}
			case n.Resource == marketplace.ResourceEntitlement:
				e := h.proc.entitlement(entID, state, "basic")
				e.NewPendingPlan = "pro"
				e.UsageReportingId = "project_number:123456789"
				e.OfferEndTime = "2027-03-01T00:00:00Z"
			}
			if code := h.push(t, data, "m-1"); code != http.StatusNoContent {
				t.Fatalf("push = %d, want 204", code)
			}
			names, reason := rule.Events(state)
			evs := h.events(t, rule.Resource.Domain())
			if len(h.pub.On(h.topics.DeadLetter())) != 0 {
				t.Fatalf("%s was dead-lettered", n.EventType)
			}
			if len(names) == 0 {
				if reason == "" {
					t.Errorf("%s in %s is ignored without a reason", n.EventType, state)
				}
				if len(evs) != 0 {
					t.Errorf("ignored %s published %v", n.EventType, types(evs))
				}
				return
			}
			if len(evs) != len(names) {
				t.Fatalf("published %v, want %v", types(evs), names)
			}
			for i, ev := range evs {
				wantID := n.EventID
				if i > 0 {
					wantID += "-" + string(rune('1'+i))
				}
				wantSubject := entID
				if n.Resource == marketplace.ResourceAccount {
					wantSubject = governor.DefaultSubject
				}
				if ev.Name != names[i] || ev.ID != wantID || ev.Source != "marketplace/"+provider || ev.Tenant != tenant || ev.Subject != wantSubject {
					t.Errorf("event %d = %s id %s source %s tenant %s subject %s; want %s id %s source marketplace/%s tenant %s subject %s",
						i, ev.Name, ev.ID, ev.Source, ev.Tenant, ev.Subject, names[i], wantID, provider, tenant, wantSubject)
				}
				if len(ev.Data) > 0 && !json.Valid(ev.Data) {
					t.Errorf("event %d data %s is not JSON", i, ev.Data)
				}
			}
		})
	}
	for _, r := range marketplace.Rules() {
		if !covered[r.Type] {
			t.Errorf("no fixture of %s under testdata/notifications", r.Type)
		}
	}
}

// TestPayloadsCarryWhatProcurementSays checks the data of the events
// that carry some.
func TestPayloadsCarryWhatProcurementSays(t *testing.T) {
	e := &cloudcommerceprocurement.Entitlement{
		Plan: "basic", Product: "analytics", Offer: "projects/1/services/s/privateOffers/o", OfferEndTime: "2027-03-01T00:00:00Z",
		UsageReportingId: "project_number:42", NewPendingPlan: "pro",
	}
	tests := []struct {
		name governor.EventName
		want string
	}{
		{marketplace.EvCreationRequested, `{"plan":"basic","product":"analytics","offer":"projects/1/services/s/privateOffers/o","offer_end_time":"2027-03-01T00:00:00Z","usage_reporting_id":"project_number:42"}`},
		{marketplace.EvActivated, `{"plan":"basic","product":"analytics","offer":"projects/1/services/s/privateOffers/o","offer_end_time":"2027-03-01T00:00:00Z","usage_reporting_id":"project_number:42"}`},
		{marketplace.EvPlanChangeRequested, `{"plan":"pro"}`},
		{marketplace.EvPlanChanged, `{"plan":"basic"}`},
		{marketplace.EvOfferEnded, `{"offer_end_time":"2027-03-01T00:00:00Z"}`},
		{marketplace.EvCancelled, ``},
		{marketplace.EvPendingCancellation, ``},
	}
	for _, tt := range tests {
		if got := string(marketplace.Payload(tt.name, e)); got != tt.want {
			t.Errorf("Payload(%s) = %s, want %s", tt.name, got, tt.want)
		}
	}
	if got := string(marketplace.Payload(marketplace.EvActivated, &cloudcommerceprocurement.Entitlement{Plan: "basic"})); got != `{"plan":"basic"}` {
		t.Errorf("Payload(activated) without optional fields = %s, want only the plan", got)
	}
}

func TestDuplicateNotificationPublishesTheSameEventIDs(t *testing.T) {
	h := newHarness(t)
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	data := fixture(t, "entitlement_active")
	for i := range 2 {
		if code := h.push(t, data, "m-"+string(rune('1'+i))); code != http.StatusNoContent {
			t.Fatalf("delivery %d = %d", i+1, code)
		}
	}
	evs := h.events(t, governor.Entitlement)
	if len(evs) != 2 || evs[0].ID != evs[1].ID || evs[0].Source != evs[1].Source || evs[0].ID != "4129867431285472" {
		t.Errorf("two deliveries published %+v; want the same (source, id) twice for the engine to deduplicate", evs)
	}
	if string(evs[0].Data) != string(evs[1].Data) {
		t.Errorf("the two deliveries carry different data: %s and %s", evs[0].Data, evs[1].Data)
	}
}

// TestActiveBeforeCreationRequested delivers ENTITLEMENT_ACTIVE first
// and the stale ENTITLEMENT_CREATION_REQUESTED after it: Procurement is
// active by then, so both become activated (the second is rejected by the
// machine as already done).
func TestActiveBeforeCreationRequested(t *testing.T) {
	h := newHarness(t)
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	for _, f := range []string{"entitlement_active", "entitlement_creation_requested"} {
		if code := h.push(t, fixture(t, f), f); code != http.StatusNoContent {
			t.Fatalf("%s = %d", f, code)
		}
	}
	evs := h.events(t, governor.Entitlement)
	if got := types(evs); !slices.Equal(got, []string{"autonomics.entitlement.activated", "autonomics.entitlement.activated"}) {
		t.Fatalf("published %v, want activated twice", got)
	}
	if evs[0].ID == evs[1].ID {
		t.Errorf("both events have id %s; want each notification's eventId", evs[0].ID)
	}
	if string(evs[0].Data) != `{"plan":"basic","product":"analytics.endpoints.acme-saas.cloud.goog"}` {
		t.Errorf("activated data = %s, want the plan and product read from Procurement", evs[0].Data)
	}
}

func TestDeletedEntitlementBecomesCancelledThenDeleted(t *testing.T) {
	h := newHarness(t)
	h.proc.entitlement(entID, marketplace.EntitlementCancelled, "basic")
	if code := h.push(t, fixture(t, "entitlement_deleted"), "m"); code != http.StatusNoContent {
		t.Fatalf("push = %d", code)
	}
	evs := h.events(t, governor.Entitlement)
	if got := types(evs); !slices.Equal(got, []string{"autonomics.entitlement.cancelled", "autonomics.entitlement.deleted"}) ||
		evs[0].ID != "4129867431285481" || evs[1].ID != "4129867431285481-2" {
		t.Errorf("published %v ids %v; want cancelled (eventId) then deleted (eventId-2)", got, []string{evs[0].ID, evs[len(evs)-1].ID})
	}
}

func TestGoneEntitlementIsIgnored(t *testing.T) {
	h := newHarness(t)
	res, err := h.adapter.Handle(context.Background(), event.Message{Data: fixture(t, "entitlement_deleted"), ID: "m"})
	if err != nil || res.Outcome != marketplace.OutcomeIgnored || res.Reason == "" {
		t.Errorf("Handle(deleted, entitlement gone) = %+v, %v; want ignored with a reason", res, err)
	}
	if n := len(h.pub.On(h.topics.Domain(governor.Entitlement))) + len(h.pub.On(h.topics.DeadLetter())); n != 0 {
		t.Errorf("%d messages published", n)
	}
}

func TestNotificationCreatesTheLink(t *testing.T) {
	h := newHarness(t)
	h.proc.entitlement(entID, marketplace.EntitlementActivationRequested, "basic")
	if code := h.push(t, fixture(t, "entitlement_creation_requested"), "m"); code != http.StatusNoContent {
		t.Fatalf("push = %d", code)
	}
	l, err := h.accounts.ByAccount(context.Background(), accountID)
	if err != nil || l.Tenant != tenant || l.Source != marketplace.LinkedByNotification {
		t.Errorf("link = %+v, %v; want tenant %s created by the notification", l, err, tenant)
	}
}

func TestLinkedTenantReceivesTheEvents(t *testing.T) {
	h := newHarness(t)
	if err := h.accounts.Put(context.Background(), marketplace.Link{Account: accountID, Tenant: "acme", Source: marketplace.LinkedByOperator}); err != nil {
		t.Fatal(err)
	}
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	h.push(t, fixture(t, "entitlement_active"), "m")
	if evs := h.events(t, governor.Entitlement); len(evs) != 1 || evs[0].Tenant != "acme" {
		t.Errorf("events %+v, want one for tenant acme", evs)
	}
}

func TestAccountDeletedClosesTheLinkedTenant(t *testing.T) {
	h := newHarness(t)
	if _, err := h.accounts.Link(context.Background(), accountID, marketplace.LinkedBySignup); err != nil {
		t.Fatal(err)
	}
	h.push(t, fixture(t, "account_deleted"), "m")
	evs := h.events(t, governor.CustomerAccount)
	if got := types(evs); !slices.Equal(got, []string{"autonomics.customer_account.closed"}) || evs[0].Subject != governor.DefaultSubject || evs[0].Tenant != tenant {
		t.Errorf("published %+v, want customer_account.closed for %s/default", evs, tenant)
	}
}

// TestForgedAccountDeletedIsIgnored: the account still exists, so the
// notification cannot close the tenant.
func TestForgedAccountDeletedIsIgnored(t *testing.T) {
	h := newHarness(t)
	if _, err := h.accounts.Link(context.Background(), accountID, marketplace.LinkedBySignup); err != nil {
		t.Fatal(err)
	}
	h.proc.accounts[accountID] = &cloudcommerceprocurement.Account{Name: "accounts/" + accountID, State: marketplace.AccountActive}
	res, err := h.adapter.Handle(context.Background(), event.Message{Data: fixture(t, "account_deleted")})
	if err != nil || res.Outcome != marketplace.OutcomeIgnored {
		t.Errorf("Handle = %+v, %v; want ignored", res, err)
	}
	if evs := h.events(t, governor.CustomerAccount); len(evs) != 0 {
		t.Errorf("published %v", types(evs))
	}
}

func TestAccountDeletedOfAnUnlinkedAccountLinksNothing(t *testing.T) {
	h := newHarness(t)
	res, err := h.adapter.Handle(context.Background(), event.Message{Data: fixture(t, "account_deleted")})
	if err != nil || res.Outcome != marketplace.OutcomeIgnored {
		t.Errorf("Handle = %+v, %v; want ignored", res, err)
	}
	if _, err := h.accounts.ByAccount(context.Background(), accountID); fault.ErrorCode(err) != fault.NotFound {
		t.Errorf("a deletion created a link: %v", err)
	}
}

// deadLettered checks that exactly one message went to the dead-letter
// topic, carrying the original data and a reason containing want, and
// nothing to the domain topics.
func (h *harness) deadLettered(t *testing.T, data []byte, want string) {
	t.Helper()
	dl := h.pub.On(h.topics.DeadLetter())
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if string(dl[0].Data) != string(data) {
		t.Errorf("dead letter data = %q, want the original", dl[0].Data)
	}
	a := dl[0].Attributes
	if !strings.Contains(a[deadletter.AttrReason], want) || a[deadletter.AttrCode] == "" || a[deadletter.AttrDomain] != marketplace.DeadLetterDomain {
		t.Errorf("dead letter attributes %v, want a reason containing %q, a code and domain %s", a, want, marketplace.DeadLetterDomain)
	}
	for _, d := range []governor.Domain{governor.Entitlement, governor.CustomerAccount} {
		if n := len(h.pub.On(h.topics.Domain(d))); n != 0 {
			t.Errorf("%d events published to %s", n, d)
		}
	}
}

func TestWrongProviderIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	data := []byte(strings.Replace(string(fixture(t, "entitlement_active")), provider, "someone-else", 1))
	if code := h.push(t, data, "m-x"); code != http.StatusNoContent {
		t.Fatalf("push = %d, want 204", code)
	}
	h.deadLettered(t, data, "providerId")
	if h.proc.gets != 0 {
		t.Errorf("Procurement was read %d times for another provider's notification", h.proc.gets)
	}
	if a := h.pub.On(h.topics.DeadLetter())[0].Attributes; a[deadletter.AttrOriginalID] != "m-x" || a[marketplace.AttrEventType] != "ENTITLEMENT_ACTIVE" {
		t.Errorf("dead letter attributes %v, want the original message id and the event type", a)
	}
}

func TestUnknownEventTypeIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	data := []byte(`{"eventId":"1","eventType":"ENTITLEMENT_TELEPORTED","providerId":"acme-saas","entitlement":{"id":"e-1"}}`)
	if code := h.push(t, data, "m"); code != http.StatusNoContent {
		t.Fatalf("push = %d, want 204", code)
	}
	h.deadLettered(t, data, "unknown")
}

func TestMalformedNotificationIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	data := []byte(`{"eventId":"1","eventId":"2","eventType":"ENTITLEMENT_ACTIVE","providerId":"acme-saas","entitlement":{"id":"e-1"}}`)
	if code := h.push(t, data, "m"); code != http.StatusNoContent {
		t.Fatalf("push = %d, want 204", code)
	}
	h.deadLettered(t, data, "duplicate member")
}

func TestEntitlementTypeCarryingAnAccountIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	data := []byte(`{"eventId":"1","eventType":"ENTITLEMENT_ACTIVE","providerId":"acme-saas","account":{"id":"E-1"}}`)
	h.push(t, data, "m")
	h.deadLettered(t, data, "carries an account")
}

func TestEntitlementWithoutAnAccountIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic").Account = ""
	data := fixture(t, "entitlement_active")
	h.push(t, data, "m")
	h.deadLettered(t, data, "entitlement account")
}

// TestOversizePushBodyIsDeadLetteredAndAcknowledged pushes a body over
// the cap: no redelivery can mend it, so its head is dead-lettered with
// the reason and it is acknowledged rather than redelivered for ever.
func TestOversizePushBodyIsDeadLetteredAndAcknowledged(t *testing.T) {
	h := newHarness(t)
	body := append([]byte(`{"message":{"data":"`), make([]byte, event.MaxPushBytes)...)
	if code := h.pushBody(t, body); code != http.StatusNoContent {
		t.Errorf("oversize push body = %d, want 204 once dead-lettered", code)
	}
	h.deadLettered(t, body[:marketplace.MaxDeadLetterBody], "exceeds")
	if a := h.pub.On(h.topics.DeadLetter())[0].Attributes; a[marketplace.AttrTruncated] != strconv.Itoa(marketplace.MaxDeadLetterBody) {
		t.Errorf("dead letter attributes %v, want %s", a, marketplace.AttrTruncated)
	}
	if h.proc.gets != 0 {
		t.Error("an oversize body was acted upon")
	}
}

func TestOversizeNotificationIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	data := []byte(`{"eventId":"1","eventType":"ENTITLEMENT_ACTIVE","providerId":"acme-saas","entitlement":{"id":"e-1"},"pad":"` +
		strings.Repeat("x", marketplace.MaxNotificationBytes) + `"}`)
	if code := h.push(t, data, "m"); code != http.StatusNoContent {
		t.Fatalf("push = %d, want 204", code)
	}
	h.deadLettered(t, data, "limit")
}

// TestNotAPushBodyIsDeadLetteredAndAcknowledged pushes bodies that are
// no push delivery: each is dead-lettered as received with the reason and
// acknowledged, since Pub/Sub redelivers anything but a 2xx.
func TestNotAPushBodyIsDeadLetteredAndAcknowledged(t *testing.T) {
	for _, body := range []string{`{}`, `[]`, `{"message":{"data":"***"}}`, `not json`} {
		h := newHarness(t)
		if code := h.pushBody(t, []byte(body)); code != http.StatusNoContent {
			t.Errorf("push body %s = %d, want 204 once dead-lettered", body, code)
		}
		h.deadLettered(t, []byte(body), "")
		if a := h.pub.On(h.topics.DeadLetter())[0].Attributes; a[deadletter.AttrReason] == "" || a[deadletter.AttrCode] != string(fault.Invalid) {
			t.Errorf("push body %s: dead letter attributes %v, want a reason and code invalid", body, a)
		}
		if h.proc.gets != 0 {
			t.Errorf("push body %s was acted upon", body)
		}
	}
	h := newHarness(t)
	req, _ := http.NewRequest(http.MethodGet, marketplace.PushPath, nil)
	rec := newRecorder()
	h.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", rec.Code)
	}
}

// TestUndeliverablePushBodyWithDeadLettersDownIsRedelivered keeps a body
// that is no push delivery when it cannot be dead-lettered: 503.
func TestUndeliverablePushBodyWithDeadLettersDownIsRedelivered(t *testing.T) {
	h := newHarness(t)
	h.pub.Fail(true)
	if code := h.pushBody(t, []byte(`not json`)); code != http.StatusServiceUnavailable {
		t.Errorf("push body with Pub/Sub down = %d, want 503", code)
	}
}

// TestPushFromAnotherIdentityIsForbidden plants a notification from a
// caller other than the push subscription's identity: 403, nothing read
// or published.
func TestPushFromAnotherIdentityIsForbidden(t *testing.T) {
	const push = "push@example.iam.gserviceaccount.com"
	h := newHarness(t, func(o *marketplace.AdapterOptions) { o.Callers = []string{push} })
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	body := event.PushBody(fixture(t, "entitlement_active"), nil, "m")
	for name, auth := range map[string]string{"anonymous": "", "another identity": bearer("intruder@example.com")} {
		req := httptest.NewRequest(http.MethodPost, marketplace.PushPath, bytes.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s: push = %d, want 403", name, rec.Code)
		}
	}
	if n := len(h.pub.On(h.topics.Domain(governor.Entitlement))) + len(h.pub.On(h.topics.DeadLetter())); n != 0 || h.proc.gets != 0 {
		t.Fatalf("a forbidden push published %d messages and made %d reads", n, h.proc.gets)
	}
	req := httptest.NewRequest(http.MethodPost, marketplace.PushPath, bytes.NewReader(body))
	req.Header.Set("Authorization", bearer(push))
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent || len(h.events(t, governor.Entitlement)) != 1 {
		t.Errorf("push from the push identity = %d, %d events; want 204 and the event", rec.Code, len(h.events(t, governor.Entitlement)))
	}
}

// bearer is an Authorization header carrying an unsigned ID token for
// email, as Cloud Run forwards it.
func bearer(email string) string {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return "Bearer " + enc(`{"alg":"RS256"}`) + "." + enc(`{"email":"`+email+`"}`) + ".sig"
}

func TestProcurement503IsAnswered503AndPublishesNothing(t *testing.T) {
	h := newHarness(t)
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	h.proc.setFail(unavailable)
	data := fixture(t, "entitlement_active")
	if code := h.push(t, data, "m"); code != http.StatusServiceUnavailable {
		t.Fatalf("push with Procurement down = %d, want 503", code)
	}
	if n := len(h.pub.On(h.topics.Domain(governor.Entitlement))) + len(h.pub.On(h.topics.DeadLetter())); n != 0 {
		t.Fatalf("%d messages published while Procurement was down", n)
	}
	h.proc.setFail(nil)
	if code := h.push(t, data, "m"); code != http.StatusNoContent {
		t.Fatalf("redelivery = %d, want 204", code)
	}
	if evs := h.events(t, governor.Entitlement); len(evs) != 1 {
		t.Errorf("redelivery published %v, want activated once", types(evs))
	}
}

func TestPublishFailureIsAnswered503(t *testing.T) {
	h := newHarness(t)
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	h.pub.Fail(true)
	if code := h.push(t, fixture(t, "entitlement_active"), "m"); code != http.StatusServiceUnavailable {
		t.Errorf("push with Pub/Sub down = %d, want 503", code)
	}
	h.pub.Fail(false)
	if code := h.push(t, fixture(t, "entitlement_active"), "m"); code != http.StatusNoContent {
		t.Errorf("redelivery = %d, want 204", code)
	}
}

func TestDeadLetterPublishFailureIsAnswered503(t *testing.T) {
	h := newHarness(t)
	h.pub.Fail(true)
	data := []byte(`{"eventId":"1","eventType":"ENTITLEMENT_TELEPORTED","providerId":"acme-saas","entitlement":{"id":"e-1"}}`)
	if code := h.push(t, data, "m"); code != http.StatusServiceUnavailable {
		t.Errorf("push with the dead-letter topic down = %d, want 503", code)
	}
}

func TestAccountsOutageIsAnswered503(t *testing.T) {
	h := newHarness(t, func(o *marketplace.AdapterOptions) { o.Accounts = downAccounts{} })
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	if code := h.push(t, fixture(t, "entitlement_active"), "m"); code != http.StatusServiceUnavailable {
		t.Errorf("push with the links store down = %d, want 503", code)
	}
	if n := len(h.pub.On(h.topics.Domain(governor.Entitlement))); n != 0 {
		t.Errorf("%d events published", n)
	}
}

type downAccounts struct{}

func (downAccounts) Link(context.Context, string, string) (marketplace.Link, error) {
	return marketplace.Link{}, fault.Errorf(fault.Unavailable, "down", "firestore unavailable")
}

func (downAccounts) ByAccount(context.Context, string) (marketplace.Link, error) {
	return marketplace.Link{}, fault.Errorf(fault.Unavailable, "down", "firestore unavailable")
}

func TestNotificationsAreCounted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	h := newHarness(t, func(o *marketplace.AdapterOptions) {
		o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	})
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	h.push(t, fixture(t, "entitlement_active"), "m1")
	h.push(t, fixture(t, "entitlement_renewed"), "m2")
	h.push(t, []byte(`{"eventId":"1","eventType":"NEW_THING","providerId":"acme-saas","entitlement":{"id":"e"}}`), "m3")
	h.proc.setFail(unavailable)
	h.push(t, fixture(t, "entitlement_active"), "m4")
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[[2]string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != marketplace.MetricNotifications {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				get := func(k string) string { v, _ := dp.Attributes.Value(attribute.Key(k)); return v.AsString() }
				got[[2]string{get("event_type"), get("outcome")}] += dp.Value
			}
		}
	}
	want := map[[2]string]int64{
		{"ENTITLEMENT_ACTIVE", "mapped"}:      1,
		{"ENTITLEMENT_RENEWED", "ignored"}:    1,
		{"unknown", "invalid"}:                1,
		{"ENTITLEMENT_ACTIVE", "unavailable"}: 1,
	}
	if len(got) != len(want) {
		t.Errorf("counted %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s%v = %d, want %d (all: %v)", marketplace.MetricNotifications, k, got[k], n, got)
		}
	}
}

func TestNewAdapterRefusesBadOptions(t *testing.T) {
	good := marketplace.AdapterOptions{Provider: provider, Procurement: newFakeProcurement(), Accounts: marketplace.NewMemAccounts(), Publisher: nil}
	if _, err := marketplace.NewAdapter(good); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("NewAdapter without a publisher = %v, want invalid", err)
	}
	h := newHarness(t)
	_ = h
	for _, p := range []string{"", "a/b", "has space"} {
		o := marketplace.AdapterOptions{Provider: p, Procurement: newFakeProcurement(), Accounts: marketplace.NewMemAccounts(), Publisher: h.pub}
		if _, err := marketplace.NewAdapter(o); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("NewAdapter(provider %q) = %v, want invalid", p, err)
		}
	}
}

// TestPlanChangedWithASecondChangePendingKeepsTheNewPlan delivers
// ENTITLEMENT_PLAN_CHANGED when Procurement already awaits approval of a
// second change: plan_changed with the plan that took effect goes first,
// then plan_change_requested with the pending one.
func TestPlanChangedWithASecondChangePendingKeepsTheNewPlan(t *testing.T) {
	h := newHarness(t)
	e := h.proc.entitlement(entID, marketplace.EntitlementPendingPlanChangeApproval, "pro")
	e.NewPendingPlan = "enterprise"
	data := fixture(t, "entitlement_plan_changed")
	if code := h.push(t, data, "m"); code != http.StatusNoContent {
		t.Fatalf("push = %d, want 204", code)
	}
	evs := h.events(t, governor.Entitlement)
	if len(evs) != 2 || evs[0].Name != marketplace.EvPlanChanged || evs[1].Name != marketplace.EvPlanChangeRequested {
		t.Fatalf("published %v, want plan_changed then plan_change_requested", types(evs))
	}
	var changed, requested struct{ Plan string }
	_ = json.Unmarshal(evs[0].Data, &changed)
	_ = json.Unmarshal(evs[1].Data, &requested)
	if changed.Plan != "pro" || requested.Plan != "enterprise" {
		t.Errorf("plans %q then %q, want pro then enterprise", changed.Plan, requested.Plan)
	}
	var n struct{ EventID string }
	_ = json.Unmarshal(data, &n)
	if evs[0].ID != n.EventID || evs[1].ID != n.EventID+"-2" {
		t.Errorf("ids %s, %s; want %s and %s-2", evs[0].ID, evs[1].ID, n.EventID, n.EventID)
	}
}
