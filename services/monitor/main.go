// Command monitor serves the monitor and alerting service of Autonomics on
// Cloud Run (DESIGN.md §6): instance health, metric ingestion (POST
// /v1/metrics and the push subscription of the receipts topic), alert
// policies, alerts, silences, evaluation (its own ticker and POST
// /v1/evaluate from Cloud Scheduler, run only by the holder of the
// evaluation lease) and notifications to the alerts topic, plus the
// noisy-neighbour detector that publishes to the multi_tenant topic.
//
// Alert state, policies, silences and the lease live in Firestore under
// monitors/{AUTONOMICS_MONITOR_NAMESPACE}. Metric series live in the memory
// of the instance that receives them, so the service is meant to run as one
// serving instance (max instances 1, min instances 1 so that the ticker
// runs); the lease keeps evaluation single during rollouts and after a
// crash, and a new instance neither fires nor resolves for lack of data
// until it has observed for the lookback.
//
// Configuration: PORT (default 8080), the AUTONOMICS_* variables of
// platform.FromEnv, and the AUTONOMICS_MONITOR_* variables listed in
// config.go.
package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/health"
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
	rt, err := platform.Connect(ctx, cfg.Platform, "monitor", os.Stdout)
	if err != nil {
		return err
	}
	defer rt.Close()
	alerts, err := firestore.NewAlertStore(rt.Firestore, firestore.AlertStoreOptions{Namespace: cfg.Namespace})
	if err != nil {
		return err
	}
	alertsTopic := "projects/" + cfg.Platform.ProjectID + "/topics/" + rt.Topics.Alerts()
	svc, err := newService(deps{
		cfg: cfg, alerts: alerts, publisher: rt.Publisher, topics: rt.Topics, log: rt.Logger,
		checks: []health.Checker{
			health.Ping("firestore", alerts.Ping),
			health.Ping("pubsub", func(ctx context.Context) error {
				_, err := rt.PubSub.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: alertsTopic})
				return err
			}),
			health.OutboxAge(rt.Store, time.Now, cfg.Outbox),
			health.OverdueTimers(rt.Store, time.Now, cfg.Timers),
			// The ledger's integrator lag joins here as a health.Lag check
			// once the ledger exists.
		},
	})
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: ":" + cfg.Port, Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	loop, stopLoop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.run(loop); close(done) }()
	rt.Logger.Info("monitor listening", "port", cfg.Port, "holder", cfg.Holder, "namespace", cfg.Namespace,
		"eval_interval", cfg.EvalInterval.String(), "lease_ttl", cfg.LeaseTTL.String(), "fairness", cfg.Fairness != nil)
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	rt.Logger.Info("monitor draining")
	stopLoop()
	<-done
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdown); serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if rerr := svc.close(shutdown); rerr != nil {
		rt.Logger.Warn("evaluation lease not released; it expires on its own", "error", rerr.Error())
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
