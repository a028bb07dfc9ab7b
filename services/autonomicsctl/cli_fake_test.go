package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/oauth2"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// testNow is the clock of the CLI tests.
var testNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// fakeConsole serves the console's JSON API from memory, with a real
// Merkle tree and a signed checkpoint over its receipts.
type fakeConsole struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux

	mu sync.Mutex
	// receipts are the stored receipts by tenant, in storage order; a test
	// may alter them after the tree was built (a tampered store).
	receipts  map[string][]receipt.Receipt
	governors map[string][]consoleGovernor
	tenants   []string
	// The ledger: leaves, stored hashes, index by receipt hash, the size
	// the checkpoint covers, the signer.
	leaves   [][]byte
	stored   []tlog.Hash
	index    map[string]int64
	size     int64
	signer   note.Signer
	key      string
	badProof map[string]bool
	// checkpointSigner, when set, signs the checkpoint instead of signer.
	checkpointSigner note.Signer

	events   []sendBody
	requests []string
	auth     []string
	silences []silenceCreate
	expired  []string
	replayed []string
	advanced []string
	// fail, when set, answers before the routes: a status or -1 to pass.
	fail func(r *http.Request) int
}

// newFakeConsole returns a console over tenants acme (two instances) and
// globex (one), every receipt integrated into the checkpoint's tree.
func newFakeConsole(t *testing.T) *fakeConsole {
	t.Helper()
	f := &fakeConsole{t: t, receipts: map[string][]receipt.Receipt{}, governors: map[string][]consoleGovernor{},
		index: map[string]int64{}, badProof: map[string]bool{}}
	skey, vkey, err := ledger.GenerateKey("console.test/log")
	if err != nil {
		t.Fatal(err)
	}
	if f.signer, _, err = ledger.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	f.key = vkey
	f.addChain("acme", governor.Subscription, "ent-1", 3)
	f.addChain("acme", governor.Billing, "2026-11", 2)
	f.addChain("globex", governor.CustomerAccount, "default", 1)
	f.tenants = []string{"acme", "globex"}
	f.size = int64(len(f.leaves))
	f.mux = http.NewServeMux()
	f.routes()
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// ServeHTTP records the request and serves it.
func (f *fakeConsole) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		if code := fail(r); code == http.StatusForbidden {
			w.WriteHeader(code)
			fmt.Fprint(w, `{"error":{"code":"permission_denied","message":"caller is not an invoker"}}`)
			return
		} else if code > 0 {
			httpjson.Error(w, fault.Errorf(codeOf(code), "console", "injected %d", code))
			return
		}
	}
	f.mux.ServeHTTP(w, r)
}

func codeOf(status int) fault.Code {
	switch status {
	case 404:
		return fault.NotFound
	case 400:
		return fault.Invalid
	case 409:
		return fault.Conflict
	}
	return fault.Unavailable
}

// addChain appends a chain of n receipts of one instance, integrating
// them into the tree.
func (f *fakeConsole) addChain(tenant string, d governor.Domain, subject string, n int) {
	inst := governor.Instance{Key: governor.Key{Tenant: tenant, Domain: d, Subject: subject}}
	for i := 0; i < n; i++ {
		ev := governor.Event{ID: fmt.Sprintf("ev-%s-%s-%d", tenant, subject, i), Source: "console/ops@example.com",
			Type: governor.TypeOf(d, "touched"), Domain: d, Name: "touched", Tenant: tenant, Subject: subject, Data: json.RawMessage(`{}`)}
		var emits []governor.Emit
		if i == 0 {
			emits = []governor.Emit{{Kind: governor.KindActuate, Type: "tenant.provision", Domain: d, Subject: subject}}
		}
		dec := governor.Decision{Outcome: governor.Accepted, From: inst.State, To: "active", Emits: emits}
		r := receipt.New(inst, ev, dec, testNow.Add(time.Duration(len(f.leaves))*time.Minute))
		inst.Version, inst.LastHash, inst.State = r.Seq, r.Hash, "active"
		f.receipts[tenant] = append(f.receipts[tenant], r)
		f.integrate(r.JSON(), r.Hash)
	}
	f.governors[tenant] = append(f.governors[tenant], consoleGovernor{Domain: string(d), Subject: subject, State: "active",
		Version: inst.Version, Data: json.RawMessage(`{"plan":"gold"}`), UpdatedAt: testNow.Format(time.RFC3339Nano)})
}

func (f *fakeConsole) integrate(leaf []byte, hash string) {
	hs, err := tlog.StoredHashes(int64(len(f.leaves)), leaf, hashReader(f.stored))
	if err != nil {
		f.t.Fatal(err)
	}
	f.stored = append(f.stored, hs...)
	f.index[hash] = int64(len(f.leaves))
	f.leaves = append(f.leaves, leaf)
}

type hashReader []tlog.Hash

func (h hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(h)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = h[x]
	}
	return out, nil
}

// run runs the CLI against the fake with args (-url appended) and returns
// the exit code, stdout and stderr.
func (f *fakeConsole) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	args = append(args, "-url", f.srv.URL)
	return runTest(t, cliEnv{}, args...)
}

// runTest runs the CLI with env (stdout, stderr and the clock filled in).
// The ID token branch fails the test unless env supplies its own.
func runTest(t *testing.T, env cliEnv, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env.stdout, env.stderr = &out, &errb
	if env.now == nil {
		env.now = func() time.Time { return testNow }
	}
	if env.getenv == nil {
		env.getenv = func(string) string { return "" }
	}
	if env.tokenSource == nil {
		env.tokenSource = func(context.Context, string) (oauth2.TokenSource, error) {
			t.Errorf("an ID token was asked for")
			return nil, fmt.Errorf("no ID tokens in this test")
		}
	}
	if env.wait == nil {
		env.wait = func(time.Duration) time.Duration { return time.Millisecond }
	}
	code := runCLI(context.Background(), args, env)
	return code, out.String(), errb.String()
}

func (f *fakeConsole) routes() {
	m := f.mux
	m.HandleFunc("GET /api/v1/tenants", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		var out []string
		next := ""
		for _, t := range f.tenants {
			if !strings.HasPrefix(t, q.Get("prefix")) || t <= q.Get("after") {
				continue
			}
			if limit > 0 && len(out) == limit {
				next = out[len(out)-1]
				break
			}
			out = append(out, t)
		}
		if out == nil {
			out = []string{}
		}
		httpjson.Write(w, 200, map[string]any{"tenants": out, "next": next})
	})
	m.HandleFunc("GET /api/v1/tenants/{t}/governors", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		g, ok := f.governors[r.PathValue("t")]
		if !ok {
			httpjson.Error(w, fault.Errorf(fault.NotFound, "console", "tenant %s has no governors", r.PathValue("t")))
			return
		}
		httpjson.Write(w, 200, map[string]any{"tenant_id": r.PathValue("t"), "governors": g})
	})
	m.HandleFunc("GET /api/v1/tenants/{t}/receipts", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		rs := append([]receipt.Receipt(nil), f.receipts[r.PathValue("t")]...)
		f.mu.Unlock()
		q := r.URL.Query()
		if q.Get("order") == "newest" {
			for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
				rs[i], rs[j] = rs[j], rs[i]
			}
		}
		var sel []receipt.Receipt
		for _, x := range rs {
			if d := q.Get("domain"); d != "" && x.Domain != d {
				continue
			}
			if s := q.Get("since"); s != "" && x.DecidedAt < s {
				continue
			}
			sel = append(sel, x)
		}
		start, _ := strconv.Atoi(q.Get("page_token"))
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 {
			limit = 2
		}
		limit = min(limit, 2) // small pages, so that paging is exercised
		end := min(start+limit, len(sel))
		next := ""
		if end < len(sel) {
			next = strconv.Itoa(end)
		}
		page := sel[min(start, len(sel)):end]
		if page == nil {
			page = []receipt.Receipt{}
		}
		httpjson.Write(w, 200, map[string]any{"receipts": page, "next_page_token": next})
	})
	m.HandleFunc("GET /api/v1/checkpoint/key", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, f.key)
	})
	m.HandleFunc("GET /api/v1/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		root, err := tlog.TreeHash(f.size, hashReader(f.stored))
		if err != nil {
			f.t.Fatal(err)
		}
		s := f.signer
		if f.checkpointSigner != nil {
			s = f.checkpointSigner
		}
		signed, err := ledger.SignCheckpoint(ledger.Checkpoint{Origin: f.signer.Name(), Size: f.size, Root: root}, s)
		if err != nil {
			f.t.Fatal(err)
		}
		w.Write(signed)
	})
	m.HandleFunc("GET /api/v1/receipts/{hash}/proof", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		h := r.PathValue("hash")
		i, ok := f.index[h]
		size, _ := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
		if !ok || i >= size || size > f.size {
			httpjson.Error(w, fault.Errorf(fault.NotFound, "console", "receipt %s is pending integration", h))
			return
		}
		proof, err := tlog.ProveRecord(size, i, hashReader(f.stored))
		if err != nil {
			f.t.Fatal(err)
		}
		if f.badProof[h] && len(proof) > 0 {
			proof[0][0] ^= 0xff
		}
		root, _ := tlog.TreeHash(size, hashReader(f.stored))
		rec, err := receipt.Parse(f.leaves[i])
		if err != nil {
			f.t.Fatal(err)
		}
		httpjson.Write(w, 200, ledger.InclusionProof{Index: i, TreeSize: size, RootHash: root, ReceiptHash: h, Receipt: rec, Proof: proof})
	})
	m.HandleFunc("POST /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		var b sendBody
		if err := httpjson.Decode(w, r, 1<<20, &b); err != nil {
			httpjson.Error(w, err)
			return
		}
		f.mu.Lock()
		f.events = append(f.events, b)
		id := fmt.Sprintf("evt-%d", len(f.events))
		f.mu.Unlock()
		httpjson.Write(w, 200, map[string]string{"id": id})
	})
	m.HandleFunc("GET /api/v1/deadletters", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, 200, map[string]any{"deadletters": []consoleDeadLetter{{
			ID: "dl-1", ReceivedAt: testNow.Format(time.RFC3339), Reason: "may be sent by scheduler only", Code: "invalid",
			Domain: "subscription", Type: "autonomics.subscription.timeout.trial_end", Tenant: "acme", Replayable: false,
		}, {
			ID: "dl-2", ReceivedAt: testNow.Format(time.RFC3339), Reason: "transient", Code: "unavailable",
			Domain: "billing", Type: "autonomics.billing.payment_failed", Tenant: "globex", Replayable: true,
		}}, "next": ""})
	})
	m.HandleFunc("POST /api/v1/deadletters/{rest}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutSuffix(r.PathValue("rest"), ":replay")
		if !ok {
			httpjson.Error(w, fault.Errorf(fault.NotFound, "console", "no route"))
			return
		}
		if id == "dl-1" {
			httpjson.Error(w, fault.Errorf(fault.Conflict, "console", "dead letter dl-1 came from an internal topic: not replayable"))
			return
		}
		if id != "dl-2" {
			httpjson.Error(w, fault.Errorf(fault.NotFound, "console", "no dead letter %s", id))
			return
		}
		f.mu.Lock()
		f.replayed = append(f.replayed, id)
		f.mu.Unlock()
		httpjson.Write(w, 200, map[string]string{"published": "msg-77"})
	})
	m.HandleFunc("GET /api/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, 200, map[string]any{"alerts": []consoleAlert{{
			Fingerprint: "fp1", Policy: "dead_letters", Severity: "page", Labels: map[string]string{"domain": "billing", "tenant": "acme"},
			State: "firing", Reason: "3 dead letters in 5m", Value: 3, ActiveAt: "2026-11-20T11:00:00Z", FiredAt: "2026-11-20T11:05:00Z",
		}}})
	})
	m.HandleFunc("GET /api/v1/silences", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, 200, map[string]any{"silences": []consoleSilence{{ID: "s1", Matchers: map[string]string{"alertname": "dead_letters"},
			StartsAt: "2026-11-20T10:00:00Z", EndsAt: "2026-11-20T14:00:00Z", Comment: "deploy", Active: true}}})
	})
	m.HandleFunc("POST /api/v1/silences", func(w http.ResponseWriter, r *http.Request) {
		var b silenceCreate
		if err := httpjson.Decode(w, r, 1<<20, &b); err != nil {
			httpjson.Error(w, err)
			return
		}
		f.mu.Lock()
		f.silences = append(f.silences, b)
		f.mu.Unlock()
		httpjson.Write(w, 200, consoleSilence{ID: firstNonEmpty(b.ID, "sil-9"), Matchers: b.Matchers, EndsAt: b.EndsAt, Comment: b.Comment, Active: true})
	})
	m.HandleFunc("DELETE /api/v1/silences/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "s1" {
			httpjson.Error(w, fault.Errorf(fault.NotFound, "console", "no silence %s", r.PathValue("id")))
			return
		}
		f.mu.Lock()
		f.expired = append(f.expired, r.PathValue("id"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /api/v1/tenants/{t}/{action}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("action") != "clock:advance" {
			httpjson.Error(w, fault.Errorf(fault.NotFound, "console", "no route"))
			return
		}
		var b struct {
			To string `json:"to"`
		}
		if err := httpjson.Decode(w, r, 1<<10, &b); err != nil {
			httpjson.Error(w, err)
			return
		}
		f.mu.Lock()
		f.advanced = append(f.advanced, r.PathValue("t")+"@"+b.To)
		f.mu.Unlock()
		httpjson.Write(w, 200, map[string]any{"fired": []map[string]any{
			{"timer": "subscription/ent-1/trial_end", "due": "2026-11-21T12:00:00Z", "receipt": strings.Repeat("ab", 32)},
			{"timer": "subscription/ent-1/period_end", "due": "2026-11-22T00:00:00Z", "receipt": map[string]string{"hash": strings.Repeat("cd", 32)}},
		}})
	})
}
