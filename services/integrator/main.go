// Command integrator appends every receipt of Autonomics to the
// verifiable ledger, a Merkle log with signed checkpoints (C2SP
// tlog-checkpoint), on Cloud Run.
//
// It receives the push deliveries of the receipts topic at
// POST /v1/receipts/push. One instance at a time, holding a lease in
// Firestore, integrates receipts in batches from its own loop: a push
// reaching it waits for the batch that includes its receipt to be
// committed (group commit, one write per receipt), and a push reaching
// another instance is recorded as pending for the holder, which takes
// pending receipts every AUTONOMICS_LEDGER_INTERVAL and on
// POST /v1/integrate (Cloud Scheduler); a push wakes an idle loop.
// Each batch ends with a new signed
// checkpoint, published on the checkpoints topic.
//
// A pending receipt is integrated only if the governors stored it: every
// batch is checked, in one batched read, against the receipts in the
// governors' database (AUTONOMICS_FIRESTORE_DATABASE), which the
// integrator only reads; the others are dropped, counted
// (receipts_forged in GET /v1/stats, the autonomics.ledger.receipts.refused
// metric) and logged. The ledger itself lives in
// AUTONOMICS_LEDGER_DATABASE (by default the same database).
//
// Usage:
//
//	integrator                      serve (configuration from the environment)
//	integrator -keygen -out FILE    write a new signer key to FILE, print its verifier key
//	integrator -verifier-key        print the verifier key of the configured signer key
//
// GET /v1/checkpoint serves the latest checkpoint, GET /v1/checkpoint/key
// the verifier key and GET /v1/stats the running totals.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/autonomics/autonomics/services/integrator/integratorenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/store"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		os.Stderr.WriteString("integrator: " + err.Error() + "\n")
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("integrator", flag.ContinueOnError)
	keygen := fl.Bool("keygen", false, "write a new signer key to -out and print its verifier key")
	out := fl.String("out", "", "file for the new signer key (with -keygen)")
	origin := fl.String("origin", "", "origin (key name) of the new key; default $"+integratorenv.Origin+" or "+DefaultOrigin)
	force := fl.Bool("force", false, "with -keygen, replace an existing key file")
	printKey := fl.Bool("verifier-key", false, "print the verifier key of the configured signer key")
	if err := fl.Parse(args); err != nil {
		return err
	}
	switch {
	case *keygen:
		o := *origin
		if o == "" {
			o = os.Getenv(integratorenv.Origin)
		}
		if o == "" {
			o = DefaultOrigin
		}
		return writeKey(*out, o, *force, stdout)
	case *printKey:
		key, err := signingKey(os.Getenv, os.ReadFile)
		if err != nil {
			return err
		}
		_, vkey, err := ledger.NewSigner(key)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, vkey)
		return err
	}
	return serve()
}

// writeKey writes a new signer key named origin to file (mode 0600) and
// prints its verifier key.
func writeKey(file, origin string, force bool, stdout io.Writer) error {
	if file == "" {
		return errors.New("-keygen needs -out FILE")
	}
	skey, vkey, err := ledger.GenerateKey(origin)
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(file, flags, 0o600)
	if err != nil {
		return fmt.Errorf("key file: %w (use -force to replace it)", err)
	}
	if _, err := fmt.Fprintln(f, skey); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, vkey)
	return err
}

// newService builds the server and its integrator on clients: the ledger
// in the ledger's database (clients.LedgerFirestore); the governors'
// receipts, the integrator's witness, read (and only read) from the
// governors' database (clients.Firestore); checkpoints published through
// clients.Publisher when it is set.
func newService(cfg config, clients *platform.Clients) (*server, error) {
	const op = "integrator.newService"
	switch {
	case clients.LedgerFirestore == nil:
		return nil, fault.Errorf(fault.Invalid, op, "no client of the ledger's database")
	case clients.Firestore == nil:
		return nil, fault.Errorf(fault.Invalid, op, "no client of the governors' database")
	}
	st := firestore.NewLedger(clients.LedgerFirestore, firestore.LedgerOptions{Name: cfg.LedgerName})
	governors := firestore.New(clients.Firestore, firestore.Options{})
	srv := &server{store: st, verifierKey: cfg.VerifierKey, log: clients.Logger, clock: time.Now}
	opts := ledger.IntegratorOptions{
		Store: st, Witness: governors, Signer: cfg.Signer, VerifierKey: cfg.VerifierKey, Holder: cfg.Holder,
		LeaseTTL: cfg.LeaseTTL, BatchSize: cfg.BatchSize, Logger: clients.Logger, Observe: srv.observe,
	}
	if clients.Telemetry != nil {
		opts.MeterProvider = clients.Telemetry.Meter
	}
	if clients.Publisher != nil {
		topic := clients.Topics.Checkpoints()
		opts.Publish = func(ctx context.Context, signed []byte, cp ledger.Checkpoint) error {
			return clients.Publisher.Publish(ctx, store.Message{Topic: topic, Data: signed, Attributes: map[string]string{
				"content-type": "text/plain; charset=utf-8",
				"origin":       cp.Origin,
				"tree_size":    fmt.Sprint(cp.Size),
			}})
		}
	}
	var err error
	if srv.integrator, err = ledger.NewIntegrator(opts); err != nil {
		return nil, err
	}
	return srv, nil
}

func serve() error {
	cfg, err := loadConfig(os.Getenv, os.ReadFile)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	clients, err := platform.Connect(ctx, cfg.Platform, "integrator", os.Stdout)
	if err != nil {
		return err
	}
	defer clients.Close()
	srv, err := newService(cfg, clients)
	if err != nil {
		return err
	}
	loop, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		if cfg.Interval > 0 {
			_ = srv.integrator.Run(loop, cfg.Interval, cfg.Idle)
		}
	}()
	hs := &http.Server{Addr: listen.Addr(os.Getenv), Handler: srv.handler(), ReadHeaderTimeout: 10 * time.Second}
	clients.Logger.Info("integrator listening", "addr", hs.Addr, "origin", cfg.Signer.Name(), "verifier_key", cfg.VerifierKey,
		"holder", cfg.Holder, "ledger", cfg.LedgerName, "interval", cfg.Interval.String(), "idle", cfg.Idle.String(), "batch", cfg.BatchSize)
	err = listen.Serve(ctx, hs)
	clients.Logger.Info("integrator stopped serving")
	shutdown, cancel := context.WithTimeout(context.Background(), listen.DrainTimeout)
	defer cancel()
	stopLoop()
	<-loopDone
	if rerr := srv.integrator.Release(shutdown); rerr != nil {
		clients.Logger.Warn("lease not released; it expires on its own", "error", rerr.Error())
	}
	return err
}
