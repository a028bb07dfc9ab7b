package ingest_test

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/autonomics/autonomics/shared/ingest"
)

// TestAnsweredEventsAreCounted checks the events counter: an accepted
// event and a refused one, each under its producer, outcome and code.
func TestAnsweredEventsAreCounted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	f := newFixture(t, fixtureOptions{meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if a := f.send(billingEmail, usage("m-ok", "acme")); a.status != http.StatusAccepted {
		t.Fatalf("valid event = %d %s, want 202", a.status, a.body)
	}
	f.send(billingEmail, usage("m-no", "initech"))
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[[3]string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != ingest.MetricEvents {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				get := func(k string) string { v, _ := dp.Attributes.Value(attribute.Key(k)); return v.AsString() }
				got[[3]string{get("producer"), get("outcome"), get("code")}] += dp.Value
			}
		}
	}
	want := map[[3]string]int64{
		{"billing", ingest.StatusAccepted, ""}:                          1,
		{"billing", ingest.StatusRefused, string(ingest.CodeForbidden)}: 1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s%v = %d, want %d (all: %v)", ingest.MetricEvents, k, got[k], n, got)
		}
	}
}
