// Command actuator is the webhook actuator of Autonomics, on Cloud Run: it
// delivers every action the governors publish on the actions topic to the
// provider's HTTP endpoints as Standard Webhooks (see shared/webhook).
//
// It receives the push deliveries of the actions subscription at
// POST /v1/actions/push, records each action with one delivery per
// endpoint of its kind, and attempts them; POST /v1/sweep (Cloud
// Scheduler, every minute) attempts the retries that are due and reports
// the failures not yet reported. A delivery that fails for good is copied
// to the dead-letter topic and reported to the emitting governor as an
// actuation_failed event on its internal topic.
//
// The API:
//
//	PUT    /v1/endpoints/{id}                 create or replace an endpoint
//	GET    /v1/endpoints/{id}, /v1/endpoints  read (secrets redacted)
//	DELETE /v1/endpoints/{id}
//	POST   /v1/endpoints/{id}/replay?from=&to=[&after=&limit=]
//	GET    /v1/actions/{id}/attempts          deliveries and every attempt
//	POST   /v1/actions/{id}/redeliver[?endpoint=]
//	POST   /v1/sweep[?limit=]
//	POST   /v1/actions/push                   the actions subscription
//
// Its state lives in the monitor's Firestore database
// (AUTONOMICS_MONITOR_DATABASE) under actuators/{namespace}; it reads and
// writes nothing of the governors' database. Configuration: PORT, the
// AUTONOMICS_* variables of platform.FromEnv and the AUTONOMICS_ACTUATOR_*
// variables of config.go.
package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/fswebhook"
)

func main() {
	if err := run(); err != nil {
		os.Stderr.WriteString("actuator: " + err.Error() + "\n")
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
	clients, err := platform.Connect(ctx, cfg.Platform, "actuator", os.Stdout)
	if err != nil {
		return err
	}
	defer clients.Close()
	st, err := fswebhook.New(clients.MonitorFirestore, fswebhook.Options{Namespace: cfg.Namespace, Retention: cfg.Retention})
	if err != nil {
		return err
	}
	guard := cfg.Guard
	opts := webhook.Options{
		Store: st, Publisher: clients.Publisher, Topics: clients.Topics, Kinds: webhook.KindsOf(machines.New(nil)),
		Guard: &guard, Secrets: &webhook.CachedResolver{Next: &webhook.SecretManager{}, TTL: 5 * time.Minute},
		InlineSecrets: cfg.InlineSecrets, Policy: cfg.Policy, Logger: clients.Logger, EndpointCacheTTL: 5 * time.Second,
	}
	if clients.Telemetry != nil {
		opts.MeterProvider = clients.Telemetry.Meter
	}
	d, err := webhook.New(opts)
	if err != nil {
		return err
	}
	if len(cfg.Endpoints) > 0 {
		created, err := d.Seed(ctx, cfg.Endpoints)
		if err != nil {
			return err
		}
		clients.Logger.Info("initial endpoints", "configured", len(cfg.Endpoints), "created", len(created))
	}
	srv := &server{d: d, publisher: clients.Publisher, topics: clients.Topics, log: clients.Logger, callers: cfg.PushCallers, inlineWait: cfg.InlineWait}
	hs := &http.Server{Addr: listen.Addr(os.Getenv), Handler: srv.handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	loop, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		if cfg.SweepInterval <= 0 {
			return
		}
		t := time.NewTicker(cfg.SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-loop.Done():
				return
			case <-t.C:
				if _, err := d.Sweep(loop, 0); err != nil && loop.Err() == nil {
					clients.Logger.Error("sweep failed", "error", err.Error())
				}
			}
		}
	}()
	clients.Logger.Info("actuator listening", "addr", hs.Addr, "namespace", cfg.Namespace, "allow_loopback", guard.AllowLoopback,
		"allow_private", guard.AllowPrivate, "inline_secrets", cfg.InlineSecrets, "sweep_interval", cfg.SweepInterval.String(),
		"retry_initial", cfg.Policy.Initial.String(), "retry_max_age", cfg.Policy.MaxAge.String())
	err = listen.Serve(ctx, hs)
	clients.Logger.Info("actuator stopped serving")
	stopLoop()
	<-loopDone
	shutdown, cancel := context.WithTimeout(context.Background(), listen.DrainTimeout)
	defer cancel()
	// Attempts still in flight after this are repeated once their lease
	// expires: the same webhook-id, nothing lost.
	if werr := d.Wait(shutdown); werr != nil {
		clients.Logger.Warn("attempts still in flight at shutdown; they are repeated after their lease", "error", werr.Error())
	}
	return err
}
