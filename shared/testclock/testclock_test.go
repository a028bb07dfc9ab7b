package testclock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

const project = "testclock-test"

// start is the real time of the tests: the engine and the test clock
// read the same fixed clock, so that due times are exact.
var start = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// feeder is a Publisher that delivers what it publishes to the governor
// topics straight to the engine, as the push subscriptions would, and
// records everything. It fails the next fail publications.
type feeder struct {
	names topic.Names
	eng   *engine.Engine

	mu   sync.Mutex
	msgs []store.Message
	fail int
	// down fails every publication.
	down bool
	// block, when set, is waited for by every publication.
	block chan struct{}
}

func (f *feeder) Publish(ctx context.Context, m store.Message) error {
	f.mu.Lock()
	block := f.block
	if f.down || f.fail > 0 {
		if f.fail > 0 {
			f.fail--
		}
		f.mu.Unlock()
		return errors.New("injected publish failure")
	}
	f.msgs = append(f.msgs, m)
	id := fmt.Sprintf("m%d", len(f.msgs))
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	d, ok := f.names.DomainOf(m.Topic)
	if !ok || f.eng == nil {
		return nil
	}
	return f.eng.HandleMessage(ctx, d, event.Message{
		ID: id, Data: m.Data, Attributes: m.Attributes,
		Subscription: topic.SubscriptionName(project, topic.Push(m.Topic)),
	})
}

// on returns the messages published to t.
func (f *feeder) on(t string) []store.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Message
	for _, m := range f.msgs {
		if m.Topic == t {
			out = append(out, m)
		}
	}
	return out
}

// stack is an engine over a memstore, fed by a feeder, and a test clock.
type stack struct {
	store *memstore.Store
	pub   *feeder
	eng   *engine.Engine
	clock *Clock
	names topic.Names
	// at is the real time of the engine and the test clock.
	at atomic.Int64
}

// now returns the stack's real time.
func (s *stack) now() time.Time { return time.Unix(0, s.at.Load()).UTC() }

type stackOptions struct {
	// production builds the engine without Options.TestClock, and
	// clockOff the test clock disabled, as in production.
	production bool
	clockOff   bool
	clock      Options
}

func newStack(t *testing.T, so stackOptions) *stack {
	t.Helper()
	s := &stack{store: memstore.New(), names: topic.Names{Prefix: "tc-"}}
	s.pub = &feeder{names: s.names}
	var subs []string
	for _, d := range governor.Domains {
		subs = append(subs, topic.SubscriptionName(project, topic.Push(s.names.Internal(d))))
	}
	s.at.Store(start.UnixNano())
	now := s.now
	eng, err := engine.New(engine.Options{
		Store: s.store, Publisher: s.pub, Machines: machines.New(nil), Topics: s.names,
		InternalSubscriptions: subs, Clock: now,
		Logger:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
		TestClock: !so.production,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.eng, s.pub.eng = eng, eng
	o := so.clock
	o.Enabled = !so.clockOff
	o.Store, o.Publisher, o.Topics, o.Now = s.store, s.pub, s.names, now
	if o.Wait.Every == 0 {
		o.Wait.Every = time.Millisecond
	}
	s.clock, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// send applies an event from outside.
func (s *stack) send(t *testing.T, tenant string, d governor.Domain, name governor.EventName, subject, data string) {
	t.Helper()
	ev := governor.Event{
		ID: fmt.Sprintf("%s-%s-%s-%s", tenant, d, name, subject), Source: "//test/producer",
		Type: governor.TypeOf(d, name), Domain: d, Name: name, Tenant: tenant, Subject: subject,
		Time: start, Data: json.RawMessage(data),
	}
	data2, attrs := event.Encode(ev)
	err := s.eng.HandleMessage(context.Background(), d, event.Message{ID: ev.ID, Data: data2, Attributes: attrs,
		Subscription: topic.SubscriptionName(project, topic.Push(s.names.Domain(d)))})
	if err != nil {
		t.Fatalf("send %s: %v", ev.Type, err)
	}
}

func (s *stack) instance(t *testing.T, k governor.Key) governor.Instance {
	t.Helper()
	insts, err := s.store.Instances(context.Background(), k.Tenant, k.Domain)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range insts {
		if in.Subject == k.Subject {
			return in
		}
	}
	t.Fatalf("%s does not exist", k)
	return governor.Instance{}
}

func sub(tenant, subject string) governor.Key {
	return governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: subject}
}

func TestAdvanceFiresDueTimersInDueOrder(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.send(t, "t1", governor.Subscription, "created", "sub-late", `{"plan":"gold","trial_days":3}`)
	s.send(t, "t1", governor.Subscription, "created", "sub-early", `{"plan":"gold","trial_days":1}`)
	s.send(t, "t1", governor.CustomerAccount, "requested", "", "")                                   // verification: 7 days
	s.send(t, "t2", governor.Subscription, "created", "sub-other", `{"plan":"gold","trial_days":1}`) // another tenant's
	fired, err := s.clock.Advance(context.Background(), "t1", start.Add(5*day))
	if err != nil {
		t.Fatalf("Advance = %v", err)
	}
	var got []string
	for _, f := range fired {
		got = append(got, fmt.Sprintf("%s/%s %s %s", f.Domain, f.Subject, f.Timer, f.Due.Format(time.RFC3339)))
		if f.Source != engine.TestClockSource || f.Outcome != string(governor.Accepted) || f.ReceiptHash == "" {
			t.Errorf("fired %s: receipt %q %s from %s; want an accepted receipt from %s", f.Timer, f.ReceiptHash, f.Outcome, f.Source, engine.TestClockSource)
		}
	}
	want := []string{
		"subscription/sub-early trial_end 2026-11-21T09:00:00Z",
		"subscription/sub-late trial_end 2026-11-23T09:00:00Z",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fired:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, subject := range []string{"sub-early", "sub-late"} {
		if st := s.instance(t, sub("t1", subject)).State; st != "active" {
			t.Errorf("%s = %s, want active", subject, st)
		}
	}
	if st := s.instance(t, sub("t2", "sub-other")).State; st != "trialing" {
		t.Errorf("the other tenant's subscription = %s, want trialing", st)
	}
	acct := s.instance(t, governor.Key{Tenant: "t1", Domain: governor.CustomerAccount, Subject: governor.DefaultSubject})
	if acct.State != "pending_verification" {
		t.Errorf("account = %s, want pending_verification (its timer falls due after the target)", acct.State)
	}
	// The receipts say they ran on a test clock.
	rs, err := s.store.ReceiptsByExecution(context.Background(), fired[0].TimerID)
	if err != nil || len(rs) != 1 || rs[0].EventSource != engine.TestClockSource || rs[0].Hash != fired[0].ReceiptHash {
		t.Errorf("receipts of %s = %+v, %v; want one with event_source %s", fired[0].TimerID, rs, err, engine.TestClockSource)
	}
	if now, err := s.clock.Now(context.Background(), "t1"); err != nil || !now.Equal(start.Add(5*day)) {
		t.Errorf("Now(t1) = %s, %v; want %s", now, err, start.Add(5*day))
	}
}

func TestTimersArmedOnTheWayFire(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.send(t, "t1", governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":1}`)
	// The trial ends on day 1, the first period on day 31, the second on
	// day 61; the third period ends after the target.
	fired, err := s.clock.Advance(context.Background(), "t1", start.Add(65*day))
	if err != nil {
		t.Fatalf("Advance = %v", err)
	}
	var got []string
	for _, f := range fired {
		got = append(got, f.Timer+" "+f.Due.Format(time.RFC3339)+" "+f.Outcome)
	}
	want := []string{
		"trial_end 2026-11-21T09:00:00Z accepted",
		"period_end 2026-12-21T09:00:00Z accepted",
		"period_end 2027-01-20T09:00:00Z accepted",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("fired:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The next period_end falls due 30 days after the last one on the
	// tenant's clock: advancing on to day 95 fires it, and only it.
	fired, err = s.clock.Advance(context.Background(), "t1", start.Add(95*day))
	if err != nil || len(fired) != 1 || !fired[0].Due.Equal(start.Add(91*day)) {
		t.Fatalf("second Advance = %+v, %v; want period_end due on day 91", fired, err)
	}
	// Each fired period_end closed a billing period.
	if n := len(s.pub.on(s.names.Internal(governor.Billing))); n != 3 {
		t.Errorf("billing cascades = %d, want 3 (one per period closed)", n)
	}
}

func TestAdvanceIsBounded(t *testing.T) {
	s := newStack(t, stackOptions{clock: Options{MaxTimers: 2}})
	s.send(t, "t1", governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":1}`)
	to := start.Add(65 * day)
	fired, err := s.clock.Advance(context.Background(), "t1", to)
	if len(fired) != 2 || !errors.Is(err, ErrMoreDue) || fault.ErrorCode(err) != fault.Conflict {
		t.Fatalf("Advance = %d fired, %v; want 2 and a conflict with ErrMoreDue", len(fired), err)
	}
	if !strings.Contains(err.Error(), "advance again") {
		t.Errorf("error %q does not say what to do", err)
	}
	// The clock stands at the last fired timer: advancing again to the
	// same time fires the rest.
	more, err := s.clock.Advance(context.Background(), "t1", to)
	if err != nil || len(more) != 1 || more[0].Timer != "period_end" || !more[0].Due.Equal(start.Add(61*day)) {
		t.Fatalf("Advance again = %+v, %v; want the period_end of day 61", more, err)
	}
}

func TestTestClocksAreRefusedInProduction(t *testing.T) {
	s := newStack(t, stackOptions{clockOff: true})
	s.send(t, "t1", governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":1}`)
	fired, err := s.clock.Advance(context.Background(), "t1", start.Add(5*day))
	if fault.ErrorCode(err) != fault.NotFound || len(fired) != 0 {
		t.Fatalf("Advance in production = %v, %v; want a not-found error", fired, err)
	}
	if _, err := s.clock.Now(context.Background(), "t1"); fault.ErrorCode(err) != fault.NotFound {
		t.Errorf("Now in production = %v, want a not-found error", err)
	}
	if s.clock.Enabled() {
		t.Errorf("Enabled() = true in production")
	}
	if n := len(s.pub.on(s.names.Internal(governor.Subscription))); n != 0 {
		t.Errorf("published %d timeouts in production", n)
	}
	if in := s.instance(t, sub("t1", "sub-1")); in.State != "trialing" || !in.Timers["trial_end"].Due.Equal(start.Add(day)) {
		t.Errorf("subscription = %s with %v, want trialing with its timer untouched", in.State, in.Timers)
	}
}

func TestTimeoutRefusedByAProductionEngineIsNotLost(t *testing.T) {
	// A test clock pointed at governors whose engine has test clocks off.
	s := newStack(t, stackOptions{production: true, clock: Options{Wait: Wait{Every: time.Millisecond, Timeout: 50 * time.Millisecond}}})
	s.send(t, "t1", governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":14}`)
	fired, err := s.clock.Advance(context.Background(), "t1", start.Add(15*day))
	if len(fired) != 0 || fault.ErrorCode(err) != fault.Unavailable || !strings.Contains(err.Error(), "AUTONOMICS_ENV") {
		t.Fatalf("Advance = %v, %v; want an unavailable error naming AUTONOMICS_ENV", fired, err)
	}
	dead := s.pub.on(s.names.DeadLetter())
	if len(dead) != 1 || !strings.Contains(dead[0].Attributes[deadletter.AttrReason], "may not use an internal topic") {
		t.Fatalf("dead letters = %v, want the refused timeout", dead)
	}
	// The timer was left to the tick, due within the hold.
	in := s.instance(t, sub("t1", "sub-1"))
	if in.State != "trialing" || !in.Timers["trial_end"].Due.Equal(start.Add(DefaultHold)) {
		t.Fatalf("subscription = %s with %v, want trialing with trial_end due at %s", in.State, in.Timers, start.Add(DefaultHold))
	}
	s.at.Store(start.Add(DefaultHold).UnixNano())
	if n, err := s.eng.Tick(context.Background(), 100); err != nil || n != 1 {
		t.Fatalf("Tick = %d, %v; want 1", n, err)
	}
	if st := s.instance(t, sub("t1", "sub-1")).State; st != "active" {
		t.Errorf("subscription after the tick = %s, want active", st)
	}
	// The clock did not move: advancing again is allowed.
	if now, _ := s.clock.Now(context.Background(), "t1"); now.After(start.Add(15 * day)) {
		t.Errorf("Now = %s, want no further than %s", now, start.Add(15*day))
	}
}

func TestPublish503ThenSuccess(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.send(t, "t1", governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":1}`)
	s.pub.mu.Lock()
	s.pub.fail = publishAttempts - 1
	s.pub.mu.Unlock()
	fired, err := s.clock.Advance(context.Background(), "t1", start.Add(2*day))
	if err != nil || len(fired) != 1 || fired[0].Outcome != string(governor.Accepted) {
		t.Fatalf("Advance = %+v, %v; want trial_end fired after the failed publications", fired, err)
	}
}

func TestPublishOutageFailsTheAdvanceAndLosesNothing(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.send(t, "t1", governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":14}`)
	s.pub.mu.Lock()
	s.pub.down = true
	s.pub.mu.Unlock()
	to := start.Add(15 * day)
	fired, err := s.clock.Advance(context.Background(), "t1", to)
	if len(fired) != 0 || !fault.IsRetryable(err) {
		t.Fatalf("Advance = %v, %v; want a retryable error", fired, err)
	}
	s.pub.mu.Lock()
	s.pub.down = false
	s.pub.mu.Unlock()
	// The same advance, once the broker is back, fires the timer.
	fired, err = s.clock.Advance(context.Background(), "t1", to)
	if err != nil || len(fired) != 1 {
		t.Fatalf("Advance again = %+v, %v; want trial_end fired", fired, err)
	}
}

func TestAdvanceRefusesBadTargets(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := context.Background()
	if _, err := s.clock.Advance(ctx, "t1", start.Add(day)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tenant string
		to     time.Time
		want   string
	}{
		{"not after the last advance", "t1", start.Add(day), "not after the last advance"},
		{"backwards", "t1", start, "not after the last advance"},
		{"zero", "t1", time.Time{}, "no time"},
		{"more than five years ahead", "t1", start.Add(day + DefaultMaxAhead + time.Second), "ahead of the clock"},
		{"tenant id with a slash", "t/1", start.Add(2 * day), "tenant id"},
		{"empty tenant", "", start.Add(2 * day), "tenant id"},
	}
	for _, tt := range tests {
		fired, err := s.clock.Advance(ctx, tt.tenant, tt.to)
		if fault.ErrorCode(err) != fault.Invalid || !strings.Contains(err.Error(), tt.want) || len(fired) != 0 {
			t.Errorf("%s: Advance(%q, %s) = %v, %v; want an invalid error containing %q", tt.name, tt.tenant, tt.to, fired, err, tt.want)
		}
	}
	// Five years ahead of the tenant's clock, which stands a day ahead.
	if _, err := s.clock.Advance(ctx, "t1", start.Add(day+DefaultMaxAhead)); err != nil {
		t.Errorf("Advance to the limit = %v", err)
	}
}

func TestConcurrentAdvanceOfOneTenantIsAConflict(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.send(t, "t1", governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":1}`)
	release := make(chan struct{})
	s.pub.mu.Lock()
	s.pub.block = release
	n := len(s.pub.msgs)
	s.pub.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := s.clock.Advance(context.Background(), "t1", start.Add(2*day))
		done <- err
	}()
	// Wait until the first advance is publishing.
	for {
		s.pub.mu.Lock()
		busy := len(s.pub.msgs) > n
		s.pub.mu.Unlock()
		if busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_, err := s.clock.Advance(context.Background(), "t1", start.Add(3*day))
	if fault.ErrorCode(err) != fault.Conflict {
		t.Errorf("concurrent Advance = %v, want a conflict", err)
	}
	// Another tenant is not held up.
	if _, err := s.clock.Advance(context.Background(), "t2", start.Add(3*day)); err != nil {
		t.Errorf("Advance of another tenant = %v", err)
	}
	s.pub.mu.Lock()
	s.pub.block = nil
	s.pub.mu.Unlock()
	close(release)
	if err := <-done; err != nil {
		t.Errorf("first Advance = %v", err)
	}
}

func TestTimeoutMessageMatchesTheTick(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.send(t, "t1", governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":1}`)
	tm := s.instance(t, sub("t1", "sub-1")).Timers["trial_end"]
	// The tick's message, recorded without delivery.
	rec := &feeder{names: s.names}
	now := start.Add(2 * day)
	tick, err := engine.New(engine.Options{Store: s.store, Publisher: rec, Machines: machines.New(nil), Topics: s.names,
		Clock: func() time.Time { return now }, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := tick.Tick(context.Background(), 10); err != nil || n != 1 {
		t.Fatalf("Tick = %d, %v", n, err)
	}
	want := rec.msgs[0]
	got := timeoutMessage(s.names, sub("t1", "sub-1"), tm, now)
	if got.Topic != want.Topic || got.OrderingKey != want.OrderingKey || string(got.Data) != string(want.Data) {
		t.Errorf("message %s %q %s, tick's %s %q %s", got.Topic, got.OrderingKey, got.Data, want.Topic, want.OrderingKey, want.Data)
	}
	if got.Attributes["ce-source"] != engine.TestClockSource || want.Attributes["ce-source"] != engine.TimerSource {
		t.Errorf("sources %q and %q", got.Attributes["ce-source"], want.Attributes["ce-source"])
	}
	delete(got.Attributes, "ce-source")
	delete(want.Attributes, "ce-source")
	if fmt.Sprint(got.Attributes) != fmt.Sprint(want.Attributes) {
		t.Errorf("attributes\n%v\ntick's\n%v", got.Attributes, want.Attributes)
	}
}

func TestMemoryIsBounded(t *testing.T) {
	m := NewMemory(2)
	ctx := context.Background()
	for i, tenant := range []string{"a", "b", "a", "c"} {
		if err := m.Save(ctx, tenant, State{Offset: time.Duration(i) * time.Hour, Timers: map[string]time.Duration{"x": 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if m.Len() != 2 {
		t.Fatalf("Len = %d, want 2", m.Len())
	}
	if s, _ := m.Load(ctx, "b"); s.Offset != 0 || s.Timers != nil {
		t.Errorf("b, saved least recently, = %+v; want dropped", s)
	}
	s, _ := m.Load(ctx, "a")
	if s.Offset != 2*time.Hour {
		t.Errorf("a = %+v, want its last save", s)
	}
	// What Load returns is a copy.
	s.Timers["y"] = 2
	if again, _ := m.Load(ctx, "a"); len(again.Timers) != 1 {
		t.Errorf("Load shares the stored timers: %v", again.Timers)
	}
}

func TestNewRefusesMissingDependencies(t *testing.T) {
	for _, o := range []Options{{}, {Store: memstore.New()}, {Store: memstore.New(), Publisher: &feeder{}, MaxTimers: -1}} {
		if _, err := New(o); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("New(%+v) = %v, want an invalid error", o, err)
		}
	}
}

func TestReceiptThatFiredTheTimerIsReported(t *testing.T) {
	tick := receipt.Receipt{EventSource: engine.TimerSource, Outcome: string(governor.Accepted)}
	ours := receipt.Receipt{EventSource: engine.TestClockSource, Outcome: string(governor.Rejected)}
	oursAccepted := receipt.Receipt{EventSource: engine.TestClockSource, Outcome: string(governor.Accepted)}
	// The tick raced the test clock and fired the timer: the test
	// clock's timeout found it no longer armed.
	if rank(&tick) <= rank(&ours) {
		t.Errorf("the tick's accepted receipt ranks below the test clock's rejected one")
	}
	if rank(&oursAccepted) <= rank(&tick) {
		t.Errorf("the test clock's accepted receipt ranks below the tick's")
	}
}
