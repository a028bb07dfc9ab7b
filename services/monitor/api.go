package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/health"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// maxBody bounds request bodies other than metrics and pushes.
const maxBody = 64 << 10

// Handler returns the HTTP API of the monitor (DESIGN.md §6).
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
		httpjson.Error(w, governor.Errorf(governor.NotFound, "monitor", "no route for %s %s", r.Method, r.URL.Path))
	})
	return mux
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

// readBody reads at most limit bytes of the request body.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, governor.Wrap(governor.Invalid, "monitor.readBody", err)
	}
	if int64(len(b)) > limit {
		return nil, governor.Errorf(governor.Invalid, "monitor.readBody", "body exceeds %d bytes", limit)
	}
	return b, nil
}

func (s *service) putPolicy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := alerting.ValidName("policy name", name); err != nil {
		httpjson.Error(w, err)
		return
	}
	body, err := readBody(r, maxBody)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	p, err := alerting.ParsePolicy(name, body)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	created, err := s.d.alerts.PutPolicy(r.Context(), p)
	if err != nil {
		httpjson.Error(w, err)
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
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, p)
}

func (s *service) listPolicies(w http.ResponseWriter, r *http.Request) {
	ps, err := s.d.alerts.Policies(r.Context())
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"policies": ps})
}

func (s *service) deletePolicy(w http.ResponseWriter, r *http.Request) {
	if err := s.d.alerts.DeletePolicy(r.Context(), r.PathValue("name")); err != nil {
		httpjson.Error(w, err)
		return
	}
	s.d.log.InfoContext(r.Context(), "policy deleted", "policy", r.PathValue("name"))
	w.WriteHeader(http.StatusNoContent)
}

func (s *service) postMetrics(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, alerting.MaxMetricsBody)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	samples, err := alerting.ParseSamples(body, s.d.clock().UTC(), s.d.cfg.Samples)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	if err := s.series.Add(samples...); err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusAccepted, map[string]int{"accepted": len(samples)})
}

// pushReceipt is the push endpoint of the receipts subscription. A
// malformed message is copied to the dead-letter topic and acknowledged;
// only a failure to dead-letter asks Pub/Sub to redeliver.
func (s *service) pushReceipt(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readBody(r, event.MaxPushBytes)
	if err != nil {
		s.deadLetter(w, r, event.Message{}, err)
		return
	}
	m, err := event.ParsePush(body)
	if err != nil {
		s.deadLetter(w, r, event.Message{Data: body}, err)
		return
	}
	rc, err := receipt.Parse(m.Data)
	if err == nil && rc.ComputeHash() != rc.Hash {
		err = governor.Errorf(governor.Invalid, "monitor.pushReceipt", "receipt hash %s does not match its content", rc.Hash)
	}
	if err != nil {
		s.deadLetter(w, r, m, err)
		return
	}
	now := s.d.clock().UTC()
	samples := s.receipts.Observe(&rc, m.Attributes, m.PublishTime, now)
	if err := s.series.Add(samples...); err != nil {
		s.d.log.WarnContext(ctx, "receipt metrics dropped", "error", err.Error())
	}
	w.WriteHeader(http.StatusNoContent)
}

// deadLetter copies a bad push message to the dead-letter topic and
// acknowledges it.
func (s *service) deadLetter(w http.ResponseWriter, r *http.Request, m event.Message, cause error) {
	attrs := make(map[string]string, len(m.Attributes)+4)
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	msg := governor.ErrorMessage(cause)
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	attrs[engine.AttrDeadLetterReason] = msg
	attrs[engine.AttrDeadLetterCode] = string(governor.ErrorCode(cause))
	attrs[engine.AttrDeadLetterDomain] = "monitor"
	if m.ID != "" {
		attrs[engine.AttrOriginalID] = m.ID
	}
	s.d.log.ErrorContext(r.Context(), "receipt message refused and dead-lettered", "message_id", m.ID, "error", cause.Error())
	err := s.d.publisher.Publish(r.Context(), store.Message{Topic: s.d.topics.DeadLetter(), Data: m.Data, Attributes: attrs})
	if err != nil {
		httpjson.Error(w, governor.Wrap(governor.Unavailable, "monitor.deadLetter", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
		httpjson.Error(w, governor.Errorf(governor.Invalid, op, "state=%q: want pending, firing or resolved", want))
		return
	}
	alerts, err := s.d.alerts.Alerts(r.Context())
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	silences, err := s.d.alerts.Silences(r.Context())
	if err != nil {
		httpjson.Error(w, err)
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

func (s *service) putSilence(w http.ResponseWriter, r *http.Request) {
	const op = "monitor.putSilence"
	id := r.PathValue("id")
	if err := alerting.ValidName("silence id", id); err != nil {
		httpjson.Error(w, err)
		return
	}
	body, err := readBody(r, maxBody)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	var j struct {
		Matchers alerting.Labels `json:"matchers"`
		StartsAt string          `json:"starts_at"`
		EndsAt   string          `json:"ends_at"`
		Comment  string          `json:"comment"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		httpjson.Error(w, governor.Errorf(governor.Invalid, op, "silence %q: body: %v (want {matchers, ends_at, starts_at, comment})", id, strings.TrimPrefix(err.Error(), "json: ")))
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
			httpjson.Error(w, governor.Errorf(governor.Invalid, op, "silence %q: %s %q: want an RFC 3339 timestamp", id, f.name, f.v))
			return
		}
		*f.dst = t.UTC()
	}
	if err := sl.Validate(now); err != nil {
		httpjson.Error(w, err)
		return
	}
	if old, err := s.d.alerts.Silence(r.Context(), id); err == nil {
		sl.CreatedAt = old.CreatedAt
	}
	created, err := s.d.alerts.PutSilence(r.Context(), sl)
	if err != nil {
		httpjson.Error(w, err)
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
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, silenceView(sl, s.d.clock()))
}

func (s *service) listSilences(w http.ResponseWriter, r *http.Request) {
	all, err := s.d.alerts.Silences(r.Context())
	if err != nil {
		httpjson.Error(w, err)
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
		httpjson.Error(w, err)
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
		httpjson.Error(w, governor.Wrap(governor.Unavailable, "monitor.evaluate", err))
		return
	}
	httpjson.Write(w, http.StatusOK, rep)
}
