package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"

	"go.opentelemetry.io/contrib/detectors/gcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/oauth"
)

// NamespaceKey is the resource attribute the Telemetry API reads first for
// the namespace label of a metric's prometheus_target resource.
// ExporterGCP sets it to the Cloud Run service or function the process
// runs as (faas.name), which carries the environment's name prefix, so
// that charts and alerts tell apart environments that share a project.
const NamespaceKey = "namespace"

// maxTelemetryPoints is the most metric data points the Telemetry API
// takes in one request.
const maxTelemetryPoints = 200

// otlpExporters builds the OTLP/gRPC span and metric exporters of
// ExporterGCP or ExporterOTLP. Neither connects: the gRPC clients connect
// on their first export. For ExporterOTLP every setting comes from the
// OTEL_EXPORTER_OTLP_* variables, which the exporters read; for
// ExporterGCP the endpoint, TLS and credentials are fixed, and the
// variables may still add headers, a timeout or compression.
func otlpExporters(ctx context.Context, o Options) (sdktrace.SpanExporter, sdkmetric.Exporter, error) {
	dial := slices.Clone(o.dialOptions)
	var topts []otlptracegrpc.Option
	var mopts []otlpmetricgrpc.Option
	if o.Exporter == ExporterGCP {
		creds := o.credentials
		if creds == nil {
			var err error
			if creds, err = oauth.NewApplicationDefault(ctx, cloudPlatformScope); err != nil {
				return nil, nil, fmt.Errorf("telemetry: Application Default Credentials for the Telemetry API: %w", err)
			}
		}
		dial = append([]grpc.DialOption{grpc.WithPerRPCCredentials(creds)}, dial...)
		tls := credentials.NewClientTLSFromCert(nil, "")
		topts = append(topts, otlptracegrpc.WithEndpoint(TelemetryEndpoint), otlptracegrpc.WithTLSCredentials(tls))
		mopts = append(mopts, otlpmetricgrpc.WithEndpoint(TelemetryEndpoint), otlpmetricgrpc.WithTLSCredentials(tls))
	}
	if len(dial) > 0 {
		// WithDialOption replaces earlier dial options: pass them all at once.
		topts = append(topts, otlptracegrpc.WithDialOption(dial...))
		mopts = append(mopts, otlpmetricgrpc.WithDialOption(dial...))
	}
	texp, err := otlptracegrpc.New(ctx, topts...)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
	}
	mexp, err := otlpmetricgrpc.New(ctx, mopts...)
	if err != nil {
		_ = texp.Shutdown(ctx)
		return nil, nil, fmt.Errorf("telemetry: OTLP metric exporter: %w", err)
	}
	if o.Exporter == ExporterGCP {
		return texp, limitPoints(mexp, maxTelemetryPoints), nil
	}
	return texp, limitPoints(mexp, 0), nil
}

// newResource returns the resource of the process: service.name,
// gcp.project_id, what the Google Cloud detector finds when detect is
// set (platform, region, service and instance), the namespace the
// Telemetry API files metrics under, and service.instance.id, which keeps
// the cumulative series of concurrent instances apart.
func newResource(ctx context.Context, o Options, detect bool) *resource.Resource {
	var attrs []attribute.KeyValue
	if o.Service != "" {
		attrs = append(attrs, semconv.ServiceName(o.Service))
	}
	if o.ProjectID != "" {
		attrs = append(attrs, attribute.String(ProjectIDKey, o.ProjectID))
	}
	res := resource.NewSchemaless(attrs...)
	if detect {
		d := o.detector
		if d == nil {
			d = gcp.NewDetector()
		}
		// A partial detection still returns what it found.
		if found, _ := d.Detect(ctx); found != nil {
			if merged, err := resource.Merge(found, res); err == nil {
				res = merged
			}
		}
		if name, ok := res.Set().Value(semconv.FaaSNameKey); ok && name.AsString() != "" {
			res, _ = resource.Merge(res, resource.NewSchemaless(attribute.String(NamespaceKey, name.AsString())))
		}
	}
	instance := ""
	if v, ok := res.Set().Value(semconv.FaaSInstanceKey); ok {
		instance = v.AsString()
	}
	if instance == "" {
		instance = randomID()
	}
	res, _ = resource.Merge(res, resource.NewSchemaless(semconv.ServiceInstanceID(instance)))
	return res
}

// randomID returns 32 random hex digits.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
