package telemetry

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// BenchmarkFlush measures what one function invocation pays for its
// telemetry: the six spans of a decision and the decision metrics
// recorded, then Telemetry.Flush, which the function waits for before it
// answers. With ExporterOTLP the flush is two OTLP/gRPC exports (spans,
// metrics) to a collector on the loopback interface, so the figures are
// the exporter's own cost plus a loopback round trip; the Telemetry API
// adds its network round trip (the two exports run concurrently). The
// wire-B/op figure is the serialized size of the export requests, exports/op
// their number. Metrics are cumulative, so every flush sends every series
// the instance has recorded so far: the series=60 case is an instance that
// has seen 20 event types of one domain.
func BenchmarkFlush(b *testing.B) {
	cases := []struct {
		name     string
		exporter string
		spans    bool
		metrics  bool
		series   int // decision series recorded before the measurement
	}{
		{"none/spans+metrics", ExporterNone, true, true, 0},
		{"otlp/spans", ExporterOTLP, true, false, 0},
		{"otlp/metrics", ExporterOTLP, false, true, 0},
		{"otlp/spans+metrics", ExporterOTLP, true, true, 0},
		{"otlp/spans+metrics/series=60", ExporterOTLP, true, true, 60},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := startReceiver(b, false)
			r.endpoint(b)
			ctx := context.Background()
			tel, err := Setup(ctx, Options{Exporter: c.exporter, ProjectID: "demo-autonomics", Service: "billing"})
			if err != nil {
				b.Fatalf("Setup: %v", err)
			}
			defer tel.Shutdown(ctx)
			inv := newInvocation(tel)
			if !c.metrics {
				inv.decisions = nil
			}
			for i := range c.series {
				inv.decisions.Add(ctx, 1, metric.WithAttributes(attribute.String("domain", "billing"),
					attribute.String("event_type", fmt.Sprintf("autonomics.billing.event_%d", i/3)),
					attribute.String("outcome", []string{"accepted", "rejected", "ignored"}[i%3])))
			}
			step := func() {
				if c.spans {
					inv.run(ctx)
				} else {
					inv.decisions.Add(ctx, 1, inv.set)
					inv.attempts.Record(ctx, 1, inv.dom)
					inv.latency.Record(ctx, 12.5, inv.dom)
				}
				if err := tel.Flush(ctx); err != nil {
					b.Fatalf("Flush: %v", err)
				}
			}
			step() // connect outside the measurement
			calls, bytes := r.calls.Load(), r.bytes.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				step()
			}
			b.StopTimer()
			b.ReportMetric(float64(r.calls.Load()-calls)/float64(b.N), "exports/op")
			b.ReportMetric(float64(r.bytes.Load()-bytes)/float64(b.N), "wire-B/op")
		})
	}
}
