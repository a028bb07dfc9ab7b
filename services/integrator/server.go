package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/ledger"
)

// maxIntegrateTime bounds the passes of one POST /v1/integrate, well
// inside a Cloud Scheduler attempt deadline.
const maxIntegrateTime = 50 * time.Second

// Body limits. A push body is at most event.MaxPushBytes, as Pub/Sub
// sends them; the other routes take no body, and maxControlBody leaves
// room for the small one a scheduler may send anyway.
const (
	maxPushBody    = event.MaxPushBytes
	maxControlBody = 4 << 10
)

// maxReason bounds the reason of a refused push, which describes the
// caller's input.
const maxReason = 4 * httpjson.MaxEcho

// counters are the service's running totals, served by GET /v1/stats.
type counters struct {
	Accepted   atomic.Int64
	Duplicates atomic.Int64
	Refused    atomic.Int64
	// Forged counts pending receipts the integrator dropped because the
	// governors stored another receipt, or none, at their place.
	Forged     atomic.Int64
	Passes     atomic.Int64
	Failed     atomic.Int64
	Integrated atomic.Int64
	Size       atomic.Int64
}

// server serves the integrator's endpoints.
type server struct {
	store       ledger.Store
	integrator  *ledger.Integrator
	verifierKey string
	log         *slog.Logger
	clock       func() time.Time
	stats       counters
}

// observe counts a pass; it is the integrator's Observe hook.
func (s *server) observe(p ledger.Pass, err error) {
	s.stats.Passes.Add(1)
	if err != nil {
		s.stats.Failed.Add(1)
		return
	}
	s.stats.Integrated.Add(int64(p.Integrated))
	s.stats.Forged.Add(int64(p.Forged))
	if p.Held {
		s.stats.Size.Store(p.Size)
	}
}

// handler returns the service's routes. Every request body is capped
// (http.MaxBytesReader) before anything reads it: push bodies at
// maxPushBody, all others at maxControlBody.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, limit int64, h http.HandlerFunc) { mux.Handle(pattern, capped(limit, h)) }
	route("GET /healthz", maxControlBody, func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	route("POST /v1/receipts/push", maxPushBody, s.push)
	route("POST /v1/integrate", maxControlBody, s.integrate)
	route("GET /v1/checkpoint", maxControlBody, s.checkpoint)
	route("GET /v1/checkpoint/key", maxControlBody, s.key)
	route("GET /v1/stats", maxControlBody, s.statsView)
	route("/", maxControlBody, func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, fault.Errorf(fault.NotFound, "integrator", "no route for %s %s", httpjson.Quote(r.Method), httpjson.Quote(r.URL.Path)))
	})
	return mux
}

// capped caps the body of every request to h at limit bytes.
func capped(limit int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h(w, r)
	}
}

// readBody reads a capped body: an Invalid error when it exceeds its cap.
func readBody(op string, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, fault.Errorf(fault.Invalid, op, "request body exceeds %d bytes", tooBig.Limit)
	case err != nil:
		return nil, fault.Wrap(fault.Unavailable, op, err)
	}
	return b, nil
}

// pushResult is the answer to a push delivery.
type pushResult struct {
	// Status is "integrated" (in the log, under a committed checkpoint),
	// "pending" (recorded for a later pass), "duplicate" (known already)
	// or "refused" (not a receipt, a receipt whose hash is wrong, or one
	// the governors did not store).
	Status      string `json:"status"`
	ReceiptHash string `json:"receipt_hash,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// push hands the receipt of a Pub/Sub push delivery from the receipts
// topic to the integrator (group commit) and answers once the checkpoint
// that includes it is committed: the receipt costs the ledger one write
// and no pending record, and a crash before the commit leaves the
// delivery unacknowledged, so Pub/Sub redelivers it. When this instance
// does not integrate (it does not hold the lease, its loop is off, or
// too many receipts wait), the receipt is recorded as pending instead,
// for the lease holder's passes. Either way the integrator admits it to
// the log only if the governors stored it. A delivery that can never
// become a log entry (a body over maxPushBody, not a push, not a receipt,
// a wrong hash, a receipt the governors did not store) is acknowledged
// (200) and logged, so that Pub/Sub does not retry it; a storage failure
// is answered 503 so that Pub/Sub redelivers. Whatever the answer or the
// log line repeats of the delivery is quoted and truncated.
func (s *server) push(w http.ResponseWriter, r *http.Request) {
	const op = "integrator.push"
	body, err := readBody(op, r)
	if fault.ErrorCode(err) == fault.Unavailable {
		httpjson.Error(w, err)
		return
	}
	var msg event.Message
	if err == nil {
		msg, err = event.ParsePush(body)
	}
	var e ledger.Entry
	if err == nil {
		e, err = ledger.NewEntry(msg.Data, s.clock())
	}
	if err != nil {
		s.stats.Refused.Add(1)
		reason := httpjson.Truncate(fault.ErrorMessage(err), maxReason)
		s.log.ErrorContext(r.Context(), "receipt refused by the ledger", "message_id", httpjson.Truncate(msg.ID, httpjson.MaxEcho), "code", fault.ErrorCode(err), "error", reason)
		httpjson.Write(w, http.StatusOK, pushResult{Status: "refused", Reason: reason})
		return
	}
	adm, err := s.integrator.Submit(r.Context(), e)
	if err != nil {
		s.log.WarnContext(r.Context(), "receipt not integrated; Pub/Sub will redeliver", "receipt_hash", e.Hash, "error", err.Error())
		httpjson.Error(w, err)
		return
	}
	switch adm {
	case ledger.Integrated:
		s.stats.Accepted.Add(1)
		httpjson.Write(w, http.StatusOK, pushResult{Status: "integrated", ReceiptHash: e.Hash})
		return
	case ledger.Known:
		s.stats.Duplicates.Add(1)
		httpjson.Write(w, http.StatusOK, pushResult{Status: "duplicate", ReceiptHash: e.Hash})
		return
	case ledger.Unvouched:
		// Counted and logged by the integrator (receipts_forged).
		httpjson.Write(w, http.StatusOK, pushResult{Status: "refused", ReceiptHash: e.Hash, Reason: "the governors did not store this receipt"})
		return
	}
	n, err := s.store.AddPending(r.Context(), []ledger.Entry{e})
	if err != nil {
		s.log.WarnContext(r.Context(), "receipt not recorded; Pub/Sub will redeliver", "receipt_hash", e.Hash, "error", err.Error())
		httpjson.Error(w, err)
		return
	}
	res := pushResult{Status: "pending", ReceiptHash: e.Hash}
	if n == 0 {
		res.Status = "duplicate"
		s.stats.Duplicates.Add(1)
	} else {
		s.stats.Accepted.Add(1)
		s.integrator.Notify()
	}
	httpjson.Write(w, http.StatusOK, res)
}

// integrateResult is the answer to POST /v1/integrate.
type integrateResult struct {
	Held       bool   `json:"held"`
	Holder     string `json:"holder"`
	Passes     int    `json:"passes"`
	Integrated int    `json:"integrated"`
	// Forged counts the pending receipts dropped because the governors
	// did not store them; Refused those the last pass left out because
	// their stored leaf was altered.
	Forged     int    `json:"forged"`
	Refused    int    `json:"refused"`
	Size       int64  `json:"tree_size"`
	Checkpoint string `json:"checkpoint,omitempty"`
}

// integrate runs passes until the pending entries are integrated, for
// Cloud Scheduler. It does nothing when another instance holds the lease.
// Its body, if any, is ignored; one over maxControlBody is refused.
func (s *server) integrate(w http.ResponseWriter, r *http.Request) {
	if _, err := readBody("integrator.integrate", r); err != nil {
		httpjson.Error(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxIntegrateTime)
	defer cancel()
	var res integrateResult
	for {
		p, err := s.integrator.Integrate(ctx)
		if err != nil {
			httpjson.Error(w, err)
			return
		}
		res.Passes++
		res.Held, res.Holder = p.Held, p.Holder
		res.Integrated += p.Integrated
		res.Forged += p.Forged
		res.Refused = p.Refused
		res.Size, res.Checkpoint = p.Size, string(p.Checkpoint)
		if !p.Held || (p.Integrated == 0 && p.Forged == 0 && !p.Resumed) || ctx.Err() != nil {
			break
		}
	}
	httpjson.Write(w, http.StatusOK, res)
}

func (s *server) checkpoint(w http.ResponseWriter, r *http.Request) {
	st, err := ledger.NewLog(s.store).State(r.Context())
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(st.Checkpoint)
}

func (s *server) key(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, s.verifierKey+"\n")
}

func (s *server) statsView(w http.ResponseWriter, r *http.Request) {
	httpjson.Write(w, http.StatusOK, map[string]int64{
		"receipts_accepted":   s.stats.Accepted.Load(),
		"receipts_duplicate":  s.stats.Duplicates.Load(),
		"receipts_refused":    s.stats.Refused.Load(),
		"receipts_forged":     s.stats.Forged.Load(),
		"passes":              s.stats.Passes.Load(),
		"passes_failed":       s.stats.Failed.Load(),
		"receipts_integrated": s.stats.Integrated.Load(),
		"tree_size":           s.stats.Size.Load(),
	})
}
