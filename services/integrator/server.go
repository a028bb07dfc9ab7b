package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/ledger"
)

// maxIntegrateTime bounds the passes of one POST /v1/integrate, well
// inside a Cloud Scheduler attempt deadline.
const maxIntegrateTime = 50 * time.Second

// counters are the service's running totals, served by GET /v1/stats.
type counters struct {
	Accepted   atomic.Int64
	Duplicates atomic.Int64
	Refused    atomic.Int64
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
	if p.Held {
		s.stats.Size.Store(p.Size)
	}
}

// handler returns the service's routes.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /v1/receipts/push", s.push)
	mux.HandleFunc("POST /v1/integrate", s.integrate)
	mux.HandleFunc("GET /v1/checkpoint", s.checkpoint)
	mux.HandleFunc("GET /v1/checkpoint/key", s.key)
	mux.HandleFunc("GET /v1/stats", s.statsView)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, governor.Errorf(governor.NotFound, "integrator", "no route for %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// pushResult is the answer to a push delivery.
type pushResult struct {
	// Status is "pending" (recorded), "duplicate" (known already) or
	// "refused" (not a receipt, or a receipt whose hash is wrong).
	Status      string `json:"status"`
	ReceiptHash string `json:"receipt_hash,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// push records the receipt of a Pub/Sub push delivery from the receipts
// topic as pending. A delivery that can never become a log entry is
// acknowledged (200) and logged, so that Pub/Sub does not retry it; a
// storage failure is answered 503 so that Pub/Sub redelivers.
func (s *server) push(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, event.MaxPushBytes+1))
	if err != nil {
		httpjson.Error(w, governor.Wrap(governor.Unavailable, "integrator.push", err))
		return
	}
	msg, err := event.ParsePush(body)
	var e ledger.Entry
	if err == nil {
		e, err = ledger.NewEntry(msg.Data, s.clock())
	}
	if err != nil {
		s.stats.Refused.Add(1)
		s.log.ErrorContext(r.Context(), "receipt refused by the ledger", "message_id", msg.ID, "code", governor.ErrorCode(err), "error", err.Error())
		httpjson.Write(w, http.StatusOK, pushResult{Status: "refused", Reason: governor.ErrorMessage(err)})
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
	Size       int64  `json:"tree_size"`
	Checkpoint string `json:"checkpoint,omitempty"`
}

// integrate runs passes until the pending entries are integrated, for
// Cloud Scheduler. It does nothing when another instance holds the lease.
func (s *server) integrate(w http.ResponseWriter, r *http.Request) {
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
		res.Size, res.Checkpoint = p.Size, string(p.Checkpoint)
		if !p.Held || (p.Integrated == 0 && !p.Resumed) || ctx.Err() != nil {
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
		"passes":              s.stats.Passes.Load(),
		"passes_failed":       s.stats.Failed.Load(),
		"receipts_integrated": s.stats.Integrated.Load(),
		"tree_size":           s.stats.Size.Load(),
	})
}
