// Package prom connects the monitor to a metrics engine that speaks the
// Prometheus HTTP API: a Prometheus server locally, Google Cloud Managed
// Service for Prometheus in production. Querier answers the PromQL
// instant queries of alert policies (alerting.Querier) through
// github.com/prometheus/client_golang/api; Writer forwards samples with
// the Prometheus remote write protocol (1.0: a snappy-compressed
// prometheus.WriteRequest), which a Prometheus server receives with
// --web.enable-remote-write-receiver.
//
// Both bound what they read from the engine and tell a refused request
// (fault.Invalid) from an engine that cannot answer now
// (fault.Unavailable, retried by the caller's next cycle).
package prom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
)

// ManagedURL returns the Prometheus HTTP API base URL of Managed Service
// for Prometheus in project.
func ManagedURL(project string) string {
	return "https://monitoring.googleapis.com/v1/projects/" + url.PathEscape(project) + "/location/global/prometheus"
}

// Defaults of Options.
const (
	// DefaultMaxResponseBytes bounds one answer of the engine.
	DefaultMaxResponseBytes = 32 << 20
	// DefaultTimeout bounds one request to the engine.
	DefaultTimeout = 15 * time.Second
)

// Options configure a Querier.
type Options struct {
	// URL is the base URL of the Prometheus HTTP API (the part before
	// /api/v1/query), such as http://127.0.0.1:9090 or ManagedURL(p).
	URL string
	// Client sends the requests; it carries the credentials (for Managed
	// Service for Prometheus, golang.org/x/oauth2/google's default
	// client). Nil means a client of its own with Timeout.
	Client *http.Client
	// Timeout bounds one request when Client is nil; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes bounds the body of one answer; a larger one is an
	// Unavailable error marked alerting.ErrAnswerTooLarge. 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Querier answers PromQL instant queries over the Prometheus HTTP API.
type Querier struct {
	api v1.API
	url string
}

var _ alerting.Querier = (*Querier)(nil)

// New returns a Querier of the engine at o.URL. It does not connect.
func New(o Options) (*Querier, error) {
	const op = "prom.New"
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fault.Errorf(fault.Invalid, op, "engine URL %q: want an http or https URL", o.URL)
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	base := o.Client
	if base == nil {
		base = &http.Client{Timeout: o.Timeout}
	}
	client := *base
	rt := client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	client.Transport = limitTransport{next: rt, limit: o.MaxResponseBytes}
	c, err := api.NewClient(api.Config{Address: strings.TrimSuffix(o.URL, "/"), Client: &client})
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, op, err)
	}
	return &Querier{api: v1.NewAPI(c), url: o.URL}, nil
}

// Query returns the instant vector expr evaluates to at time at. A scalar
// answer is one element without labels; a range vector or a string is an
// Invalid error, as is an expression the engine refuses (bad_data). Every
// other failure is Unavailable.
func (q *Querier) Query(ctx context.Context, expr string, at time.Time) ([]alerting.Element, error) {
	const op = "prom.Query"
	val, _, _, err := q.api.Query(ctx, expr, at)
	if err != nil {
		return nil, classify(op, err)
	}
	switch v := val.(type) {
	case model.Vector:
		out := make([]alerting.Element, 0, len(v))
		for _, s := range v {
			out = append(out, alerting.Element{Labels: labelsOf(s.Metric), Value: float64(s.Value)})
		}
		return out, nil
	case *model.Scalar:
		if math.IsNaN(float64(v.Value)) {
			return nil, nil
		}
		return []alerting.Element{{Value: float64(v.Value)}}, nil
	case nil:
		return nil, nil
	}
	return nil, fault.Errorf(fault.Invalid, op, "expression %s returns a %s, want an instant vector", quote(expr), val.Type())
}

// Ping asks the engine a trivial query, for health checks.
func (q *Querier) Ping(ctx context.Context) error {
	_, err := q.Query(ctx, "vector(1)", time.Now())
	return err
}

// Check asks the engine to evaluate expr once, now: an expression it
// refuses is an Invalid error naming the engine's reason. The monitor
// checks a PromQL policy so before saving it.
func (q *Querier) Check(ctx context.Context, expr string) error {
	_, err := q.Query(ctx, expr, time.Now())
	return err
}

// labelsOf returns the labels of a series without __name__; nil when
// none is left.
func labelsOf(m model.Metric) alerting.Labels {
	if len(m) == 0 || len(m) == 1 && m[model.MetricNameLabel] != "" {
		return nil
	}
	l := make(alerting.Labels, len(m))
	for k, v := range m {
		if k == model.MetricNameLabel {
			continue
		}
		l[string(k)] = string(v)
	}
	return l
}

// classify maps an error of the Prometheus API client to a governor code:
// bad_data (an expression the engine refuses) is Invalid, the rest
// Unavailable; an answer over the response limit stays
// alerting.ErrAnswerTooLarge.
func classify(op string, err error) error {
	if errors.Is(err, alerting.ErrAnswerTooLarge) {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	var ae *v1.Error
	if errors.As(err, &ae) && ae.Type == v1.ErrBadData {
		return fault.Errorf(fault.Invalid, op, "the metrics engine refuses the expression: %s", truncate(ae.Msg, 300))
	}
	return fault.Wrap(fault.Unavailable, op, errors.New(truncate(err.Error(), 500)))
}

// limitTransport caps the body of every answer.
type limitTransport struct {
	next  http.RoundTripper
	limit int64
}

// RoundTrip sends the request and caps the answer's body.
func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.limit {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, resp.ContentLength, t.limit)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.limit}
	return resp, nil
}

// limitedBody fails a read past its limit instead of truncating quietly.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

// errTooLarge is the error of an answer over the limit.
var errTooLarge = alerting.ErrAnswerTooLarge

// Read reads at most the bytes left, then fails if more follow.
func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

// Close closes the body.
func (b *limitedBody) Close() error { return b.rc.Close() }

// quote quotes s for an error message, truncated.
func quote(s string) string { return fmt.Sprintf("%q", truncate(s, 64)) }

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
