package ingest_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"

	ps "cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ingest"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/topic"
)

// emulatorProject is this test process's project on the Pub/Sub
// emulator.
var emulatorProject = fmt.Sprintf("ingest-test-%08x", mrand.Uint32())

// Identities of the test producers.
const (
	testAudience = "https://ingest.autonomics.test"
	billingEmail = "billing@producers.iam.gserviceaccount.com"
	adapterEmail = "adapter@producers.iam.gserviceaccount.com"
	opsEmail     = "ops@producers.iam.gserviceaccount.com"
	strangerMail = "stranger@elsewhere.iam.gserviceaccount.com"
	billingKeyID = "billing-1"
	adapterKeyID = "adapter-1"
	signingKID   = "google-key-1"
)

// testRules are the producer rules of the tests: billing (external, both
// identities, some types, two tenants), adapter (marketplace) and ops
// (external, any tenant).
const testRules = `[
  {"name": "billing", "class": "external", "email": "` + billingEmail + `", "key_ids": ["` + billingKeyID + `"],
   "types": ["autonomics.billing.*", "autonomics.quota_sla.usage_reported"], "tenants": ["acme", "globex"]},
  {"name": "adapter", "class": "marketplace", "email": "` + adapterEmail + `", "key_ids": ["` + adapterKeyID + `"],
   "types": ["autonomics.entitlement.*", "autonomics.billing.*"], "tenants": ["*"]},
  {"name": "ops", "class": "external", "email": "` + opsEmail + `",
   "types": ["autonomics.multi_tenant.*", "autonomics.subscription.*", "autonomics.customer_account.*"], "tenants": ["*"]}
]`

// googleKeys stands in for Google's token signing keys: the key the JWKS
// server publishes and one it does not.
var googleKeys struct {
	once         sync.Once
	known, rogue *rsa.PrivateKey
	err          error
}

func signingKeys(t testing.TB) (known, rogue *rsa.PrivateKey) {
	t.Helper()
	googleKeys.once.Do(func() {
		if googleKeys.known, googleKeys.err = rsa.GenerateKey(rand.Reader, 2048); googleKeys.err == nil {
			googleKeys.rogue, googleKeys.err = rsa.GenerateKey(rand.Reader, 2048)
		}
	})
	if googleKeys.err != nil {
		t.Fatal(googleKeys.err)
	}
	return googleKeys.known, googleKeys.rogue
}

// jwksServer serves the known key as Google serves its certs.
func jwksServer(t testing.TB, key *rsa.PublicKey) *httptest.Server {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": signingKID,
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// certsTransport sends the requests idtoken makes for Google's certs to a
// local server, and refuses every other request: the tests have no
// network.
type certsTransport struct{ to *url.URL }

func (c certsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != "www.googleapis.com" || r.URL.Path != "/oauth2/v3/certs" {
		return nil, fmt.Errorf("test transport: no network for %s", r.URL)
	}
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = c.to.Scheme, c.to.Host
	r.Host = c.to.Host
	return http.DefaultTransport.RoundTrip(r)
}

// googleTokens returns the production verifier, idtoken's validator,
// fetching Google's certs from the local JWKS server.
func googleTokens(t testing.TB) *ingest.GoogleTokens {
	t.Helper()
	known, _ := signingKeys(t)
	u, _ := url.Parse(jwksServer(t, &known.PublicKey).URL)
	v, err := ingest.NewGoogleTokens(context.Background(), testAudience, option.WithHTTPClient(&http.Client{Transport: certsTransport{u}}))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// claims are an ID token's claims.
type claims map[string]any

// googleClaims are the claims of a valid token for email.
func googleClaims(email string) claims {
	now := time.Now()
	return claims{
		"iss": "https://accounts.google.com", "aud": testAudience, "azp": "1234567890",
		"sub": "1234567890", "email": email, "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// signToken signs claims as an RS256 JWT with key under kid.
func signToken(t testing.TB, key *rsa.PrivateKey, kid string, c claims) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid}) + "." + enc(c)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// pubsubClient returns a client of the emulator, or skips the test.
func pubsubClient(t testing.TB) *ps.Client {
	t.Helper()
	if os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		t.Skip("PUBSUB_EMULATOR_HOST is not set; start the emulator (make emulators) and export PUBSUB_EMULATOR_HOST=127.0.0.1:8781 to run the ingest API's tests")
	}
	c, err := ps.NewClient(context.Background(), emulatorProject)
	if err != nil {
		t.Fatalf("pubsub.NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fixture is the ingest API on a real HTTP server, publishing to the
// emulator under topics of its own.
type fixture struct {
	t       testing.TB
	client  *ps.Client
	names   topic.Names
	srv     *ingest.Server
	http    *httptest.Server
	keys    ingest.Keys
	subs    map[governor.Domain]string
	known   *rsa.PrivateKey
	rogue   *rsa.PrivateKey
	markers int

	mu         sync.Mutex
	received   []published
	decodeErrs []string
}

// fixtureOptions adjust a fixture.
type fixtureOptions struct {
	rules  string
	limits ingest.Limits
	clock  func() time.Time
	// noSubscriptions creates the topics only: what is published is not
	// kept (benchmarks).
	noSubscriptions bool
	// meter receives the API's metrics.
	meter metric.MeterProvider
}

// newFixture starts the API with the test rules and keys.
func newFixture(t testing.TB, fo fixtureOptions) *fixture {
	t.Helper()
	client := pubsubClient(t)
	f := &fixture{t: t, client: client, names: topic.Names{Prefix: fmt.Sprintf("t%08x-", mrand.Uint32())}, subs: map[governor.Domain]string{}}
	f.known, f.rogue = signingKeys(t)
	var topics []string
	var subs []pubsub.Subscription
	for _, d := range governor.Domains {
		tp := f.names.Domain(d)
		topics = append(topics, tp)
		f.subs[d] = tp + "-test"
		if !fo.noSubscriptions {
			subs = append(subs, pubsub.Subscription{Name: tp + "-test", Topic: tp, Ordered: true})
		}
	}
	if err := pubsub.Ensure(context.Background(), client, emulatorProject, topics, subs); err != nil {
		t.Fatalf("pubsub.Ensure: %v", err)
	}
	if !fo.noSubscriptions {
		f.receive()
	}
	if fo.rules == "" {
		fo.rules = testRules
	}
	rules, err := ingest.ParseRules([]byte(fo.rules), machines.New(nil))
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	f.keys = ingest.Keys{}
	for _, id := range rules.KeyIDs() {
		k := make([]byte, 32)
		rand.Read(k)
		f.keys[id] = k
	}
	pub := pubsub.NewPublisher(client, pubsub.PublisherOptions{DelayThreshold: time.Millisecond})
	t.Cleanup(pub.Close)
	opts := ingest.Options{
		Rules: rules, Keys: f.keys, Publisher: pub, Topics: f.names,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Limits: fo.limits, Clock: fo.clock,
		MeterProvider: fo.meter,
	}
	if slices.ContainsFunc(rules.Producers(), func(p *ingest.Producer) bool { return p.Email != "" }) {
		opts.Tokens = googleTokens(t)
	}
	if f.srv, err = ingest.New(opts); err != nil {
		t.Fatalf("ingest.New: %v", err)
	}
	f.http = httptest.NewServer(f.srv.Handler())
	t.Cleanup(f.http.Close)
	return f
}

// url returns the events endpoint.
func (f *fixture) url() string { return f.http.URL + "/v1/events" }

// token returns a valid ID token for email.
func (f *fixture) token(email string) string {
	return signToken(f.t, f.known, signingKID, googleClaims(email))
}

// answer is an HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// error returns the answer's error body.
func (a answer) error() ingest.ErrorBody {
	var e struct {
		Error ingest.ErrorBody `json:"error"`
	}
	json.Unmarshal(a.body, &e)
	return e.Error
}

// result returns a single event's answer.
func (a answer) result() ingest.Result {
	var r ingest.Result
	json.Unmarshal(a.body, &r)
	return r
}

// results returns a batch's answer.
func (a answer) results() []ingest.Result {
	var rs []ingest.Result
	if err := json.Unmarshal(a.body, &rs); err != nil {
		return nil
	}
	return rs
}

// do sends req and reads the answer.
func (f *fixture) do(req *http.Request) answer {
	f.t.Helper()
	resp, err := f.http.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// post sends body with headers.
func (f *fixture) post(h http.Header, body []byte) answer {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url(), bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return f.do(req)
}

// withToken returns headers carrying a valid ID token for email.
func (f *fixture) withToken(email string, h http.Header) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Authorization", "Bearer "+f.token(email))
	return h
}

// signedHeaders returns headers signing body with key id at ts under a
// fresh webhook id.
func (f *fixture) signedHeaders(keyID string, ts time.Time, body []byte, h http.Header) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	id := fmt.Sprintf("msg_%016x", mrand.Uint64())
	h.Set(ingest.HeaderWebhookID, id)
	h.Set(ingest.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(ingest.HeaderKeyID, keyID)
	h.Set(ingest.HeaderWebhookSignature, ingest.Sign(f.keys[keyID], id, ts.Unix(), body))
	return h
}

// structured returns the headers of a structured-mode body.
func structured() http.Header {
	return http.Header{"Content-Type": {ingest.StructuredContentType}}
}

// batch returns the headers of a batch body.
func batch() http.Header {
	return http.Header{"Content-Type": {ingest.BatchContentType}}
}

// ce is a structured event as a caller writes it.
type ce map[string]any

// usage returns a valid billing.usage_recorded event for tenant.
func usage(id, tenant string) ce {
	return ce{
		"specversion": "1.0", "id": id, "source": "billing-system", "type": "autonomics.billing.usage_recorded",
		"tenantid": tenant, "subject": "invoice-1", "data": map[string]any{"meter": "api_calls", "quantity": 3},
	}
}

// activated returns a valid entitlement.activated event (no data), which
// the Marketplace may send.
func activated(id, tenant string) ce {
	return ce{
		"specversion": "1.0", "id": id, "source": "marketplace-adapter", "type": "autonomics.entitlement.activated",
		"tenantid": tenant, "subject": "entitlement-1",
	}
}

// with returns a copy of e with the given members set (nil deletes).
func (e ce) with(kv ...any) ce {
	out := ce{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// json renders e.
func (e ce) json(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonArray renders events as a batch.
func jsonArray(t testing.TB, es ...ce) []byte {
	t.Helper()
	b, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// published is a message pulled back from the emulator, decoded by the
// governors' decoder.
type published struct {
	domain      governor.Domain
	ev          governor.Event
	orderingKey string
	attrs       map[string]string
}

// receive starts a receiver on every domain's subscription that keeps
// what arrives, decoded by the governors' decoder, until the test ends.
func (f *fixture) receive() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, d := range governor.Domains {
		sub := topic.SubscriptionName(emulatorProject, f.subs[d])
		wg.Go(func() {
			err := pubsub.Receive(ctx, f.client, sub, func(_ context.Context, m *ps.Message) {
				m.Ack()
				ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes, ID: m.ID, OrderingKey: m.OrderingKey})
				f.mu.Lock()
				defer f.mu.Unlock()
				if err != nil {
					f.decodeErrs = append(f.decodeErrs, fmt.Sprintf("%s: %v", sub, err))
				}
				f.received = append(f.received, published{domain: d, ev: ev, orderingKey: m.OrderingKey, attrs: m.Attributes})
			})
			if err != nil && ctx.Err() == nil {
				f.mu.Lock()
				f.decodeErrs = append(f.decodeErrs, fmt.Sprintf("receive %s: %v", sub, err))
				f.mu.Unlock()
			}
		})
	}
	f.t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, e := range f.decodeErrs {
			f.t.Errorf("a published message does not decode: %s", e)
		}
	})
}

// pull returns the messages received and not returned yet, once at least
// want are there or timeout passed.
func (f *fixture) pull(want int, timeout time.Duration) []published {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f.mu.Lock()
		n := len(f.received)
		if n >= want || !time.Now().Before(deadline) {
			out := f.received
			f.received = nil
			f.mu.Unlock()
			return out
		}
		f.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

// assertNothingPublished checks that the refused requests published
// nothing: it sends one valid marker event and expects it to be the only
// message on the eight domain topics.
func (f *fixture) assertNothingPublished() {
	f.t.Helper()
	f.markers++
	id := fmt.Sprintf("marker-%d", f.markers)
	a := f.post(f.withToken(billingEmail, structured()), usage(id, "acme").json(f.t))
	if a.status != http.StatusAccepted {
		f.t.Fatalf("marker event: %d %s", a.status, a.body)
	}
	var got []published
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		got = append(got, f.pull(1, time.Until(deadline))...)
		if slices.ContainsFunc(got, func(p published) bool { return p.ev.ID == id }) {
			break
		}
	}
	// Messages on other topics may be delivered a little later.
	time.Sleep(100 * time.Millisecond)
	got = append(got, f.pull(0, 0)...)
	if len(got) != 1 || got[0].ev.ID != id {
		var ids []string
		for _, p := range got {
			ids = append(ids, fmt.Sprintf("%s %s/%s", p.domain, p.ev.Source, p.ev.ID))
		}
		f.t.Errorf("the domain topics hold %q, want only the marker %s: a refused event was published", ids, id)
	}
}

// wantRefused checks that a holds an error with status and code whose
// message contains want.
func wantRefused(t testing.TB, a answer, status int, code fault.Code, want string) {
	t.Helper()
	e := a.error()
	if a.status != status || e.Code != string(code) || !strings.Contains(e.Message, want) {
		t.Errorf("answer %d %s, want %d with code %s and a message containing %q", a.status, a.body, status, code, want)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}
