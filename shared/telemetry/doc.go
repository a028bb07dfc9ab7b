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
package telemetry
