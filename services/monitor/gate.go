package main

import (
	"context"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
)

// gate bounds the requests of one kind that are read and decoded at once,
// so that the memory requests in flight take is bounded whatever the
// serving concurrency.
type gate struct {
	slots chan struct{}
	wait  time.Duration
}

// newGate returns a gate of n slots (at least 1) where a request waits at
// most wait (5 seconds when 0) for its turn.
func newGate(n int, wait time.Duration) *gate {
	if wait <= 0 {
		wait = 5 * time.Second
	}
	return &gate{slots: make(chan struct{}, max(n, 1)), wait: wait}
}

// enter takes a slot, waiting for one at most the gate's wait or until ctx
// is done; the error then wraps alerting.LimitConcurrency. Call leave when
// done.
func (g *gate) enter(ctx context.Context) (leave func(), err error) {
	select {
	case g.slots <- struct{}{}:
		return g.leave, nil
	default:
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return g.leave, nil
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, alerting.LimitError(alerting.LimitConcurrency, "monitor.gate",
		"%d requests of this kind are being decoded: retry shortly", cap(g.slots))
}

func (g *gate) leave() { <-g.slots }
