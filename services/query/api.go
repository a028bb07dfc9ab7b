package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// Reader is what the query API reads from storage.
type Reader interface {
	Instances(ctx context.Context, tenant string, domain governor.Domain) ([]governor.Instance, error)
	Chain(ctx context.Context, k governor.Key, after int64, limit int) ([]receipt.Receipt, error)
	Receipts(ctx context.Context, q store.ReceiptQuery) ([]receipt.Receipt, string, error)
	ReceiptsByExecution(ctx context.Context, executionID string) ([]receipt.Receipt, error)
}

// Page sizes of the receipts listing.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
	chainPage       = 500
)

// API serves the query endpoints listed in the README ("Contracts").
type API struct {
	store Reader
	log   *slog.Logger
	// ledger serves the checkpoint, proofs and tiles; nil leaves them out.
	ledger *LedgerAPI
}

// Years a time range may name: Firestore keeps timestamps from 0001 to 9999.
const (
	minYear = 1
	maxYear = 9999
)

// Handler returns the HTTP handler of the API.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /v1/tenants/{tenant}/governors", a.governors)
	mux.HandleFunc("GET /v1/tenants/{tenant}/receipts", a.receipts)
	mux.HandleFunc("GET /v1/tenants/{tenant}/verify", a.verify)
	mux.HandleFunc("GET /v1/receipts", a.receiptsByExecution)
	a.ledger.Register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, fault.Errorf(fault.NotFound, "query", "no route for %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// governorView is one instance in the governors listing.
type governorView struct {
	Domain    governor.Domain `json:"domain"`
	Subject   string          `json:"subject"`
	State     governor.State  `json:"state"`
	Version   int64           `json:"version"`
	Data      json.RawMessage `json:"data"`
	UpdatedAt string          `json:"updated_at"`
}

func (a *API) governors(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if err := event.ValidTenant(tenant); err != nil {
		httpjson.Error(w, err)
		return
	}
	insts, err := a.store.Instances(r.Context(), tenant, "")
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	out := make([]governorView, 0, len(insts))
	for _, in := range insts {
		data := in.Data
		if len(data) == 0 {
			data = json.RawMessage(`{}`)
		}
		out = append(out, governorView{
			Domain: in.Domain, Subject: in.Subject, State: in.State, Version: in.Version,
			Data: data, UpdatedAt: in.UpdatedAt.UTC().Format(time.RFC3339Nano),
		})
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"tenant_id": tenant, "governors": out})
}

func (a *API) receipts(w http.ResponseWriter, r *http.Request) {
	const op = "query.receipts"
	tenant := r.PathValue("tenant")
	if err := event.ValidTenant(tenant); err != nil {
		httpjson.Error(w, err)
		return
	}
	q := store.ReceiptQuery{Tenant: tenant, PageSize: defaultPageSize, PageToken: r.URL.Query().Get("page_token")}
	v := r.URL.Query()
	if d := v.Get("domain"); d != "" {
		if !knownDomain(governor.Domain(d)) {
			httpjson.Error(w, fault.Errorf(fault.Invalid, op, "domain %s is not one of the eight governor domains", httpjson.Quote(d)))
			return
		}
		q.Domain = governor.Domain(d)
	}
	if s := v.Get("subject"); s != "" {
		if err := event.ValidSubject(s); err != nil || s == governor.BroadcastSubject {
			httpjson.Error(w, fault.Errorf(fault.Invalid, op, "subject %s is not a valid subject", httpjson.Quote(s)))
			return
		}
		q.Subject = s
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				httpjson.Error(w, fault.Errorf(fault.Invalid, op, "%s=%s: want an RFC 3339 time", p.name, httpjson.Quote(s)))
				return
			}
			if t = t.UTC(); t.Year() < minYear || t.Year() > maxYear {
				httpjson.Error(w, fault.Errorf(fault.Invalid, op, "%s=%s: want a time in the years %04d to %04d", p.name, httpjson.Quote(s), minYear, maxYear))
				return
			}
			*p.dst = t
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		httpjson.Error(w, fault.Errorf(fault.Invalid, op, "from must be before to"))
		return
	}
	if s := v.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			httpjson.Error(w, fault.Errorf(fault.Invalid, op, "page_size=%s: want 1 to %d", httpjson.Quote(s), maxPageSize))
			return
		}
		q.PageSize = n
	}
	rs, next, err := a.store.Receipts(r.Context(), q)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	if rs == nil {
		rs = []receipt.Receipt{}
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"receipts": rs, "next_page_token": next})
}

func (a *API) receiptsByExecution(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("execution_id")
	if id == "" || len(id) > 256 {
		httpjson.Error(w, fault.Errorf(fault.Invalid, "query.receipts", "execution_id is required (1 to 256 bytes)"))
		return
	}
	rs, err := a.store.ReceiptsByExecution(r.Context(), id)
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	if len(rs) == 0 {
		httpjson.Error(w, fault.Errorf(fault.NotFound, "query.receipts", "no receipt for execution_id %s", httpjson.Quote(id)))
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"receipts": rs})
}

// chainReport is the verification result of one instance.
type chainReport struct {
	Domain   governor.Domain `json:"domain"`
	Subject  string          `json:"subject"`
	Receipts int             `json:"receipts"`
	OK       bool            `json:"ok"`
	Broken   *brokenReceipt  `json:"first_broken,omitempty"`
}

// brokenReceipt names the first bad receipt of a chain.
type brokenReceipt struct {
	Seq     int64  `json:"seq"`
	Problem string `json:"problem"`
	Detail  string `json:"detail"`
}

func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if err := event.ValidTenant(tenant); err != nil {
		httpjson.Error(w, err)
		return
	}
	insts, err := a.store.Instances(r.Context(), tenant, "")
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	reports := make([]chainReport, 0, len(insts))
	allOK := true
	for _, in := range insts {
		rep, err := VerifyInstance(r.Context(), a.store, in)
		if err != nil {
			httpjson.Error(w, err)
			return
		}
		allOK = allOK && rep.OK
		reports = append(reports, rep)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"tenant_id": tenant, "ok": allOK, "instances": reports})
}

// VerifyInstance walks one instance's chain page by page and checks that
// it ends at the instance's recorded version and hash. A chain that runs
// past in, as when a decision commits between reading the instance and
// reading its chain, is checked against the instance read again: the
// receipt at in's version must carry in's hash, and the chain must end at
// the version and hash read last.
func VerifyInstance(ctx context.Context, rd Reader, in governor.Instance) (chainReport, error) {
	rep := chainReport{Domain: in.Domain, Subject: in.Subject, OK: true}
	v := receipt.NewVerifier()
	var after int64
	hashAt := "" // the hash of the receipt at in.Version
	for {
		page, err := rd.Chain(ctx, in.Key, after, chainPage)
		if err != nil {
			return rep, err
		}
		for i := range page {
			if err := v.Add(&page[i]); err != nil {
				var ce *receipt.ChainError
				if errors.As(err, &ce) {
					rep.OK = false
					rep.Broken = &brokenReceipt{Seq: ce.Seq, Problem: string(ce.Problem), Detail: ce.Detail}
					rep.Receipts = v.Count()
					return rep, nil
				}
				return rep, err
			}
			if page[i].Seq == in.Version {
				hashAt = page[i].Hash
			}
		}
		if len(page) < chainPage {
			break
		}
		after = page[len(page)-1].Seq
	}
	rep.Receipts = v.Count()
	seq, hash := v.Head()
	if seq > in.Version && (in.Version == 0 || hashAt == in.LastHash) {
		now, err := instanceNow(ctx, rd, in)
		if err != nil {
			return rep, err
		}
		if now.Version >= seq {
			in = now // decisions committed meanwhile: the chain read ends at or before it
			if now.Version > seq {
				return rep, nil
			}
		}
	}
	switch {
	case seq != in.Version:
		rep.OK = false
		rep.Broken = &brokenReceipt{Seq: seq + 1, Problem: "missing_receipt",
			Detail: "instance is at version " + strconv.FormatInt(in.Version, 10) + " but the chain ends at seq " + strconv.FormatInt(seq, 10)}
	case in.Version > 0 && hash != in.LastHash:
		rep.OK = false
		rep.Broken = &brokenReceipt{Seq: seq, Problem: "head_mismatch",
			Detail: "last receipt hash " + hash + " differs from the instance's " + in.LastHash}
	}
	return rep, nil
}

// instanceNow reads in again; in itself when it is gone.
func instanceNow(ctx context.Context, rd Reader, in governor.Instance) (governor.Instance, error) {
	insts, err := rd.Instances(ctx, in.Tenant, in.Domain)
	if err != nil {
		return in, err
	}
	for _, x := range insts {
		if x.Key == in.Key {
			return x, nil
		}
	}
	return in, nil
}

func knownDomain(d governor.Domain) bool {
	for _, x := range governor.Domains {
		if x == d {
			return true
		}
	}
	return false
}
