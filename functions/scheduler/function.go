// Package scheduler deploys the two periodic jobs of the governors as HTTP
// Cloud Functions that Cloud Scheduler calls every minute: "Tick" fires due
// timers as timeout events, "Sweep" re-publishes outbox entries that a
// crash between commit and publish left undelivered.
package scheduler

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/platform"
)

// Entry points Terraform deploys.
const (
	TickEntryPoint  = "Tick"
	SweepEntryPoint = "Sweep"
)

// SweepAge is how old an undelivered outbox entry must be before the
// sweeper publishes it, so that it does not race the function that wrote it.
const SweepAge = time.Minute

var runtime = platform.NewLazy(os.Getenv, "scheduler", os.Stdout)

func init() {
	functions.HTTP(TickEntryPoint, tick)
	functions.HTTP(SweepEntryPoint, sweep)
}

func tick(w http.ResponseWriter, r *http.Request) {
	eng, clients, err := runtime.Governors(r.Context())
	if err != nil {
		writeResult(w, 0, err)
		return
	}
	defer func() { _ = clients.Telemetry.Flush(context.WithoutCancel(r.Context())) }()
	n, err := eng.Tick(r.Context(), 0)
	writeResult(w, n, err)
}

func sweep(w http.ResponseWriter, r *http.Request) {
	eng, clients, err := runtime.Governors(r.Context())
	if err != nil {
		writeResult(w, 0, err)
		return
	}
	defer func() { _ = clients.Telemetry.Flush(context.WithoutCancel(r.Context())) }()
	n, err := eng.Sweep(r.Context(), SweepAge, 0)
	writeResult(w, n, err)
}

// writeResult answers Cloud Scheduler: the count, or the error as the
// HTTP APIs write errors (an internal error without its message).
func writeResult(w http.ResponseWriter, n int, err error) {
	if err != nil {
		if fault.ErrorCode(err) == fault.Internal {
			// Whatever failed, the scheduler retries on its next run.
			err = fault.Wrap(fault.Unavailable, "scheduler", err)
		}
		httpjson.Error(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]int{"processed": n})
}
