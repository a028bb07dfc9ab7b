package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/caller"
	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook"
)

// Body limits: a push is at most event.MaxPushBytes, as Pub/Sub sends it;
// an endpoint's body is small; the other routes take none, and
// maxControlBody leaves room for the small one a scheduler may send.
const (
	maxPushBody     = event.MaxPushBytes
	maxEndpointBody = 16 << 10
	maxControlBody  = 4 << 10
)

// maxSweepTime bounds one POST /v1/sweep, well inside a Cloud Scheduler
// attempt deadline.
const maxSweepTime = 50 * time.Second

// server serves the actuator's API.
type server struct {
	d          *webhook.Deliverer
	publisher  engine.Publisher
	topics     topic.Names
	log        *slog.Logger
	callers    []string
	inlineWait time.Duration
}

// handler returns the routes. Every body is capped before it is read: at
// maxPushBody for everything, and at its route's own limit in the handler.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /v1/actions/push", s.push)
	mux.HandleFunc("POST /v1/sweep", s.sweep)
	mux.HandleFunc("GET /v1/endpoints", s.listEndpoints)
	mux.HandleFunc("PUT /v1/endpoints/{id}", s.putEndpoint)
	mux.HandleFunc("GET /v1/endpoints/{id}", s.getEndpoint)
	mux.HandleFunc("DELETE /v1/endpoints/{id}", s.deleteEndpoint)
	mux.HandleFunc("POST /v1/endpoints/{id}/replay", s.replay)
	mux.HandleFunc("GET /v1/actions/{id}/attempts", s.attempts)
	mux.HandleFunc("POST /v1/actions/{id}/redeliver", s.redeliver)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, fault.Errorf(fault.NotFound, "actuator", "no route for %s %s", httpjson.Quote(r.Method), httpjson.Quote(r.URL.Path)))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxPushBody)
		mux.ServeHTTP(w, r)
	})
}

// readBody reads a body capped at limit: an Invalid error (answered 413)
// when it is larger.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	const op = "actuator.readBody"
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &fault.Error{Code: fault.Invalid, Op: op, Message: "request body exceeds " + itoa(limit) + " bytes", Err: tooBig}
	case err != nil:
		return nil, fault.Errorf(fault.Invalid, op, "reading the request body: %s", httpjson.Truncate(err.Error(), httpjson.MaxEcho))
	}
	return b, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// query checks a request's query: only the allowed parameters, each at
// most once.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	const op = "actuator.query"
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, op, "query: %s", httpjson.Truncate(err.Error(), httpjson.MaxEcho))
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			return nil, fault.Errorf(fault.Invalid, op, "unknown query parameter %s (want %s)", httpjson.Quote(k), strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, fault.Errorf(fault.Invalid, op, "query parameter %s is given %d times", httpjson.Quote(k), len(vs))
		}
	}
	return q, nil
}

// statusWriter writes its status instead of the one asked for.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader writes the writer's status.
func (s statusWriter) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.status) }

// pushResult is the answer to a push delivery.
type pushResult struct {
	// Status is "accepted" or "dead_lettered".
	Status    string   `json:"status"`
	ActionID  string   `json:"action_id,omitempty"`
	Duplicate bool     `json:"duplicate,omitempty"`
	Queued    []string `json:"queued,omitempty"`
	Reason    string   `json:"reason,omitempty"`
}

// push is the push endpoint of the actions subscription. The action is
// recorded with its deliveries before the answer, so an answer of 200 is
// an acknowledgement that loses nothing; the attempts it starts run for at
// most the inline wait before the answer and go on in the background. A
// message that is no action of Autonomics (a malformed push body, an
// unknown kind, a source other than a governor's) is copied to the
// dead-letter topic with the reason and acknowledged; only a storage or
// dead-letter failure is answered 503, so that Pub/Sub redelivers.
func (s *server) push(w http.ResponseWriter, r *http.Request) {
	const op = "actuator.push"
	ctx := r.Context()
	if len(s.callers) > 0 && !slices.Contains(s.callers, caller.Email(r)) {
		httpjson.Error(statusWriter{ResponseWriter: w, status: http.StatusForbidden},
			fault.Errorf(fault.Invalid, op, "only the push identity of the actions subscription may push actions"))
		return
	}
	body, err := readBody(w, r, maxPushBody)
	var m event.Message
	if err == nil {
		m, err = event.ParsePush(body)
	}
	var a webhook.Action
	if err == nil {
		a, err = webhook.DecodeAction(m, s.d.Kinds())
	}
	if err != nil {
		s.deadLetter(w, r, m, err)
		return
	}
	acc, err := s.d.Accept(ctx, a)
	if err != nil {
		s.log.WarnContext(ctx, "action not recorded; Pub/Sub will redeliver", "action_id", a.ID, "error", err.Error())
		httpjson.Error(w, fault.Wrap(fault.Unavailable, op, err))
		return
	}
	batch := s.d.Dispatch(acc.Heads...)
	wait, cancel := context.WithTimeout(ctx, s.inlineWait)
	batch.Wait(wait)
	cancel()
	s.log.InfoContext(ctx, "action accepted", "action_id", a.ID, "kind", a.Kind, "domain", a.Domain, "tenant", a.Tenant,
		"duplicate", acc.Duplicate, "queued", strings.Join(acc.Queued, ","))
	httpjson.Write(w, http.StatusOK, pushResult{Status: "accepted", ActionID: a.ID, Duplicate: acc.Duplicate, Queued: acc.Queued})
}

// deadLetter copies a message that is no action to the dead-letter topic
// and acknowledges it.
func (s *server) deadLetter(w http.ResponseWriter, r *http.Request, m event.Message, cause error) {
	reason := httpjson.Truncate(fault.ErrorMessage(cause), 1000)
	s.log.ErrorContext(r.Context(), "message on the actions topic refused and dead-lettered", "message_id", httpjson.Truncate(m.ID, httpjson.MaxEcho), "error", reason)
	if err := s.publisher.Publish(r.Context(), deadletter.New(s.topics.DeadLetter(), m, webhook.DeadLetterDomain, fault.Invalid, reason)); err != nil {
		httpjson.Error(w, fault.Wrap(fault.Unavailable, "actuator.deadLetter", err))
		return
	}
	httpjson.Write(w, http.StatusOK, pushResult{Status: "dead_lettered", Reason: reason})
}

// sweep reports unreported failures and attempts the due deliveries, for
// Cloud Scheduler (every minute). Its body, if any, is ignored; one over
// maxControlBody is refused.
func (s *server) sweep(w http.ResponseWriter, r *http.Request) {
	if _, err := readBody(w, r, maxControlBody); err != nil {
		httpjson.Error(w, err)
		return
	}
	if _, err := query(r, "limit"); err != nil {
		httpjson.Error(w, err)
		return
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, ok := atoi(v)
		if !ok || n < 1 || n > webhook.DefaultSweepLimit {
			httpjson.Error(w, fault.Errorf(fault.Invalid, "actuator.sweep", "limit %s: want 1 to %d", httpjson.Quote(v), webhook.DefaultSweepLimit))
			return
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), maxSweepTime)
	defer cancel()
	res, err := s.d.Sweep(ctx, limit)
	if err != nil {
		s.log.ErrorContext(r.Context(), "sweep failed", "error", err.Error())
		httpjson.Error(w, fault.Wrap(fault.Unavailable, "actuator.sweep", err))
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

// endpointBody is the body of PUT /v1/endpoints/{id}: secrets (one, or two
// while rotating) or secret (one), each "whsec_<base64>" or a Secret
// Manager version name.
type endpointBody struct {
	URL            string   `json:"url"`
	Kinds          []string `json:"kinds"`
	Secret         string   `json:"secret"`
	Secrets        []string `json:"secrets"`
	Disabled       bool     `json:"disabled"`
	TimeoutSeconds int      `json:"timeout_seconds"`
	MaxInFlight    int      `json:"max_in_flight"`
}

// endpointMembers are the members of an endpoint body, spelled exactly
// (encoding/json alone would match them regardless of case).
var endpointMembers = []string{"url", "kinds", "secret", "secrets", "disabled", "timeout_seconds", "max_in_flight"}

// UnmarshalJSON decodes the body refusing members not spelled exactly.
func (b *endpointBody) UnmarshalJSON(raw []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return errors.New("the body must be a JSON object")
	}
	for k := range obj {
		if !slices.Contains(endpointMembers, k) {
			return errors.New("unknown field " + httpjson.Quote(k) + " (want " + strings.Join(endpointMembers, ", ") + ")")
		}
	}
	type plain endpointBody
	return json.Unmarshal(raw, (*plain)(b))
}

// endpointView is an endpoint as the API shows it: its secrets redacted.
type endpointView struct {
	ID             string               `json:"id"`
	URL            string               `json:"url"`
	Kinds          []string             `json:"kinds"`
	Secrets        []webhook.SecretView `json:"secrets"`
	Disabled       bool                 `json:"disabled"`
	DisabledReason string               `json:"disabled_reason,omitempty"`
	TimeoutSeconds float64              `json:"timeout_seconds"`
	MaxInFlight    int                  `json:"max_in_flight"`
	CreatedAt      string               `json:"created_at"`
	UpdatedAt      string               `json:"updated_at"`
}

func viewOf(e webhook.Endpoint) endpointView {
	to := e.Timeout
	if to == 0 {
		to = webhook.DefaultTimeout
	}
	inflight := e.MaxInFlight
	if inflight == 0 {
		inflight = webhook.DefaultInFlight
	}
	return endpointView{
		ID: e.ID, URL: e.URL, Kinds: e.Kinds, Secrets: e.SecretViews(), Disabled: e.Disabled, DisabledReason: e.DisabledReason,
		TimeoutSeconds: to.Seconds(), MaxInFlight: inflight, CreatedAt: rfc(e.CreatedAt), UpdatedAt: rfc(e.UpdatedAt),
	}
}

func rfc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (s *server) putEndpoint(w http.ResponseWriter, r *http.Request) {
	const op = "actuator.putEndpoint"
	id := r.PathValue("id")
	if err := webhook.ValidEndpointID(id); err != nil {
		httpjson.Error(w, err)
		return
	}
	var b endpointBody
	if err := httpjson.Decode(w, r, maxEndpointBody, &b); err != nil {
		httpjson.Error(w, err)
		return
	}
	secrets := b.Secrets
	switch {
	case b.Secret != "" && len(b.Secrets) > 0:
		httpjson.Error(w, fault.Errorf(fault.Invalid, op, "give secret or secrets, not both"))
		return
	case b.Secret != "":
		secrets = []string{b.Secret}
	}
	if b.TimeoutSeconds < 0 || b.TimeoutSeconds > int(webhook.MaxTimeout/time.Second) {
		httpjson.Error(w, fault.Errorf(fault.Invalid, op, "timeout_seconds: 1 to %d", int(webhook.MaxTimeout/time.Second)))
		return
	}
	e := webhook.Endpoint{
		ID: id, URL: b.URL, Kinds: b.Kinds, Secrets: secrets, Disabled: b.Disabled,
		Timeout: time.Duration(b.TimeoutSeconds) * time.Second, MaxInFlight: b.MaxInFlight,
	}
	saved, created, err := s.d.PutEndpoint(r.Context(), e)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.log.InfoContext(r.Context(), "endpoint saved", "endpoint", id, "created", created, "url", saved.URL, "kinds", strings.Join(saved.Kinds, ","), "disabled", saved.Disabled)
	httpjson.Write(w, status, viewOf(saved))
}

func (s *server) getEndpoint(w http.ResponseWriter, r *http.Request) {
	e, err := s.d.Endpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, viewOf(e))
}

func (s *server) listEndpoints(w http.ResponseWriter, r *http.Request) {
	eps, err := s.d.Endpoints(r.Context())
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	out := make([]endpointView, 0, len(eps))
	for _, e := range eps {
		out = append(out, viewOf(e))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"endpoints": out})
}

func (s *server) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := s.d.DeleteEndpoint(r.Context(), r.PathValue("id")); err != nil {
		httpjson.Error(w, err)
		return
	}
	s.log.InfoContext(r.Context(), "endpoint deleted", "endpoint", r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
}

// replay queues again the actions of a window of decision times to an
// endpoint: from and to (RFC 3339, required), after (an action id, to
// continue a replay that stopped at its limit) and limit.
func (s *server) replay(w http.ResponseWriter, r *http.Request) {
	const op = "actuator.replay"
	if _, err := readBody(w, r, maxControlBody); err != nil {
		httpjson.Error(w, err)
		return
	}
	q, err := query(r, "from", "to", "after", "limit")
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	var from, to time.Time
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		v := q.Get(p.name)
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			httpjson.Error(w, fault.Errorf(fault.Invalid, op, "%s %s: want an RFC 3339 time", p.name, httpjson.Quote(v)))
			return
		}
		*p.dst = t.UTC()
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, ok := atoi(v)
		if !ok || n < 1 || n > webhook.MaxReplayLimit {
			httpjson.Error(w, fault.Errorf(fault.Invalid, op, "limit %s: want 1 to %d", httpjson.Quote(v), webhook.MaxReplayLimit))
			return
		}
		limit = n
	}
	res, batch, err := s.d.Replay(r.Context(), r.PathValue("id"), from, to, q.Get("after"), limit)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	s.wait(r.Context(), batch)
	s.log.InfoContext(r.Context(), "replay", "endpoint", r.PathValue("id"), "from", rfc(from), "to", rfc(to), "queued", res.Queued)
	httpjson.Write(w, http.StatusOK, res)
}

// wait waits for a batch of attempts at most the inline wait.
func (s *server) wait(ctx context.Context, b *webhook.Batch) {
	wait, cancel := context.WithTimeout(ctx, s.inlineWait)
	defer cancel()
	b.Wait(wait)
}

// redeliver queues an action again, with the same webhook-id: to the
// endpoint given (endpoint=ID) or to every enabled endpoint of its kind.
func (s *server) redeliver(w http.ResponseWriter, r *http.Request) {
	if _, err := readBody(w, r, maxControlBody); err != nil {
		httpjson.Error(w, err)
		return
	}
	q, err := query(r, "endpoint")
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	res, batch, err := s.d.Redeliver(r.Context(), r.PathValue("id"), q.Get("endpoint"))
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	s.wait(r.Context(), batch)
	httpjson.Write(w, http.StatusOK, map[string]any{"action_id": r.PathValue("id"), "redelivered": res})
}

// deliveryView is a delivery in GET /v1/actions/{id}/attempts.
type deliveryView struct {
	EndpointID  string `json:"endpoint_id"`
	State       string `json:"state"`
	Held        bool   `json:"held,omitempty"`
	Cycle       int    `json:"cycle"`
	Attempts    int    `json:"attempts"`
	NextAttempt string `json:"next_attempt,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Reported    bool   `json:"reported,omitempty"`
	DeliveredAt string `json:"delivered_at,omitempty"`
}

// attemptView is an attempt in GET /v1/actions/{id}/attempts.
type attemptView struct {
	EndpointID string  `json:"endpoint_id"`
	N          int     `json:"n"`
	Cycle      int     `json:"cycle"`
	URL        string  `json:"url"`
	StartedAt  string  `json:"started_at"`
	LatencyMS  float64 `json:"latency_ms"`
	Outcome    string  `json:"outcome"`
	Status     int     `json:"status,omitempty"`
	Error      string  `json:"error,omitempty"`
	Response   string  `json:"response,omitempty"`
}

func (s *server) attempts(w http.ResponseWriter, r *http.Request) {
	h, err := s.d.History(r.Context(), r.PathValue("id"))
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	dels := make([]deliveryView, 0, len(h.Deliveries))
	for _, d := range h.Deliveries {
		v := deliveryView{
			EndpointID: d.EndpointID, State: string(d.State), Held: d.Held, Cycle: d.Cycle, Attempts: d.Attempts,
			Reason: d.Reason, Reported: d.Reported, DeliveredAt: rfc(d.DeliveredAt),
		}
		if d.State == webhook.Pending {
			v.NextAttempt = rfc(d.Due)
		}
		dels = append(dels, v)
	}
	atts := make([]attemptView, 0, len(h.Attempts))
	for _, a := range h.Attempts {
		atts = append(atts, attemptView{
			EndpointID: a.EndpointID, N: a.N, Cycle: a.Cycle, URL: a.URL, StartedAt: rfc(a.StartedAt),
			LatencyMS: float64(a.Latency.Microseconds()) / 1000, Outcome: string(a.Outcome), Status: a.Status,
			Error: a.Error, Response: a.Response,
		})
	}
	a := h.Action
	httpjson.Write(w, http.StatusOK, map[string]any{
		"action": map[string]any{
			"id": a.ID, "kind": a.Kind, "domain": a.Domain, "tenant_id": a.Tenant, "subject": a.Subject,
			"time": rfc(a.Time), "received_at": rfc(a.ReceivedAt),
		},
		"deliveries": dels,
		"attempts":   atts,
	})
}
