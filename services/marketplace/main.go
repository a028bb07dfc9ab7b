// Command marketplace is the Google Cloud Marketplace side of Autonomics,
// on Cloud Run. It hears Marketplace and answers it:
//
//	POST /v1/notifications/push  the push subscription on the Marketplace's
//	                             partner topic: each notification is read
//	                             back from the Procurement API and turned
//	                             into governor events (shared/marketplace)
//	POST /v1/actions/push        the push subscription on autonomics-actions,
//	                             filtered to marketplace.*: the Procurement
//	                             actuator approves and rejects accounts,
//	                             entitlements and plan changes
//	                             (shared/marketplace/procurement)
//	POST /v1/reconcile           Cloud Scheduler: Procurement's entitlements
//	                             compared with the governors, drift corrected
//	POST /v1/usage/report        Cloud Scheduler, hourly: usage of the
//	                             Marketplace entitlements checked and
//	                             reported through Service Control
//	                             (shared/marketplace/usage)
//	GET  /healthz
//
// Only the Pub/Sub push identity and the scheduler may call it (Cloud Run
// IAM). Its state (account links, usage windows) lives in the monitor's
// Firestore database (AUTONOMICS_MONITOR_DATABASE); it reads the
// governors' database and writes nothing there. Configuration: PORT,
// AUTONOMICS_LISTEN_HOST, the AUTONOMICS_* variables of platform.FromEnv
// and the AUTONOMICS_MARKETPLACE_* variables of config.go.
package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/api/option"
	"google.golang.org/api/servicecontrol/v1"

	"github.com/autonomics/autonomics/services/marketplace/marketplaceenv"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/marketplace/fsmarketplace"
	"github.com/autonomics/autonomics/shared/marketplace/procurement"
	"github.com/autonomics/autonomics/shared/marketplace/usage"
	"github.com/autonomics/autonomics/shared/marketplace/usage/fsusage"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/webhook"
)

func main() {
	if err := run(); err != nil {
		os.Stderr.WriteString("marketplace: " + err.Error() + "\n")
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
	clients, err := platform.Connect(ctx, cfg.Platform, "marketplace", os.Stdout)
	if err != nil {
		return err
	}
	defer clients.Close()
	h, err := newHandler(ctx, cfg, clients)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Addr: listen.Addr(os.Getenv), Handler: h,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 10 * time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	clients.Logger.Info("marketplace listening", "addr", hs.Addr, "provider", cfg.Provider,
		"procurement", firstNonEmpty(cfg.ProcurementEndpoint, "Google"), "service_control", firstNonEmpty(cfg.ServiceControlEndpoint, "Google"))
	err = listen.Serve(ctx, hs)
	clients.Logger.Info("marketplace stopped")
	return err
}

// newHandler wires the adapter, the actuator, the reconciler and the
// usage reporter on clients.
func newHandler(ctx context.Context, cfg config, clients *platform.Clients) (http.Handler, error) {
	accounts, err := fsmarketplace.New(clients.MonitorFirestore, fsmarketplace.Options{Namespace: cfg.Namespace})
	if err != nil {
		return nil, err
	}
	client, err := procurement.NewClient(ctx, cfg.Provider, clientOptions(cfg.ProcurementEndpoint)...)
	if err != nil {
		return nil, err
	}
	var mp metric.MeterProvider
	if clients.Telemetry != nil && clients.Telemetry.Meter != nil {
		mp = clients.Telemetry.Meter
	}
	adapter, err := marketplace.NewAdapter(marketplace.AdapterOptions{
		Provider: cfg.Provider, Procurement: client, Accounts: accounts,
		Publisher: clients.Publisher, Topics: clients.Topics, Logger: clients.Logger, MeterProvider: mp, Callers: cfg.PushCallers,
	})
	if err != nil {
		return nil, err
	}
	actuator, err := procurement.NewActuator(procurement.ActuatorOptions{
		Client: client, Accounts: accounts, Publisher: clients.Publisher, Topics: clients.Topics,
		Kinds: webhook.KindsOf(machines.New(nil)), Logger: clients.Logger, MeterProvider: mp,
		GiveUpAfter: cfg.GiveUpAfter, Callers: cfg.PushCallers, MaxDeliveries: cfg.MaxDeliveries,
	})
	if err != nil {
		return nil, err
	}
	reconciler, err := marketplace.NewReconciler(marketplace.ReconcilerOptions{
		Provider: cfg.Provider, Procurement: client, Accounts: accounts, Governors: clients.Store,
		Publisher: clients.Publisher, Topics: clients.Topics, Logger: clients.Logger, MeterProvider: mp, Callers: cfg.SchedulerCallers,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+marketplace.PushPath, adapter.Handler())
	mux.Handle("POST "+actionsPath, actuator.Handler())
	mux.Handle("POST "+marketplace.ReconcilePath, reconciler.Handler())
	if cfg.Service != "" {
		windows, err := fsusage.New(clients.MonitorFirestore, fsusage.Options{Namespace: cfg.Namespace})
		if err != nil {
			return nil, err
		}
		sc, err := servicecontrol.NewService(ctx, clientOptions(cfg.ServiceControlEndpoint)...)
		if err != nil {
			return nil, err
		}
		reporter, err := usage.New(usage.Options{
			Service: cfg.Service, Client: sc, Accounts: accounts, Governors: clients.Store, Windows: windows,
			Publisher: clients.Publisher, Topics: clients.Topics, Metrics: cfg.UsageMetrics, Window: cfg.UsageWindow,
			Logger: clients.Logger, MeterProvider: mp, Callers: cfg.SchedulerCallers,
		})
		if err != nil {
			return nil, err
		}
		mux.Handle("POST "+usage.Path, reporter.Handler())
	} else {
		// The scheduler's job answers 200: with no service, there is
		// nothing to report, which is not a failure to alert on.
		mux.HandleFunc("POST "+usage.Path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"reported":0,"note":"usage reporting is off: ` + marketplaceenv.Service + ` is not set"}` + "\n"))
		})
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	return mux, nil
}

// clientOptions points a Google client at endpoint when one is set: the
// local stand-ins take no credentials.
func clientOptions(endpoint string) []option.ClientOption {
	if endpoint == "" {
		return nil
	}
	opts := []option.ClientOption{option.WithEndpoint(endpoint)}
	if isLoopback(endpoint) {
		opts = append(opts, option.WithoutAuthentication())
	}
	return opts
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
