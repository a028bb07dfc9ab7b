package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// withEndpoint sets up telemetry with exporter and a metrics endpoint on
// a free port, and records a counter and a histogram.
func withEndpoint(t *testing.T, exporter string) *Telemetry {
	t.Helper()
	tel, err := Setup(t.Context(), Options{Exporter: exporter, Service: "monitor", MetricsAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Setup = %v", err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	m := tel.Meter.Meter("test")
	c, _ := m.Int64Counter("autonomics.test.requests")
	c.Add(t.Context(), 3, metric.WithAttributes(attribute.String("tenant", "acme")))
	h, _ := m.Float64Histogram("autonomics.test.latency", metric.WithUnit("ms"))
	h.Record(t.Context(), 5)
	return tel
}

func scrape(t *testing.T, method, addr, path string, body io.Reader, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s = %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

func TestMetricsEndpointServesPrometheusText(t *testing.T) {
	for _, exporter := range []string{ExporterNone, ExporterMemory} {
		t.Run(exporter, func(t *testing.T) {
			tel := withEndpoint(t, exporter)
			if tel.MetricsHandler == nil || tel.MetricsAddr() == "" {
				t.Fatalf("MetricsHandler, MetricsAddr = %v, %q; want both set", tel.MetricsHandler, tel.MetricsAddr())
			}
			code, body := scrape(t, http.MethodGet, tel.MetricsAddr(), MetricsPath, nil, nil)
			if code != http.StatusOK {
				t.Fatalf("GET /metrics = %d %s", code, body)
			}
			for _, want := range []string{
				// Dots become underscores; no unit or _total suffix.
				`autonomics_test_requests{otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="",tenant="acme"} 3`,
				`autonomics_test_latency_bucket{`,
				`autonomics_test_latency_count{`,
				`target_info{`,
				`service_name="monitor"`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("scrape lacks %s:\n%s", want, body)
				}
			}
			if exporter == ExporterMemory {
				var rm metricdata.ResourceMetrics
				if err := tel.Metrics.Collect(t.Context(), &rm); err != nil || len(rm.ScopeMetrics) == 0 {
					t.Errorf("memory reader alongside the endpoint: Collect = %v, %d scopes", err, len(rm.ScopeMetrics))
				}
			}
		})
	}
}

func TestMetricsEndpointRefusesAnythingButAScrape(t *testing.T) {
	tel := withEndpoint(t, ExporterNone)
	tests := []struct {
		name   string
		method string
		path   string
		body   io.Reader
		want   int
	}{
		{"post", http.MethodPost, MetricsPath, nil, http.StatusMethodNotAllowed},
		{"delete", http.MethodDelete, MetricsPath, nil, http.StatusMethodNotAllowed},
		{"other path", http.MethodGet, "/debug/pprof/", nil, http.StatusNotFound},
		{"root", http.MethodGet, "/", nil, http.StatusNotFound},
		{"body", http.MethodGet, MetricsPath, strings.NewReader(strings.Repeat("x", 1<<16)), http.StatusRequestEntityTooLarge},
		{"head", http.MethodHead, MetricsPath, nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := scrape(t, tt.method, tel.MetricsAddr(), tt.path, tt.body, nil); code != tt.want {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, code, body, tt.want)
			}
		})
	}
}

func TestOversizedScrapeHeadersAreRefused(t *testing.T) {
	tel := withEndpoint(t, ExporterNone)
	h := http.Header{"X-Padding": {strings.Repeat("x", 64<<10)}}
	if code, _ := scrape(t, http.MethodGet, tel.MetricsAddr(), MetricsPath, nil, h); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("GET /metrics with 64 kB of headers = %d, want 431", code)
	}
}

func TestMetricsAddrInUseIsRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, addr := range []string{l.Addr().String(), "localhost", "127.0.0.1:http-metrics-x"} {
		if tel, err := Setup(t.Context(), Options{Exporter: ExporterNone, MetricsAddr: addr}); err == nil {
			tel.Shutdown(context.Background())
			t.Errorf("Setup(MetricsAddr %q) succeeded, want an error", addr)
		}
	}
}

func TestUnknownExporterReleasesTheMetricsAddr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := Setup(t.Context(), Options{Exporter: "jaeger", MetricsAddr: addr}); err == nil {
		t.Fatal("Setup(jaeger) succeeded")
	}
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("after a refused Setup, %s is still taken: %v", addr, err)
	}
	l.Close()
}

func TestShutdownClosesTheMetricsEndpoint(t *testing.T) {
	tel := withEndpoint(t, ExporterNone)
	addr := tel.MetricsAddr()
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("metrics endpoint %s still accepts connections after Shutdown", addr)
	}
}

func TestNoMetricsAddrNoEndpoint(t *testing.T) {
	tel, err := Setup(t.Context(), Options{Exporter: ExporterMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	if tel.MetricsHandler != nil || tel.MetricsAddr() != "" {
		t.Errorf("without MetricsAddr: handler %v, addr %q; want none", tel.MetricsHandler, tel.MetricsAddr())
	}
}

// TestLocalPrometheusScrapesTheEndpoint runs a real Prometheus server
// (PROMTEST_BINARY or /usr/bin/prometheus) configured as the package
// documentation says and queries back what it scraped.
func TestLocalPrometheusScrapesTheEndpoint(t *testing.T) {
	bin := os.Getenv("PROMTEST_BINARY")
	if bin == "" {
		bin = "/usr/bin/prometheus"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Prometheus binary at %s", bin)
		}
		t.Skipf("no Prometheus binary at %s", bin)
	}
	tel := withEndpoint(t, ExporterNone)
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: monitor\n    static_configs:\n      - targets: [%q]\n", tel.MetricsAddr())
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+web, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	q := url.Values{"query": {`autonomics_test_requests{job="monitor",tenant="acme"}`}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		resp, err := http.Get("http://" + web + "/api/v1/query?" + q.Encode())
		if err == nil {
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&got)
			resp.Body.Close()
		}
		if err == nil && len(got.Data.Result) == 1 {
			if v := got.Data.Result[0].Value[1]; v != "3" {
				t.Errorf("scraped value %v, want 3", v)
			}
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("Prometheus did not scrape %s: last answer %+v, %v; log: %s", tel.MetricsAddr(), got, err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
