package telemetry

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// collection builds resource metrics with the given number of points per
// metric, the metrics spread over two scopes and several aggregations.
func collection(points ...int) *metricdata.ResourceMetrics {
	rm := &metricdata.ResourceMetrics{Resource: resource.NewSchemaless(attribute.String("service.name", "billing"))}
	scopes := []instrumentation.Scope{{Name: "engine"}, {Name: "ledger"}}
	for i, n := range points {
		m := metricdata.Metrics{Name: fmt.Sprintf("m%d", i), Unit: "ms"}
		switch i % 3 {
		case 0:
			var dps []metricdata.DataPoint[int64]
			for j := range n {
				dps = append(dps, metricdata.DataPoint[int64]{Value: int64(j)})
			}
			m.Data = metricdata.Sum[int64]{DataPoints: dps, Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
		case 1:
			var dps []metricdata.HistogramDataPoint[float64]
			for j := range n {
				dps = append(dps, metricdata.HistogramDataPoint[float64]{Count: uint64(j)})
			}
			m.Data = metricdata.Histogram[float64]{DataPoints: dps, Temporality: metricdata.CumulativeTemporality}
		default:
			var dps []metricdata.DataPoint[float64]
			for j := range n {
				dps = append(dps, metricdata.DataPoint[float64]{Value: float64(j)})
			}
			m.Data = metricdata.Gauge[float64]{DataPoints: dps}
		}
		s := scopes[i*len(scopes)/len(points)]
		if len(rm.ScopeMetrics) == 0 || rm.ScopeMetrics[len(rm.ScopeMetrics)-1].Scope != s {
			rm.ScopeMetrics = append(rm.ScopeMetrics, metricdata.ScopeMetrics{Scope: s})
		}
		last := &rm.ScopeMetrics[len(rm.ScopeMetrics)-1]
		last.Metrics = append(last.Metrics, m)
	}
	return rm
}

// flatten lists every point of rm as scope/metric/value, in order.
func flatten(rm *metricdata.ResourceMetrics) []string {
	var out []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out = append(out, fmt.Sprintf("%s/%s/%s/sum %d monotonic=%v", sm.Scope.Name, m.Name, m.Unit, p.Value, d.IsMonotonic))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out = append(out, fmt.Sprintf("%s/%s/%s/histogram %d", sm.Scope.Name, m.Name, m.Unit, p.Count))
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out = append(out, fmt.Sprintf("%s/%s/%s/gauge %g", sm.Scope.Name, m.Name, m.Unit, p.Value))
				}
			}
		}
	}
	return out
}

func TestSplitPoints(t *testing.T) {
	tests := []struct {
		name      string
		points    []int
		max       int
		wantParts []int // points per part
	}{
		{"empty", nil, 200, []int{0}},
		{"under the limit", []int{50, 100, 49}, 200, []int{199}},
		{"at the limit", []int{100, 100}, 200, []int{200}},
		{"one metric too many", []int{450}, 200, []int{200, 200, 50}},
		{"across metrics and scopes", []int{150, 80, 60, 130, 1}, 200, []int{200, 200, 21}},
		{"limit of one", []int{2, 1}, 1, []int{1, 1, 1}},
		{"no limit", []int{1000}, 0, []int{1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rm := collection(tt.points...)
			parts := splitPoints(rm, tt.max)
			if len(parts) != len(tt.wantParts) {
				t.Fatalf("%d parts, want %d", len(parts), len(tt.wantParts))
			}
			var joined []string
			for i, p := range parts {
				if n := countPoints(p); n != tt.wantParts[i] {
					t.Errorf("part %d has %d points, want %d", i, n, tt.wantParts[i])
				}
				if p.Resource != rm.Resource {
					t.Errorf("part %d lost the resource", i)
				}
				joined = append(joined, flatten(p)...)
			}
			if want := flatten(rm); fmt.Sprint(joined) != fmt.Sprint(want) {
				t.Errorf("parts hold\n%v\nwant\n%v", joined, want)
			}
		})
	}
}

// countingExporter records the point counts of its exports.
type countingExporter struct {
	sdkmetric.Exporter
	exports []int
	fail    error
}

func (e *countingExporter) Export(_ context.Context, rm *metricdata.ResourceMetrics) error {
	e.exports = append(e.exports, countPoints(rm))
	return e.fail
}

func TestLimitPoints(t *testing.T) {
	boom := errors.New("unavailable")
	tests := []struct {
		name    string
		points  []int
		fail    error
		exports []int
	}{
		{"nothing to send", nil, nil, nil},
		{"only empty metrics", []int{0, 0}, nil, nil},
		{"one request", []int{10, 20}, nil, []int{30}},
		{"three requests", []int{450}, nil, []int{200, 200, 50}},
		{"every part tried", []int{450}, boom, []int{200, 200, 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := &countingExporter{fail: tt.fail}
			err := limitPoints(inner, maxTelemetryPoints).Export(context.Background(), collection(tt.points...))
			if !errors.Is(err, tt.fail) || (tt.fail == nil) != (err == nil) {
				t.Errorf("Export = %v, want %v", err, tt.fail)
			}
			if fmt.Sprint(inner.exports) != fmt.Sprint(tt.exports) {
				t.Errorf("exports of %v points, want %v", inner.exports, tt.exports)
			}
		})
	}
}
