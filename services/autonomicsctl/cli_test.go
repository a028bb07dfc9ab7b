package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/receipt"
)

const receiptBrokenLink = receipt.BrokenLink

// TestCommands runs each command against the fake console and checks its
// exit code and output, as a table and as JSON.
func TestCommands(t *testing.T) {
	f := newFakeConsole(t)
	tests := []struct {
		name string
		args []string
		code int
		// out must all appear in stdout, errs in stderr.
		out, errs []string
		// jsonKey, when set, must be a member of the JSON printed.
		jsonKey string
	}{
		{name: "tenants table", args: []string{"tenants"}, out: []string{"TENANT", "acme", "globex"}},
		{name: "tenants json", args: []string{"tenants", "-json"}, jsonKey: "tenants", out: []string{`"acme"`}},
		{name: "tenants page", args: []string{"tenants", "-limit", "1"}, out: []string{"acme", "more: -after acme"}},
		{name: "tenants all", args: []string{"tenants", "-limit", "1", "-all", "-json"}, jsonKey: "tenants", out: []string{`"globex"`}},
		{name: "tenants prefix", args: []string{"tenants", "-prefix", "glo"}, out: []string{"globex"}},
		{name: "governors table", args: []string{"governors", "acme"}, out: []string{"DOMAIN", "subscription", "ent-1", "active", `{"plan":"gold"}`}},
		{name: "governors flags after", args: []string{"governors", "acme", "-json"}, jsonKey: "governors", out: []string{`"tenant_id": "acme"`}},
		{name: "governors unknown tenant", args: []string{"governors", "nobody"}, code: exitNotFound, errs: []string{"tenant nobody has no governors", "not_found, HTTP 404"}},
		{name: "receipts table", args: []string{"receipts", "acme"}, out: []string{"DECIDED", "SEQ", "autonomics.billing.touched", "none", "active"}},
		{name: "receipts json pages", args: []string{"receipts", "acme", "-json", "-limit", "4"}, jsonKey: "receipts"},
		{name: "receipts domain", args: []string{"receipts", "acme", "-domain", "billing"}, out: []string{"2026-11"}},
		{name: "alerts", args: []string{"alerts"}, out: []string{"firing", "page", "dead_letters", "domain=billing,tenant=acme"}},
		{name: "alerts json", args: []string{"alerts", "-json"}, jsonKey: "alerts"},
		{name: "silence list", args: []string{"silence", "list"}, out: []string{"s1", "alertname=dead_letters", "deploy"}},
		{name: "silence create", args: []string{"silence", "create", "-matcher", "alertname=dead_letters", "-matcher", "tenant=acme", "-for", "2h", "-comment", "deploy"}, out: []string{"silence sil-9 created", "2026-11-20T14:00:00Z"}},
		{name: "silence expire", args: []string{"silence", "expire", "s1"}, out: []string{"silence s1 expired"}},
		{name: "silence expire unknown", args: []string{"silence", "expire", "s9"}, code: exitNotFound, errs: []string{"no silence s9"}},
		{name: "dlq list", args: []string{"dlq", "list"}, out: []string{"dl-1", "may be sent by scheduler only", "dl-2", "true"}},
		{name: "dlq list json", args: []string{"dlq", "list", "-json"}, jsonKey: "deadletters"},
		{name: "dlq replay", args: []string{"dlq", "replay", "dl-2"}, out: []string{"replayed dl-2: published as message msg-77"}},
		{name: "dlq replay refused", args: []string{"dlq", "replay", "dl-1"}, code: exitFailure, errs: []string{"came from an internal topic", "conflict, HTTP 409"}},
		{name: "dlq replay unknown", args: []string{"dlq", "replay", "dl-3"}, code: exitNotFound},
		{name: "clock advance", args: []string{"clock", "advance", "-tenant", "acme", "-to", "+48h"}, out: []string{"TIMER", "trial_end", "abababababab", "cdcdcdcdcdcd", "2 timers fired"}},
		{name: "clock advance json", args: []string{"clock", "advance", "-tenant", "acme", "-to", "2026-12-01T00:00:00Z", "-json"}, jsonKey: "fired"},
		{name: "send", args: []string{"send", "subscription.activated", "-tenant", "acme", "-subject", "ent-1"}, out: []string{"evt-", "autonomics.subscription.activated", "ent-1"}},
		{name: "send json", args: []string{"send", "autonomics.billing.payment_failed", "-tenant", "acme", "-subject", "2026-11", "-data", `{"reason": "card_declined"}`, "-json"}, jsonKey: "events"},
		{name: "send fixture", args: []string{"send", "-fixture", "plan-change", "-tenant", "acme"}, out: []string{"plan_change_requested", "plan_change_approved", "plan_changed"}},
		{name: "send list", args: []string{"send", "-list"}, out: []string{"FIXTURE", "trial-ends", "payment-fails", "plan-change"}},
		{name: "send list json", args: []string{"send", "-list", "-json"}, jsonKey: "fixtures"},
		{name: "verify", args: []string{"verify", "acme"}, out: []string{"signature verified", "ok: 5 receipts of 2 instances", "5 proven included"}},
		{name: "verify json", args: []string{"verify", "acme", "-json"}, jsonKey: "checkpoint", out: []string{`"ok": true`}},
		{name: "verify unknown tenant", args: []string{"verify", "nobody"}, code: exitNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := f.run(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
			for _, s := range tt.out {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.errs {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errs)
				}
			}
			if tt.jsonKey != "" {
				var v map[string]json.RawMessage
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Fatalf("stdout is not one JSON object: %v\n%s", err, out)
				}
				if _, ok := v[tt.jsonKey]; !ok {
					t.Errorf("JSON lacks %q: %s", tt.jsonKey, out)
				}
			}
		})
	}
}

// TestCommandsSendWhatTheyShould checks the requests behind the commands:
// the events published, the silence created, the clock target.
func TestCommandsSendWhatTheyShould(t *testing.T) {
	f := newFakeConsole(t)
	if code, _, errs := f.run(t, "send", "-fixture", "payment-fails", "-tenant", "globex"); code != 0 {
		t.Fatalf("send -fixture: %d %s", code, errs)
	}
	if code, _, errs := f.run(t, "send", "quota_sla.usage_reported", "-tenant", "acme", "-subject", "api_calls", "-data", `{ "usage": 1500 }`); code != 0 {
		t.Fatalf("send: %d %s", code, errs)
	}
	want := []sendBody{
		{Type: "autonomics.billing.payment_failed", Tenant: "globex", Subject: "2026-11", Data: json.RawMessage(`{}`)},
		{Type: "autonomics.quota_sla.usage_reported", Tenant: "acme", Subject: "api_calls", Data: json.RawMessage(`{"usage":1500}`)},
	}
	if len(f.events) != len(want) {
		t.Fatalf("events %+v, want %+v", f.events, want)
	}
	for i := range want {
		g := f.events[i]
		if g.Type != want[i].Type || g.Tenant != want[i].Tenant || g.Subject != want[i].Subject || string(g.Data) != string(want[i].Data) {
			t.Errorf("event %d = %+v (data %s), want %+v (data %s)", i, g, g.Data, want[i], want[i].Data)
		}
	}
	if code, _, errs := f.run(t, "silence", "create", "-matcher", "alertname=x", "-until", "2026-11-21T00:00:00Z", "-comment", "night", "-id", "night-1"); code != 0 {
		t.Fatalf("silence create: %d %s", code, errs)
	}
	if got := f.silences[0]; got.ID != "night-1" || got.Matchers["alertname"] != "x" || got.EndsAt != "2026-11-21T00:00:00Z" || got.Comment != "night" {
		t.Errorf("silence sent %+v", got)
	}
	if code, _, errs := f.run(t, "clock", "advance", "-tenant", "acme", "-to", "+48h"); code != 0 {
		t.Fatalf("clock advance: %d %s", code, errs)
	}
	if want := "acme@2026-11-22T12:00:00Z"; len(f.advanced) != 1 || f.advanced[0] != want {
		t.Errorf("clock advanced %v, want %s", f.advanced, want)
	}
	for _, r := range f.requests {
		if strings.HasPrefix(r, "GET /api/v1/tenants/acme/receipts") && !strings.Contains(r, "order=newest") {
			t.Errorf("timeline request %s without order=newest", r)
		}
	}
}

// TestUsageErrors checks that bad command lines exit 2 without a request.
func TestUsageErrors(t *testing.T) {
	f := newFakeConsole(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"governors without tenant", []string{"governors"}, "missing TENANT"},
		{"governors two tenants", []string{"governors", "a", "b"}, "unexpected arguments"},
		{"bad tenant id", []string{"governors", "../etc"}, "tenant id"},
		{"unknown flag", []string{"tenants", "-bogus"}, "not defined"},
		{"limit too large", []string{"tenants", "-limit", "100000"}, "-limit 100000"},
		{"unknown domain", []string{"receipts", "acme", "-domain", "payroll"}, "want one of entitlement"},
		{"bad since", []string{"receipts", "acme", "-since", "yesterday"}, "-since"},
		{"since after until", []string{"receipts", "acme", "-since", "1h", "-until", "2h"}, "before -until"},
		{"send without tenant", []string{"send", "billing.payment_failed"}, "-tenant is required"},
		{"send bad type", []string{"send", "payroll.paid", "-tenant", "acme"}, "event type"},
		{"send bad data", []string{"send", "billing.payment_failed", "-tenant", "acme", "-data", `[1]`}, "want a JSON object"},
		{"send type and fixture", []string{"send", "billing.payment_failed", "-fixture", "cancel", "-tenant", "acme"}, "not both"},
		{"send unknown fixture", []string{"send", "-fixture", "nope", "-tenant", "acme"}, "send -list"},
		{"send bad subject", []string{"send", "billing.payment_failed", "-tenant", "acme", "-subject", "a/b"}, "subject"},
		{"dlq without sub", []string{"dlq"}, "dlq list or dlq replay"},
		{"dlq replay bad id", []string{"dlq", "replay", "a/b"}, "dead letter id"},
		{"silence without matcher", []string{"silence", "create", "-for", "1h"}, "-matcher"},
		{"silence too long", []string{"silence", "create", "-matcher", "a=b", "-for", "2400h"}, "within"},
		{"silence bad matcher", []string{"silence", "create", "-matcher", "novalue", "-for", "1h"}, "label=value"},
		{"silence both ends", []string{"silence", "create", "-matcher", "a=b", "-for", "1h", "-until", "2026-11-21T00:00:00Z"}, "not both"},
		{"clock without to", []string{"clock", "advance", "-tenant", "acme"}, "-to is required"},
		{"clock bad to", []string{"clock", "advance", "-tenant", "acme", "-to", "tomorrow"}, "-to"},
		{"clock unknown sub", []string{"clock", "rewind"}, "clock advance"},
		{"tail negative n", []string{"tail", "-n", "-1"}, "-n"},
		{"verify bad concurrency", []string{"verify", "acme", "-concurrency", "0"}, "-concurrency"},
		{"bad url", []string{"tenants", "-url", "ftp://x"}, "-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.requests)
			args := tt.args
			if !slices.Contains(args, "-url") {
				args = append(args, "-url", f.srv.URL)
			}
			code, _, errs := runTest(t, cliEnv{}, args...)
			if code != exitUsage {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, exitUsage, errs)
			}
			if !strings.Contains(errs, tt.want) {
				t.Errorf("stderr lacks %q: %s", tt.want, errs)
			}
			if len(f.requests) != before {
				t.Errorf("a usage error sent %v", f.requests[before:])
			}
		})
	}
}

// TestHelpExitsZero: -h prints the flags and is not an error.
func TestHelpExitsZero(t *testing.T) {
	code, _, errs := runTest(t, cliEnv{}, "receipts", "-h")
	if code != exitOK || !strings.Contains(errs, "-domain") {
		t.Errorf("receipts -h = %d, %s", code, errs)
	}
}

// TestUsageListsEveryCommand keeps the usage text in step with the
// commands.
func TestUsageListsEveryCommand(t *testing.T) {
	for name := range cliCommands {
		if !strings.Contains(usage, "\n  "+name+" ") {
			t.Errorf("usage does not list %s", name)
		}
	}
}

// TestVerifyDetectsTamperedReceipt: a receipt altered in the store (its
// state rewritten, its hash left) fails verification with hash_mismatch.
func TestVerifyDetectsTamperedReceipt(t *testing.T) {
	f := newFakeConsole(t)
	f.receipts["acme"][1].ToState = "cancelled"
	code, out, errs := f.run(t, "verify", "acme")
	if code != exitFailure {
		t.Fatalf("exit code %d, want 1\n%s%s", code, out, errs)
	}
	for _, s := range []string{"FAILED", "hash_mismatch", "acme/subscription/ent-1 seq 2", "the receipt was altered"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
	if !strings.Contains(errs, "verification failed") {
		t.Errorf("stderr: %s", errs)
	}
	code, out, _ = f.run(t, "verify", "acme", "-json")
	var rep verifyOutput
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFailure || rep.OK {
		t.Fatalf("verify -json = %d %v %s", code, err, out)
	}
	if len(rep.Problems) == 0 || rep.Problems[0].Problem != "hash_mismatch" {
		t.Errorf("problems %+v, want hash_mismatch first", rep.Problems)
	}
}

// TestVerifyDetectsRehashedReceipt: a receipt rewritten with a recomputed
// hash breaks the next receipt's link, and is not the leaf in the tree.
func TestVerifyDetectsRehashedReceipt(t *testing.T) {
	f := newFakeConsole(t)
	r := &f.receipts["acme"][1]
	r.ToState = "cancelled"
	r.Hash = r.ComputeHash()
	code, out, _ := f.run(t, "verify", "acme", "-json")
	var rep verifyOutput
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFailure {
		t.Fatalf("verify = %d %v %s", code, err, out)
	}
	var problems []string
	for _, p := range rep.Problems {
		problems = append(problems, p.Problem)
	}
	// The rewritten receipt's hash is in no tree: it is pending, and its
	// successor, in the tree, cannot be.
	if !slices.Contains(problems, string(receiptBrokenLink)) || !slices.Contains(problems, string(ledger.NotIncluded)) {
		t.Errorf("problems %v, want broken_link and not_included", problems)
	}
}

// TestVerifyDetectsBadProof: an inclusion proof that does not lead to the
// signed root fails with not_included.
func TestVerifyDetectsBadProof(t *testing.T) {
	f := newFakeConsole(t)
	f.badProof[f.receipts["acme"][2].Hash] = true
	code, out, _ := f.run(t, "verify", "acme")
	if code != exitFailure {
		t.Fatalf("exit code %d, want 1\n%s", code, out)
	}
	for _, s := range []string{"not_included", "acme/subscription/ent-1 seq 3", "does not lead to the root"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
}

// TestVerifyDetectsForgedCheckpoint: a checkpoint not signed by the
// published key is refused, and nothing is proven against it.
func TestVerifyDetectsForgedCheckpoint(t *testing.T) {
	f := newFakeConsole(t)
	skey, _, err := ledger.GenerateKey("console.test/log")
	if err != nil {
		t.Fatal(err)
	}
	if f.checkpointSigner, _, err = ledger.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	code, out, _ := f.run(t, "verify", "acme")
	if code != exitFailure || !strings.Contains(out, "bad_checkpoint") || !strings.Contains(out, "NOT VERIFIED") {
		t.Errorf("verify = %d\n%s", code, out)
	}
	for _, r := range f.requests {
		if strings.Contains(r, "/proof") {
			t.Errorf("a proof was fetched for an unverified checkpoint: %s", r)
		}
	}
}

// TestVerifyDetectsDeletedReceipt: an instance whose last receipt is gone
// from the store fails with missing_receipt.
func TestVerifyDetectsDeletedReceipt(t *testing.T) {
	f := newFakeConsole(t)
	rs := f.receipts["acme"]
	f.receipts["acme"] = append(rs[:2:2], rs[3:]...)
	code, out, _ := f.run(t, "verify", "acme")
	if code != exitFailure || !strings.Contains(out, "missing_receipt") || !strings.Contains(out, "version 3") {
		t.Errorf("verify = %d\n%s", code, out)
	}
}

// TestVerifyPendingReceiptsAreNotFailures: receipts stored after the
// checkpoint are reported pending, and the tenant verifies.
func TestVerifyPendingReceiptsAreNotFailures(t *testing.T) {
	f := newFakeConsole(t)
	f.size = 2
	code, out, errs := f.run(t, "verify", "acme", "-json")
	var rep verifyOutput
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitOK || !rep.OK {
		t.Fatalf("verify = %d %v\n%s%s", code, err, out, errs)
	}
	if rep.Included != 2 || rep.Pending != 3 {
		t.Errorf("included %d pending %d, want 2 and 3", rep.Included, rep.Pending)
	}
}

// TestConsole503ThenSuccess: a transient answer to a read is retried.
func TestConsole503ThenSuccess(t *testing.T) {
	f := newFakeConsole(t)
	var n atomic.Int32
	f.fail = func(r *http.Request) int {
		if n.Add(1) <= 2 {
			return 503
		}
		return -1
	}
	code, out, errs := f.run(t, "tenants")
	if code != exitOK || !strings.Contains(out, "acme") {
		t.Errorf("tenants after two 503 = %d %s %s", code, out, errs)
	}
}

// TestSendIsNotRepublishedAfter503: an event whose publication may have
// happened is not sent twice; the failure is reported.
func TestSendIsNotRepublishedAfter503(t *testing.T) {
	f := newFakeConsole(t)
	var posts atomic.Int32
	f.fail = func(r *http.Request) int {
		if r.Method == http.MethodPost {
			posts.Add(1)
			return 503
		}
		return -1
	}
	code, _, errs := f.run(t, "send", "billing.payment_failed", "-tenant", "acme", "-subject", "2026-11")
	if code != exitFailure || posts.Load() != 1 || !strings.Contains(errs, "injected 503") {
		t.Errorf("send after 503 = %d, %d posts, %s", code, posts.Load(), errs)
	}
}

// TestConsoleDownIsAFailure: a console that does not answer exits 1 with
// the reason, after retries.
func TestConsoleDownIsAFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	code, _, errs := runTest(t, cliEnv{}, "tenants", "-url", "http://"+addr)
	if code != exitFailure || !strings.Contains(errs, "connection refused") {
		t.Errorf("tenants against nothing = %d %s", code, errs)
	}
}

// TestNonJSONErrorIsPrintedPlainly: a proxy's HTML error page is shown
// cut, on one line.
func TestNonJSONErrorIsPrintedPlainly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, "<html>\nbad\trequest</html>")
	}))
	defer srv.Close()
	code, _, errs := runTest(t, cliEnv{}, "tenants", "-url", srv.URL)
	if code != exitFailure || !strings.Contains(errs, "<html> bad request</html> (error, HTTP 400)") {
		t.Errorf("tenants = %d %q", code, errs)
	}
}

// TestTerminalEscapesFromConsoleAreNeutralized: control characters in
// what the console answers do not reach the terminal.
func TestTerminalEscapesFromConsoleAreNeutralized(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/governors") {
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"no \u001b]0;pwned\u0007 tenant"}}`)
			return
		}
		fmt.Fprint(w, `{"tenants":["evil\u001b[2J\ttab"],"next":""}`)
	}))
	defer srv.Close()
	code, out, _ := runTest(t, cliEnv{}, "tenants", "-url", srv.URL)
	if code != 0 || strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, "evil?[2J?tab") {
		t.Errorf("tenants = %d %q", code, out)
	}
	_, _, errs := runTest(t, cliEnv{}, "governors", "acme", "-url", srv.URL)
	if strings.ContainsAny(errs, "\x1b\x07") {
		t.Errorf("stderr carries control characters: %q", errs)
	}
}

// TestIDTokenNotUsedForLoopback: the local console is called without a
// token (runTest fails the test if one is asked for).
func TestIDTokenNotUsedForLoopback(t *testing.T) {
	f := newFakeConsole(t)
	for _, u := range []string{f.srv.URL, strings.Replace(f.srv.URL, "127.0.0.1", "localhost", 1)} {
		code, _, errs := runTest(t, cliEnv{}, "tenants", "-url", u)
		if code != 0 {
			t.Fatalf("tenants -url %s = %d %s", u, code, errs)
		}
	}
	for _, a := range f.auth {
		if a != "" {
			t.Errorf("Authorization %q sent to a loopback console", a)
		}
	}
}

// remoteConsole serves f's routes over TLS as https://example.com:port
// (the test certificate's name) and returns the env to reach it.
func remoteConsole(t *testing.T, f *fakeConsole) (string, cliEnv) {
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, ServerName: "example.com"}
	_, port, _ := net.SplitHostPort(addr)
	return "https://example.com:" + port, cliEnv{transport: tr}
}

// TestIDTokenForRemoteConsole: a console elsewhere gets a Google ID token
// minted for its URL.
func TestIDTokenForRemoteConsole(t *testing.T) {
	f := newFakeConsole(t)
	u, env := remoteConsole(t, f)
	var audience string
	env.tokenSource = func(_ context.Context, aud string) (oauth2.TokenSource, error) {
		audience = aud
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "id-token-1"}), nil
	}
	code, out, errs := runTest(t, env, "tenants", "-url", u+"/")
	if code != 0 || !strings.Contains(out, "acme") {
		t.Fatalf("tenants = %d %s %s", code, out, errs)
	}
	if audience != u {
		t.Errorf("audience %q, want %q", audience, u)
	}
	if last := f.auth[len(f.auth)-1]; last != "Bearer id-token-1" {
		t.Errorf("Authorization %q", last)
	}
}

// TestIDTokenFromEnvironment: $AUTONOMICS_ID_TOKEN is sent as is.
func TestIDTokenFromEnvironment(t *testing.T) {
	f := newFakeConsole(t)
	u, env := remoteConsole(t, f)
	env.getenv = func(k string) string {
		if k == envIDToken {
			return "user-token\n"
		}
		return ""
	}
	if code, _, errs := runTest(t, env, "tenants", "-url", u); code != 0 {
		t.Fatalf("tenants = %d %s", code, errs)
	}
	if last := f.auth[len(f.auth)-1]; last != "Bearer user-token" {
		t.Errorf("Authorization %q", last)
	}
}

// TestMissingCredentialsAreExplained: without credentials that mint ID
// tokens the command fails saying what to do.
func TestMissingCredentialsAreExplained(t *testing.T) {
	f := newFakeConsole(t)
	u, env := remoteConsole(t, f)
	env.tokenSource = func(context.Context, string) (oauth2.TokenSource, error) {
		return nil, fmt.Errorf("idtoken: unsupported credentials type")
	}
	code, _, errs := runTest(t, env, "tenants", "-url", u)
	if code != exitFailure || !strings.Contains(errs, "unsupported credentials type") || !strings.Contains(errs, "--impersonate-service-account") {
		t.Errorf("tenants = %d %s", code, errs)
	}
	if len(f.requests) != 0 {
		t.Errorf("requests sent without a token: %v", f.requests)
	}
}

// TestRefusedIDTokenIsExplained: a 403 of the deployment says what
// permission is missing.
func TestRefusedIDTokenIsExplained(t *testing.T) {
	f := newFakeConsole(t)
	f.fail = func(*http.Request) int { return 403 }
	u, env := remoteConsole(t, f)
	env.tokenSource = func(context.Context, string) (oauth2.TokenSource, error) {
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}), nil
	}
	code, _, errs := runTest(t, env, "tenants", "-url", u)
	if code != exitFailure || !strings.Contains(errs, "roles/run.invoker") {
		t.Errorf("tenants = %d %s", code, errs)
	}
}

// TestIDTokenNeverSentInClear: a remote console over http is refused
// before any request.
func TestIDTokenNeverSentInClear(t *testing.T) {
	code, _, errs := runTest(t, cliEnv{}, "tenants", "-url", "http://console.example.com")
	if code != exitUsage || !strings.Contains(errs, "use https") {
		t.Errorf("tenants -url http://remote = %d %s", code, errs)
	}
}

// TestURLFromEnvironment: $AUTONOMICS_CONSOLE_URL is the default -url.
func TestURLFromEnvironment(t *testing.T) {
	f := newFakeConsole(t)
	env := cliEnv{getenv: func(k string) string {
		if k == envConsoleURL {
			return f.srv.URL
		}
		return ""
	}}
	if code, out, errs := runTest(t, env, "tenants"); code != 0 || !strings.Contains(out, "acme") {
		t.Errorf("tenants = %d %s %s", code, out, errs)
	}
}

// TestFixturesAreSendable: every fixture parses, and each of its events is
// one the machines let the provider (class external) send, with data
// they accept.
func TestFixturesAreSendable(t *testing.T) {
	fixtures, err := loadFixtures()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"trial-ends", "payment-fails", "plan-change"} {
		if _, ok := fixtures[name]; !ok {
			t.Errorf("no fixture %s", name)
		}
	}
	ms := machines.New(nil)
	for name, fx := range fixtures {
		if fx.Description == "" || len(fx.Events) == 0 || fx.Subject == "" {
			t.Errorf("fixture %s: description, subject and events are required", name)
		}
		for i, e := range fx.expand("", testNow) {
			full, err := eventType(e.Type)
			if err != nil || full != e.Type {
				t.Errorf("fixture %s event %d: type %s: %v", name, i, e.Type, err)
				continue
			}
			d, ev, _ := strings.Cut(strings.TrimPrefix(e.Type, "autonomics."), ".")
			m := ms[governor.Domain(d)]
			if m == nil || !m.May(governor.SenderExternal, governor.EventName(ev)) {
				t.Errorf("fixture %s event %d: %s may not be sent by the provider", name, i, e.Type)
				continue
			}
			data, err := dataArg(e.Data)
			if err != nil {
				t.Errorf("fixture %s event %d: data: %v", name, i, err)
				continue
			}
			if check := m.Payloads[governor.EventName(ev)]; check != nil {
				if err := check(data); err != nil {
					t.Errorf("fixture %s event %d: %s refuses data %s: %v", name, i, e.Type, data, err)
				}
			}
			if strings.Contains(e.Subject, "{") {
				t.Errorf("fixture %s event %d: subject %s not expanded", name, i, e.Subject)
			}
		}
	}
}

// TestParseInterleaved: flags may follow the positional arguments.
func TestParseInterleaved(t *testing.T) {
	c := &cliCall{env: cliEnv{stderr: &strings.Builder{}}}
	fs := c.flags("x")
	n := fs.Int("n", 0, "")
	pos, err := parseInterleaved(fs, []string{"a", "-n", "3", "b", "-json", "--", "-c"})
	if err != nil || *n != 3 || !c.json || !slices.Equal(pos, []string{"a", "b", "-c"}) {
		t.Errorf("parseInterleaved = %v %v n=%d json=%v", pos, err, *n, c.json)
	}
}

// TestTimeArg covers the forms of -since.
func TestTimeArg(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"2026-11-01T00:00:00+01:00", time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC)},
		{"2h", testNow.Add(-2 * time.Hour)},
		{"-30m", testNow.Add(-30 * time.Minute)},
	} {
		got, err := timeArg("-since", tt.in, testNow)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("timeArg(%q) = %v %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

// TestVerifyWarnsOfStalePending: a rewritten, rehashed last receipt is in
// no tree; when the checkpoint was signed well after its decision, verify
// says so (a warning: integration may lag).
func TestVerifyWarnsOfStalePending(t *testing.T) {
	f := newFakeConsole(t)
	r := &f.receipts["acme"][2]
	r.ToState = "cancelled"
	r.Hash = r.ComputeHash()
	f.mux.HandleFunc("GET /api/v1/checkpoints", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"checkpoints":[{"size":%d,"root":"x","time":"2026-11-21T00:00:00Z"}]}`, f.size)
	})
	code, out, errs := f.run(t, "verify", "acme")
	if code != exitOK || !strings.Contains(out, "warnings:") || !strings.Contains(out, "not_integrated  receipt acme/subscription/ent-1 seq 3") {
		t.Errorf("verify = %d\n%s%s", code, out, errs)
	}
}

// TestVerifyDetectsRewrittenLastReceipt: when the console lists the
// instances' last hashes, a rehashed last receipt fails with
// head_mismatch.
func TestVerifyDetectsRewrittenLastReceipt(t *testing.T) {
	f := newFakeConsole(t)
	g := &f.governors["acme"][0]
	g.LastHash = f.receipts["acme"][2].Hash
	r := &f.receipts["acme"][2]
	r.ToState = "cancelled"
	r.Hash = r.ComputeHash()
	code, out, _ := f.run(t, "verify", "acme")
	if code != exitFailure || !strings.Contains(out, "head_mismatch  acme/subscription/ent-1") {
		t.Errorf("verify = %d\n%s", code, out)
	}
}
