// Command query serves the read-only query API of Autonomics on Cloud Run:
// governor instances, receipts and chain verification per tenant
// (DESIGN.md §6).
package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/autonomics/autonomics/shared/firestore"
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

func run() error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
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
	ledgerStore := firestore.NewLedger(rt.Firestore, firestore.LedgerOptions{Name: os.Getenv(envLedgerName)})
	api := &API{store: rt.Store, log: rt.Logger, ledger: NewLedgerAPI(ledgerStore, rt.Store, rt.Logger)}
	srv := &http.Server{Addr: ":" + port, Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	rt.Logger.Info("query API listening", "port", port)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	rt.Logger.Info("query API draining")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
