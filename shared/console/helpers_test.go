package console_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

var epoch = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

// clock is a controlled clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeLedger serves a settable state.
type fakeLedger struct {
	mu sync.Mutex
	st ledger.State
}

func (l *fakeLedger) set(size int64, root byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st = ledger.State{Size: size, Checkpoint: fmt.Appendf(nil, "autonomics\n%d\nroot\n\n— sig\n", size), VerifierKey: "autonomics+key", UpdatedAt: epoch.Add(time.Duration(size) * time.Second)}
	l.st.Root[0] = root
}

func (l *fakeLedger) State(ctx context.Context) (ledger.State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.Checkpoint == nil {
		return ledger.State{}, fault.Errorf(fault.NotFound, "fake", "no checkpoint yet")
	}
	return l.st, nil
}

func (l *fakeLedger) InclusionProof(ctx context.Context, hash string, size int64) (ledger.InclusionProof, error) {
	return ledger.InclusionProof{ReceiptHash: hash, Index: 3, TreeSize: 7}, nil
}

// fakeClock records advances.
type fakeClock struct {
	tenant string
	to     time.Time
}

func (c *fakeClock) Advance(ctx context.Context, tenant string, to time.Time) ([]console.Fired, error) {
	c.tenant, c.to = tenant, to
	return []console.Fired{{Timer: "verification", Domain: governor.CustomerAccount, Subject: "default", Due: to.Add(-time.Hour), Receipt: "abc"}}, nil
}

// fixture is a console over a memory store driven by a real engine.
type fixture struct {
	t       *testing.T
	store   *memstore.Store
	engine  *engine.Engine
	pub     *webhooktest.Publisher
	records *console.MemoryRecords
	ledger  *fakeLedger
	clock   *clock
	console *console.Console
	h       http.Handler
}

var topics = topic.Names{Prefix: "t-"}

func newFixture(t *testing.T, mod func(*console.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, store: memstore.New(), pub: &webhooktest.Publisher{}, records: console.NewMemoryRecords(console.RecordLimits{}),
		ledger: &fakeLedger{}, clock: &clock{t: epoch}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := engine.New(engine.Options{Store: f.store, Publisher: f.pub, Machines: machines.New(nil), Topics: topics, Clock: f.clock.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	f.engine = eng
	o := console.Options{Store: f.store, Ledger: f.ledger, Records: f.records, Publisher: f.pub, Topics: topics, Now: f.clock.Now, Logger: quiet}
	if mod != nil {
		mod(&o)
	}
	c, err := console.New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.console, f.h = c, c.APIHandler()
	return f
}

// apply applies an event from outside and advances the clock a second.
func (f *fixture) apply(tenant string, d governor.Domain, name governor.EventName, subject, data string) string {
	f.t.Helper()
	id := fmt.Sprintf("ev-%s-%s-%d", tenant, name, f.clock.Now().UnixNano())
	ev := governor.Event{ID: id, Source: "//test", Type: governor.TypeOf(d, name), Domain: d, Name: name,
		Tenant: tenant, Subject: subject, Data: json.RawMessage(data)}
	if _, err := f.engine.Apply(context.Background(), ev); err != nil {
		f.t.Fatalf("Apply(%s): %v", ev.Type, err)
	}
	f.clock.Advance(time.Second)
	return id
}

// do serves one request and returns the status and body.
func (f *fixture) do(method, target, body string, hdr ...string) (int, string) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// decode decodes a JSON body.
func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

// bearer returns an Authorization header value naming email.
func bearer(email string) string {
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"email":%q}`, email))
	return "Bearer e30." + payload + ".sig"
}

var _ store.Store = (*memstore.Store)(nil)
