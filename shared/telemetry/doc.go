// Package telemetry holds the observability plumbing shared by the
// functions and services of Autonomics: structured logs that Cloud Logging
// reads natively.
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
package telemetry
