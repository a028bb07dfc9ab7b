package standin

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const provider = "demo-provider"

// notes records the notifications a stand-in publishes.
type notes struct {
	mu   sync.Mutex
	msgs []map[string]any
}

func (n *notes) notify(_ context.Context, data []byte) error {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	n.mu.Lock()
	n.msgs = append(n.msgs, m)
	n.mu.Unlock()
	return nil
}

func (n *notes) types() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, m := range n.msgs {
		out = append(out, m["eventType"].(string))
	}
	return out
}

func newServer(t *testing.T, o Options) (*Server, *httptest.Server, *notes) {
	t.Helper()
	n := &notes{}
	if o.Provider == "" {
		o.Provider = provider
	}
	if o.Notify == nil {
		o.Notify = n.notify
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs, n
}

// do sends a request and returns the status and decoded JSON body.
func do(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, url, b, err)
		}
	}
	return res.StatusCode, m
}

func errStatus(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["status"].(string)
	return s
}

func TestNewRefusesABadProvider(t *testing.T) {
	for _, p := range []string{"", "a/b", "../x"} {
		if _, err := New(Options{Provider: p}); err == nil {
			t.Errorf("New(%q) accepted", p)
		}
	}
}

func TestEntitlementApprovedBeforeAccountIsFailedPrecondition(t *testing.T) {
	s, hs, n := newServer(t, Options{})
	ctx := context.Background()
	ent, err := s.Purchase(ctx, "acct-1", "prod", "basic", PurchaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := hs.URL + "/v1/providers/" + provider
	st, body := do(t, "POST", base+"/entitlements/"+ent+":approve", "{}")
	if st != 400 || errStatus(body) != "FAILED_PRECONDITION" {
		t.Fatalf("approve before account: %d %v, want 400 FAILED_PRECONDITION", st, body)
	}
	if st, body := do(t, "POST", base+"/accounts/acct-1:approve", `{"approvalName":"signup"}`); st != 200 {
		t.Fatalf("account approve: %d %v", st, body)
	}
	if st, body := do(t, "POST", base+"/entitlements/"+ent+":approve", "{}"); st != 200 {
		t.Fatalf("approve: %d %v", st, body)
	}
	st, body = do(t, "POST", base+"/entitlements/"+ent+":approve", "{}")
	if st != 400 || errStatus(body) != "FAILED_PRECONDITION" {
		t.Fatalf("approve twice: %d %v, want 400 FAILED_PRECONDITION", st, body)
	}
	if e, _ := s.Entitlement(ent); e.State != Active {
		t.Fatalf("state %s, want %s", e.State, Active)
	}
	want := []string{EventAccountActive, EventEntitlementCreationRequested, EventAccountActive, EventEntitlementActive}
	if got := n.types(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("notifications %v, want %v", got, want)
	}
}

func TestNotificationShape(t *testing.T) {
	s, _, n := newServer(t, Options{})
	ent, err := s.Purchase(context.Background(), "acct-1", "prod", "basic", PurchaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	acc, entMsg := n.msgs[0], n.msgs[1]
	if acc["providerId"] != provider || acc["eventId"] == "" || acc["account"].(map[string]any)["id"] != "acct-1" {
		t.Errorf("account notification %v", acc)
	}
	e := entMsg["entitlement"].(map[string]any)
	if e["id"] != ent || e["updateTime"] == "" || entMsg["eventId"] == acc["eventId"] {
		t.Errorf("entitlement notification %v", entMsg)
	}
}

func TestLifecycleScenario(t *testing.T) {
	s, hs, n := newServer(t, Options{})
	ctx := context.Background()
	base := hs.URL + "/v1/providers/" + provider
	if err := s.CreateAccount(ctx, "acct-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, "acct-1"); err == nil {
		t.Fatal("second CreateAccount accepted")
	}
	ent, err := s.Purchase(ctx, "acct-1", "prod", "basic", PurchaseOptions{AutoApprove: true, UsageReportingID: "project_number:42"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPlanChange(ctx, ent, "pro"); err != nil {
		t.Fatal(err)
	}
	st, body := do(t, "POST", base+"/entitlements/"+ent+":approvePlanChange", `{"pendingPlanName":"other"}`)
	if st != 400 || errStatus(body) != "INVALID_ARGUMENT" {
		t.Fatalf("wrong pending plan: %d %v", st, body)
	}
	if st, body := do(t, "POST", base+"/entitlements/"+ent+":approvePlanChange", `{"pendingPlanName":"pro"}`); st != 200 {
		t.Fatalf("approvePlanChange: %d %v", st, body)
	}
	if e, _ := s.Entitlement(ent); e.State != PendingPlanChange {
		t.Fatalf("state %s after approval", e.State)
	}
	if err := s.EffectPlanChange(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Entitlement(ent); e.State != Active || e.Plan != "pro" || e.NewPendingPlan != "" || e.UsageReportingId != "project_number:42" {
		t.Fatalf("after plan change: %+v", e)
	}
	if err := s.RequestPlanChange(ctx, ent, "basic"); err != nil {
		t.Fatal(err)
	}
	if st, body := do(t, "POST", base+"/entitlements/"+ent+":rejectPlanChange", `{"pendingPlanName":"basic","reason":"not in catalog"}`); st != 200 {
		t.Fatalf("rejectPlanChange: %d %v", st, body)
	}
	if err := s.Cancel(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if err := s.RevertCancellation(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if err := s.EndOffer(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if err := s.Cancel(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if st, body := do(t, "GET", base+"/entitlements/"+ent, ""); st != 404 || errStatus(body) != "NOT_FOUND" {
		t.Fatalf("deleted entitlement: %d %v", st, body)
	}
	if err := s.DeleteAccount(ctx, "acct-1"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		EventAccountActive, EventEntitlementOfferAccepted, EventEntitlementActive,
		EventEntitlementPlanChangeReq, EventEntitlementPlanChanged,
		EventEntitlementPlanChangeReq, EventEntitlementPlanChangeCancel,
		EventEntitlementPendingCancel, EventEntitlementCancelReverted, EventEntitlementOfferEnded,
		EventEntitlementPendingCancel, EventEntitlementCancelled, EventEntitlementDeleted, EventAccountDeleted,
	}
	if got := n.types(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("notifications\n got %v\nwant %v", got, want)
	}
}

func TestScenarioRefusesWrongState(t *testing.T) {
	s, _, _ := newServer(t, Options{})
	ctx := context.Background()
	ent, err := s.Purchase(ctx, "acct-1", "prod", "basic", PurchaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"RequestPlanChange":  func() error { return s.RequestPlanChange(ctx, ent, "pro") },
		"EffectPlanChange":   func() error { return s.EffectPlanChange(ctx, ent) },
		"Finish":             func() error { return s.Finish(ctx, ent) },
		"RevertCancellation": func() error { return s.RevertCancellation(ctx, ent) },
		"Delete":             func() error { return s.Delete(ctx, ent) },
		"unknown":            func() error { return s.Cancel(ctx, "nope") },
	} {
		if err := f(); err == nil {
			t.Errorf("%s accepted on an entitlement awaiting activation", name)
		}
	}
}

func TestUnknownWrongProviderAndBadRequests(t *testing.T) {
	_, hs, _ := newServer(t, Options{})
	base := hs.URL + "/v1/providers/"
	for _, tc := range []struct {
		method, path, body string
		status             int
		rpc                string
	}{
		{"GET", provider + "/accounts/nope", "", 404, "NOT_FOUND"},
		{"GET", provider + "/entitlements/nope", "", 404, "NOT_FOUND"},
		{"GET", "other/accounts/a", "", 403, "PERMISSION_DENIED"},
		{"POST", provider + "/entitlements/x:explode", "{}", 404, "NOT_FOUND"},
		{"POST", provider + "/accounts/nope:approve", `{"approvalName":"signup","bogus":1}`, 400, "INVALID_ARGUMENT"},
		{"GET", provider + "/entitlements?filter=state%3Dactive%20OR%20plan%3Dx", "", 400, "INVALID_ARGUMENT"},
		{"GET", provider + "/entitlements?pageToken=garbage", "", 400, "INVALID_ARGUMENT"},
		{"POST", provider + "/accounts/a:approve", strings.Repeat("x", maxBody+1), 413, "INVALID_ARGUMENT"},
	} {
		st, body := do(t, tc.method, base+tc.path, tc.body)
		if st != tc.status || errStatus(body) != tc.rpc {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, st, errStatus(body), tc.status, tc.rpc)
		}
	}
}

func TestListFilterAndPages(t *testing.T) {
	s, hs, _ := newServer(t, Options{})
	ctx := context.Background()
	var active []string
	for i := range 7 {
		auto := i%2 == 0
		acct := "acct-a"
		if i >= 4 {
			acct = "acct-b"
		}
		id, err := s.Purchase(ctx, acct, "prod", "basic", PurchaseOptions{AutoApprove: auto})
		if err != nil {
			t.Fatal(err)
		}
		if auto {
			active = append(active, id)
		}
	}
	list := func(q string) ([]string, string) {
		st, body := do(t, "GET", hs.URL+"/v1/providers/"+provider+"/entitlements?"+q, "")
		if st != 200 {
			t.Fatalf("list %s: %d %v", q, st, body)
		}
		var ids []string
		es, _ := body["entitlements"].([]any)
		for _, e := range es {
			ids = append(ids, lastSegment(e.(map[string]any)["name"].(string)))
		}
		tok, _ := body["nextPageToken"].(string)
		return ids, tok
	}
	var got []string
	tok := ""
	for pages := 0; ; pages++ {
		ids, next := list("filter=state%3DENTITLEMENT_ACTIVE&pageSize=2&pageToken=" + tok)
		got = append(got, ids...)
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("pages do not end")
		}
		tok = next
	}
	if strings.Join(got, ",") != strings.Join(active, ",") {
		t.Fatalf("active entitlements %v, want %v", got, active)
	}
	if ids, _ := list(`filter=state%3Dactive+account%3Dacct-b`); len(ids) != 2 {
		t.Fatalf("state=active account=acct-b: %v, want 2", ids)
	}
	if ids, _ := list(`filter=state!%3Dactive+AND+account%3D%22acct-a%22`); len(ids) != 2 {
		t.Fatalf("state!=active AND account=\"acct-a\": %v, want 2", ids)
	}
}

func TestStateIsBounded(t *testing.T) {
	s, _, _ := newServer(t, Options{MaxAccounts: 2, MaxEntitlements: 3, MaxCalls: 4, MaxNotifications: 5})
	ctx := context.Background()
	for i := range 3 {
		if _, err := s.Purchase(ctx, "acct", "prod", "basic", PurchaseOptions{}); err != nil {
			t.Fatalf("purchase %d: %v", i, err)
		}
	}
	if _, err := s.Purchase(ctx, "acct", "prod", "basic", PurchaseOptions{}); err == nil {
		t.Fatal("purchase over MaxEntitlements accepted")
	}
	if err := s.CreateAccount(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, "c"); err == nil {
		t.Fatal("account over MaxAccounts accepted")
	}
	h := s.Handler()
	for range 10 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/providers/"+provider+"/accounts/acct", nil))
	}
	if n := len(s.Calls()); n != 4 {
		t.Fatalf("%d calls kept, want 4", n)
	}
	if n := len(s.Notifications()); n != 5 {
		t.Fatalf("%d notifications kept, want 5", n)
	}
}

func TestFailNextThenSuccess(t *testing.T) {
	s, hs, _ := newServer(t, Options{})
	if err := s.CreateAccount(context.Background(), "acct"); err != nil {
		t.Fatal(err)
	}
	s.FailNext("GET /v1/providers/"+provider+"/accounts/", 503, 2)
	url := hs.URL + "/v1/providers/" + provider + "/accounts/acct"
	for i, want := range []int{503, 503, 200} {
		st, body := do(t, "GET", url, "")
		if st != want {
			t.Fatalf("request %d: %d %v, want %d", i, st, body, want)
		}
		if st == 503 && errStatus(body) != "UNAVAILABLE" {
			t.Fatalf("503 body %v", body)
		}
	}
	s.FailNext(":approve", 403, 0)
	for range 3 {
		if st, _ := do(t, "POST", url+":approve", "{}"); st != 403 {
			t.Fatalf("permanent fault: %d", st)
		}
	}
	s.ClearFaults()
	if st, _ := do(t, "POST", url+":approve", "{}"); st != 200 {
		t.Fatalf("after ClearFaults: %d", st)
	}
	calls := s.CallsMatching(":approve")
	if len(calls) != 4 || calls[3].Status != 200 || string(calls[3].Body) != "{}" {
		t.Fatalf("calls %v", calls)
	}
}

func TestPatchMessageToUser(t *testing.T) {
	s, hs, _ := newServer(t, Options{})
	ent, err := s.Purchase(context.Background(), "acct", "prod", "basic", PurchaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	url := hs.URL + "/v1/providers/" + provider + "/entitlements/" + ent
	if st, _ := do(t, "PATCH", url+"?updateMask=plan", `{"plan":"x"}`); st != 400 {
		t.Fatalf("patch of plan: %d, want 400", st)
	}
	st, body := do(t, "PATCH", url+"?updateMask=messageToUser", `{"messageToUser":"welcome"}`)
	if st != 200 || body["messageToUser"] != "welcome" {
		t.Fatalf("patch: %d %v", st, body)
	}
}

func TestSignupTokenVerifiesWithServedCertificate(t *testing.T) {
	now := time.Now()
	s, hs, _ := newServer(t, Options{Now: func() time.Time { return now }})
	s.SetIssuer(IssuerURL(hs.URL))
	tok, err := s.SignupToken("acct-1", "example.com")
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(IssuerURL(hs.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=3600") {
		t.Fatalf("Cache-Control %q", cc)
	}
	var certs map[string]string
	if err := json.NewDecoder(res.Body).Decode(&certs); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		block, _ := pem.Decode([]byte(certs[tk.Header["kid"].(string)]))
		if block == nil {
			t.Fatalf("no certificate for kid %v", tk.Header["kid"])
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience("example.com"), jwt.WithIssuer(IssuerURL(hs.URL)), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if sub, _ := claims.GetSubject(); sub != "acct-1" || exp.Sub(iat.Time) != TokenLifetime {
		t.Fatalf("claims %v", claims)
	}
}
