package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	ps "cloud.google.com/go/pubsub/v2"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// emulatorProject isolates this package's data on the shared emulators: the
// timers and outbox collections are global, and other packages tick and
// sweep them.
const emulatorProject = "engine-test"

// recorder is a Publisher that records what it publishes, forwards to a
// real publisher when one is set, and fails on demand.
type recorder struct {
	inner Publisher
	mu    sync.Mutex
	msgs  []store.Message
	down  bool // fail every publication
}

func (r *recorder) Publish(ctx context.Context, m store.Message) error {
	r.mu.Lock()
	if r.down {
		r.mu.Unlock()
		return errors.New("injected publish failure")
	}
	r.mu.Unlock()
	if r.inner != nil {
		if err := r.inner.Publish(ctx, m); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	return nil
}

// setDown makes every publication fail until called with false.
func (r *recorder) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// on returns the recorded messages on topic t.
func (r *recorder) on(t string) []store.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []store.Message
	for _, m := range r.msgs {
		if m.Topic == t {
			out = append(out, m)
		}
	}
	return out
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is one engine over one store.
type harness struct {
	name   string
	store  store.Store
	pub    *recorder
	clock  *clock
	eng    *Engine
	topics topic.Names
	prefix string
	ps     *ps.Client
}

// backends returns the stores the engine tests run on: always the
// in-memory store, and the Firestore emulator when it is configured.
func backends(t *testing.T) []func(t *testing.T) *harness {
	out := []func(t *testing.T) *harness{func(t *testing.T) *harness { return newHarness(t, "mem", memstore.New(), nil) }}
	if os.Getenv("FIRESTORE_EMULATOR_HOST") != "" && os.Getenv("PUBSUB_EMULATOR_HOST") != "" {
		out = append(out, func(t *testing.T) *harness {
			// A database of its own: the sweep's position and the
			// outbox it sweeps are the whole database's.
			fc, err := fs.NewClient(context.Background(), fmt.Sprintf("%s-%08x", emulatorProject, rand.Uint32()))
			if err != nil {
				t.Fatalf("firestore client: %v", err)
			}
			t.Cleanup(func() { fc.Close() })
			pc, err := ps.NewClient(context.Background(), emulatorProject)
			if err != nil {
				t.Fatalf("pubsub client: %v", err)
			}
			t.Cleanup(func() { pc.Close() })
			return newHarness(t, "emulators", firestore.New(fc, firestore.Options{MaxAttempts: 200}), pc)
		})
	} else {
		t.Log("FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST not set: engine tests run on the in-memory store only")
	}
	return out
}

func newHarness(t *testing.T, name string, st store.Store, pc *ps.Client) *harness {
	t.Helper()
	h := &harness{name: name, store: st, pub: &recorder{}, clock: &clock{t: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}}
	h.prefix = fmt.Sprintf("t%d-", rand.Uint32())
	h.topics = topic.Names{Prefix: h.prefix}
	if pc != nil {
		if err := pubsub.Ensure(context.Background(), pc, emulatorProject, h.topics.All(), nil); err != nil {
			t.Fatalf("Ensure topics: %v", err)
		}
		p := pubsub.NewPublisher(pc, pubsub.PublisherOptions{})
		t.Cleanup(p.Close)
		h.pub.inner = p
		h.ps = pc
	}
	eng, err := New(Options{
		Store: st, Publisher: h.pub, Machines: machines.New(nil), Topics: h.topics,
		InternalSubscriptions: internalSubscriptions(h.topics),
		Clock:                 h.clock.Now, ProviderTenant: "",
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	h.eng = eng
	return h
}

// sibling returns another engine over the same store and publisher, as a
// second function instance would be.
func (h *harness) sibling(t *testing.T) *Engine {
	t.Helper()
	eng, err := New(h.eng.o)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// forEach runs f as a subtest on every backend.
func forEach(t *testing.T, f func(t *testing.T, h *harness)) {
	for _, mk := range backends(t) {
		h := mk(t)
		t.Run(h.name, func(t *testing.T) { f(t, h) })
	}
}

var tenantSeq struct {
	sync.Mutex
	n int
}

// newTenant returns a tenant id unique across runs on a shared emulator.
func newTenant(t *testing.T) string {
	tenantSeq.Lock()
	tenantSeq.n++
	n := tenantSeq.n
	tenantSeq.Unlock()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return fmt.Sprintf("%s-%d-%x", strings.Trim(name, "-_."), n, rand.Uint32())
}

// ev builds an event; data may be "".
func ev(tenant string, d governor.Domain, name governor.EventName, subject, data string) governor.Event {
	return governor.Event{
		ID: fmt.Sprintf("%s-%s-%x", d, name, rand.Uint64()), Source: "//test/producer",
		Type: governor.TypeOf(d, name), Domain: d, Name: name, Tenant: tenant, Subject: subject,
		Data: json.RawMessage(data),
	}
}

// internalSubscriptions names the push subscriptions of the internal
// topics, as a deployment names them.
func internalSubscriptions(n topic.Names) []string {
	var out []string
	for _, d := range governor.Domains {
		out = append(out, topic.SubscriptionName(emulatorProject, topic.Push(n.Internal(d))))
	}
	return out
}

// delivered returns the message m as the push subscription of its topic
// delivers it: Pub/Sub names the subscription.
func delivered(m store.Message) event.Message {
	return event.Message{Data: m.Data, Attributes: m.Attributes,
		Subscription: topic.SubscriptionName(emulatorProject, topic.Push(m.Topic))}
}

// message encodes an event as the Pub/Sub message a function receives.
func message(e governor.Event) event.Message {
	data, attrs := event.Encode(e)
	return event.Message{Data: data, Attributes: attrs, ID: "m-" + e.ID}
}

func (h *harness) apply(t *testing.T, e governor.Event) []Result {
	t.Helper()
	rs, err := h.eng.Apply(context.Background(), e)
	if err != nil {
		t.Fatalf("Apply(%s %s) = %v", e.Type, e.Subject, err)
	}
	return rs
}

func (h *harness) instance(t *testing.T, k governor.Key) governor.Instance {
	t.Helper()
	var got governor.Instance
	err := h.store.RunTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		var err error
		got, err = tx.Instance(k)
		return err
	})
	if err != nil {
		t.Fatalf("read %v: %v", k, err)
	}
	return got
}

func (h *harness) chainLen(t *testing.T, k governor.Key) int {
	t.Helper()
	rs, err := h.store.Chain(context.Background(), k, 0, 10000)
	if err != nil {
		t.Fatalf("Chain(%v): %v", k, err)
	}
	return len(rs)
}

// deliverAll applies every governor event the recorder published since
// index from, as Pub/Sub would deliver them to the functions, and returns
// the new index.
func (h *harness) deliverAll(t *testing.T, from int) int {
	t.Helper()
	for {
		h.pub.mu.Lock()
		msgs := append([]store.Message(nil), h.pub.msgs[from:]...)
		h.pub.mu.Unlock()
		if len(msgs) == 0 {
			return from
		}
		from += len(msgs)
		for _, m := range msgs {
			d, ok := h.topics.DomainOf(m.Topic)
			if !ok {
				continue
			}
			if err := h.eng.HandleMessage(context.Background(), d, delivered(m)); err != nil {
				t.Fatalf("HandleMessage(%s) = %v", m.Topic, err)
			}
		}
	}
}
