package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/ledger"
)

// LedgerAPI serves the read side of the verifiable ledger: the signed
// checkpoint and its verifier key, inclusion and consistency proofs, a
// tenant's ledger export, and the C2SP tlog-tiles read paths
// (/checkpoint, /tile/<L>/<N>[.p/<W>], /tile/entries/<N>[.p/<W>]) that
// tile clients use.
type LedgerAPI struct {
	log    *ledger.Log
	chains ledger.ChainReader
	logger *slog.Logger
}

// NewLedgerAPI returns the ledger routes over the ledger store st and the
// receipt chains (for exports).
func NewLedgerAPI(st ledger.Store, chains ledger.ChainReader, logger *slog.Logger) *LedgerAPI {
	return &LedgerAPI{log: ledger.NewLog(st), chains: chains, logger: logger}
}

// Register adds the ledger routes to mux. A nil LedgerAPI registers
// nothing, so that a query API without a ledger serves its other routes.
func (l *LedgerAPI) Register(mux *http.ServeMux) {
	if l == nil {
		return
	}
	mux.HandleFunc("GET /v1/checkpoint", l.checkpoint)
	mux.HandleFunc("GET /checkpoint", l.checkpoint)
	mux.HandleFunc("GET /v1/checkpoint/key", l.key)
	mux.HandleFunc("GET /v1/receipts/{hash}/proof", l.inclusion)
	mux.HandleFunc("GET /v1/proofs/consistency", l.consistency)
	mux.HandleFunc("GET /v1/tenants/{tenant}/ledger", l.export)
	mux.HandleFunc("GET /tile/{path...}", l.tile)
}

func (l *LedgerAPI) checkpoint(w http.ResponseWriter, r *http.Request) {
	st, err := l.log.State(r.Context())
	if err != nil {
		l.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(st.Checkpoint)
}

func (l *LedgerAPI) key(w http.ResponseWriter, r *http.Request) {
	st, err := l.log.State(r.Context())
	if err == nil && st.VerifierKey == "" {
		err = fault.Errorf(fault.NotFound, "query.ledger", "the ledger records no verifier key")
	}
	if err != nil {
		l.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, st.VerifierKey+"\n")
}

// sizeParam parses an optional tree size query parameter; 0 when absent.
func sizeParam(r *http.Request, name string, min int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min {
		return 0, fault.Errorf(fault.Invalid, "query.ledger", "%s=%s: want an integer ≥ %d", name, httpjson.Quote(s), min)
	}
	return n, nil
}

func (l *LedgerAPI) inclusion(w http.ResponseWriter, r *http.Request) {
	size, err := sizeParam(r, "size", 1)
	if err == nil {
		var p ledger.InclusionProof
		if p, err = l.log.InclusionProof(r.Context(), r.PathValue("hash"), size); err == nil {
			writeLedgerJSON(w, p)
			return
		}
	}
	l.fail(w, r, err)
}

func (l *LedgerAPI) consistency(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("from") == "" {
		l.fail(w, r, fault.Errorf(fault.Invalid, "query.ledger", "from is required"))
		return
	}
	from, err := sizeParam(r, "from", 0)
	var to int64
	if err == nil {
		to, err = sizeParam(r, "to", 1)
	}
	if err == nil {
		var p ledger.ConsistencyProof
		if p, err = l.log.ConsistencyProof(r.Context(), from, to); err == nil {
			writeLedgerJSON(w, p)
			return
		}
	}
	l.fail(w, r, err)
}

func (l *LedgerAPI) export(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	err := event.ValidTenant(tenant)
	var size int64
	if err == nil {
		size, err = sizeParam(r, "size", 1)
	}
	if err == nil {
		var e *ledger.Export
		if e, err = l.log.Export(r.Context(), l.chains, tenant, size); err == nil {
			writeLedgerJSON(w, e)
			return
		}
	}
	l.fail(w, r, err)
}

func (l *LedgerAPI) tile(w http.ResponseWriter, r *http.Request) {
	t, err := ledger.ParseTilePath("tile/" + r.PathValue("path"))
	var data []byte
	if err == nil {
		if t.L == -1 {
			data, err = l.log.EntryBundle(r.Context(), t.N, t.W)
		} else {
			data, err = l.log.Tile(r.Context(), t)
		}
	}
	if err != nil {
		l.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(data)
}

// fail answers an error; a ledger that contradicts itself is logged.
func (l *LedgerAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch fault.ErrorCode(err) {
	case fault.Conflict, fault.Internal:
		l.logger.ErrorContext(r.Context(), "ledger request failed", "path", r.URL.Path, "code", fault.ErrorCode(err), "error", err.Error())
	}
	httpjson.Error(w, err)
}

// writeLedgerJSON writes v with 200, leaving '<', '>' and '&' in receipts
// as they are in their canonical JSON.
func writeLedgerJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
