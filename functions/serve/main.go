// Command serve hosts every Autonomics function in one local process with
// the Functions Framework, each at /<EntryPoint> (for example /Billing),
// the way the local stack and the emulator's push subscriptions use them.
// With -schedule it also calls /Tick and /Sweep periodically, standing in
// for Cloud Scheduler.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/telemetry"

	_ "github.com/autonomics/autonomics/functions/account"
	_ "github.com/autonomics/autonomics/functions/billing"
	_ "github.com/autonomics/autonomics/functions/catalog"
	_ "github.com/autonomics/autonomics/functions/compliance"
	_ "github.com/autonomics/autonomics/functions/entitlement"
	_ "github.com/autonomics/autonomics/functions/quota"
	_ "github.com/autonomics/autonomics/functions/scheduler"
	_ "github.com/autonomics/autonomics/functions/subscription"
	_ "github.com/autonomics/autonomics/functions/tenancy"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8790"
	}
	schedule := flag.Duration("schedule", 0, "call /Tick and /Sweep at this interval (0: never)")
	flag.Parse()
	log := telemetry.NewLogger(os.Stderr, telemetry.LogOptions{ProjectID: os.Getenv(platform.EnvProject), Component: "functions-host"})
	if err := os.Unsetenv("FUNCTION_TARGET"); err != nil {
		log.Error("unset FUNCTION_TARGET", "error", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *schedule > 0 {
		go scheduleLoop(ctx, log, "http://127.0.0.1:"+port, *schedule)
	}
	errc := make(chan error, 1)
	go func() { errc <- funcframework.StartHostPort("127.0.0.1", port) }()
	if err := waitListening(ctx, "127.0.0.1:"+port); err == nil {
		log.Info("functions serving", "addr", "127.0.0.1:"+port, "schedule", schedule.String())
	}
	select {
	case err := <-errc:
		log.Error("functions host stopped", "error", err)
		os.Exit(1)
	case <-ctx.Done():
		log.Info("functions host shutting down")
	}
}

func waitListening(ctx context.Context, addr string) error {
	for range 100 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("not listening")
}

// scheduleLoop calls the scheduler functions as Cloud Scheduler would.
func scheduleLoop(ctx context.Context, log *slog.Logger, base string, every time.Duration) {
	client := &http.Client{Timeout: 30 * time.Second}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, path := range []string{"/Tick", "/Sweep"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+path, nil)
			resp, err := client.Do(req)
			if err != nil {
				log.Warn("scheduler call failed", "path", path, "error", err.Error())
				continue
			}
			if resp.StatusCode != http.StatusOK {
				log.Warn("scheduler call failed", "path", path, "status", fmt.Sprint(resp.StatusCode))
			}
			resp.Body.Close()
		}
	}
}
