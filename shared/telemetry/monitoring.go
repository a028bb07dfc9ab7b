package telemetry

import sdkmetric "go.opentelemetry.io/otel/sdk/metric"

// MetricKind is the last element of the Cloud Monitoring type of a metric
// that the Telemetry API stored: what kind of Prometheus series it is.
type MetricKind string

// Kinds of Prometheus series.
const (
	// KindCounter is a cumulative monotonic sum.
	KindCounter MetricKind = "counter"
	// KindGauge is a gauge, or a sum that may go down.
	KindGauge MetricKind = "gauge"
	// KindHistogram is a distribution with buckets.
	KindHistogram MetricKind = "histogram"
)

// MetricDomain is where the Telemetry API stores OTLP metrics in Cloud
// Monitoring: the metrics of Google Cloud Managed Service for Prometheus.
const MetricDomain = "prometheus.googleapis.com/"

// MonitoredResource is the monitored-resource type of every metric the
// Telemetry API stores, labelled project_id, location, cluster
// (__run__ on Cloud Run), namespace (NamespaceKey), job (service.name)
// and instance (service.instance.id).
const MonitoredResource = "prometheus_target"

// MetricType returns the Cloud Monitoring metric type under which the
// Telemetry API stores the OTLP metric called name, of kind k:
// prometheus.googleapis.com/<name>/<kind>, for example
// prometheus.googleapis.com/autonomics.decisions/counter. The name is kept
// as sent, dots included (the API takes names matching
// [a-zA-Z][a-zA-Z0-9_:./]* and adds no unit or _total suffix), which is
// why PromQL must quote it: {"autonomics.decisions"}. Attributes of the
// points become metric labels, resource attributes the labels of
// MonitoredResource.
func MetricType(name string, k MetricKind) string {
	return MetricDomain + name + "/" + string(k)
}

// KindOf returns the kind of series the instruments of kind k record
// under the SDK's default (cumulative) temporality: counters become
// counters, up-down counters and gauges gauges, histograms histograms.
func KindOf(k sdkmetric.InstrumentKind) MetricKind {
	switch k {
	case sdkmetric.InstrumentKindCounter, sdkmetric.InstrumentKindObservableCounter:
		return KindCounter
	case sdkmetric.InstrumentKindHistogram:
		return KindHistogram
	default:
		return KindGauge
	}
}
