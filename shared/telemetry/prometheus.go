package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
)

// MetricsPath is the path of the metrics endpoint Options.MetricsAddr
// opens.
const MetricsPath = "/metrics"

// Bounds of the metrics endpoint.
const (
	// metricsMaxHeaderBytes bounds the request headers of a scrape.
	metricsMaxHeaderBytes = 8 << 10
	// metricsInFlight bounds the scrapes answered at once; more get 503.
	metricsInFlight = 4
	// metricsTimeout bounds the gathering of one scrape; a slower one
	// gets 503.
	metricsTimeout = 10 * time.Second
)

// prometheusReader returns a metric reader that exposes the metrics on a
// registry of its own, and the handler serving that registry at
// MetricsPath. Instrument names become Prometheus names with every
// character outside [a-zA-Z0-9_:] turned into an underscore and no unit
// or _total suffix (autonomics.decisions is autonomics_decisions), as
// close as a Prometheus 2 server allows to the names the Telemetry API
// keeps; histograms add _bucket, _sum and _count.
func prometheusReader() (*otelprom.Exporter, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: metricsInFlight,
		Timeout:             metricsTimeout,
	})
	return exp, scrapeOnly(h), nil
}

// scrapeOnly answers GET and HEAD of MetricsPath without a body with h;
// any other path is 404, any other method 405, a request with a body 413.
func scrapeOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != MetricsPath:
			http.NotFound(w, r)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: a scrape is a GET", http.StatusMethodNotAllowed)
		case r.ContentLength != 0:
			http.Error(w, "a scrape has no body", http.StatusRequestEntityTooLarge)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// metricsServer serves handler on l, bounded: headers of at most
// metricsMaxHeaderBytes read within seconds, answers written within the
// scrape timeout.
func metricsServer(l net.Listener, handler http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      metricsTimeout + 5*time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    metricsMaxHeaderBytes,
	}
	go func() { _ = srv.Serve(l) }()
	return srv
}

// listenMetrics opens the listener of Options.MetricsAddr.
func listenMetrics(addr string) (net.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("telemetry: metrics address %q: want host:port, such as 127.0.0.1:9464", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("telemetry: metrics endpoint: %w", err)
	}
	return l, nil
}

// MetricsAddr returns the address the metrics endpoint listens on (with
// the port chosen when Options.MetricsAddr asked for port 0), or "" when
// there is none.
func (t *Telemetry) MetricsAddr() string {
	if t.metricsListener == nil {
		return ""
	}
	return t.metricsListener.Addr().String()
}

// stopMetrics stops the metrics endpoint, if any, letting the scrapes in
// progress finish until ctx ends. It closes the listener itself: the
// server's Serve may not have started yet, and Shutdown closes only the
// listeners Serve took, so the port would stay open until it did.
func (t *Telemetry) stopMetrics(ctx context.Context) error {
	if t.metricsServer == nil {
		return nil
	}
	err := t.metricsServer.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = errors.Join(err, t.metricsServer.Close())
	}
	if cerr := t.metricsListener.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	return err
}
