package procurement

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/api/option"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/marketplace/standin"
)

const provider = "demo-provider"

// stand starts a stand-in and a Client pointed at it.
func stand(t testing.TB) (*standin.Server, *Client) {
	t.Helper()
	s, err := standin.New(standin.Options{Provider: provider})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	c, err := NewClient(context.Background(), provider, option.WithEndpoint(hs.URL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestClientLifecycleThroughGoogleClient(t *testing.T) {
	s, c := stand(t)
	ctx := context.Background()
	ent, err := s.Purchase(ctx, "acct-1", "prod", "basic", standin.PurchaseOptions{UsageReportingID: "project_number:7"})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.GetAccount(ctx, "acct-1")
	if err != nil {
		t.Fatal(err)
	}
	if acc.Name != "providers/"+provider+"/accounts/acct-1" || signupState(acc) != "PENDING" {
		t.Fatalf("account %+v", acc)
	}
	if err := c.ApproveEntitlement(ctx, ent); !IsPrecondition(err) || fault.ErrorCode(err) != fault.Unavailable {
		t.Fatalf("approve before account: %v (code %s), want FAILED_PRECONDITION, unavailable", err, fault.ErrorCode(err))
	}
	if err := c.ApproveAccount(ctx, "acct-1"); err != nil {
		t.Fatal(err)
	}
	if err := c.ApproveEntitlement(ctx, ent); err != nil {
		t.Fatal(err)
	}
	e, err := c.GetEntitlement(ctx, ent)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != StateActive || e.Plan != "basic" || e.UsageReportingId != "project_number:7" || AccountID(e.Account) != "acct-1" {
		t.Fatalf("entitlement %+v", e)
	}
	if err := s.RequestPlanChange(ctx, ent, "pro"); err != nil {
		t.Fatal(err)
	}
	if err := c.ApprovePlanChange(ctx, ent, "pro"); err != nil {
		t.Fatal(err)
	}
	if err := s.EffectPlanChange(ctx, ent); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPlanChange(ctx, ent, "basic"); err != nil {
		t.Fatal(err)
	}
	if err := c.RejectPlanChange(ctx, ent, "basic", "downgrades are not offered"); err != nil {
		t.Fatal(err)
	}
	m, err := c.SetMessage(ctx, ent, "Welcome aboard")
	if err != nil || m.MessageToUser != "Welcome aboard" {
		t.Fatalf("SetMessage: %+v, %v", m, err)
	}
	other, err := s.Purchase(ctx, "acct-1", "prod", "basic", standin.PurchaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RejectEntitlement(ctx, other, strings.Repeat("é", 300)); err != nil {
		t.Fatal(err)
	}
	calls := s.CallsMatching(other + ":reject")
	if len(calls) != 1 || len(calls[0].Body) > MaxReason+64 {
		t.Fatalf("reject calls %v", calls)
	}
	if err := c.RejectAccount(ctx, "acct-1", "fraud"); err != nil {
		t.Fatal(err)
	}
	if err := c.ResetAccount(ctx, "acct-1"); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Entitlement(ent); e.State != StateCancelled {
		t.Fatalf("after reset: %s", e.State)
	}
}

func TestClientListPages(t *testing.T) {
	s, c := stand(t)
	ctx := context.Background()
	want := map[string]bool{}
	for range 3 {
		id, err := s.Purchase(ctx, "acct-1", "prod", "basic", standin.PurchaseOptions{AutoApprove: true})
		if err != nil {
			t.Fatal(err)
		}
		want[id] = true
		if _, err := s.Purchase(ctx, "acct-2", "prod", "basic", standin.PurchaseOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, next, err := c.ListEntitlements(ctx, "state=ENTITLEMENT_ACTIVE", "")
	if err != nil || next != "" {
		t.Fatalf("list: %v, next %q", err, next)
	}
	for _, e := range got {
		if !want[lastSegment(e.Name)] {
			t.Errorf("unexpected %s (%s)", e.Name, e.State)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d active, want %d", len(got), len(want))
	}
	if _, _, err := c.ListEntitlements(ctx, "state=active OR plan=x", ""); fault.ErrorCode(err) != fault.Invalid {
		t.Fatalf("unsupported filter: %v", err)
	}
	if _, _, err := c.ListEntitlements(ctx, "", "forged-token"); fault.ErrorCode(err) != fault.Invalid {
		t.Fatalf("forged page token: %v", err)
	}
}

func lastSegment(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

func TestClientErrorsMapToCodes(t *testing.T) {
	s, c := stand(t)
	ctx := context.Background()
	if err := s.CreateAccount(ctx, "acct-1"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		status int
		want   fault.Code
		http   int
	}{
		{"unavailable", 503, fault.Unavailable, 503},
		{"internal", 500, fault.Unavailable, 500},
		{"throttled", 429, fault.Unavailable, 429},
		{"forbidden", 403, fault.Invalid, 403},
		{"not found", 404, fault.NotFound, 404},
	} {
		s.FailNext("GET /v1/providers/"+provider+"/accounts/acct-1", tc.status, 1)
		_, err := c.GetAccount(ctx, "acct-1")
		if fault.ErrorCode(err) != tc.want || HTTPStatus(err) != tc.http || IsPrecondition(err) {
			t.Errorf("%s: %v (code %s, status %d), want %s", tc.name, err, fault.ErrorCode(err), HTTPStatus(err), tc.want)
		}
	}
	if _, err := c.GetAccount(ctx, "nope"); fault.ErrorCode(err) != fault.NotFound {
		t.Errorf("unknown account: %v", err)
	}
}

func TestClientRefusesIDsThatAreNotIDs(t *testing.T) {
	s, c := stand(t)
	ctx := context.Background()
	for _, id := range []string{"", "../accounts/x", "a/b", "e:approve", "a?b", strings.Repeat("x", 200)} {
		if _, err := c.GetEntitlement(ctx, id); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("GetEntitlement(%q): %v, want invalid", id, err)
		}
		if err := c.ApproveAccount(ctx, id); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("ApproveAccount(%q): %v, want invalid", id, err)
		}
	}
	if err := c.ApprovePlanChange(ctx, "e", "bad/plan"); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("bad plan: %v", err)
	}
	if n := len(s.Calls()); n != 0 {
		t.Fatalf("%d calls made with bad ids", n)
	}
	if _, err := NewClient(ctx, "bad/provider", option.WithoutAuthentication()); err == nil {
		t.Fatal("bad provider accepted")
	}
}

func TestClientNetworkFaultIsUnavailable(t *testing.T) {
	c, err := NewClient(context.Background(), provider, option.WithEndpoint("http://127.0.0.1:1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetAccount(context.Background(), "acct")
	if fault.ErrorCode(err) != fault.Unavailable || HTTPStatus(err) != 0 {
		t.Fatalf("network fault: %v", err)
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"ééé", 3, "é"},
		{"ééé", 4, "éé"},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestAccountID(t *testing.T) {
	for in, want := range map[string]string{
		"providers/p/accounts/A-1": "A-1",
		"accounts/A-1":             "A-1",
		"providers/p/xaccounts/A":  "",
		"providers/p/accounts/a/b": "",
		"":                         "",
	} {
		if got := AccountID(in); got != want {
			t.Errorf("AccountID(%q) = %q, want %q", in, got, want)
		}
	}
}
