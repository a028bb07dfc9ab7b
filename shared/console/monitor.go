package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// Monitor is the monitor's alerts and silences; MonitorClient reaches
// them over the monitor's HTTP API.
type Monitor interface {
	// Alerts lists the alerts, of one state (pending, firing, resolved)
	// unless state is "".
	Alerts(ctx context.Context, state string) ([]Alert, error)
	Silences(ctx context.Context) ([]Silence, error)
	// PutSilence creates or replaces the silence s.ID.
	PutSilence(ctx context.Context, s SilenceSpec) (Silence, error)
	// ExpireSilence deletes the silence id.
	ExpireSilence(ctx context.Context, id string) error
}

// Alert is an alert as the monitor's GET /v1/alerts lists it.
type Alert struct {
	Fingerprint     string            `json:"fingerprint"`
	Policy          string            `json:"policy"`
	Severity        string            `json:"severity"`
	Labels          map[string]string `json:"labels"`
	State           string            `json:"state"`
	Reason          string            `json:"reason"`
	Value           float64           `json:"value"`
	ActiveAt        string            `json:"active_at"`
	FiredAt         string            `json:"fired_at,omitempty"`
	ResolvedAt      string            `json:"resolved_at,omitempty"`
	LastNotifiedAt  string            `json:"last_notified_at,omitempty"`
	KeepFiringSince string            `json:"keep_firing_since,omitempty"`
	Silenced        bool              `json:"silenced"`
	Unsent          int               `json:"unsent_notifications"`
}

// Silence is a silence as the monitor serves it.
type Silence struct {
	ID        string            `json:"id,omitempty"`
	Matchers  map[string]string `json:"matchers"`
	StartsAt  string            `json:"starts_at,omitempty"`
	EndsAt    string            `json:"ends_at"`
	Comment   string            `json:"comment,omitempty"`
	CreatedAt string            `json:"created_at,omitempty"`
	Active    bool              `json:"active"`
}

// SilenceSpec is a silence to create: its id ("" for a new random one),
// label matchers, optional start (now when empty), end and comment, times
// in RFC 3339.
type SilenceSpec struct {
	ID       string            `json:"id"`
	Matchers map[string]string `json:"matchers"`
	StartsAt string            `json:"starts_at"`
	EndsAt   string            `json:"ends_at"`
	Comment  string            `json:"comment"`
}

// MaxMonitorResponse bounds what MonitorClient reads of a response.
const MaxMonitorResponse = 8 << 20

// MonitorClient is a Monitor over the monitor's HTTP API.
type MonitorClient struct {
	base *url.URL
	hc   *http.Client
}

var _ Monitor = (*MonitorClient)(nil)

// NewMonitorClient returns a client of the monitor at baseURL (e.g.
// http://127.0.0.1:8794). hc authenticates the calls in production (an
// ID-token client); a client with a 30 s timeout when nil.
func NewMonitorClient(baseURL string, hc *http.Client) (*MonitorClient, error) {
	const op = "console.NewMonitorClient"
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fault.Errorf(fault.Invalid, op, "monitor URL %s: want http(s)://host[:port]", quote(baseURL))
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &MonitorClient{base: u, hc: hc}, nil
}

// do calls the monitor and decodes a JSON answer into out (when not nil).
func (m *MonitorClient) do(ctx context.Context, method, path string, body, out any) error {
	op := "console.monitor " + method + " " + path
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fault.Wrap(fault.Internal, op, err)
		}
		rd = bytes.NewReader(b)
	}
	u := *m.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := m.hc.Do(req)
	if err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxMonitorResponse+1))
	if err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	if len(data) > MaxMonitorResponse {
		return fault.Errorf(fault.Unavailable, op, "the monitor's answer exceeds %d bytes", MaxMonitorResponse)
	}
	if resp.StatusCode >= 300 {
		return monitorError(op, resp.StatusCode, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fault.Errorf(fault.Unavailable, op, "the monitor's answer does not decode: %s", httpjson.Truncate(err.Error(), 200))
	}
	return nil
}

// monitorError maps a monitor error answer to a coded error, keeping the
// monitor's message for what the caller did wrong.
func monitorError(op string, status int, data []byte) error {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(data, &e)
	msg := httpjson.Truncate(e.Error.Message, 1000)
	if msg == "" {
		msg = fmt.Sprintf("the monitor answered %d", status)
	}
	switch {
	case status == http.StatusNotFound:
		return fault.Errorf(fault.NotFound, op, "%s", msg)
	case status == http.StatusConflict:
		return fault.Errorf(fault.Conflict, op, "%s", msg)
	case status >= 400 && status < 500 && status != http.StatusTooManyRequests && status != http.StatusUnauthorized && status != http.StatusForbidden:
		return fault.Errorf(fault.Invalid, op, "%s", msg)
	}
	return fault.Errorf(fault.Unavailable, op, "the monitor answered %d: %s", status, msg)
}

// Alerts lists the monitor's alerts.
func (m *MonitorClient) Alerts(ctx context.Context, state string) ([]Alert, error) {
	path := "/v1/alerts"
	if state != "" {
		path += "?state=" + url.QueryEscape(state)
	}
	var out struct {
		Alerts []Alert `json:"alerts"`
	}
	if err := m.doQuery(ctx, path, &out); err != nil {
		return nil, err
	}
	return out.Alerts, nil
}

// doQuery is a GET of a path that may carry a query string.
func (m *MonitorClient) doQuery(ctx context.Context, pathQuery string, out any) error {
	p, q, _ := strings.Cut(pathQuery, "?")
	mc := *m
	b := *m.base
	b.RawQuery = q
	mc.base = &b
	return mc.do(ctx, http.MethodGet, p, nil, out)
}

// Silences lists the monitor's silences.
func (m *MonitorClient) Silences(ctx context.Context) ([]Silence, error) {
	var out struct {
		Silences []Silence `json:"silences"`
	}
	if err := m.do(ctx, http.MethodGet, "/v1/silences", nil, &out); err != nil {
		return nil, err
	}
	return out.Silences, nil
}

// PutSilence saves a silence.
func (m *MonitorClient) PutSilence(ctx context.Context, s SilenceSpec) (Silence, error) {
	if err := alerting.ValidName("silence id", s.ID); err != nil {
		return Silence{}, err
	}
	body := map[string]any{"matchers": s.Matchers, "ends_at": s.EndsAt}
	if s.StartsAt != "" {
		body["starts_at"] = s.StartsAt
	}
	if s.Comment != "" {
		body["comment"] = s.Comment
	}
	var out Silence
	err := m.do(ctx, http.MethodPut, "/v1/silences/"+url.PathEscape(s.ID), body, &out)
	return out, err
}

// ExpireSilence deletes a silence.
func (m *MonitorClient) ExpireSilence(ctx context.Context, id string) error {
	if err := alerting.ValidName("silence id", id); err != nil {
		return err
	}
	return m.do(ctx, http.MethodDelete, "/v1/silences/"+url.PathEscape(id), nil, nil)
}

// errNoMonitor is the error of the alert routes without a monitor.
var errNoMonitor = errors.New("this console has no monitor")
