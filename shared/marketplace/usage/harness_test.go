package usage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/option"
	servicecontrol "google.golang.org/api/servicecontrol/v1"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/marketplace/usage"
	"github.com/autonomics/autonomics/shared/marketplace/usage/scstandin"
	"github.com/autonomics/autonomics/shared/marketplace/usage/usagetest"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

const service = "example.gcpmarketplace.example.com"

// accounts is a fixed list of links.
type accounts struct{ links []marketplace.Link }

func (a *accounts) List(ctx context.Context, after string, limit int) ([]marketplace.Link, error) {
	var out []marketplace.Link
	for _, l := range a.links {
		if l.Account > after && len(out) < limit {
			out = append(out, l)
		}
	}
	return out, nil
}

// governors holds instances by tenant and domain.
type governors struct {
	mu   sync.Mutex
	byTD map[string][]governor.Instance
	fail error
	// entered and gate, when set, make Instances signal and then wait.
	entered, gate chan struct{}
}

func (g *governors) Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error) {
	g.mu.Lock()
	entered, gate := g.entered, g.gate
	g.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return nil, g.fail
	}
	return slices.Clone(g.byTD[tenant+"/"+string(domain)]), nil
}

// put sets the instance of (tenant, domain, subject).
func (g *governors) put(tenant string, domain governor.Domain, subject string, state governor.State, data string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := tenant + "/" + string(domain)
	in := governor.Instance{Key: governor.Key{Tenant: tenant, Domain: domain, Subject: subject}, State: state, Data: json.RawMessage(data)}
	list := g.byTD[k]
	for i := range list {
		if list[i].Subject == subject {
			list[i] = in
			return
		}
	}
	g.byTD[k] = append(list, in)
}

// harness is a reporter against a stand-in, with fakes around it.
type harness struct {
	t        testing.TB
	sc       *scstandin.StandIn
	clock    *webhooktest.Clock
	pub      *webhooktest.Publisher
	accounts *accounts
	gov      *governors
	store    *usagetest.Faulty
	r        *usage.Reporter
	opts     usage.Options
}

// start is the harness clock's start: half past noon.
var start = time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)

func newHarness(t testing.TB, tweak func(*usage.Options)) *harness {
	t.Helper()
	h := &harness{
		t: t, sc: scstandin.New(scstandin.Options{Services: []string{service}}), clock: webhooktest.NewClock(),
		pub: &webhooktest.Publisher{}, accounts: &accounts{}, gov: &governors{byTD: map[string][]governor.Instance{}},
		store: &usagetest.Faulty{WindowStore: usage.NewMemStore()},
	}
	h.clock.Set(start)
	srv := httptest.NewServer(h.sc.Handler())
	t.Cleanup(srv.Close)
	client, err := servicecontrol.NewService(context.Background(), option.WithEndpoint(srv.URL+"/"), option.WithoutAuthentication(), option.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	h.opts = usage.Options{
		Service: service, Client: client, Accounts: h.accounts, Governors: h.gov, Windows: h.store,
		Publisher: h.pub, Topics: topic.Names{}, Now: h.clock.Now, Backoff: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tweak != nil {
		tweak(&h.opts)
	}
	h.r, err = usage.New(h.opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// customer links an account and gives its tenant an active usage-priced
// entitlement and quota metrics at usage 0; it returns the tenant.
func (h *harness) customer(account, ent string, metrics ...string) string {
	tenant := marketplace.DefaultTenant(account)
	h.accounts.links = append(h.accounts.links, marketplace.Link{Account: account, Tenant: tenant, Source: marketplace.LinkedBySignup})
	slices.SortFunc(h.accounts.links, func(a, b marketplace.Link) int { return strings.Compare(a.Account, b.Account) })
	h.gov.put(tenant, governor.Entitlement, ent, "active", fmt.Sprintf(`{"plan":"metered","usage_reporting_id":"project_number:%s"}`, consumerNum(ent)))
	for _, m := range metrics {
		h.usage(tenant, m, 0)
	}
	return tenant
}

// consumerNum derives a consumer number from an entitlement id.
func consumerNum(ent string) string {
	n := 0
	for _, c := range ent {
		n = n*31 + int(c)
	}
	if n < 0 {
		n = -n
	}
	return fmt.Sprint(n)
}

func consumer(ent string) string { return "project_number:" + consumerNum(ent) }

// usage sets a tenant's cumulative usage of metric.
func (h *harness) usage(tenant, metric string, u int64) {
	h.gov.put(tenant, governor.QuotaSLA, metric, "within_limits", fmt.Sprintf(`{"limit":1000000,"warning_bp":8000,"usage":%d}`, u))
}

// run runs the reporter at time at.
func (h *harness) run(at time.Time) (usage.Report, error) {
	h.t.Helper()
	h.clock.Set(at)
	return h.r.Run(context.Background())
}

// mustRun runs the reporter and fails on an error.
func (h *harness) mustRun(at time.Time) usage.Report {
	h.t.Helper()
	rep, err := h.run(at)
	if err != nil {
		h.t.Fatalf("Run at %s: %v (report %+v)", at.Format(time.TimeOnly), err, rep)
	}
	return rep
}

// reported returns the operations the stand-in counted for ent and the
// Service Control metric name.
func (h *harness) reported(ent, metricName string) []scstandin.Operation {
	var out []scstandin.Operation
	for _, op := range h.sc.Reports() {
		if op.ConsumerID == consumer(ent) {
			if _, ok := op.Metrics[metricName]; ok {
				out = append(out, op)
			}
		}
	}
	return out
}

// events returns the events published to the entitlement internal topic.
func (h *harness) events() []governor.Event {
	var out []governor.Event
	for _, m := range h.pub.On(topic.Names{}.Internal(governor.Entitlement)) {
		ev, err := event.Decode(event.Message{Data: m.Data, Attributes: m.Attributes})
		if err != nil {
			h.t.Fatalf("published message does not decode: %v", err)
		}
		if m.OrderingKey != ev.Tenant {
			h.t.Errorf("ordering key %q, want the tenant %q", m.OrderingKey, ev.Tenant)
		}
		out = append(out, ev)
	}
	return out
}

// at returns 2026-03-01 at h:m UTC.
func at(hour, min int) time.Time { return time.Date(2026, 3, 1, hour, min, 0, 0, time.UTC) }
