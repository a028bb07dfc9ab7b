package procurement

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"google.golang.org/api/option"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/marketplace/standin"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// kinds are the action kinds of the tests: the marketplace ones and one
// that is not.
var kinds = webhook.Kinds{
	governor.CustomerAccount: {KindApproveAccount, KindRejectAccount},
	governor.Entitlement:     {KindApproveEntitlement, KindRejectEntitlement, KindApprovePlanChange, KindRejectPlanChange},
	governor.MultiTenant:     {"tenant.provision"},
}

var topics = topic.Names{}

// fakeAccounts is an in-memory tenant → account mapping.
type fakeAccounts struct {
	mu    sync.Mutex
	links map[string]marketplace.Link
	err   error
}

func (f *fakeAccounts) ByTenant(_ context.Context, tenant string) (marketplace.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return marketplace.Link{}, f.err
	}
	l, ok := f.links[tenant]
	if !ok {
		return marketplace.Link{}, fault.Errorf(fault.NotFound, "fake.ByTenant", "no link for tenant %s", tenant)
	}
	return l, nil
}

func (f *fakeAccounts) link(account string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := marketplace.DefaultTenant(account)
	f.links[t] = marketplace.Link{Account: account, Tenant: t, Source: marketplace.LinkedBySignup}
	return t
}

type env struct {
	s        *standin.Server
	c        *Client
	pub      *webhooktest.Publisher
	clock    *webhooktest.Clock
	accounts *fakeAccounts
	act      *Actuator
	push     *httptest.Server
}

func newEnv(t testing.TB, opts ...func(*ActuatorOptions)) *env {
	t.Helper()
	s, err := standin.New(standin.Options{Provider: provider, MaxEntitlements: 1 << 20, MaxCalls: 64})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	c, err := NewClient(context.Background(), provider, option.WithEndpoint(hs.URL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{s: s, c: c, pub: &webhooktest.Publisher{}, clock: webhooktest.NewClock(), accounts: &fakeAccounts{links: map[string]marketplace.Link{}}}
	o := ActuatorOptions{
		Client: c, Accounts: e.accounts, Publisher: e.pub, Topics: topics, Kinds: kinds,
		Logger: slog.New(slog.DiscardHandler), Now: e.clock.Now,
		Backoff: []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond},
	}
	for _, f := range opts {
		f(&o)
	}
	if e.act, err = NewActuator(o); err != nil {
		t.Fatal(err)
	}
	e.push = httptest.NewServer(e.act.Handler())
	t.Cleanup(e.push.Close)
	return e
}

// customer creates an account linked to a tenant, optionally approved,
// with one entitlement awaiting activation.
func (e *env) customer(t testing.TB, account string, approved bool) (tenant, ent string) {
	t.Helper()
	ctx := context.Background()
	ent, err := e.s.Purchase(ctx, account, "prod", "basic", standin.PurchaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acc, _ := e.s.Account(account); approved && acc.Approvals[0].State != "APPROVED" {
		if err := e.c.ApproveAccount(ctx, account); err != nil {
			t.Fatal(err)
		}
	}
	return e.accounts.link(account), ent
}

var seq int

// action builds an action as the governors publish it.
func action(t testing.TB, domain governor.Domain, kind, tenant, subject, data string, at time.Time) webhook.Action {
	t.Helper()
	seq++
	return webhooktest.ActionSpec{
		ID: "act-" + strings.ReplaceAll(kind, ".", "-") + "-" + strconv.Itoa(seq), Domain: domain, Kind: kind,
		Tenant: tenant, Subject: subject, Time: at, Data: data,
	}.Action(t, kinds)
}

func (e *env) approveEnt(t testing.TB, tenant, ent string) webhook.Action {
	return action(t, governor.Entitlement, KindApproveEntitlement, tenant, ent, "", e.clock.Now())
}

// postAction pushes an action's message to the actuator's handler.
func (e *env) postAction(t testing.TB, a webhook.Action) int {
	t.Helper()
	return e.post(t, event.PushBody(a.Raw, a.Attributes, a.MessageID))
}

func (e *env) post(t testing.TB, body []byte) int {
	t.Helper()
	res, err := http.Post(e.push.URL+"/v1/actions/push", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func (e *env) handle(t testing.TB, a webhook.Action) (Outcome, error) {
	t.Helper()
	return e.act.Handle(context.Background(), a)
}

func mustHandle(t testing.TB, e *env, a webhook.Action, want Outcome) {
	t.Helper()
	got, err := e.handle(t, a)
	if err != nil || got != want {
		t.Fatalf("Handle(%s %s): %s, %v; want %s", a.Kind, a.Subject, got, err, want)
	}
}

func TestDuplicateActionMakesOneApproveCall(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	a := e.approveEnt(t, tenant, ent)
	if st := e.postAction(t, a); st != http.StatusNoContent {
		t.Fatalf("first delivery: %d", st)
	}
	if st := e.postAction(t, a); st != http.StatusNoContent {
		t.Fatalf("second delivery: %d", st)
	}
	mustHandle(t, e, a, OutcomeAlready)
	if n := len(e.s.CallsMatching(ent + ":approve")); n != 1 {
		t.Fatalf("%d approve calls, want 1", n)
	}
	if got, _ := e.s.Entitlement(ent); got.State != StateActive {
		t.Fatalf("state %s", got.State)
	}
}

func TestConcurrentDuplicatesMakeOneCall(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	a := e.approveEnt(t, tenant, ent)
	var wg sync.WaitGroup
	outs := make([]Outcome, 8)
	for i := range outs {
		wg.Go(func() {
			out, err := e.act.Handle(context.Background(), a)
			if err != nil {
				t.Error(err)
			}
			outs[i] = out
		})
	}
	wg.Wait()
	done := 0
	for _, o := range outs {
		if o == OutcomeDone {
			done++
		} else if o != OutcomeAlready {
			t.Errorf("outcome %s", o)
		}
	}
	if n := len(e.s.CallsMatching(ent + ":approve")); n != 1 || done != 1 {
		t.Fatalf("%d approve calls and %d done, want 1 and 1", n, done)
	}
}

func TestApproveTwiceIsAlready(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	mustHandle(t, e, e.approveEnt(t, tenant, ent), OutcomeDone)
	// A second decision to approve (another action id) finds it done.
	mustHandle(t, e, e.approveEnt(t, tenant, ent), OutcomeAlready)
	if n := len(e.s.CallsMatching(ent + ":approve")); n != 1 {
		t.Fatalf("%d approve calls, want 1", n)
	}
}

// racingAPI approves the entitlement elsewhere just before the
// actuator's own call, as a second instance of the actuator would.
type racingAPI struct {
	API
	once sync.Once
}

func (r *racingAPI) ApproveEntitlement(ctx context.Context, id string) error {
	r.once.Do(func() { _ = r.API.ApproveEntitlement(ctx, id) })
	return r.API.ApproveEntitlement(ctx, id)
}

func TestApprovedElsewhereBetweenReadAndCallIsAlready(t *testing.T) {
	var e *env
	race := &racingAPI{}
	e = newEnv(t, func(o *ActuatorOptions) { race.API = o.Client; o.Client = race })
	tenant, ent := e.customer(t, "acct-1", true)
	mustHandle(t, e, e.approveEnt(t, tenant, ent), OutcomeAlready)
	calls := e.s.CallsMatching(ent + ":approve")
	if len(calls) != 2 || calls[0].Status != 200 || calls[1].Status != 400 {
		t.Fatalf("approve calls %v, want one 200 (elsewhere) and one 400", calls)
	}
	if len(e.pub.On(topics.DeadLetter())) != 0 {
		t.Fatal("dead-lettered")
	}
}

func TestAccountNotYetApprovedIsRetriedThenSucceeds(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", false)
	a := e.approveEnt(t, tenant, ent)
	out, err := e.handle(t, a)
	if out != OutcomeRetried || fault.ErrorCode(err) != fault.Unavailable || !strings.Contains(err.Error(), "not approved yet") {
		t.Fatalf("before account approval: %s, %v; want retried, unavailable", out, err)
	}
	if n := len(e.s.CallsMatching(ent + ":approve")); n != 4 {
		t.Fatalf("%d approve attempts, want 4 (1 + 3 retries)", n)
	}
	if st := e.postAction(t, a); st != http.StatusServiceUnavailable {
		t.Fatalf("push before account approval: %d, want 503", st)
	}
	// The buyer signs up: the account is approved by its own action.
	mustHandle(t, e, action(t, governor.CustomerAccount, KindApproveAccount, tenant, "", "", e.clock.Now()), OutcomeDone)
	if st := e.postAction(t, a); st != http.StatusNoContent {
		t.Fatalf("redelivery after account approval: %d, want 204", st)
	}
	if got, _ := e.s.Entitlement(ent); got.State != StateActive {
		t.Fatalf("state %s", got.State)
	}
	if len(e.pub.On(topics.Internal(governor.Entitlement))) != 0 {
		t.Fatal("actuation_failed published for a transient precondition")
	}
}

func TestAccountApprovalComesBeforeEntitlementApproval(t *testing.T) {
	accountDone := make(chan struct{})
	e := newEnv(t)
	// The entitlement's retries wait until the account's action is done.
	e.act.sleep = func(ctx context.Context, _ time.Duration) error {
		select {
		case <-accountDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	tenant, ent := e.customer(t, "acct-1", false)
	entAction := e.approveEnt(t, tenant, ent)
	accAction := action(t, governor.CustomerAccount, KindApproveAccount, tenant, "", "", e.clock.Now())
	var wg sync.WaitGroup
	var entOut Outcome
	var entErr error
	wg.Go(func() { entOut, entErr = e.act.Handle(context.Background(), entAction) })
	// Both arrive: the entitlement's first (and is refused by the API),
	// the account's next.
	for len(e.s.CallsMatching(ent+":approve")) == 0 {
		time.Sleep(time.Millisecond)
	}
	mustHandle(t, e, accAction, OutcomeDone)
	close(accountDone)
	wg.Wait()
	if entErr != nil || entOut != OutcomeDone {
		t.Fatalf("entitlement approval: %s, %v", entOut, entErr)
	}
	var order []string
	for _, c := range e.s.Calls() {
		if strings.HasSuffix(c.Path, ":approve") && c.Status == 200 {
			order = append(order, c.Path[strings.LastIndexByte(c.Path, '/')+1:])
		}
	}
	if len(order) != 2 || order[0] != "acct-1:approve" || order[1] != ent+":approve" {
		t.Fatalf("successful approvals in order %v, want the account's then the entitlement's", order)
	}
}

func TestProcurement503ThenSuccess(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	e.s.FailNext(ent+":approve", 503, 2)
	mustHandle(t, e, e.approveEnt(t, tenant, ent), OutcomeDone)
	var got []int
	for _, c := range e.s.CallsMatching(ent + ":approve") {
		got = append(got, c.Status)
	}
	if len(got) != 3 || got[0] != 503 || got[1] != 503 || got[2] != 200 {
		t.Fatalf("approve statuses %v, want 503 503 200", got)
	}
}

func TestProcurementGet503IsRetriedAndLosesNothing(t *testing.T) {
	e := newEnv(t, func(o *ActuatorOptions) { o.Backoff = []time.Duration{} })
	tenant, ent := e.customer(t, "acct-1", true)
	e.s.FailNext("GET /v1/providers/"+provider+"/entitlements/"+ent, 503, 1)
	a := e.approveEnt(t, tenant, ent)
	if st := e.postAction(t, a); st != http.StatusServiceUnavailable {
		t.Fatalf("push with Procurement down: %d, want 503", st)
	}
	if st := e.postAction(t, a); st != http.StatusNoContent {
		t.Fatalf("redelivery: %d, want 204", st)
	}
	if got, _ := e.s.Entitlement(ent); got.State != StateActive {
		t.Fatalf("state %s", got.State)
	}
}

// decodeFailure decodes the one actuation_failed published.
func decodeFailure(t *testing.T, e *env, d governor.Domain) (governor.Event, governor.ActuationFailure) {
	t.Helper()
	msgs := e.pub.On(topics.Internal(d))
	if len(msgs) != 1 {
		t.Fatalf("%d messages on %s, want 1", len(msgs), topics.Internal(d))
	}
	ev, err := event.Decode(event.Message{Data: msgs[0].Data, Attributes: msgs[0].Attributes})
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].OrderingKey != ev.Tenant {
		t.Errorf("ordering key %q, want the tenant", msgs[0].OrderingKey)
	}
	var f governor.ActuationFailure
	if err := json.Unmarshal(ev.Data, &f); err != nil {
		t.Fatal(err)
	}
	return ev, f
}

func TestProcurementPermanentlyRefusingIsReported(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	e.s.FailNext(ent+":approve", 403, 0)
	a := e.approveEnt(t, tenant, ent)
	if st := e.postAction(t, a); st != http.StatusNoContent {
		t.Fatalf("push: %d, want 204 (reported, acknowledged)", st)
	}
	ev, f := decodeFailure(t, e, governor.Entitlement)
	if ev.ID != FailureID(a.ID) || ev.Source != Source || ev.Type != "autonomics.entitlement.actuation_failed" ||
		ev.Tenant != tenant || ev.Subject != ent || ev.CausationID != a.CausationID || ev.CorrelationID != a.CorrelationID {
		t.Errorf("event %+v", ev)
	}
	if f.ActionID != a.ID || f.Kind != KindApproveEntitlement || f.Attempts != 1 || !strings.Contains(f.Reason, "HTTP 403") {
		t.Errorf("failure %+v", f)
	}
	if sender, err := engine.SenderOf(true, ev); err != nil || sender != governor.SenderActuator {
		t.Errorf("sender %s, %v", sender, err)
	}
	dl := e.pub.On(topics.DeadLetter())
	if len(dl) != 1 || !bytes.Equal(dl[0].Data, a.Raw) || !strings.Contains(dl[0].Attributes[deadletter.AttrReason], "HTTP 403") ||
		dl[0].Attributes[deadletter.AttrOriginalID] != a.MessageID || dl[0].Attributes["ce-id"] != a.ID {
		t.Errorf("dead letter %+v", dl)
	}
	if n := len(e.s.CallsMatching(ent + ":approve")); n != 1 {
		t.Errorf("%d approve calls for a permanent refusal, want 1", n)
	}
}

func TestTransientFailurePastGiveUpAfterFailsForGood(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	e.s.FailNext(ent+":approve", 503, 0)
	a := action(t, governor.Entitlement, KindApproveEntitlement, tenant, ent, "", e.clock.Now())
	if out, err := e.handle(t, a); out != OutcomeRetried || err == nil {
		t.Fatalf("young action: %s, %v; want retried", out, err)
	}
	e.clock.Advance(DefaultGiveUpAfter + time.Minute)
	mustHandle(t, e, a, OutcomeFailed)
	_, f := decodeFailure(t, e, governor.Entitlement)
	if !strings.Contains(f.Reason, "gave up after 1h0m0s") || f.Attempts != 4 {
		t.Errorf("failure %+v", f)
	}
}

func TestPublishFailureLeavesTheFailureToRedelivery(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	e.s.FailNext(ent+":approve", 403, 0)
	a := e.approveEnt(t, tenant, ent)
	e.pub.Fail(true)
	if st := e.postAction(t, a); st != http.StatusServiceUnavailable {
		t.Fatalf("push with Pub/Sub down: %d, want 503", st)
	}
	e.pub.Fail(false)
	if st := e.postAction(t, a); st != http.StatusNoContent {
		t.Fatalf("redelivery: %d", st)
	}
	decodeFailure(t, e, governor.Entitlement)
}

func TestDirectSoldTenantIsSkipped(t *testing.T) {
	e := newEnv(t)
	_, ent := e.customer(t, "acct-1", true)
	a := e.approveEnt(t, "direct-tenant", ent)
	if st := e.postAction(t, a); st != http.StatusNoContent {
		t.Fatalf("push: %d", st)
	}
	mustHandle(t, e, a, OutcomeSkipped)
	if n := len(e.s.Calls()); n != 1 { // the account approval of customer()
		t.Fatalf("%d Procurement calls for a direct-sold tenant", n-1)
	}
}

func TestAccountsUnavailableIsRetried(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	e.accounts.err = fault.Errorf(fault.Unavailable, "fake", "firestore down")
	a := e.approveEnt(t, tenant, ent)
	if st := e.postAction(t, a); st != http.StatusServiceUnavailable {
		t.Fatalf("push: %d, want 503", st)
	}
	e.accounts.err = nil
	if st := e.postAction(t, a); st != http.StatusNoContent {
		t.Fatalf("redelivery: %d", st)
	}
}

func TestEntitlementOfAnotherAccountIsRefused(t *testing.T) {
	e := newEnv(t)
	tenant, _ := e.customer(t, "acct-1", true)
	_, other := e.customer(t, "acct-2", true)
	mustHandle(t, e, e.approveEnt(t, tenant, other), OutcomeFailed)
	if n := len(e.s.CallsMatching(other + ":approve")); n != 0 {
		t.Fatalf("%d approve calls on another account's entitlement", n)
	}
	_, f := decodeFailure(t, e, governor.Entitlement)
	if !strings.Contains(f.Reason, "belongs to account") {
		t.Errorf("reason %q", f.Reason)
	}
}

func TestInvalidActionIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	good := webhooktest.ActionSpec{ID: "x1", Domain: governor.Entitlement, Kind: KindApproveEntitlement, Tenant: "t1", Subject: "e1"}.Message()
	forged := event.Message{Data: good.Data, Attributes: map[string]string{}, ID: "m-forged"}
	for k, v := range good.Attributes {
		forged.Attributes[k] = v
	}
	forged.Attributes["ce-source"] = "someone/else"
	wrongKind := webhooktest.ActionSpec{ID: "x2", Domain: governor.Billing, Kind: KindApproveEntitlement, Tenant: "t1"}.Message()
	for name, body := range map[string][]byte{
		"not a push":      []byte(`{"hello":`),
		"forged source":   event.PushBody(forged.Data, forged.Attributes, forged.ID),
		"kind not of its": event.PushBody(wrongKind.Data, wrongKind.Attributes, wrongKind.ID),
	} {
		if st := e.post(t, body); st != http.StatusNoContent {
			t.Errorf("%s: %d, want 204", name, st)
		}
	}
	dl := e.pub.On(topics.DeadLetter())
	if len(dl) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dl))
	}
	for _, m := range dl {
		if m.Attributes[deadletter.AttrReason] == "" || m.Attributes[deadletter.AttrCode] != string(fault.Invalid) {
			t.Errorf("dead letter attributes %v", m.Attributes)
		}
	}
	if n := len(e.s.Calls()); n != 0 {
		t.Fatalf("%d Procurement calls for invalid actions", n)
	}
}

func TestInvalidActionDataFailsForGood(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	for _, data := range []string{`{"plan":7}`, `{}`, `{"plan":"../x"}`} {
		mustHandle(t, e, action(t, governor.Entitlement, KindApprovePlanChange, tenant, ent, data, e.clock.Now()), OutcomeFailed)
	}
	if n := len(e.pub.On(topics.DeadLetter())); n != 3 {
		t.Fatalf("%d dead letters, want 3", n)
	}
}

// TestOversizePushIsDeadLetteredAndAcknowledged pushes a body over the
// cap: its head is dead-lettered with the reason and it is acknowledged,
// since Pub/Sub would redeliver any other answer for ever; no call is
// made.
func TestOversizePushIsDeadLetteredAndAcknowledged(t *testing.T) {
	e := newEnv(t)
	body := append([]byte(`{"message":{"data":"`), bytes.Repeat([]byte("A"), MaxPushBody)...)
	body = append(body, `"}}`...)
	if st := e.post(t, body); st != http.StatusNoContent {
		t.Fatalf("oversize push: %d, want 204 once dead-lettered", st)
	}
	dl := e.pub.On(topics.DeadLetter())
	if len(dl) != 1 || !bytes.Equal(dl[0].Data, body[:marketplace.MaxDeadLetterBody]) ||
		!strings.Contains(dl[0].Attributes[deadletter.AttrReason], "exceeds") ||
		dl[0].Attributes[marketplace.AttrTruncated] != strconv.Itoa(marketplace.MaxDeadLetterBody) {
		t.Fatalf("dead letters %d; want one with the body's head, the reason and %s", len(dl), marketplace.AttrTruncated)
	}
	if n := len(e.s.Calls()) + len(e.pub.On(topics.Internal(governor.Entitlement))); n != 0 {
		t.Fatalf("oversize push did something (%d)", n)
	}
}

// TestAccountsPermanentErrorFailsForGood makes the tenant's link
// unreadable for good: actuation_failed and a dead letter, not 503 for
// ever.
func TestAccountsPermanentErrorFailsForGood(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	e.accounts.err = fault.Errorf(fault.Invalid, "fake", "link document is corrupt")
	a := e.approveEnt(t, tenant, ent)
	if st := e.postAction(t, a); st != http.StatusNoContent {
		t.Fatalf("push: %d, want 204 (failed for good, reported)", st)
	}
	if _, f := decodeFailure(t, e, governor.Entitlement); !strings.Contains(f.Reason, "corrupt") || f.ActionID != a.ID {
		t.Errorf("failure %+v", f)
	}
	if n := len(e.pub.On(topics.DeadLetter())); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

// TestAccountsUnavailablePastGiveUpAfterFailsForGood keeps the link
// store down past GiveUpAfter: the action fails for good.
func TestAccountsUnavailablePastGiveUpAfterFailsForGood(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	e.accounts.err = fault.Errorf(fault.Unavailable, "fake", "firestore down")
	a := e.approveEnt(t, tenant, ent)
	if out, err := e.handle(t, a); out != OutcomeRetried || err == nil {
		t.Fatalf("young action: %s, %v; want retried", out, err)
	}
	e.clock.Advance(DefaultGiveUpAfter + time.Minute)
	mustHandle(t, e, a, OutcomeFailed)
	if _, f := decodeFailure(t, e, governor.Entitlement); !strings.Contains(f.Reason, "gave up after") || !strings.Contains(f.Reason, "firestore down") {
		t.Errorf("failure %+v", f)
	}
}

// pushAt is a push body of an action at a delivery attempt.
func pushAt(t *testing.T, a webhook.Action, delivery int) []byte {
	t.Helper()
	var body map[string]json.RawMessage
	if err := json.Unmarshal(event.PushBody(a.Raw, a.Attributes, a.MessageID), &body); err != nil {
		t.Fatal(err)
	}
	body["deliveryAttempt"] = json.RawMessage(strconv.Itoa(delivery))
	out, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLastDeliveryOfATransientFailureFailsForGood fails for now on every
// delivery: before MaxDeliveries it is redelivered; at the last one it
// fails for good, so that Pub/Sub's dead-lettering does not swallow it.
func TestLastDeliveryOfATransientFailureFailsForGood(t *testing.T) {
	e := newEnv(t, func(o *ActuatorOptions) { o.MaxDeliveries = 5; o.Backoff = []time.Duration{} })
	tenant, ent := e.customer(t, "acct-1", true)
	e.s.FailNext(ent+":approve", 503, 0)
	a := e.approveEnt(t, tenant, ent)
	for _, d := range []int{0, 1, 4} {
		if st := e.post(t, pushAt(t, a, d)); st != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d: %d, want 503", d, st)
		}
	}
	if n := len(e.pub.On(topics.Internal(governor.Entitlement))) + len(e.pub.On(topics.DeadLetter())); n != 0 {
		t.Fatalf("%d messages before the last delivery", n)
	}
	if st := e.post(t, pushAt(t, a, 5)); st != http.StatusNoContent {
		t.Fatalf("last delivery: %d, want 204 (failed for good, reported)", st)
	}
	if _, f := decodeFailure(t, e, governor.Entitlement); !strings.Contains(f.Reason, "delivery 5 of at most 5") {
		t.Errorf("failure %+v", f)
	}
	if n := len(e.pub.On(topics.DeadLetter())); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

// TestLastDeliveryWithAccountsDownFailsForGood: the same for a link
// store that stays down.
func TestLastDeliveryWithAccountsDownFailsForGood(t *testing.T) {
	e := newEnv(t, func(o *ActuatorOptions) { o.MaxDeliveries = 3 })
	tenant, ent := e.customer(t, "acct-1", true)
	e.accounts.err = fault.Errorf(fault.Unavailable, "fake", "firestore down")
	a := e.approveEnt(t, tenant, ent)
	if st := e.post(t, pushAt(t, a, 2)); st != http.StatusServiceUnavailable {
		t.Fatalf("delivery 2: %d, want 503", st)
	}
	if st := e.post(t, pushAt(t, a, 3)); st != http.StatusNoContent {
		t.Fatalf("delivery 3: %d, want 204", st)
	}
	decodeFailure(t, e, governor.Entitlement)
}

func TestNegativeMaxDeliveriesIsRefused(t *testing.T) {
	_, err := NewActuator(ActuatorOptions{Client: &Client{}, Accounts: &fakeAccounts{}, Publisher: &webhooktest.Publisher{}, Topics: topics, Kinds: kinds, MaxDeliveries: -1})
	if fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("NewActuator with MaxDeliveries -1 = %v; want Invalid", err)
	}
}

func TestNonMarketplaceActionIsIgnored(t *testing.T) {
	e := newEnv(t)
	a := action(t, governor.MultiTenant, "tenant.provision", "t1", "", "", e.clock.Now())
	if st := e.postAction(t, a); st != http.StatusNoContent {
		t.Fatalf("push: %d", st)
	}
	mustHandle(t, e, a, OutcomeIgnored)
	if n := len(e.s.Calls()) + len(e.pub.On(topics.DeadLetter())); n != 0 {
		t.Fatalf("ignored action did something (%d)", n)
	}
}

func TestCallerOtherThanThePushIdentityIsForbidden(t *testing.T) {
	e := newEnv(t, func(o *ActuatorOptions) { o.Callers = []string{"push@example.iam.gserviceaccount.com"} })
	tenant, ent := e.customer(t, "acct-1", true)
	if st := e.postAction(t, e.approveEnt(t, tenant, ent)); st != http.StatusForbidden {
		t.Fatalf("anonymous push: %d, want 403", st)
	}
	if n := len(e.s.CallsMatching(ent + ":approve")); n != 0 {
		t.Fatal("forbidden push made a call")
	}
}

func TestPlanChangeActions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tenant, ent := e.customer(t, "acct-1", true)
	mustHandle(t, e, e.approveEnt(t, tenant, ent), OutcomeDone)
	if err := e.s.RequestPlanChange(ctx, ent, "pro"); err != nil {
		t.Fatal(err)
	}
	approve := action(t, governor.Entitlement, KindApprovePlanChange, tenant, ent, `{"plan":"pro"}`, e.clock.Now())
	mustHandle(t, e, approve, OutcomeDone)
	mustHandle(t, e, approve, OutcomeAlready) // pending plan change
	if err := e.s.EffectPlanChange(ctx, ent); err != nil {
		t.Fatal(err)
	}
	mustHandle(t, e, approve, OutcomeAlready) // in effect
	// A rejection of a change already approved is refused for good.
	mustHandle(t, e, action(t, governor.Entitlement, KindRejectPlanChange, tenant, ent, `{"plan":"pro","reason":"x"}`, e.clock.Now()), OutcomeFailed)

	if err := e.s.RequestPlanChange(ctx, ent, "basic"); err != nil {
		t.Fatal(err)
	}
	// Approving another plan than the pending one is refused for good.
	mustHandle(t, e, action(t, governor.Entitlement, KindApprovePlanChange, tenant, ent, `{"plan":"gold"}`, e.clock.Now()), OutcomeFailed)
	reject := action(t, governor.Entitlement, KindRejectPlanChange, tenant, ent, `{"plan":"basic","reason":"plan not in catalog"}`, e.clock.Now())
	mustHandle(t, e, reject, OutcomeDone)
	mustHandle(t, e, reject, OutcomeAlready)
	calls := e.s.CallsMatching(":rejectPlanChange")
	if len(calls) != 1 || !strings.Contains(string(calls[0].Body), "plan not in catalog") {
		t.Fatalf("rejectPlanChange calls %v", calls)
	}
	if got, _ := e.s.Entitlement(ent); got.State != StateActive || got.Plan != "pro" {
		t.Fatalf("entitlement %s on %s", got.State, got.Plan)
	}
}

func TestRejectActions(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	reject := action(t, governor.Entitlement, KindRejectEntitlement, tenant, ent, `{"reason":"region not served"}`, e.clock.Now())
	mustHandle(t, e, reject, OutcomeDone)
	mustHandle(t, e, reject, OutcomeAlready)
	// Approving an entitlement rejected (cancelled) fails for good.
	mustHandle(t, e, e.approveEnt(t, tenant, ent), OutcomeFailed)

	tenant2, _ := e.customer(t, "acct-2", false)
	rejectAcc := action(t, governor.CustomerAccount, KindRejectAccount, tenant2, "", `{"reason":"sanctioned"}`, e.clock.Now())
	mustHandle(t, e, rejectAcc, OutcomeDone)
	mustHandle(t, e, rejectAcc, OutcomeAlready)
	acc, _ := e.s.Account("acct-2")
	if acc.Approvals[0].State != "REJECTED" || acc.Approvals[0].Reason != "sanctioned" {
		t.Fatalf("approval %+v", acc.Approvals[0])
	}
}

func TestActionsAreCounted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	e := newEnv(t, func(o *ActuatorOptions) { o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)) })
	tenant, ent := e.customer(t, "acct-1", true)
	mustHandle(t, e, e.approveEnt(t, tenant, ent), OutcomeDone)
	mustHandle(t, e, e.approveEnt(t, tenant, ent), OutcomeAlready)
	mustHandle(t, e, e.approveEnt(t, "direct", ent), OutcomeSkipped)
	_, ent2 := e.customer(t, "acct-1", true)
	e.s.FailNext(ent2+":approve", 503, 0)
	if out, _ := e.handle(t, e.approveEnt(t, tenant, ent2)); out != OutcomeRetried {
		t.Fatalf("outcome %s", out)
	}
	e.s.ClearFaults()
	e.s.FailNext(ent2+":approve", 403, 0)
	mustHandle(t, e, e.approveEnt(t, tenant, ent2), OutcomeFailed)
	mustHandle(t, e, action(t, governor.MultiTenant, "tenant.provision", "t1", "", "", e.clock.Now()), OutcomeIgnored)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[[2]string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != MetricActions {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				get := func(k string) string { v, _ := dp.Attributes.Value(attribute.Key(k)); return v.AsString() }
				got[[2]string{get("kind"), get("outcome")}] += dp.Value
			}
		}
	}
	want := map[[2]string]int64{
		{KindApproveEntitlement, "done"}: 1, {KindApproveEntitlement, "already"}: 1, {KindApproveEntitlement, "skipped"}: 1,
		{KindApproveEntitlement, "retried"}: 1, {KindApproveEntitlement, "failed"}: 1,
	}
	if len(got) != len(want) {
		t.Errorf("counted %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s%v = %d, want %d", MetricActions, k, got[k], n)
		}
	}
}

func TestNewActuatorRefusesMissingOptions(t *testing.T) {
	if _, err := NewActuator(ActuatorOptions{}); fault.ErrorCode(err) != fault.Invalid {
		t.Fatalf("empty options: %v", err)
	}
	e := newEnv(t)
	if _, err := NewActuator(ActuatorOptions{Client: e.c, Accounts: e.accounts, Publisher: e.pub, Topics: topics}); err == nil {
		t.Fatal("no kinds accepted")
	}
}

func TestLocksAreReleased(t *testing.T) {
	e := newEnv(t)
	tenant, ent := e.customer(t, "acct-1", true)
	mustHandle(t, e, e.approveEnt(t, tenant, ent), OutcomeDone)
	e.act.locks.mu.Lock()
	n := len(e.act.locks.m)
	e.act.locks.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d lock entries left", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	unlock, err := e.act.locks.lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := e.act.locks.lock(ctx, "k"); err == nil {
		t.Fatal("lock taken twice")
	}
	unlock()
}

func TestEveryMarketplaceKindOfTheMachinesIsCarriedOut(t *testing.T) {
	all := webhook.KindsOf(machines.New(nil))
	n := 0
	for _, k := range all.All() {
		if strings.HasPrefix(k, KindPrefix) {
			n++
			if !slices.Contains(Kinds, k) {
				t.Errorf("the machines emit %s, which the actuator does not carry out", k)
			}
		}
	}
	if n == 0 {
		t.Fatal("the machines emit no marketplace action")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestEveryProcurementCallIsLogged(t *testing.T) {
	var buf syncBuffer
	e := newEnv(t, func(o *ActuatorOptions) { o.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	tenant, ent := e.customer(t, "acct-1", true)
	e.s.FailNext(ent+":approve", 503, 1)
	a := e.approveEnt(t, tenant, ent)
	mustHandle(t, e, a, OutcomeDone)
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.b.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		if m["msg"] == "procurement call" {
			lines = append(lines, m)
		}
	}
	// get, approve (503), get, approve (200): the customer's account
	// approval was not made by the actuator.
	var got []string
	for _, m := range lines {
		if m["action_id"] != a.ID || m["kind"] != KindApproveEntitlement || m["tenant"] != tenant || m["resource"] != "entitlements/"+ent {
			t.Errorf("log line %v", m)
		}
		got = append(got, m["method"].(string)+" "+strconv.Itoa(int(m["status"].(float64))))
	}
	want := "entitlements.get 200,entitlements.approve 503,entitlements.get 200,entitlements.approve 200"
	if strings.Join(got, ",") != want {
		t.Fatalf("calls logged %v, want %s", got, want)
	}
	if calls := e.s.CallsMatching(provider + "/entitlements/" + ent); len(calls) != len(lines) {
		t.Fatalf("%d calls made, %d logged", len(calls), len(lines))
	}
}

func TestHangingProcurementIsCutOffAndRetried(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang.Close)
	c, err := NewClient(context.Background(), provider, option.WithEndpoint(hang.URL), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *ActuatorOptions) {
		o.Client, o.AttemptTimeout, o.Backoff = c, 20*time.Millisecond, []time.Duration{}
	})
	e.accounts.link("acct-1")
	a := e.approveEnt(t, marketplace.DefaultTenant("acct-1"), "ent-1")
	out, err := e.handle(t, a)
	if out != OutcomeRetried || fault.ErrorCode(err) != fault.Unavailable {
		t.Fatalf("hanging Procurement: %s, %v; want retried, unavailable", out, err)
	}
}
