package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/memalerts"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/promtest"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/topic"
)

// newFixtureWith is newFixture with the configuration changed by tune and
// log records kept in logs.
func newFixtureWith(t *testing.T, tune func(*config), logs *records) *fixture {
	t.Helper()
	return newFixtureOn(t, memalerts.New(), "a", promtest.Start(t), tune, logs)
}

// records is a slog.Handler that keeps the messages of its records.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

// send serves req and returns the status and the decoded error, if any.
func (f *fixture) send(req *http.Request) (int, apiError) {
	f.t.Helper()
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	var e apiError
	if rec.Code >= 400 {
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
			f.t.Fatalf("%s %s = %d with body %.200q: want a JSON error", req.Method, req.URL.Path, rec.Code, rec.Body)
		}
	}
	return rec.Code, e
}

// idToken returns a bearer header value with an unsigned ID token whose
// email claim is email, as Cloud Run passes it on after verifying it.
func idToken(email string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims := enc.EncodeToString([]byte(`{"iss":"https://accounts.google.com","email":"` + email + `","exp":1900000000}`))
	return "Bearer " + head + "." + claims + ".c2lnbmF0dXJl"
}

// metricsFrom builds a POST /v1/metrics request from the caller email (none
// when empty).
func metricsFrom(email, body string) *http.Request {
	req := httptest.NewRequest("POST", "/v1/metrics", strings.NewReader(body))
	if email != "" {
		req.Header.Set("Authorization", idToken(email))
	}
	return req
}

// pointsBody renders n points of metric name, series first..first+n-1,
// each with a pad label of padBytes.
func pointsBody(name string, first, n, padBytes int) string {
	var b strings.Builder
	b.WriteByte('[')
	pad := strings.Repeat("x", padBytes)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":%q,"labels":{"series":"s-%07d","pad":%q},"value":1}`, name, first+i, pad)
	}
	b.WriteByte(']')
	return b.String()
}

// rssBytes returns the resident set size of the process, or 0 where
// /proc/self/status is not available.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// liveHeap returns the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

const mib = 1 << 20

// TestHugeMetricsBodiesAreRefusedAndRSSStaysBounded replays the attack of
// ten 7.7 MB POST /v1/metrics requests, each of 10,000 points with 700
// bytes of labels, all valid under the former limits (8 MiB bodies, 10,000
// points, 1,024-byte label values): they took an instance from 29 MB to
// 483 MB of RSS, and the series they created kept about 150 MiB of live
// heap. Now each is refused with 413 before it is decoded (at once when it
// announces its length, after 2 MiB + 1 bytes when it streams), and nothing
// is retained.
//
// The bound: a refused request keeps nothing, so the live heap after a
// collection may grow only by allocator noise; 16 MiB is an order of
// magnitude below what the attack retained before. RSS is the figure the instance is
// killed on; reading at most 2 MiB per request may grow it by a few MiB,
// and it must stay within 64 MiB of its start (the attack added 390 MiB).
func TestHugeMetricsBodiesAreRefusedAndRSSStaysBounded(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	bodies := make([]string, 10)
	for i := range bodies {
		bodies[i] = pointsBody("attack", i*10000, 10000, 700)
	}
	if n := len(bodies[0]); n < 7_600_000 || n > 7_800_000 {
		t.Fatalf("attack body is %d bytes, want 7.7 MB", n)
	}
	heap0, rss0 := liveHeap(), rssBytes()
	for i, b := range bodies {
		req := metricsFrom("attacker@example.com", b)
		if i%2 == 1 {
			req.ContentLength = -1 // streamed: cut off by http.MaxBytesReader
		}
		code, e := f.send(req)
		if code != http.StatusRequestEntityTooLarge || e.Error.Code != "invalid" || !strings.Contains(e.Error.Message, "exceeds 2097152 bytes") {
			t.Errorf("POST #%d of %d bytes = %d %+v, want 413 with a JSON error naming the 2 MiB limit", i, len(b), code, e)
		}
	}
	heap1, rss1 := liveHeap(), rssBytes()
	t.Logf("ten 7.7 MB POST /v1/metrics: RSS %d MiB before, %d MiB after; live heap %d MiB before, %d MiB after",
		rss0/mib, rss1/mib, heap0/mib, heap1/mib)
	if n := len(f.query("attack")); n != 0 {
		t.Errorf("%d series reached the engine after the refused posts, want 0", n)
	}
	if heap1 > heap0 && heap1-heap0 > 16*mib {
		t.Errorf("live heap grew by %d MiB, want at most 16 MiB", (heap1-heap0)/mib)
	}
	if rss0 > 0 && rss1 > rss0 && rss1-rss0 > 64*mib {
		t.Errorf("RSS grew by %d MiB, want at most 64 MiB", (rss1-rss0)/mib)
	}
	runtime.KeepAlive(bodies)
	runtime.KeepAlive(f)
}

// TestPushedSeriesAreNotKeptByTheMonitor: callers push 90,000 new series
// in 100 batches within every request limit. All reach the engine; the
// monitor's live heap does not grow with them, since it keeps no series.
func TestPushedSeriesAreNotKeptByTheMonitor(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	heap0 := liveHeap()
	for i := range 100 {
		if code, e := f.send(metricsFrom(fmt.Sprintf("caller-%d@example.com", i%7), pointsBody("pushed", i*900, 900, 100))); code != http.StatusAccepted {
			t.Fatalf("POST #%d = %d %+v, want 202", i, code, e)
		}
	}
	heap1 := liveHeap()
	n, _ := f.value("count(pushed)")
	t.Logf("90,000 pushed series: live heap %d MiB before, %d MiB after; the engine holds %v", heap0/mib, heap1/mib, n)
	if n != 90_000 {
		t.Errorf("the engine holds %v series, want 90000", n)
	}
	if heap1 > heap0 && heap1-heap0 > 8*mib {
		t.Errorf("live heap grew by %d MiB with the pushed series, want at most 8 MiB", (heap1-heap0)/mib)
	}
	for _, port := range []string{"1111", "2222"} {
		req := metricsFrom("", pointsBody("anonymous", 0, 10, 10))
		req.RemoteAddr = "198.51.100.7:" + port
		if code, e := f.send(req); code != http.StatusAccepted {
			t.Fatalf("POST without a token = %d %+v", code, e)
		}
	}
}

func TestSourceOf(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"id token", map[string]string{"Authorization": idToken("a@example.com")}, "email:a@example.com"},
		{"unsigned token", map[string]string{"Authorization": strings.TrimSuffix(idToken("a@example.com"), ".c2lnbmF0dXJl")}, "email:a@example.com"},
		{"serverless header wins", map[string]string{"Authorization": idToken("forged@example.com"), "X-Serverless-Authorization": idToken("real@example.com")}, "email:real@example.com"},
		{"serverless header without email", map[string]string{"Authorization": idToken("forged@example.com"), "X-Serverless-Authorization": "Bearer x.e30.y"}, "addr:192.0.2.1"},
		{"no token", nil, "addr:192.0.2.1"},
		{"not bearer", map[string]string{"Authorization": "Basic YTpi"}, "addr:192.0.2.1"},
		{"garbage token", map[string]string{"Authorization": "Bearer not-a-jwt"}, "addr:192.0.2.1"},
		{"email with spaces", map[string]string{"Authorization": idToken("a b@example.com")}, "addr:192.0.2.1"},
		{"huge token", map[string]string{"Authorization": "Bearer " + strings.Repeat("a", 20000)}, "addr:192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/v1/metrics", nil) // RemoteAddr 192.0.2.1:1234
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			if got := sourceOf(req); got != tt.want {
				t.Errorf("sourceOf = %q, want %q", got, tt.want)
			}
		})
	}
	long := httptest.NewRequest("POST", "/", nil)
	long.Header.Set("Authorization", idToken(strings.Repeat("a", 300)+"@example.com"))
	if got := sourceOf(long); len(got) > maxSourceBytes {
		t.Errorf("sourceOf(a 300-byte email) is %d bytes, want at most %d", len(got), maxSourceBytes)
	}
}

// TestSeriesFloodCannotDropReceiptMetrics floods the intake with pushed
// series from several sources, then pushes receipts of every domain and
// outcome for many tenants. Every receipt-derived series reaches the
// engine with the evaluation, and pushes cannot write the receipt-derived
// metrics.
func TestSeriesFloodCannotDropReceiptMetrics(t *testing.T) {
	logs := &records{}
	f := newFixtureWith(t, nil, logs)
	for src := range 4 {
		if code, e := f.send(metricsFrom(fmt.Sprintf("flood-%d@example.com", src), pointsBody("flood", src*5000, 5000, 10))); code != http.StatusAccepted {
			t.Fatalf("flood from source %d = %d %+v", src, code, e)
		}
	}
	const tenants = 40
	want := map[string]float64{}
	for i := range tenants {
		for _, d := range governor.Domains {
			for _, o := range []governor.Outcome{governor.Accepted, governor.Rejected} {
				rc := testReceipt(t, func(r *receipt.Receipt) {
					r.TenantID, r.Domain, r.Outcome = fmt.Sprint("tenant-", i), string(d), string(o)
				})
				attrs := map[string]string{alerting.AttrEventTime: t0.Add(-3 * time.Second).Format(time.RFC3339Nano)}
				body := pushWithTime(rc.JSON(), attrs, fmt.Sprintf("m-%d-%s-%s", i, d, o), t0.Add(-time.Second))
				if code, _ := f.send(httptest.NewRequest("POST", "/v1/receipts/push", strings.NewReader(body))); code != http.StatusNoContent {
					t.Fatalf("push receipt = %d", code)
				}
				want[string(d)+"/"+string(o)] = tenants
			}
		}
	}
	if dl := f.pub.on("test-autonomics-dead-letter"); len(dl) != 0 {
		t.Fatalf("%d receipts dead-lettered, want none: %v", len(dl), dl[0].Attributes)
	}
	if got := f.do("POST", "/v1/evaluate", "", nil); got != http.StatusOK {
		t.Fatalf("POST /v1/evaluate = %d", got)
	}
	for k, v := range want {
		d, o, _ := strings.Cut(k, "/")
		sel := fmt.Sprintf(`{domain=%q,outcome=%q}`, d, o)
		if got, ok := f.value(alerting.MetricDecisionsTotal + sel); !ok || got != v {
			t.Errorf("decisions_total%s = %v (present %v), want %v", sel, got, ok, v)
		}
		if got, ok := f.value(alerting.MetricDecisions + sel); !ok || got != v {
			t.Errorf("decisions%s = %v (present %v), want %v", sel, got, ok, v)
		}
		if got, ok := f.value(fmt.Sprintf(`%s{domain=%q}`, alerting.MetricRejectionRatio, d)); !ok || got != 0.5 {
			t.Errorf("rejection_ratio{%s} = %v (present %v), want 0.5", d, got, ok)
		}
	}
	for _, m := range []string{alerting.MetricDecisionLatency, alerting.MetricDeliveryLag} {
		if n, _ := f.value("count(" + m + ")"); n != tenants {
			t.Errorf("%s: %v tenants' series in the engine, want %d", m, n, tenants)
		}
	}
	if logs.has("receipt metrics not forwarded, will retry") {
		t.Error(`logged "receipt metrics not forwarded, will retry"`)
	}
	// Pushes may not write the reserved metrics.
	code, e := f.send(metricsFrom("flood-0@example.com", `[{"name":"autonomics_decisions_total","labels":{"domain":"billing","outcome":"accepted"},"value":0}]`))
	if code != http.StatusBadRequest || !strings.Contains(e.Error.Message, "reserved") {
		t.Errorf("POST of a receipt-derived metric = %d %+v, want 400 reserved", code, e)
	}
	if n := len(f.query(`autonomics_decisions_total{monitor_instance=""}`)); n != 0 {
		t.Errorf("%d receipt-derived series written by a push, want 0", n)
	}
}

// testReceipt returns a valid receipt, changed by mutate and hashed.
func testReceipt(t *testing.T, mutate func(*receipt.Receipt)) receipt.Receipt {
	t.Helper()
	inst := governor.Instance{Key: governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}}
	ev := governor.Event{ID: "e1", Source: "test", Type: "autonomics.billing.opened", Domain: governor.Billing, Name: "opened", Tenant: "acme", Subject: "2026-11"}
	rc := receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: "none", To: "open"}, t0.Add(-2*time.Second))
	if mutate != nil {
		mutate(&rc)
		rc.Hash = rc.ComputeHash()
	}
	return rc
}

// pushWithTime is event.PushBody with a publish time.
func pushWithTime(data []byte, attrs map[string]string, id string, published time.Time) string {
	var m map[string]map[string]any
	_ = json.Unmarshal(event.PushBody(data, attrs, id), &m)
	m["message"]["publishTime"] = published.Format(time.RFC3339Nano)
	b, _ := json.Marshal(m)
	return string(b)
}

// refusedPush pushes body and checks that it was dead-lettered with a
// reason containing want, and changed no metric.
func refusedPush(t *testing.T, f *fixture, body, want string) {
	t.Helper()
	before := len(f.pub.on("test-autonomics-dead-letter"))
	code, e := f.send(httptest.NewRequest("POST", "/v1/receipts/push", strings.NewReader(body)))
	if code != http.StatusNoContent {
		t.Fatalf("push = %d %+v, want 204 (dead-lettered)", code, e)
	}
	dl := f.pub.on("test-autonomics-dead-letter")
	if len(dl) != before+1 {
		t.Fatalf("%d dead letters, want %d", len(dl), before+1)
	}
	reason := dl[len(dl)-1].Attributes["dead_letter_reason"]
	if !strings.Contains(reason, want) || len(reason) > 1024 {
		t.Errorf("dead-letter reason %.300q (%d bytes), want at most 1024 bytes containing %q", reason, len(reason), want)
	}
	if n := len(f.svc.receipts.Snapshot(f.now)); n != 0 {
		t.Errorf("%d receipt-derived series after a refused push, want 0", n)
	}
}

// TestReceiptPushWithHugeDomainIsRefused: a receipt that hashes correctly
// (anyone can hash) but has a 370 KB domain is dead-lettered, not counted
// under a 370 KB label.
func TestReceiptPushWithHugeDomainIsRefused(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	rc := testReceipt(t, func(r *receipt.Receipt) { r.Domain = strings.Repeat("d", 370<<10) })
	if rc.ComputeHash() != rc.Hash {
		t.Fatal("the receipt does not hash")
	}
	body := string(event.PushBody(rc.JSON(), nil, "m-huge"))
	if len(body) > event.MaxPushBytes {
		t.Fatalf("push body is %d bytes, want it within the %d-byte push limit", len(body), event.MaxPushBytes)
	}
	refusedPush(t, f, body, "(378880 bytes) is not a governor domain")
}

// TestReceiptPushUnknownOutcomeIsRefused and the other field checks of
// receipt pushes: each refused receipt is dead-lettered and counts nowhere.
func TestReceiptPushUnknownOutcomeIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*receipt.Receipt)
		want   string
	}{
		{"unknown outcome", func(r *receipt.Receipt) { r.Outcome = "maybe" }, `outcome "maybe"`},
		{"outcome in capitals", func(r *receipt.Receipt) { r.Outcome = "ACCEPTED" }, `outcome "ACCEPTED"`},
		{"no outcome", func(r *receipt.Receipt) { r.Outcome = "" }, `outcome ""`},
		{"unknown domain", func(r *receipt.Receipt) { r.Domain = "payroll" }, `domain "payroll"`},
		{"reserved tenant", func(r *receipt.Receipt) { r.TenantID = "__other" }, "tenant_id"},
		{"huge tenant", func(r *receipt.Receipt) { r.TenantID = strings.Repeat("t", 100000) }, "tenant_id"},
		{"huge reason", func(r *receipt.Receipt) { r.Reason = strings.Repeat("r", 100000) }, "reason is 100000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, memalerts.New(), "a")
			rc := testReceipt(t, tt.mutate)
			refusedPush(t, f, string(event.PushBody(rc.JSON(), nil, "m1")), tt.want)
		})
	}
}

// TestDuplicateJSONKeysAreRefused sends, to every endpoint that reads a
// body, a body that repeats a member name (at the top or deeper), or names
// a member not quite as specified. Each is refused and changes nothing:
// 400 with a JSON error from the API, dead-lettering for the push
// endpoint (which Pub/Sub would otherwise redeliver).
func TestDuplicateJSONKeysAreRefused(t *testing.T) {
	rc := testReceipt(t, nil)
	good := string(rc.JSON())
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, method, path, body string
		want                     string
		// stored reports whether the request changed anything.
		stored func(f *fixture) bool
	}{
		{"policy top level", "PUT", "/v1/policies/p1",
			`{"metric":"cpu","comparison":"gt","threshold":1,"threshold":100,"severity":"warning"}`, `duplicate member "threshold"`, policyStored},
		{"policy labels", "PUT", "/v1/policies/p1",
			`{"metric":"cpu","labels":{"tenant":"a","tenant":"b"},"comparison":"gt","threshold":1,"severity":"warning"}`, `duplicate member "tenant"`, policyStored},
		{"policy field case", "PUT", "/v1/policies/p1",
			`{"metric":"cpu","Metric":"mem","comparison":"gt","threshold":1,"severity":"warning"}`, `unknown field "Metric"`, policyStored},
		{"metrics point", "POST", "/v1/metrics", `[{"name":"cpu","value":1,"value":99}]`, `duplicate member "value"`, seriesStored},
		{"metrics labels", "POST", "/v1/metrics", `[{"name":"cpu","labels":{"tenant":"a","tenant":"b"},"value":1}]`, `duplicate member "tenant"`, seriesStored},
		{"metrics second point", "POST", "/v1/metrics", `[{"name":"ok","value":1},{"name":"cpu","name":"mem","value":1}]`, `metrics[1]: point: duplicate member "name"`, seriesStored},
		{"metrics field case", "POST", "/v1/metrics", `[{"name":"cpu","Value":1}]`, `unknown field "Value"`, seriesStored},
		{"silence top level", "PUT", "/v1/silences/s1",
			`{"matchers":{"tenant":"a"},"ends_at":"2026-11-03T09:00:00Z","ends_at":"2027-11-03T09:00:00Z"}`, `duplicate member "ends_at"`, silenceStored},
		{"silence matchers", "PUT", "/v1/silences/s1",
			`{"matchers":{"tenant":"a","tenant":"b"},"ends_at":"2026-11-03T09:00:00Z"}`, `duplicate member "tenant"`, silenceStored},
		{"silence field case", "PUT", "/v1/silences/s1",
			`{"matchers":{"tenant":"a"},"ends_at":"2026-11-03T09:00:00Z","Ends_At":"2027-11-03T09:00:00Z"}`, `unknown field "Ends_At"`, silenceStored},
		{"push envelope", "POST", "/v1/receipts/push",
			`{"message":{"data":"` + b64(good) + `"},"message":{"data":"` + b64(good) + `"}}`, `duplicate member "message"`, seriesStored},
		{"push message", "POST", "/v1/receipts/push",
			`{"message":{"data":"` + b64(good) + `","messageId":"1","messageId":"2"}}`, `duplicate member "messageId"`, seriesStored},
		{"push attributes", "POST", "/v1/receipts/push",
			`{"message":{"data":"` + b64(good) + `","attributes":{"a":"1","a":"2"}}}`, `duplicate member "a"`, seriesStored},
		{"push receipt", "POST", "/v1/receipts/push",
			`{"message":{"data":"` + b64(strings.Replace(good, `"domain":"billing"`, `"domain":"billing","domain":"quota_sla"`, 1)) + `"}}`, "duplicate", seriesStored},
		{"push field case", "POST", "/v1/receipts/push",
			`{"message":{"data":"` + b64(good) + `"},"Message":{"data":""}}`, `unknown field "Message"`, seriesStored},
		{"push unknown member", "POST", "/v1/receipts/push",
			`{"message":{"data":"` + b64(good) + `","extra":1}}`, `unknown field "message.extra"`, seriesStored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, memalerts.New(), "a")
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.path == "/v1/receipts/push" {
				refusedPush(t, f, tt.body, tt.want)
				return
			}
			code, e := f.send(req)
			if code != http.StatusBadRequest || e.Error.Code != "invalid" || !strings.Contains(e.Error.Message, tt.want) {
				t.Errorf("%s %s = %d %+v, want 400 containing %q", tt.method, tt.path, code, e, tt.want)
			}
			if tt.stored(f) {
				t.Errorf("%s %s changed the monitor's state", tt.method, tt.path)
			}
		})
	}
}

func policyStored(f *fixture) bool {
	_, err := f.svc.d.alerts.Policy(f.t.Context(), "p1")
	return err == nil
}

func silenceStored(f *fixture) bool {
	_, err := f.svc.d.alerts.Silence(f.t.Context(), "s1")
	return err == nil
}

func seriesStored(f *fixture) bool { return len(f.query(`{__name__="m"}`)) > 0 }

// TestOversizedRequestsAreRefused: every body is capped before decoding;
// a request over a size limit is 413 with a JSON error and changes
// nothing (a push too large is dead-lettered).
func TestOversizedRequestsAreRefused(t *testing.T) {
	policy := `{"metric":"cpu","comparison":"gt","threshold":1,"severity":"warning","labels":{"pad":"` + strings.Repeat("p", 70<<10) + `"}}`
	silence := `{"matchers":{"tenant":"a"},"ends_at":"2026-11-03T09:00:00Z","comment":"` + strings.Repeat("c", 70<<10) + `"}`
	tests := []struct {
		name, method, path, body, want string
		stored                         func(*fixture) bool
	}{
		{"policy body", "PUT", "/v1/policies/p1", policy, "exceeds 65536 bytes", policyStored},
		{"silence body", "PUT", "/v1/silences/s1", silence, "exceeds 65536 bytes", silenceStored},
		{"metrics body", "POST", "/v1/metrics", pointsBody("m", 0, 2500, 1000), "exceeds 2097152 bytes", seriesStored},
		{"metrics points", "POST", "/v1/metrics", pointsBody("m", 0, 10001, 1), "more than 10000 points", seriesStored},
		{"metrics series bytes", "POST", "/v1/metrics", `[{"name":"m","labels":{"a":"` + strings.Repeat("a", 1000) + `","b":"` + strings.Repeat("b", 1000) + `","c":"` + strings.Repeat("c", 100) + `"}, "value":1}]`, "limit 2048 per series", seriesStored},
		{"metrics request bytes", "POST", "/v1/metrics", pointsBody("m", 0, 1100, 1000), "limit 1048576 per request", seriesStored},
	}
	for _, tt := range tests {
		for _, streamed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/streamed=%v", tt.name, streamed), func(t *testing.T) {
				f := newFixture(t, memalerts.New(), "a")
				req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
				if streamed {
					req.ContentLength = -1
				}
				code, e := f.send(req)
				if code != http.StatusRequestEntityTooLarge || e.Error.Code != "invalid" || !strings.Contains(e.Error.Message, tt.want) {
					t.Errorf("%s %s (%d bytes) = %d %+v, want 413 containing %q", tt.method, tt.path, len(tt.body), code, e, tt.want)
				}
				if tt.stored(f) {
					t.Error("the refused request changed the monitor's state")
				}
			})
		}
	}
	f := newFixture(t, memalerts.New(), "a")
	big := `{"message":{"data":"` + strings.Repeat("A", event.MaxPushBytes) + `"}}`
	refusedPush(t, f, big, "exceeds 524288 bytes")
}

// TestMetricDecodingIsGated: while the metric pushes the gate admits are
// being read, another is refused with 429 and Retry-After after waiting
// its turn; receipt pushes have a gate of their own.
func TestMetricDecodingIsGated(t *testing.T) {
	f := newFixtureWith(t, func(c *config) {
		c.Limits.MetricsConcurrency, c.Limits.Wait = 1, 50*time.Millisecond
	}, nil)
	pr, pw := io.Pipe()
	slow := httptest.NewRequest("POST", "/v1/metrics", pr)
	slow.ContentLength = -1
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, slow)
		done <- rec.Code
	}()
	if _, err := pw.Write([]byte(`[{"name":"slow",`)); err != nil { // the slow request now holds the slot
		t.Fatal(err)
	}
	req := metricsFrom("", `[{"name":"cpu","value":1}]`)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !bytes.Contains(rec.Body.Bytes(), []byte(`"code":"invalid"`)) {
		t.Errorf("POST while the gate is full = %d %s (Retry-After %q), want 429 with Retry-After", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	rc := testReceipt(t, nil)
	if code, _ := f.send(httptest.NewRequest("POST", "/v1/receipts/push", bytes.NewReader(event.PushBody(rc.JSON(), nil, "m1")))); code != http.StatusNoContent {
		t.Errorf("receipt push while the metrics gate is full = %d, want 204", code)
	}
	_, _ = pw.Write([]byte(`"value":1}]`))
	pw.Close()
	if code := <-done; code != http.StatusAccepted {
		t.Errorf("slow POST = %d, want 202", code)
	}
	if code, _ := f.send(metricsFrom("", `[{"name":"cpu","value":1}]`)); code != http.StatusAccepted {
		t.Errorf("POST after the slot freed = %d, want 202", code)
	}
}

// TestFairnessEventsGoToInternalTopic: noisy-neighbour events and their
// recovery are published to the multi_tenant internal topic, with source
// autonomics/monitor, and never to the multi_tenant domain topic that
// producers outside Autonomics publish to.
func TestFairnessEventsGoToInternalTopic(t *testing.T) {
	f := newFixture(t, memalerts.New(), "a")
	names := topic.Names{Prefix: "test-"}
	usage := func(acme, globex float64) {
		body := fmt.Sprintf(`[{"name":"autonomics_tenant_usage","labels":{"tenant":"acme","resource":"cpu"},"value":%g},`+
			`{"name":"autonomics_tenant_usage","labels":{"tenant":"globex","resource":"cpu"},"value":%g}]`, acme, globex)
		for range 5 {
			if got := f.do("POST", "/v1/metrics", body, nil); got != http.StatusAccepted {
				t.Fatalf("POST usage = %d", got)
			}
			f.now = f.now.Add(15 * time.Second)
		}
		f.do("POST", "/v1/evaluate", "", nil)
	}
	usage(8, 2)
	usage(1, 4)
	if got := f.pub.on(names.Domain(governor.MultiTenant)); len(got) != 0 {
		t.Errorf("%d messages on the multi_tenant domain topic, want none", len(got))
	}
	var acme []governor.Event
	for _, m := range f.pub.on(names.Internal(governor.MultiTenant)) {
		ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
		if err != nil {
			t.Fatalf("Decode(%v) = %v", m.Attributes, err)
		}
		if Source != "autonomics/monitor" || ev.Source != Source || m.OrderingKey != ev.Tenant {
			t.Errorf("message %v: source %s, ordering key %s, want autonomics/monitor and the tenant", m.Attributes, ev.Source, m.OrderingKey)
		}
		if ev.Tenant == "acme" {
			acme = append(acme, ev)
		}
	}
	if len(acme) != 2 || acme[0].Type != alerting.TypeNoisyNeighbor || acme[1].Type != alerting.TypeRecovered {
		t.Fatalf("acme's events on %s: %+v, want noisy_neighbor_detected then recovered", names.Internal(governor.MultiTenant), acme)
	}
}
