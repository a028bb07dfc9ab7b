package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/ledger/memledger"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// receiptTap keeps the receipts the engine publishes, as the ledger's push
// subscription receives them.
type receiptTap struct {
	mu       sync.Mutex
	receipts [][]byte
}

func (p *receiptTap) Publish(_ context.Context, m store.Message) error {
	if m.Topic == (topic.Names{}).Receipts() {
		p.mu.Lock()
		p.receipts = append(p.receipts, m.Data)
		p.mu.Unlock()
	}
	return nil
}

// ledgerFixture is a query API with a ledger over the receipts of a few
// decisions of tenant acme.
type ledgerFixture struct {
	srv      *httptest.Server
	ledger   *memledger.Store
	verifier note.Verifier
	in       *ledger.Integrator
	apply    func(d governor.Domain, name governor.EventName, subject, data string)
	tap      *receiptTap
}

func newLedgerFixture(t *testing.T) *ledgerFixture {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, tap := memstore.New(), &receiptTap{}
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	eng, err := engine.New(engine.Options{
		Store: st, Publisher: tap, Machines: machines.New(nil), Topics: topic.Names{},
		Clock: func() time.Time { now = now.Add(time.Second); return now }, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := ledger.GenerateKey("query.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := ledger.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	lst := memledger.New()
	in, err := ledger.NewIntegrator(ledger.IntegratorOptions{Store: lst, Witness: st, Signer: signer, VerifierKey: vkey, Holder: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	api := &API{store: st, log: quiet}
	mux := http.NewServeMux()
	NewLedgerAPI(lst, st, quiet).Register(mux)
	mux.Handle("/", api.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	n := 0
	f := &ledgerFixture{srv: srv, ledger: lst, verifier: verifier, in: in, tap: tap}
	f.apply = func(d governor.Domain, name governor.EventName, subject, data string) {
		n++
		e := governor.Event{ID: fmt.Sprintf("ev-%d", n), Source: "//test", Type: governor.TypeOf(d, name),
			Domain: d, Name: name, Tenant: "acme", Subject: subject, Data: json.RawMessage(data)}
		if _, err := eng.Apply(context.Background(), e); err != nil {
			t.Fatalf("Apply(%s) = %v", e.Type, err)
		}
	}
	return f
}

// integrate records every receipt published so far and integrates them.
func (f *ledgerFixture) integrate(t *testing.T) ledger.Checkpoint {
	t.Helper()
	f.tap.mu.Lock()
	var es []ledger.Entry
	for _, data := range f.tap.receipts {
		e, err := ledger.NewEntry(data, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	f.tap.mu.Unlock()
	if _, err := f.ledger.AddPending(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	p, err := f.in.Integrate(t.Context())
	if err != nil {
		t.Fatalf("Integrate = %v", err)
	}
	cp, err := ledger.OpenCheckpoint(p.Checkpoint, f.verifier)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func (f *ledgerFixture) get(t *testing.T, path string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func (f *ledgerFixture) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	code, ctype, body := f.get(t, path)
	if code != http.StatusOK || ctype != "application/json" {
		t.Fatalf("GET %s = %d %q %s", path, code, ctype, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func TestLedgerRoutes(t *testing.T) {
	f := newLedgerFixture(t)
	if code, _, body := f.get(t, "/v1/checkpoint"); code != http.StatusNotFound {
		t.Errorf("GET /v1/checkpoint before any checkpoint = %d %s, want 404", code, body)
	}
	f.apply(governor.CustomerAccount, "requested", "default", "")
	f.apply(governor.CustomerAccount, "verified", "default", "")
	for i := range 300 {
		f.apply(governor.Billing, "usage_recorded", "2026-11", fmt.Sprintf(`{"meter":"api_calls","quantity":%d}`, i+1))
	}
	old := f.integrate(t)
	f.apply(governor.Billing, "refund_settled", "2026-11", "") // rejected: not allowed in open
	for i := range 40 {
		f.apply(governor.QuotaSLA, "limit_set", fmt.Sprintf("m-%d", i), `{"limit":100}`)
	}
	cp := f.integrate(t)

	t.Run("checkpoint and key", func(t *testing.T) {
		for _, path := range []string{"/v1/checkpoint", "/checkpoint"} {
			code, ctype, body := f.get(t, path)
			got, err := ledger.OpenCheckpoint(body, f.verifier)
			if code != http.StatusOK || ctype != "text/plain; charset=utf-8" || err != nil || got != cp {
				t.Errorf("GET %s = %d %q, %v, %v; want checkpoint %v", path, code, ctype, got, err, cp)
			}
		}
		_, _, key := f.get(t, "/v1/checkpoint/key")
		if v, err := ledger.NewVerifier(string(key)); err != nil || v.Name() != f.verifier.Name() || v.KeyHash() != f.verifier.KeyHash() {
			t.Errorf("GET /v1/checkpoint/key = %q, %v; want the verifier key", key, err)
		}
	})
	t.Run("inclusion", func(t *testing.T) {
		f.tap.mu.Lock()
		data := f.tap.receipts[5]
		f.tap.mu.Unlock()
		e, err := ledger.NewEntry(data, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []ledger.Checkpoint{cp, old} {
			var p ledger.InclusionProof
			f.getJSON(t, fmt.Sprintf("/v1/receipts/%s/proof?size=%d", e.Hash, c.Size), &p)
			if err := ledger.VerifyInclusion(&p.Receipt, &p, c); err != nil || p.Receipt.Hash != e.Hash {
				t.Errorf("VerifyInclusion(proof at size %d) = %v", c.Size, err)
			}
		}
	})
	t.Run("consistency", func(t *testing.T) {
		var p ledger.ConsistencyProof
		f.getJSON(t, fmt.Sprintf("/v1/proofs/consistency?from=%d", old.Size), &p)
		if err := ledger.VerifyConsistency(old, cp, &p); err != nil {
			t.Errorf("VerifyConsistency(%v, %v) = %v", old, cp, err)
		}
	})
	t.Run("tiles", func(t *testing.T) {
		client := &ledger.TileClient{Prefix: f.srv.URL}
		rep, err := ledger.Audit(t.Context(), client, cp)
		if err != nil || rep.Bundles != 2 {
			t.Fatalf("Audit(over HTTP) = %+v, %v; want 2 entry bundles checked", rep, err)
		}
		// A tile client proves inclusion from the tiles alone.
		r := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Root}, tileReader{t: t, c: client})
		leaves, err := ledger.DecodeBundle(must(client.EntryBundle(t.Context(), 1, int(cp.Size-256))))
		if err != nil {
			t.Fatal(err)
		}
		proof, err := tlog.ProveRecord(cp.Size, 300, r)
		if err != nil {
			t.Fatalf("ProveRecord from tiles = %v", err)
		}
		if err := tlog.CheckRecord(proof, cp.Size, cp.Root, 300, tlog.RecordHash(leaves[300-256])); err != nil {
			t.Errorf("CheckRecord(entry 300) = %v", err)
		}
		code, ctype, body := f.get(t, "/tile/0/000")
		if code != http.StatusOK || ctype != "application/octet-stream" || len(body) != 8192 {
			t.Errorf("GET /tile/0/000 = %d %q, %d bytes; want a full tile", code, ctype, len(body))
		}
	})
	t.Run("export", func(t *testing.T) {
		var e ledger.Export
		f.getJSON(t, "/v1/tenants/acme/ledger", &e)
		rep, err := ledger.VerifyExport(&e, cp)
		if err != nil || rep.Instances != 42 || rep.Included != int(cp.Size) || rep.Pending != 0 {
			t.Errorf("VerifyExport = %+v, %v; want 42 instances, %d receipts included", rep, err, cp.Size)
		}
		var older ledger.Export
		f.getJSON(t, fmt.Sprintf("/v1/tenants/acme/ledger?size=%d", old.Size), &older)
		rep, err = ledger.VerifyExport(&older, old)
		if err != nil || rep.Included != int(old.Size) || rep.Pending != int(cp.Size-old.Size) || older.Checkpoint != "" {
			t.Errorf("VerifyExport(at size %d) = %+v, %v; want %d included and %d pending", old.Size, rep, err, old.Size, cp.Size-old.Size)
		}
	})
	t.Run("errors", func(t *testing.T) {
		unknown := strings.Repeat("ab", 32)
		tests := []struct {
			path string
			want int
		}{
			{"/v1/receipts/xyz/proof", http.StatusBadRequest},
			{"/v1/receipts/" + unknown + "/proof", http.StatusNotFound},
			{"/v1/receipts/" + unknown + "/proof?size=0", http.StatusBadRequest},
			{fmt.Sprintf("/v1/receipts/%s/proof?size=%d", unknown, cp.Size+1), http.StatusBadRequest},
			{"/v1/proofs/consistency", http.StatusBadRequest},
			{"/v1/proofs/consistency?from=10&to=5", http.StatusBadRequest},
			{"/v1/proofs/consistency?from=x", http.StatusBadRequest},
			{"/tile/0/001", http.StatusNotFound},
			{"/tile/0/001.p/200", http.StatusNotFound},
			{"/tile/9/000", http.StatusNotFound},
			{"/tile/x/000", http.StatusBadRequest},
			{"/tile/entries/005", http.StatusNotFound},
			{"/v1/tenants/__bad/ledger", http.StatusBadRequest},
		}
		for _, tc := range tests {
			code, ctype, body := f.get(t, tc.path)
			if code != tc.want || ctype != "application/json" || !strings.Contains(string(body), `"error"`) {
				t.Errorf("GET %s = %d %q %s, want %d with a JSON error", tc.path, code, ctype, body, tc.want)
			}
		}
	})
}

func TestLedgerRegisterNil(t *testing.T) {
	mux := http.NewServeMux()
	var l *LedgerAPI
	l.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/checkpoint", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /v1/checkpoint without a ledger = %d, want 404", rec.Code)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// tileReader is the tlog.TileReader of a tile client, as a sumdb-style
// client reads tiles.
type tileReader struct {
	t *testing.T
	c *ledger.TileClient
}

func (r tileReader) Height() int { return ledger.TileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		d, err := r.c.Tile(r.t.Context(), t)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func (tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// TestQueryServesLedgerFromLedgerDatabase runs the API as main wires it,
// with the ledger in a database of its own: the checkpoint and the
// tenant's export come from the ledger's database, the chains from the
// governors'.
func TestQueryServesLedgerFromLedgerDatabase(t *testing.T) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST is not set; start the emulator (make emulators) and export FIRESTORE_EMULATOR_HOST=127.0.0.1:8780")
	}
	ctx := t.Context()
	project := fmt.Sprintf("query-test-%08x", rand.Uint32())
	clients := map[string]*fs.Client{}
	for _, db := range []string{"(default)", "ledger"} {
		c, err := fs.NewClientWithDatabase(ctx, project, db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients[db] = c
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	gov := firestore.New(clients["(default)"], firestore.Options{})
	k := governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}
	var entries []ledger.Entry
	for i := range 3 {
		err := gov.RunTx(ctx, func(ctx context.Context, tx store.Tx) error {
			inst, err := tx.Instance(k)
			if err != nil {
				return err
			}
			ev := governor.Event{ID: fmt.Sprint("ev-", i), Source: "//test", Type: governor.TypeOf(k.Domain, "usage_recorded"),
				Domain: k.Domain, Name: "usage_recorded", Tenant: k.Tenant, Subject: k.Subject}
			r := receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: inst.State, To: "open"}, time.Now())
			e, err := ledger.NewEntry(r.JSON(), time.Now())
			if err != nil {
				return err
			}
			entries = append(entries[:i], e)
			inst.State, inst.Version, inst.LastHash = "open", r.Seq, r.Hash
			return tx.Write(store.Changes{Instance: inst, Receipt: r})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	const name = "query-test"
	lst := firestore.NewLedger(clients["ledger"], firestore.LedgerOptions{Name: name})
	if _, err := lst.AddPending(ctx, entries); err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := ledger.GenerateKey("query.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ledger.NewIntegrator(ledger.IntegratorOptions{Store: lst, Witness: gov, Signer: signer, VerifierKey: vkey, Holder: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := in.Integrate(ctx); err != nil || p.Integrated != 3 {
		t.Fatalf("Integrate = %+v, %v", p, err)
	}
	api, err := newAPI(&platform.Clients{Firestore: clients["(default)"], LedgerFirestore: clients["ledger"], Store: gov, Logger: quiet}, name)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	f := &ledgerFixture{srv: srv}
	v, err := ledger.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	code, _, note := f.get(t, "/v1/checkpoint")
	cp, err := ledger.OpenCheckpoint(note, v)
	if code != http.StatusOK || err != nil || cp.Size != 3 {
		t.Fatalf("GET /v1/checkpoint = %d %s, %v; want the ledger database's checkpoint of size 3", code, note, err)
	}
	var e ledger.Export
	f.getJSON(t, "/v1/tenants/acme/ledger", &e)
	if rep, err := ledger.VerifyExport(&e, cp); err != nil || rep.Included != 3 {
		t.Errorf("VerifyExport = %+v, %v; want the 3 receipts of the governors' chain included", rep, err)
	}
}
