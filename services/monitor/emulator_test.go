package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	fs "cloud.google.com/go/firestore"
	ps "cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/services/monitor/monitorenv"
	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/health"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/promtest"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/topic"
)

const emulatorProject = "demo-autonomics"

// cloud is a Firestore namespace and a topic prefix of the emulators,
// unique to one test, with pull subscriptions on the alerts topic and the
// multi_tenant internal topic.
type cloud struct {
	t         *testing.T
	fs        *fs.Client
	ps        *ps.Client
	pub       *pubsub.Publisher
	namespace string
	topics    topic.Names
	alertsSub string
	tenantSub string
	mu        sync.Mutex
	now       time.Time
	// prom is the metrics engine every instance shares.
	prom *promtest.Server
}

func emulators(t *testing.T) *cloud {
	t.Helper()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" || os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST must both be set (make emulators; export FIRESTORE_EMULATOR_HOST=127.0.0.1:8780 PUBSUB_EMULATOR_HOST=127.0.0.1:8781) to run the monitor's emulator tests")
	}
	ctx := t.Context()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := "t" + hex.EncodeToString(b[:])
	c := &cloud{t: t, namespace: id, topics: topic.Names{Prefix: id + "-"}, now: t0, prom: promtest.Start(t)}
	var err error
	if c.fs, err = fs.NewClient(ctx, emulatorProject); err != nil {
		t.Fatalf("firestore.NewClient = %v", err)
	}
	t.Cleanup(func() { c.fs.Close() })
	if c.ps, err = ps.NewClient(ctx, emulatorProject); err != nil {
		t.Fatalf("pubsub.NewClient = %v", err)
	}
	t.Cleanup(func() { c.ps.Close() })
	c.alertsSub, c.tenantSub = id+"-alerts-pull", id+"-tenant-pull"
	subs := []pubsub.Subscription{
		{Name: c.alertsSub, Topic: c.topics.Alerts(), Ordered: true},
		{Name: c.tenantSub, Topic: c.topics.Internal(governor.MultiTenant), Ordered: true},
	}
	if err := pubsub.Ensure(ctx, c.ps, emulatorProject, c.topics.All(), subs); err != nil {
		t.Fatalf("pubsub.Ensure = %v", err)
	}
	c.pub = pubsub.NewPublisher(c.ps, pubsub.PublisherOptions{DelayThreshold: time.Millisecond})
	t.Cleanup(c.pub.Close)
	return c
}

func (c *cloud) clock() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *cloud) set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t0.Add(d)
}

// instance starts a monitor instance over the shared Firestore state.
func (c *cloud) instance(holder string) *fixture {
	c.t.Helper()
	st, err := firestore.NewAlertStore(c.fs, firestore.AlertStoreOptions{Namespace: c.namespace})
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := testConfig(c.t, map[string]string{monitorenv.HolderID: holder, monitorenv.LeaseTTL: "90s", monitorenv.FairnessWindow: "1m",
		monitorenv.PrometheusURL: c.prom.URL, monitorenv.RemoteWriteURL: c.prom.WriteURL})
	eng, in, err := wireEngine(c.t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		c.t.Fatal(err)
	}
	svc, err := newService(deps{
		cfg: cfg, alerts: st, publisher: c.pub, topics: c.topics, clock: c.clock, engine: eng, intake: in,
		fsys: fstest.MapFS{}, log: slog.New(slog.DiscardHandler),
		checks: []health.Checker{health.Ping("firestore", st.Ping)},
	})
	if err != nil {
		c.t.Fatalf("newService = %v", err)
	}
	return &fixture{t: c.t, svc: svc, h: svc.Handler(), now: t0, prom: c.prom}
}

// received pulls sub until it has want messages, then for a short quiet
// period more, so that a duplicate would be seen; it returns them all.
func (c *cloud) received(sub string, want int) []*ps.Message {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []*ps.Message
	var quiet *time.Timer
	err := pubsub.Receive(ctx, c.ps, sub, func(_ context.Context, m *ps.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		if len(got) == want {
			quiet = time.AfterFunc(3*time.Second, cancel)
		}
	})
	if err != nil {
		c.t.Fatalf("Receive(%s) = %v", sub, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if quiet != nil {
		quiet.Stop()
	}
	return got
}

// evaluate runs POST /v1/evaluate on f and returns the report.
func evaluate(t *testing.T, f *fixture) alerting.Report {
	t.Helper()
	var rep alerting.Report
	if got := f.do("POST", "/v1/evaluate", "", &rep); got != http.StatusOK {
		t.Fatalf("POST /v1/evaluate = %d", got)
	}
	return rep
}

func post(t *testing.T, f *fixture, body string) {
	t.Helper()
	if got := f.do("POST", "/v1/metrics", body, nil); got != http.StatusAccepted {
		t.Fatalf("POST /v1/metrics %s = %d", body, got)
	}
}

// TestFailover: instance a fires an alert and dies; b takes over once the
// lease expires, resolves it, and a, back, stays out. Exactly one firing
// and one resolved notification reach the alerts topic.
func TestFailover(t *testing.T) {
	c := emulators(t)
	a, b := c.instance("instance-a"), c.instance("instance-b")
	if got := a.do("PUT", "/v1/policies/cpu-high", `{"metric":"cpu","comparison":"gt","threshold":0.8,"for":"1m","severity":"critical"}`, nil); got != http.StatusCreated {
		t.Fatalf("PUT policy = %d", got)
	}
	hot := `[{"name":"cpu","labels":{"tenant":"acme"},"value":0.93}]`
	cold := `[{"name":"cpu","labels":{"tenant":"acme"},"value":0.2}]`
	steps := []struct {
		at        time.Duration
		on        *fixture
		metrics   string
		evaluated bool
		state     alerting.State
	}{
		{0, a, hot, true, alerting.Pending},
		{time.Minute, a, hot, true, alerting.Firing},
		{90 * time.Second, b, hot, false, alerting.Firing}, // a holds the lease until 2m30s
		// a dies here.
		{2*time.Minute + 31*time.Second, b, hot, true, alerting.Firing},
		{3 * time.Minute, b, cold, true, alerting.Resolved},
		{3*time.Minute + 30*time.Second, a, cold, false, alerting.Resolved},
		{4 * time.Minute, b, cold, true, alerting.Resolved},
	}
	for i, s := range steps {
		c.set(s.at)
		post(t, a, s.metrics)
		post(t, b, s.metrics)
		rep := evaluate(t, s.on)
		if rep.Evaluated != s.evaluated {
			t.Errorf("step %d at %v on %s: evaluated %v (holder %s), want %v", i, s.at, s.on.svc.runner.Holder(), rep.Evaluated, rep.Holder, s.evaluated)
		}
		var list struct{ Alerts []alertView }
		s.on.do("GET", "/v1/alerts", "", &list)
		if len(list.Alerts) != 1 || list.Alerts[0].State != s.state {
			t.Errorf("step %d at %v: alerts %+v, want one %s", i, s.at, list.Alerts, s.state)
		}
	}
	got := c.received(c.alertsSub, 2)
	fp := alerting.Fingerprint("cpu-high", alerting.Labels{"tenant": "acme"})
	want := []struct{ typ, id string }{
		{alerting.TypeFiring, alerting.NotificationID(fp, "firing", t0.Add(time.Minute))},
		{alerting.TypeResolved, alerting.NotificationID(fp, "resolved", t0.Add(3*time.Minute))},
	}
	if len(got) != len(want) {
		t.Fatalf("alerts topic: %d messages, want exactly one firing and one resolved", len(got))
	}
	for i, w := range want {
		if got[i].Attributes["ce-type"] != w.typ || got[i].Attributes["ce-id"] != w.id {
			t.Errorf("message %d: %s %s, want %s %s", i, got[i].Attributes["ce-type"], got[i].Attributes["ce-id"], w.typ, w.id)
		}
	}
	if err := b.svc.close(t.Context()); err != nil {
		t.Errorf("release = %v", err)
	}
}

// TestRestartDuringPending: the instance that saw an alert go pending
// stops; a new one over the same state and engine keeps its active_at and
// fires it on time.
func TestRestartDuringPending(t *testing.T) {
	c := emulators(t)
	a := c.instance("instance-a")
	a.do("PUT", "/v1/policies/queue-deep", `{"metric":"queue_depth","comparison":"gte","threshold":100,"for":"5m","severity":"warning"}`, nil)
	deep := `[{"name":"queue_depth","labels":{"queue":"billing"},"value":150}]`
	post(t, a, deep)
	evaluate(t, a)
	c.set(2 * time.Minute)
	post(t, a, deep)
	evaluate(t, a)
	if err := a.svc.close(t.Context()); err != nil {
		t.Fatalf("close = %v", err)
	}
	b := c.instance("instance-b")
	c.set(3 * time.Minute)
	post(t, b, deep)
	if rep := evaluate(t, b); !rep.Evaluated || rep.Pending != 1 {
		t.Errorf("new instance at 3m: %+v, want it to evaluate one pending alert", rep)
	}
	c.set(5 * time.Minute)
	post(t, b, deep)
	if rep := evaluate(t, b); rep.Firing != 1 || rep.Notified != 1 {
		t.Errorf("new instance at 5m: %+v, want the alert firing and notified", rep)
	}
	var list struct{ Alerts []alertView }
	b.do("GET", "/v1/alerts?state=firing", "", &list)
	if len(list.Alerts) != 1 || list.Alerts[0].ActiveAt != rfc(t0) || list.Alerts[0].FiredAt != rfc(t0.Add(5*time.Minute)) {
		t.Errorf("firing alerts %+v, want active since %v, fired at %v", list.Alerts, t0, t0.Add(5*time.Minute))
	}
	if got := c.received(c.alertsSub, 1); len(got) != 1 || got[0].Attributes["ce-type"] != alerting.TypeFiring {
		t.Errorf("alerts topic: %d messages, want one firing", len(got))
	}
}

// TestNoisyNeighborOnTopic: the detector's event reaches the multi_tenant
// internal topic once, and its recovery once.
func TestNoisyNeighborOnTopic(t *testing.T) {
	c := emulators(t)
	a := c.instance("instance-a")
	usage := func(shares ...float64) string {
		body := "["
		for i, u := range shares {
			if i > 0 {
				body += ","
			}
			body += `{"name":"autonomics_tenant_usage","labels":{"tenant":"` + []string{"acme", "globex", "initech"}[i] +
				`","resource":"cpu"},"value":` + ftoa(u) + `}`
		}
		return body + "]"
	}
	at := time.Duration(0)
	for range 5 {
		c.set(at)
		post(t, a, usage(9, 1))
		at += 15 * time.Second
	}
	evaluate(t, a)
	for range 6 {
		c.set(at)
		post(t, a, usage(1, 1, 1))
		at += 15 * time.Second
	}
	evaluate(t, a)
	evaluate(t, a)
	got := c.received(c.tenantSub, 2)
	if len(got) != 2 || got[0].Attributes["ce-type"] != alerting.TypeNoisyNeighbor || got[1].Attributes["ce-type"] != alerting.TypeRecovered ||
		got[0].Attributes["ce-tenantid"] != "acme" || string(got[0].Data) != `{"share_bp":9000}` {
		for _, m := range got {
			t.Logf("received %v %s", m.Attributes, m.Data)
		}
		t.Errorf("multi_tenant internal topic: %d messages, want noisy_neighbor_detected {share_bp 9000} then recovered for acme", len(got))
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// TestMonitorStateUsesMonitorDatabase wires the service as main does, with
// the monitor's database apart from the governors' one: policies, the
// evaluation lease and alerts are written to the monitor's database only.
func TestMonitorStateUsesMonitorDatabase(t *testing.T) {
	c := emulators(t)
	ctx := t.Context()
	monDB := "monitor-" + c.namespace
	mon, err := fs.NewClientWithDatabase(ctx, emulatorProject, monDB)
	if err != nil {
		t.Fatalf("NewClientWithDatabase(%s) = %v", monDB, err)
	}
	t.Cleanup(func() { mon.Close() })
	cfg := testConfig(t, map[string]string{monitorenv.HolderID: "instance-a", monitorenv.Namespace: c.namespace, platform.EnvMonitorDatabase: monDB,
		monitorenv.PrometheusURL: c.prom.URL, monitorenv.RemoteWriteURL: c.prom.WriteURL})
	clients := &platform.Clients{
		Config: cfg.Platform, Logger: slog.New(slog.DiscardHandler),
		Firestore: c.fs, MonitorFirestore: mon, PubSub: c.ps,
		Store: firestore.New(c.fs, firestore.Options{}), Publisher: c.pub, Topics: c.topics,
	}
	d, err := wire(clients, cfg)
	if err != nil {
		t.Fatalf("wire = %v", err)
	}
	d.clock, d.fsys = c.clock, fstest.MapFS{}
	svc, err := newService(d)
	if err != nil {
		t.Fatalf("newService = %v", err)
	}
	f := &fixture{t: t, svc: svc, h: svc.Handler(), now: t0, prom: c.prom}
	if got := f.do("PUT", "/v1/policies/cpu-high", `{"metric":"cpu","comparison":"gt","threshold":0.8,"severity":"critical"}`, nil); got != http.StatusCreated {
		t.Fatalf("PUT policy = %d", got)
	}
	post(t, f, `[{"name":"cpu","labels":{"tenant":"acme"},"value":0.93}]`)
	if rep := evaluate(t, f); !rep.Evaluated || rep.Firing != 1 {
		t.Fatalf("evaluate = %+v, want one firing alert", rep)
	}
	fp := alerting.Fingerprint("cpu-high", alerting.Labels{"tenant": "acme"})
	for _, path := range []string{"policies/cpu-high", "leases/" + alerting.DefaultLeaseName, "alerts/" + fp} {
		doc := "monitors/" + c.namespace + "/" + path
		if _, err := mon.Doc(doc).Get(ctx); err != nil {
			t.Errorf("%s in the monitor's database: %v", doc, err)
		}
		if _, err := c.fs.Doc(doc).Get(ctx); status.Code(err) != codes.NotFound {
			t.Errorf("%s in the governors' database: %v, want not found", doc, err)
		}
	}
	var h struct{ Checks []health.Check }
	f.do("GET", "/v1/health", "", &h)
	healthy := map[string]bool{}
	for _, ch := range h.Checks {
		healthy[ch.Name] = ch.Status == health.Healthy
	}
	for _, name := range []string{"firestore", "pubsub", "outbox", "timers"} {
		if !healthy[name] {
			t.Errorf("health check %s missing or unhealthy in %+v", name, h.Checks)
		}
	}
}
