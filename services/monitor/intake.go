package main

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/oauth"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/telemetry"
)

// maxOTLPPoints is the most data points the Telemetry API takes in one
// request.
const maxOTLPPoints = 200

// otlpIntake forwards samples as OTLP gauges to Google's Telemetry API,
// which files them in Managed Service for Prometheus, where the policies
// query them. Every sample is a gauge point with its own time.
type otlpIntake struct {
	exp *otlpmetricgrpc.Exporter
	res *resource.Resource
}

// newOTLPIntake returns the intake of the Telemetry API of project, with
// Application Default Credentials. It does not connect.
func newOTLPIntake(ctx context.Context, project, service string) (*otlpIntake, error) {
	creds, err := oauth.NewApplicationDefault(ctx, "https://www.googleapis.com/auth/cloud-platform")
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, "monitor.intake", err)
	}
	exp, err := otlpmetricgrpc.New(ctx,
		otlpmetricgrpc.WithEndpoint(telemetry.TelemetryEndpoint),
		otlpmetricgrpc.WithTLSCredentials(credentials.NewClientTLSFromCert(nil, "")),
		otlpmetricgrpc.WithDialOption(grpc.WithPerRPCCredentials(creds)))
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, "monitor.intake", err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", service), attribute.String(telemetry.ProjectIDKey, project),
		attribute.String(telemetry.NamespaceKey, service))
	return &otlpIntake{exp: exp, res: res}, nil
}

// Write exports the samples in requests of at most maxOTLPPoints points.
func (o *otlpIntake) Write(ctx context.Context, samples []alerting.Sample) error {
	for start := 0; start < len(samples); start += maxOTLPPoints {
		rm := otlpBatch(o.res, samples[start:min(start+maxOTLPPoints, len(samples))])
		if err := o.exp.Export(ctx, rm); err != nil {
			return fault.Wrap(fault.Unavailable, "monitor.intake", err)
		}
	}
	return nil
}

// otlpBatch renders samples as one OTLP request: a gauge per metric name,
// a point per sample.
func otlpBatch(res *resource.Resource, samples []alerting.Sample) *metricdata.ResourceMetrics {
	byName := map[string]int{}
	var metrics []metricdata.Metrics
	for _, s := range samples {
		i, ok := byName[s.Name]
		if !ok {
			i = len(metrics)
			byName[s.Name] = i
			metrics = append(metrics, metricdata.Metrics{Name: s.Name, Data: metricdata.Gauge[float64]{}})
		}
		attrs := make([]attribute.KeyValue, 0, len(s.Labels))
		for _, k := range s.Labels.Names() {
			attrs = append(attrs, attribute.String(k, s.Labels[k]))
		}
		g := metrics[i].Data.(metricdata.Gauge[float64])
		g.DataPoints = append(g.DataPoints, metricdata.DataPoint[float64]{Attributes: attribute.NewSet(attrs...), Time: s.Time, Value: s.Value})
		metrics[i].Data = g
	}
	return &metricdata.ResourceMetrics{Resource: res, ScopeMetrics: []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: "github.com/autonomics/autonomics/services/monitor"}, Metrics: metrics,
	}}}
}

// noIntake refuses every forward: the monitor runs without an intake.
type noIntake struct{}

// Write fails.
func (noIntake) Write(context.Context, []alerting.Sample) error {
	return fault.Errorf(fault.Unavailable, "monitor.intake", "no metrics intake is configured")
}
