package telemetry

import (
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func TestMetricType(t *testing.T) {
	tests := []struct {
		name string
		kind MetricKind
		want string
	}{
		{"autonomics.decisions", KindCounter, "prometheus.googleapis.com/autonomics.decisions/counter"},
		{"autonomics.decision.latency", KindHistogram, "prometheus.googleapis.com/autonomics.decision.latency/histogram"},
		{"autonomics.outbox.backlog", KindGauge, "prometheus.googleapis.com/autonomics.outbox.backlog/gauge"},
		{"autonomics.dead_lettered", KindCounter, "prometheus.googleapis.com/autonomics.dead_lettered/counter"},
	}
	for _, tt := range tests {
		if got := MetricType(tt.name, tt.kind); got != tt.want {
			t.Errorf("MetricType(%q, %q) = %q, want %q", tt.name, tt.kind, got, tt.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		kind sdkmetric.InstrumentKind
		want MetricKind
	}{
		{sdkmetric.InstrumentKindCounter, KindCounter},
		{sdkmetric.InstrumentKindObservableCounter, KindCounter},
		{sdkmetric.InstrumentKindHistogram, KindHistogram},
		{sdkmetric.InstrumentKindGauge, KindGauge},
		{sdkmetric.InstrumentKindObservableGauge, KindGauge},
		{sdkmetric.InstrumentKindUpDownCounter, KindGauge},
		{sdkmetric.InstrumentKindObservableUpDownCounter, KindGauge},
	}
	for _, tt := range tests {
		if got := KindOf(tt.kind); got != tt.want {
			t.Errorf("KindOf(%v) = %q, want %q", tt.kind, got, tt.want)
		}
	}
}
