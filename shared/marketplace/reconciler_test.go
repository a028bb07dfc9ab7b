package marketplace_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// fakeGovernors is a Governors over a map of instances.
type fakeGovernors struct {
	mu    sync.Mutex
	insts []governor.Instance
	fail  error
	reads int
}

func (g *fakeGovernors) put(tenant, subject string, state governor.State, plan string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	data, _ := json.Marshal(map[string]string{"plan": plan})
	g.insts = append(g.insts, governor.Instance{Key: governor.Key{Tenant: tenant, Domain: governor.Entitlement, Subject: subject}, State: state, Data: data})
}

func (g *fakeGovernors) Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reads++
	if g.fail != nil {
		return nil, g.fail
	}
	var out []governor.Instance
	for _, in := range g.insts {
		if in.Tenant == tenant && in.Domain == domain {
			out = append(out, in)
		}
	}
	return out, nil
}

type recHarness struct {
	proc   *fakeProcurement
	govs   *fakeGovernors
	pub    *webhooktest.Publisher
	topics topic.Names
	rec    *marketplace.Reconciler
}

func newRecHarness(t testing.TB, opts ...func(*marketplace.ReconcilerOptions)) *recHarness {
	t.Helper()
	h := &recHarness{proc: newFakeProcurement(), govs: &fakeGovernors{}, pub: &webhooktest.Publisher{}, topics: topic.Names{}}
	o := marketplace.ReconcilerOptions{
		Provider: provider, Procurement: h.proc, Accounts: marketplace.NewMemAccounts(), Governors: h.govs,
		Publisher: h.pub, Topics: h.topics, Logger: discardLogger(),
		Now: func() time.Time { return webhooktest.Epoch.Add(24 * time.Hour) },
	}
	for _, f := range opts {
		f(&o)
	}
	r, err := marketplace.NewReconciler(o)
	if err != nil {
		t.Fatal(err)
	}
	h.rec = r
	return h
}

func (h *recHarness) published(t testing.TB) []governor.Event {
	return decodeAll(t, h.pub.On(h.topics.Domain(governor.Entitlement)))
}

func TestReconcilerCorrectsDrift(t *testing.T) {
	h := newRecHarness(t)
	// In step: no events.
	h.proc.entitlement("e-ok", marketplace.EntitlementActive, "basic")
	h.govs.put(tenant, "e-ok", "active", "basic")
	// A lost ENTITLEMENT_ACTIVE: the governor still waits for approval.
	h.proc.entitlement("e-lost", marketplace.EntitlementActive, "basic")
	h.govs.put(tenant, "e-lost", "activation_requested", "basic")
	// A lost ENTITLEMENT_PLAN_CHANGED.
	h.proc.entitlement("e-plan", marketplace.EntitlementActive, "pro")
	h.govs.put(tenant, "e-plan", "active", "basic")
	// A lost ENTITLEMENT_CANCELLED.
	h.proc.entitlement("e-gone", marketplace.EntitlementCancelled, "basic")
	h.govs.put(tenant, "e-gone", "pending_cancellation", "basic")
	// Never heard of: brought to pending cancellation in two steps.
	h.proc.entitlement("e-new", marketplace.EntitlementPendingCancellation, "basic")

	rep, err := h.rec.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 5 || len(rep.Drifts) != 4 || rep.Next != nil {
		t.Errorf("report %+v, want 5 checked, 4 drifts, complete", rep)
	}
	got := map[string][]string{}
	for _, ev := range h.published(t) {
		if ev.Source != "marketplace/"+provider || ev.Tenant != tenant || !strings.HasPrefix(ev.ID, "reconcile-") {
			t.Errorf("event %+v: want source marketplace/%s, tenant %s, id reconcile-…", ev, provider, tenant)
		}
		got[ev.Subject] = append(got[ev.Subject], strings.TrimPrefix(ev.Type, "autonomics.entitlement."))
	}
	want := map[string][]string{
		"e-lost": {"activated"},
		"e-plan": {"plan_changed"},
		"e-gone": {"cancelled"},
		"e-new":  {"activated", "pending_cancellation"},
	}
	for s, w := range want {
		if !slices.Equal(got[s], w) {
			t.Errorf("%s: published %v, want %v", s, got[s], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("published for %v, want only %v", got, want)
	}
}

func TestReconcilerWithoutDriftPublishesNothing(t *testing.T) {
	h := newRecHarness(t)
	h.proc.entitlement("e-1", marketplace.EntitlementActive, "basic")
	h.govs.put(tenant, "e-1", "active", "basic")
	h.proc.entitlement("e-2", marketplace.EntitlementPendingPlanChangeApproval, "basic")
	h.govs.put(tenant, "e-2", "pending_plan_change_approval", "basic")
	h.proc.entitlement("e-3", marketplace.EntitlementActive, "basic")
	h.govs.put(tenant, "e-3", "suspended", "basic")
	rep, err := h.rec.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 3 || len(rep.Drifts) != 0 || rep.Events != 0 {
		t.Errorf("report %+v, want 3 checked and no drift", rep)
	}
	if n := len(h.pub.On(h.topics.Domain(governor.Entitlement))); n != 0 {
		t.Errorf("%d events published without drift", n)
	}
}

func TestReconcilerRerunPublishesTheSameIDs(t *testing.T) {
	h := newRecHarness(t)
	h.proc.entitlement("e-1", marketplace.EntitlementActive, "basic")
	for range 2 {
		if _, err := h.rec.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	evs := h.published(t)
	if len(evs) != 2 || evs[0].ID != evs[1].ID {
		t.Errorf("two runs published %+v; want the same id twice for the engine to deduplicate", evs)
	}
}

func TestReconcilerLeavesSettlingEntitlementsAlone(t *testing.T) {
	h := newRecHarness(t, func(o *marketplace.ReconcilerOptions) {
		o.Now = func() time.Time { return time.Date(2026, 3, 1, 10, 9, 0, 0, time.UTC) }
	})
	h.proc.entitlement("e-1", marketplace.EntitlementActive, "basic") // updated 10:07
	rep, err := h.rec.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Settling != 1 || rep.Checked != 0 || rep.Events != 0 {
		t.Errorf("report %+v, want the entitlement left to its notification", rep)
	}
}

func TestReconcilerStopsAtMaxPerRunAndContinues(t *testing.T) {
	h := newRecHarness(t, func(o *marketplace.ReconcilerOptions) { o.MaxPerRun = 2 })
	for _, id := range []string{"e-1", "e-2", "e-3", "e-4", "e-5"} {
		h.proc.entitlement(id, marketplace.EntitlementActive, "basic")
	}
	rep, err := h.rec.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 2 || rep.Next == nil || rep.Next.State != marketplace.EntitlementActive || rep.Next.PageToken == "" {
		t.Fatalf("first run %+v, want 2 checked and a cursor into the active list", rep)
	}
	runs := 1
	for rep.Next != nil {
		if runs++; runs > 10 {
			t.Fatal("the runs do not end")
		}
		if rep, err = h.rec.RunFrom(context.Background(), *rep.Next); err != nil {
			t.Fatal(err)
		}
	}
	if evs := h.published(t); len(evs) != 5 {
		t.Errorf("all runs published %d events, want one per entitlement (5)", len(evs))
	}
}

func TestReconcilerProcurement503StopsTheRun(t *testing.T) {
	h := newRecHarness(t)
	h.proc.entitlement("e-1", marketplace.EntitlementActive, "basic")
	h.proc.setFail(unavailable)
	rep, err := h.rec.Run(context.Background())
	if fault.ErrorCode(err) != fault.Unavailable || rep.Next == nil {
		t.Errorf("Run with Procurement down = %+v, %v; want unavailable and where to continue", rep, err)
	}
	srv := httptest.NewServer(h.rec.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+marketplace.ReconcilePath, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST /v1/reconcile with Procurement down = %d, want 503", resp.StatusCode)
	}
}

func TestReconcilerPublishFailureStopsTheRun(t *testing.T) {
	h := newRecHarness(t)
	h.proc.entitlement("e-1", marketplace.EntitlementActive, "basic")
	h.pub.Fail(true)
	if _, err := h.rec.Run(context.Background()); fault.ErrorCode(err) != fault.Unavailable {
		t.Errorf("Run with Pub/Sub down = %v, want unavailable", err)
	}
}

func TestReconcilerGovernorsOutageStopsTheRun(t *testing.T) {
	h := newRecHarness(t)
	h.proc.entitlement("e-1", marketplace.EntitlementActive, "basic")
	h.govs.fail = fault.Errorf(fault.Unavailable, "store", "firestore unavailable")
	if _, err := h.rec.Run(context.Background()); fault.ErrorCode(err) != fault.Unavailable {
		t.Errorf("Run with the governors' store down = %v, want unavailable", err)
	}
	if n := len(h.pub.On(h.topics.Domain(governor.Entitlement))); n != 0 {
		t.Errorf("%d events published without knowing the governor", n)
	}
}

func TestReconcilerSkipsMalformedEntitlements(t *testing.T) {
	h := newRecHarness(t)
	h.proc.entitlement("e-1", marketplace.EntitlementActive, "basic").Account = "nonsense"
	h.proc.entitlement("e-2", marketplace.EntitlementActive, "basic").Name = "providers/acme-saas/entitlements/a b"
	rep, err := h.rec.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) != 2 || rep.Events != 0 {
		t.Errorf("report %+v, want both skipped with a reason and nothing published", rep)
	}
}

func TestReconcileHandler(t *testing.T) {
	h := newRecHarness(t)
	h.proc.entitlement("e-1", marketplace.EntitlementActive, "basic")
	srv := httptest.NewServer(h.rec.Handler())
	defer srv.Close()
	post := func(body string) (int, marketplace.Report) {
		resp, err := http.Post(srv.URL+marketplace.ReconcilePath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep marketplace.Report
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		return resp.StatusCode, rep
	}
	if code, rep := post(""); code != http.StatusOK || rep.Checked != 1 || len(rep.Drifts) != 1 {
		t.Errorf("POST = %d %+v, want 200 and one drift", code, rep)
	}
	if code, _ := post(`{"state":"ENTITLEMENT_CANCELLED"}`); code != http.StatusOK {
		t.Errorf("POST from a cursor = %d, want 200", code)
	}
	for _, bad := range []string{`{"state":"NO_SUCH_STATE"}`, `{"state":"ENTITLEMENT_ACTIVE","state":"x"}`, `{"cursor":1}`, `[`,
		`{"page_token":"` + strings.Repeat("x", 5000) + `"}`} {
		if code, _ := post(bad); code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %.40s = %d, want 400 or 413", bad, code)
		}
	}
}

func TestCorrective(t *testing.T) {
	inst := func(s governor.State, plan string) governor.Instance {
		d, _ := json.Marshal(map[string]string{"plan": plan})
		return governor.Instance{State: s, Data: d}
	}
	none := governor.Instance{State: governor.StateNone}
	tests := []struct {
		state, plan string
		inst        governor.Instance
		want        string
		drift       bool
	}{
		{marketplace.EntitlementActivationRequested, "basic", none, "creation_requested", true},
		{marketplace.EntitlementActivationRequested, "basic", inst("activation_requested", "basic"), "", false},
		{marketplace.EntitlementActivationRequested, "basic", inst("active", "basic"), "", true},
		{marketplace.EntitlementActive, "basic", none, "activated", true},
		{marketplace.EntitlementActive, "basic", inst("activation_requested", "basic"), "activated", true},
		{marketplace.EntitlementActive, "basic", inst("active", "basic"), "", false},
		{marketplace.EntitlementActive, "pro", inst("active", "basic"), "plan_changed", true},
		{marketplace.EntitlementActive, "basic", inst("suspended", "basic"), "", false},
		{marketplace.EntitlementActive, "pro", inst("pending_plan_change_approval", "basic"), "plan_changed", true},
		{marketplace.EntitlementActive, "basic", inst("pending_plan_change", "basic"), "plan_change_cancelled", true},
		{marketplace.EntitlementActive, "basic", inst("pending_cancellation", "basic"), "cancellation_reverted", true},
		{marketplace.EntitlementActive, "basic", inst("cancelled", "basic"), "", true},
		{marketplace.EntitlementPendingPlanChangeApproval, "basic", none, "activated,plan_change_requested", true},
		{marketplace.EntitlementPendingPlanChangeApproval, "basic", inst("active", "basic"), "plan_change_requested", true},
		{marketplace.EntitlementPendingPlanChangeApproval, "basic", inst("pending_plan_change_approval", "basic"), "", false},
		{marketplace.EntitlementPendingPlanChange, "basic", inst("pending_plan_change_approval", "basic"), "plan_change_approved", true},
		{marketplace.EntitlementPendingPlanChange, "basic", inst("active", "basic"), "plan_change_requested,plan_change_approved", true},
		{marketplace.EntitlementPendingPlanChange, "basic", inst("pending_plan_change", "basic"), "", false},
		{marketplace.EntitlementPendingCancellation, "basic", inst("active", "basic"), "pending_cancellation", true},
		{marketplace.EntitlementPendingCancellation, "basic", inst("pending_plan_change", "basic"), "plan_change_cancelled,pending_cancellation", true},
		{marketplace.EntitlementPendingCancellation, "basic", inst("pending_cancellation", "basic"), "", false},
		{marketplace.EntitlementCancelled, "basic", inst("active", "basic"), "cancelled", true},
		{marketplace.EntitlementCancelled, "basic", inst("suspended", "basic"), "cancelled", true},
		{marketplace.EntitlementCancelled, "basic", inst("cancelled", "basic"), "", false},
		{marketplace.EntitlementCancelled, "basic", inst("deleted", "basic"), "", false},
		{marketplace.EntitlementCancelled, "basic", none, "", false},
		{marketplace.EntitlementSuspended, "basic", inst("active", "basic"), "", false},
	}
	for _, tt := range tests {
		evs, drift := marketplace.Corrective(tt.state, tt.plan, tt.inst)
		var names []string
		for _, e := range evs {
			names = append(names, string(e))
		}
		if got := strings.Join(names, ","); got != tt.want || drift != tt.drift {
			t.Errorf("Corrective(%s, %s, governor %s) = %q, drift %v; want %q, drift %v", tt.state, tt.plan, tt.inst.State, got, drift, tt.want, tt.drift)
		}
	}
}

// TestReconcileFromAnotherIdentityIsForbidden starts a run as a caller
// other than the scheduler: 403 and nothing published.
func TestReconcileFromAnotherIdentityIsForbidden(t *testing.T) {
	const scheduler = "scheduler@example.iam.gserviceaccount.com"
	h := newRecHarness(t, func(o *marketplace.ReconcilerOptions) { o.Callers = []string{scheduler} })
	h.proc.entitlement("e-1", marketplace.EntitlementActive, "basic")
	post := func(auth string) int {
		req := httptest.NewRequest(http.MethodPost, marketplace.ReconcilePath, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.rec.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	for _, auth := range []string{"", bearer("intruder@example.com")} {
		if code := post(auth); code != http.StatusForbidden {
			t.Errorf("reconcile with %q = %d, want 403", auth, code)
		}
	}
	if n := len(h.pub.On(h.topics.Domain(governor.Entitlement))); n != 0 {
		t.Fatalf("a forbidden call published %d events", n)
	}
	if code := post(bearer(scheduler)); code != http.StatusOK {
		t.Errorf("reconcile as the scheduler = %d, want 200", code)
	}
	if n := len(h.pub.On(h.topics.Domain(governor.Entitlement))); n == 0 {
		t.Error("the scheduler's run corrected no drift")
	}
}
