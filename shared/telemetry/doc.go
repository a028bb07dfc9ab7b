// Package telemetry holds the observability plumbing shared by the
// functions and services of Autonomics: structured logs that Cloud Logging
// reads natively, and the OpenTelemetry providers of traces and metrics.
//
// NewLogger returns a *slog.Logger that writes one JSON object per line
// with the fields Cloud Logging recognises: "severity", "message" and
// "time". When the context of a log call carries a trace — put there by
// WithTrace, or an OpenTelemetry span — the line also carries
// "logging.googleapis.com/trace", "logging.googleapis.com/spanId" and
// "logging.googleapis.com/trace_sampled", so that the Logs Explorer groups
// the lines of one request and links them to Cloud Trace.
//
// ParseTraceParent reads a W3C traceparent value, as found in an HTTP
// header or in the CloudEvents traceparent extension.
//
// Setup builds the trace and meter providers of a process for one
// exporter: ExporterGCP sends both over OTLP/gRPC to Google's Telemetry
// API with Application Default Credentials, ExporterOTLP to any collector
// the standard OTEL_EXPORTER_OTLP_* variables name, ExporterStdout writes
// spans, ExporterMemory keeps everything for tests and ExporterNone
// records nothing. The package reads no environment variable itself; the
// OTLP exporters read theirs. Telemetry.Flush exports what is buffered
// before a function answers. MetricType names the Cloud Monitoring metric
// a metric of the code becomes through the Telemetry API, for dashboards
// and alert policies.
//
// # Local scraping
//
// With Options.MetricsAddr set (for example 127.0.0.1:9464), whatever the
// exporter, Setup also serves the process's metrics in the Prometheus
// text format at http://MetricsAddr/metrics, through the OpenTelemetry
// Prometheus exporter on a registry of its own (nothing of the process's
// default registry, no Go runtime metrics). A local Prometheus server
// scrapes it with a job per service:
//
//	scrape_configs:
//	  - job_name: monitor
//	    scrape_interval: 15s
//	    static_configs:
//	      - targets: ["127.0.0.1:9464"]
//
// Names follow what a Prometheus 2 server accepts: every character
// outside [a-zA-Z0-9_:] becomes an underscore and no unit or _total
// suffix is added, so the instrument autonomics.decisions is the series
// autonomics_decisions (PromQL autonomics_decisions{job="monitor"}),
// where Managed Service for Prometheus keeps the dotted name
// ({"autonomics.decisions"}); histograms add _bucket, _sum and _count.
// Every series carries the labels otel_scope_name, otel_scope_version
// and otel_scope_schema_url, and target_info holds the resource
// (service_name, …); the scrape adds job and instance. The endpoint
// answers only GET and HEAD of /metrics without a body, with bounded
// headers, at most a few scrapes at once and a deadline on each; bind it
// to a loopback address, it is not authenticated. Shutdown closes it.
package telemetry
