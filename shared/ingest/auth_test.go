package ingest_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ingest"
)

// Every test below is one attack on authentication: the request is
// refused with the reason and publishes nothing.

// tokenRequest sends one valid event with an ID token.
func (f *fixture) tokenRequest(token string) answer {
	f.t.Helper()
	h := structured()
	h.Set("Authorization", "Bearer "+token)
	return f.post(h, usage("tok-1", "acme").json(f.t))
}

func TestIDTokenIsAccepted(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	if a := f.tokenRequest(f.token(billingEmail)); a.status != http.StatusAccepted {
		t.Fatalf("answer %d %s, want 202", a.status, a.body)
	}
	if got := f.pull(1, 10*time.Second); len(got) != 1 || got[0].ev.Source != "ingest/billing" {
		t.Fatalf("published %+v, want one event from ingest/billing", got)
	}
}

func TestIDTokenForAnotherAudience(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := googleClaims(billingEmail)
	c["aud"] = "https://another-service.a.run.app"
	wantRefused(t, f.tokenRequest(signToken(t, f.known, signingKID, c)), http.StatusUnauthorized, ingest.CodeUnauthenticated, "audience does not match")
	f.assertNothingPublished()
}

func TestIDTokenExpired(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := googleClaims(billingEmail)
	c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	wantRefused(t, f.tokenRequest(signToken(t, f.known, signingKID, c)), http.StatusUnauthorized, ingest.CodeUnauthenticated, "expired")
	f.assertNothingPublished()
}

func TestIDTokenSignedByUnknownKey(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a := f.tokenRequest(signToken(t, f.rogue, "not-a-google-key", googleClaims(billingEmail)))
	wantRefused(t, a, http.StatusUnauthorized, ingest.CodeUnauthenticated, "unknown key")
	if a.header.Get("WWW-Authenticate") == "" {
		t.Errorf("401 without WWW-Authenticate")
	}
	f.assertNothingPublished()
}

// TestIDTokenForgedUnderGoogleKeyID signs with a key of the attacker's
// under the key id of Google's key.
func TestIDTokenForgedUnderGoogleKeyID(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	wantRefused(t, f.tokenRequest(signToken(t, f.rogue, signingKID, googleClaims(billingEmail))), http.StatusUnauthorized, ingest.CodeUnauthenticated, "bad signature")
	f.assertNothingPublished()
}

func TestIDTokenFromAnotherIssuer(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := googleClaims(billingEmail)
	c["iss"] = "https://issuer.example"
	wantRefused(t, f.tokenRequest(signToken(t, f.known, signingKID, c)), http.StatusUnauthorized, ingest.CodeUnauthenticated, "is not Google")
	f.assertNothingPublished()
}

func TestIDTokenWithUnverifiedEmail(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := googleClaims(billingEmail)
	c["email_verified"] = false
	wantRefused(t, f.tokenRequest(signToken(t, f.known, signingKID, c)), http.StatusUnauthorized, ingest.CodeUnauthenticated, "not verified")
	f.assertNothingPublished()
}

func TestIDTokenWithoutEmail(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := googleClaims(billingEmail)
	delete(c, "email")
	wantRefused(t, f.tokenRequest(signToken(t, f.known, signingKID, c)), http.StatusUnauthorized, ingest.CodeUnauthenticated, "no email claim")
	f.assertNothingPublished()
}

// TestIDTokenOfIdentityThatIsNoProducer: a valid Google identity that no
// producer rule names.
func TestIDTokenOfIdentityThatIsNoProducer(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	wantRefused(t, f.tokenRequest(f.token(strangerMail)), http.StatusForbidden, ingest.CodeForbidden, "is not a producer")
	f.assertNothingPublished()
}

func TestMalformedBearerToken(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	wantRefused(t, f.tokenRequest("not.a.jwt"), http.StatusUnauthorized, ingest.CodeUnauthenticated, "ID token does not verify")
	f.assertNothingPublished()
}

func TestNoCredentials(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	wantRefused(t, f.post(structured(), usage("anon-1", "acme").json(t)), http.StatusUnauthorized, ingest.CodeUnauthenticated, "no credentials")
	f.assertNothingPublished()
}

func TestTokenAndSignatureTogether(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("both-1", "acme").json(t)
	h := f.withToken(billingEmail, f.signedHeaders(billingKeyID, time.Now(), body, structured()))
	wantRefused(t, f.post(h, body), http.StatusUnauthorized, ingest.CodeUnauthenticated, "not both")
	f.assertNothingPublished()
}

func TestHMACIsAccepted(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-1", "acme").json(t)
	if a := f.post(f.signedHeaders(billingKeyID, time.Now(), body, structured()), body); a.status != http.StatusAccepted {
		t.Fatalf("answer %d %s, want 202", a.status, a.body)
	}
	if got := f.pull(1, 10*time.Second); len(got) != 1 || got[0].ev.ID != "hmac-1" || got[0].ev.Source != "ingest/billing" {
		t.Fatalf("published %+v, want hmac-1 from ingest/billing", got)
	}
}

func TestHMACBadSignature(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-2", "acme").json(t)
	h := f.signedHeaders(billingKeyID, time.Now(), body, structured())
	h.Set(ingest.HeaderWebhookSignature, ingest.Sign([]byte("a key the attacker made up, 32 bytes"), h.Get(ingest.HeaderWebhookID), time.Now().Unix(), body))
	wantRefused(t, f.post(h, body), http.StatusUnauthorized, ingest.CodeUnauthenticated, "no signature")
	f.assertNothingPublished()
}

// TestHMACTamperedBody changes the body after it was signed: another
// tenant.
func TestHMACTamperedBody(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-3", "acme").json(t)
	h := f.signedHeaders(billingKeyID, time.Now(), body, structured())
	wantRefused(t, f.post(h, usage("hmac-3", "globex").json(t)), http.StatusUnauthorized, ingest.CodeUnauthenticated, "no signature")
	f.assertNothingPublished()
}

// TestHMACSignatureOfAnotherID moves a valid signature to a new webhook
// id, to get past the replay check.
func TestHMACSignatureOfAnotherID(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-4", "acme").json(t)
	h := f.signedHeaders(billingKeyID, time.Now(), body, structured())
	h.Set(ingest.HeaderWebhookID, "msg_fresh_id")
	wantRefused(t, f.post(h, body), http.StatusUnauthorized, ingest.CodeUnauthenticated, "no signature")
	f.assertNothingPublished()
}

func TestHMACStaleTimestamp(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-5", "acme").json(t)
	h := f.signedHeaders(billingKeyID, time.Now().Add(-ingest.Tolerance-time.Minute), body, structured())
	wantRefused(t, f.post(h, body), http.StatusUnauthorized, ingest.CodeUnauthenticated, "tolerance")
	f.assertNothingPublished()
}

func TestHMACFutureTimestamp(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-6", "acme").json(t)
	h := f.signedHeaders(billingKeyID, time.Now().Add(ingest.Tolerance+time.Minute), body, structured())
	wantRefused(t, f.post(h, body), http.StatusUnauthorized, ingest.CodeUnauthenticated, "tolerance")
	f.assertNothingPublished()
}

func TestHMACMalformedTimestamp(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-7", "acme").json(t)
	h := f.signedHeaders(billingKeyID, time.Now(), body, structured())
	h.Set(ingest.HeaderWebhookTimestamp, strconv.FormatInt(time.Now().Unix(), 10)+".5")
	wantRefused(t, f.post(h, body), http.StatusUnauthorized, ingest.CodeUnauthenticated, "want Unix seconds")
	f.assertNothingPublished()
}

// TestHMACReplayedID sends the same signed request twice: the second is
// refused although its signature and timestamp are valid.
func TestHMACReplayedID(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-8", "acme").json(t)
	h := f.signedHeaders(billingKeyID, time.Now(), body, structured())
	if a := f.post(h, body); a.status != http.StatusAccepted {
		t.Fatalf("first request: %d %s", a.status, a.body)
	}
	wantRefused(t, f.post(h, body), http.StatusConflict, fault.Conflict, "already used")
	if got := f.pull(1, 10*time.Second); len(got) != 1 {
		t.Fatalf("pulled %d messages, want only the first request's", len(got))
	}
	f.assertNothingPublished()
}

// TestHMACReplayedIDUnderAnotherProducer shows the replay cache is per
// producer: another producer may use the same webhook id.
func TestHMACReplayedIDUnderAnotherProducer(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	now := time.Now()
	body := usage("hmac-9", "acme").json(t)
	h := f.signedHeaders(billingKeyID, now, body, structured())
	if a := f.post(h, body); a.status != http.StatusAccepted {
		t.Fatalf("billing: %d %s", a.status, a.body)
	}
	id := h.Get(ingest.HeaderWebhookID)
	other := activated("hmac-9", "acme").json(t)
	h2 := structured()
	h2.Set(ingest.HeaderWebhookID, id)
	h2.Set(ingest.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	h2.Set(ingest.HeaderKeyID, adapterKeyID)
	h2.Set(ingest.HeaderWebhookSignature, ingest.Sign(f.keys[adapterKeyID], id, now.Unix(), other))
	if a := f.post(h2, other); a.status != http.StatusAccepted {
		t.Fatalf("adapter with billing's webhook id: %d %s, want 202", a.status, a.body)
	}
}

func TestHMACUnknownKeyID(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-10", "acme").json(t)
	h := f.signedHeaders(billingKeyID, time.Now(), body, structured())
	h.Set(ingest.HeaderKeyID, "retired-key")
	wantRefused(t, f.post(h, body), http.StatusUnauthorized, ingest.CodeUnauthenticated, `unknown key id "retired-key"`)
	f.assertNothingPublished()
}

// TestHMACKeyOfAnotherProducer signs with the adapter's key but names
// billing's key id, to be taken for billing.
func TestHMACKeyOfAnotherProducer(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-11", "acme").json(t)
	h := f.signedHeaders(adapterKeyID, time.Now(), body, structured())
	h.Set(ingest.HeaderKeyID, billingKeyID)
	wantRefused(t, f.post(h, body), http.StatusUnauthorized, ingest.CodeUnauthenticated, "no signature")
	f.assertNothingPublished()
}

func TestHMACMissingHeader(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := usage("hmac-12", "acme").json(t)
	h := f.signedHeaders(billingKeyID, time.Now(), body, structured())
	h.Del(ingest.HeaderKeyID)
	wantRefused(t, f.post(h, body), http.StatusUnauthorized, ingest.CodeUnauthenticated, "without header "+ingest.HeaderKeyID)
	f.assertNothingPublished()
}

// TestHMACBinaryMode: in binary mode the attributes travel in headers the
// signature does not cover, so a signed request must be structured or a
// batch.
func TestHMACBinaryMode(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := []byte(`{"meter":"api_calls","quantity":3}`)
	h := http.Header{
		"Content-Type": {"application/json"}, "Ce-Specversion": {"1.0"}, "Ce-Id": {"hmac-13"},
		"Ce-Source": {"billing-system"}, "Ce-Type": {"autonomics.billing.usage_recorded"}, "Ce-Tenantid": {"acme"},
	}
	wantRefused(t, f.post(f.signedHeaders(billingKeyID, time.Now(), body, h), body), http.StatusUnsupportedMediaType, ingest.CodeUnsupportedMediaType, "not binary mode")
	f.assertNothingPublished()
}

// TestHMACBatchIsAccepted: a signed batch covers every event.
func TestHMACBatchIsAccepted(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := jsonArray(t, usage("hb-1", "acme"), usage("hb-2", "globex"))
	a := f.post(f.signedHeaders(billingKeyID, time.Now(), body, batch()), body)
	if rs := a.results(); a.status != http.StatusOK || len(rs) != 2 || rs[0].Status != ingest.StatusAccepted || rs[1].Status != ingest.StatusAccepted {
		t.Fatalf("answer %d %s, want both accepted", a.status, a.body)
	}
	if got := f.pull(2, 10*time.Second); len(got) != 2 {
		t.Fatalf("pulled %d, want 2", len(got))
	}
}
