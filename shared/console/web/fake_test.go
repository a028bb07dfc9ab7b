package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/ledger/memledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// now is the fake's clock.
var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeData is an in-memory Data: tenants, instances, receipts (newest
// first per tenant), alerts, silences, dead letters and checkpoints.
type fakeData struct {
	mu        sync.Mutex
	tenants   []string
	insts     map[string][]governor.Instance
	receipts  map[string][]receipt.Receipt
	alerts    []Alert
	silences  []Silence
	letters   []DeadLetter
	replayed  map[string]string
	cps       []Checkpoint
	fail      error
	nextID    int
	createdBy []string
}

func newFakeData() *fakeData {
	return &fakeData{insts: map[string][]governor.Instance{}, receipts: map[string][]receipt.Receipt{}, replayed: map[string]string{}}
}

func (f *fakeData) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail
}

func (f *fakeData) addTenant(t string) {
	i, found := slices.BinarySearch(f.tenants, t)
	if !found {
		f.tenants = slices.Insert(f.tenants, i, t)
	}
}

func (f *fakeData) Tenants(_ context.Context, q TenantQuery) ([]string, string, error) {
	if err := f.err(); err != nil {
		return nil, "", err
	}
	start := q.After
	if q.Prefix > start {
		start = q.Prefix
	}
	i, found := slices.BinarySearch(f.tenants, start)
	if found && start == q.After {
		i++
	}
	var out []string
	for ; i < len(f.tenants) && len(out) < q.Limit; i++ {
		if !strings.HasPrefix(f.tenants[i], q.Prefix) {
			break
		}
		out = append(out, f.tenants[i])
	}
	next := ""
	if len(out) == q.Limit && i < len(f.tenants) && strings.HasPrefix(f.tenants[i], q.Prefix) {
		next = out[len(out)-1]
	}
	return out, next, nil
}

func (f *fakeData) Governors(_ context.Context, tenant string) ([]governor.Instance, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	if _, found := slices.BinarySearch(f.tenants, tenant); !found {
		return nil, fault.Errorf(fault.NotFound, "fake", "no tenant %q", tenant)
	}
	return f.insts[tenant], nil
}

func (f *fakeData) Timeline(_ context.Context, q TimelineQuery) ([]receipt.Receipt, string, error) {
	if err := f.err(); err != nil {
		return nil, "", err
	}
	off := 0
	if q.PageToken != "" {
		n, err := strconv.Atoi(q.PageToken)
		if err != nil || n < 0 {
			return nil, "", fault.Errorf(fault.Invalid, "fake", "bad page token")
		}
		off = n
	}
	var out []receipt.Receipt
	seen := 0
	next := ""
	for _, r := range f.receipts[q.Tenant] {
		if q.Domain != "" && r.Domain != string(q.Domain) {
			continue
		}
		if !q.Since.IsZero() && r.DecidedAt < q.Since.Format(receipt.TimeFormat) {
			continue
		}
		if !q.Until.IsZero() && r.DecidedAt >= q.Until.Format(receipt.TimeFormat) {
			continue
		}
		seen++
		if seen <= off {
			continue
		}
		if len(out) == q.Limit {
			next = strconv.Itoa(off + q.Limit)
			break
		}
		out = append(out, r)
	}
	return out, next, nil
}

func (f *fakeData) Cascade(_ context.Context, tenant, corr string, limit int) ([]receipt.Receipt, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	var out []receipt.Receipt
	rs := f.receipts[tenant]
	for i := len(rs) - 1; i >= 0 && len(out) < limit; i-- {
		if rs[i].CorrelationID == corr {
			out = append(out, rs[i])
		}
	}
	return out, nil
}

func (f *fakeData) Alerts(context.Context) ([]Alert, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.alerts), nil
}

func (f *fakeData) Silences(context.Context) ([]Silence, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.silences), nil
}

func (f *fakeData) CreateSilence(_ context.Context, s NewSilence, by string) (Silence, error) {
	if err := f.err(); err != nil {
		return Silence{}, err
	}
	if len(s.Comment) > 1024 {
		return Silence{}, fault.Errorf(fault.Invalid, "fake", "comment is longer than 1024 bytes")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	sl := Silence{ID: fmt.Sprintf("s-%d", f.nextID), Matchers: s.Matchers, StartsAt: now, EndsAt: s.EndsAt, Comment: s.Comment, CreatedAt: now, Active: true}
	f.silences = append(f.silences, sl)
	f.createdBy = append(f.createdBy, by)
	return sl, nil
}

func (f *fakeData) ExpireSilence(_ context.Context, id, _ string) error {
	if err := f.err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.silences {
		if f.silences[i].ID == id {
			f.silences[i].EndsAt, f.silences[i].Active = now, false
			return nil
		}
	}
	return fault.Errorf(fault.NotFound, "fake", "no silence %q", id)
}

func (f *fakeData) DeadLetters(_ context.Context, after string, limit int) ([]DeadLetter, string, error) {
	if err := f.err(); err != nil {
		return nil, "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := 0
	if after != "" {
		i = slices.IndexFunc(f.letters, func(d DeadLetter) bool { return d.ID == after })
		if i < 0 {
			return nil, "", fault.Errorf(fault.Invalid, "fake", "bad cursor")
		}
		i++
	}
	end := min(len(f.letters), i+limit)
	next := ""
	if end < len(f.letters) {
		next = f.letters[end-1].ID
	}
	return slices.Clone(f.letters[i:end]), next, nil
}

func (f *fakeData) ReplayDeadLetter(_ context.Context, id, _ string) (string, error) {
	if err := f.err(); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.letters {
		if d.ID == id {
			if !d.Replayable {
				return "", fault.Errorf(fault.Conflict, "fake", "%s", d.NotReplayable)
			}
			f.nextID++
			m := fmt.Sprintf("msg-%d", f.nextID)
			f.replayed[id] = m
			return m, nil
		}
	}
	return "", fault.Errorf(fault.NotFound, "fake", "no dead letter %q", id)
}

func (f *fakeData) Checkpoints(_ context.Context, limit int) ([]Checkpoint, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.cps[:min(limit, len(f.cps))], nil
}

// chainer makes real receipts: each decision is chained to its instance's
// previous one, and a cascade's event id is the action id of its cause.
type chainer struct {
	insts map[governor.Key]*governor.Instance
	order []governor.Key
	at    time.Time
	all   []receipt.Receipt
}

func newChainer(at time.Time) *chainer {
	return &chainer{insts: map[governor.Key]*governor.Instance{}, at: at}
}

// step is one decision.
type step struct {
	key               governor.Key
	id, source, event string
	corr, trace       string
	to                governor.State
	reject            string
	emits             []governor.Emit
	data              string
	arm               map[string]time.Duration
	gap               time.Duration
}

func (c *chainer) decide(s step) receipt.Receipt {
	in, ok := c.insts[s.key]
	if !ok {
		in = &governor.Instance{Key: s.key, State: governor.StateNone}
		c.insts[s.key] = in
		c.order = append(c.order, s.key)
	}
	if s.gap == 0 {
		s.gap = 3 * time.Second
	}
	c.at = c.at.Add(s.gap)
	ev := governor.Event{ID: s.id, Source: s.source, Type: governor.TypeOf(s.key.Domain, governor.EventName(s.event)), Domain: s.key.Domain,
		Name: governor.EventName(s.event), Tenant: s.key.Tenant, Subject: s.key.Subject, CorrelationID: s.corr, Data: json.RawMessage(s.data)}
	if s.trace != "" {
		ev.TraceParent = "00-" + s.trace + "-00f067aa0ba902b7-01"
	}
	d := governor.Decision{Outcome: governor.Accepted, From: in.State, To: s.to, Emits: s.emits}
	if s.reject != "" {
		d.Outcome, d.Reason, d.To = governor.Rejected, s.reject, in.State
	}
	r := receipt.New(*in, ev, d, c.at)
	if s.reject == "" {
		in.State = s.to
		if s.data != "" {
			in.Data = json.RawMessage(s.data)
		}
	}
	for name, dur := range s.arm {
		if in.Timers == nil {
			in.Timers = map[string]governor.Timer{}
		}
		in.Timers[name] = governor.Timer{Name: name, ID: "t-" + name, Due: c.at.Add(dur)}
	}
	in.Version, in.LastHash, in.UpdatedAt = r.Seq, r.Hash, c.at
	c.all = append(c.all, r)
	return r
}

// install puts the chainer's instances and receipts into f.
func (c *chainer) install(f *fakeData) {
	for _, k := range c.order {
		f.addTenant(k.Tenant)
		f.insts[k.Tenant] = append(f.insts[k.Tenant], *c.insts[k])
	}
	for t := range f.insts {
		slices.SortFunc(f.insts[t], func(a, b governor.Instance) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	}
	for i := len(c.all) - 1; i >= 0; i-- {
		r := c.all[i]
		f.receipts[r.TenantID] = append(f.receipts[r.TenantID], r)
	}
}

func ev(d governor.Domain, name string) governor.Emit {
	return governor.Emit{Kind: governor.KindEvent, Type: governor.TypeOf(d, governor.EventName(name)), Domain: d, Subject: governor.DefaultSubject}
}

func act(kind string, d governor.Domain) governor.Emit {
	return governor.Emit{Kind: governor.KindActuate, Type: kind, Domain: d, Subject: governor.DefaultSubject}
}

// story is the fixture tenant "acme": a customer account verified, a
// subscription on trial, an entitlement approved through Marketplace, and
// a failed payment that cascades from billing to subscription to
// entitlement. Its receipts are in the ledger of the returned fixture.
type fixture struct {
	data    *fakeData
	chain   *chainer
	log     *ledger.Log
	lstore  *memledger.Store
	failCor string // correlation id of the payment failure cascade
}

func key(d governor.Domain, subject string) governor.Key {
	return governor.Key{Tenant: "acme", Domain: d, Subject: subject}
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := newFakeData()
	// The payment failure happens about an hour before now.
	c := newChainer(now.Add(-(10*24 + 7) * time.Hour))
	acc := key(governor.CustomerAccount, "default")
	ent := key(governor.Entitlement, "ent-7d1f")
	sub := key(governor.Subscription, "default")
	bil := key(governor.Billing, "inv-1042")
	quo := key(governor.QuotaSLA, "default")
	c.decide(step{key: acc, id: "signup-acct-9-requested", source: "marketplace/acme-provider", event: "requested", to: "pending_verification", arm: map[string]time.Duration{"verification": 7 * 24 * time.Hour}})
	v := c.decide(step{key: acc, id: "signup-acct-9-verified", source: "marketplace/acme-provider", event: "verified", to: "active",
		emits: []governor.Emit{act("marketplace.approve_account", governor.CustomerAccount)}, trace: "4bf92f3577b34da6a3ce929d0e0e4736"})
	delete(c.insts[acc].Timers, "verification")
	_ = v
	e1 := c.decide(step{key: ent, id: "mp-evt-551", source: "marketplace/acme-provider", event: "creation_requested", to: "activation_requested",
		data: `{"plan":"pro-monthly","product":"autonomics-saas"}`, emits: []governor.Emit{act("marketplace.approve_entitlement", governor.Entitlement)}, arm: map[string]time.Duration{"approval": 48 * time.Hour}})
	_ = e1
	c.decide(step{key: ent, id: "mp-evt-552", source: "marketplace/acme-provider", event: "activated", to: "active", data: `{"plan":"pro-monthly","product":"autonomics-saas"}`})
	delete(c.insts[ent].Timers, "approval")
	c.decide(step{key: sub, id: "sub-created-1", source: "//billing.example.com", event: "created", to: "trialing", data: `{"plan":"pro-monthly","seats":12}`,
		arm: map[string]time.Duration{"trial_end": 14 * 24 * time.Hour}, gap: time.Hour})
	c.decide(step{key: quo, id: "usage-2026-11-19", source: "//meter.example.com", event: "usage_reported", to: "within_limits", data: `{"metric":"api_calls","used":81234,"limit":100000}`})
	c.decide(step{key: quo, id: "usage-2026-11-19b", source: "//meter.example.com", event: "usage_reported", to: "warning", data: `{"metric":"api_calls","used":91234,"limit":100000}`, gap: 5 * time.Hour})
	c.decide(step{key: bil, id: "inv-1042-open", source: "//billing.example.com", event: "opened", to: "open", data: `{"amount":4900,"currency":"USD"}`, gap: 6 * 24 * time.Hour})
	// The payment failure cascade.
	root := c.decide(step{key: bil, id: "inv-1042-failed", source: "//billing.example.com", event: "payment_failed", to: "dunning", trace: "0af7651916cd43dd8448eb211c80319c",
		arm: map[string]time.Duration{"retry": 48 * time.Hour}, emits: []governor.Emit{ev(governor.Subscription, "payment_failed"), act("webhook.notify", governor.Billing)}, gap: 4 * 24 * time.Hour})
	s2 := c.decide(step{key: sub, id: root.Actions[0].ID, source: "autonomics/governor/billing", event: "payment_failed", corr: root.CorrelationID, to: "past_due",
		trace: "0af7651916cd43dd8448eb211c80319c", arm: map[string]time.Duration{"grace": 7 * 24 * time.Hour}, emits: []governor.Emit{ev(governor.Entitlement, "suspend"), ev(governor.QuotaSLA, "throttle")}, gap: 200 * time.Millisecond})
	delete(c.insts[sub].Timers, "trial_end")
	c.decide(step{key: ent, id: s2.Actions[0].ID, source: "autonomics/governor/subscription", event: "suspend", corr: root.CorrelationID, to: "suspended",
		trace: "0af7651916cd43dd8448eb211c80319c", gap: 150 * time.Millisecond})
	c.decide(step{key: quo, id: s2.Actions[1].ID, source: "autonomics/governor/subscription", event: "throttle", corr: root.CorrelationID,
		reject: "no_transition", gap: 120 * time.Millisecond})
	c.install(f)

	f.alerts = []Alert{
		{Fingerprint: "a1", Policy: "receipts_stalled", Severity: "critical", State: "firing", Labels: map[string]string{"domain": "billing"}, Reason: "no receipt for 10m", ActiveAt: now.Add(-15 * time.Minute)},
		{Fingerprint: "a2", Policy: "quota_warning", Severity: "warning", State: "pending", Labels: map[string]string{"tenant": "acme"}, Reason: "api_calls at 91%", ActiveAt: now.Add(-3 * time.Minute)},
	}
	f.letters = []DeadLetter{
		{ID: "dl-3", ReceivedAt: now.Add(-2 * time.Minute), Reason: "data: unknown field \"seatz\"", Code: "invalid", Domain: "subscription", Type: "autonomics.subscription.created", Tenant: "acme",
			Attributes: map[string]string{"ce-id": "sub-2", "ce-source": "//billing.example.com", "ce-type": "autonomics.subscription.created", "ce-tenantid": "acme"}, Data: []byte(`{"plan":"pro-monthly","seatz":3}`), Replayable: true},
		{ID: "dl-2", ReceivedAt: now.Add(-20 * time.Minute), Reason: "cascade from an internal topic", Code: "invalid", Domain: "entitlement", Type: "autonomics.entitlement.suspend", Tenant: "acme",
			Attributes: map[string]string{"ce-id": "x", "ce-source": "autonomics/governor/subscription"}, Data: []byte(`{}`), NotReplayable: "it came from the internal topic autonomics-entitlement-internal"},
		{ID: "dl-1", ReceivedAt: now.Add(-3 * time.Hour), Reason: "tenant id \"ac me\" is not valid", Code: "invalid", Domain: "billing", Type: "autonomics.billing.opened", Tenant: "ac me",
			Attributes: map[string]string{"ce-id": "inv-9"}, Data: []byte(`{"amount":100}`), Replayable: true},
	}
	fx := &fixture{data: f, chain: c, failCor: root.CorrelationID}
	fx.integrate(tb)
	return fx
}

// StoredHashes makes the chainer the ledger's witness.
func (c *chainer) StoredHashes(_ context.Context, refs []ledger.ReceiptRef) (map[ledger.ReceiptRef]string, error) {
	out := map[ledger.ReceiptRef]string{}
	for _, r := range c.all {
		ref := ledger.RefOf(&r)
		if slices.Contains(refs, ref) {
			out[ref] = r.Hash
		}
	}
	return out, nil
}

// integrate puts every receipt of the fixture into a signed ledger.
func (fx *fixture) integrate(tb testing.TB) {
	tb.Helper()
	skey, vkey, err := ledger.GenerateKey("console.example/ledger")
	if err != nil {
		tb.Fatal(err)
	}
	signer, _, err := ledger.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	fx.lstore = memledger.New()
	fx.log = ledger.NewLog(fx.lstore)
	in, err := ledger.NewIntegrator(ledger.IntegratorOptions{Store: fx.lstore, Witness: fx.chain, Signer: signer, VerifierKey: vkey, Holder: "test", Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	var es []ledger.Entry
	for i, r := range fx.chain.all {
		e, err := ledger.NewEntry(r.JSON(), now.Add(time.Duration(i)*time.Microsecond))
		if err != nil {
			tb.Fatal(err)
		}
		es = append(es, e)
	}
	if _, err := fx.lstore.AddPending(ctx, es); err != nil {
		tb.Fatal(err)
	}
	p, err := in.Integrate(ctx)
	if err != nil || p.Integrated != len(es) {
		tb.Fatalf("Integrate = %+v, %v", p, err)
	}
	cp, err := ledger.CheckpointOf(p.Checkpoint)
	if err != nil {
		tb.Fatal(err)
	}
	fx.data.cps = []Checkpoint{{Size: cp.Size, Root: cp.Root.String(), Time: now}, {Size: cp.Size - 4, Root: "older-root", Time: now.Add(-time.Hour)}}
}

// tamper changes the stored copy of the receipt with hash h behind the
// ledger's back: its to_state differs, its hash field does not.
func (fx *fixture) tamper(h string) {
	for t, rs := range fx.data.receipts {
		for i := range rs {
			if rs[i].Hash == h {
				fx.data.receipts[t][i].ToState = "active"
			}
		}
	}
}

// apiHandler serves what verify.js reads from the JSON API: the
// checkpoint, its key and the inclusion proofs, as the query API does.
func (fx *fixture) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		st, err := fx.log.State(r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(st.Checkpoint)
	})
	mux.HandleFunc("GET /api/v1/checkpoint/key", func(w http.ResponseWriter, r *http.Request) {
		st, err := fx.log.State(r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, st.VerifierKey+"\n")
	})
	mux.HandleFunc("GET /api/v1/receipts/{hash}/proof", func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
		p, err := fx.log.InclusionProof(r.Context(), r.PathValue("hash"), size)
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(p)
	})
	return mux
}

// bulk adds n tenants and m receipts: the first heavy tenants take 90%
// of the receipts, spread over their eight domains; the others share the
// rest.
func bulk(f *fakeData, n, m, heavy int) {
	c := newChainer(now.Add(-400 * 24 * time.Hour))
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("tenant-%05d", i)
	}
	heavyReceipts := m * 9 / 10
	for i := range heavyReceipts {
		t := names[i%heavy]
		d := governor.Domains[(i/heavy)%len(governor.Domains)]
		c.decide(step{key: governor.Key{Tenant: t, Domain: d, Subject: "default"}, id: fmt.Sprint("e-", i), source: "//bench", event: "step", to: "active", gap: time.Second})
	}
	for i := range m - heavyReceipts {
		t := names[heavy+i%(n-heavy)]
		d := governor.Domains[i%len(governor.Domains)]
		c.decide(step{key: governor.Key{Tenant: t, Domain: d, Subject: "default"}, id: fmt.Sprint("l-", i), source: "//bench", event: "step", to: "active", gap: time.Second})
	}
	c.install(f)
	for _, t := range names {
		f.addTenant(t)
	}
	sort.Strings(f.tenants)
}
