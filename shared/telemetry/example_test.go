package telemetry_test

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/autonomics/autonomics/shared/telemetry"
)

func ExampleNewLogger() {
	log := telemetry.NewLogger(os.Stdout, telemetry.LogOptions{ProjectID: "demo-autonomics", Component: "billing"})
	ctx := context.Background()
	if traceID, spanID, ok := telemetry.ParseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); ok {
		ctx = telemetry.WithTrace(ctx, traceID, spanID)
	}
	// Drop the time so that the output is stable.
	log = slog.New(dropTime{log.Handler()})
	log.InfoContext(ctx, "decided", "tenant", "acme", "outcome", "accepted")
	// Output:
	// {"severity":"INFO","message":"decided","component":"billing","logging.googleapis.com/trace":"projects/demo-autonomics/traces/4bf92f3577b34da6a3ce929d0e0e4736","logging.googleapis.com/spanId":"00f067aa0ba902b7","logging.googleapis.com/trace_sampled":true,"tenant":"acme","outcome":"accepted"}
}

// dropTime zeroes the record time; the JSON handler omits a zero time.
type dropTime struct{ slog.Handler }

func (d dropTime) Handle(ctx context.Context, r slog.Record) error {
	r.Time = time.Time{}
	return d.Handler.Handle(ctx, r)
}
