package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/ledger/memledger"
	"github.com/autonomics/autonomics/shared/receipt"
)

// chains is a ledger.ChainReader over receipts held in memory.
type chains map[governor.Key][]receipt.Receipt

func (c chains) Instances(_ context.Context, tenant string, _ governor.Domain) ([]governor.Instance, error) {
	var out []governor.Instance
	for k := range c {
		if k.Tenant == tenant {
			out = append(out, governor.Instance{Key: k})
		}
	}
	return out, nil
}

func (c chains) Chain(_ context.Context, k governor.Key, after int64, _ int) ([]receipt.Receipt, error) {
	var out []receipt.Receipt
	for _, r := range c[k] {
		if r.Seq > after {
			out = append(out, r)
		}
	}
	return out, nil
}

// StoredHashes makes chains the integrator's witness: the receipts the
// governors stored are those of the chains.
func (c chains) StoredHashes(_ context.Context, refs []ledger.ReceiptRef) (map[ledger.ReceiptRef]string, error) {
	out := map[ledger.ReceiptRef]string{}
	for _, r := range refs {
		for _, rec := range c[r.Key] {
			if rec.Seq == r.Seq {
				out[r] = rec.Hash
			}
		}
	}
	return out, nil
}

// world is a ledger with two checkpoints, written to files.
type world struct {
	dir     string
	store   *memledger.Store
	log     *ledger.Log
	in      *ledger.Integrator
	chains  chains
	key     string // verifier key file
	old, cp string // checkpoint files
	rs      []receipt.Receipt
}

func (w *world) path(name string) string { return filepath.Join(w.dir, name) }

func (w *world) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := w.path(name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) writeJSON(t *testing.T, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return w.write(t, name, b)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: t.TempDir(), store: memledger.New(), chains: chains{}}
	w.log = ledger.NewLog(w.store)
	skey, vkey, err := ledger.GenerateKey("verifier.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	w.key = w.write(t, "vkey", []byte(vkey+"\n"))
	in, err := ledger.NewIntegrator(ledger.IntegratorOptions{Store: w.store, Witness: w.chains, Signer: signer, VerifierKey: vkey, Holder: "t",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.in = in
	insts := []governor.Instance{
		{Key: governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}},
		{Key: governor.Key{Tenant: "acme", Domain: governor.QuotaSLA, Subject: "api_calls"}},
		{Key: governor.Key{Tenant: "globex", Domain: governor.Billing, Subject: "2026-11"}},
	}
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for round, n := range []int{300, 60} {
		var es []ledger.Entry
		for i := range n {
			inst := &insts[i%len(insts)]
			ev := governor.Event{ID: fmt.Sprintf("ev-%d-%d", round, i), Source: "//test", Type: governor.TypeOf(inst.Domain, "step"),
				Domain: inst.Domain, Name: "step", Tenant: inst.Tenant, Subject: inst.Subject}
			r := receipt.New(*inst, ev, governor.Decision{Outcome: governor.Accepted, From: "a", To: "b"}, at)
			inst.Version, inst.LastHash = r.Seq, r.Hash
			w.chains[inst.Key] = append(w.chains[inst.Key], r)
			w.rs = append(w.rs, r)
			e, err := ledger.NewEntry(r.JSON(), at)
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, e)
		}
		if _, err := w.store.AddPending(t.Context(), es); err != nil {
			t.Fatal(err)
		}
		p, err := in.Integrate(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		name := "cp.txt"
		if round == 0 {
			name = "old.txt"
		}
		file := w.write(t, name, p.Checkpoint)
		if round == 0 {
			w.old = file
		} else {
			w.cp = file
		}
	}
	return w
}

// serve serves the log's checkpoint and tiles as the query API does.
func (w *world) serve(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkpoint", func(rw http.ResponseWriter, r *http.Request) {
		st, err := w.log.State(r.Context())
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		rw.Write(st.Checkpoint)
	})
	mux.HandleFunc("GET /tile/{path...}", func(rw http.ResponseWriter, r *http.Request) {
		tile, err := ledger.ParseTilePath("tile/" + r.PathValue("path"))
		var data []byte
		if err == nil {
			if tile.L == -1 {
				data, err = w.log.EntryBundle(r.Context(), tile.N, tile.W)
			} else {
				data, err = w.log.Tile(r.Context(), tile)
			}
		}
		if err != nil {
			http.Error(rw, err.Error(), http.StatusNotFound)
			return
		}
		rw.Write(data)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestVerifier(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	r := w.rs[7]
	proof, err := w.log.InclusionProof(ctx, r.Hash, 0)
	if err != nil {
		t.Fatal(err)
	}
	proofFile := w.writeJSON(t, "proof.json", proof)
	receiptFile := w.write(t, "receipt.json", r.JSON())
	tampered := r
	tampered.ToState = "z"
	tamperedFile := w.write(t, "tampered.json", tampered.JSON())
	rehashed := tampered
	rehashed.Hash = rehashed.ComputeHash()
	rehashedFile := w.write(t, "rehashed.json", rehashed.JSON())
	oldProof, err := w.log.InclusionProof(ctx, r.Hash, 300)
	if err != nil {
		t.Fatal(err)
	}
	oldProofFile := w.writeJSON(t, "old-proof.json", oldProof)
	cons, err := w.log.ConsistencyProof(ctx, 300, 360)
	if err != nil {
		t.Fatal(err)
	}
	consFile := w.writeJSON(t, "consistency.json", cons)
	exp, err := w.log.Export(ctx, w.chains, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	exportFile := w.writeJSON(t, "export.json", exp)
	broken := *exp
	broken.Instances = append([]ledger.ExportInstance(nil), exp.Instances...)
	inst := broken.Instances[0]
	inst.Receipts = append([]ledger.ExportReceipt(nil), inst.Receipts...)
	inst.Receipts = append(inst.Receipts[:3], inst.Receipts[4:]...) // one receipt withheld
	broken.Instances[0] = inst
	brokenFile := w.writeJSON(t, "broken-export.json", broken)
	otherKey, _, err := ledger.GenerateKey("verifier.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, _, err := ledger.NewSigner(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	cpBody, err := ledger.CheckpointOf(mustRead(t, w.cp))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := ledger.SignCheckpoint(cpBody, otherSigner)
	if err != nil {
		t.Fatal(err)
	}
	forgedFile := w.write(t, "forged.txt", forged)
	url := w.serve(t)
	vkey := strings.TrimSpace(string(mustRead(t, w.key)))

	tests := []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"inclusion", []string{"inclusion", "-proof", proofFile, "-checkpoint", w.cp, "-key", w.key}, 0, "OK: receipt " + r.Hash},
		{"inclusion with receipt file and inline key", []string{"inclusion", "-receipt", receiptFile, "-proof", proofFile, "-checkpoint", w.cp, "-key", vkey}, 0, "is entry"},
		{"inclusion of an altered receipt", []string{"inclusion", "-receipt", tamperedFile, "-proof", proofFile, "-checkpoint", w.cp, "-key", w.key}, 1, "bad_receipt"},
		{"inclusion of an altered, rehashed receipt", []string{"inclusion", "-receipt", rehashedFile, "-proof", proofFile, "-checkpoint", w.cp, "-key", w.key}, 1, "wrong_receipt"},
		{"inclusion against the older checkpoint", []string{"inclusion", "-proof", proofFile, "-checkpoint", w.old, "-key", w.key}, 1, "wrong_tree_size"},
		{"inclusion at the older size", []string{"inclusion", "-proof", oldProofFile, "-checkpoint", w.old, "-key", w.key}, 0, "ledger@300"},
		{"inclusion with a checkpoint signed by another key", []string{"inclusion", "-proof", proofFile, "-checkpoint", forgedFile, "-key", w.key}, 1, "signature"},
		{"inclusion without a proof", []string{"inclusion", "-checkpoint", w.cp, "-key", w.key}, 2, "-proof is required"},
		{"consistency", []string{"consistency", "-old", w.old, "-new", w.cp, "-proof", consFile, "-key", w.key}, 0, "extends"},
		{"consistency backwards", []string{"consistency", "-old", w.cp, "-new", w.old, "-proof", consFile, "-key", w.key}, 1, "inconsistent"},
		{"ledger export", []string{"ledger", "-export", exportFile, "-key", w.key}, 0, "2 instances, every chain intact, 240 receipts included"},
		{"ledger export against the older checkpoint", []string{"ledger", "-export", exportFile, "-checkpoint", w.old, "-key", w.key}, 1, "wrong_tree_size"},
		{"ledger export with a receipt withheld", []string{"ledger", "-export", brokenFile, "-key", w.key}, 1, "broken_chain"},
		{"audit", []string{"audit", "-url", url, "-key", w.key}, 0, "2 entry bundles consistent"},
		{"audit against a given checkpoint", []string{"audit", "-url", url, "-checkpoint", w.old, "-key", w.key}, 0, "@300"},
		{"unknown command", []string{"prove"}, 2, "unknown command"},
		{"no command", nil, 2, "usage"},
		{"bad key", []string{"ledger", "-export", exportFile, "-key", "/nonexistent"}, 1, "neither a verifier key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			status := run(tc.args, &out, &errOut)
			text := out.String() + errOut.String()
			if status != tc.status || !strings.Contains(text, tc.want) {
				t.Errorf("run(%q) = %d, %q; want %d and output containing %q", tc.args, status, text, tc.status, tc.want)
			}
		})
	}

	t.Run("audit of a tampered tile", func(t *testing.T) {
		orig, err := w.store.Tiles(ctx, []tlog.Tile{{H: ledger.TileHeight, L: 0, N: 0, W: 256}})
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(orig[0])
		bad[100] ^= 1
		w.store.SetTile(0, 0, bad)
		defer w.store.SetTile(0, 0, orig[0])
		var out, errOut bytes.Buffer
		status := run([]string{"audit", "-url", url, "-key", w.key}, &out, &errOut)
		if status != 1 || !strings.Contains(errOut.String(), "tile/0/000") || !strings.Contains(errOut.String(), "tile_mismatch") {
			t.Errorf("audit of a tampered tile = %d, %q; want a tile_mismatch at tile/0/000", status, errOut.String())
		}
	})
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forgeAt makes up an intact receipt of k's instance at seq, chained to
// prev, as anyone with the shared receipt code can.
func forgeAt(k governor.Key, seq int64, prev string) receipt.Receipt {
	inst := governor.Instance{Key: k, State: "b", Version: seq - 1, LastHash: prev}
	ev := governor.Event{ID: fmt.Sprint("mallory-", seq), Source: "//mallory", Type: governor.TypeOf(k.Domain, "step"),
		Domain: k.Domain, Name: "step", Tenant: k.Tenant, Subject: k.Subject}
	return receipt.New(inst, ev, governor.Decision{Outcome: governor.Accepted, From: "b", To: "forged"}, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
}

// TestVerifierNamesFork gets a second receipt for one place, or a second
// receipt after one prev_hash, into a log (through a rewritten governors'
// store, or a log written before the integrator asked the governors):
// verifier audit and verifier ledger fail and name both entries and the
// instance and seq.
func TestVerifierNamesFork(t *testing.T) {
	k := governor.Key{Tenant: "acme", Domain: governor.Billing, Subject: "2026-11"}
	tests := []struct {
		name string
		// fork returns the receipt to add beside the genuine receipt g.
		fork func(g receipt.Receipt) receipt.Receipt
		// where returns the instance and seqs the failure must name.
		where func(g, f receipt.Receipt) string
	}{
		{"same seq", func(g receipt.Receipt) receipt.Receipt { return forgeAt(k, g.Seq, g.PrevHash) },
			func(g, _ receipt.Receipt) string { return fmt.Sprintf("acme/billing/2026-11 seq %d", g.Seq) }},
		{"same prev_hash", func(g receipt.Receipt) receipt.Receipt { return forgeAt(k, g.Seq+1000, g.PrevHash) },
			func(g, f receipt.Receipt) string {
				return fmt.Sprintf("acme/billing/2026-11 seq %d and seq %d", g.Seq, f.Seq)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			genuine := w.chains[k][7]
			forged := tc.fork(genuine)
			// The governors' store now holds the forged receipt too.
			w.chains[k] = append(w.chains[k], forged)
			e, err := ledger.NewEntry(forged.JSON(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.store.AddPending(t.Context(), []ledger.Entry{e}); err != nil {
				t.Fatal(err)
			}
			p, err := w.in.Integrate(t.Context())
			if err != nil || p.Integrated != 1 {
				t.Fatalf("Integrate(fork) = %+v, %v", p, err)
			}
			index := func(r receipt.Receipt) int64 {
				f, err := w.store.Lookup(t.Context(), []string{r.Hash})
				if err != nil || f[r.Hash].Index < 0 {
					t.Fatalf("Lookup(%s) = %v, %v", r.Hash, f, err)
				}
				return f[r.Hash].Index
			}
			i, j := index(genuine), index(forged)
			cpFile := w.write(t, "fork-cp.txt", p.Checkpoint)
			var out, errOut bytes.Buffer
			status := run([]string{"audit", "-url", w.serve(t), "-key", w.key}, &out, &errOut)
			msg := errOut.String()
			for _, want := range []string{"fork", fmt.Sprintf("entries %d and %d", i, j), tc.where(genuine, forged)} {
				if status != 1 || !strings.Contains(msg, want) {
					t.Errorf("verifier audit of a forked log = %d, %q; want 1 and a failure naming %s", status, msg, want)
				}
			}
			// The tenant's export, listing both receipts of the instance.
			exp, err := w.log.Export(t.Context(), w.chains, "acme", 0)
			if err != nil {
				t.Fatal(err)
			}
			for n := range exp.Instances {
				ei := &exp.Instances[n]
				if ei.Domain == string(k.Domain) && ei.Subject == k.Subject {
					last := ei.Receipts[len(ei.Receipts)-1]
					ei.Receipts = append(ei.Receipts[:8:8], append([]ledger.ExportReceipt{last}, ei.Receipts[8:len(ei.Receipts)-1]...)...)
				}
			}
			out.Reset()
			errOut.Reset()
			status = run([]string{"ledger", "-export", w.writeJSON(t, "fork-export.json", exp), "-checkpoint", cpFile, "-key", w.key}, &out, &errOut)
			msg = errOut.String()
			for _, want := range []string{"fork", fmt.Sprintf("index %d and index %d", i, j), tc.where(genuine, forged)} {
				if status != 1 || !strings.Contains(msg, want) {
					t.Errorf("verifier ledger of an export with a fork = %d, %q; want 1 and a failure naming %s", status, msg, want)
				}
			}
		})
	}
}
