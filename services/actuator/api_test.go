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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/services/actuator/actuatorenv"
	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/memwebhook"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// api is the actuator's API on an in-memory store, with a receiver.
type api struct {
	t      *testing.T
	srv    *httptest.Server
	d      *webhook.Deliverer
	store  webhook.Store
	pub    *webhooktest.Publisher
	recv   *webhooktest.Receiver
	topics topic.Names
	clock  *webhooktest.Clock
}

func newAPI(t *testing.T, callers ...string) *api {
	t.Helper()
	a := &api{t: t, store: memwebhook.New(), pub: &webhooktest.Publisher{}, recv: webhooktest.NewReceiver(t), topics: topic.Names{}, clock: webhooktest.NewClock()}
	log := slog.New(slog.DiscardHandler)
	d, err := webhook.New(webhook.Options{
		Store: a.store, Publisher: a.pub, Topics: a.topics, Kinds: webhook.KindsOf(machines.New(nil)),
		Guard: &webhook.Guard{AllowLoopback: true}, InlineSecrets: true, Logger: log, Clock: a.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.d = d
	s := &server{d: d, publisher: a.pub, topics: a.topics, log: log, callers: callers, inlineWait: 5 * time.Second}
	a.srv = httptest.NewServer(s.handler())
	t.Cleanup(func() { a.srv.Close(); _ = d.Wait(context.Background()) })
	return a
}

// do sends a request and returns the status and the body.
func (a *api) do(method, path string, body []byte, header ...string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// push pushes an action message as Pub/Sub would.
func (a *api) push(m event.Message, header ...string) (int, string) {
	a.t.Helper()
	return a.do("POST", "/v1/actions/push", event.PushBody(m.Data, m.Attributes, m.ID), header...)
}

func (a *api) putEndpoint(id string, body string) (int, string) {
	a.t.Helper()
	return a.do("PUT", "/v1/endpoints/"+id, []byte(body))
}

func (a *api) mustEndpoint(id string, kinds ...string) {
	a.t.Helper()
	if len(kinds) == 0 {
		kinds = []string{"*"}
	}
	k, _ := json.Marshal(kinds)
	code, body := a.putEndpoint(id, fmt.Sprintf(`{"url":%q,"kinds":%s,"secret":%q}`, a.recv.URL, k, webhook.NewSecret().Encode()))
	if code != http.StatusCreated {
		a.t.Fatalf("PUT endpoint %s = %d %s", id, code, body)
	}
}

func spec(id string) webhooktest.ActionSpec {
	return webhooktest.ActionSpec{ID: id, Domain: governor.MultiTenant, Kind: "tenant.provision", Tenant: "acme", Data: `{"plan":"pro"}`}
}

// endpoints returns the stored endpoints.
func (a *api) endpoints() []webhook.Endpoint {
	a.t.Helper()
	eps, err := a.store.Endpoints(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	return eps
}

func TestAPIEndpointLifecycle(t *testing.T) {
	a := newAPI(t)
	secret := webhook.NewSecret().Encode()
	code, body := a.putEndpoint("ops", fmt.Sprintf(`{"url":%q,"kinds":["tenant.provision"],"secrets":[%q],"timeout_seconds":5}`, a.recv.URL, secret))
	if code != http.StatusCreated || strings.Contains(body, strings.TrimPrefix(secret, "whsec_")) {
		t.Fatalf("PUT = %d %s; want 201 without the secret", code, body)
	}
	code, body = a.do("GET", "/v1/endpoints/ops", nil)
	if code != http.StatusOK || strings.Contains(body, strings.TrimPrefix(secret, "whsec_")) || !strings.Contains(body, `"kind":"inline"`) || !strings.Contains(body, `"timeout_seconds":5`) {
		t.Errorf("GET = %d %s", code, body)
	}
	if code, body = a.putEndpoint("ops", fmt.Sprintf(`{"url":%q,"kinds":["*"],"secret":%q,"disabled":true}`, a.recv.URL, secret)); code != http.StatusOK || !strings.Contains(body, `"disabled":true`) {
		t.Errorf("PUT again = %d %s, want 200 disabled", code, body)
	}
	if code, body = a.do("GET", "/v1/endpoints", nil); code != http.StatusOK || !strings.Contains(body, `"id":"ops"`) {
		t.Errorf("GET list = %d %s", code, body)
	}
	if code, _ = a.do("DELETE", "/v1/endpoints/ops", nil); code != http.StatusNoContent {
		t.Errorf("DELETE = %d", code)
	}
	if code, body = a.do("GET", "/v1/endpoints/ops", nil); code != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
		t.Errorf("GET after DELETE = %d %s", code, body)
	}
	if code, _ = a.do("DELETE", "/v1/endpoints/ops", nil); code != http.StatusNotFound {
		t.Errorf("DELETE again = %d, want 404", code)
	}
}

func TestAPIPushDeliversAndRecordsAttempts(t *testing.T) {
	a := newAPI(t)
	a.mustEndpoint("ops")
	code, body := a.push(spec("act-1").Message())
	if code != http.StatusOK || !strings.Contains(body, `"accepted"`) {
		t.Fatalf("push = %d %s", code, body)
	}
	if got := a.recv.IDs(); !slices.Equal(got, []string{"act-1"}) {
		t.Fatalf("receiver got %q", got)
	}
	code, body = a.do("GET", "/v1/actions/act-1/attempts", nil)
	var h struct {
		Deliveries []struct {
			EndpointID string `json:"endpoint_id"`
			State      string `json:"state"`
		} `json:"deliveries"`
		Attempts []struct {
			Status   int    `json:"status"`
			Outcome  string `json:"outcome"`
			Response string `json:"response"`
		} `json:"attempts"`
	}
	if err := json.Unmarshal([]byte(body), &h); code != http.StatusOK || err != nil {
		t.Fatalf("GET attempts = %d %s (%v)", code, body, err)
	}
	if len(h.Deliveries) != 1 || h.Deliveries[0].State != "delivered" || len(h.Attempts) != 1 || h.Attempts[0].Status != 200 || h.Attempts[0].Response != "ok" {
		t.Errorf("attempts %s", body)
	}
	if code, _ = a.do("POST", "/v1/actions/act-1/redeliver?endpoint=ops", nil); code != http.StatusOK {
		t.Errorf("redeliver = %d", code)
	}
	if got := a.recv.IDs(); !slices.Equal(got, []string{"act-1", "act-1"}) {
		t.Errorf("after redeliver the receiver got %q", got)
	}
	from, to := webhooktest.Epoch.Add(-time.Minute).Format(time.RFC3339), webhooktest.Epoch.Add(time.Minute).Format(time.RFC3339)
	if code, body = a.do("POST", "/v1/endpoints/ops/replay?from="+from+"&to="+to, nil); code != http.StatusOK || !strings.Contains(body, `"queued":1`) {
		t.Errorf("replay = %d %s", code, body)
	}
	if code, body = a.do("POST", "/v1/sweep", nil); code != http.StatusOK || !strings.Contains(body, `"finished":true`) {
		t.Errorf("sweep = %d %s", code, body)
	}
	if code, _ = a.do("GET", "/v1/actions/nope/attempts", nil); code != http.StatusNotFound {
		t.Errorf("attempts of an unknown action = %d, want 404", code)
	}
}

func TestOversizedEndpointBodyRefused(t *testing.T) {
	a := newAPI(t)
	code, body := a.putEndpoint("ops", `{"url":"`+strings.Repeat("a", maxEndpointBody)+`"}`)
	if code != http.StatusRequestEntityTooLarge || len(body) > 300 {
		t.Errorf("PUT of %d bytes = %d %s, want 413 naming the limit", maxEndpointBody, code, httpTrunc(body))
	}
	if eps := a.endpoints(); len(eps) != 0 {
		t.Errorf("an oversized body stored %+v", eps)
	}
}

func TestOversizedPushDeadLetteredAndNothingRecorded(t *testing.T) {
	a := newAPI(t)
	a.mustEndpoint("ops")
	code, body := a.do("POST", "/v1/actions/push", bytes.Repeat([]byte("x"), maxPushBody+1))
	if code != http.StatusOK || !strings.Contains(body, "dead_lettered") || !strings.Contains(body, "exceeds") {
		t.Errorf("oversized push = %d %s, want acknowledged and dead-lettered", code, httpTrunc(body))
	}
	if n := len(a.pub.On(a.topics.DeadLetter())); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
	if len(a.recv.Requests()) != 0 {
		t.Error("something was delivered")
	}
}

func TestDuplicateKeyEndpointBodyRefused(t *testing.T) {
	a := newAPI(t)
	s := webhook.NewSecret().Encode()
	for _, body := range []string{
		fmt.Sprintf(`{"url":%q,"url":"https://evil.example.com/","kinds":["*"],"secret":%q}`, a.recv.URL, s),
		fmt.Sprintf(`{"url":%q,"kinds":["*"],"secret":%q,"secret":%q}`, a.recv.URL, s, s),
	} {
		code, resp := a.putEndpoint("ops", body)
		if code != http.StatusBadRequest || !strings.Contains(resp, "duplicate") {
			t.Errorf("PUT with a repeated member = %d %s, want 400 naming the duplicate", code, resp)
		}
	}
	if eps := a.endpoints(); len(eps) != 0 {
		t.Errorf("a refused body stored %+v", eps)
	}
}

func TestDuplicateKeyPushDeadLettered(t *testing.T) {
	a := newAPI(t)
	a.mustEndpoint("ops")
	m := spec("act-1").Message()
	good := string(event.PushBody(m.Data, m.Attributes, m.ID))
	dup := strings.Replace(good, `{"message":`, `{"message":{"data":""},"message":`, 1)
	code, body := a.do("POST", "/v1/actions/push", []byte(dup))
	if code != http.StatusOK || !strings.Contains(body, "dead_lettered") {
		t.Errorf("push with a repeated member = %d %s", code, body)
	}
	if _, err := a.d.History(context.Background(), "act-1"); fault.ErrorCode(err) != fault.NotFound {
		t.Errorf("the action was recorded: %v", err)
	}
}

func TestMisspelledEndpointFieldRefused(t *testing.T) {
	a := newAPI(t)
	for _, body := range []string{
		fmt.Sprintf(`{"URL":%q,"kinds":["*"],"secret":%q}`, a.recv.URL, webhook.NewSecret().Encode()),
		fmt.Sprintf(`{"url":%q,"kinds":["*"],"secret":%q,"admin":true}`, a.recv.URL, webhook.NewSecret().Encode()),
		`[1,2]`, `{"url":`, ``,
	} {
		if code, resp := a.putEndpoint("ops", body); code != http.StatusBadRequest {
			t.Errorf("PUT %s = %d %s, want 400", httpTrunc(body), code, resp)
		}
	}
	if eps := a.endpoints(); len(eps) != 0 {
		t.Errorf("a refused body stored %+v", eps)
	}
}

func TestEchoedInputQuotedAndTruncated(t *testing.T) {
	a := newAPI(t)
	long := "https://" + strings.Repeat("é", 4000) + ".example.com/\x00"
	code, body := a.putEndpoint("ops", fmt.Sprintf(`{"url":%q,"kinds":["*"],"secret":%q}`, long, webhook.NewSecret().Encode()))
	if code != http.StatusBadRequest || len(body) > 600 || strings.Contains(body, "\x00") {
		t.Errorf("PUT with a 8 KB url = %d, %d bytes: %s", code, len(body), httpTrunc(body))
	}
	code, body = a.do("GET", "/v1/"+strings.Repeat("z", 5000), nil)
	if code != http.StatusNotFound || len(body) > 400 {
		t.Errorf("unknown route = %d, %d bytes", code, len(body))
	}
}

func TestSSRFEndpointRefusedByTheAPI(t *testing.T) {
	a := newAPI(t)
	for _, u := range []string{"https://169.254.169.254/computeMetadata/v1/", "https://10.0.0.7/", "http://hooks.example.com/"} {
		code, body := a.putEndpoint("ops", fmt.Sprintf(`{"url":%q,"kinds":["*"],"secret":%q}`, u, webhook.NewSecret().Encode()))
		if code != http.StatusBadRequest {
			t.Errorf("PUT url %s = %d %s, want 400", u, code, body)
		}
	}
	if eps := a.endpoints(); len(eps) != 0 {
		t.Errorf("stored %+v", eps)
	}
}

func TestForgedActionDeadLettered(t *testing.T) {
	a := newAPI(t)
	a.mustEndpoint("ops")
	m := spec("act-1").Message()
	m.Attributes["ce-source"] = "provider-billing"
	code, body := a.push(m)
	if code != http.StatusOK || !strings.Contains(body, "dead_lettered") {
		t.Fatalf("push of an action from outside = %d %s", code, body)
	}
	dl := a.pub.On(a.topics.DeadLetter())
	if len(dl) != 1 || dl[0].Attributes[deadletter.AttrDomain] != webhook.DeadLetterDomain || dl[0].Attributes[deadletter.AttrCode] != "invalid" {
		t.Errorf("dead letters %+v", dl)
	}
	if len(a.recv.Requests()) != 0 {
		t.Error("the forged action was delivered")
	}
}

// token returns an unsigned ID token for email, as Cloud Run passes it on
// once it has verified it.
func token(email string) string {
	enc := base64.RawURLEncoding
	return "Bearer " + enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString([]byte(`{"email":"`+email+`"}`)) + ".sig"
}

func TestPushFromAnotherCallerRefused(t *testing.T) {
	const pusher = "pubsub-push@p.iam.gserviceaccount.com"
	a := newAPI(t, pusher)
	a.mustEndpoint("ops")
	for name, h := range map[string][]string{
		"no token":       nil,
		"an operator":    {"Authorization", token("operator@example.com")},
		"shadowed token": {"X-Serverless-Authorization", token("operator@example.com"), "Authorization", token(pusher)},
	} {
		if code, body := a.push(spec("act-1").Message(), h...); code != http.StatusForbidden {
			t.Errorf("push with %s = %d %s, want 403", name, code, body)
		}
	}
	if len(a.recv.Requests()) != 0 {
		t.Fatal("a refused push was delivered")
	}
	if code, body := a.push(spec("act-1").Message(), "Authorization", token(pusher)); code != http.StatusOK {
		t.Errorf("push by the push identity = %d %s", code, body)
	}
}

func TestBadQueryRefused(t *testing.T) {
	a := newAPI(t)
	a.mustEndpoint("ops")
	for _, path := range []string{
		"/v1/endpoints/ops/replay?to=2026-01-01T00:00:00Z",
		"/v1/endpoints/ops/replay?from=yesterday&to=2026-01-01T00:00:00Z",
		"/v1/endpoints/ops/replay?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&limit=0",
		"/v1/endpoints/ops/replay?from=2026-01-01T00:00:00Z&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
		"/v1/endpoints/ops/replay?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&tenant=acme",
		"/v1/actions/act-1/redeliver?endpoint=ops&endpoint=other",
		"/v1/sweep?limit=-1",
	} {
		if code, body := a.do("POST", path, nil); code != http.StatusBadRequest {
			t.Errorf("POST %s = %d %s, want 400", path, code, body)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	base := map[string]string{"AUTONOMICS_PROJECT": "p"}
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"defaults", nil, true},
		{"local stack", map[string]string{actuatorenv.AllowLoopback: "true", actuatorenv.SweepInterval: "1s", actuatorenv.RetryInitial: "1s", actuatorenv.RetryMaxAge: "5m"}, true},
		{"bad flag", map[string]string{actuatorenv.AllowLoopback: "yes please"}, false},
		{"bad duration", map[string]string{actuatorenv.InlineWait: "soon"}, false},
		{"retention below the retry span", map[string]string{actuatorenv.Retention: "1h"}, false},
		{"endpoints", map[string]string{actuatorenv.Endpoints: `{"ops":{"url":"https://h.example.com/","kinds":["*"],"secrets":["projects/p/secrets/s/versions/latest"]}}`}, true},
		{"endpoints with a repeated member", map[string]string{actuatorenv.Endpoints: `{"ops":{"url":"https://a.example.com/","url":"https://b.example.com/","kinds":["*"]}}`}, false},
		{"endpoints with an unknown field", map[string]string{actuatorenv.Endpoints: `{"ops":{"uri":"https://a.example.com/"}}`}, false},
		{"bad namespace", map[string]string{actuatorenv.Namespace: "A/B"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := loadConfig(func(k string) string { return env[k] })
			if (err == nil) != tt.ok {
				t.Fatalf("loadConfig = %+v, %v; want ok %v", c, err, tt.ok)
			}
			if err == nil && tt.name == "local stack" && (!c.Guard.AllowLoopback || c.SweepInterval != time.Second || c.Policy.MaxAge != 5*time.Minute) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

func httpTrunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
