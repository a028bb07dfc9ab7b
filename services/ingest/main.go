// Command ingest serves the authenticated ingest API of Autonomics on
// Cloud Run: producers outside Autonomics POST CloudEvents to /v1/events
// (binary, structured or batched mode), authenticated by a Google-signed
// ID token or an HMAC signature, authorised by the producer rules, checked
// as the governors will check them, and published to the domain topics
// with an answer per event (see shared/ingest).
//
// Cloud Run lets every request through to it (the invoker IAM check is
// off: HMAC producers are outside Google); the service authenticates each
// request itself.
//
// Usage:
//
//	ingest [-producers FILE] [-hmac-keys FILE]   serve
//	ingest -check [-producers FILE] [-hmac-keys FILE]   validate the configuration and print the producers
//	ingest -keygen                               print a new HMAC key (whsec_…)
//
// Configuration: PORT (default 8080), AUTONOMICS_LISTEN_HOST, the
// AUTONOMICS_* variables of platform.FromEnv, and
// AUTONOMICS_INGEST_PRODUCERS (or -producers), AUTONOMICS_INGEST_HMAC_KEYS
// (or -hmac-keys) and AUTONOMICS_INGEST_AUDIENCE, listed in config.go.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/autonomics/autonomics/services/ingest/ingestenv"
	"github.com/autonomics/autonomics/shared/ingest"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/platform"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		os.Stderr.WriteString("ingest: " + err.Error() + "\n")
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("ingest", flag.ContinueOnError)
	producers := fl.String("producers", "", "file holding the producer rules (instead of $"+ingestenv.Producers+")")
	keys := fl.String("hmac-keys", "", "file holding the HMAC keys (instead of $"+ingestenv.HMACKeys+")")
	check := fl.Bool("check", false, "validate the configuration, print the producers and exit")
	keygen := fl.Bool("keygen", false, "print a new HMAC key and exit")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *keygen {
		k, err := ingest.GenerateKey()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, k)
		return err
	}
	cfg, err := loadConfig(os.Getenv, os.ReadFile, sources{ProducersFile: *producers, KeysFile: *keys})
	if err != nil {
		return err
	}
	if *check {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cfg.Rules)
	}
	return serve(cfg)
}

// newServer builds the API on clients: accepted events go through
// clients.Publisher to the domain topics clients.Topics names; ID tokens
// are verified against cfg.Audience with Google's published keys.
func newServer(ctx context.Context, cfg config, clients *platform.Clients) (*ingest.Server, error) {
	var tokens ingest.TokenVerifier
	if cfg.Audience != "" {
		g, err := ingest.NewGoogleTokens(ctx, cfg.Audience)
		if err != nil {
			return nil, err
		}
		tokens = g
	}
	o := ingest.Options{
		Rules: cfg.Rules, Keys: cfg.Keys, Tokens: tokens,
		Publisher: clients.Publisher, Topics: clients.Topics, Logger: clients.Logger,
	}
	if clients.Telemetry != nil {
		o.MeterProvider = clients.Telemetry.Meter
	}
	return ingest.New(o)
}

func serve(cfg config) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	clients, err := platform.Connect(ctx, cfg.Platform, "ingest", os.Stdout)
	if err != nil {
		return err
	}
	defer clients.Close()
	srv, err := newServer(ctx, cfg, clients)
	if err != nil {
		return err
	}
	// Bodies are capped by the API; a client that sends one slowly is cut
	// off rather than allowed to hold a request slot.
	hs := &http.Server{
		Addr: listen.Addr(os.Getenv), Handler: srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 2 * time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	clients.Logger.Info("ingest API listening", "addr", hs.Addr, "producers", len(cfg.Rules.Producers()),
		"hmac_keys", len(cfg.Keys), "audience", cfg.Audience)
	err = listen.Serve(ctx, hs)
	clients.Logger.Info("ingest API stopped")
	return err
}
