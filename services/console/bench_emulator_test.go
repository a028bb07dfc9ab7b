package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/console/fsconsole"
	"github.com/autonomics/autonomics/shared/console/web"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// The emulator benchmark's data: benchTenants tenants holding
// benchReceipts receipts. Every benchHeavyEvery-th tenant is heavy: its
// eight governors (one per domain) hold benchHeavyReceipts receipts
// between them, interleaved in time. Every other tenant has one governor
// with one receipt, two for the first benchLightTwice of them, so that
// the totals are exact.
const (
	benchTenants       = 10000
	benchReceipts      = 100000
	benchHeavyEvery    = 100
	benchHeavyReceipts = 900
	benchLightTwice    = benchReceipts - (benchTenants/benchHeavyEvery)*benchHeavyReceipts - (benchTenants - benchTenants/benchHeavyEvery)
	// benchSamples is the least number of requests the percentiles of a
	// page are taken over.
	benchSamples = 200
	// benchWriters is the number of concurrent writers while populating.
	benchWriters = 24
	// EnvConsoleBench turns BenchmarkPagesOnEmulator on.
	envConsoleBench = "AUTONOMICS_CONSOLE_BENCH"
)

// BenchmarkPagesOnEmulator measures the server time of the console's
// pages on the Firestore emulator with 10,000 tenants and 100,000
// receipts, written through the Firestore store as the governors write
// them: the tenant page of a tenant with eight governors, a heavy
// tenant's timeline (newest first, default page size; its first page
// and its second to fifth pages by page token), and the tenant list (its
// first page and deep pages after a cursor). Each reports its p50 and
// p99 over at least 200 requests.
//
// Populating takes minutes, so the benchmark runs only when
// FIRESTORE_EMULATOR_HOST is set and AUTONOMICS_CONSOLE_BENCH=1. It uses
// a database of its own, cleared at the end.
func BenchmarkPagesOnEmulator(b *testing.B) {
	host := os.Getenv("FIRESTORE_EMULATOR_HOST")
	if host == "" || os.Getenv(envConsoleBench) != "1" {
		b.Skip("FIRESTORE_EMULATOR_HOST is not set or " + envConsoleBench + " is not 1: populating the emulator takes minutes")
	}
	project := os.Getenv("AUTONOMICS_PROJECT")
	if project == "" {
		project = "demo-autonomics"
	}
	ctx := context.Background()
	db := fmt.Sprintf("console-bench-%08x", rand.Uint32())
	fc, err := fs.NewClientWithDatabase(ctx, project, db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		fc.Close()
		clearEmulatorDatabase(b, host, project, db)
	})
	st := firestore.New(fc, firestore.Options{})

	start := time.Now()
	// The receipts lie in the past, the timers in the future.
	base := start.UTC().Add(-30 * 24 * time.Hour).Truncate(time.Second)
	if err := populate(ctx, st, base, start.Add(7*24*time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.Logf("populated database %s with %d tenants and %d receipts in %s", db, benchTenants, benchReceipts, time.Since(start).Round(time.Second))
	checkPopulation(b, fc, st)

	records, err := fsconsole.New(fc, fsconsole.Options{Namespace: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	c, err := console.New(console.Options{
		Store: st, Records: records, Publisher: benchPublisher{}, Topics: topic.Names{},
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	h, err := newHandler(c, config{})
	if err != nil {
		b.Fatal(err)
	}

	// The pages and the console show the same default page size.
	pageSize := min(web.DefaultPageSize, c.Limits().PageSize)
	heavy := make([]string, 0, benchTenants/benchHeavyEvery)
	for i := 0; i < benchTenants; i += benchHeavyEvery {
		heavy = append(heavy, benchTenantID(i))
	}
	// The page tokens of the second to fifth timeline pages of some
	// heavy tenants, as the pages' "older" links carry them.
	var deep []string
	for _, t := range heavy[:min(20, len(heavy))] {
		tok := ""
		for range 4 {
			p, err := c.Timeline(ctx, console.TimelineQuery{Tenant: t, PageToken: tok, Newest: true})
			if err != nil {
				b.Fatal(err)
			}
			if len(p.Receipts) != pageSize || p.NextPageToken == "" {
				b.Fatalf("timeline of %s: %d receipts, next %q; want a full page and a next one", t, len(p.Receipts), p.NextPageToken)
			}
			tok = p.NextPageToken
			deep = append(deep, "/tenants/"+t+"/timeline?page_token="+url.QueryEscape(tok))
		}
	}

	b.Run("tenant", func(b *testing.B) {
		servePages(b, h, func(i int) string { return "/tenants/" + heavy[i%len(heavy)] }, "api_calls", len(governor.Domains))
	})
	b.Run("timeline", func(b *testing.B) {
		servePages(b, h, func(i int) string { return "/tenants/" + heavy[i%len(heavy)] + "/timeline" }, `class="receipt"`, pageSize)
	})
	b.Run("timeline-pages2to5", func(b *testing.B) {
		servePages(b, h, func(i int) string { return deep[i%len(deep)] }, `class="receipt"`, pageSize)
	})
	b.Run("tenants", func(b *testing.B) {
		servePages(b, h, func(int) string { return "/" }, `/timeline">timeline</a>`, pageSize)
	})
	b.Run("tenants-after", func(b *testing.B) {
		servePages(b, h, func(i int) string {
			return "/?after=" + benchTenantID(benchTenants/2+(i*37)%(benchTenants/2-100))
		}, `/timeline">timeline</a>`, pageSize)
	})
}

// servePages serves path(i) sequentially, timing each request on the
// server side, b.N times and at least benchSamples times (the requests
// past b.N are out of the benchmark's timer), and reports the p50 and the
// p99 of those times. Every response must be 200 and hold want at least
// n times: the page shows what it should.
func servePages(b *testing.B, h http.Handler, path func(i int) string, want string, n int) {
	b.Helper()
	lat := make([]time.Duration, 0, max(b.N, benchSamples))
	serve := func(i int) {
		r := httptest.NewRequest(http.MethodGet, path(i), nil)
		w := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(w, r)
		lat = append(lat, time.Since(t0))
		if w.Code != http.StatusOK {
			b.Fatalf("GET %s = %d: %.300s", r.URL, w.Code, w.Body.String())
		}
		if got := strings.Count(w.Body.String(), want); got < n {
			b.Fatalf("GET %s: the page shows %q %d times, want %d", r.URL, want, got, n)
		}
	}
	i := 0
	for b.Loop() {
		serve(i)
		i++
	}
	for ; i < benchSamples; i++ {
		serve(i)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(lat)), "requests")
}

// benchTenantID is the id of the i-th tenant.
func benchTenantID(i int) string { return fmt.Sprintf("bench-%05d", i) }

// populate writes every tenant's receipts through st, each decision in
// its own transaction as the engine commits it, benchWriters tenants at
// a time (a tenant's decisions one after the other, so that the first
// receipts of its instances do not contend for its index document).
// Heavy tenants go first, being the longest.
func populate(ctx context.Context, st *firestore.Store, base, due time.Time) error {
	ms := machines.New(nil)
	order := make([]int, 0, benchTenants)
	for i := 0; i < benchTenants; i += benchHeavyEvery {
		order = append(order, i)
	}
	for i := range benchTenants {
		if i%benchHeavyEvery != 0 {
			order = append(order, i)
		}
	}
	work := make(chan int)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		failed   atomic.Bool
		light    atomic.Int64
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range benchWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				var err error
				if i%benchHeavyEvery == 0 {
					err = writeHeavy(ctx, st, ms, i, base, due)
				} else {
					// The first benchLightTwice light tenants get two
					// receipts.
					n := 1
					if light.Add(1) <= benchLightTwice {
						n = 2
					}
					err = writeLight(ctx, st, ms, i, n, base)
				}
				if err != nil {
					once.Do(func() { firstErr = err; failed.Store(true); cancel() })
				}
			}
		}()
	}
	for _, i := range order {
		if failed.Load() {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return firstErr
}

// writeHeavy writes the benchHeavyReceipts receipts of heavy tenant i, a
// minute apart, round robin over its eight governors; every eight of them
// share a correlation id.
func writeHeavy(ctx context.Context, st *firestore.Store, ms map[governor.Domain]*governor.Machine, i int, base, due time.Time) error {
	tenant := benchTenantID(i)
	insts := make([]governor.Instance, len(governor.Domains))
	for d, dom := range governor.Domains {
		insts[d] = governor.Instance{Key: governor.Key{Tenant: tenant, Domain: dom, Subject: "main"}, State: governor.StateNone}
	}
	at := base.Add(time.Duration(i) * time.Second)
	for j := range benchHeavyReceipts {
		d := j % len(insts)
		next := governor.Domains[(d+1)%len(governor.Domains)]
		corr := fmt.Sprintf("%s-c%04d", tenant, j/len(insts))
		var err error
		insts[d], err = decide(ctx, st, ms[insts[d].Domain], insts[d], corr, next, at.Add(time.Duration(j)*time.Minute), due)
		if err != nil {
			return err
		}
	}
	return nil
}

// writeLight writes n receipts of light tenant i on one governor.
func writeLight(ctx context.Context, st *firestore.Store, ms map[governor.Domain]*governor.Machine, i, n int, base time.Time) error {
	tenant := benchTenantID(i)
	dom := governor.Domains[i%len(governor.Domains)]
	inst := governor.Instance{Key: governor.Key{Tenant: tenant, Domain: dom, Subject: "main"}, State: governor.StateNone}
	at := base.Add(time.Duration(i) * 3 * time.Minute)
	for j := range n {
		var err error
		inst, err = decide(ctx, st, ms[dom], inst, tenant+"-c0", "", at.Add(time.Duration(j)*time.Hour), time.Time{})
		if err != nil {
			return err
		}
	}
	return nil
}

// decide commits the next decision of inst, in a transaction of st: a
// receipt of m's states and events chained to the instance's last one,
// the instance with its data and, when due is set, a timer armed on the
// first decision and kept after. A decision with a cascade target emits
// an event to it; every tenth is a rejection.
func decide(ctx context.Context, st *firestore.Store, m *governor.Machine, inst governor.Instance, corr string, cascade governor.Domain, at, due time.Time) (governor.Instance, error) {
	seq := inst.Version + 1
	states := slices.DeleteFunc(slices.Clone(m.States), m.IsTerminal)
	if len(states) == 0 {
		states = m.States
	}
	events := m.Events()
	name := events[int(seq)%len(events)]
	data, _ := json.Marshal(map[string]any{"seq": seq, "plan": "pro", "usage": map[string]int64{"api_calls": seq * 37, "seats": seq % 40}})
	ev := governor.Event{
		ID: fmt.Sprintf("evt-%s-%s-%d", inst.Tenant, inst.Domain, seq), Source: "autonomics/bench",
		Type: governor.TypeOf(inst.Domain, name), Domain: inst.Domain, Name: name,
		Tenant: inst.Tenant, Subject: inst.Subject, Time: at, Data: data, CorrelationID: corr,
	}
	dec := governor.Decision{Outcome: governor.Accepted, From: inst.State, To: states[int(seq)%len(states)], Data: data}
	if seq%10 == 0 && inst.State != governor.StateNone {
		dec = governor.Decision{Outcome: governor.Rejected, Reason: "guard: the plan's limit is reached", From: inst.State, To: inst.State, Data: inst.Data}
	} else if cascade != "" {
		dec.Emits = []governor.Emit{{Kind: governor.KindEvent, Type: governor.TypeOf(cascade, "bench_cascade"), Domain: cascade, Subject: inst.Subject}}
	}
	r := receipt.New(inst, ev, dec, at)
	next := governor.Instance{Key: inst.Key, State: dec.To, Version: r.Seq, LastHash: r.Hash, Data: dec.Data, Timers: inst.Timers, UpdatedAt: at}
	c := store.Changes{Instance: next, Receipt: r}
	if !due.IsZero() && seq == 1 && len(m.Timers) > 0 {
		names := make([]string, 0, len(m.Timers))
		for n := range m.Timers {
			names = append(names, n)
		}
		slices.Sort(names)
		t := governor.Timer{Name: names[0], ID: governor.TimerID(inst.Key, names[0], seq), Due: due.Add(time.Duration(len(inst.Tenant)) * time.Hour)}
		next.Timers = map[string]governor.Timer{t.Name: t}
		c.Instance.Timers = next.Timers
		c.ArmTimers = []store.TimerEntry{{Timer: t, Key: inst.Key}}
	}
	if err := st.RunTx(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Write(c) }); err != nil {
		return inst, fmt.Errorf("receipt %d of %s: %w", seq, inst.Key, err)
	}
	return next, nil
}

// checkPopulation fails b unless the store lists every tenant and the
// database holds every receipt.
func checkPopulation(b *testing.B, fc *fs.Client, st *firestore.Store) {
	b.Helper()
	ctx := context.Background()
	n, after := 0, ""
	for {
		ids, err := st.Tenants(ctx, store.TenantQuery{After: after, Limit: store.MaxLimit})
		if err != nil {
			b.Fatal(err)
		}
		n += len(ids)
		if len(ids) < store.MaxLimit {
			break
		}
		after = ids[len(ids)-1]
	}
	res, err := fc.CollectionGroup("receipts").NewAggregationQuery().WithCount("n").Get(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var receipts int64
	if v, ok := res["n"].(interface{ GetIntegerValue() int64 }); ok {
		receipts = v.GetIntegerValue()
	} else if v, ok := res["n"].(int64); ok {
		receipts = v
	}
	if n != benchTenants || receipts != benchReceipts {
		b.Fatalf("the store lists %d tenants and holds %d receipts, want %d and %d", n, receipts, benchTenants, benchReceipts)
	}
}

// clearEmulatorDatabase deletes every document of the emulator's
// database db, through the emulator's own endpoint.
func clearEmulatorDatabase(b *testing.B, host, project, db string) {
	u := fmt.Sprintf("http://%s/emulator/v1/projects/%s/databases/%s/documents", host, project, db)
	req, err := http.NewRequest(http.MethodDelete, u, nil)
	if err != nil {
		b.Log(err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Logf("clearing %s: %v", db, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Logf("clearing %s: %s", db, resp.Status)
	}
}

// benchPublisher publishes nothing: the pages measured publish nothing.
type benchPublisher struct{}

func (benchPublisher) Publish(context.Context, store.Message) error { return nil }
