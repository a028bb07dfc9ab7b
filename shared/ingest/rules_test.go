package ingest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ingest"
)

// Each test below is one attempt by an authenticated producer to send
// what its rules, its class or the engine do not allow: refused with the
// reason, nothing published.

// send posts e as billing (or as the producer of email) in structured
// mode with an ID token.
func (f *fixture) send(email string, e ce) answer {
	f.t.Helper()
	return f.post(f.withToken(email, structured()), e.json(f.t))
}

// TestProducerMayNotSendOtherTypes: billing may send billing events, not
// subscription ones.
func TestProducerMayNotSendOtherTypes(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := ce{"specversion": "1.0", "id": "r-1", "source": "s", "type": "autonomics.subscription.renewed", "tenantid": "acme"}
	wantRefused(t, f.send(billingEmail, e), http.StatusForbidden, ingest.CodeForbidden, "producer billing may not send autonomics.subscription.renewed")
	f.assertNothingPublished()
}

// TestProducerMayNotSendForOtherTenants: billing may send for acme and
// globex only.
func TestProducerMayNotSendForOtherTenants(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	wantRefused(t, f.send(billingEmail, usage("r-2", "initech")), http.StatusForbidden, ingest.CodeForbidden, `may not send for tenant "initech"`)
	f.assertNothingPublished()
}

// TestMarketplaceProducerMayNotSendProviderEvents: the adapter's rule
// allows every billing event, but billing.payment_failed is the
// provider's (class external) alone.
func TestMarketplaceProducerMayNotSendProviderEvents(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := ce{"specversion": "1.0", "id": "r-3", "source": "s", "type": "autonomics.billing.payment_failed", "tenantid": "acme", "data": map[string]any{"reason": "card_declined"}}
	wantRefused(t, f.send(adapterEmail, e), http.StatusForbidden, ingest.CodeForbidden, "may be sent by external only, not by a sender of class marketplace")
	f.assertNothingPublished()
}

// TestExternalProducerMayNotClaimMarketplaceSource: the class comes from
// the producer's rule, not from the source it sends; the source is
// replaced.
func TestExternalProducerMayNotClaimMarketplaceSource(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a := f.send(billingEmail, usage("r-4", "acme").with("source", "marketplace/adapter"))
	if a.status != http.StatusAccepted || a.result().Source != "ingest/billing" {
		t.Fatalf("answer %d %s, want 202 published as ingest/billing", a.status, a.body)
	}
	got := f.pull(1, 10*time.Second)
	if len(got) != 1 || got[0].ev.Source != "ingest/billing" {
		t.Fatalf("published %+v, want the event as ingest/billing", got)
	}
	// An entitlement event the Marketplace may send stays out of reach
	// of an external producer without the type.
	wantRefused(t, f.send(billingEmail, activated("r-5", "acme").with("source", "marketplace/adapter")), http.StatusForbidden, ingest.CodeForbidden, "may not send autonomics.entitlement.activated")
	f.assertNothingPublished()
}

// The engine's refusals: what no event from outside may claim.

func TestInternalSourceClaimed(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, src := range []string{"autonomics/timer", "autonomics/governor/billing", "autonomics/monitor", "Autonomics/actuator/x"} {
		wantRefused(t, f.send(billingEmail, usage("r-6", "acme").with("source", src)), http.StatusBadRequest, fault.Invalid, "reserved for Autonomics' own components")
	}
	f.assertNothingPublished()
}

func TestCausationIDSet(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	wantRefused(t, f.send(billingEmail, usage("r-7", "acme").with("causationid", "receipt-hash")), http.StatusBadRequest, fault.Invalid, "causationid is set only by Autonomics")
	f.assertNothingPublished()
}

func TestCorrelationIDSet(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	wantRefused(t, f.send(billingEmail, usage("r-8", "acme").with("correlationid", "c-1")), http.StatusBadRequest, fault.Invalid, "correlationid is set only by Autonomics")
	f.assertNothingPublished()
}

func TestCascadeDepthSet(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	wantRefused(t, f.send(billingEmail, usage("r-9", "acme").with("cascadedepth", "3")), http.StatusBadRequest, fault.Invalid, "cascadedepth is set only by Autonomics")
	f.assertNothingPublished()
}

// TestInternalOnlyEvent: ops may send multi_tenant events, but suspend is
// a cascade from the governors only.
func TestInternalOnlyEvent(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := ce{"specversion": "1.0", "id": "r-10", "source": "s", "type": "autonomics.multi_tenant.suspend", "tenantid": "acme"}
	wantRefused(t, f.send(opsEmail, e), http.StatusForbidden, ingest.CodeForbidden, "may be sent by governor only, not by a sender of class external")
	f.assertNothingPublished()
}

// TestMonitorOnlyEvent: noisy-neighbour detection is the monitor's.
func TestMonitorOnlyEvent(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := ce{"specversion": "1.0", "id": "r-11", "source": "s", "type": "autonomics.multi_tenant.noisy_neighbor_detected", "tenantid": "acme"}
	wantRefused(t, f.send(opsEmail, e), http.StatusForbidden, ingest.CodeForbidden, "may be sent by monitor only")
	f.assertNothingPublished()
}

// TestTimeoutFromOutside: timeouts are the scheduler's alone.
func TestTimeoutFromOutside(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := ce{"specversion": "1.0", "id": "r-12", "source": "s", "type": "autonomics.subscription.timeout.trial_end", "tenantid": "acme", "data": map[string]any{"timer_id": "guessed"}}
	wantRefused(t, f.send(opsEmail, e), http.StatusForbidden, ingest.CodeForbidden, "may be sent by scheduler only")
	f.assertNothingPublished()
}

// TestActuationFailureFromOutside: only an actuator reports a failed
// action, on the internal path.
func TestActuationFailureFromOutside(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := ce{"specversion": "1.0", "id": "r-13", "source": "s", "type": "autonomics.multi_tenant.actuation_failed", "tenantid": "acme",
		"data": map[string]any{"kind": "tenant.throttle", "action_id": "a-1", "reason": "down", "attempts": 3}}
	wantRefused(t, f.send(opsEmail, e), http.StatusForbidden, ingest.CodeForbidden, "may be sent by actuator only")
	f.assertNothingPublished()
}
