package marketplace_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/cloudcommerceprocurement/v1"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// Ids of the fixtures.
const (
	provider    = "acme-saas"
	entID       = "6a1c3f0e-8d2b-4f7a-9c55-1e2d3c4b5a60"
	accountID   = "E-7F3A-22C1-9B04-D5E6"
	accountName = "providers/" + provider + "/accounts/" + accountID
)

// tenant is the tenant the fixtures' account links to.
var tenant = marketplace.DefaultTenant(accountID)

// fakeProcurement is a ProcurementReader and EntitlementLister over maps,
// with injectable faults.
type fakeProcurement struct {
	mu           sync.Mutex
	entitlements map[string]*cloudcommerceprocurement.Entitlement
	accounts     map[string]*cloudcommerceprocurement.Account
	// fail, when set, answers a call (method, id or filter) with an error.
	fail     func(method, arg string) error
	gets     int
	pageSize int
}

func newFakeProcurement() *fakeProcurement {
	return &fakeProcurement{
		entitlements: map[string]*cloudcommerceprocurement.Entitlement{},
		accounts:     map[string]*cloudcommerceprocurement.Account{},
		pageSize:     2,
	}
}

// entitlement stores an entitlement of the fixtures' account.
func (f *fakeProcurement) entitlement(id, state, plan string) *cloudcommerceprocurement.Entitlement {
	e := &cloudcommerceprocurement.Entitlement{
		Name: "providers/" + provider + "/entitlements/" + id, Account: accountName, Provider: provider,
		Product: "analytics.endpoints.acme-saas.cloud.goog", Plan: plan, State: state,
		UpdateTime: "2026-03-01T10:07:00Z",
	}
	f.mu.Lock()
	f.entitlements[id] = e
	f.mu.Unlock()
	return e
}

func (f *fakeProcurement) setFail(fn func(method, arg string) error) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

func (f *fakeProcurement) check(method, arg string) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return fail(method, arg)
	}
	return nil
}

func (f *fakeProcurement) GetEntitlement(ctx context.Context, id string) (*cloudcommerceprocurement.Entitlement, error) {
	if err := f.check("GetEntitlement", id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	e, ok := f.entitlements[id]
	if !ok {
		return nil, fault.Errorf(fault.NotFound, "fake.GetEntitlement", "entitlement %s not found", id)
	}
	c := *e
	return &c, nil
}

func (f *fakeProcurement) GetAccount(ctx context.Context, id string) (*cloudcommerceprocurement.Account, error) {
	if err := f.check("GetAccount", id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.accounts[id]
	if !ok {
		return nil, fault.Errorf(fault.NotFound, "fake.GetAccount", "account %s not found", id)
	}
	c := *a
	return &c, nil
}

func (f *fakeProcurement) ListEntitlements(ctx context.Context, filter, pageToken string) ([]*cloudcommerceprocurement.Entitlement, string, error) {
	if err := f.check("ListEntitlements", filter); err != nil {
		return nil, "", err
	}
	state, ok := strings.CutPrefix(filter, "state=")
	if !ok {
		return nil, "", fault.Errorf(fault.Invalid, "fake.ListEntitlements", "filter %q", filter)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id, e := range f.entitlements {
		if e.State == state {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	start := 0
	if pageToken != "" {
		n, err := strconv.Atoi(pageToken)
		if err != nil || n < 0 || n > len(ids) {
			return nil, "", fault.Errorf(fault.Invalid, "fake.ListEntitlements", "page token %q", pageToken)
		}
		start = n
	}
	end := min(start+f.pageSize, len(ids))
	var out []*cloudcommerceprocurement.Entitlement
	for _, id := range ids[start:end] {
		c := *f.entitlements[id]
		out = append(out, &c)
	}
	next := ""
	if end < len(ids) {
		next = strconv.Itoa(end)
	}
	return out, next, nil
}

// unavailable is a Procurement 503 as the client reports it.
func unavailable(method, arg string) error {
	return fault.Errorf(fault.Unavailable, "fake."+method, "procurement answered 503")
}

// fixture returns the data of testdata/notifications/name.json.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "notifications", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// harness is an Adapter over fakes.
type harness struct {
	proc     *fakeProcurement
	accounts *marketplace.MemAccounts
	pub      *webhooktest.Publisher
	topics   topic.Names
	adapter  *marketplace.Adapter
	handler  http.Handler
}

func newHarness(t testing.TB, opts ...func(*marketplace.AdapterOptions)) *harness {
	t.Helper()
	h := &harness{proc: newFakeProcurement(), accounts: marketplace.NewMemAccounts(), pub: &webhooktest.Publisher{}, topics: topic.Names{Prefix: "t-"}}
	o := marketplace.AdapterOptions{
		Provider: provider, Procurement: h.proc, Accounts: h.accounts, Publisher: h.pub, Topics: h.topics,
		Logger: discardLogger(), Now: func() time.Time { return webhooktest.Epoch },
	}
	for _, f := range opts {
		f(&o)
	}
	a, err := marketplace.NewAdapter(o)
	if err != nil {
		t.Fatal(err)
	}
	h.adapter, h.handler = a, a.Handler()
	return h
}

// push delivers data as a push body and returns the status.
func (h *harness) push(t testing.TB, data []byte, messageID string) int {
	t.Helper()
	return h.pushBody(t, event.PushBody(data, nil, messageID))
}

func (h *harness) pushBody(t testing.TB, body []byte) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, marketplace.PushPath, strings.NewReader(string(body)))
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return rec.Code
}

// entitlementEvents decodes what was published to the entitlement topic.
func (h *harness) events(t testing.TB, d governor.Domain) []governor.Event {
	t.Helper()
	return decodeAll(t, h.pub.On(h.topics.Domain(d)))
}

func decodeAll(t testing.TB, msgs []store.Message) []governor.Event {
	t.Helper()
	var out []governor.Event
	for _, m := range msgs {
		ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
		if err != nil {
			t.Fatalf("published message does not decode: %v", err)
		}
		if m.OrderingKey != ev.Tenant {
			t.Errorf("ordering key %q, want the tenant %q", m.OrderingKey, ev.Tenant)
		}
		out = append(out, ev)
	}
	return out
}

func types(evs []governor.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func eventMessage(data string) event.Message { return event.Message{Data: []byte(data), ID: "m"} }
