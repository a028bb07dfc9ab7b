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

func main() {
	if err := run(); err != nil {
		os.Stderr.WriteString("query: " + err.Error() + "\n")
		os.Exit(1)
	}
}

// newAPI builds the API on clients: governors and receipts from
// clients.Store (the governors' database), the ledger named ledgerName
// from the ledger's database (clients.LedgerFirestore), its exports'
// chains from clients.Store.
func newAPI(clients *platform.Clients, ledgerName string) (*API, error) {
	const op = "query.newAPI"
	switch {
	case clients.LedgerFirestore == nil:
		return nil, fault.Errorf(fault.Invalid, op, "no client of the ledger's database")
	case clients.Store == nil:
		return nil, fault.Errorf(fault.Invalid, op, "no store of the governors' database")
	}
	ledgerStore := firestore.NewLedger(clients.LedgerFirestore, firestore.LedgerOptions{Name: ledgerName})
	return &API{store: clients.Store, log: clients.Logger, ledger: NewLedgerAPI(ledgerStore, clients.Store, clients.Logger)}, nil
}

func run() error {
	cfg, err := platform.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	clients, err := platform.Connect(ctx, cfg, "query", os.Stdout)
	if err != nil {
		return err
	}
	defer clients.Close()
	api, err := newAPI(clients, os.Getenv(platform.EnvLedgerName))
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: listen.Addr(os.Getenv), Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	clients.Logger.Info("query API listening", "addr", srv.Addr)
	err = listen.Serve(ctx, srv)
	clients.Logger.Info("query API stopped")
	return err
}
