package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/health"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Handler returns the HTTP API of the monitor. Every body is capped
// before it is read (at the largest limit here, and at its endpoint's own
// limit in the handler), and every error is written by httpjson.Error.
func (s *service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /v1/health", s.getHealth)
	mux.HandleFunc("GET /v1/policies", s.listPolicies)
	mux.HandleFunc("PUT /v1/policies/{name}", s.putPolicy)
	mux.HandleFunc("GET /v1/policies/{name}", s.getPolicy)
	mux.HandleFunc("DELETE /v1/policies/{name}", s.deletePolicy)
	mux.HandleFunc("POST /v1/metrics", s.postMetrics)
	mux.HandleFunc("POST /v1/receipts/push", s.pushReceipt)
	mux.HandleFunc("GET /v1/alerts", s.listAlerts)
	mux.HandleFunc("GET /v1/silences", s.listSilences)
	mux.HandleFunc("PUT /v1/silences/{id}", s.putSilence)
	mux.HandleFunc("GET /v1/silences/{id}", s.getSilence)
	mux.HandleFunc("DELETE /v1/silences/{id}", s.deleteSilence)
	mux.HandleFunc("POST /v1/evaluate", s.postEvaluate)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fault.Errorf(fault.NotFound, "monitor", "no route for %s %s", r.Method, httpjson.Quote(r.URL.Path)))
	})
	limit := max(s.d.cfg.Samples.WithDefaults().MaxBodyBytes, s.d.cfg.Limits.PolicyBody, s.d.cfg.Limits.SilenceBody, s.d.cfg.Limits.PushBody)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		mux.ServeHTTP(w, r)
	})
}

// writeError writes err with httpjson.Error. An error wrapping an
// alerting.Limit is answered 413 when the request itself is too large and
// 429 when a budget is full for now (or too many requests are being
// decoded); the body is the usual {"error": {"code", "message"}} with code
// "invalid".
func writeError(w http.ResponseWriter, err error) {
	l, ok := alerting.LimitOf(err)
	if !ok {
		httpjson.Error(w, err)
		return
	}
	status := http.StatusTooManyRequests
	if l.TooLarge() {
		status = http.StatusRequestEntityTooLarge
	}
	if l == alerting.LimitConcurrency {
		w.Header().Set("Retry-After", "1")
	}
	httpjson.Error(statusWriter{ResponseWriter: w, status: status}, err)
}

// statusWriter writes its status instead of the one asked for.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader writes the writer's status.
func (s statusWriter) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.status) }

// bodyTooLarge is the error of a body over limit bytes.
func bodyTooLarge(op string, limit int64) error {
	return alerting.LimitError(alerting.LimitBodyBytes, op, "request body exceeds %d bytes", limit)
}

// readBody reads the request body, capped at limit bytes with
// http.MaxBytesReader; a larger body (announced or sent) is an error
// wrapping alerting.LimitBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	const op = "monitor.readBody"
	if r.ContentLength > limit {
		return nil, bodyTooLarge(op, limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var b []byte
	var err error
	if n := r.ContentLength; n >= 0 {
		b = make([]byte, n)
		if _, err = io.ReadFull(body, b); err == nil {
			// Nothing may follow the announced length.
			var extra [1]byte
			if k, _ := body.Read(extra[:]); k > 0 {
				err = fault.Errorf(fault.Invalid, op, "request body is longer than its Content-Length")
			}
		}
	} else {
		b, err = io.ReadAll(body)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, bodyTooLarge(op, limit)
		}
		if fault.ErrorCode(err) == fault.Invalid {
			return nil, err
		}
		return nil, fault.Errorf(fault.Invalid, op, "reading request body: %s", httpjson.Truncate(err.Error(), httpjson.MaxEcho))
	}
	return b, nil
}

// decode decodes the request body into v with httpjson.Decode (capped at
// limit, strict: no duplicate members, unknown fields or trailing data),
// reporting a body over the cap as an error wrapping
// alerting.LimitBodyBytes.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	const op = "monitor.decode"
	if r.ContentLength > limit {
		return bodyTooLarge(op, limit)
	}
	counted := &countingBody{ReadCloser: r.Body}
	r.Body = counted
	if err := httpjson.Decode(w, r, limit, v); err != nil {
		if counted.n > limit {
			return bodyTooLarge(op, limit)
		}
		return err
	}
	return nil
}

// countingBody counts the bytes read from a body.
type countingBody struct {
	io.ReadCloser
	n int64
}

// Read reads from the body and counts the bytes.
func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// bodyProblem returns the message of a decoding error without the
// decoder's operation name.
func bodyProblem(err error) string {
	if inner := errors.Unwrap(err); inner != nil && fault.ErrorMessage(err) == err.Error() {
		return inner.Error()
	}
	return fault.ErrorMessage(err)
}

// healthView is the body of GET /v1/health.
type healthView struct {
	health.Report
	// Evaluator is this instance's latest evaluation cycle.
	Evaluator alerting.Report `json:"evaluator"`
}

func (s *service) getHealth(w http.ResponseWriter, r *http.Request) {
	rep := s.health.Report(r.Context())
	status := http.StatusOK
	if rep.Status == health.Critical {
		status = http.StatusServiceUnavailable
	}
	httpjson.Write(w, status, healthView{Report: rep, Evaluator: s.runner.LastReport()})
}

func (s *service) putPolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := alerting.ValidName("policy name", name); err != nil {
		writeError(w, err)
		return
	}
	// ParsePolicy decodes strictly itself (duplicate and unknown members,
	// trailing data), with messages that name the member at fault.
	body, err := readBody(w, r, s.d.cfg.Limits.PolicyBody)
	if err != nil {
		writeError(w, err)
		return
	}
	p, err := alerting.ParsePolicy(name, body)
	if err != nil {
		writeError(w, err)
		return
	}
	if p.IsPromQL() {
		// The engine is the judge of its language; an engine that cannot
		// answer now does not keep a policy from being saved.
		if err := s.d.engine.Check(r.Context(), p.Expr); fault.ErrorCode(err) == fault.Invalid {
			writeError(w, fault.Errorf(fault.Invalid, "monitor.putPolicy", "policy %q: expr: %s", name, fault.ErrorMessage(err)))
			return
		} else if err != nil {
			s.d.log.WarnContext(r.Context(), "policy expression not checked: metrics engine unavailable", "policy", name, "error", err.Error())
		}
	}
	created, err := s.d.alerts.PutPolicy(r.Context(), p)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.d.log.InfoContext(r.Context(), "policy saved", "policy", name, "created", created)
	httpjson.Write(w, status, p)
}

func (s *service) getPolicy(w http.ResponseWriter, r *http.Request) {
	p, err := s.d.alerts.Policy(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, p)
}

func (s *service) listPolicies(w http.ResponseWriter, r *http.Request) {
	ps, err := s.d.alerts.Policies(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"policies": ps})
}

func (s *service) deletePolicy(w http.ResponseWriter, r *http.Request) {
	if err := s.d.alerts.DeletePolicy(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	s.d.log.InfoContext(r.Context(), "policy deleted", "policy", r.PathValue("name"))
	w.WriteHeader(http.StatusNoContent)
}

// postMetrics forwards a batch of metric points to the metrics engine.
// The batch is checked whole before anything is forwarded: a malformed
// point, or one naming a metric the monitor derives from receipts, is
// 400; a request over a size limit (body, points, label bytes per series
// or per request) is 413; too many batches at once is 429. Points the
// engine refuses (out of order, say) are 400; an engine that cannot take
// them now is 503, after the forwarder's retries.
func (s *service) postMetrics(w http.ResponseWriter, r *http.Request) {
	const op = "monitor.postMetrics"
	leave, err := s.metricsGate.enter(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	defer leave()
	rules := s.d.cfg.Samples.WithDefaults()
	body, err := readBody(w, r, rules.MaxBodyBytes)
	if err != nil {
		writeError(w, err)
		return
	}
	samples, err := alerting.ParseSamples(body, s.d.clock().UTC(), rules)
	if err != nil {
		writeError(w, err)
		return
	}
	body = nil
	for i := range samples {
		if slices.Contains(alerting.ReceiptMetricNames, samples[i].Name) {
			writeError(w, fault.Errorf(fault.Invalid, op, "metrics[%d]: metric %q is reserved: the monitor derives it from receipts", i, samples[i].Name))
			return
		}
	}
	if err := s.d.intake.Write(r.Context(), samples); err != nil {
		s.d.log.WarnContext(r.Context(), "metrics not forwarded", "source", sourceOf(r), "points", len(samples), "error", err.Error())
		if fault.ErrorCode(err) != fault.Invalid {
			err = fault.Wrap(fault.Unavailable, op, err)
		}
		writeError(w, err)
		return
	}
	httpjson.Write(w, http.StatusAccepted, map[string]int{"accepted": len(samples)})
}

// pushMembers are the members of a Pub/Sub push body, exactly spelled;
// nil means any value (attributes are checked by event.ParsePush).
var pushMembers = members{
	"message": {
		"data": nil, "attributes": nil, "messageId": nil, "message_id": nil,
		"publishTime": nil, "publish_time": nil, "orderingKey": nil, "ordering_key": nil,
	},
	"subscription": nil, "deliveryAttempt": nil,
}

// pushBody is a Pub/Sub push body as httpjson.Decode decodes it: strictly,
// with no member outside the push format (spelled exactly), then parsed by
// event.ParsePush, which refuses duplicate members at every level.
type pushBody struct {
	m event.Message
}

// UnmarshalJSON checks the members and parses the push body.
func (p *pushBody) UnmarshalJSON(b []byte) error {
	if err := pushMembers.check(b, ""); err != nil {
		return err
	}
	m, err := event.ParsePush(b)
	if err != nil {
		return errors.New(fault.ErrorMessage(err))
	}
	p.m = m
	return nil
}

// pushReceipt is the push endpoint of the receipts subscription. A
// malformed message (a body that is not a strict push body, a receipt that
// does not parse strictly, whose hash does not match, or that
// alerting.ValidateReceipt refuses: unknown domain or outcome, fields over
// their bounds) is copied to the dead-letter topic and acknowledged; it
// changes no metric. Only a failure to dead-letter, or too many pushes
// being decoded at once (429), asks Pub/Sub to redeliver.
func (s *service) pushReceipt(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	leave, err := s.pushGate.enter(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	defer leave()
	var push pushBody
	if err := decode(w, r, s.d.cfg.Limits.PushBody, &push); err != nil {
		s.deadLetter(w, r, event.Message{}, fault.Errorf(fault.Invalid, "monitor.pushReceipt", "push body: %s", bodyProblem(err)))
		return
	}
	m := push.m
	rc, err := receipt.Parse(m.Data)
	if err == nil && rc.ComputeHash() != rc.Hash {
		err = fault.Errorf(fault.Invalid, "monitor.pushReceipt", "receipt hash %s does not match its content", httpjson.Quote(rc.Hash))
	}
	if err == nil {
		err = alerting.ValidateReceipt(&rc)
	}
	if err != nil {
		s.deadLetter(w, r, m, err)
		return
	}
	// The deriver's series are bounded (alerting.ReceiptSeriesBound); they
	// reach the engine with the next flush.
	s.receipts.Observe(&rc, m.Attributes, m.PublishTime, s.d.clock().UTC())
	s.flushIfDue(ctx)
	w.WriteHeader(http.StatusNoContent)
}

// deadLetter copies a bad push message to the dead-letter topic and
// acknowledges it.
func (s *service) deadLetter(w http.ResponseWriter, r *http.Request, m event.Message, cause error) {
	s.d.log.ErrorContext(r.Context(), "receipt message refused and dead-lettered", "message_id", m.ID, "error", httpjson.Truncate(cause.Error(), 1000))
	err := s.d.publisher.Publish(r.Context(), deadletter.New(s.d.topics.DeadLetter(), m, "monitor", fault.ErrorCode(cause), fault.ErrorMessage(cause)))
	if err != nil {
		writeError(w, fault.Wrap(fault.Unavailable, "monitor.deadLetter", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// members is the schema of the member names of a JSON object: each name
// maps to the schema of its value when that is an object to check too, or
// to nil.
type members map[string]members

// check returns an error naming the first member of the JSON object b
// (and of the nested objects the schema describes) that the schema does
// not list, spelled exactly. A b that is not an object is left to the
// parser that follows.
func (ms members) check(b []byte, path string) error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil {
		return nil
	}
	for name, v := range obj {
		sub, ok := ms[name]
		if !ok {
			return errors.New("unknown field " + httpjson.Quote(path+name))
		}
		if sub != nil {
			if err := sub.check(v, path+name+"."); err != nil {
				return err
			}
		}
	}
	return nil
}

// alertView is one alert in GET /v1/alerts.
type alertView struct {
	Fingerprint     string            `json:"fingerprint"`
	Policy          string            `json:"policy"`
	Severity        alerting.Severity `json:"severity"`
	Labels          alerting.Labels   `json:"labels"`
	State           alerting.State    `json:"state"`
	Reason          string            `json:"reason"`
	Value           float64           `json:"value"`
	ActiveAt        string            `json:"active_at"`
	FiredAt         string            `json:"fired_at,omitempty"`
	ResolvedAt      string            `json:"resolved_at,omitempty"`
	LastNotifiedAt  string            `json:"last_notified_at,omitempty"`
	KeepFiringSince string            `json:"keep_firing_since,omitempty"`
	Silenced        bool              `json:"silenced"`
	// Unsent counts notifications recorded but not yet published.
	Unsent int `json:"unsent_notifications"`
}

func rfc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (s *service) listAlerts(w http.ResponseWriter, r *http.Request) {
	const op = "monitor.alerts"
	want := r.URL.Query().Get("state")
	switch alerting.State(want) {
	case "", alerting.Pending, alerting.Firing, alerting.Resolved:
	default:
		writeError(w, fault.Errorf(fault.Invalid, op, "state=%s: want pending, firing or resolved", httpjson.Quote(want)))
		return
	}
	alerts, err := s.d.alerts.Alerts(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	silences, err := s.d.alerts.Silences(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	now := s.d.clock()
	out := []alertView{}
	for i := range alerts {
		a := &alerts[i]
		if !a.Listed() || want != "" && string(a.State) != want {
			continue
		}
		v := alertView{
			Fingerprint: a.Fingerprint, Policy: a.Policy, Severity: a.Severity, Labels: a.Labels, State: a.State,
			Reason: a.Reason, Value: a.Value, ActiveAt: rfc(a.ActiveAt), FiredAt: rfc(a.FiredAt),
			ResolvedAt: rfc(a.ResolvedAt), LastNotifiedAt: rfc(a.LastNotifiedAt), KeepFiringSince: rfc(a.KeepFiringSince),
			Unsent: len(a.Outbox),
		}
		if v.Labels == nil {
			v.Labels = alerting.Labels{}
		}
		for j := range silences {
			if a.Policy != alerting.FairnessPolicy && silences[j].Mutes(a, now) {
				v.Silenced = true
			}
		}
		out = append(out, v)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"alerts": out})
}

// silenceJSON is the wire form of a silence.
type silenceJSON struct {
	ID        string          `json:"id,omitempty"`
	Matchers  alerting.Labels `json:"matchers"`
	StartsAt  string          `json:"starts_at,omitempty"`
	EndsAt    string          `json:"ends_at"`
	Comment   string          `json:"comment,omitempty"`
	CreatedAt string          `json:"created_at,omitempty"`
	Active    bool            `json:"active"`
}

func silenceView(sl alerting.Silence, now time.Time) silenceJSON {
	return silenceJSON{
		ID: sl.ID, Matchers: sl.Matchers, StartsAt: rfc(sl.StartsAt), EndsAt: rfc(sl.EndsAt),
		Comment: sl.Comment, CreatedAt: rfc(sl.CreatedAt), Active: sl.Active(now),
	}
}

// silenceBody is the body of PUT /v1/silences/{id}.
type silenceBody struct {
	Matchers alerting.Labels `json:"matchers"`
	StartsAt string          `json:"starts_at"`
	EndsAt   string          `json:"ends_at"`
	Comment  string          `json:"comment"`
}

// silenceMembers are the members of a silence body, exactly spelled.
var silenceMembers = members{"matchers": nil, "starts_at": nil, "ends_at": nil, "comment": nil}

// UnmarshalJSON decodes the body refusing members not spelled exactly as
// above (encoding/json would match them regardless of case).
func (b *silenceBody) UnmarshalJSON(raw []byte) error {
	if err := silenceMembers.check(raw, ""); err != nil {
		return err
	}
	type plain silenceBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(b))
}

func (s *service) putSilence(w http.ResponseWriter, r *http.Request) {
	const op = "monitor.putSilence"
	id := r.PathValue("id")
	if err := alerting.ValidName("silence id", id); err != nil {
		writeError(w, err)
		return
	}
	var j silenceBody
	if err := decode(w, r, s.d.cfg.Limits.SilenceBody, &j); err != nil {
		if _, ok := alerting.LimitOf(err); ok {
			writeError(w, err)
			return
		}
		writeError(w, fault.Errorf(fault.Invalid, op, "silence %q: body: %s (want {matchers, ends_at, starts_at, comment})", id, bodyProblem(err)))
		return
	}
	now := s.d.clock().UTC()
	sl := alerting.Silence{ID: id, Matchers: j.Matchers, StartsAt: now, Comment: j.Comment, CreatedAt: now}
	for _, f := range []struct {
		name, v string
		dst     *time.Time
	}{{"starts_at", j.StartsAt, &sl.StartsAt}, {"ends_at", j.EndsAt, &sl.EndsAt}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f.v)
		if err != nil {
			writeError(w, fault.Errorf(fault.Invalid, op, "silence %q: %s %s: want an RFC 3339 timestamp", id, f.name, httpjson.Quote(f.v)))
			return
		}
		*f.dst = t.UTC()
	}
	if err := sl.Validate(now); err != nil {
		writeError(w, err)
		return
	}
	if old, err := s.d.alerts.Silence(r.Context(), id); err == nil {
		sl.CreatedAt = old.CreatedAt
	}
	created, err := s.d.alerts.PutSilence(r.Context(), sl)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.d.log.InfoContext(r.Context(), "silence saved", "silence", id, "matchers", sl.Matchers.String(), "ends_at", sl.EndsAt)
	httpjson.Write(w, status, silenceView(sl, now))
}

func (s *service) getSilence(w http.ResponseWriter, r *http.Request) {
	sl, err := s.d.alerts.Silence(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, silenceView(sl, s.d.clock()))
}

func (s *service) listSilences(w http.ResponseWriter, r *http.Request) {
	all, err := s.d.alerts.Silences(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	now := s.d.clock()
	out := make([]silenceJSON, 0, len(all))
	for _, sl := range all {
		out = append(out, silenceView(sl, now))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"silences": out})
}

func (s *service) deleteSilence(w http.ResponseWriter, r *http.Request) {
	if err := s.d.alerts.DeleteSilence(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// postEvaluate runs one cycle for Cloud Scheduler. An instance that does
// not hold the lease answers 200 with evaluated false, so that the job
// does not count it as a failure; a failed cycle is 503 and retried.
func (s *service) postEvaluate(w http.ResponseWriter, r *http.Request) {
	rep, err := s.evaluate(context.WithoutCancel(r.Context()))
	if err != nil {
		s.d.log.ErrorContext(r.Context(), "evaluation failed", "error", err.Error())
		writeError(w, fault.Wrap(fault.Unavailable, "monitor.evaluate", err))
		return
	}
	httpjson.Write(w, http.StatusOK, rep)
}
