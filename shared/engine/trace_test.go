package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/telemetry"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTraceAcrossCascade follows one root event through three governors:
// the account suspension cascades over Pub/Sub to the entitlement and the
// tenant. All decisions must share one trace, each downstream apply span
// must be a child of the upstream decision, and the receipts and the log
// lines must carry that trace id.
func TestTraceAcrossCascade(t *testing.T) {
	forEach(t, func(t *testing.T, h *harness) {
		tel, err := telemetry.Setup(context.Background(), telemetry.Options{Exporter: telemetry.ExporterMemory, Service: "test"})
		if err != nil {
			t.Fatal(err)
		}
		var logs syncBuffer
		o := h.eng.o
		o.TracerProvider = tel.Tracer
		o.MeterProvider = tel.Meter
		o.Logger = telemetry.NewLogger(&logs, telemetry.LogOptions{ProjectID: "demo-autonomics", Component: "test"})
		eng, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		h.eng = eng
		tenant := newTenant(t)
		// Set-up without tracing of interest.
		for _, e := range []governor.Event{
			ev(tenant, governor.CustomerAccount, "requested", "", ""),
			ev(tenant, governor.CustomerAccount, "verified", "", ""),
			ev(tenant, governor.Entitlement, "creation_requested", "ent-1", `{"plan":"gold"}`),
			ev(tenant, governor.Entitlement, "activated", "ent-1", ""),
			ev(tenant, governor.MultiTenant, "provision_requested", "", ""),
			ev(tenant, governor.MultiTenant, "provisioned", "", ""),
		} {
			h.apply(t, e)
		}
		mark := h.deliverAll(t, 0)
		tel.Spans.Reset()

		root := ev(tenant, governor.CustomerAccount, "suspended", "", "")
		if err := eng.HandleMessage(context.Background(), governor.CustomerAccount, message(root)); err != nil {
			t.Fatal(err)
		}
		h.deliverAll(t, mark)

		spans := tel.Spans.GetSpans()
		applies := map[string]tracetest.SpanStub{}
		for _, s := range spans {
			if strings.HasPrefix(s.Name, "autonomics.apply ") {
				applies[strings.TrimPrefix(s.Name, "autonomics.apply ")] = s
			}
		}
		acct, ok := applies["customer_account"]
		if !ok {
			t.Fatalf("no apply span for customer_account among %d spans", len(spans))
		}
		traceID := acct.SpanContext.TraceID()
		for _, d := range []string{"entitlement", "multi_tenant"} {
			s, ok := applies[d]
			if !ok {
				t.Errorf("no apply span for %s", d)
				continue
			}
			if s.SpanContext.TraceID() != traceID {
				t.Errorf("%s trace = %s, want %s (one trace)", d, s.SpanContext.TraceID(), traceID)
			}
			// apply(downstream) ← handle(downstream) ← remote parent = apply(account)
			handle := findSpan(spans, s.Parent.SpanID())
			if handle == nil || !strings.HasPrefix(handle.Name, "autonomics.handle ") || handle.Parent.SpanID() != acct.SpanContext.SpanID() {
				t.Errorf("%s apply span is not a child (via its handle span) of the account's apply span", d)
			}
		}
		for _, name := range []string{"autonomics.decode", "autonomics.transaction", "autonomics.decide", "autonomics.publish"} {
			if !hasSpan(spans, name, traceID) {
				t.Errorf("no %s span in the trace", name)
			}
		}
		// Receipts carry the trace id.
		for _, k := range []governor.Key{
			{Tenant: tenant, Domain: governor.CustomerAccount, Subject: "default"},
			{Tenant: tenant, Domain: governor.Entitlement, Subject: "ent-1"},
			{Tenant: tenant, Domain: governor.MultiTenant, Subject: "default"},
		} {
			chain, err := h.store.Chain(context.Background(), k, 0, 100)
			if err != nil || len(chain) == 0 {
				t.Fatalf("Chain(%v) = %v", k, err)
			}
			if last := chain[len(chain)-1]; last.TraceID != traceID.String() {
				t.Errorf("%s receipt trace_id = %q, want %s", k.Domain, last.TraceID, traceID)
			}
			if err := receipt.Verify(chain); err != nil {
				t.Errorf("Verify(%v) = %v", k, err)
			}
		}
		// Decision log lines carry it in Cloud Logging's field.
		wantTrace := "projects/demo-autonomics/traces/" + traceID.String()
		found := 0
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("log line is not JSON: %s", sc.Text())
			}
			if line["message"] == "decision" && line["tenant"] == tenant && line["logging.googleapis.com/trace"] == wantTrace {
				if line["logging.googleapis.com/spanId"] == "" || line["execution_id"] == "" || line["outcome"] == "" {
					t.Errorf("decision log line lacks span, execution id or outcome: %s", sc.Text())
				}
				found++
			}
		}
		if found != 3 {
			t.Errorf("decision log lines with the trace = %d, want 3\n%s", found, logs.String())
		}
	})
}

func findSpan(spans tracetest.SpanStubs, id interface{ String() string }) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].SpanContext.SpanID().String() == id.String() {
			return &spans[i]
		}
	}
	return nil
}

func hasSpan(spans tracetest.SpanStubs, name string, trace interface{ String() string }) bool {
	for _, s := range spans {
		if s.Name == name && s.SpanContext.TraceID().String() == trace.String() {
			return true
		}
	}
	return false
}

// countingStore counts the storage calls of the engine.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls int
}

func (c *countingStore) RunTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.Store.RunTx(ctx, fn)
}

func (c *countingStore) MarkDelivered(ctx context.Context, ids ...string) error {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.Store.MarkDelivered(ctx, ids...)
}

// TestTracingAddsNoStorageRoundTrip applies the same events with tracing
// off and on and compares the storage calls.
func TestTracingAddsNoStorageRoundTrip(t *testing.T) {
	count := func(traced bool) int {
		cs := &countingStore{Store: memstore.New()}
		o := Options{Store: cs, Publisher: &recorder{}, Machines: machines.New(nil),
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
		if traced {
			tel, err := telemetry.Setup(context.Background(), telemetry.Options{Exporter: telemetry.ExporterMemory})
			if err != nil {
				t.Fatal(err)
			}
			o.TracerProvider, o.MeterProvider = tel.Tracer, tel.Meter
		}
		eng, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range []governor.Event{
			ev("acme", governor.CustomerAccount, "requested", "", ""),
			ev("acme", governor.CustomerAccount, "verified", "", ""),
			ev("acme", governor.Billing, "usage_recorded", "2026-11", `{"meter":"api_calls","quantity":3}`),
		} {
			e.ID = string(rune('a' + i))
			if err := eng.HandleMessage(context.Background(), e.Domain, message(e)); err != nil {
				t.Fatal(err)
			}
		}
		return cs.calls
	}
	if off, on := count(false), count(true); off != on {
		t.Errorf("storage calls with tracing = %d, without = %d", on, off)
	}
}

// benchmarkApply measures the decision path on the in-memory store: decode
// excluded, transaction, decision, receipt and outbox included.
func benchmarkApply(b *testing.B, traced bool, ratio float64) {
	o := Options{Store: memstore.New(), Publisher: &discard{}, Machines: machines.New(nil),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))}
	if traced {
		// Sampled spans through a batch processor, as in production, to an
		// exporter that drops them.
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		o.TracerProvider, o.MeterProvider = tp, mp
	}
	eng, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	e := ev("acme", governor.Billing, "usage_recorded", "2026-11", `{"meter":"api_calls","quantity":3}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		e.ID = "ev-" + strconv.Itoa(i)
		if _, err := eng.Apply(context.Background(), e); err != nil {
			b.Fatal(err)
		}
	}
}

// discard is a Publisher that drops messages.
type discard struct{}

func (*discard) Publish(context.Context, store.Message) error { return nil }

func BenchmarkApplyTracingOff(b *testing.B)       { benchmarkApply(b, false, 0) }
func BenchmarkApplyTracingOn(b *testing.B)        { benchmarkApply(b, true, 1) }
func BenchmarkApplyTracingSampled10(b *testing.B) { benchmarkApply(b, true, 0.1) }
