package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

func TestTenantsArePagedAndFiltered(t *testing.T) {
	f := newFixture(t, nil)
	for _, tn := range []string{"acme", "acme-eu", "beta", "acme-us", "zeta"} {
		f.apply(tn, governor.CustomerAccount, "requested", "", "")
	}
	tests := []struct {
		target, want, next string
	}{
		{"/api/v1/tenants?limit=2", "[acme acme-eu]", "acme-eu"},
		{"/api/v1/tenants?limit=2&after=acme-eu", "[acme-us beta]", "beta"},
		{"/api/v1/tenants?limit=2&after=beta", "[zeta]", ""},
		{"/api/v1/tenants?prefix=acme-", "[acme-eu acme-us]", ""},
		{"/api/v1/tenants?prefix=nobody", "[]", ""},
		{"/api/v1/tenants?limit=100000", "[acme acme-eu acme-us beta zeta]", ""},
	}
	for _, tt := range tests {
		code, body := f.do("GET", tt.target, "")
		p := decode[console.TenantPage](t, body)
		if code != 200 || fmt.Sprint(p.Tenants) != tt.want || p.Next != tt.next {
			t.Errorf("GET %s = %d %s, want %s next %q", tt.target, code, body, tt.want, tt.next)
		}
	}
}

func TestHostileQueriesAreRefused(t *testing.T) {
	f := newFixture(t, nil)
	f.apply("acme", governor.CustomerAccount, "requested", "", "")
	tests := []struct {
		name, method, target string
		status               int
		mention              string
	}{
		{"bad tenant id", "GET", "/api/v1/tenants/bad%20id/governors", 400, `\"bad id\"`},
		{"reserved tenant id", "GET", "/api/v1/tenants/__x__/receipts", 400, "tenant"},
		{"bad after", "GET", "/api/v1/tenants?after=a/b", 400, "after"},
		{"bad prefix", "GET", "/api/v1/tenants?prefix=%3Cscript%3E", 400, `\"\u003cscript\u003e\"`},
		{"negative limit", "GET", "/api/v1/tenants?limit=-1", 400, "limit"},
		{"bad receipts page token", "GET", "/api/v1/tenants/acme/receipts?page_token=forged", 400, "page token"},
		{"control character page token", "GET", "/api/v1/tenants/acme/receipts?page_token=%0a", 400, "page token"},
		{"long page token", "GET", "/api/v1/tenants/acme/receipts?page_token=" + strings.Repeat("a", 2000), 400, "limit"},
		{"bad dead-letter page token", "GET", "/api/v1/deadletters?after=d1.Zm9yZ2Vk", 400, "page token"},
		{"unknown domain", "GET", "/api/v1/tenants/acme/receipts?domain=payroll", 400, "domain"},
		{"bad since", "GET", "/api/v1/tenants/acme/receipts?since=yesterday", 400, "since"},
		{"since after until", "GET", "/api/v1/tenants/acme/receipts?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", 400, "before"},
		{"bad order", "GET", "/api/v1/tenants/acme/receipts?order=random", 400, "order"},
		{"bad proof hash", "GET", "/api/v1/receipts/zz/proof", 400, "hash"},
		{"bad proof size", "GET", "/api/v1/receipts/" + strings.Repeat("a", 64) + "/proof?size=0", 400, "size"},
		{"bad dead letter id", "GET", "/api/v1/deadletters/a..b%2F", 400, "dead letter id"},
		{"unknown route", "GET", "/api/v1/nothing", 404, "no route"},
		{"stream without tenant", "GET", "/api/v1/stream", 400, "tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.do(tt.method, tt.target, "")
			if code != tt.status || !strings.Contains(body, tt.mention) {
				t.Errorf("%s %s = %d %s, want %d mentioning %s", tt.method, tt.target, code, body, tt.status, tt.mention)
			}
			if len(body) > 1000 {
				t.Errorf("error body of %d bytes: input echoed unbounded", len(body))
			}
		})
	}
}

func TestGovernorsShowStateDataAndTimers(t *testing.T) {
	f := newFixture(t, nil)
	f.apply("acme", governor.CustomerAccount, "requested", "", "")
	code, body := f.do("GET", "/api/v1/tenants/acme/governors", "")
	v := decode[struct {
		TenantID  string             `json:"tenant_id"`
		Governors []console.Governor `json:"governors"`
	}](t, body)
	if code != 200 || v.TenantID != "acme" || len(v.Governors) != 1 {
		t.Fatalf("governors = %d %s", code, body)
	}
	g := v.Governors[0]
	if g.Domain != governor.CustomerAccount || g.State != "pending_verification" || g.Version != 1 || string(g.Data) == "" {
		t.Errorf("governor = %+v", g)
	}
	if len(g.Timers) != 1 || g.Timers[0].Name != "verification" || !g.Timers[0].Due.After(epoch) {
		t.Errorf("timers = %+v, want the armed verification timer", g.Timers)
	}
}

func TestReceiptsNewestFirstInPages(t *testing.T) {
	f := newFixture(t, nil)
	f.apply("acme", governor.CustomerAccount, "requested", "", "")
	f.apply("acme", governor.CustomerAccount, "verified", "", "")
	f.apply("acme", governor.CustomerAccount, "restricted", "", "")
	var seqs []int64
	next := ""
	for range 5 {
		code, body := f.do("GET", "/api/v1/tenants/acme/receipts?order=newest&limit=2&page_token="+next, "")
		p := decode[console.ReceiptPage](t, body)
		if code != 200 {
			t.Fatalf("receipts = %d %s", code, body)
		}
		for _, r := range p.Receipts {
			seqs = append(seqs, r.Seq)
		}
		if next = p.NextPageToken; next == "" {
			break
		}
	}
	if fmt.Sprint(seqs) != "[3 2 1]" {
		t.Errorf("newest first = %v, want [3 2 1]", seqs)
	}
	code, body := f.do("GET", "/api/v1/tenants/acme/receipts?domain=customer_account", "")
	p := decode[console.ReceiptPage](t, body)
	if code != 200 || len(p.Receipts) != 3 || p.Receipts[0].Seq != 1 {
		t.Errorf("oldest first = %d %s", code, body)
	}
}

func TestCascadeListsTheCorrelatedReceipts(t *testing.T) {
	f := newFixture(t, nil)
	id := f.apply("acme", governor.CustomerAccount, "requested", "", "")
	code, body := f.do("GET", "/api/v1/tenants/acme/cascades/"+id, "")
	cs := decode[console.Cascade](t, body)
	if code != 200 || len(cs.Receipts) != 1 || cs.Receipts[0].ExecutionID != id {
		t.Errorf("cascade = %d %s", code, body)
	}
	if code, body := f.do("GET", "/api/v1/tenants/acme/cascades/unknown", ""); code != 404 {
		t.Errorf("unknown cascade = %d %s, want 404", code, body)
	}
}

func TestCascadeTreeFollowsActions(t *testing.T) {
	cs := console.Cascade{Receipts: []receipt.Receipt{
		{Hash: "root", ExecutionID: "e0", Actions: []receipt.Action{{ID: "e1"}, {ID: "e2"}}},
		{Hash: "b", ExecutionID: "e2"},
		{Hash: "a", ExecutionID: "e1", Actions: []receipt.Action{{ID: "e3"}}},
		{Hash: "c", ExecutionID: "e3"},
		{Hash: "orphan", ExecutionID: "e9"},
	}}
	var got []string
	for _, n := range cs.Tree() {
		got = append(got, fmt.Sprintf("%s/%d/%s", n.Receipt.Hash, n.Depth, n.Parent))
	}
	want := "[root/0/ b/1/root a/1/root c/2/a orphan/0/]"
	if fmt.Sprint(got) != want {
		t.Errorf("Tree = %v, want %s", got, want)
	}
}

func TestCheckpointIsServedAndRecordedOnce(t *testing.T) {
	f := newFixture(t, nil)
	if code, _ := f.do("GET", "/api/v1/checkpoint", ""); code != 404 {
		t.Errorf("checkpoint before the first = %d, want 404", code)
	}
	f.ledger.set(5, 1)
	for range 3 {
		code, body := f.do("GET", "/api/v1/checkpoint", "")
		if code != 200 || !strings.HasPrefix(body, "autonomics\n5\n") {
			t.Fatalf("checkpoint = %d %q", code, body)
		}
	}
	if code, body := f.do("GET", "/api/v1/checkpoint/key", ""); code != 200 || body != "autonomics+key\n" {
		t.Errorf("key = %d %q", code, body)
	}
	f.ledger.set(9, 2)
	if err := f.console.RefreshCheckpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, body := f.do("GET", "/api/v1/checkpoints", "")
	v := decode[struct {
		Checkpoints []console.CheckpointRecord `json:"checkpoints"`
	}](t, body)
	if code != 200 || len(v.Checkpoints) != 2 || v.Checkpoints[0].Size != 9 || v.Checkpoints[1].Size != 5 || !v.Checkpoints[1].Time.Equal(epoch.Add(5*time.Second)) {
		t.Errorf("checkpoints = %d %s, want sizes 9 then 5", code, body)
	}
	code, body = f.do("GET", "/api/v1/receipts/"+strings.Repeat("a", 64)+"/proof?size=7", "")
	if code != 200 || !strings.Contains(body, `"tree_size":7`) {
		t.Errorf("proof = %d %s", code, body)
	}
}

func TestRoutesWithoutTheirBackendAre404(t *testing.T) {
	f := newFixture(t, func(o *console.Options) { o.Ledger = nil })
	for _, target := range []string{"/api/v1/checkpoint", "/api/v1/checkpoint/key", "/api/v1/receipts/" + strings.Repeat("a", 64) + "/proof", "/api/v1/alerts", "/api/v1/silences"} {
		if code, body := f.do("GET", target, ""); code != 404 {
			t.Errorf("GET %s = %d %s, want 404", target, code, body)
		}
	}
	if code, body := f.do("POST", "/api/v1/tenants/acme/clock:advance", `{"to":"2026-07-01T00:00:00Z"}`); code != 404 {
		t.Errorf("clock without a test clock = %d %s, want 404", code, body)
	}
}

func TestClockAdvance(t *testing.T) {
	fc := &fakeClock{}
	f := newFixture(t, func(o *console.Options) { o.Clock = fc })
	code, body := f.do("POST", "/api/v1/tenants/acme/clock:advance", `{"to":"2026-07-01T00:00:00+02:00"}`)
	v := decode[struct {
		Fired []console.Fired `json:"fired"`
	}](t, body)
	if code != 200 || len(v.Fired) != 1 || v.Fired[0].Receipt != "abc" || fc.tenant != "acme" || !fc.to.Equal(time.Date(2026, 6, 30, 22, 0, 0, 0, time.UTC)) {
		t.Errorf("advance = %d %s (clock got %s %s)", code, body, fc.tenant, fc.to)
	}
	for _, b := range []string{`{"to":"tomorrow"}`, `{"to":"2026-07-01T00:00:00Z","to":"2026-08-01T00:00:00Z"}`, `{"when":"x"}`} {
		if code, body := f.do("POST", "/api/v1/tenants/acme/clock:advance", b); code != 400 {
			t.Errorf("advance %s = %d %s, want 400", b, code, body)
		}
	}
	if code, _ := f.do("POST", "/api/v1/tenants/a%2Fb/clock:advance", `{"to":"2026-07-01T00:00:00Z"}`); code != 400 {
		t.Errorf("advance of a bad tenant = %d, want 400", code)
	}
}

func TestSendPublishesAValidatedEventToTheDomainTopic(t *testing.T) {
	f := newFixture(t, nil)
	body := `{"type":"autonomics.customer_account.requested","tenant":"acme","subject":"default","data":{}}`
	code, resp := f.do("POST", "/api/v1/events", body, "Authorization", bearer("alice@example.com"))
	v := decode[map[string]string](t, resp)
	if code != 202 || !strings.HasPrefix(v["id"], "console-") {
		t.Fatalf("send = %d %s", code, resp)
	}
	msgs := f.pub.On(topics.Domain(governor.CustomerAccount))
	if len(msgs) != 1 {
		t.Fatalf("published %d messages to the domain topic, want 1", len(msgs))
	}
	m := msgs[0]
	ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
	if err != nil || ev.Source != "console/alice@example.com" || ev.ID != v["id"] || ev.Tenant != "acme" || m.OrderingKey != "acme" {
		t.Errorf("published %+v (%v), ordering key %q", ev, err, m.OrderingKey)
	}
	// The engine accepts it as an event from outside.
	if err := f.engine.HandleMessage(t.Context(), governor.CustomerAccount, event.Message{Data: m.Data, Attributes: m.Attributes, ID: "1"}); err != nil {
		t.Errorf("engine refused the console's event: %v", err)
	}
	if len(f.pub.On(topics.DeadLetter())) != 0 {
		t.Error("the engine dead-lettered the console's event")
	}
	code, resp = f.do("POST", "/api/v1/events", body)
	if ev := lastEvent(t, f); code != 202 || ev.Source != "console/local" {
		t.Errorf("send without a caller = %d %s, source %q", code, resp, ev.Source)
	}
}

func lastEvent(t *testing.T, f *fixture) governor.Event {
	msgs := f.pub.On(topics.Domain(governor.CustomerAccount))
	m := msgs[len(msgs)-1]
	ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestSendRefusesWhatTheEngineWouldRefuse(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name, body string
		status     int
		mention    string
	}{
		{"unknown type", `{"type":"autonomics.customer_account.teleported","tenant":"acme"}`, 400, "unknown event type"},
		{"not autonomics", `{"type":"com.example.thing","tenant":"acme"}`, 400, "type"},
		{"timeout from outside", `{"type":"autonomics.customer_account.timeout.verification","tenant":"acme","data":{"timer_id":"x"}}`, 400, "may not be sent from outside"},
		{"bad schema", `{"type":"autonomics.customer_account.rejected","tenant":"acme","data":{"reason":5}}`, 400, "rejected"},
		{"data not an object", `{"type":"autonomics.customer_account.requested","tenant":"acme","data":[1]}`, 400, "object"},
		{"bad tenant", `{"type":"autonomics.customer_account.requested","tenant":"../etc"}`, 400, "tenant"},
		{"bad subject", `{"type":"autonomics.customer_account.requested","tenant":"acme","subject":"a b"}`, 400, "subject"},
		{"unknown member", `{"type":"autonomics.customer_account.requested","tenant":"acme","source":"autonomics/timer"}`, 400, "unknown field"},
		{"duplicate member", `{"type":"autonomics.customer_account.requested","tenant":"acme","tenant":"other"}`, 400, "duplicate"},
		{"oversize body", `{"type":"autonomics.customer_account.requested","tenant":"acme","data":{"x":"` + strings.Repeat("a", 200<<10) + `"}}`, 413, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.do("POST", "/api/v1/events", tt.body)
			if code != tt.status || !strings.Contains(body, tt.mention) {
				t.Errorf("send = %d %s, want %d mentioning %q", code, body, tt.status, tt.mention)
			}
		})
	}
	if n := len(f.pub.On(topics.Domain(governor.CustomerAccount))); n != 0 {
		t.Errorf("%d refused events were published", n)
	}
}

func TestCrossOriginPostIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	body := `{"type":"autonomics.customer_account.requested","tenant":"acme"}`
	code, _ := f.do("POST", "/api/v1/events", body, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if code != http.StatusForbidden {
		t.Errorf("cross-site POST = %d, want 403", code)
	}
	if n := len(f.pub.On(topics.Domain(governor.CustomerAccount))); n != 0 {
		t.Errorf("a cross-site POST published %d events", n)
	}
}

// fakeMonitor imitates the monitor's alert and silence routes.
func fakeMonitor(t *testing.T) (*httptest.Server, *[]string) {
	var seen []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, "alerts "+r.URL.RawQuery)
		_, _ = w.Write([]byte(`{"alerts":[{"fingerprint":"f1","policy":"p","state":"firing","labels":{"tenant":"acme"},"silenced":false,"new_field":1}]}`))
	})
	mux.HandleFunc("GET /v1/silences", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"silences":[{"id":"s1","matchers":{"tenant":"acme"},"ends_at":"2026-06-02T00:00:00Z","active":true}]}`))
	})
	mux.HandleFunc("PUT /v1/silences/{id}", func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		seen = append(seen, fmt.Sprintf("put %s %v", r.PathValue("id"), b["matchers"]))
		if b["ends_at"] == "never" {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"error":{"code":"invalid","message":"ends_at \"never\": want an RFC 3339 timestamp"}}`))
			return
		}
		w.WriteHeader(201)
		_, _ = fmt.Fprintf(w, `{"id":%q,"matchers":{"tenant":"acme"},"ends_at":%q,"active":true}`, r.PathValue("id"), b["ends_at"])
	})
	mux.HandleFunc("DELETE /v1/silences/{id}", func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, "delete "+r.PathValue("id"))
		if r.PathValue("id") == "gone" {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"no silence gone"}}`))
			return
		}
		w.WriteHeader(204)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestAlertsAndSilencesGoThroughTheMonitor(t *testing.T) {
	srv, seen := fakeMonitor(t)
	mc, err := console.NewMonitorClient(srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *console.Options) { o.Monitor = mc })
	code, body := f.do("GET", "/api/v1/alerts?state=firing", "")
	if code != 200 || !strings.Contains(body, `"fingerprint":"f1"`) {
		t.Errorf("alerts = %d %s", code, body)
	}
	if code, body := f.do("GET", "/api/v1/alerts?state=exploded", ""); code != 400 {
		t.Errorf("alerts of a bad state = %d %s, want 400", code, body)
	}
	if code, body := f.do("GET", "/api/v1/silences", ""); code != 200 || !strings.Contains(body, `"id":"s1"`) {
		t.Errorf("silences = %d %s", code, body)
	}
	code, body = f.do("POST", "/api/v1/silences", `{"matchers":{"tenant":"acme"},"ends_at":"2026-06-02T00:00:00Z","comment":"maintenance"}`)
	s := decode[console.Silence](t, body)
	if code != 201 || !strings.HasPrefix(s.ID, "console-") || !s.Active {
		t.Errorf("create silence = %d %s", code, body)
	}
	if code, body := f.do("POST", "/api/v1/silences", `{"id":"s2","matchers":{"tenant":"acme"},"ends_at":"never"}`); code != 400 || !strings.Contains(body, "RFC 3339") {
		t.Errorf("create a bad silence = %d %s, want the monitor's 400", code, body)
	}
	if code, body := f.do("POST", "/api/v1/silences", `{"id":"a/b","matchers":{"tenant":"acme"},"ends_at":"2026-06-02T00:00:00Z"}`); code != 400 {
		t.Errorf("create a silence with a bad id = %d %s, want 400", code, body)
	}
	if code, body := f.do("POST", "/api/v1/silences", `{"ends_at":"2026-06-02T00:00:00Z"}`); code != 400 || !strings.Contains(body, "matcher") {
		t.Errorf("create a silence without matchers = %d %s, want 400", code, body)
	}
	if code, _ := f.do("DELETE", "/api/v1/silences/s1", ""); code != 204 {
		t.Errorf("expire = %d, want 204", code)
	}
	if code, _ := f.do("DELETE", "/api/v1/silences/gone", ""); code != 404 {
		t.Errorf("expire a missing silence = %d, want 404", code)
	}
	want := "alerts state=firing"
	if len(*seen) == 0 || (*seen)[0] != want || !strings.Contains(fmt.Sprint(*seen), "delete s1") {
		t.Errorf("monitor saw %v", *seen)
	}
}

func TestMonitorDownIs503(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"error":{"code":"internal","message":"internal error"}}`))
	}))
	t.Cleanup(srv.Close)
	mc, _ := console.NewMonitorClient(srv.URL, nil)
	f := newFixture(t, func(o *console.Options) { o.Monitor = mc })
	if code, body := f.do("GET", "/api/v1/alerts", ""); code != 503 {
		t.Errorf("alerts with the monitor down = %d %s, want 503", code, body)
	}
	if _, err := console.NewMonitorClient("ftp://x", nil); err == nil {
		t.Error("NewMonitorClient accepted ftp://x")
	}
}
