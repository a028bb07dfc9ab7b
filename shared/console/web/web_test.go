package web

import (
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/receipt"
)

func newConsole(tb testing.TB, d Data) *Console {
	tb.Helper()
	c, err := New(Options{Data: d, Logger: quiet, Now: func() time.Time { return now },
		TraceURL: func(id string) string { return "https://trace.example/" + id }})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// get serves one request and returns the status and body.
func do(tb testing.TB, h http.Handler, r *http.Request) (int, string) {
	tb.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func get(tb testing.TB, h http.Handler, path string) (int, string) {
	return do(tb, h, httptest.NewRequest(http.MethodGet, path, nil))
}

func postForm(path string, v url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	return r
}

func TestNewRequiresData(t *testing.T) {
	if _, err := New(Options{}); fault.ErrorCode(err) != fault.Invalid {
		t.Fatalf("New(no data) = %v, want invalid", err)
	}
}

func TestTenantsSearchAndPaging(t *testing.T) {
	f := newFakeData()
	for _, n := range []string{"acme", "acme-eu", "acme-us", "globex", "initech"} {
		f.addTenant(n)
	}
	c, err := New(Options{Data: f, Logger: quiet, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler()
	for _, tc := range []struct {
		path      string
		want      []string
		wantNext  string
		notWanted []string
	}{
		{"/", []string{"acme", "acme-eu"}, "after=acme-eu", []string{"globex"}},
		{"/?prefix=acme&after=acme-eu", []string{"acme-us"}, "", []string{"globex", `href="/tenants/acme-eu"`}},
		{"/?prefix=g", []string{"globex"}, "", []string{"initech"}},
		{"/?prefix=zzz", []string{"No tenant starts with"}, "", nil},
	} {
		code, body := get(t, h, tc.path)
		if code != 200 {
			t.Fatalf("GET %s = %d", tc.path, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: missing %q", tc.path, w)
			}
		}
		for _, w := range tc.notWanted {
			if strings.Contains(body, w) {
				t.Errorf("GET %s: shows %q", tc.path, w)
			}
		}
		if hasNext := strings.Contains(body, `rel="next"`); hasNext != (tc.wantNext != "") || tc.wantNext != "" && !strings.Contains(body, tc.wantNext) {
			t.Errorf("GET %s: next link %v, want %q", tc.path, hasNext, tc.wantNext)
		}
	}
}

// currentOf returns the data-state of the highlighted node of the diagram
// of domain in the page.
func currentOf(body string, domain governor.Domain) []string {
	i := strings.Index(body, `data-domain="`+string(domain)+`">`)
	if i < 0 {
		return nil
	}
	svg := body[i:]
	svg = svg[:strings.Index(svg, "</svg>")]
	re := regexp.MustCompile(`<g class="node[^"]* current" data-state="([^"]+)"`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(svg, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestTenantPageHighlightsCurrentState(t *testing.T) {
	fx := newFixture(t)
	h := newConsole(t, fx.data).Handler()
	code, body := get(t, h, "/tenants/acme")
	if code != 200 {
		t.Fatalf("GET /tenants/acme = %d: %s", code, body)
	}
	for d, want := range map[governor.Domain]string{
		governor.Subscription: "past_due", governor.Entitlement: "suspended", governor.Billing: "dunning",
		governor.CustomerAccount: "active", governor.QuotaSLA: "warning", governor.MultiTenant: "none",
	} {
		if got := currentOf(body, d); len(got) != 1 || got[0] != want {
			t.Errorf("%s: highlighted %v, want [%s]", d, got, want)
		}
	}
	for _, want := range []string{"grace", "due in 6d 23h", "retry", `seats&#34;: 12`, "no instance yet", "ent-7d1f"} {
		if !strings.Contains(body, want) {
			t.Errorf("tenant page lacks %q", want)
		}
	}
	if n := strings.Count(body, `<section class="governor"`); n != 8 {
		t.Errorf("tenant page shows %d governors, want 8 (one instance each)", n)
	}
}

func TestUnknownTenantIs404(t *testing.T) {
	h := newConsole(t, newFixture(t).data).Handler()
	if code, _ := get(t, h, "/tenants/nobody"); code != 404 {
		t.Fatalf("GET unknown tenant = %d, want 404", code)
	}
}

func TestTimelineNewestFirstWithFilters(t *testing.T) {
	fx := newFixture(t)
	h := newConsole(t, fx.data).Handler()
	_, body := get(t, h, "/tenants/acme/timeline")
	all := fx.chain.all
	first, last := strings.Index(body, all[len(all)-1].Hash), strings.Index(body, all[0].Hash)
	if first < 0 || last < 0 || first > last {
		t.Fatalf("timeline not newest first (newest at %d, oldest at %d)", first, last)
	}
	_, body = get(t, h, "/tenants/acme/timeline?domain=billing")
	if strings.Contains(body, "<code>autonomics.subscription.") || !strings.Contains(body, "<code>autonomics.billing.payment_failed") {
		t.Errorf("domain filter not applied")
	}
	since := all[len(all)-4].DecidedAt[:19]
	_, body = get(t, h, "/tenants/acme/timeline?since="+since)
	if n := strings.Count(body, `<li class="receipt"`); n != 4 {
		t.Errorf("since=%s shows %d receipts, want the cascade's 4", since, n)
	}
	if !strings.Contains(body, `href="https://trace.example/0af7651916cd43dd8448eb211c80319c"`) {
		t.Errorf("trace link missing")
	}
}

func TestTimelinePaging(t *testing.T) {
	f := newFakeData()
	bulk(f, 20, 400, 2)
	c, err := New(Options{Data: f, Logger: quiet, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	_, body := get(t, c.Handler(), "/tenants/tenant-00000/timeline")
	if n := strings.Count(body, `<li class="receipt"`); n != 10 {
		t.Errorf("page shows %d receipts, want 10", n)
	}
	if !strings.Contains(body, "page_token=10") {
		t.Errorf("no link to the next page")
	}
	_, body = get(t, c.Handler(), "/tenants/tenant-00000/timeline?page_token=10")
	if !strings.Contains(body, "page_token=20") || !strings.Contains(body, ">Newest</a>") {
		t.Errorf("second page lacks its links")
	}
}

func TestHostileInputIsRefused(t *testing.T) {
	fx := newFixture(t)
	h := newConsole(t, fx.data).Handler()
	for _, tc := range []struct {
		name, path string
		want       int
	}{
		{"BadTenantID", "/tenants/__system", 400},
		{"TenantWithSpace", "/tenants/ac%20me", 400},
		{"TooLongTenant", "/tenants/" + strings.Repeat("a", 200), 400},
		{"UnknownDomain", "/tenants/acme/timeline?domain=payroll", 400},
		{"BadSince", "/tenants/acme/timeline?since=yesterday", 400},
		{"YearOutOfRange", "/tenants/acme/timeline?until=0000-01-01T00:00:00Z", 400},
		{"SinceAfterUntil", "/tenants/acme/timeline?since=2026-02-01T00:00&until=2026-01-01T00:00", 400},
		{"ControlCharInPageToken", "/tenants/acme/timeline?page_token=%00abc", 400},
		{"HugePageToken", "/tenants/acme/timeline?page_token=" + strings.Repeat("x", 2000), 400},
		{"ForgedPageToken", "/tenants/acme/timeline?page_token=-5", 400},
		{"ControlCharInPrefix", "/?prefix=a%0Ab", 400},
		{"HugePrefix", "/?prefix=" + strings.Repeat("a", 300), 400},
		{"HugeCorrelation", "/tenants/acme/cascades/" + strings.Repeat("c", 300), 400},
		{"UnknownCorrelation", "/tenants/acme/cascades/nothing-here", 404},
		{"ControlCharInDeadLetterCursor", "/deadletters?after=%01", 400},
		{"NoSuchPage", "/admin", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, h, tc.path)
			if code != tc.want {
				t.Fatalf("GET %s = %d, want %d", tc.path, code, tc.want)
			}
			if !strings.Contains(body, `class="problem"`) {
				t.Errorf("error page lacks its message")
			}
		})
	}
}

func TestReceiptMarkupIsEscaped(t *testing.T) {
	f := newFakeData()
	c := newChainer(now)
	evil := `</script><script>alert(1)</script><img src=x onerror=alert(2)>`
	c.decide(step{key: governor.Key{Tenant: "evil", Domain: governor.Billing, Subject: "default"}, id: evil, source: evil, event: "opened", reject: evil, corr: evil})
	c.install(f)
	h := newConsole(t, f).Handler()
	for _, path := range []string{"/tenants/evil/timeline", "/tenants/evil/cascades/" + url.PathEscape(evil)} {
		code, body := get(t, h, path)
		if code != 200 {
			t.Fatalf("GET %s = %d", path, code)
		}
		for _, bad := range []string{"<script>alert", "<img src=x"} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s: markup from a receipt reached the page: %q", path, bad)
			}
		}
	}
	_, body := get(t, h, "/tenants/evil/timeline")
	i := strings.Index(body, `id="receipts-data">`)
	j := strings.Index(body[i:], "</script>")
	if strings.Contains(body[i:i+j], "<") {
		t.Errorf("receipts JSON holds a raw '<'")
	}
}

func TestCascadeDrawsCausationTree(t *testing.T) {
	fx := newFixture(t)
	c := newConsole(t, fx.data)
	rs, _ := fx.data.Cascade(t.Context(), "acme", fx.failCor, MaxCascade)
	roots := c.tree(rs)
	if len(roots) != 1 || roots[0].R.Domain != "billing" {
		t.Fatalf("roots = %d, want the billing receipt alone", len(roots))
	}
	sub := roots[0].Children
	if len(sub) != 1 || sub[0].R.Domain != "subscription" {
		t.Fatalf("billing's children = %v", sub)
	}
	var doms []string
	for _, ch := range sub[0].Children {
		doms = append(doms, ch.R.Domain+":"+ch.R.Outcome)
	}
	if strings.Join(doms, ",") != "entitlement:accepted,quota_sla:rejected" {
		t.Errorf("subscription's children = %v", doms)
	}
	code, body := get(t, c.Handler(), "/tenants/acme/cascades/"+fx.failCor)
	if code != 200 || strings.Count(body, `class="cnode"`) != 4 || !strings.Contains(body, "trace.example/0af7651916cd43dd8448eb211c80319c") {
		t.Errorf("cascade page: %d, %d nodes", code, strings.Count(body, `class="cnode"`))
	}
}

func TestCascadeCycleOfForgedReceiptsTerminates(t *testing.T) {
	c := newConsole(t, newFakeData())
	a := receipt.Receipt{ExecutionID: "a", Hash: "ha", Actions: []receipt.Action{{ID: "b"}}}
	b := receipt.Receipt{ExecutionID: "b", Hash: "hb", Actions: []receipt.Action{{ID: "a"}}}
	self := receipt.Receipt{ExecutionID: "s", Hash: "hs", Actions: []receipt.Action{{ID: "s"}}}
	roots := c.tree([]receipt.Receipt{a, b, self})
	count := 0
	var walk func([]*receiptView)
	walk = func(vs []*receiptView) {
		for _, v := range vs {
			count++
			walk(v.Children)
		}
	}
	walk(roots)
	if count != 3 {
		t.Errorf("tree shows %d nodes, want each receipt once (3)", count)
	}
}

func TestCreateAndExpireSilence(t *testing.T) {
	fx := newFixture(t)
	h := newConsole(t, fx.data).Handler()
	r := postForm("/alerts/silences", url.Values{"matchers": {"alertname=receipts_stalled, domain=billing"}, "duration": {"2h"}, "comment": {"deploy"}})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/alerts" {
		t.Fatalf("POST silence = %d %s", w.Code, w.Header().Get("Location"))
	}
	if len(fx.data.silences) != 1 {
		t.Fatalf("silences = %v", fx.data.silences)
	}
	s := fx.data.silences[0]
	if s.Matchers["alertname"] != "receipts_stalled" || s.Matchers["domain"] != "billing" || !s.EndsAt.Equal(now.Add(2*time.Hour)) || s.Comment != "deploy" {
		t.Errorf("silence = %+v", s)
	}
	_, body := get(t, h, "/alerts")
	if !strings.Contains(body, `action="/alerts/silences/s-1/expire"`) {
		t.Fatalf("alerts page lacks the expire form")
	}
	code, _ := do(t, h, postForm("/alerts/silences/s-1/expire", nil))
	if code != http.StatusSeeOther || fx.data.silences[0].Active {
		t.Errorf("expire = %d, active %v", code, fx.data.silences[0].Active)
	}
	if code, _ := do(t, h, postForm("/alerts/silences/nope/expire", nil)); code != 404 {
		t.Errorf("expire unknown = %d, want 404", code)
	}
}

func TestBadSilenceFormIsAnsweredWithReasonAndCreatesNothing(t *testing.T) {
	fx := newFixture(t)
	h := newConsole(t, fx.data).Handler()
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"NoMatchers", url.Values{"matchers": {""}, "duration": {"1h"}}, "want 1 to 16 matchers"},
		{"MatcherWithoutValue", url.Values{"matchers": {"alertname"}, "duration": {"1h"}}, "want name=value"},
		{"NegativeDuration", url.Values{"matchers": {"a=b"}, "duration": {"-1h"}}, "positive duration"},
		{"Garbage", url.Values{"matchers": {"a=b"}, "duration": {"soon"}}, "positive duration"},
		{"DataRefuses", url.Values{"matchers": {"a=b"}, "duration": {"1h"}, "comment": {strings.Repeat("c", 2000)}}, "longer than 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, h, postForm("/alerts/silences", tc.form))
			if code != 400 || !strings.Contains(body, tc.want) {
				t.Errorf("POST = %d, body lacks %q", code, tc.want)
			}
			if len(fx.data.silences) != 0 {
				t.Errorf("a silence was created")
			}
		})
	}
}

func TestOversizeFormIsRefused(t *testing.T) {
	fx := newFixture(t)
	h := newConsole(t, fx.data).Handler()
	code, _ := do(t, h, postForm("/alerts/silences", url.Values{"matchers": {"a=b"}, "duration": {"1h"}, "comment": {strings.Repeat("x", MaxFormBytes)}}))
	if code != 400 || len(fx.data.silences) != 0 {
		t.Errorf("oversize form = %d, %d silences", code, len(fx.data.silences))
	}
}

func TestCrossOriginFormIsRefused(t *testing.T) {
	fx := newFixture(t)
	h := newConsole(t, fx.data).Handler()
	for _, path := range []string{"/alerts/silences", "/deadletters/dl-3/replay", "/alerts/silences/s-1/expire"} {
		r := postForm(path, url.Values{"matchers": {"a=b"}, "duration": {"1h"}})
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		if code, _ := do(t, h, r); code != http.StatusForbidden {
			t.Errorf("cross-site POST %s = %d, want 403", path, code)
		}
	}
	if len(fx.data.silences) != 0 || len(fx.data.replayed) != 0 {
		t.Errorf("a cross-site form changed something")
	}
}

func TestReplayShowsResult(t *testing.T) {
	fx := newFixture(t)
	h := newConsole(t, fx.data).Handler()
	code, body := do(t, h, postForm("/deadletters/dl-3/replay", nil))
	if code != 200 || fx.data.replayed["dl-3"] == "" || !strings.Contains(body, `<code class="published">`+fx.data.replayed["dl-3"]) {
		t.Errorf("replay = %d, replayed %v", code, fx.data.replayed)
	}
}

func TestReplayOfInternalEventIsRefusedWithReason(t *testing.T) {
	fx := newFixture(t)
	h := newConsole(t, fx.data).Handler()
	_, page := get(t, h, "/deadletters")
	if strings.Contains(page, `action="/deadletters/dl-2/replay"`) {
		t.Errorf("the page offers to replay an internal event")
	}
	code, body := do(t, h, postForm("/deadletters/dl-2/replay", nil))
	if code != 409 || !strings.Contains(body, "internal topic") || len(fx.data.replayed) != 0 {
		t.Errorf("forged replay = %d (replayed %v)", code, fx.data.replayed)
	}
	if code, _ := do(t, h, postForm("/deadletters/nope/replay", nil)); code != 404 {
		t.Errorf("replay unknown = %d, want 404", code)
	}
}

func TestDeadLettersAndLedgerPages(t *testing.T) {
	fx := newFixture(t)
	h := newConsole(t, fx.data).Handler()
	_, body := get(t, h, "/deadletters")
	for _, want := range []string{`unknown field &#34;seatz&#34;`, "dl-1", "ce-source", "not replayable: it came from the internal topic"} {
		if !strings.Contains(body, want) {
			t.Errorf("dead letters page lacks %q", want)
		}
	}
	_, body = get(t, h, "/ledger")
	body = html.UnescapeString(body)
	if !strings.Contains(body, fx.data.cps[0].Root) || !strings.Contains(body, fmt.Sprintf(`class="num">%d<`, fx.data.cps[0].Size)) {
		t.Errorf("ledger page lacks the checkpoint")
	}
}

func TestUnavailableDataIs503(t *testing.T) {
	fx := newFixture(t)
	fx.data.fail = fault.Errorf(fault.Unavailable, "fake", "firestore is down")
	h := newConsole(t, fx.data).Handler()
	for _, p := range []string{"/", "/tenants/acme", "/tenants/acme/timeline", "/alerts", "/deadletters", "/ledger"} {
		if code, _ := get(t, h, p); code != 503 {
			t.Errorf("GET %s with the store down = %d, want 503", p, code)
		}
	}
	fx.data.fail = errors.New("secret detail")
	code, body := get(t, h, "/")
	if code != 500 || strings.Contains(body, "secret detail") {
		t.Errorf("internal error = %d, leaks detail %v", code, strings.Contains(body, "secret detail"))
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newConsole(t, newFixture(t).data).Handler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if code, body := get(t, h, "/static/console.css"); code != 200 || !strings.Contains(body, "svg.diagram") {
		t.Errorf("static css = %d", code)
	}
}

func TestDiagramsOfEveryMachine(t *testing.T) {
	for d, m := range machines.New(nil) {
		dg := NewDiagram(m)
		for _, cur := range append([]governor.State{governor.StateNone}, m.States...) {
			svg := string(dg.SVG("x", cur))
			dec := xml.NewDecoder(strings.NewReader(svg))
			for {
				_, err := dec.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s/%s: SVG is not well-formed: %v", d, cur, err)
				}
			}
			if got := currentOf(`data-domain="`+string(d)+`">`+svg[strings.Index(svg, ">")+1:], d); len(got) != 1 || got[0] != string(cur) {
				t.Errorf("%s/%s: highlighted %v", d, cur, got)
			}
			for _, s := range m.States {
				if !strings.Contains(svg, `data-state="`+string(s)+`"`) {
					t.Errorf("%s: state %s not drawn", d, s)
				}
			}
			if !strings.Contains(svg, `<title id="x-t">`+string(d)+" state diagram") || !strings.Contains(svg, `role="img"`) {
				t.Errorf("%s: SVG lacks its accessible title", d)
			}
		}
	}
}

func TestDueIn(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{7 * 24 * time.Hour, "in 7d 0h"},
		{26*time.Hour + 30*time.Minute, "in 1d 2h"},
		{90 * time.Minute, "in 1h 30m"},
		{61 * time.Second, "in 1m 1s"},
		{5 * time.Second, "in 5s"},
		{-3 * time.Minute, "overdue by 3m 0s"},
	} {
		if got := dueIn(now.Add(tc.d), now); got != tc.want {
			t.Errorf("dueIn(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
