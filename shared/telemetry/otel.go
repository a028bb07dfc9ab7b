// The Cloud Trace and Cloud Monitoring exporters are the ones the project
// deploys with today; they are marked deprecated in favour of OTLP to
// Google's telemetry endpoint, the planned replacement.
//lint:file-ignore SA1019 kept until the move to the OTLP exporters.

package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	mexporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/metric"
	texporter "github.com/GoogleCloudPlatform/opentelemetry-operations-go/exporter/trace"
	"go.opentelemetry.io/contrib/detectors/gcp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Exporters selectable in Options.Exporter.
const (
	// ExporterNone records nothing; spans still carry context across hops.
	ExporterNone = "none"
	// ExporterGCP sends traces to Cloud Trace and metrics to Cloud
	// Monitoring, with the resource detected from Cloud Run or Cloud
	// Functions.
	ExporterGCP = "gcp"
	// ExporterStdout writes spans as JSON to Options.Writer.
	ExporterStdout = "stdout"
	// ExporterMemory keeps spans and metrics in memory, for tests.
	ExporterMemory = "memory"
)

// Options configure Setup.
type Options struct {
	Exporter  string
	ProjectID string
	// Service names the component in the telemetry resource.
	Service string
	// Writer receives stdout spans; os.Stdout when nil.
	Writer io.Writer
	// SampleRatio is the share of root traces recorded, 0 to 1; traces
	// continue a sampled parent. Zero means 1 (every trace).
	SampleRatio float64
}

// Telemetry holds the trace and metric providers of one process.
type Telemetry struct {
	Tracer *sdktrace.TracerProvider
	Meter  *sdkmetric.MeterProvider
	// Spans and Metrics are set for ExporterMemory.
	Spans   *tracetest.InMemoryExporter
	Metrics *sdkmetric.ManualReader
}

// Propagator is the W3C trace-context propagator used on every hop.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Setup builds the providers for the chosen exporter. Nothing reaches
// Google unless Exporter is ExporterGCP.
func Setup(ctx context.Context, o Options) (*Telemetry, error) {
	attrs := resource.NewSchemaless(semconv.ServiceName(o.Service))
	res := attrs
	var topts []sdktrace.TracerProviderOption
	var mopts []sdkmetric.Option
	t := &Telemetry{}
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
	case ExporterGCP:
		detected, err := resource.New(ctx, resource.WithDetectors(gcp.NewDetector()), resource.WithAttributes(semconv.ServiceName(o.Service)))
		if err == nil {
			res, _ = resource.Merge(attrs, detected)
		}
		texp, err := texporter.New(texporter.WithProjectID(o.ProjectID))
		if err != nil {
			return nil, fmt.Errorf("telemetry: Cloud Trace exporter: %w", err)
		}
		mexp, err := mexporter.New(mexporter.WithProjectID(o.ProjectID))
		if err != nil {
			return nil, fmt.Errorf("telemetry: Cloud Monitoring exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(texp))
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)))
	default:
		return nil, fmt.Errorf("telemetry: unknown exporter %q (want none, gcp, stdout or memory)", o.Exporter)
	}
	ratio := o.SampleRatio
	if ratio <= 0 || ratio > 1 {
		ratio = 1
	}
	topts = append(topts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
	t.Tracer = sdktrace.NewTracerProvider(append(topts, sdktrace.WithResource(res))...)
	t.Meter = sdkmetric.NewMeterProvider(append(mopts, sdkmetric.WithResource(res))...)
	return t, nil
}

// Flush exports what is buffered; functions call it before an invocation
// returns, since the instance may be frozen right after.
func (t *Telemetry) Flush(ctx context.Context) error {
	return errors.Join(t.Tracer.ForceFlush(ctx), t.Meter.ForceFlush(ctx))
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.Tracer.Shutdown(ctx), t.Meter.Shutdown(ctx))
}
