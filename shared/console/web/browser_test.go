package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// browserBinary returns the Chromium binary; the test is skipped when
// there is none, unless CI=true, where a missing browser fails it.
func browserBinary(tb testing.TB) string {
	tb.Helper()
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
		tb.Fatal("chromium is not installed (apt-get install -y chromium)")
	}
	tb.Skip("chromium is not installed (apt-get install -y chromium); set CI=true to fail instead")
	return ""
}

// consoleServer serves the pages and the fixture's ledger API on one
// origin, as the console service does.
func consoleServer(tb testing.TB, fx *fixture) *httptest.Server {
	tb.Helper()
	c := newConsole(tb, fx.data)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", fx.apiHandler())
	mux.Handle("/", c.Handler())
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv
}

// tab starts a headless Chromium with a laptop-sized window and returns a
// tab in it.
func tab(tb testing.TB, width, height int) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserBinary(tb)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(width, height),
		chromedp.UserDataDir(tb.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	tb.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		tb.Fatalf("start the browser: %v", err)
	}
	return ctx
}

func run(tb testing.TB, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.Fatal(err)
	}
}

func eval[T any](tb testing.TB, ctx context.Context, expr string) T {
	tb.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.Fatalf("evaluate %.200s: %v", expr, err)
	}
	return v
}

func TestBrowserTenantShowsHighlightedState(t *testing.T) {
	fx := newFixture(t)
	srv := consoleServer(t, fx)
	ctx := tab(t, 1366, 900)
	run(t, ctx, chromedp.Navigate(srv.URL+"/"), chromedp.Click(chromedp.CSS(`a[href="/tenants/acme"]`)),
		chromedp.WaitVisible(chromedp.CSS(`section[data-domain="subscription"] svg`)))
	got := eval[string](t, ctx, `document.querySelector('section[data-domain="subscription"] svg g.node.current').dataset.state`)
	if got != "past_due" {
		t.Errorf("highlighted subscription state = %q, want past_due", got)
	}
	fill := eval[string](t, ctx, `getComputedStyle(document.querySelector('section[data-domain="subscription"] svg g.node.current rect')).fill`)
	other := eval[string](t, ctx, `getComputedStyle(document.querySelector('section[data-domain="subscription"] svg g.node[data-state="active"] rect')).fill`)
	if fill == other {
		t.Errorf("the current state is drawn like the others (fill %s)", fill)
	}
	title := eval[string](t, ctx, `document.querySelector('section[data-domain="subscription"] svg > title').textContent`)
	if !strings.Contains(title, "current state past_due") {
		t.Errorf("diagram title = %q", title)
	}
	timers := eval[string](t, ctx, `document.querySelector('section[data-domain="subscription"] ul.timers').innerText`)
	if !strings.Contains(timers, "grace due in 6d 23h") {
		t.Errorf("armed timers = %q", timers)
	}
}

func TestBrowserExpandCascadeByKeyboard(t *testing.T) {
	fx := newFixture(t)
	srv := consoleServer(t, fx)
	ctx := tab(t, 1366, 900)
	run(t, ctx, chromedp.Navigate(srv.URL+"/tenants/acme/timeline?domain=billing"),
		chromedp.Click(chromedp.CSS(`li.receipt[data-outcome] summary`)),
		chromedp.Click(chromedp.CSS(`a[href$="/cascades/`+fx.failCor+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`ul.tree`)))
	depth := eval[int](t, ctx, `document.querySelectorAll('ul.tree li.cnode li.cnode li.cnode').length`)
	if depth != 2 {
		t.Errorf("grandchildren of the root = %d, want 2 (entitlement, quota_sla)", depth)
	}
	sel := `li.cnode[data-hash] ul li.cnode ul li.cnode summary`
	if eval[bool](t, ctx, `document.querySelector('`+sel+`').parentElement.open`) {
		t.Fatal("the receipt is expanded before it is asked to be")
	}
	run(t, ctx, chromedp.Focus(chromedp.CSS(sel)), chromedp.KeyEvent(kb.Enter))
	shown := eval[string](t, ctx, `(function(){var d=document.querySelector('`+sel+`').parentElement; return d.open ? d.querySelector('pre.json').innerText : ''})()`)
	if !strings.Contains(shown, `"execution_id"`) || !strings.Contains(shown, `"correlation_id": "`+fx.failCor+`"`) {
		t.Errorf("expanded receipt shows %q", shown)
	}
}

func TestBrowserCreateSilence(t *testing.T) {
	fx := newFixture(t)
	srv := consoleServer(t, fx)
	ctx := tab(t, 1366, 900)
	run(t, ctx, chromedp.Navigate(srv.URL+"/alerts"))
	eval[bool](t, ctx, `document.getElementById('duration').value = ''; true`)
	run(t, ctx, chromedp.SendKeys(chromedp.ID("matchers"), "alertname=receipts_stalled, domain=billing"),
		chromedp.SendKeys(chromedp.ID("duration"), "30m"),
		chromedp.SendKeys(chromedp.ID("comment"), "billing deploy"),
		chromedp.Click(chromedp.CSS(`form.silence-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.silence[data-id="s-1"]`)))
	row := eval[string](t, ctx, `document.querySelector('tr.silence[data-id="s-1"]').innerText`)
	if !strings.Contains(row, "alertname=receipts_stalled") || !strings.Contains(row, "billing deploy") {
		t.Errorf("silence row = %q", row)
	}
	if len(fx.data.silences) != 1 || !fx.data.silences[0].EndsAt.Equal(now.Add(30*time.Minute)) {
		t.Errorf("silences = %+v", fx.data.silences)
	}
	// Expire it with its button.
	run(t, ctx, chromedp.Click(chromedp.CSS(`tr.silence[data-id="s-1"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`tr.silence[data-id="s-1"] button`)))
	if fx.data.silences[0].Active {
		t.Errorf("silence still active after Expire")
	}
}

func TestBrowserReplayDeadLetter(t *testing.T) {
	fx := newFixture(t)
	srv := consoleServer(t, fx)
	ctx := tab(t, 1366, 900)
	run(t, ctx, chromedp.Navigate(srv.URL+"/deadletters"),
		chromedp.Click(chromedp.CSS(`tr.deadletter[data-id="dl-3"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.result.ok code.published`)))
	got := eval[string](t, ctx, `document.querySelector('.result.ok code.published').textContent`)
	if got == "" || got != fx.data.replayed["dl-3"] {
		t.Errorf("page shows published %q, data replayed %v", got, fx.data.replayed)
	}
	if eval[int](t, ctx, `document.querySelectorAll('tr.deadletter[data-id="dl-2"] button').length`) != 0 {
		t.Errorf("an internal event has a replay button")
	}
}

// verifyMarks clicks "Verify in browser" and returns each row's mark by
// receipt hash, and the status line.
func verifyMarks(tb testing.TB, ctx context.Context) (map[string][2]string, string) {
	tb.Helper()
	run(tb, ctx, chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.CSS(`#verify-status[data-result]`)))
	marks := eval[map[string][2]string](tb, ctx, `(function(){var m={}; document.querySelectorAll('li.receipt').forEach(function(li){m[li.dataset.hash]=[li.dataset.verified||'', li.querySelector('.mark').textContent]}); return m})()`)
	status := eval[string](tb, ctx, `document.getElementById('verify-status').textContent`)
	return marks, status
}

func TestBrowserVerifiesIntactReceipts(t *testing.T) {
	fx := newFixture(t)
	srv := consoleServer(t, fx)
	ctx := tab(t, 1366, 900)
	run(t, ctx, chromedp.Navigate(srv.URL+"/tenants/acme/timeline"))
	marks, status := verifyMarks(t, ctx)
	if len(marks) != len(fx.chain.all) {
		t.Fatalf("%d rows marked, want %d", len(marks), len(fx.chain.all))
	}
	for h, m := range marks {
		if m[0] != "ok" {
			t.Errorf("receipt %s: %v", h, m)
		}
	}
	if !strings.Contains(status, "All 12 receipts shown verified") {
		t.Errorf("status = %q", status)
	}
}

func TestBrowserFlagsTamperedReceiptRed(t *testing.T) {
	fx := newFixture(t)
	var victim string
	for _, r := range fx.chain.all {
		if r.Domain == "entitlement" && r.ToState == "suspended" {
			victim = r.Hash
		}
	}
	fx.tamper(victim)
	srv := consoleServer(t, fx)
	ctx := tab(t, 1366, 900)
	run(t, ctx, chromedp.Navigate(srv.URL+"/tenants/acme/timeline"))
	marks, status := verifyMarks(t, ctx)
	for h, m := range marks {
		switch {
		case h == victim && (m[0] != "bad" || !strings.Contains(m[1], "hash")):
			t.Errorf("tampered receipt marked %v, want bad with a hash mismatch", m)
		case h != victim && m[0] != "ok":
			t.Errorf("intact receipt %s marked %v", h, m)
		}
	}
	bg := eval[string](t, ctx, `getComputedStyle(document.querySelector('li.receipt[data-hash="`+victim+`"]')).backgroundColor`)
	if bg != "rgb(253, 236, 234)" {
		t.Errorf("tampered row background = %s, want the red tint", bg)
	}
	if !strings.Contains(status, "1 of 12 receipts failed") {
		t.Errorf("status = %q", status)
	}
}
