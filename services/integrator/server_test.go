package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/services/integrator/integratorenv"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/ledger/memledger"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newServer returns a server on st whose integrator is named holder and
// admits the receipts the governors stored in gov.
func newServer(t *testing.T, st ledger.Store, gov ledger.ReceiptWitness, holder string) (*server, *httptest.Server) {
	t.Helper()
	skey, _, err := ledger.GenerateKey("autonomics.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	return newServerWithKey(t, st, gov, holder, skey)
}

func newServerWithKey(t *testing.T, st ledger.Store, gov ledger.ReceiptWitness, holder, skey string) (*server, *httptest.Server) {
	t.Helper()
	signer, vkey, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{store: st, verifierKey: vkey, log: quiet, clock: time.Now}
	s.integrator, err = ledger.NewIntegrator(ledger.IntegratorOptions{
		Store: st, Witness: gov, Signer: signer, VerifierKey: vkey, Holder: holder, Logger: quiet, Observe: s.observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.handler())
	t.Cleanup(hs.Close)
	return s, hs
}

func post(t *testing.T, hs *httptest.Server, path string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(hs.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func get(t *testing.T, hs *httptest.Server, path string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(hs.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failingStore fails every AddPending as unavailable.
type failingStore struct{ ledger.Store }

func (failingStore) AddPending(context.Context, []ledger.Entry) (int, error) {
	return 0, fault.Errorf(fault.Unavailable, "test", "firestore is down")
}

func TestPush(t *testing.T) {
	st, gov := memledger.New(), memstore.New()
	_, hs := newServer(t, st, gov, "a")
	_, down := newServer(t, failingStore{st}, gov, "b")
	tests := []struct {
		name       string
		srv        *httptest.Server
		body       []byte
		wantCode   int
		wantStatus string
	}{
		{"receipt", hs, fixture(t, "push_receipt.json"), http.StatusOK, "pending"},
		{"same receipt again", hs, fixture(t, "push_receipt.json"), http.StatusOK, "duplicate"},
		{"receipt whose hash does not match", hs, fixture(t, "push_tampered_receipt.json"), http.StatusOK, "refused"},
		{"message that is not a receipt", hs, fixture(t, "push_not_a_receipt.json"), http.StatusOK, "refused"},
		{"body that is not a push", hs, []byte(`{"hello":`), http.StatusOK, "refused"},
		{"storage down", down, event.PushBody(receiptJSON(t, "down"), nil, "9"), http.StatusServiceUnavailable, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, tc.srv, "/v1/receipts/push", tc.body)
			var res pushResult
			if err := json.Unmarshal(body, &res); err != nil {
				t.Fatalf("POST /v1/receipts/push: %v in %s", err, body)
			}
			if code != tc.wantCode || res.Status != tc.wantStatus {
				t.Errorf("POST /v1/receipts/push (%s) = %d %s, want %d with status %q", tc.name, code, body, tc.wantCode, tc.wantStatus)
			}
		})
	}
	pending, err := st.Pending(t.Context(), 0)
	if err != nil || len(pending) != 1 {
		t.Fatalf("Pending() = %d entries, %v; want the one receipt", len(pending), err)
	}
	code, _, body := get(t, hs, "/v1/stats")
	var stats map[string]int64
	if err := json.Unmarshal(body, &stats); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/stats = %d %s", code, body)
	}
	if stats["receipts_accepted"] != 1 || stats["receipts_duplicate"] != 1 || stats["receipts_refused"] != 3 {
		t.Errorf("GET /v1/stats = %v, want 1 accepted, 1 duplicate, 3 refused", stats)
	}
}

// commitChain commits n decisions on one instance of gov, as the engine
// does, and returns their receipts.
func commitChain(t *testing.T, gov store.Store, k governor.Key, n int) []receipt.Receipt {
	t.Helper()
	var out []receipt.Receipt
	for i := range n {
		err := gov.RunTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			inst, err := tx.Instance(k)
			if err != nil {
				return err
			}
			ev := governor.Event{ID: fmt.Sprintf("ev-%d-%d", i, rand.Uint32()), Source: "//test", Type: governor.TypeOf(k.Domain, "usage_recorded"),
				Domain: k.Domain, Name: "usage_recorded", Tenant: k.Tenant, Subject: k.Subject, Data: []byte(`{"quantity":1}`)}
			r := receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: inst.State, To: "open"}, time.Now())
			out = append(out[:i], r)
			inst.State, inst.Version, inst.LastHash = "open", r.Seq, r.Hash
			return tx.Write(store.Changes{Instance: inst, Receipt: r})
		})
		if err != nil {
			t.Fatalf("commit %s decision %d: %v", k, i, err)
		}
	}
	return out
}

// receiptJSON returns the JSON of a fresh receipt of event id.
func receiptJSON(t *testing.T, id string) []byte {
	t.Helper()
	k := governor.Key{Tenant: "acme", Domain: governor.QuotaSLA, Subject: "api_calls"}
	ev := governor.Event{ID: id, Source: "//test", Type: "autonomics.quota_sla.usage_reported", Domain: k.Domain,
		Name: "usage_reported", Tenant: k.Tenant, Subject: k.Subject, Data: []byte(`{"usage":1}`)}
	r := receipt.New(governor.Instance{Key: k, State: governor.StateNone}, ev,
		governor.Decision{Outcome: governor.Rejected, Reason: string(governor.ReasonNoTransition)}, time.Now())
	return r.JSON()
}

func TestIntegrateAndCheckpoint(t *testing.T) {
	st, gov := memledger.New(), memstore.New()
	s, hs := newServer(t, st, gov, "a")
	if code, _, body := get(t, hs, "/v1/checkpoint"); code != http.StatusNotFound {
		t.Errorf("GET /v1/checkpoint before any integration = %d %s, want 404", code, body)
	}
	k := governor.Key{Tenant: "acme", Domain: governor.QuotaSLA, Subject: "api_calls"}
	for i, r := range commitChain(t, gov, k, 25) {
		if code, body := post(t, hs, "/v1/receipts/push", event.PushBody(r.JSON(), nil, "m")); code != http.StatusOK {
			t.Fatalf("push %d = %d %s", i, code, body)
		}
	}
	code, body := post(t, hs, "/v1/integrate", nil)
	var res integrateResult
	if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK {
		t.Fatalf("POST /v1/integrate = %d %s", code, body)
	}
	if !res.Held || res.Holder != "a" || res.Integrated != 25 || res.Size != 25 {
		t.Errorf("POST /v1/integrate = %+v, want 25 receipts integrated by a", res)
	}
	code, ctype, note := get(t, hs, "/v1/checkpoint")
	if code != http.StatusOK || ctype != "text/plain; charset=utf-8" {
		t.Fatalf("GET /v1/checkpoint = %d %q", code, ctype)
	}
	_, _, key := get(t, hs, "/v1/checkpoint/key")
	v, err := ledger.NewVerifier(string(key))
	if err != nil {
		t.Fatalf("GET /v1/checkpoint/key = %q: %v", key, err)
	}
	cp, err := ledger.OpenCheckpoint(note, v)
	if err != nil || cp.Size != 25 {
		t.Errorf("OpenCheckpoint(GET /v1/checkpoint) = %v, %v; want a checkpoint of size 25", cp, err)
	}
	if got := s.stats.Integrated.Load(); got != 25 {
		t.Errorf("integrated counter = %d, want 25", got)
	}
	// Another instance finds the lease taken and does nothing.
	_, other := newServer(t, st, gov, "b")
	code, body = post(t, other, "/v1/integrate", nil)
	res = integrateResult{}
	if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK || res.Held || res.Holder != "a" {
		t.Errorf("POST /v1/integrate on a second instance = %d %s, want the lease held by a", code, body)
	}
}

func TestIntegrateForeignLog(t *testing.T) {
	st, gov := memledger.New(), memstore.New()
	_, hs := newServer(t, st, gov, "a")
	if code, body := post(t, hs, "/v1/integrate", nil); code != http.StatusOK {
		t.Fatalf("POST /v1/integrate = %d %s", code, body)
	}
	if err := st.ReleaseLease(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	skey, _, err := ledger.GenerateKey("other.example/ledger")
	if err != nil {
		t.Fatal(err)
	}
	_, foreign := newServerWithKey(t, st, gov, "b", skey)
	code, body := post(t, foreign, "/v1/integrate", nil)
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil || code != http.StatusConflict || !strings.Contains(e.Error.Message, "other.example/ledger") {
		t.Errorf("POST /v1/integrate with a key of another origin = %d %s, want 409 naming the origins", code, body)
	}
}

func TestLoadConfig(t *testing.T) {
	skey, vkey, err := ledger.GenerateKey("autonomics.example/ledger")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"/keys/ledger.key": skey + "\n"}
	readFile := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, errors.New("no such file")
	}
	base := map[string]string{"AUTONOMICS_PROJECT": "p"}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(config) bool
	}{
		{"key in env", map[string]string{integratorenv.SigningKey: skey}, "", func(c config) bool {
			return c.VerifierKey == vkey && c.Interval == DefaultInterval && c.Idle == DefaultInterval && c.BatchSize == ledger.DefaultBatchSize && c.Port == "8080" && c.Holder != ""
		}},
		{"key file", map[string]string{integratorenv.SigningKeyFile: "/keys/ledger.key", integratorenv.Interval: "0", integratorenv.Batch: "5000", integratorenv.LeaseTTL: "30s", integratorenv.HolderID: "h1", "PORT": "9000"}, "", func(c config) bool {
			return c.VerifierKey == vkey && c.Interval == 0 && c.BatchSize == 5000 && c.LeaseTTL == 30*time.Second && c.Holder == "h1" && c.Port == "9000"
		}},
		{"idle interval", map[string]string{integratorenv.SigningKey: skey, integratorenv.Interval: "200ms", integratorenv.IdleInterval: "4s"}, "", func(c config) bool {
			return c.Interval == 200*time.Millisecond && c.Idle == 4*time.Second
		}},
		{"bad idle interval", map[string]string{integratorenv.SigningKey: skey, integratorenv.IdleInterval: "often"}, integratorenv.IdleInterval, nil},
		{"idle interval beyond the lease", map[string]string{integratorenv.SigningKey: skey, integratorenv.IdleInterval: "6s"}, "lease TTL", nil},
		{"matching origin", map[string]string{integratorenv.SigningKey: skey, integratorenv.Origin: "autonomics.example/ledger"}, "", func(c config) bool { return c.Signer.Name() == "autonomics.example/ledger" }},
		{"no key", nil, integratorenv.SigningKey, nil},
		{"both keys", map[string]string{integratorenv.SigningKey: skey, integratorenv.SigningKeyFile: "/keys/ledger.key"}, "not both", nil},
		{"missing key file", map[string]string{integratorenv.SigningKeyFile: "/keys/none"}, "no such file", nil},
		{"verifier key instead of signer key", map[string]string{integratorenv.SigningKey: vkey}, "malformed signer key", nil},
		{"other origin", map[string]string{integratorenv.SigningKey: skey, integratorenv.Origin: "x.example/log"}, "named", nil},
		{"bad interval", map[string]string{integratorenv.SigningKey: skey, integratorenv.Interval: "-1s"}, integratorenv.Interval, nil},
		{"bad batch", map[string]string{integratorenv.SigningKey: skey, integratorenv.Batch: "0"}, integratorenv.Batch, nil},
		{"bad lease", map[string]string{integratorenv.SigningKey: skey, integratorenv.LeaseTTL: "soon"}, integratorenv.LeaseTTL, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				return base[k]
			}
			c, err := loadConfig(getenv, readFile)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("loadConfig(%v) = %v, want an error mentioning %q", tc.env, err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Errorf("loadConfig(%v) = %+v, %v", tc.env, c, err)
			}
		})
	}
}

func TestKeygen(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ledger.key")
	var out bytes.Buffer
	if err := run([]string{"-keygen", "-out", file, "-origin", "autonomics.test/keygen"}, &out); err != nil {
		t.Fatalf("run(-keygen) = %v", err)
	}
	skey, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(file)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	signer, vkey, err := ledger.NewSigner(string(skey))
	if err != nil || signer.Name() != "autonomics.test/keygen" || strings.TrimSpace(out.String()) != vkey {
		t.Errorf("run(-keygen) wrote %q and printed %q; want a signer named autonomics.test/keygen and its verifier key %q (%v)", skey, out.String(), vkey, err)
	}
	if err := run([]string{"-keygen", "-out", file}, io.Discard); err == nil {
		t.Errorf("run(-keygen) over an existing key = nil, want an error")
	}
	if err := run([]string{"-keygen", "-out", file, "-force"}, io.Discard); err != nil {
		t.Errorf("run(-keygen -force) = %v", err)
	}
	if err := run([]string{"-keygen"}, io.Discard); err == nil {
		t.Errorf("run(-keygen) without -out = nil, want an error")
	}
}

// TestIntegratorTruncatesEchoedIds sends ids of 120 KB where a receipt,
// a push or a path carries one: neither the answer nor the log repeats
// more than a few dozen bytes of any.
func TestIntegratorTruncatesEchoedIds(t *testing.T) {
	long := strings.Repeat("x", 120<<10)
	// echoed is more of an id than any message may repeat.
	echoed := strings.Repeat("x", 2*httpjson.MaxEcho+1)
	r := receipt.Receipt{}
	if err := json.Unmarshal(receiptJSON(t, "ev-long"), &r); err != nil {
		t.Fatal(err)
	}
	withHash := func(r receipt.Receipt) receipt.Receipt { r.Hash = r.ComputeHash(); return r }
	longTenant := r
	longTenant.TenantID = long // hash not recomputed: refused for its hash
	longExec := withHash(r)
	longExec.ExecutionID = long
	longExec = withHash(longExec) // intact, but too large for the log
	badHash := r
	badHash.Hash = long
	unknownMember := []byte(`{"` + long + `":1}`)
	tests := []struct {
		name string
		path string
		body []byte
		code int
	}{
		{"tenant id", "/v1/receipts/push", event.PushBody(longTenant.JSON(), nil, "1"), http.StatusOK},
		{"execution id", "/v1/receipts/push", event.PushBody(longExec.JSON(), nil, "2"), http.StatusOK},
		{"receipt hash", "/v1/receipts/push", event.PushBody(badHash.JSON(), nil, "3"), http.StatusOK},
		{"member name", "/v1/receipts/push", event.PushBody(unknownMember, nil, "4"), http.StatusOK},
		{"message id", "/v1/receipts/push", event.PushBody(r.JSON(), nil, long[:2000]), http.StatusOK},
		{"path", "/v1/" + long, nil, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			s, hs := newServer(t, memledger.New(), memstore.New(), "a")
			s.log = slog.New(slog.NewJSONHandler(logs, nil))
			code, body := post(t, hs, tc.path, tc.body)
			if code != tc.code {
				t.Errorf("POST %.40s… = %d %.200s, want %d", tc.path, code, body, tc.code)
			}
			if len(body) > 1024 || strings.Contains(string(body), echoed) {
				t.Errorf("POST %.40s… answered %d bytes: %.300s…; want the id truncated", tc.path, len(body), body)
			}
			if tc.code == http.StatusOK && !strings.Contains(string(body), `"refused"`) {
				t.Errorf("POST %.40s… = %s, want it refused", tc.path, body)
			}
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if len(line) > 2048 || strings.Contains(line, echoed) {
					t.Errorf("log line of %d bytes: %.300s…; want the id truncated", len(line), line)
				}
			}
		})
	}
}

// countingReader is an endless body that counts the bytes read from it.
type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	c.n += int64(len(p))
	return len(p), nil
}

// TestIntegratorCapsBody sends bodies beyond each route's cap: they are
// refused after reading at most the cap, and the connection is closed.
func TestIntegratorCapsBody(t *testing.T) {
	s, hs := newServer(t, memledger.New(), memstore.New(), "a")
	tests := []struct {
		name, path string
		limit      int64
		code       int
		want       string
	}{
		{"push", "/v1/receipts/push", maxPushBody, http.StatusOK, fmt.Sprintf(`"status":"refused","reason":"request body exceeds %d bytes"`, maxPushBody)},
		{"integrate", "/v1/integrate", maxControlBody, http.StatusBadRequest, fmt.Sprintf(`"message":"request body exceeds %d bytes"`, maxControlBody)},
		{"unknown route", "/v1/nothing", maxControlBody, http.StatusNotFound, `"not_found"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := &countingReader{}
			req := httptest.NewRequest(http.MethodPost, tc.path, body)
			rec := httptest.NewRecorder()
			s.handler().ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("POST %s with an endless body = %d %s, want %d with %s", tc.path, rec.Code, rec.Body, tc.code, tc.want)
			}
			if body.n > tc.limit+64<<10 {
				t.Errorf("POST %s read %d bytes of the body, want at most about %d", tc.path, body.n, tc.limit)
			}
			// Over HTTP, the server closes the connection rather than
			// read the rest.
			resp, err := http.Post(hs.URL+tc.path, "application/json", bytes.NewReader(make([]byte, 2*tc.limit+1)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code || (tc.code != http.StatusNotFound && !resp.Close) {
				t.Errorf("POST %s with %d bytes = %d, close %v; want %d and the connection closed", tc.path, 2*tc.limit+1, resp.StatusCode, resp.Close, tc.code)
			}
		})
	}
	// A push within the cap still works, padded up to it.
	push := event.PushBody(receiptJSON(t, "ev-capped"), nil, "1")
	padded := append(bytes.Repeat([]byte(" "), int(maxPushBody)-len(push)), push...)
	code, body := post(t, hs, "/v1/receipts/push", padded)
	if code != http.StatusOK || !strings.Contains(string(body), `"pending"`) {
		t.Errorf("POST /v1/receipts/push of %d bytes = %d %s, want pending", len(padded), code, body)
	}
}

// runLoop runs s's integration loop until the test ends and waits until
// its first pass is done.
func runLoop(t *testing.T, s *server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.integrator.Run(ctx, 5*time.Millisecond, 5*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for s.stats.Passes.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
}

// TestPushAnsweredAfterCommit: at the lease holder, a push is answered
// once its receipt is in a committed checkpoint, without a pending
// record; a push reaching another instance is recorded as pending, and
// the holder integrates it.
func TestPushAnsweredAfterCommit(t *testing.T) {
	st, gov := memledger.New(), memstore.New()
	a, hs := newServer(t, st, gov, "a")
	runLoop(t, a)
	b, other := newServer(t, st, gov, "b")
	runLoop(t, b)
	k := governor.Key{Tenant: "acme", Domain: governor.QuotaSLA, Subject: "api_calls"}
	rs := commitChain(t, gov, k, 21)
	forged := forgeAfter(rs[19], "open")
	results := make(chan string, len(rs))
	for _, r := range rs[:20] {
		go func() {
			code, body := post(t, hs, "/v1/receipts/push", event.PushBody(r.JSON(), nil, "m"))
			var res pushResult
			if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK {
				results <- fmt.Sprintf("%d %s", code, body)
				return
			}
			results <- res.Status
		}()
	}
	for range 20 {
		if got := <-results; got != "integrated" {
			t.Errorf("push at the lease holder = %s, want integrated", got)
		}
	}
	if pending, err := st.Pending(t.Context(), 0); err != nil || len(pending) != 0 {
		t.Errorf("Pending() after pushes at the holder = %d entries, %v; want none", len(pending), err)
	}
	if st, err := st.State(t.Context()); err != nil || st.Size != 20 {
		t.Errorf("State().Size = %d, %v; want 20 as soon as the pushes were answered", st.Size, err)
	}
	tests := []struct {
		name       string
		srv        *httptest.Server
		body       []byte
		wantStatus string
	}{
		{"receipt pushed again", hs, event.PushBody(rs[0].JSON(), nil, "m"), "duplicate"},
		{"receipt the governors did not store", hs, event.PushBody(forged.JSON(), nil, "m"), "refused"},
		{"receipt pushed to another instance", other, event.PushBody(rs[20].JSON(), nil, "m"), "pending"},
	}
	for _, tc := range tests {
		code, body := post(t, tc.srv, "/v1/receipts/push", tc.body)
		var res pushResult
		if err := json.Unmarshal(body, &res); err != nil || code != http.StatusOK || res.Status != tc.wantStatus {
			t.Errorf("POST /v1/receipts/push (%s) = %d %s, want 200 with status %q", tc.name, code, body, tc.wantStatus)
		}
	}
	for {
		if st, err := st.State(t.Context()); err == nil && st.Size == 21 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if got := a.stats.Forged.Load(); got != 1 {
		t.Errorf("forged counter = %d, want 1", got)
	}
}
