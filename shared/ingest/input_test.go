package ingest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ingest"
)

// binaryHeaders are the headers of a valid billing.usage_recorded event in
// binary mode.
func binaryHeaders() http.Header {
	return http.Header{
		"Content-Type": {"application/json"}, "Ce-Specversion": {"1.0"}, "Ce-Id": {"bin-1"},
		"Ce-Source": {"billing-system"}, "Ce-Type": {"autonomics.billing.usage_recorded"}, "Ce-Tenantid": {"acme"},
	}
}

const usageData = `{"meter":"api_calls","quantity":3}`

// TestBadCloudEventsAreRefused sends malformed events, each refused 400
// with the decoder's reason; none is published.
func TestBadCloudEventsAreRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	long := strings.Repeat("x", 300)
	structuredCases := []struct {
		name string
		body []byte
		want string
	}{
		{"missing id", usage("x", "acme").with("id", nil).json(t), "required attribute id is missing"},
		{"missing tenant", usage("x", "acme").with("tenantid", nil).json(t), "required attribute tenantid is missing"},
		{"missing type", usage("x", "acme").with("type", nil).json(t), "required attribute type is missing"},
		{"missing source", usage("x", "acme").with("source", nil).json(t), "required attribute source is missing"},
		{"path traversal tenant", usage("x", "../other").json(t), `tenantid "../other": must match`},
		{"reserved tenant", usage("x", "__system").json(t), `must not start with "__"`},
		{"wrong specversion", usage("x", "acme").with("specversion", "0.3").json(t), `must be "1.0"`},
		{"not an autonomics type", usage("x", "acme").with("type", "com.example.order").json(t), "must have the form autonomics.<domain>.<event>"},
		{"unknown domain", usage("x", "acme").with("type", "autonomics.payroll.run").json(t), `unknown domain "payroll"`},
		{"unknown event", usage("x", "acme").with("type", "autonomics.billing.teleported").json(t), "unknown event type"},
		{"data not an object", usage("x", "acme").with("data", []int{1}).json(t), "data must be a JSON object, got array"},
		{"unknown payload field", usage("x", "acme").with("data", map[string]any{"meter": "m", "quantity": 1, "discount": 1}).json(t), "unknown field"},
		{"payload out of range", usage("x", "acme").with("data", map[string]any{"meter": "m", "quantity": 0}).json(t), "quantity must be a positive integer"},
		{"data content type", usage("x", "acme").with("datacontenttype", "text/plain").json(t), "datacontenttype"},
		{"bad time", usage("x", "acme").with("time", "yesterday").json(t), "RFC 3339"},
		{"bad subject", usage("x", "acme").with("subject", "a/b").json(t), `subject "a/b"`},
		{"control character in id", usage("a\nb", "acme").json(t), "control characters"},
		{"blank id", usage("  ", "acme").json(t), "must not be empty or blank"},
		{"id too long", usage(long, "acme").json(t), "is 300 bytes, limit 256"},
		{"malformed source", usage("x", "acme").with("source", "http://[::1").json(t), "source"},
		{"bad extension name", usage("x", "acme").with("Region", "eu").json(t), "not a CloudEvents attribute name"},
		{"non-scalar extension", usage("x", "acme").with("region", map[string]any{"a": 1}).json(t), "must be a string, number or boolean"},
		{"data and data_base64", usage("x", "acme").with("data_base64", "e30=").json(t), "mutually exclusive"},
		{"not JSON", []byte(`{"specversion": "1.0",`), "structured mode: event"},
		{"invalid UTF-8", []byte("{\"specversion\":\"1.0\",\"id\":\"\xff\"}"), "UTF-8"},
		{"trailing bytes", append(usage("x", "acme").json(t), []byte(` {"x":1}`)...), "structured mode: event"},
		{"not an object", []byte(`["specversion"]`), "structured mode: event"},
	}
	for _, tc := range structuredCases {
		t.Run("structured/"+tc.name, func(t *testing.T) {
			wantRefused(t, f.post(f.withToken(billingEmail, structured()), tc.body), http.StatusBadRequest, fault.Invalid, tc.want)
		})
	}
	binaryCases := []struct {
		name   string
		header func(http.Header)
		body   string
		want   string
	}{
		{"missing type", func(h http.Header) { h.Del("Ce-Type") }, usageData, "required attribute ce-type is missing"},
		{"missing tenant", func(h http.Header) { h.Del("Ce-Tenantid") }, usageData, "required attribute ce-tenantid is missing"},
		{"data not an object", nil, `[1, 2]`, "data must be a JSON object, got array"},
		{"data not JSON", nil, `{"meter":`, "data"},
		{"text content type", func(h http.Header) { h.Set("Content-Type", "text/plain") }, usageData, `datacontenttype "text/plain"`},
		{"repeated header", func(h http.Header) { h.Add("Ce-Tenantid", "globex") }, usageData, `header "Ce-Tenantid" is repeated`},
		{"unknown specversion", func(h http.Header) { h.Set("Ce-Specversion", "2.0") }, usageData, `ce-specversion "2.0": must be "1.0"`},
		{"bad extension name", func(h http.Header) { h.Set("Ce-Tenant-Region", "eu") }, usageData, "not a CloudEvents attribute name"},
		{"causation header", func(h http.Header) { h.Set("Ce-Causationid", "hash") }, usageData, "causationid is set only by Autonomics"},
	}
	for _, tc := range binaryCases {
		t.Run("binary/"+tc.name, func(t *testing.T) {
			h := binaryHeaders()
			if tc.header != nil {
				tc.header(h)
			}
			wantRefused(t, f.post(f.withToken(billingEmail, h), []byte(tc.body)), http.StatusBadRequest, fault.Invalid, tc.want)
		})
	}
	t.Run("structured/header disagrees with event", func(t *testing.T) {
		h := structured()
		h.Set("Ce-Tenantid", "globex")
		wantRefused(t, f.post(f.withToken(billingEmail, h), usage("x", "acme").json(t)), http.StatusBadRequest, fault.Invalid, "differs from the event's tenantid")
	})
	f.assertNothingPublished()
}

func TestDuplicateKeysInEvent(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := []byte(`{"specversion":"1.0","id":"d-1","source":"s","type":"autonomics.billing.usage_recorded","tenantid":"acme","tenantid":"globex","data":{"meter":"m","quantity":1}}`)
	wantRefused(t, f.post(f.withToken(billingEmail, structured()), body), http.StatusBadRequest, fault.Invalid, `duplicate member "tenantid"`)
	f.assertNothingPublished()
}

func TestDuplicateKeysInData(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	body := []byte(`{"specversion":"1.0","id":"d-2","source":"s","type":"autonomics.billing.usage_recorded","tenantid":"acme","data":{"meter":"m","quantity":1,"quantity":1000000}}`)
	wantRefused(t, f.post(f.withToken(billingEmail, structured()), body), http.StatusBadRequest, fault.Invalid, `duplicate member "quantity"`)
	bin := f.post(f.withToken(billingEmail, binaryHeaders()), []byte(`{"meter":"m","meter":"n","quantity":1}`))
	wantRefused(t, bin, http.StatusBadRequest, fault.Invalid, `duplicate member "meter"`)
	f.assertNothingPublished()
}

// TestDuplicateKeysInBatchEvent: the event with duplicate members is
// refused, the others of the batch are published.
func TestDuplicateKeysInBatchEvent(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	dup := `{"specversion":"1.0","id":"d-3","source":"s","type":"autonomics.billing.usage_recorded","tenantid":"acme","id":"d-4","data":{"meter":"m","quantity":1}}`
	body := []byte("[" + string(usage("d-ok", "acme").json(t)) + "," + dup + "]")
	a := f.post(f.withToken(billingEmail, batch()), body)
	rs := a.results()
	if a.status != http.StatusOK || len(rs) != 2 || rs[0].Status != ingest.StatusAccepted || rs[1].Status != ingest.StatusRefused ||
		rs[1].Error == nil || !strings.Contains(rs[1].Error.Message, `duplicate member "id"`) {
		t.Fatalf("answer %d %s, want the first accepted and the second refused for its duplicate id", a.status, a.body)
	}
	if got := f.pull(1, 10*time.Second); len(got) != 1 || got[0].ev.ID != "d-ok" {
		t.Fatalf("published %+v, want only d-ok", got)
	}
	f.assertNothingPublished()
}

func TestOversizedEvent(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	big := usage("big-1", "acme").with("data", map[string]any{"meter": strings.Repeat("m", ingest.DefaultMaxEventBytes), "quantity": 1}).json(t)
	wantRefused(t, f.post(f.withToken(billingEmail, structured()), big), http.StatusRequestEntityTooLarge, fault.Invalid, fmt.Sprintf("exceeds %d bytes", ingest.DefaultMaxEventBytes))
	// Under the body cap but over the decoder's data limit.
	large := usage("big-2", "acme").with("data", map[string]any{"meter": strings.Repeat("m", 70<<10), "quantity": 1}).json(t)
	wantRefused(t, f.post(f.withToken(billingEmail, structured()), large), http.StatusBadRequest, fault.Invalid, "limit 65536")
	f.assertNothingPublished()
}

func TestOversizedBatch(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	var buf bytes.Buffer
	buf.WriteString("[")
	for i := 0; buf.Len() <= ingest.DefaultMaxBatchBytes; i++ {
		if i > 0 {
			buf.WriteString(",")
		}
		buf.Write(usage(fmt.Sprintf("ob-%d", i), "acme").with("data", map[string]any{"meter": strings.Repeat("m", 60<<10), "quantity": 1}).json(t))
	}
	buf.WriteString("]")
	wantRefused(t, f.post(f.withToken(billingEmail, batch()), buf.Bytes()), http.StatusRequestEntityTooLarge, fault.Invalid, fmt.Sprintf("exceeds %d bytes", ingest.DefaultMaxBatchBytes))
	f.assertNothingPublished()
}

func TestBatchWithTooManyEvents(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	var es []ce
	for i := range ingest.DefaultMaxBatchEvents + 1 {
		es = append(es, usage(fmt.Sprintf("many-%d", i), "acme"))
	}
	wantRefused(t, f.post(f.withToken(billingEmail, batch()), jsonArray(t, es...)), http.StatusBadRequest, fault.Invalid, fmt.Sprintf("more than %d events", ingest.DefaultMaxBatchEvents))
	f.assertNothingPublished()
}

func TestMalformedBatch(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tc := range []struct{ name, body, want string }{
		{"empty", `[]`, "no events"},
		{"not an array", `{"specversion":"1.0"}`, "JSON array of events"},
		{"not JSON", `[{"specversion":"1.0"`, "not valid JSON"},
		{"two arrays", `[] []`, "not valid JSON"},
		{"invalid UTF-8", "[\"\xff\"]", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantRefused(t, f.post(f.withToken(billingEmail, batch()), []byte(tc.body)), http.StatusBadRequest, fault.Invalid, tc.want)
		})
	}
	t.Run("ce header on a batch", func(t *testing.T) {
		h := batch()
		h.Set("Ce-Tenantid", "acme")
		wantRefused(t, f.post(f.withToken(billingEmail, h), jsonArray(t, usage("mb-1", "acme"))), http.StatusBadRequest, fault.Invalid, "do not apply to a batch")
	})
	t.Run("element not an object", func(t *testing.T) {
		a := f.post(f.withToken(billingEmail, batch()), []byte(`[42]`))
		if rs := a.results(); a.status != http.StatusOK || len(rs) != 1 || rs[0].Status != ingest.StatusRefused {
			t.Errorf("answer %d %s, want the element refused", a.status, a.body)
		}
	})
	f.assertNothingPublished()
}

func TestUnsupportedContentMode(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, ct := range []string{"", "text/plain", "application/json", "application/cloudevents+xml"} {
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		wantRefused(t, f.post(f.withToken(billingEmail, h), usage("u-1", "acme").json(t)), http.StatusUnsupportedMediaType, ingest.CodeUnsupportedMediaType, "structured mode")
	}
	f.assertNothingPublished()
}

// TestFloodIsRateLimited: a producer over its rate is answered 429 with
// Retry-After and nothing is published; once the bucket refills it is
// served again.
func TestFloodIsRateLimited(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	rules := `[{"name": "meter", "class": "external", "email": "meter@producers.iam.gserviceaccount.com",
	  "types": ["autonomics.billing.usage_recorded"], "tenants": ["*"], "rate": 0.5, "burst": 2},
	  {"name": "billing", "class": "external", "email": "` + billingEmail + `", "types": ["autonomics.billing.*"], "tenants": ["*"]}]`
	f := newFixture(t, fixtureOptions{rules: rules, clock: clock})
	meter := "meter@producers.iam.gserviceaccount.com"
	for i := range 2 {
		if a := f.send(meter, usage(fmt.Sprintf("rl-%d", i), "acme")); a.status != http.StatusAccepted {
			t.Fatalf("event %d within the burst: %d %s", i, a.status, a.body)
		}
	}
	a := f.send(meter, usage("rl-2", "acme"))
	wantRefused(t, a, http.StatusTooManyRequests, ingest.CodeRateLimited, "over its rate")
	if got := a.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (one event at 0.5 per second)", got)
	}
	// A batch that does not fit the bucket is refused as a whole.
	wantRefused(t, f.post(f.withToken(meter, batch()), jsonArray(t, usage("rl-3", "acme"), usage("rl-4", "acme"))), http.StatusTooManyRequests, ingest.CodeRateLimited, "over its rate")
	// Other producers are not affected.
	if a := f.send(billingEmail, usage("rl-other", "acme")); a.status != http.StatusAccepted {
		t.Errorf("another producer: %d %s", a.status, a.body)
	}
	if got := f.pull(3, 10*time.Second); len(got) != 3 {
		t.Fatalf("pulled %d, want the 3 accepted events", len(got))
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if a := f.send(meter, usage("rl-5", "acme")); a.status != http.StatusAccepted {
		t.Errorf("after the refill: %d %s", a.status, a.body)
	}
	f.pull(1, 10*time.Second)
	f.assertNothingPublished()
}

// TestBatchOverBurst: a batch larger than the producer's burst could never
// pass, so it is refused as invalid rather than rate limited.
func TestBatchOverBurst(t *testing.T) {
	rules := `[{"name": "billing", "class": "external", "email": "` + billingEmail + `", "types": ["autonomics.billing.*"], "tenants": ["*"], "burst": 2}]`
	f := newFixture(t, fixtureOptions{rules: rules})
	body := jsonArray(t, usage("ob-1", "acme"), usage("ob-2", "acme"), usage("ob-3", "acme"))
	wantRefused(t, f.post(f.withToken(billingEmail, batch()), body), http.StatusBadRequest, fault.Invalid, "burst of 2")
	f.assertNothingPublished()
}

// TestErrorsEchoBoundedInput: a huge hostile value is quoted cut short.
func TestErrorsEchoBoundedInput(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	huge := strings.Repeat("<script>", 4000)
	for _, a := range []answer{
		f.send(billingEmail, usage("e-1", huge)),
		f.send(billingEmail, usage("e-2", "acme").with("type", "autonomics."+huge)),
		f.post(f.withToken(billingEmail, http.Header{"Content-Type": {huge}}), nil),
		f.post(http.Header{"Content-Type": {ingest.StructuredContentType}, ingest.HeaderWebhookID: {"x"}, ingest.HeaderWebhookTimestamp: {"1"}, ingest.HeaderKeyID: {huge[:2000]}, ingest.HeaderWebhookSignature: {"v1,AAAA"}}, []byte("{}")),
	} {
		if a.status < 400 || len(a.body) > 1200 || strings.Count(string(a.body), "script") > 20 {
			t.Errorf("answer %d of %d bytes echoes the input: %.300s", a.status, len(a.body), a.body)
		}
	}
	f.assertNothingPublished()
}

func TestRoutes(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodGet, "/v1/events", http.StatusNotFound},
		{http.MethodPut, "/v1/events", http.StatusNotFound},
		{http.MethodPost, "/v1/other", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tc.method, f.http.URL+tc.path, nil)
		if a := f.do(req); a.status != tc.status || a.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s = %d %s, want %d JSON", tc.method, tc.path, a.status, a.body, tc.status)
		}
	}
}
