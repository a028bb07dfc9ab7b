package telemetry

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP/gRPC collector on a loopback port: it implements
// the trace and metrics services of the collector protocol and keeps
// what it is sent.
type receiver struct {
	addr string
	// conns counts accepted connections, calls export requests and
	// bytes their serialized size.
	conns, calls, bytes atomic.Int64
	// keep, when false, makes the receiver count requests without keeping
	// them (benchmarks).
	keep bool
	// block, when set, makes every export wait for its caller to give up.
	block bool

	mu      sync.Mutex
	spans   []*tracepb.ResourceSpans
	metrics []*metricpb.ResourceMetrics
	headers []metadata.MD
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *receiver
}

type metricsService struct {
	colmetricpb.UnimplementedMetricsServiceServer
	r *receiver
}

// startReceiver serves a receiver on 127.0.0.1 until the test ends.
func startReceiver(tb testing.TB, keep bool) *receiver {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	r := &receiver{addr: lis.Addr().String(), keep: keep}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, traceService{r: r})
	colmetricpb.RegisterMetricsServiceServer(srv, metricsService{r: r})
	go func() { _ = srv.Serve(countingListener{lis, &r.conns}) }()
	tb.Cleanup(srv.Stop)
	return r
}

// endpoint points the OTLP exporters at r through the standard variable.
func (r *receiver) endpoint(tb testing.TB) {
	tb.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+r.addr)
}

func (s traceService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if err := s.r.record(ctx, req); err != nil {
		return nil, err
	}
	if s.r.keep {
		s.r.mu.Lock()
		s.r.spans = append(s.r.spans, req.ResourceSpans...)
		s.r.mu.Unlock()
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (s metricsService) Export(ctx context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	if err := s.r.record(ctx, req); err != nil {
		return nil, err
	}
	if s.r.keep {
		s.r.mu.Lock()
		s.r.metrics = append(s.r.metrics, req.ResourceMetrics...)
		s.r.mu.Unlock()
	}
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// record counts a request and keeps its headers.
func (r *receiver) record(ctx context.Context, req proto.Message) error {
	if r.block {
		<-ctx.Done()
		return ctx.Err()
	}
	r.calls.Add(1)
	r.bytes.Add(int64(proto.Size(req)))
	if r.keep {
		md, _ := metadata.FromIncomingContext(ctx)
		r.mu.Lock()
		r.headers = append(r.headers, md)
		r.mu.Unlock()
	}
	return nil
}

// received returns copies of what r was sent so far.
func (r *receiver) received() ([]*tracepb.ResourceSpans, []*metricpb.ResourceMetrics, []metadata.MD) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.ResourceSpans(nil), r.spans...),
		append([]*metricpb.ResourceMetrics(nil), r.metrics...),
		append([]metadata.MD(nil), r.headers...)
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// attrs flattens OTLP attributes to strings.
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		out[kv.Key] = kv.Value.GetStringValue()
	}
	return out
}
