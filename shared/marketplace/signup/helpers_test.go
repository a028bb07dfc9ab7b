package signup

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

const (
	testAudience = "saas.example.com"
	testProvider = "acme-provider"
	testKid      = "key-1"
	testAccount  = "E-1234-ABCD"
)

var (
	keysOnce sync.Once
	testKeys [2]*rsa.PrivateKey
)

// rsaKey returns one of two RSA test keys, generated once per test binary.
func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keysOnce.Do(func() {
		for j := range testKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testKeys[j] = k
		}
	})
	return testKeys[i]
}

// certPEM returns a self-signed certificate of k valid from notBefore to
// notAfter.
func certPEM(t testing.TB, k *rsa.PrivateKey, notBefore, notAfter time.Time) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cloud-commerce-partner test"},
		NotBefore: notBefore, NotAfter: notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// certServer serves the issuer's keys and counts the fetches.
type certServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	body    string
	status  int
	header  http.Header
}

// newCertServer starts a certServer publishing key 0 as testKid, valid
// around webhooktest.Epoch, with Cache-Control max-age=3600.
func newCertServer(t testing.TB) *certServer {
	t.Helper()
	cs := &certServer{status: http.StatusOK, header: http.Header{"Cache-Control": {"public, max-age=3600, must-revalidate"}}}
	cs.setKeys(t, map[string]string{testKid: validCert(t, 0)})
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.fetches.Add(1)
		cs.mu.Lock()
		defer cs.mu.Unlock()
		for k, v := range cs.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(cs.status)
		_, _ = io.WriteString(w, cs.body)
	}))
	t.Cleanup(cs.Close)
	return cs
}

// validCert is a certificate of test key i valid around the test epoch.
func validCert(t testing.TB, i int) string {
	return certPEM(t, rsaKey(t, i), webhooktest.Epoch.Add(-24*time.Hour), webhooktest.Epoch.Add(30*24*time.Hour))
}

func (cs *certServer) setKeys(t testing.TB, keys map[string]string) {
	b, err := json.Marshal(keys)
	if err != nil {
		t.Fatal(err)
	}
	cs.setBody(string(b))
}

func (cs *certServer) setBody(b string) {
	cs.mu.Lock()
	cs.body = b
	cs.mu.Unlock()
}

func (cs *certServer) setStatus(s int) {
	cs.mu.Lock()
	cs.status = s
	cs.mu.Unlock()
}

func (cs *certServer) setHeader(h http.Header) {
	cs.mu.Lock()
	cs.header = h
	cs.mu.Unlock()
}

// issuer is the iss of the test tokens and the URL of their keys.
func (cs *certServer) issuer() string {
	return cs.URL + "/robot/v1/metadata/x509/cloud-commerce-partner@system.gserviceaccount.com"
}

// claims returns valid claims for account, issued now by cs.
func (cs *certServer) claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": cs.issuer(), "aud": testAudience, "sub": testAccount,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "tok-1",
		"google": map[string]any{"roles": []string{"account_admin"}, "user_identity": "1234567890"},
	}
}

// mint signs claims with method and key, naming kid when it is not empty.
func mint(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// valid mints a valid token at now.
func (cs *certServer) valid(t testing.TB, now time.Time) string {
	return mint(t, jwt.SigningMethodRS256, rsaKey(t, 0), testKid, cs.claims(now))
}

// fakeAccounts is an in-memory Accounts that can fail.
type fakeAccounts struct {
	mu    sync.Mutex
	links map[string]marketplace.Link
	calls int
	err   error
}

func (a *fakeAccounts) Link(ctx context.Context, account, source string) (marketplace.Link, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.err != nil {
		return marketplace.Link{}, a.err
	}
	if a.links == nil {
		a.links = map[string]marketplace.Link{}
	}
	if l, ok := a.links[account]; ok {
		return l, nil
	}
	l := marketplace.Link{Account: account, Tenant: marketplace.DefaultTenant(account), Source: source, CreatedAt: webhooktest.Epoch}
	a.links[account] = l
	return l, nil
}

func (a *fakeAccounts) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.links)
}

// harness is a Server with its fakes.
type harness struct {
	certs    *certServer
	clock    *webhooktest.Clock
	accounts *fakeAccounts
	pub      *webhooktest.Publisher
	topics   topic.Names
	srv      *Server
}

func newHarness(t testing.TB, edit func(*Options)) *harness {
	t.Helper()
	h := &harness{certs: newCertServer(t), clock: webhooktest.NewClock(), accounts: &fakeAccounts{}, pub: &webhooktest.Publisher{}, topics: topic.Names{Prefix: "t-"}}
	o := Options{
		Audience: testAudience, Issuer: h.certs.issuer(), HTTPClient: h.certs.Client(),
		Accounts: h.accounts, Publisher: h.pub, Topics: h.topics, Provider: testProvider,
		Now: h.clock.Now, Logger: slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	return h
}

// post posts token as the form field and returns the answer.
func (h *harness) post(token string, header http.Header) *httptest.ResponseRecorder {
	form := url.Values{TokenField: {token}}.Encode()
	r := httptest.NewRequest(http.MethodPost, "/signup", strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.srv.ServeHTTP(w, r)
	return w
}

// published returns the events published to the customer_account topic.
func (h *harness) published(t testing.TB) []governor.Event {
	t.Helper()
	var out []governor.Event
	for _, m := range h.pub.On(h.topics.Domain(governor.CustomerAccount)) {
		ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
		if err != nil {
			t.Fatalf("published message does not decode: %v", err)
		}
		if m.OrderingKey != ev.Tenant {
			t.Errorf("ordering key %q, want the tenant %q", m.OrderingKey, ev.Tenant)
		}
		out = append(out, ev)
	}
	return out
}

// assertRefused checks a 401 with reason that wrote nothing.
func (h *harness) assertRefused(t testing.TB, w *httptest.ResponseRecorder, status int, reason Reason) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d (%s), want %d", w.Code, w.Body.String(), status)
	}
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	if body.Error.Code != string(reason) || body.Error.Message == "" {
		t.Errorf("error %+v, want code %s with a message", body.Error, reason)
	}
	if n := h.accounts.count(); n != 0 {
		t.Errorf("%d links written, want none", n)
	}
	if evs := h.published(t); len(evs) != 0 {
		t.Errorf("%d events published, want none", len(evs))
	}
}

// newVerifier returns a Verifier of cs's tokens on clock.
func newVerifier(t testing.TB, cs *certServer, clock *webhooktest.Clock) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierOptions{Audience: testAudience, Issuer: cs.issuer(), HTTPClient: cs.Client(), Now: clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantReason checks that err is an *Error with reason.
func wantReason(t testing.TB, err error, reason Reason) {
	t.Helper()
	if got := ReasonOf(err); got != reason {
		t.Errorf("reason %q (%v), want %q", got, err, reason)
	}
}

// jwtRS256 is the signing method of Marketplace tokens.
var jwtRS256 = jwt.SigningMethodRS256
