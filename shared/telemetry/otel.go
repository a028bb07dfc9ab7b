package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Exporters selectable in Options.Exporter.
const (
	// ExporterNone records nothing; spans still carry context across hops.
	ExporterNone = "none"
	// ExporterGCP sends traces and metrics over OTLP/gRPC to Google's
	// Telemetry API (TelemetryEndpoint) with Application Default
	// Credentials, the resource detected from Cloud Run or Cloud
	// Functions and attributed to Options.ProjectID by the gcp.project_id
	// resource attribute. Traces land in Cloud Trace, metrics in Cloud
	// Monitoring under prometheus.googleapis.com/ (MetricType). The
	// endpoint, TLS and credentials are fixed; the exporters still read
	// OTEL_EXPORTER_OTLP_HEADERS, so that a run with user credentials can
	// name its quota project (x-goog-user-project=PROJECT).
	ExporterGCP = "gcp"
	// ExporterOTLP sends traces and metrics over OTLP/gRPC to any
	// collector. The exporters read the standard OTEL_EXPORTER_OTLP_*
	// environment variables themselves (endpoint, default
	// localhost:4317; headers; certificate or insecure; timeout;
	// compression); nothing is detected.
	ExporterOTLP = "otlp"
	// ExporterStdout writes spans as JSON to Options.Writer.
	ExporterStdout = "stdout"
	// ExporterMemory keeps spans and metrics in memory, for tests.
	ExporterMemory = "memory"
)

// TelemetryEndpoint is the gRPC address of Google's Telemetry (OTLP) API,
// where ExporterGCP sends traces and metrics.
const TelemetryEndpoint = "telemetry.googleapis.com:443"

// ProjectIDKey is the resource attribute that names the Google Cloud
// project the Telemetry API stores the data of a resource in.
const ProjectIDKey = "gcp.project_id"

// DefaultFlushTimeout bounds Flush and Shutdown when their context has no
// deadline and Options.FlushTimeout is zero.
const DefaultFlushTimeout = 5 * time.Second

// cloudPlatformScope is the OAuth scope of the credentials ExporterGCP
// presents.
const cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// Options configure Setup.
type Options struct {
	// Exporter is one of the Exporter names; empty means ExporterNone.
	Exporter string
	// ProjectID is the Google Cloud project; it becomes the
	// gcp.project_id resource attribute when set.
	ProjectID string
	// Service names the component in the telemetry resource
	// (service.name).
	Service string
	// Writer receives stdout spans; os.Stdout when nil.
	Writer io.Writer
	// SampleRatio is the share of root traces recorded, 0 to 1; traces
	// continue a sampled parent. Zero means 1 (every trace).
	SampleRatio float64
	// FlushTimeout bounds Flush and Shutdown when their context has no
	// deadline; zero means DefaultFlushTimeout. A function instance waits
	// for Flush before it answers, so an unreachable endpoint must not
	// hold the answer for the exporters' whole retry period.
	FlushTimeout time.Duration
	// MetricsAddr, when set, makes Setup also serve the process's metrics
	// in the Prometheus exposition format at http://MetricsAddr/metrics
	// (MetricsPath) for a local Prometheus server to scrape, whatever the
	// Exporter: a host:port such as 127.0.0.1:9464; port 0 picks a free
	// one (Telemetry.MetricsAddr). Setup listens before it returns, and
	// fails when it cannot; Shutdown closes the endpoint. Empty means no
	// endpoint.
	MetricsAddr string

	// detector, when set, replaces the Google Cloud resource detector of
	// ExporterGCP; credentials replace Application Default Credentials;
	// dialOptions are added to the gRPC dial options of ExporterGCP and
	// ExporterOTLP. They let the tests run without Google Cloud.
	detector    resource.Detector
	credentials credentials.PerRPCCredentials
	dialOptions []grpc.DialOption
}

// Telemetry holds the trace and metric providers of one process.
type Telemetry struct {
	Tracer *sdktrace.TracerProvider
	Meter  *sdkmetric.MeterProvider
	// Resource is what both providers describe the process as.
	Resource *resource.Resource
	// Spans and Metrics are set for ExporterMemory.
	Spans   *tracetest.InMemoryExporter
	Metrics *sdkmetric.ManualReader
	// MetricsHandler serves the Prometheus exposition of the metrics at
	// MetricsPath when Options.MetricsAddr is set (it also answers on
	// that address); nil otherwise.
	MetricsHandler http.Handler

	flushTimeout    time.Duration
	metricsListener net.Listener
	metricsServer   *http.Server
}

// Propagator is the W3C trace-context propagator used on every hop.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Setup builds the providers for the chosen exporter. Nothing leaves the
// process unless Exporter is ExporterGCP or ExporterOTLP, or a scraper
// reads the metrics endpoint of Options.MetricsAddr, and Setup itself
// connects to nothing: the gRPC exporters connect on their first export.
// Unknown exporter names are refused.
func Setup(ctx context.Context, o Options) (_ *Telemetry, err error) {
	t := &Telemetry{flushTimeout: o.FlushTimeout}
	var topts []sdktrace.TracerProviderOption
	var mopts []sdkmetric.Option
	if o.MetricsAddr != "" {
		exp, h, perr := prometheusReader()
		if perr != nil {
			return nil, perr
		}
		l, lerr := listenMetrics(o.MetricsAddr)
		if lerr != nil {
			return nil, lerr
		}
		// Closed again when Setup fails below.
		defer func() {
			if err != nil {
				l.Close()
			}
		}()
		t.MetricsHandler, t.metricsListener = h, l
		mopts = append(mopts, sdkmetric.WithReader(exp))
	}
	detect := false
	switch o.Exporter {
	case "", ExporterNone:
	case ExporterMemory:
		t.Spans = tracetest.NewInMemoryExporter()
		t.Metrics = sdkmetric.NewManualReader()
		topts = append(topts, sdktrace.WithSyncer(t.Spans))
		mopts = append(mopts, sdkmetric.WithReader(t.Metrics))
	case ExporterStdout:
		w := o.Writer
		if w == nil {
			w = os.Stdout
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			return nil, fmt.Errorf("telemetry: stdout exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithSyncer(exp))
	case ExporterGCP, ExporterOTLP:
		detect = o.Exporter == ExporterGCP
		texp, mexp, err := otlpExporters(ctx, o)
		if err != nil {
			return nil, err
		}
		// Spans wait in the batcher until Flush (or the batch timeout);
		// metrics are collected by Flush (or every minute).
		topts = append(topts, sdktrace.WithBatcher(texp))
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)))
	default:
		return nil, fmt.Errorf("telemetry: unknown exporter %q (want %s, %s, %s, %s or %s)",
			o.Exporter, ExporterNone, ExporterGCP, ExporterOTLP, ExporterStdout, ExporterMemory)
	}
	t.Resource = newResource(ctx, o, detect)
	ratio := o.SampleRatio
	if ratio <= 0 || ratio > 1 {
		ratio = 1
	}
	topts = append(topts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
	t.Tracer = sdktrace.NewTracerProvider(append(topts, sdktrace.WithResource(t.Resource))...)
	t.Meter = sdkmetric.NewMeterProvider(append(mopts, sdkmetric.WithResource(t.Resource))...)
	if t.metricsListener != nil {
		t.metricsServer = metricsServer(t.metricsListener, t.MetricsHandler)
	}
	return t, nil
}

// Flush exports what is buffered — the spans waiting in the batcher and a
// collection of every metric — and returns when both are delivered or
// have failed. Functions call it before an invocation returns, since the
// instance's CPU is throttled, and it may be frozen, right after. The
// spans and the metrics are exported concurrently. When ctx has no
// deadline, Flush gives up after the flush timeout.
func (t *Telemetry) Flush(ctx context.Context) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.both(ctx, (*sdktrace.TracerProvider).ForceFlush, (*sdkmetric.MeterProvider).ForceFlush)
}

// Shutdown flushes and stops the providers and closes the metrics
// endpoint, bounded as Flush is.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	merr := t.stopMetrics(ctx)
	return errors.Join(t.both(ctx, (*sdktrace.TracerProvider).Shutdown, (*sdkmetric.MeterProvider).Shutdown), merr)
}

// both runs tf on the tracer provider and mf on the meter provider, at
// the same time, skipping a provider that is not set.
func (t *Telemetry) both(ctx context.Context, tf func(*sdktrace.TracerProvider, context.Context) error, mf func(*sdkmetric.MeterProvider, context.Context) error) error {
	var terr, merr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if t.Tracer != nil {
			terr = tf(t.Tracer, ctx)
		}
	}()
	if t.Meter != nil {
		merr = mf(t.Meter, ctx)
	}
	<-done
	return errors.Join(terr, merr)
}

// bound returns ctx with the flush timeout as deadline when it has none.
func (t *Telemetry) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	d := t.flushTimeout
	if d <= 0 {
		d = DefaultFlushTimeout
	}
	return context.WithTimeout(ctx, d)
}
