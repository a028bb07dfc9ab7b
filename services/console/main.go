// Command console serves the operator console of Autonomics on Cloud Run:
// server-rendered pages (tenants, their governors drawn as state diagrams,
// timelines, cascades, verification in the browser, alerts and silences,
// dead letters with replay, the ledger's checkpoints) and the JSON API
// under /api/v1/ that autonomicsctl uses (see shared/console and
// shared/console/web).
//
// Cloud Run IAM lets only operators (var.console_invokers) and the Pub/Sub
// push identity in; the console logs the caller of every change. The
// dead-letter topic is pushed to POST /v1/deadletters/push. Dead letters
// and the checkpoint history live in the monitor's Firestore database
// (AUTONOMICS_MONITOR_DATABASE); the governors' and the ledger's databases
// are only read. Operator events and replays go to the domain topics, so
// the governors check them like any event from outside. Test clocks
// (POST /api/v1/tenants/{t}/clock:advance) exist only where AUTONOMICS_ENV
// is not prod.
//
// Configuration: PORT, AUTONOMICS_LISTEN_HOST, the AUTONOMICS_* variables
// of platform.FromEnv and the AUTONOMICS_CONSOLE_* variables of config.go.
package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"google.golang.org/api/idtoken"

	"github.com/autonomics/autonomics/shared/caller"
	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/console/fsconsole"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/ledger"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/platform"
)

func main() {
	if err := run(); err != nil {
		os.Stderr.WriteString("console: " + err.Error() + "\n")
		os.Exit(1)
	}
}

func run() error {
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	clients, err := platform.Connect(ctx, cfg.Platform, "console", os.Stdout)
	if err != nil {
		return err
	}
	defer clients.Close()
	c, err := newConsole(ctx, cfg, clients)
	if err != nil {
		return err
	}
	go refreshCheckpoints(ctx, c, cfg.CheckpointInterval, clients)
	h, err := newHandler(c, cfg)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Addr: listen.Addr(os.Getenv), Handler: h,
		// No write timeout: the stream's handler bounds its own lifetime.
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	clients.Logger.Info("console listening", "addr", hs.Addr, "monitor", cfg.MonitorURL, "test_clock", cfg.Platform.TestClock())
	err = listen.Serve(ctx, hs)
	clients.Logger.Info("console stopped")
	return err
}

// newConsole wires the console's data on clients.
func newConsole(ctx context.Context, cfg config, clients *platform.Clients) (*console.Console, error) {
	records, err := fsconsole.New(clients.MonitorFirestore, fsconsole.Options{Namespace: cfg.Namespace})
	if err != nil {
		return nil, err
	}
	o := console.Options{
		Store: clients.Store, Records: records, Publisher: clients.Publisher, Topics: clients.Topics, Logger: clients.Logger,
		Ledger: ledger.NewLog(firestore.NewLedger(clients.LedgerFirestore, firestore.LedgerOptions{})),
	}
	if cfg.MonitorURL != "" {
		hc := &http.Client{Timeout: 30 * time.Second}
		if !isLoopback(cfg.MonitorURL) {
			if hc, err = idtoken.NewClient(ctx, cfg.MonitorURL); err != nil {
				return nil, fault.Wrap(fault.Unavailable, "console.monitor", err)
			}
			hc.Timeout = 30 * time.Second
		}
		if o.Monitor, err = console.NewMonitorClient(cfg.MonitorURL, hc); err != nil {
			return nil, err
		}
	}
	if cfg.Platform.TestClock() {
		if o.Clock, err = newTestClock(clients); err != nil {
			return nil, err
		}
	}
	return console.New(o)
}

// newHandler routes the dead-letter push (only from the push identity when
// one is configured), the JSON API and the pages.
func newHandler(c *console.Console, cfg config) (http.Handler, error) {
	mux := http.NewServeMux()
	api := c.APIHandler()
	mux.Handle(console.APIPrefix, api)
	mux.Handle("POST "+console.PushPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(cfg.PushCallers) > 0 && !slices.Contains(cfg.PushCallers, caller.Email(r)) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":{"code":"forbidden","message":"only the push identity may push dead letters"}}` + "\n"))
			return
		}
		api.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	if err := mountPages(mux, c); err != nil {
		return nil, err
	}
	return mux, nil
}

// refreshCheckpoints records the ledger's checkpoint in the history every
// interval, until ctx ends.
func refreshCheckpoints(ctx context.Context, c *console.Console, every time.Duration, clients *platform.Clients) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := c.RefreshCheckpoint(ctx); err != nil && ctx.Err() == nil {
			clients.Logger.Warn("checkpoint not recorded; the next refresh retries", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
