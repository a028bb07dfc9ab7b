// Command signup serves the Marketplace sign-up URL of Autonomics on Cloud
// Run: when a buyer finishes a purchase on Google Cloud Marketplace, the
// Marketplace posts a JWT in the form field x-gcp-marketplace-token to
// POST /signup. The service verifies it (RS256, keys published at the
// issuer URL, the provider's domain as audience, five minutes of life;
// see shared/marketplace/signup), ties the Procurement account to a
// tenant, and publishes customer_account.requested and .verified for that
// tenant. The governor's verified transition asks for
// marketplace.approve_account, which the Marketplace service's Procurement
// actuator performs: sign-up itself never calls the Procurement API.
//
// Cloud Run lets every request through (the buyer's browser posts the
// form); the token is the authentication, and a refused token changes
// nothing.
//
// Configuration: PORT (default 8080), AUTONOMICS_LISTEN_HOST, the
// AUTONOMICS_* variables of platform.FromEnv (the links live in
// AUTONOMICS_MONITOR_DATABASE) and the AUTONOMICS_MARKETPLACE_* variables
// listed in config.go.
package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/marketplace/fsmarketplace"
	"github.com/autonomics/autonomics/shared/marketplace/signup"
	"github.com/autonomics/autonomics/shared/platform"
)

func main() {
	if err := run(); err != nil {
		os.Stderr.WriteString("signup: " + err.Error() + "\n")
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
	clients, err := platform.Connect(ctx, cfg.Platform, "signup", os.Stdout)
	if err != nil {
		return err
	}
	defer clients.Close()
	accounts, err := fsmarketplace.New(clients.MonitorFirestore, fsmarketplace.Options{Namespace: cfg.Namespace})
	if err != nil {
		return err
	}
	o := signup.Options{
		Audience: cfg.Audience, Issuer: cfg.Issuer, Redirect: cfg.Redirect, Provider: cfg.Provider,
		HTTPClient: &http.Client{Timeout: signup.DefaultFetchTimeout},
		Accounts:   accounts, Publisher: clients.Publisher, Topics: clients.Topics, Logger: clients.Logger,
	}
	if clients.Telemetry != nil && clients.Telemetry.Meter != nil {
		o.MeterProvider = clients.Telemetry.Meter
	}
	srv, err := signup.New(o)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Addr: listen.Addr(os.Getenv), Handler: srv,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10,
	}
	clients.Logger.Info("sign-up listening", "addr", hs.Addr, "audience", cfg.Audience, "provider", cfg.Provider)
	err = listen.Serve(ctx, hs)
	clients.Logger.Info("sign-up stopped")
	return err
}
