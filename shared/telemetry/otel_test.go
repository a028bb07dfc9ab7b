package telemetry

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
)

func TestSetupExporters(t *testing.T) {
	tests := []struct {
		exporter string
		wantErr  bool
		// memory: the in-memory exporters are set.
		memory bool
	}{
		{exporter: ""},
		{exporter: ExporterNone},
		{exporter: ExporterStdout},
		{exporter: ExporterMemory, memory: true},
		{exporter: ExporterOTLP},
		{exporter: "GCP", wantErr: true},
		{exporter: "cloudtrace", wantErr: true},
		{exporter: "otlp-http", wantErr: true},
		{exporter: "jaeger", wantErr: true},
		{exporter: " gcp", wantErr: true},
	}
	// ExporterOTLP finds the collector through the environment.
	startReceiver(t, false).endpoint(t)
	for _, tt := range tests {
		t.Run(tt.exporter, func(t *testing.T) {
			tel, err := Setup(context.Background(), Options{Exporter: tt.exporter, Service: "billing", Writer: &bytes.Buffer{}})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "unknown exporter") {
					t.Fatalf("Setup(%q) = %v, want an unknown exporter error", tt.exporter, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Setup(%q): %v", tt.exporter, err)
			}
			defer tel.Shutdown(context.Background())
			if tel.Tracer == nil || tel.Meter == nil || tel.Resource == nil {
				t.Fatalf("Setup(%q) = %+v: providers or resource missing", tt.exporter, tel)
			}
			if (tel.Spans != nil) != tt.memory || (tel.Metrics != nil) != tt.memory {
				t.Errorf("Setup(%q): in-memory exporters set = %v, %v; want %v", tt.exporter, tel.Spans != nil, tel.Metrics != nil, tt.memory)
			}
		})
	}
}

func TestResource(t *testing.T) {
	detected := resource.NewSchemaless(
		semconv.CloudPlatformGCPCloudRun,
		semconv.CloudRegion("us-central1"),
		semconv.FaaSName("dev-autonomics-billing"),
		semconv.FaaSInstance("0069c7a988"),
	)
	tests := []struct {
		name   string
		opts   Options
		detect bool
		want   map[string]string
		absent []string
	}{
		{
			name: "plain",
			opts: Options{ProjectID: "demo-autonomics", Service: "billing"},
			want: map[string]string{"service.name": "billing", ProjectIDKey: "demo-autonomics"},
			absent: []string{
				NamespaceKey, "cloud.region",
			},
		},
		{
			name:   "no project",
			opts:   Options{Service: "billing"},
			want:   map[string]string{"service.name": "billing"},
			absent: []string{ProjectIDKey},
		},
		{
			name:   "detected on Cloud Run",
			opts:   Options{ProjectID: "demo-autonomics", Service: "billing", detector: staticDetector{detected}},
			detect: true,
			want: map[string]string{
				"service.name": "billing", ProjectIDKey: "demo-autonomics", "cloud.region": "us-central1",
				"cloud.platform": "gcp_cloud_run", NamespaceKey: "dev-autonomics-billing",
				"service.instance.id": "0069c7a988",
			},
		},
		{
			name:   "detection found nothing",
			opts:   Options{Service: "billing", detector: staticDetector{nil}},
			detect: true,
			want:   map[string]string{"service.name": "billing"},
			absent: []string{NamespaceKey, "cloud.region"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			for _, kv := range newResource(context.Background(), tt.opts, tt.detect).Attributes() {
				got[string(kv.Key)] = kv.Value.AsString()
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (resource %v)", k, got[k], v, got)
				}
			}
			for _, k := range tt.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s = %q, want it absent", k, got[k])
				}
			}
			if len(got["service.instance.id"]) == 0 {
				t.Errorf("service.instance.id is empty: the Telemetry API rejects points without an instance")
			}
		})
	}
}

// TestOTLPDelivers sends one invocation's spans and metrics through
// ExporterOTLP to a local collector, configured only by the standard
// environment variables.
func TestOTLPDelivers(t *testing.T) {
	r := startReceiver(t, true)
	r.endpoint(t)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-autonomics-test=delivered")
	ctx := context.Background()
	tel, err := Setup(ctx, Options{Exporter: ExporterOTLP, ProjectID: "demo-autonomics", Service: "billing"})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer tel.Shutdown(ctx)
	if n := r.conns.Load(); n != 0 {
		t.Errorf("Setup opened %d connections, want none before the first export", n)
	}
	inv := newInvocation(tel)
	inv.run(ctx)
	if err := tel.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}

	spans, metrics, headers := r.received()
	var names []string
	for _, rs := range spans {
		checkResource(t, "spans", attrs(rs.Resource.Attributes))
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				names = append(names, s.Name)
			}
		}
	}
	slices.Sort(names)
	want := slices.Clone(invocationSpans)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("receiver got spans %v, want %v", names, want)
	}
	got := map[string]int{}
	for _, rm := range metrics {
		checkResource(t, "metrics", attrs(rm.Resource.Attributes))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				got[m.Name] += len(m.GetSum().GetDataPoints()) + len(m.GetHistogram().GetDataPoints()) + len(m.GetGauge().GetDataPoints())
			}
		}
	}
	for _, name := range []string{"autonomics.decisions", "autonomics.decision.latency", "autonomics.transaction.attempts"} {
		if got[name] == 0 {
			t.Errorf("receiver got no points of %s (got %v)", name, got)
		}
	}
	if len(headers) == 0 || !slices.ContainsFunc(headers, func(md metadata.MD) bool {
		return slices.Contains(md["x-autonomics-test"], "delivered")
	}) {
		t.Errorf("OTEL_EXPORTER_OTLP_HEADERS not sent: headers %v", headers)
	}
}

func checkResource(t *testing.T, what string, got map[string]string) {
	t.Helper()
	if got[ProjectIDKey] != "demo-autonomics" || got["service.name"] != "billing" || got["service.instance.id"] == "" {
		t.Errorf("%s resource = %v, want gcp.project_id demo-autonomics, service.name billing and an instance", what, got)
	}
}

// TestGCPExporter builds ExporterGCP without Google Cloud: Setup connects
// to nothing, and the first export goes over TLS to the Telemetry API.
func TestGCPExporter(t *testing.T) {
	d := &recordingDialer{}
	ctx := context.Background()
	tel, err := Setup(ctx, Options{
		Exporter: ExporterGCP, ProjectID: "demo-autonomics", Service: "billing",
		detector:    staticDetector{resource.NewSchemaless(semconv.FaaSName("autonomics-billing"), semconv.CloudRegion("us-central1"))},
		credentials: fakeCredentials{},
		dialOptions: []grpc.DialOption{grpc.WithContextDialer(d.dial), grpc.WithResolvers(literalResolver{})},
	})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	if addrs, _ := d.seen(); len(addrs) != 0 {
		t.Fatalf("Setup dialled %v, want no connection before the first export", addrs)
	}
	got := map[string]string{}
	for _, kv := range tel.Resource.Attributes() {
		got[string(kv.Key)] = kv.Value.AsString()
	}
	for k, v := range map[string]string{ProjectIDKey: "demo-autonomics", "service.name": "billing", NamespaceKey: "autonomics-billing", "cloud.region": "us-central1"} {
		if got[k] != v {
			t.Errorf("resource %s = %q, want %q", k, got[k], v)
		}
	}

	newInvocation(tel).run(ctx)
	fctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := tel.Flush(fctx); err == nil {
		t.Errorf("Flush succeeded with no Telemetry API to reach")
	}
	addrs, names := d.seen()
	if len(addrs) == 0 {
		t.Fatal("Flush dialled nothing")
	}
	for _, a := range addrs {
		if a != TelemetryEndpoint {
			t.Errorf("dialled %q, want %q", a, TelemetryEndpoint)
		}
	}
	for _, n := range names {
		if n != "telemetry.googleapis.com" {
			t.Errorf("TLS server name %q, want telemetry.googleapis.com", n)
		}
	}
	if len(names) == 0 {
		t.Error("no TLS handshake: the exporter must use TLS")
	}
}

func TestFlushIsBounded(t *testing.T) {
	r := startReceiver(t, false)
	r.block = true
	r.endpoint(t)
	ctx := context.Background()
	tel, err := Setup(ctx, Options{Exporter: ExporterOTLP, Service: "billing", FlushTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	defer tel.Shutdown(ctx)
	newInvocation(tel).run(ctx)
	start := time.Now()
	err = tel.Flush(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Flush took %v against a collector that never answers; want about the flush timeout", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush = %v, want the deadline exceeded", err)
	}
}

func TestFlushWithoutProviders(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	tests := []struct {
		name string
		tel  *Telemetry
	}{
		{"empty", &Telemetry{}},
		{"meter only", &Telemetry{Meter: mp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.tel.Flush(context.Background()); err != nil {
				t.Errorf("Flush: %v", err)
			}
			if err := tt.tel.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// invocationSpans are the spans of one governor decision, as the engine
// names them.
var invocationSpans = []string{
	"autonomics.handle", "autonomics.decode", "autonomics.apply",
	"autonomics.transaction", "autonomics.decide", "autonomics.publish",
}

// invocation records what one governor invocation records: its six spans
// and the decision metrics.
type invocation struct {
	tel       *Telemetry
	decisions metric.Int64Counter
	attempts  metric.Int64Histogram
	latency   metric.Float64Histogram
	set       metric.MeasurementOption
	dom       metric.MeasurementOption
}

func newInvocation(tel *Telemetry) *invocation {
	m := tel.Meter.Meter("github.com/autonomics/autonomics/shared/engine")
	inv := &invocation{tel: tel}
	inv.decisions, _ = m.Int64Counter("autonomics.decisions")
	inv.attempts, _ = m.Int64Histogram("autonomics.transaction.attempts")
	inv.latency, _ = m.Float64Histogram("autonomics.decision.latency", metric.WithUnit("ms"))
	inv.set = metric.WithAttributeSet(attribute.NewSet(attribute.String("domain", "billing"), attribute.String("event_type", "autonomics.billing.payment_failed"), attribute.String("outcome", "accepted")))
	inv.dom = metric.WithAttributeSet(attribute.NewSet(attribute.String("domain", "billing")))
	return inv
}

// run records one invocation: handle, with decode, apply (transaction,
// decide) and publish below it.
func (inv *invocation) run(ctx context.Context) {
	tr := inv.tel.Tracer.Tracer("github.com/autonomics/autonomics/shared/engine")
	ctx, handle := tr.Start(ctx, invocationSpans[0])
	_, decode := tr.Start(ctx, invocationSpans[1])
	decode.End()
	actx, apply := tr.Start(ctx, invocationSpans[2])
	tctx, txn := tr.Start(actx, invocationSpans[3])
	_, decide := tr.Start(tctx, invocationSpans[4])
	decide.End()
	txn.End()
	apply.End()
	_, publish := tr.Start(ctx, invocationSpans[5])
	publish.End()
	handle.End()
	if inv.decisions != nil {
		inv.decisions.Add(ctx, 1, inv.set)
		inv.attempts.Record(ctx, 1, inv.dom)
		inv.latency.Record(ctx, 12.5, inv.dom)
	}
}

// staticDetector detects a fixed resource.
type staticDetector struct{ res *resource.Resource }

func (d staticDetector) Detect(context.Context) (*resource.Resource, error) { return d.res, nil }

// fakeCredentials stand in for Application Default Credentials.
type fakeCredentials struct{}

func (fakeCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer test-token"}, nil
}

func (fakeCredentials) RequireTransportSecurity() bool { return true }

// recordingDialer connects nowhere: it records the address asked for and
// the TLS server name the client's handshake announces, then fails it.
type recordingDialer struct {
	mu    sync.Mutex
	addrs []string
	names []string
}

func (d *recordingDialer) dial(_ context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		_ = tls.Server(server, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			d.mu.Lock()
			d.names = append(d.names, h.ServerName)
			d.mu.Unlock()
			return nil, errors.New("no Telemetry API here")
		}}).Handshake()
	}()
	return client, nil
}

func (d *recordingDialer) seen() (addrs, names []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.addrs), slices.Clone(d.names)
}

// literalResolver resolves "dns" targets to themselves, so that the
// dialer sees the host name and nothing is looked up.
type literalResolver struct{}

func (literalResolver) Scheme() string { return "dns" }

func (literalResolver) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	return nopResolver{}, cc.UpdateState(resolver.State{Addresses: []resolver.Address{{Addr: t.Endpoint()}}})
}

type nopResolver struct{}

func (nopResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (nopResolver) Close()                                {}
