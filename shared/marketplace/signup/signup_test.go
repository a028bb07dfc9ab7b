package signup

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

func TestValidSignupLinksAndPublishes(t *testing.T) {
	h := newHarness(t, nil)
	w := h.post(h.certs.valid(t, h.clock.Now()), nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d %s, want 200", w.Code, w.Body.String())
	}
	tenant := marketplace.DefaultTenant(testAccount)
	var res Result
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res != (Result{Tenant: tenant, Account: testAccount}) {
		t.Errorf("body %s (%v), want tenant %s and account %s", w.Body.String(), err, tenant, testAccount)
	}
	if l := h.accounts.links[testAccount]; l.Tenant != tenant || l.Source != marketplace.LinkedBySignup {
		t.Errorf("link %+v, want tenant %s by %s", l, tenant, marketplace.LinkedBySignup)
	}
	evs := h.published(t)
	if len(evs) != 2 {
		t.Fatalf("%d events, want requested then verified", len(evs))
	}
	for i, want := range []struct {
		name governor.EventName
		id   string
	}{{EventRequested, "signup-" + testAccount + "-requested"}, {EventVerified, "signup-" + testAccount + "-verified"}} {
		ev := evs[i]
		if ev.ID != want.id || ev.Name != want.name || ev.Domain != governor.CustomerAccount ||
			ev.Type != "autonomics.customer_account."+string(want.name) || ev.Source != "marketplace/"+testProvider ||
			ev.Tenant != tenant || ev.Subject != governor.DefaultSubject || !ev.Time.Equal(h.clock.Now()) {
			t.Errorf("event %d = %+v, want %s %s from marketplace/%s for %s/default", i, ev, want.name, want.id, testProvider, tenant)
		}
	}

	t.Run("header token", func(t *testing.T) {
		h := newHarness(t, nil)
		r := httptest.NewRequest(http.MethodPost, "/signup", nil)
		r.Header.Set(TokenField, h.certs.valid(t, h.clock.Now()))
		w := httptest.NewRecorder()
		h.srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK || len(h.published(t)) != 2 {
			t.Errorf("status %d %s, %d events; want 200 and 2", w.Code, w.Body.String(), len(h.published(t)))
		}
	})

	t.Run("redirect", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.Redirect = "https://app.example.com/welcome?from=marketplace" })
		w := h.post(h.certs.valid(t, h.clock.Now()), http.Header{"Accept": {"text/html"}})
		if w.Code != http.StatusSeeOther {
			t.Fatalf("status %d, want 303", w.Code)
		}
		u, err := url.Parse(w.Header().Get("Location"))
		if err != nil || u.Host != "app.example.com" || u.Query().Get("tenant") != tenant || u.Query().Get("from") != "marketplace" {
			t.Errorf("Location %q, want the redirect with tenant=%s", w.Header().Get("Location"), tenant)
		}
	})
}

func TestReplayedSignupIsHarmless(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.certs.valid(t, h.clock.Now())
	first := h.post(tok, nil)
	h.clock.Advance(time.Minute)
	// The same token again, and a new token for the same account.
	second := h.post(tok, nil)
	c := h.certs.claims(h.clock.Now())
	c["jti"] = "tok-2"
	third := h.post(mint(t, jwtRS256, rsaKey(t, 0), testKid, c), nil)
	for i, w := range []*httptest.ResponseRecorder{first, second, third} {
		if w.Code != http.StatusOK || w.Body.String() != first.Body.String() {
			t.Errorf("sign-up %d: %d %s, want the first answer %s", i, w.Code, w.Body.String(), first.Body.String())
		}
	}
	if n := h.accounts.count(); n != 1 {
		t.Errorf("%d links, want 1", n)
	}
	evs := h.published(t)
	if len(evs) != 6 {
		t.Fatalf("%d events, want 3 × 2", len(evs))
	}
	// Every replay repeats the same (source, id): the engine deduplicates.
	for i := 2; i < len(evs); i++ {
		if a, b := evs[i], evs[i%2]; a.ID != b.ID || a.Source != b.Source || a.Tenant != b.Tenant {
			t.Errorf("replayed event %d = %s/%s, want %s/%s", i, a.Source, a.ID, b.Source, b.ID)
		}
	}
}

func TestPublishFailureIs503(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.certs.valid(t, h.clock.Now())
	h.pub.Fail(true)
	w := h.post(tok, nil)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d %s, want 503 with Retry-After", w.Code, w.Body.String())
	}
	if n := h.accounts.count(); n != 1 {
		t.Errorf("%d links, want the link kept", n)
	}
	h.pub.Fail(false)
	if w := h.post(tok, nil); w.Code != http.StatusOK {
		t.Fatalf("retry: %d %s, want 200", w.Code, w.Body.String())
	}
	if evs := h.published(t); len(evs) != 2 || evs[0].Name != EventRequested || evs[1].Name != EventVerified {
		t.Errorf("after the retry: %+v, want requested then verified", evs)
	}
}

func TestLinkFailureWritesNoEvent(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"unavailable", fault.Errorf(fault.Unavailable, "accounts", "firestore is down"), http.StatusServiceUnavailable},
		{"conflict", fault.Errorf(fault.Conflict, "accounts", "tenant tied to another account"), http.StatusConflict},
		{"internal", fault.Errorf(fault.Internal, "accounts", "secret detail"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.accounts.err = tt.err
			w := h.post(h.certs.valid(t, h.clock.Now()), nil)
			if w.Code != tt.status || strings.Contains(w.Body.String(), "secret") {
				t.Errorf("status %d %s, want %d without internals", w.Code, w.Body.String(), tt.status)
			}
			if evs := h.published(t); len(evs) != 0 {
				t.Errorf("%d events published, want none", len(evs))
			}
		})
	}
}

func TestOversizeBodyIsRefused(t *testing.T) {
	h := newHarness(t, nil)
	tok := h.certs.valid(t, h.clock.Now())
	body := url.Values{TokenField: {tok}, "padding": {strings.Repeat("x", MaxBody)}}.Encode()
	r := httptest.NewRequest(http.MethodPost, "/signup", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.srv.ServeHTTP(w, r)
	h.assertRefused(t, w, http.StatusRequestEntityTooLarge, ReasonMalformed)
	if n := h.certs.fetches.Load(); n != 0 {
		t.Errorf("%d fetches of the keys for an oversize body, want none", n)
	}
}

func TestAmbiguousTokenIsRefused(t *testing.T) {
	tests := []struct {
		name string
		req  func(h *harness, tok string) *http.Request
	}{
		{"two form fields", func(h *harness, tok string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/signup", strings.NewReader(url.Values{TokenField: {tok, tok}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}},
		{"form and header differ", func(h *harness, tok string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/signup", strings.NewReader(url.Values{TokenField: {tok}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set(TokenField, "other")
			return r
		}},
		{"two headers", func(h *harness, tok string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/signup", nil)
			r.Header.Add(TokenField, tok)
			r.Header.Add(TokenField, tok)
			return r
		}},
		{"broken form", func(h *harness, tok string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/signup", strings.NewReader("%zz="+tok))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			w := httptest.NewRecorder()
			h.srv.ServeHTTP(w, tt.req(h, h.certs.valid(t, h.clock.Now())))
			h.assertRefused(t, w, http.StatusUnauthorized, ReasonMalformed)
		})
	}
	t.Run("token in the query string is ignored", func(t *testing.T) {
		h := newHarness(t, nil)
		r := httptest.NewRequest(http.MethodPost, "/signup?"+url.Values{TokenField: {h.certs.valid(t, h.clock.Now())}}.Encode(), strings.NewReader(""))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.srv.ServeHTTP(w, r)
		h.assertRefused(t, w, http.StatusUnauthorized, ReasonMissingToken)
	})
}

func TestBrowserGetsHTMLRefusal(t *testing.T) {
	h := newHarness(t, nil)
	c := h.certs.claims(h.clock.Now())
	c["aud"] = "<script>alert(1)</script>"
	w := h.post(mint(t, jwtRS256, rsaKey(t, 0), testKid, c), http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}})
	if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d %s, want a 401 HTML page", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	if !strings.Contains(body, string(ReasonWrongAudience)) || strings.Contains(body, "<script>") {
		t.Errorf("page %s, want the reason and no markup from the token", body)
	}
	if h.accounts.count() != 0 || len(h.published(t)) != 0 {
		t.Error("a refused sign-up wrote something")
	}
}

func TestUnknownRouteIs404(t *testing.T) {
	h := newHarness(t, nil)
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/signup", nil),
		httptest.NewRequest(http.MethodPost, "/other", nil),
	} {
		w := httptest.NewRecorder()
		h.srv.ServeHTTP(w, r)
		if w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 404 or 405", r.Method, r.URL.Path, w.Code)
		}
	}
}

func TestSignupsAreCounted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	h := newHarness(t, func(o *Options) { o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)) })
	h.post(h.certs.valid(t, h.clock.Now()), nil)
	h.post("garbage", nil)
	h.post(mint(t, jwtRS256, rsaKey(t, 1), testKid, h.certs.claims(h.clock.Now())), nil)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != MetricSignups {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				o, _ := dp.Attributes.Value(attribute.Key("outcome"))
				r, _ := dp.Attributes.Value(attribute.Key("reason"))
				got[o.AsString()+"/"+r.AsString()] += dp.Value
			}
		}
	}
	want := map[string]int64{"accepted/": 1, "refused/malformed": 1, "refused/bad_signature": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	good := func() Options {
		return Options{Audience: testAudience, Accounts: &fakeAccounts{}, Publisher: &webhooktest.Publisher{}, Provider: testProvider}
	}
	tests := []struct {
		name string
		edit func(*Options)
	}{
		{"no accounts", func(o *Options) { o.Accounts = nil }},
		{"no publisher", func(o *Options) { o.Publisher = nil }},
		{"no provider", func(o *Options) { o.Provider = "" }},
		{"provider with a slash", func(o *Options) { o.Provider = "a/b" }},
		{"no audience", func(o *Options) { o.Audience = "" }},
		{"relative redirect", func(o *Options) { o.Redirect = "/welcome" }},
		{"javascript redirect", func(o *Options) { o.Redirect = "javascript:alert(1)" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good()
			tt.edit(&o)
			if _, err := New(o); fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("New = %v, want an Invalid error", err)
			}
		})
	}
	if _, err := New(good()); err != nil {
		t.Errorf("New(good options) = %v", err)
	}
}

// smallKeyCert is a certificate of a 1024-bit RSA key.
func smallKeyCert(t *testing.T) string {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM(t, k, webhooktest.Epoch.Add(-time.Hour), webhooktest.Epoch.Add(time.Hour))
}

// flakyPublisher fails the first fails publications of verified events.
type flakyPublisher struct {
	inner *webhooktest.Publisher
	mu    sync.Mutex
	fails int
	calls int
}

func (f *flakyPublisher) Publish(ctx context.Context, m store.Message) error {
	f.mu.Lock()
	f.calls++
	fail := strings.HasSuffix(m.Attributes["ce-type"], "."+string(EventVerified)) && f.fails > 0
	if fail {
		f.fails--
	}
	f.mu.Unlock()
	if fail {
		return fault.Errorf(fault.Unavailable, "flaky", "publishing is down for now")
	}
	return f.inner.Publish(ctx, m)
}

// TestVerifiedPublishFailsThenSucceedsWithinTheRequest loses the verified
// publish twice after requested went out: the request retries it and
// answers 200 with both events published.
func TestVerifiedPublishFailsThenSucceedsWithinTheRequest(t *testing.T) {
	f := &flakyPublisher{fails: 2}
	h := newHarness(t, func(o *Options) {
		f.inner = o.Publisher.(*webhooktest.Publisher)
		o.Publisher = f
		o.PublishBackoff = []time.Duration{time.Millisecond, time.Millisecond}
	})
	w := h.post(h.certs.valid(t, h.clock.Now()), nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d %s, want 200 after in-request retries", w.Code, w.Body.String())
	}
	if evs := h.published(t); len(evs) != 2 || evs[0].Name != EventRequested || evs[1].Name != EventVerified {
		t.Errorf("published %+v, want requested then verified", evs)
	}
	if f.calls != 4 {
		t.Errorf("%d publish calls, want 4 (requested, verified three times)", f.calls)
	}
}

// TestVerifiedPublishDownPastTheRetriesIs503 keeps verified failing past
// the retries: 503, so that the customer (or Marketplace) tries again.
func TestVerifiedPublishDownPastTheRetriesIs503(t *testing.T) {
	f := &flakyPublisher{fails: 3}
	h := newHarness(t, func(o *Options) {
		f.inner = o.Publisher.(*webhooktest.Publisher)
		o.Publisher = f
		o.PublishBackoff = []time.Duration{time.Millisecond, time.Millisecond}
	})
	tok := h.certs.valid(t, h.clock.Now())
	if w := h.post(tok, nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d %s, want 503 once the retries are spent", w.Code, w.Body.String())
	}
	if evs := h.published(t); len(evs) != 1 || evs[0].Name != EventRequested {
		t.Fatalf("published %+v, want requested only", evs)
	}
	if w := h.post(tok, nil); w.Code != http.StatusOK {
		t.Fatalf("second try: %d %s, want 200", w.Code, w.Body.String())
	}
}

// TestPlainHTTPIssuerOffLoopbackIsRefused: keys fetched in the clear from
// another host could be swapped on the way; only a loopback host may use
// http.
func TestPlainHTTPIssuerOffLoopbackIsRefused(t *testing.T) {
	tests := []struct {
		issuer string
		ok     bool
	}{
		{"http://www.googleapis.com/robot/v1/metadata/x509/x", false},
		{"http://10.0.0.7:8799/certs", false},
		{"http://127.0.0.1.example.com/certs", false},
		{"http://localhost:8799/certs", true},
		{"http://127.0.0.1:8799/certs", true},
		{"http://[::1]:8799/certs", true},
		{"https://certs.example.com/keys", true},
	}
	for _, tt := range tests {
		_, err := NewVerifier(VerifierOptions{Audience: "a", Issuer: tt.issuer})
		if (err == nil) != tt.ok {
			t.Errorf("NewVerifier(issuer %s) = %v; want accepted %v", tt.issuer, err, tt.ok)
		}
		if err != nil && fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("issuer %s: %v, want Invalid", tt.issuer, err)
		}
	}
}
