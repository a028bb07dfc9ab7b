// Command query serves the read-only query API of Autonomics on Cloud Run:
// governor instances, receipts and chain verification per tenant, read
// from the governors' database (AUTONOMICS_FIRESTORE_DATABASE), and the
// verifiable ledger's checkpoint, proofs, exports and tiles, read from the
// ledger's database (AUTONOMICS_LEDGER_DATABASE, by default the same).
package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/platform"
)

// envLedgerName names the ledger to serve; the integrator writes the same.
const envLedgerName = "AUTONOMICS_LEDGER_NAME"

func main() {
	if err := run(); err != nil {
		os.Stderr.WriteString("query: " + err.Error() + "\n")
		os.Exit(1)
	}
}

// newAPI builds the API on rt: governors and receipts from rt.Store (the
// governors' database), the ledger named ledgerName from the ledger's
// database (rt.LedgerFirestore), its exports' chains from rt.Store.
func newAPI(rt *platform.Runtime, ledgerName string) (*API, error) {
	const op = "query.newAPI"
	switch {
	case rt.LedgerFirestore == nil:
		return nil, fault.Errorf(fault.Invalid, op, "no client of the ledger's database")
	case rt.Store == nil:
		return nil, fault.Errorf(fault.Invalid, op, "no store of the governors' database")
	}
	ledgerStore := firestore.NewLedger(rt.LedgerFirestore, firestore.LedgerOptions{Name: ledgerName})
	return &API{store: rt.Store, log: rt.Logger, ledger: NewLedgerAPI(ledgerStore, rt.Store, rt.Logger)}, nil
}

func run() error {
	cfg, err := platform.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rt, err := platform.Connect(ctx, cfg, "query", os.Stdout)
	if err != nil {
		return err
	}
	defer rt.Close()
	api, err := newAPI(rt, os.Getenv(envLedgerName))
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: listen.Addr(os.Getenv), Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	rt.Logger.Info("query API listening", "addr", srv.Addr)
	err = listen.Serve(ctx, srv)
	rt.Logger.Info("query API stopped")
	return err
}
