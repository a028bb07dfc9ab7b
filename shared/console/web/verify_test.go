package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/mod/sumdb/note"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/ledger/memledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// The browser side of these tests is static/verify.js, loaded by
// testdata/verify/index.html in headless Chromium. The vectors come from the
// Go code: receipts from shared/receipt, a log from shared/ledger over
// memledger with a signed checkpoint and inclusion proofs, and canonical JSON
// from jsontext. Every verdict of verify.js is compared with what the Go
// verifiers say about the same evidence.

// chromiumPath returns the Chromium binary, skipping the test when there is
// none, unless CI=true, where a missing browser is a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("AUTONOMICS_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); set CI=true to fail instead")
	return ""
}

// verifyPage serves verify.js and the test page, and returns a browser tab
// that has loaded them.
func verifyPage(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	js, err := os.ReadFile(filepath.Join("static", "verify.js"))
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join("testdata", "verify", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /static/verify.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(js)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("open the test page: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.autonomicsVerify.verifyReceipts === "function"`)); err != nil {
		t.Fatalf("verify.js did not load: %v", err)
	}
	return ctx
}

// evalJS evaluates expr in the page, awaiting its promise, and decodes the
// result into a T.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.200s: %v", expr, err)
	}
	return v
}

// jsLiteral returns a JavaScript expression that evaluates to the JSON
// value v, parsed with JSON.parse as a page parses a fetched response.
func jsLiteral(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	s, err := json.Marshal(strings.TrimSpace(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return "JSON.parse(" + string(s) + ")"
}

// result is one answer of verifyReceipts.
type result struct {
	Hash    string `json:"hash"`
	OK      bool   `json:"ok"`
	Reason  string `json:"reason"`
	Problem string `json:"problem"`
}

// options are the options of verifyReceipts; Proofs is a map (or a
// function, with ProofsByFunction).
type options struct {
	Checkpoint string                     `json:"checkpoint,omitempty"`
	Key        string                     `json:"key,omitempty"`
	Proofs     map[string]json.RawMessage `json:"proofs,omitempty"`
	Ledger     *bool                      `json:"ledger,omitempty"`
	Partial    bool                       `json:"partial,omitempty"`
	After      []receipt.Receipt          `json:"after,omitempty"`
}

// verify calls verifyReceipts on receipts (receipt.Receipt, maps or raw
// JSON texts as strings) with opts.
func verify(t *testing.T, ctx context.Context, receipts []any, opts options) []result {
	t.Helper()
	expr := fmt.Sprintf(`window.autonomicsVerify.verifyReceipts(%s, %s)`, jsLiteral(t, receipts), jsLiteral(t, opts))
	out := evalJS[[]result](t, ctx, expr)
	if len(out) != len(receipts) {
		t.Fatalf("verifyReceipts returned %d results for %d receipts", len(out), len(receipts))
	}
	return out
}

var noLedger = func() *bool { f := false; return &f }()

// fixture is a ledger of real receipts with its signed checkpoint, key and
// inclusion proofs.
type fixture struct {
	// chains are instance chains from seq 1.
	chains [][]receipt.Receipt
	// high is a chain of seq MaxSeq-2…MaxSeq that follows anchor.
	high   []receipt.Receipt
	anchor receipt.Receipt
	// pending is the next receipt of chains[0], not in the log.
	pending    receipt.Receipt
	signerKey  string
	checkpoint string
	key        string
	cp         ledger.Checkpoint
	proofs     map[string]json.RawMessage
	parsed     map[string]ledger.InclusionProof
}

// all returns every receipt in the log, newest first (as a timeline lists
// them), the high chain last.
func (f *fixture) all() []receipt.Receipt {
	var out []receipt.Receipt
	for _, c := range f.chains {
		out = append(out, c...)
	}
	slices.SortStableFunc(out, func(a, b receipt.Receipt) int { return strings.Compare(b.DecidedAt, a.DecidedAt) })
	return append(out, f.high...)
}

func (f *fixture) options() options {
	return options{Checkpoint: f.checkpoint, Key: f.key, Proofs: f.proofs, After: []receipt.Receipt{f.anchor}}
}

// awkward holds text that exercises RFC 8785 string escaping: control
// characters, quotes, backslashes, line and paragraph separators, HTML
// characters, non-ASCII, astral characters and an invalid UTF-8 byte (which
// the receipt records as U+FFFD).
const awkward = "\"quoted\" \\back\\slash\\ \x00\x01\b\f\n\r\t\x1f\x7f \u2028\u2029 </script> & <b> 'é' Zürich 東京 😀 \U0010FFFF \ufeff bad\xffbyte"

// chainOf builds n receipts of one instance starting after inst.
func chainOf(inst governor.Instance, n int, start time.Time, decide func(i int, ev *governor.Event, d *governor.Decision)) []receipt.Receipt {
	var out []receipt.Receipt
	for i := range n {
		ev := governor.Event{
			ID:      fmt.Sprintf("evt-%s-%d", inst.Subject, i),
			Source:  "//autonomics/test",
			Type:    governor.TypeOf(inst.Domain, "usage_recorded"),
			Domain:  inst.Domain,
			Name:    "usage_recorded",
			Tenant:  inst.Tenant,
			Subject: inst.Subject,
			Data:    json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		}
		d := governor.Decision{Outcome: governor.Accepted, From: "open", To: "open"}
		if decide != nil {
			decide(i, &ev, &d)
		}
		r := receipt.New(inst, ev, d, start.Add(time.Duration(i)*time.Minute+time.Duration(i)*time.Nanosecond))
		inst.Version, inst.LastHash = r.Seq, r.Hash
		out = append(out, r)
	}
	return out
}

// witness vouches for the receipts the governors stored.
type witness map[ledger.ReceiptRef]string

func (w witness) StoredHashes(_ context.Context, refs []ledger.ReceiptRef) (map[ledger.ReceiptRef]string, error) {
	out := map[ledger.ReceiptRef]string{}
	for _, r := range refs {
		if h, ok := w[r]; ok {
			out[r] = h
		}
	}
	return out, nil
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	f := &fixture{}
	acme := chainOf(governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}}, 5, start,
		func(i int, ev *governor.Event, d *governor.Decision) {
			switch i {
			case 1:
				ev.Source = awkward
				d.Emits = []governor.Emit{
					{Kind: governor.KindEvent, Type: "autonomics.entitlement.suspended", Domain: governor.Entitlement, Subject: "ent-1"},
					{Kind: governor.KindActuate, Type: "marketplace.approve_entitlement", Domain: governor.Entitlement, Subject: awkward},
				}
			case 2:
				d.Outcome, d.Reason, d.To = governor.Rejected, "refused: "+awkward, "open"
				ev.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			case 3:
				ev.CorrelationID = "corr-ü-😀"
				d.From, d.To = "open", "closed"
			}
		})
	globex := chainOf(governor.Instance{Key: governor.Key{Tenant: "globex", Domain: governor.Entitlement, Subject: "ent-ü😀"}}, 3, start.Add(30*time.Second),
		func(i int, ev *governor.Event, d *governor.Decision) {
			if i == 0 {
				d.From, d.To = "", "active"
				d.Emits = []governor.Emit{{Kind: governor.KindActuate, Type: "marketplace.approve_entitlement", Domain: governor.Entitlement, Subject: "ent-ü😀"}}
			}
		})
	f.pending, f.chains = acme[4], [][]receipt.Receipt{acme[:4], globex}

	// A chain at the end of the seq range: its numbers are the largest
	// integers RFC 8785 writes exactly.
	f.anchor = receipt.Receipt{TenantID: "acme", Domain: string(governor.QuotaSLA), Subject: "big", Seq: receipt.MaxSeq - 3,
		Hash: strings.Repeat("ab", 32)}
	f.high = chainOf(governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.QuotaSLA, Subject: "big"},
		Version: f.anchor.Seq, LastHash: f.anchor.Hash}, 3, start.Add(time.Hour), nil)
	if got := f.high[2].Seq; got != receipt.MaxSeq {
		t.Fatalf("high chain ends at seq %d, want %d", got, receipt.MaxSeq)
	}

	// The Go verifiers accept the vectors.
	for _, c := range f.chains {
		if err := receipt.Verify(c); err != nil {
			t.Fatalf("Go: %v", err)
		}
	}
	v := receipt.NewVerifierAfter(f.anchor)
	for i := range f.high {
		if err := v.Add(&f.high[i]); err != nil {
			t.Fatalf("Go: %v", err)
		}
	}

	signerKey, verifierKey, err := ledger.GenerateKey("autonomics.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := ledger.NewSigner(signerKey)
	if err != nil {
		t.Fatal(err)
	}
	f.signerKey = signerKey
	store := memledger.New()
	logged := f.all()
	w := witness{}
	for i := range logged {
		w[ledger.RefOf(&logged[i])] = logged[i].Hash
		e, err := ledger.NewEntry(logged[i].JSON(), start)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.AddPending(ctx, []ledger.Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	in, err := ledger.NewIntegrator(ledger.IntegratorOptions{Store: store, Witness: w, Signer: signer, VerifierKey: verifierKey, Holder: "test"})
	if err != nil {
		t.Fatal(err)
	}
	pass, err := in.Integrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pass.Integrated != len(logged) {
		t.Fatalf("integrated %d receipts, want %d", pass.Integrated, len(logged))
	}
	log := ledger.NewLog(store)
	st, err := log.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.checkpoint, f.key = string(st.Checkpoint), st.VerifierKey+"\n" // as GET /api/v1/checkpoint/key serves it
	nv, err := ledger.NewVerifier(f.key)
	if err != nil {
		t.Fatal(err)
	}
	if f.cp, err = ledger.OpenCheckpoint(st.Checkpoint, nv); err != nil {
		t.Fatal(err)
	}
	f.proofs, f.parsed = map[string]json.RawMessage{}, map[string]ledger.InclusionProof{}
	for i := range logged {
		p, err := log.InclusionProof(ctx, logged[i].Hash, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := ledger.VerifyInclusion(&logged[i], &p, f.cp); err != nil {
			t.Fatalf("Go: %v", err)
		}
		f.proofs[logged[i].Hash], f.parsed[logged[i].Hash] = ledgerJSON(t, p), p
	}
	return f
}

// ledgerJSON encodes v as the query API does.
func ledgerJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return json.RawMessage(bytes.TrimSpace(b.Bytes()))
}

func anys[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// checkResults compares results with the expected problems by receipt
// hash (absent: ok) and reason prefixes.
func checkResults(t *testing.T, got []result, hashes []string, want map[string]result) {
	t.Helper()
	for i, r := range got {
		if r.Hash != hashes[i] {
			t.Errorf("result %d is for hash %s, want %s", i, r.Hash, hashes[i])
		}
		w, bad := want[hashes[i]]
		switch {
		case !bad && !r.OK:
			t.Errorf("result %d (%s): not ok: %s (%s)", i, r.Hash, r.Reason, r.Problem)
		case !bad:
			if r.Reason != "" || r.Problem != "" {
				t.Errorf("result %d: ok with reason %q and problem %q", i, r.Reason, r.Problem)
			}
		case r.OK:
			t.Errorf("result %d (%s): ok, want %s: %s", i, r.Hash, w.Problem, w.Reason)
		case r.Problem != w.Problem || !strings.HasPrefix(r.Reason, w.Reason):
			t.Errorf("result %d (%s): %s: %q, want %s: %q…", i, r.Hash, r.Problem, r.Reason, w.Problem, w.Reason)
		}
	}
}

func hashesOf(rs []receipt.Receipt) []string {
	out := make([]string, len(rs))
	for i := range rs {
		out[i] = rs[i].Hash
	}
	return out
}

func TestIntactLedgerVerifiesInTheBrowser(t *testing.T) {
	ctx := verifyPage(t)
	f := newFixture(t)
	all := f.all()

	t.Run("proofs by hash", func(t *testing.T) {
		checkResults(t, verify(t, ctx, anys(all), f.options()), hashesOf(all), nil)
	})
	t.Run("proofs fetched for the checkpoint's size", func(t *testing.T) {
		expr := fmt.Sprintf(`(function (a) {
			var proofs = a.proofs, asked = [];
			a.opts.proofs = function (hash, size) {
				asked.push(size);
				return new Promise(function (resolve) { setTimeout(function () { resolve(proofs[hash] || null); }, 1); });
			};
			return window.autonomicsVerify.verifyReceipts(a.receipts, a.opts).then(function (res) {
				return {results: res, sizes: asked};
			});
		})(%s)`, jsLiteral(t, map[string]any{"receipts": all, "proofs": f.proofs,
			"opts": options{Checkpoint: f.checkpoint, Key: f.key, After: []receipt.Receipt{f.anchor}}}))
		out := evalJS[struct {
			Results []result `json:"results"`
			Sizes   []int64  `json:"sizes"`
		}](t, ctx, expr)
		checkResults(t, out.Results, hashesOf(all), nil)
		if len(out.Sizes) != len(all) {
			t.Errorf("asked for %d proofs, want %d", len(out.Sizes), len(all))
		}
		for _, s := range out.Sizes {
			if s != f.cp.Size {
				t.Errorf("asked for a proof at size %d, want the checkpoint's %d", s, f.cp.Size)
			}
		}
	})
	t.Run("receipts as JSON texts", func(t *testing.T) {
		texts := make([]any, len(all))
		for i := range all {
			texts[i] = string(all[i].JSON())
		}
		checkResults(t, verify(t, ctx, texts, f.options()), hashesOf(all), nil)
	})
	t.Run("only hashes and chains", func(t *testing.T) {
		checkResults(t, verify(t, ctx, anys(all), options{Ledger: noLedger, After: []receipt.Receipt{f.anchor}}), hashesOf(all), nil)
	})
	t.Run("a window of the chains", func(t *testing.T) {
		window := []receipt.Receipt{f.chains[0][3], f.chains[0][2], f.chains[1][2], f.high[2], f.high[1]}
		opts := f.options()
		opts.After, opts.Partial = nil, true
		checkResults(t, verify(t, ctx, anys(window), opts), hashesOf(window), nil)
	})
}

func TestCanonicalJSONIsGos(t *testing.T) {
	ctx := verifyPage(t)
	f := newFixture(t)
	all := append(f.all(), f.pending)
	type pair struct {
		Canonical string `json:"canonical"`
		Full      string `json:"full"`
		Hash      string `json:"hash"`
	}
	expr := fmt.Sprintf(`Promise.all(%s.map(function (r) {
		var v = window.autonomicsVerify, o = Object.assign({}, r);
		delete o.hash;
		return v.receiptHash(r).then(function (h) {
			return {canonical: v.canonicalize(o), full: v.canonicalize(r), hash: h};
		});
	}))`, jsLiteral(t, all))
	got := evalJS[[]pair](t, ctx, expr)
	for i := range all {
		if got[i].Canonical != string(all[i].Canonical()) {
			t.Errorf("receipt %d: canonical JSON\n got %q\nwant %q", i, got[i].Canonical, all[i].Canonical())
		}
		if got[i].Full != string(all[i].JSON()) {
			t.Errorf("receipt %d: leaf JSON\n got %q\nwant %q", i, got[i].Full, all[i].JSON())
		}
		if got[i].Hash != all[i].Hash {
			t.Errorf("receipt %d: hash %s, want %s", i, got[i].Hash, all[i].Hash)
		}
	}
}

// TestJCSMatchesGo canonicalizes arbitrary JSON (the RFC 8785 examples,
// negative and large numbers, exponents, escapes, unicode member names) in
// the browser and with jsontext, which implements RFC 8785 in Go.
func TestJCSMatchesGo(t *testing.T) {
	ctx := verifyPage(t)
	file, err := os.Open(filepath.Join("testdata", "verify", "jcs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var inputs, want []string
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		v := jsontext.Value(line)
		if err := v.Canonicalize(); err != nil {
			t.Fatalf("jsontext: %s: %v", line, err)
		}
		inputs, want = append(inputs, line), append(want, string(v))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	got := evalJS[[]string](t, ctx, fmt.Sprintf(`%s.map(function (s) { return window.autonomicsVerify.canonicalize(JSON.parse(s)); })`, jsLiteral(t, inputs)))
	for i := range inputs {
		if got[i] != want[i] {
			t.Errorf("input %s\n got %s\nwant %s", inputs[i], got[i], want[i])
		}
	}
	// RFC 8785 section 3.2.3.
	const rfc = `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
	if len(got) == 0 || got[0] != rfc {
		t.Errorf("RFC 8785 example: got %q, want %q", got[0], rfc)
	}
}

// mutable returns r as a JSON object to tamper with.
func mutable(t *testing.T, r receipt.Receipt) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(r.JSON()))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// recomputed returns r after change, with its hash recomputed, as a forger
// with the receipt code would make it.
func recomputed(r receipt.Receipt, change func(*receipt.Receipt)) receipt.Receipt {
	r.Actions = slices.Clone(r.Actions)
	change(&r)
	r.Hash = r.ComputeHash()
	return r
}

func TestTamperedFieldIsHashMismatch(t *testing.T) {
	ctx := verifyPage(t)
	f := newFixture(t)
	target := f.chains[0][1] // seq 2, with actions and awkward text
	cases := []struct {
		name   string
		change func(m map[string]any)
		// goChange is the same change on the receipt, for the hash Go
		// recomputes; nil when the change leaves no receipt.
		goChange func(r *receipt.Receipt)
	}{
		{"to_state", func(m map[string]any) { m["to_state"] = "paid" }, func(r *receipt.Receipt) { r.ToState = "paid" }},
		{"one escaped character", func(m map[string]any) { m["event_source"] = strings.Replace(m["event_source"].(string), "\n", "\r", 1) },
			func(r *receipt.Receipt) { r.EventSource = strings.Replace(r.EventSource, "\n", "\r", 1) }},
		{"unicode normalisation", func(m map[string]any) {
			m["event_source"] = strings.Replace(m["event_source"].(string), "é", "e\u0301", 1)
		},
			func(r *receipt.Receipt) { r.EventSource = strings.Replace(r.EventSource, "é", "e\u0301", 1) }},
		{"action subject", func(m map[string]any) { m["actions"].([]any)[1].(map[string]any)["subject"] = "ent-2" },
			func(r *receipt.Receipt) { r.Actions[1].Subject = "ent-2" }},
		{"action dropped", func(m map[string]any) { m["actions"] = m["actions"].([]any)[:1] },
			func(r *receipt.Receipt) { r.Actions = r.Actions[:1] }},
		{"decided_at", func(m map[string]any) { m["decided_at"] = "2026-11-20T09:01:00.000000002Z" },
			func(r *receipt.Receipt) { r.DecidedAt = "2026-11-20T09:01:00.000000002Z" }},
		{"trace id added", func(m map[string]any) { m["trace_id"] = "4bf92f3577b34da6a3ce929d0e0e4736" },
			func(r *receipt.Receipt) { r.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mutable(t, target)
			tc.change(m)
			tampered := recomputed(target, tc.goChange)
			if tampered.Hash == target.Hash {
				t.Fatal("the change does not change the hash")
			}
			chain := f.chains[0]
			in := []any{chain[0], m, chain[2], chain[3]}
			hashes := hashesOf(chain)
			got := verify(t, ctx, in, options{Checkpoint: f.checkpoint, Key: f.key, Proofs: f.proofs})
			checkResults(t, got, hashes, map[string]result{
				target.Hash:   {Problem: "hash_mismatch", Reason: "hash mismatch: recomputed " + tampered.Hash},
				chain[2].Hash: {Problem: "broken_chain", Reason: "chain broken at seq 2"},
				chain[3].Hash: {Problem: "broken_chain", Reason: "chain broken at seq 2"},
			})
			if got[1].Reason != "hash mismatch: recomputed "+tampered.Hash {
				t.Errorf("reason %q", got[1].Reason)
			}
			// Go agrees.
			goChain := []receipt.Receipt{chain[0], tampered, chain[2], chain[3]}
			goChain[1].Hash = target.Hash
			checkChainError(t, receipt.Verify(goChain), 1, receipt.HashMismatch)
		})
	}
}

func checkChainError(t *testing.T, err error, index int, p receipt.Problem) {
	t.Helper()
	var ce *receipt.ChainError
	if !errors.As(err, &ce) || ce.Index != index || ce.Problem != p {
		t.Errorf("Go verifier: %v, want %s at index %d", err, p, index)
	}
}

func TestMissingReceiptBreaksChain(t *testing.T) {
	ctx := verifyPage(t)
	f := newFixture(t)
	c := f.chains[0]
	cases := []struct {
		name string
		in   []receipt.Receipt
		want map[string]result
	}{
		{"middle receipt missing", []receipt.Receipt{c[3], c[2], c[0]}, map[string]result{
			c[2].Hash: {Problem: "bad_sequence", Reason: "chain broken at seq 3: seq 3 follows seq 1"},
			c[3].Hash: {Problem: "broken_chain", Reason: "chain broken at seq 3"},
		}},
		{"first receipt missing", []receipt.Receipt{c[1], c[2], c[3]}, map[string]result{
			c[1].Hash: {Problem: "bad_sequence", Reason: "chain broken at seq 2: the chain starts at seq 2, not 1"},
			c[2].Hash: {Problem: "broken_chain", Reason: "chain broken at seq 2"},
			c[3].Hash: {Problem: "broken_chain", Reason: "chain broken at seq 2"},
		}},
		{"receipt given twice", []receipt.Receipt{c[0], c[1], c[1], c[2]}, map[string]result{
			c[1].Hash: {Problem: "bad_sequence", Reason: "chain broken at seq 2: two receipts have seq 2"},
			c[2].Hash: {Problem: "broken_chain", Reason: "chain broken at seq 2"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := verify(t, ctx, anys(tc.in), options{Checkpoint: f.checkpoint, Key: f.key, Proofs: f.proofs})
			if tc.name == "receipt given twice" {
				// The first of the two passes, the second fails, and so
				// does the receipt after it. The results are by position:
				// the two copies share a hash. Reasons match by prefix, as
				// in checkResults.
				dup, after := tc.want[c[1].Hash], tc.want[c[2].Hash]
				if !got[1].OK || got[2].OK || got[2].Problem != dup.Problem || !strings.HasPrefix(got[2].Reason, dup.Reason) {
					t.Errorf("duplicate: %+v, %+v; want the second %+v", got[1], got[2], dup)
				}
				if got[3].OK || got[3].Problem != after.Problem || !strings.HasPrefix(got[3].Reason, after.Reason) {
					t.Errorf("receipt after the duplicate: %+v, want %+v", got[3], after)
				}
				return
			}
			checkResults(t, got, hashesOf(tc.in), tc.want)
		})
	}
	// Go agrees.
	checkChainError(t, receipt.Verify([]receipt.Receipt{c[0], c[2], c[3]}), 1, receipt.BadSequence)
	checkChainError(t, receipt.Verify([]receipt.Receipt{c[1], c[2], c[3]}), 0, receipt.BadSequence)
}

func TestReorderedReceiptsBreakChain(t *testing.T) {
	ctx := verifyPage(t)
	f := newFixture(t)
	c := f.chains[0]
	// A forger swaps seq 2 and 3 and recomputes both hashes.
	second := recomputed(c[1], func(r *receipt.Receipt) { r.Seq = 3 })
	third := recomputed(c[2], func(r *receipt.Receipt) { r.Seq = 2 })
	in := []receipt.Receipt{c[0], second, third, c[3]}
	got := verify(t, ctx, anys(in), options{Checkpoint: f.checkpoint, Key: f.key, Proofs: f.proofs})
	checkResults(t, got, hashesOf(in), map[string]result{
		third.Hash:  {Problem: "broken_link", Reason: "chain broken at seq 2: prev_hash is not the hash of seq 1"},
		second.Hash: {Problem: "broken_chain", Reason: "chain broken at seq 2"},
		c[3].Hash:   {Problem: "broken_chain", Reason: "chain broken at seq 2"},
	})
	checkChainError(t, receipt.Verify([]receipt.Receipt{c[0], third, second, c[3]}), 1, receipt.BrokenLink)

	// A receipt moved to another chain keeps its hash but not its links.
	moved := recomputed(f.chains[1][1], func(r *receipt.Receipt) { r.TenantID, r.Domain, r.Subject = c[0].TenantID, c[0].Domain, c[0].Subject })
	in = []receipt.Receipt{c[0], moved}
	got = verify(t, ctx, anys(in), options{Checkpoint: f.checkpoint, Key: f.key, Proofs: f.proofs})
	checkResults(t, got, hashesOf(in), map[string]result{
		moved.Hash: {Problem: "broken_link", Reason: "chain broken at seq 2: prev_hash is not the hash of seq 1"},
	})
}

func TestWrongProofIsNotInLedger(t *testing.T) {
	ctx := verifyPage(t)
	f := newFixture(t)
	all := f.all()
	target, other := f.chains[1][1], f.chains[0][2]
	proofOf := func(h string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(f.proofs[h], &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	flip := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[0] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	cases := []struct {
		name   string
		proof  func() any // nil: no proof
		reason string
		// goRefuses checks that the Go verifier refuses the same proof.
		goRefuses bool
	}{
		{"audit path hash flipped", func() any {
			m := proofOf(target.Hash)
			path := m["proof"].([]any)
			path[0] = flip(path[0].(string))
			return m
		}, "not in ledger: the inclusion proof does not lead to the checkpoint's root", true},
		{"another receipt's proof", func() any {
			return proofOf(other.Hash)
		}, "not in ledger: the proof is for receipt", true},
		{"another receipt's audit path", func() any {
			m := proofOf(other.Hash)
			delete(m, "receipt")
			delete(m, "receipt_hash")
			return m
		}, "not in ledger: the inclusion proof does not lead to the checkpoint's root", true},
		{"another index", func() any {
			m := proofOf(target.Hash)
			m["index"] = m["index"].(float64) + 1
			return m
		}, "not in ledger: the inclusion proof does not lead to the checkpoint's root", true},
		{"audit path one hash short", func() any {
			m := proofOf(target.Hash)
			m["proof"] = m["proof"].([]any)[1:]
			return m
		}, "not in ledger: the inclusion proof does not lead to the checkpoint's root", true},
		{"older tree size", func() any {
			m := proofOf(target.Hash)
			m["tree_size"] = m["tree_size"].(float64) - 1
			return m
		}, "not in ledger: the proof is for tree size", true},
		{"index outside the tree", func() any {
			m := proofOf(target.Hash)
			m["index"] = float64(f.cp.Size)
			return m
		}, "not in ledger: index", true},
		{"malformed hash", func() any {
			m := proofOf(target.Hash)
			m["proof"].([]any)[0] = "not base64"
			return m
		}, "not in ledger: the inclusion proof is malformed", false},
		{"no proof", nil, "not in ledger: no inclusion proof", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proofs := map[string]json.RawMessage{}
			for h, p := range f.proofs {
				proofs[h] = p
			}
			delete(proofs, target.Hash)
			if tc.proof != nil {
				proofs[target.Hash] = ledgerJSON(t, tc.proof())
			}
			opts := f.options()
			opts.Proofs = proofs
			got := verify(t, ctx, anys(all), opts)
			checkResults(t, got, hashesOf(all), map[string]result{target.Hash: {Problem: "not_included", Reason: tc.reason}})
			if tc.goRefuses {
				var p ledger.InclusionProof
				if err := json.Unmarshal(proofs[target.Hash], &p); err != nil {
					t.Fatal(err)
				}
				if err := ledger.VerifyInclusion(&target, &p, f.cp); err == nil {
					t.Error("the Go verifier accepts the proof")
				}
			}
		})
	}
	t.Run("receipt not yet integrated", func(t *testing.T) {
		in := append(slices.Clone(f.chains[0]), f.pending)
		got := verify(t, ctx, anys(in), f.options())
		checkResults(t, got, hashesOf(in), map[string]result{f.pending.Hash: {Problem: "not_included", Reason: "not in ledger: no inclusion proof"}})
	})
}

func TestCheckpointSignedByAnotherKeyIsRefused(t *testing.T) {
	ctx := verifyPage(t)
	f := newFixture(t)
	all := f.all()
	sign := func(cp ledger.Checkpoint, signerKey string) string {
		s, _, err := ledger.NewSigner(signerKey)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ledger.SignCheckpoint(cp, s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	otherSigner, otherVerifier, err := ledger.GenerateKey(f.cp.Origin)
	if err != nil {
		t.Fatal(err)
	}
	sig := f.checkpoint[strings.LastIndex(f.checkpoint, "\n\n")+1:]
	grown := f.cp
	grown.Size++
	cases := []struct {
		name             string
		checkpoint, key  string
		problem, reason  string
		goRefusesWithKey bool
	}{
		{"signed by another key of the same name", sign(f.cp, otherSigner), f.key,
			"bad_signature", "bad checkpoint signature: no signature by key " + f.cp.Origin, true},
		{"the real checkpoint with another key", f.checkpoint, otherVerifier,
			"bad_signature", "bad checkpoint signature: no signature by key " + f.cp.Origin, false},
		{"text changed under the signature", string(grown.Text()) + sig, f.key,
			"bad_signature", "bad checkpoint signature: the signature by key " + f.cp.Origin + " is invalid", true},
		{"signature bytes changed", forgeSignature(t, f.checkpoint), f.key,
			"bad_signature", "bad checkpoint signature: the signature by key " + f.cp.Origin + " is invalid", true},
		{"another log's checkpoint signed by the key", sign(ledger.Checkpoint{Origin: "evil.example/log", Size: f.cp.Size, Root: f.cp.Root}, f.signerKey), f.key,
			"bad_checkpoint", "bad checkpoint: its origin \"evil.example/log\" is not the key name", true},
		{"not a signed note", string(f.cp.Text()), f.key, "bad_checkpoint", "bad checkpoint: not a signed note", true},
		{"malformed key", f.checkpoint, "autonomics.test/ledger+00000000+AQ==", "bad_key", "bad verifier key:", false},
		{"no checkpoint", "", f.key, "bad_checkpoint", "bad checkpoint: no checkpoint given", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := f.options()
			opts.Checkpoint, opts.Key = tc.checkpoint, tc.key
			got := verify(t, ctx, anys(all), opts)
			want := map[string]result{}
			for _, r := range all {
				want[r.Hash] = result{Problem: tc.problem, Reason: tc.reason}
			}
			checkResults(t, got, hashesOf(all), want)
			if tc.goRefusesWithKey {
				v, err := ledger.NewVerifier(tc.key)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ledger.OpenCheckpoint([]byte(tc.checkpoint), v); err == nil {
					t.Error("the Go verifier opens the checkpoint")
				}
			}
		})
	}
	// The Go verifier refuses the other key's checkpoint too, and opens the
	// real one with the real key, as the browser does.
	v, _ := ledger.NewVerifier(otherVerifier)
	if _, err := ledger.OpenCheckpoint([]byte(f.checkpoint), v); err == nil {
		t.Error("Go opens the checkpoint with another key")
	}
	got := evalJS[map[string]any](t, ctx, fmt.Sprintf(`window.autonomicsVerify.openCheckpoint(%s, %s)`, jsLiteral(t, f.checkpoint), jsLiteral(t, f.key)))
	if got["origin"] != f.cp.Origin || got["size"] != float64(f.cp.Size) || got["root"] != base64.StdEncoding.EncodeToString(f.cp.Root[:]) {
		t.Errorf("openCheckpoint = %v, want %s", got, f.cp)
	}
}

// forgeSignature returns signed with its signature bytes altered but its
// key name and key hash intact.
func forgeSignature(t *testing.T, signed string) string {
	t.Helper()
	i := strings.LastIndex(signed, "\n\n")
	line := strings.TrimSuffix(signed[i+2:], "\n")
	name, b64, _ := strings.Cut(strings.TrimPrefix(line, "— "), " ")
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)-1] ^= 0x40
	forged := signed[:i+2] + "— " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
	// The forgery is still a well-formed note, whose signature no key
	// verifies.
	var unverified *note.UnverifiedNoteError
	if _, err := note.Open([]byte(forged), note.VerifierList()); !errors.As(err, &unverified) {
		t.Fatalf("the forged note is not a well-formed note: %v", err)
	}
	return forged
}

func TestLargeSeqChainVerifies(t *testing.T) {
	ctx := verifyPage(t)
	f := newFixture(t)
	h := f.high
	in := []receipt.Receipt{h[2], h[0], h[1]}
	base := options{Checkpoint: f.checkpoint, Key: f.key, Proofs: f.proofs}
	t.Run("after a trusted receipt", func(t *testing.T) {
		opts := base
		opts.After = []receipt.Receipt{f.anchor}
		checkResults(t, verify(t, ctx, anys(in), opts), hashesOf(in), nil)
	})
	t.Run("as a window", func(t *testing.T) {
		opts := base
		opts.Partial = true
		checkResults(t, verify(t, ctx, anys(in), opts), hashesOf(in), nil)
	})
	first := fmt.Sprint(receipt.MaxSeq - 2)
	t.Run("as a whole chain", func(t *testing.T) {
		checkResults(t, verify(t, ctx, anys(in), base), hashesOf(in), map[string]result{
			h[0].Hash: {Problem: "bad_sequence", Reason: "chain broken at seq " + first + ": the chain starts at seq " + first + ", not 1"},
			h[1].Hash: {Problem: "broken_chain", Reason: "chain broken at seq " + first},
			h[2].Hash: {Problem: "broken_chain", Reason: "chain broken at seq " + first},
		})
	})
	t.Run("after another receipt", func(t *testing.T) {
		opts := base
		wrong := f.anchor
		wrong.Hash = strings.Repeat("cd", 32)
		opts.After = []receipt.Receipt{wrong}
		checkResults(t, verify(t, ctx, anys(in), opts), hashesOf(in), map[string]result{
			h[0].Hash: {Problem: "broken_link", Reason: "chain broken at seq " + first + ": prev_hash is not the hash of seq " + fmt.Sprint(receipt.MaxSeq-3)},
			h[1].Hash: {Problem: "broken_chain", Reason: "chain broken at seq " + first},
			h[2].Hash: {Problem: "broken_chain", Reason: "chain broken at seq " + first},
		})
		v := receipt.NewVerifierAfter(wrong)
		checkChainError(t, v.Add(&h[0]), 0, receipt.BrokenLink)
	})
}

// TestMalformedReceiptsAreRefused gives verify.js what receipt.Parse
// refuses; each is malformed, even with a hash that Go's encoder computed.
func TestMalformedReceiptsAreRefused(t *testing.T) {
	ctx := verifyPage(t)
	f := newFixture(t)
	r := f.chains[0][0]
	text := string(r.JSON())
	withSeq := func(seq string, recompute bool) string {
		s := strings.Replace(text, `"seq":1,`, `"seq":`+seq+`,`, 1)
		if recompute {
			// The hash Go's canonical encoder gives that seq.
			var n int64
			if _, err := fmt.Sscan(seq, &n); err != nil {
				t.Fatal(err)
			}
			forged := recomputed(r, func(x *receipt.Receipt) { x.Seq = n })
			s = string(forged.JSON())
		}
		return s
	}
	cases := []struct {
		name, json, reason string
	}{
		{"negative seq", withSeq("-5", true), "malformed: seq -5 outside 1…9007199254740991"},
		{"zero seq", withSeq("0", true), "malformed: seq 0 outside"},
		{"seq 2^53", withSeq("9007199254740992", true), "malformed: seq 9007199254740992 outside"},
		{"seq beyond float precision", withSeq("9007199254740993", false), "malformed: seq 9007199254740992 outside"},
		{"float seq", withSeq("1.5", false), "malformed: seq is not an integer"},
		{"string seq", withSeq(`"1"`, false), "malformed: seq is not an integer"},
		{"unknown member", strings.Replace(text, `{"actions"`, `{"admin":true,"actions"`, 1), `malformed: unknown member "admin"`},
		{"missing member", strings.Replace(text, `"reason":"",`, ``, 1), `malformed: missing member "reason"`},
		{"null member", strings.Replace(text, `"reason":""`, `"reason":null`, 1), "malformed: reason is not a string"},
		{"lone surrogate", strings.Replace(text, `"reason":""`, `"reason":"\ud800"`, 1), "malformed: reason has a lone surrogate"},
		{"empty trace id", strings.Replace(text, `"to_state"`, `"trace_id":"","to_state"`, 1), "malformed: trace_id"},
		{"not an object", `[1,2]`, "malformed: not a JSON object"},
		{"not JSON", `{"seq":`, "malformed: not JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := receipt.Parse([]byte(tc.json)); err == nil {
				t.Fatalf("Go parses %s", tc.json)
			}
			got := verify(t, ctx, []any{tc.json}, options{Ledger: noLedger})
			if got[0].OK || got[0].Problem != "malformed" || !strings.HasPrefix(got[0].Reason, tc.reason) {
				t.Errorf("%+v, want malformed: %q…", got[0], tc.reason)
			}
		})
	}
	t.Run("later receipts of its chain", func(t *testing.T) {
		bad := mutable(t, f.chains[0][1])
		bad["outcome"] = 7
		c := f.chains[0]
		got := verify(t, ctx, []any{c[0], bad, c[2]}, options{Ledger: noLedger})
		checkResults(t, got, hashesOf(c[:3]), map[string]result{
			c[1].Hash: {Problem: "malformed", Reason: "malformed: outcome is not a string"},
			c[2].Hash: {Problem: "broken_chain", Reason: "chain broken at seq 2"},
		})
	})
}

// TestMatchesGoVerifier forges chains with recomputed hashes, so that each
// fails (or passes) a check after the hash, and compares the first failure
// verify.js reports with the *receipt.ChainError of receipt.Verify.
func TestMatchesGoVerifier(t *testing.T) {
	ctx := verifyPage(t)
	f := newFixture(t)
	c := f.chains[0]
	at := func(i int, change func(*receipt.Receipt)) []receipt.Receipt {
		out := slices.Clone(c)
		out[i] = recomputed(out[i], change)
		// Later receipts link to the forged one, so only it is wrong.
		for j := i + 1; j < len(out); j++ {
			prev := out[j-1].Hash
			out[j] = recomputed(out[j], func(r *receipt.Receipt) {
				r.PrevHash = prev
				for k := range r.Actions {
					r.Actions[k].ID = receipt.ActionID(r, k)
				}
			})
		}
		return out
	}
	decidedAt := func(s string) func(*receipt.Receipt) { return func(r *receipt.Receipt) { r.DecidedAt = s } }
	cases := []struct {
		name  string
		chain []receipt.Receipt
	}{
		{"intact", c},
		{"outcome maybe", at(1, func(r *receipt.Receipt) { r.Outcome = "maybe" })},
		{"outcome Accepted", at(2, func(r *receipt.Receipt) { r.Outcome = "Accepted" })},
		{"data_digest uppercase", at(0, func(r *receipt.Receipt) { r.DataDigest = strings.ToUpper(r.DataDigest) })},
		{"data_digest short", at(0, func(r *receipt.Receipt) { r.DataDigest = r.DataDigest[:63] })},
		{"action kind", at(1, func(r *receipt.Receipt) { r.Actions[0].Kind = "command" })},
		{"action id", at(1, func(r *receipt.Receipt) { r.Actions[1].ID = strings.Repeat("0", 32) })},
		{"action ids swapped", at(1, func(r *receipt.Receipt) { r.Actions[0].ID, r.Actions[1].ID = r.Actions[1].ID, r.Actions[0].ID })},
		{"first prev_hash", at(0, func(r *receipt.Receipt) { r.PrevHash = strings.Repeat("1", 64) })},
		{"middle prev_hash", at(2, func(r *receipt.Receipt) { r.PrevHash = c[0].Hash })},
		{"seq skips", at(2, func(r *receipt.Receipt) { r.Seq = 4 })},
		{"seq repeats", at(2, func(r *receipt.Receipt) { r.Seq = 2 })},
		{"decided_at with offset", at(1, decidedAt("2026-11-20T09:01:00+00:00"))},
		{"decided_at lowercase z", at(1, decidedAt("2026-11-20T09:01:00z"))},
		{"decided_at lowercase t", at(1, decidedAt("2026-11-20t09:01:00Z"))},
		{"decided_at without seconds", at(1, decidedAt("2026-11-20T09:01Z"))},
		{"decided_at one-digit hour", at(1, decidedAt("2026-11-20T9:01:00Z"))},
		{"decided_at one-digit minute", at(1, decidedAt("2026-11-20T09:1:00Z"))},
		{"decided_at comma fraction", at(1, decidedAt("2026-11-20T09:01:00,5Z"))},
		{"decided_at long fraction", at(1, decidedAt("2026-11-20T09:01:00.12345678901234567890Z"))},
		{"decided_at empty fraction", at(1, decidedAt("2026-11-20T09:01:00.Z"))},
		{"decided_at hour 24", at(1, decidedAt("2026-11-20T24:00:00Z"))},
		{"decided_at leap second", at(1, decidedAt("2026-12-31T23:59:60Z"))},
		{"decided_at 29 February 2028", at(1, decidedAt("2028-02-29T00:00:00Z"))},
		{"decided_at 29 February 2100", at(1, decidedAt("2100-02-29T00:00:00Z"))},
		{"decided_at 29 February 2000", at(1, decidedAt("2000-02-29T00:00:00Z"))},
		{"decided_at 31 November", at(1, decidedAt("2026-11-31T00:00:00Z"))},
		{"decided_at month 13", at(1, decidedAt("2026-13-01T00:00:00Z"))},
		{"decided_at year 0", at(1, decidedAt("0000-01-01T00:00:00Z"))},
		{"decided_at five-digit year", at(1, decidedAt("20260-11-20T09:01:00Z"))},
		{"decided_at Arabic digits", at(1, decidedAt("٢٠٢٦-11-20T09:01:00Z"))},
		{"decided_at space", at(1, decidedAt("2026-11-20 09:01:00Z"))},
		{"decided_at trailing space", at(1, decidedAt("2026-11-20T09:01:00Z "))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := verify(t, ctx, anys(tc.chain), options{Ledger: noLedger})
			err := receipt.Verify(tc.chain)
			var ce *receipt.ChainError
			if err != nil && !errors.As(err, &ce) {
				t.Fatal(err)
			}
			first := -1
			for i, r := range got {
				if !r.OK {
					first = i
					break
				}
			}
			switch {
			case ce == nil && first >= 0:
				t.Errorf("Go accepts the chain, verify.js refuses receipt %d: %s", first, got[first].Reason)
			case ce != nil && first < 0:
				t.Errorf("verify.js accepts the chain, Go refuses it: %v", ce)
			case ce != nil && (first != ce.Index || got[first].Problem != string(ce.Problem)):
				t.Errorf("verify.js: receipt %d %s (%s); Go: receipt %d %s (%s)", first, got[first].Problem, got[first].Reason, ce.Index, ce.Problem, ce.Detail)
			}
			for i := first + 1; first >= 0 && i < len(got); i++ {
				if got[i].OK {
					t.Errorf("receipt %d after the break is ok", i)
				}
			}
		})
	}
}
