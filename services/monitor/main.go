// Command monitor serves the monitor and alerting service of Autonomics on
// Cloud Run: instance health, metric ingestion (POST /v1/metrics and the
// push subscription of the receipts topic), alert policies, alerts,
// silences, evaluation (its own ticker and POST /v1/evaluate from Cloud
// Scheduler, run only by the holder of the evaluation lease) and
// notifications to the alerts topic, plus the noisy-neighbour detector
// that publishes to the multi_tenant internal topic.
//
// Alert state, policies, silences and the lease live in the monitor's
// Firestore database (AUTONOMICS_MONITOR_DATABASE, by default the
// governors' one) under monitors/{AUTONOMICS_MONITOR_NAMESPACE}; the health
// checks of the governors' outbox and timers read the governors' database.
// Metric series live in the metrics engine, which the policies query in
// PromQL: Managed Service for Prometheus in production
// (AUTONOMICS_MONITOR_PROMETHEUS_URL, by default the project's), a
// Prometheus server locally. The instance keeps no series, so any number
// of instances serve the API; the lease keeps evaluation to one of them,
// and a recycled instance loses nothing.
//
// Configuration: PORT (default 8080), the AUTONOMICS_* variables of
// platform.FromEnv, and the AUTONOMICS_MONITOR_* variables listed in
// config.go.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"golang.org/x/oauth2/google"

	"github.com/autonomics/autonomics/services/monitor/monitorenv"
	"github.com/autonomics/autonomics/shared/alerting/prom"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/health"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/platform"
)

func main() {
	if err := run(); err != nil {
		os.Stderr.WriteString("monitor: " + err.Error() + "\n")
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
	clients, err := platform.Connect(ctx, cfg.Platform, "monitor", os.Stdout)
	if err != nil {
		return err
	}
	defer clients.Close()
	d, err := wire(clients, cfg)
	if err != nil {
		return err
	}
	svc, err := newService(d)
	if err != nil {
		return err
	}
	// Bodies are small and capped; a client that sends one slowly is cut
	// off rather than allowed to hold a decoding slot.
	srv := &http.Server{Addr: listen.Addr(os.Getenv), Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	loop, stopLoop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.run(loop); close(done) }()
	clients.Logger.Info("monitor listening", "addr", srv.Addr, "holder", cfg.Holder, "namespace", cfg.Namespace,
		"eval_interval", cfg.EvalInterval.String(), "lease_ttl", cfg.LeaseTTL.String(), "fairness", cfg.Fairness != nil)
	err = listen.Serve(ctx, srv)
	clients.Logger.Info("monitor stopped serving")
	stopLoop()
	<-done
	shutdown, cancel := context.WithTimeout(context.Background(), listen.DrainTimeout)
	defer cancel()
	if rerr := svc.close(shutdown); rerr != nil {
		clients.Logger.Warn("evaluation lease not released; it expires on its own", "error", rerr.Error())
	}
	return err
}

// wire builds the service's dependencies from the clients: the monitor's
// own state (alerts, silences, policies, the lease, notifications) in the
// monitor's database (clients.MonitorFirestore), and the health checks of
// the governors' collections (outbox age, overdue timers) on the
// governors' database (clients.Store, over clients.Firestore).
func wire(clients *platform.Clients, cfg config) (deps, error) {
	mon := clients.MonitorFirestore
	if mon == nil {
		mon = clients.Firestore
	}
	alerts, err := firestore.NewAlertStore(mon, firestore.AlertStoreOptions{Namespace: cfg.Namespace})
	if err != nil {
		return deps{}, err
	}
	eng, in, err := wireEngine(context.Background(), cfg, clients.Logger)
	if err != nil {
		return deps{}, err
	}
	alertsTopic := "projects/" + cfg.Platform.ProjectID + "/topics/" + clients.Topics.Alerts()
	return deps{
		cfg: cfg, alerts: alerts, publisher: clients.Publisher, topics: clients.Topics, log: clients.Logger,
		engine: eng, intake: in,
		checks: []health.Checker{
			health.Ping("firestore", alerts.Ping),
			health.Ping("pubsub", func(ctx context.Context) error {
				_, err := clients.PubSub.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: alertsTopic})
				return err
			}),
			health.OutboxAge(clients.Store, time.Now, cfg.Outbox),
			health.OverdueTimers(clients.Store, time.Now, cfg.Timers),
			// The ledger's integrator lag joins here as a health.Lag check
			// once the ledger exists.
		},
	}, nil
}

// wireEngine connects the metrics engine: its Prometheus HTTP API, with
// Google credentials (scope monitoring.read) when cfg says so, and the
// intake: remote write when a URL is set, else the Telemetry API.
func wireEngine(ctx context.Context, cfg config, log *slog.Logger) (*prom.Querier, intake, error) {
	e := cfg.Engine
	var client *http.Client
	if e.Auth == "google" {
		c, err := google.DefaultClient(ctx, "https://www.googleapis.com/auth/monitoring.read")
		if err != nil {
			// The monitor still serves its API; the engine's health check
			// and every evaluation report the refusals.
			log.Warn("metrics engine queried without credentials", "url", e.URL, "error", err.Error())
		} else {
			c.Timeout = prom.DefaultTimeout
			client = c
		}
	}
	q, err := prom.New(prom.Options{URL: e.URL, Client: client})
	if err != nil {
		return nil, nil, err
	}
	if e.RemoteWriteURL != "" {
		w, err := prom.NewWriter(prom.WriterOptions{URL: e.RemoteWriteURL})
		if err != nil {
			return nil, nil, err
		}
		return q, w, nil
	}
	in, err := newOTLPIntake(ctx, cfg.Platform.ProjectID, "monitor")
	if err != nil {
		// The monitor still evaluates; POST /v1/metrics answers 503.
		log.Warn("no metrics intake: set "+monitorenv.RemoteWriteURL+" or provide Google credentials", "error", err.Error())
		return q, noIntake{}, nil
	}
	return q, in, nil
}
