package signup

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// refusalCase is one hostile token and the reason it must be refused
// with.
type refusalCase struct {
	name   string
	token  func(t *testing.T, h *harness) string
	reason Reason
}

// runRefusals posts each case's token to a fresh server and checks a 401
// with the reason that wrote nothing.
func runRefusals(t *testing.T, cases []refusalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			w := h.post(tc.token(t, h), nil)
			h.assertRefused(t, w, http.StatusUnauthorized, tc.reason)
			if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, "invalid_token") {
				t.Errorf("WWW-Authenticate %q, want invalid_token", got)
			}
		})
	}
}

// withClaims mints a token signed with the right key whose claims edit
// changed.
func withClaims(edit func(c jwt.MapClaims)) func(*testing.T, *harness) string {
	return func(t *testing.T, h *harness) string {
		c := h.certs.claims(h.clock.Now())
		edit(c)
		return mint(t, jwt.SigningMethodRS256, rsaKey(t, 0), testKid, c)
	}
}

func TestWrongAlgIsRefused(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "HS256 signed with the public key", reason: ReasonWrongAlg, token: func(t *testing.T, h *harness) string {
			der, err := x509.MarshalPKIXPublicKey(&rsaKey(t, 0).PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			return mint(t, jwt.SigningMethodHS256, pub, testKid, h.certs.claims(h.clock.Now()))
		}},
		{name: "alg none", reason: ReasonWrongAlg, token: func(t *testing.T, h *harness) string {
			return mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, testKid, h.certs.claims(h.clock.Now()))
		}},
		{name: "RS512 with the right key", reason: ReasonWrongAlg, token: func(t *testing.T, h *harness) string {
			return mint(t, jwt.SigningMethodRS512, rsaKey(t, 0), testKid, h.certs.claims(h.clock.Now()))
		}},
		{name: "PS256 with the right key", reason: ReasonWrongAlg, token: func(t *testing.T, h *harness) string {
			return mint(t, jwt.SigningMethodPS256, rsaKey(t, 0), testKid, h.certs.claims(h.clock.Now()))
		}},
		{name: "unregistered alg", reason: ReasonWrongAlg, token: func(t *testing.T, h *harness) string {
			good := h.certs.valid(t, h.clock.Now())
			parts := strings.Split(good, ".")
			parts[0] = b64(`{"alg":"XX999","kid":"` + testKid + `","typ":"JWT"}`)
			return strings.Join(parts, ".")
		}},
	})
}

func TestWrongAudienceIsRefused(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "another domain", reason: ReasonWrongAudience, token: withClaims(func(c jwt.MapClaims) { c["aud"] = "evil.example.com" })},
		{name: "no aud", reason: ReasonMissingClaim, token: withClaims(func(c jwt.MapClaims) { delete(c, "aud") })},
		{name: "audience as a prefix", reason: ReasonWrongAudience, token: withClaims(func(c jwt.MapClaims) { c["aud"] = testAudience + ".evil.com" })},
	})
}

func TestWrongIssuerIsRefused(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "another issuer", reason: ReasonWrongIssuer, token: withClaims(func(c jwt.MapClaims) {
			c["iss"] = "https://evil.example.com/robot/v1/metadata/x509/cloud-commerce-partner@system.gserviceaccount.com"
		})},
		{name: "google's issuer while another is configured", reason: ReasonWrongIssuer, token: withClaims(func(c jwt.MapClaims) { c["iss"] = GoogleIssuer })},
		{name: "no iss", reason: ReasonWrongIssuer, token: withClaims(func(c jwt.MapClaims) { delete(c, "iss") })},
	})
	t.Run("nothing is fetched for a wrong issuer", func(t *testing.T) {
		h := newHarness(t, nil)
		c := h.certs.claims(h.clock.Now())
		c["iss"] = "https://evil.example.com/keys"
		h.post(mint(t, jwt.SigningMethodRS256, rsaKey(t, 0), testKid, c), nil)
		if n := h.certs.fetches.Load(); n != 0 {
			t.Errorf("%d fetches of the keys, want none", n)
		}
	})
}

func TestExpiredTokenIsRefused(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "expired five minutes ago", reason: ReasonExpired, token: func(t *testing.T, h *harness) string {
			return h.certs.valid(t, h.clock.Now().Add(-10*time.Minute))
		}},
		{name: "expired beyond the leeway", reason: ReasonExpired, token: func(t *testing.T, h *harness) string {
			return h.certs.valid(t, h.clock.Now().Add(-5*time.Minute-Leeway-time.Second))
		}},
		{name: "no exp", reason: ReasonMissingClaim, token: withClaims(func(c jwt.MapClaims) { delete(c, "exp") })},
		{name: "issued in the future", reason: ReasonNotYetValid, token: func(t *testing.T, h *harness) string {
			return h.certs.valid(t, h.clock.Now().Add(2*time.Minute))
		}},
		{name: "no iat", reason: ReasonMissingClaim, token: withClaims(func(c jwt.MapClaims) { delete(c, "iat") })},
	})
	t.Run("expired within the leeway is accepted", func(t *testing.T) {
		h := newHarness(t, nil)
		if w := h.post(h.certs.valid(t, h.clock.Now().Add(-5*time.Minute-Leeway+time.Second)), nil); w.Code != http.StatusOK {
			t.Errorf("status %d (%s), want 200", w.Code, w.Body.String())
		}
	})
}

func TestUnknownKidIsRefused(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "unknown kid", reason: ReasonUnknownKid, token: func(t *testing.T, h *harness) string {
			return mint(t, jwt.SigningMethodRS256, rsaKey(t, 0), "key-unknown", h.certs.claims(h.clock.Now()))
		}},
		{name: "no kid", reason: ReasonMissingKid, token: func(t *testing.T, h *harness) string {
			return mint(t, jwt.SigningMethodRS256, rsaKey(t, 0), "", h.certs.claims(h.clock.Now()))
		}},
	})

	t.Run("refetch limited to once per interval", func(t *testing.T) {
		cs := newCertServer(t)
		clock := webhooktest.NewClock()
		v := newVerifier(t, cs, clock)
		ctx := context.Background()
		if _, err := v.Verify(ctx, cs.valid(t, clock.Now())); err != nil {
			t.Fatal(err)
		}
		unknown := func() string {
			return mint(t, jwt.SigningMethodRS256, rsaKey(t, 0), fmt.Sprintf("key-%d", clock.Now().UnixNano()), cs.claims(clock.Now()))
		}
		// A flood of unknown kids right after a fetch fetches nothing.
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				_, err := v.Verify(ctx, unknown())
				wantReason(t, err, ReasonUnknownKid)
			})
		}
		wg.Wait()
		if n := cs.fetches.Load(); n != 1 {
			t.Fatalf("%d fetches after a flood of unknown kids, want 1", n)
		}
		// A minute later, a second flood refetches once.
		clock.Advance(DefaultRefetchInterval)
		for range 50 {
			wg.Go(func() {
				_, err := v.Verify(ctx, unknown())
				wantReason(t, err, ReasonUnknownKid)
			})
		}
		wg.Wait()
		if n := cs.fetches.Load(); n != 2 {
			t.Fatalf("%d fetches after a second flood a minute later, want 2", n)
		}
		// The known key still verifies without fetching.
		if _, err := v.Verify(ctx, cs.valid(t, clock.Now())); err != nil {
			t.Fatal(err)
		}
		if n := cs.fetches.Load(); n != 2 {
			t.Errorf("%d fetches, want 2", n)
		}
	})

	t.Run("a rotated key is picked up by the refetch", func(t *testing.T) {
		cs := newCertServer(t)
		clock := webhooktest.NewClock()
		v := newVerifier(t, cs, clock)
		if _, err := v.Verify(context.Background(), cs.valid(t, clock.Now())); err != nil {
			t.Fatal(err)
		}
		cs.setKeys(t, map[string]string{testKid: validCert(t, 0), "key-2": validCert(t, 1)})
		clock.Advance(DefaultRefetchInterval)
		tok := mint(t, jwt.SigningMethodRS256, rsaKey(t, 1), "key-2", cs.claims(clock.Now()))
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("token of the new key: %v", err)
		}
	})
}

func TestBadSignatureIsRefused(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "signed with another key under the known kid", reason: ReasonBadSignature, token: func(t *testing.T, h *harness) string {
			return mint(t, jwt.SigningMethodRS256, rsaKey(t, 1), testKid, h.certs.claims(h.clock.Now()))
		}},
		{name: "signature stripped", reason: ReasonBadSignature, token: func(t *testing.T, h *harness) string {
			good := h.certs.valid(t, h.clock.Now())
			return good[:strings.LastIndex(good, ".")+1]
		}},
		{name: "signature of another token", reason: ReasonBadSignature, token: func(t *testing.T, h *harness) string {
			c := h.certs.claims(h.clock.Now())
			c["sub"] = "E-OTHER"
			other := mint(t, jwt.SigningMethodRS256, rsaKey(t, 0), testKid, c)
			good := h.certs.valid(t, h.clock.Now())
			return good[:strings.LastIndex(good, ".")] + other[strings.LastIndex(other, "."):]
		}},
	})
}

func TestTamperedClaimsAreRefused(t *testing.T) {
	tamper := func(edit func(c map[string]any)) func(*testing.T, *harness) string {
		return func(t *testing.T, h *harness) string {
			parts := strings.Split(h.certs.valid(t, h.clock.Now()), ".")
			raw, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var c map[string]any
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			edit(c)
			b, _ := json.Marshal(c)
			parts[1] = base64.RawURLEncoding.EncodeToString(b)
			return strings.Join(parts, ".")
		}
	}
	runRefusals(t, []refusalCase{
		{name: "another account", reason: ReasonBadSignature, token: tamper(func(c map[string]any) { c["sub"] = "E-VICTIM" })},
		{name: "lifetime extended", reason: ReasonBadSignature, token: tamper(func(c map[string]any) { c["exp"] = c["exp"].(float64) + 3600 })},
		{name: "roles added", reason: ReasonBadSignature, token: tamper(func(c map[string]any) { c["google"] = map[string]any{"roles": []string{"owner"}} })},
		{name: "kid swapped in the header", reason: ReasonUnknownKid, token: func(t *testing.T, h *harness) string {
			parts := strings.Split(h.certs.valid(t, h.clock.Now()), ".")
			parts[0] = b64(`{"alg":"RS256","kid":"key-9","typ":"JWT"}`)
			return strings.Join(parts, ".")
		}},
		{name: "padding appended", reason: ReasonMalformed, token: func(t *testing.T, h *harness) string {
			parts := strings.Split(h.certs.valid(t, h.clock.Now()), ".")
			parts[1] += "=="
			return strings.Join(parts, ".")
		}},
	})
}

func TestLongLivedTokenIsRefused(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "an hour", reason: ReasonLongLived, token: withClaims(func(c jwt.MapClaims) { c["exp"] = c["iat"].(int64) + 3600 })},
		{name: "a minute over five", reason: ReasonLongLived, token: withClaims(func(c jwt.MapClaims) { c["exp"] = c["iat"].(int64) + 360 })},
	})
}

func TestMalformedTokenIsRefused(t *testing.T) {
	runRefusals(t, []refusalCase{
		{name: "garbage", reason: ReasonMalformed, token: func(*testing.T, *harness) string { return "not-a-jwt" }},
		{name: "empty", reason: ReasonMissingToken, token: func(*testing.T, *harness) string { return "" }},
		{name: "too long", reason: ReasonMalformed, token: func(*testing.T, *harness) string { return strings.Repeat("a", MaxTokenBytes+1) }},
		{name: "critical header", reason: ReasonMalformed, token: func(t *testing.T, h *harness) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, h.certs.claims(h.clock.Now()))
			tok.Header["kid"] = testKid
			tok.Header["crit"] = []string{"exp"}
			s, err := tok.SignedString(rsaKey(t, 0))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{name: "sub is a path", reason: ReasonBadSubject, token: withClaims(func(c jwt.MapClaims) { c["sub"] = "../../accounts/x" })},
		{name: "sub is the broadcast subject", reason: ReasonBadSubject, token: withClaims(func(c jwt.MapClaims) { c["sub"] = "*" })},
		{name: "no sub", reason: ReasonMissingClaim, token: withClaims(func(c jwt.MapClaims) { delete(c, "sub") })},
		{name: "exp is a string", reason: ReasonMalformed, token: withClaims(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })},
	})
}

func TestExpiredCertificateIsRefused(t *testing.T) {
	h := newHarness(t, nil)
	h.certs.setKeys(t, map[string]string{testKid: certPEM(t, rsaKey(t, 0), webhooktest.Epoch.Add(-60*24*time.Hour), webhooktest.Epoch.Add(-time.Hour))})
	h.assertRefused(t, h.post(h.certs.valid(t, h.clock.Now()), nil), http.StatusUnauthorized, ReasonKeyNotValid)
}

func TestIssuerDownIs503AndNotHammered(t *testing.T) {
	h := newHarness(t, nil)
	h.certs.setStatus(http.StatusInternalServerError)
	for range 5 {
		w := h.post(h.certs.valid(t, h.clock.Now()), nil)
		h.assertRefused(t, w, http.StatusServiceUnavailable, ReasonKeysUnavailable)
		if w.Header().Get("Retry-After") == "" {
			t.Error("no Retry-After on 503")
		}
	}
	if n := h.certs.fetches.Load(); n != 1 {
		t.Errorf("%d fetches while the issuer is down, want 1 a minute", n)
	}
	h.certs.setStatus(http.StatusOK)
	h.clock.Advance(DefaultRefetchInterval)
	if w := h.post(h.certs.valid(t, h.clock.Now()), nil); w.Code != http.StatusOK {
		t.Errorf("after the issuer recovered: %d %s, want 200", w.Code, w.Body.String())
	}
}

func TestHostileKeysResponseIsRefused(t *testing.T) {
	good := validCert(t, 0)
	many := map[string]string{}
	for i := range DefaultMaxKeys + 1 {
		many[fmt.Sprintf("k%d", i)] = good
	}
	manyJSON, _ := json.Marshal(many)
	tests := []struct{ name, body string }{
		{"oversize", `{"` + testKid + `":"` + strings.Repeat("A", DefaultMaxKeysBytes) + `"}`},
		{"too many keys", string(manyJSON)},
		{"duplicate kid", `{"` + testKid + `":` + jsonString(good) + `,"` + testKid + `":` + jsonString(good) + `}`},
		{"not an object", `["x"]`},
		{"not a certificate", `{"` + testKid + `":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}`},
		{"small RSA key", `{"` + testKid + `":` + jsonString(smallKeyCert(t)) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.certs.setBody(tt.body)
			h.assertRefused(t, h.post(h.certs.valid(t, h.clock.Now()), nil), http.StatusServiceUnavailable, ReasonKeysUnavailable)
		})
	}
	t.Run("unusable entries are skipped", func(t *testing.T) {
		h := newHarness(t, nil)
		h.certs.setBody(`{"bad":"junk","` + testKid + `":` + jsonString(good) + `}`)
		if w := h.post(h.certs.valid(t, h.clock.Now()), nil); w.Code != http.StatusOK {
			t.Errorf("status %d %s, want 200", w.Code, w.Body.String())
		}
	})
}

func TestKeysCachedUntilExpiry(t *testing.T) {
	cs := newCertServer(t)
	clock := webhooktest.NewClock()
	v := newVerifier(t, cs, clock)
	verify := func() {
		t.Helper()
		if _, err := v.Verify(context.Background(), cs.valid(t, clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		verify()
	}
	if n := cs.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for 10 tokens, want 1", n)
	}
	clock.Advance(59 * time.Minute)
	verify()
	if n := cs.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches within max-age, want 1", n)
	}
	clock.Advance(time.Minute)
	verify()
	if n := cs.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches once max-age passed, want 2", n)
	}

	t.Run("no-cache is fetched at most once per refetch interval", func(t *testing.T) {
		cs := newCertServer(t)
		cs.setHeader(http.Header{"Cache-Control": {"no-cache, no-store"}})
		clock := webhooktest.NewClock()
		v := newVerifier(t, cs, clock)
		for range 10 {
			if _, err := v.Verify(context.Background(), cs.valid(t, clock.Now())); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Second)
		}
		if n := cs.fetches.Load(); n != 1 {
			t.Errorf("%d fetches in ten seconds of no-cache keys, want 1", n)
		}
	})
}

func TestKeysTTLFromHeaders(t *testing.T) {
	now := webhooktest.Epoch
	s := &keySet{interval: DefaultRefetchInterval}
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"max-age", http.Header{"Cache-Control": {"public, max-age=20000, must-revalidate, no-transform"}}, 20000 * time.Second},
		{"max-age less age", http.Header{"Cache-Control": {"max-age=3600"}, "Age": {"600"}}, 3000 * time.Second},
		{"no-cache is floored at the refetch interval", http.Header{"Cache-Control": {"no-cache"}}, DefaultRefetchInterval},
		{"max-age=0 is floored", http.Header{"Cache-Control": {"max-age=0"}}, DefaultRefetchInterval},
		{"huge max-age is capped", http.Header{"Cache-Control": {"max-age=99999999999"}}, MaxKeysTTL},
		{"bad max-age", http.Header{"Cache-Control": {"max-age=soon"}}, DefaultRefetchInterval},
		{"expires less date", http.Header{"Expires": {now.Add(2 * time.Hour).Format(http.TimeFormat)}, "Date": {now.Format(http.TimeFormat)}}, 2 * time.Hour},
		{"expires in the past", http.Header{"Expires": {now.Add(-time.Hour).Format(http.TimeFormat)}}, DefaultRefetchInterval},
		{"invalid expires", http.Header{"Expires": {"0"}}, DefaultRefetchInterval},
		{"max-age wins over expires", http.Header{"Cache-Control": {"max-age=600"}, "Expires": {now.Add(5 * time.Hour).Format(http.TimeFormat)}}, 10 * time.Minute},
		{"nothing", http.Header{}, DefaultKeysTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.ttl(tt.header, now); got != tt.want {
				t.Errorf("ttl = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestVerifyReturnsClaims(t *testing.T) {
	cs := newCertServer(t)
	clock := webhooktest.NewClock()
	c, err := newVerifier(t, cs, clock).Verify(context.Background(), cs.valid(t, clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Account != testAccount || c.TokenID != "tok-1" || !c.IssuedAt.Equal(clock.Now()) || !c.ExpiresAt.Equal(clock.Now().Add(5*time.Minute)) ||
		len(c.Roles) != 1 || c.Roles[0] != "account_admin" || c.UserIdentity != "1234567890" {
		t.Errorf("claims %+v", c)
	}
}

func TestNewVerifierRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    VerifierOptions
	}{
		{"no audience", VerifierOptions{}},
		{"relative issuer", VerifierOptions{Audience: "a", Issuer: "/keys"}},
		{"file issuer", VerifierOptions{Audience: "a", Issuer: "file:///etc/passwd"}},
		{"issuer with credentials", VerifierOptions{Audience: "a", Issuer: "https://u:p@example.com/keys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewVerifier(tt.o); err == nil {
				t.Error("NewVerifier accepted bad options")
			}
		})
	}
	v, err := NewVerifier(VerifierOptions{Audience: "a"})
	if err != nil || v.issuer != GoogleIssuer {
		t.Errorf("default issuer: %v %v", v, err)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestHangingIssuerIsCutOff(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	clock := webhooktest.NewClock()
	v, err := NewVerifier(VerifierOptions{
		Audience: testAudience, Issuer: srv.URL + "/keys", HTTPClient: srv.Client(), Now: clock.Now,
		Logger: slog.New(slog.DiscardHandler), FetchTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.MapClaims{"iss": srv.URL + "/keys", "aud": testAudience, "sub": testAccount, "iat": clock.Now().Unix(), "exp": clock.Now().Add(5 * time.Minute).Unix()}
	_, err = v.Verify(context.Background(), mint(t, jwt.SigningMethodRS256, rsaKey(t, 0), testKid, c))
	wantReason(t, err, ReasonKeysUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the fetch cut off by its deadline", err)
	}
}
