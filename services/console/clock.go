package main

import (
	"context"
	"time"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/testclock"
)

// newTestClock builds the tenants' test clocks (non-production only).
func newTestClock(clients *platform.Clients) (console.Clock, error) {
	c, err := testclock.New(testclock.Options{Enabled: true, Store: clients.Store, Publisher: clients.Publisher, Topics: clients.Topics})
	if err != nil {
		return nil, err
	}
	return clockAdapter{c}, nil
}

// clockAdapter gives the console the test clock's firings.
type clockAdapter struct{ c *testclock.Clock }

func (a clockAdapter) Advance(ctx context.Context, tenant string, to time.Time) ([]console.Fired, error) {
	fired, err := a.c.Advance(ctx, tenant, to)
	out := make([]console.Fired, len(fired))
	for i, f := range fired {
		out[i] = console.Fired{Timer: f.Timer, Domain: f.Domain, Subject: f.Subject, Due: f.Due, Receipt: f.ReceiptHash, Outcome: f.Outcome}
	}
	return out, err
}
