package console

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/caller"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// Routes of the push endpoint and the JSON API.
const (
	// PushPath receives the dead-letter topic by push.
	PushPath = "/v1/deadletters/push"
	// APIPrefix starts every route of the JSON API.
	APIPrefix = "/api/v1/"
)

// APIHandler serves the JSON API under /api/v1 and the dead-letter push
// endpoint. State-changing requests a browser sends from another origin
// are refused (http.CrossOriginProtection); the command line and Pub/Sub
// send no such headers.
func (c *Console) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PushPath, c.push)
	mux.HandleFunc("GET /api/v1/tenants", c.apiTenants)
	mux.HandleFunc("GET /api/v1/tenants/{tenant}/governors", c.apiGovernors)
	mux.HandleFunc("GET /api/v1/tenants/{tenant}/receipts", c.apiReceipts)
	mux.HandleFunc("GET /api/v1/tenants/{tenant}/cascades/{correlation}", c.apiCascade)
	mux.HandleFunc("POST /api/v1/tenants/{tenant}/clock:advance", c.apiAdvance)
	mux.HandleFunc("GET /api/v1/checkpoint", c.apiCheckpoint)
	mux.HandleFunc("GET /api/v1/checkpoint/key", c.apiKey)
	mux.HandleFunc("GET /api/v1/checkpoints", c.apiCheckpoints)
	mux.HandleFunc("GET /api/v1/receipts/{hash}/proof", c.apiProof)
	mux.HandleFunc("GET /api/v1/alerts", c.apiAlerts)
	mux.HandleFunc("GET /api/v1/silences", c.apiSilences)
	mux.HandleFunc("POST /api/v1/silences", c.apiCreateSilence)
	mux.HandleFunc("DELETE /api/v1/silences/{id}", c.apiExpireSilence)
	mux.HandleFunc("GET /api/v1/deadletters", c.apiDeadLetters)
	mux.HandleFunc("GET /api/v1/deadletters/{id}", c.apiDeadLetter)
	mux.HandleFunc("POST /api/v1/deadletters/{action}", c.apiReplay)
	mux.HandleFunc("POST /api/v1/events", c.apiSend)
	mux.HandleFunc("GET /api/v1/stream", c.apiStream)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, fault.Errorf(fault.NotFound, "console", "no route for %s %s", r.Method, quote(r.URL.Path)))
	})
	return http.NewCrossOriginProtection().Handler(mux)
}

// intParam parses an optional integer query parameter in [lo, hi]; 0
// when absent. Values above hi are capped.
func intParam(r *http.Request, name string, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo {
		return 0, fault.Errorf(fault.Invalid, "console", "%s=%s: want an integer ≥ %d", name, quote(s), lo)
	}
	return min(n, hi), nil
}

// timeParam parses an optional RFC 3339 query parameter within the years
// Firestore keeps.
func timeParam(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fault.Errorf(fault.Invalid, "console", "%s=%s: want an RFC 3339 time", name, quote(s))
	}
	if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, fault.Errorf(fault.Invalid, "console", "%s=%s: want a time in the years 0001 to 9999", name, quote(s))
	}
	return t, nil
}

func (c *Console) apiTenants(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "limit", 1, c.lim.MaxPageSize)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	v := r.URL.Query()
	p, err := c.Tenants(r.Context(), v.Get("prefix"), v.Get("after"), n)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, p)
}

func (c *Console) apiGovernors(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	gs, err := c.Governors(r.Context(), tenant)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"tenant_id": tenant, "governors": gs})
}

func (c *Console) apiReceipts(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := TimelineQuery{Tenant: r.PathValue("tenant"), Domain: governor.Domain(v.Get("domain")), Subject: v.Get("subject"), PageToken: v.Get("page_token")}
	var err error
	switch o := v.Get("order"); o {
	case "", "oldest":
	case "newest":
		q.Newest = true
	default:
		err = fault.Errorf(fault.Invalid, "console", "order=%s: want newest or oldest", quote(o))
	}
	if err == nil {
		q.Limit, err = intParam(r, "limit", 1, c.lim.MaxPageSize)
	}
	if err == nil {
		q.Since, err = timeParam(r, "since")
	}
	if err == nil {
		q.Until, err = timeParam(r, "until")
	}
	var p ReceiptPage
	if err == nil {
		p, err = c.Timeline(r.Context(), q)
	}
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	writeReceipts(w, p)
}

// writeReceipts writes v with 200, leaving '<', '>' and '&' in receipts
// as they are in their canonical JSON, so that a browser recomputes the
// same hashes.
func writeReceipts(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (c *Console) apiCascade(w http.ResponseWriter, r *http.Request) {
	cs, err := c.Cascade(r.Context(), r.PathValue("tenant"), r.PathValue("correlation"))
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	writeReceipts(w, cs)
}

func (c *Console) apiCheckpoint(w http.ResponseWriter, r *http.Request) {
	st, err := c.Checkpoint(r.Context())
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(st.Checkpoint)
}

func (c *Console) apiKey(w http.ResponseWriter, r *http.Request) {
	st, err := c.Checkpoint(r.Context())
	if err == nil && st.VerifierKey == "" {
		err = fault.Errorf(fault.NotFound, "console.key", "the ledger records no verifier key")
	}
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, st.VerifierKey+"\n")
}

func (c *Console) apiCheckpoints(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "limit", 1, c.lim.MaxPageSize)
	var cps []CheckpointRecord
	if err == nil {
		cps, err = c.Checkpoints(r.Context(), n)
	}
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"checkpoints": cps})
}

func (c *Console) apiProof(w http.ResponseWriter, r *http.Request) {
	var size int64
	if s := r.URL.Query().Get("size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			httpjson.Error(w, fault.Errorf(fault.Invalid, "console.proof", "size=%s: want an integer ≥ 1", quote(s)))
			return
		}
		size = n
	}
	p, err := c.Proof(r.Context(), r.PathValue("hash"), size)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	writeReceipts(w, p)
}

func (c *Console) apiAlerts(w http.ResponseWriter, r *http.Request) {
	as, err := c.Alerts(r.Context(), r.URL.Query().Get("state"))
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"alerts": as})
}

func (c *Console) apiSilences(w http.ResponseWriter, r *http.Request) {
	ss, err := c.Silences(r.Context())
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"silences": ss})
}

func (c *Console) apiCreateSilence(w http.ResponseWriter, r *http.Request) {
	var s SilenceSpec
	if err := httpjson.Decode(w, r, c.lim.BodyBytes, &s); err != nil {
		httpjson.Error(w, err)
		return
	}
	out, err := c.CreateSilence(r.Context(), caller.Email(r), s)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, out)
}

func (c *Console) apiExpireSilence(w http.ResponseWriter, r *http.Request) {
	if err := c.ExpireSilence(r.Context(), caller.Email(r), r.PathValue("id")); err != nil {
		httpjson.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *Console) apiDeadLetters(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "limit", 1, c.lim.MaxPageSize)
	var p DeadLetterPage
	if err == nil {
		p, err = c.DeadLetters(r.Context(), r.URL.Query().Get("after"), n)
	}
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, p)
}

func (c *Console) apiDeadLetter(w http.ResponseWriter, r *http.Request) {
	d, err := c.DeadLetter(r.Context(), r.PathValue("id"))
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, d)
}

func (c *Console) apiReplay(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("action"), ":replay")
	if !ok {
		httpjson.Error(w, fault.Errorf(fault.NotFound, "console", "no route for POST %s", quote(r.URL.Path)))
		return
	}
	published, err := c.Replay(r.Context(), id, caller.Email(r))
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"published": published})
}

// sendBody is the body of POST /api/v1/events.
type sendBody struct {
	Type    string          `json:"type"`
	Tenant  string          `json:"tenant"`
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
}

func (c *Console) apiSend(w http.ResponseWriter, r *http.Request) {
	var b sendBody
	if err := httpjson.Decode(w, r, c.lim.BodyBytes, &b); err != nil {
		httpjson.Error(w, err)
		return
	}
	id, err := c.Send(r.Context(), caller.Email(r), SendRequest{Type: b.Type, Tenant: b.Tenant, Subject: b.Subject, Data: b.Data})
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusAccepted, map[string]string{"id": id})
}

// advanceBody is the body of POST /api/v1/tenants/{t}/clock:advance.
type advanceBody struct {
	To string `json:"to"`
}

func (c *Console) apiAdvance(w http.ResponseWriter, r *http.Request) {
	const op = "console.advance"
	if c.o.Clock == nil {
		httpjson.Error(w, fault.Errorf(fault.NotFound, op, "this deployment has no test clocks"))
		return
	}
	var b advanceBody
	if err := httpjson.Decode(w, r, 4<<10, &b); err != nil {
		httpjson.Error(w, err)
		return
	}
	to, err := time.Parse(time.RFC3339Nano, b.To)
	if err != nil {
		httpjson.Error(w, fault.Errorf(fault.Invalid, op, "to %s: want an RFC 3339 time", quote(b.To)))
		return
	}
	fired, err := c.AdvanceClock(r.Context(), r.PathValue("tenant"), to.UTC(), caller.Email(r))
	if fired == nil {
		fired = []Fired{}
	}
	if err != nil {
		// What fired stays fired: say so with the error.
		status := httpjson.Status(fault.ErrorCode(err))
		msg := fault.ErrorMessage(err)
		if fault.ErrorCode(err) == fault.Internal {
			msg = "internal error"
		}
		httpjson.Write(w, status, map[string]any{"error": map[string]string{"code": string(fault.ErrorCode(err)), "message": msg}, "fired": fired})
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"fired": fired})
}

// push receives one message of the dead-letter topic and records it.
// The body is bounded; a message already recorded is acknowledged again.
func (c *Console) push(w http.ResponseWriter, r *http.Request) {
	const op = "console.push"
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, event.MaxPushBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpjson.Error(w, &fault.Error{Code: fault.Invalid, Op: op, Message: "push body exceeds " + strconv.Itoa(event.MaxPushBytes) + " bytes", Err: tooBig})
			return
		}
		httpjson.Error(w, fault.Errorf(fault.Invalid, op, "reading the push body: %v", err))
		return
	}
	m, err := event.ParsePush(body)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	d, created, err := c.RecordDeadLetter(r.Context(), m)
	if err != nil {
		if fault.ErrorCode(err) != fault.Invalid {
			c.o.Logger.ErrorContext(r.Context(), "dead letter not recorded; Pub/Sub redelivers it", "message_id", quote(m.ID), "error", err.Error())
		}
		httpjson.Error(w, err)
		return
	}
	if created {
		c.o.Logger.InfoContext(r.Context(), "dead letter recorded", "id", d.ID, "domain", d.Domain, "code", d.Code, "replayable", d.Replayable)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"status": "recorded", "id": d.ID, "duplicate": !created})
}
