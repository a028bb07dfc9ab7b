package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/platform"
)

// backfillOutput is what backfill prints with -json.
type backfillOutput struct {
	Project  string `json:"project"`
	Database string `json:"database"`
	DryRun   bool   `json:"dry_run"`
	// Timers is BackfillTimerShards' count, LegacyOutbox
	// DrainLegacyOutbox's.
	Timers       backfillCount `json:"timers"`
	LegacyOutbox backfillCount `json:"legacy_outbox"`
}

// backfillCount is a firestore.Backfill as printed.
type backfillCount struct {
	Read    int `json:"read"`
	Pending int `json:"pending"`
	Updated int `json:"updated"`
}

func countOf(b firestore.Backfill) backfillCount {
	return backfillCount{Read: b.Read, Pending: b.Pending, Updated: b.Updated}
}

// runBackfill runs the backfill command: it brings the documents that
// earlier versions left in the governors' database to the current layout,
// directly against the configured Firestore database and Pub/Sub (not
// through the console): timers without their shard get it
// (firestore.Store.BackfillTimerShards), then the undelivered entries of
// the former global outbox are published and marked delivered
// (firestore.Store.DrainLegacyOutbox). Both steps are idempotent; after a
// failure the next run resumes. With -dry-run it only counts.
func runBackfill(ctx context.Context, c *cliCall) error {
	// Not c.flags: no console, so no -url.
	fs := flag.NewFlagSet("autonomicsctl backfill", flag.ContinueOnError)
	fs.SetOutput(c.env.stderr)
	fs.BoolVar(&c.json, "json", false, "print JSON for scripts instead of lines")
	project := fs.String("project", "", "Google Cloud project (default $"+platform.EnvProject+", else $"+platform.EnvGoogleProject+")")
	database := fs.String("database", "", "the governors' Firestore database (default $"+platform.EnvDatabase+", else (default))")
	dryRun := fs.Bool("dry-run", false, "only count what would change: write and publish nothing")
	page := fs.Int("page", firestore.DefaultBackfillPage, fmt.Sprintf("documents read per query, 1 to %d", firestore.MaxBackfillPage))
	pos, err := parseInterleaved(fs, c.args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *page < 1 || *page > firestore.MaxBackfillPage {
		return usagef("-page %d: want 1 to %d", *page, firestore.MaxBackfillPage)
	}
	cfg, err := platform.FromEnv(func(name string) string {
		switch {
		case name == platform.EnvProject && *project != "":
			return *project
		case name == platform.EnvDatabase && *database != "":
			return *database
		case name == platform.EnvTelemetry || name == platform.EnvMetricsAddr:
			// A command line tool: no telemetry, no /metrics.
			return ""
		}
		return c.env.getenv(name)
	})
	if err != nil {
		return usagef("%s", fault.ErrorMessage(err))
	}
	clients, err := platform.Connect(ctx, cfg, "autonomicsctl", io.Discard)
	if err != nil {
		return err
	}
	defer clients.Close()
	out := backfillOutput{Project: cfg.ProjectID, Database: cfg.Database, DryRun: *dryRun}
	if !c.json {
		fmt.Fprintf(c.env.stdout, "project %s, database %s (Firestore: %s, Pub/Sub: %s)\n",
			cell(cfg.ProjectID), cell(cfg.Database), backfillHost(cfg.FirestoreEmulator), backfillHost(cfg.PubSubEmulator))
		if *dryRun {
			fmt.Fprintln(c.env.stdout, "dry run: nothing is written or published")
		}
	}
	opts := firestore.BackfillOptions{Page: *page, DryRun: *dryRun}
	tb, err := clients.Store.BackfillTimerShards(ctx, opts)
	out.Timers = countOf(tb)
	if !c.json {
		line := fmt.Sprintf("timers: %d read, %d without their shard", tb.Read, tb.Pending)
		if !*dryRun {
			line += fmt.Sprintf(", %d given it", tb.Updated)
		}
		fmt.Fprintln(c.env.stdout, line)
	}
	if err == nil {
		var ob firestore.Backfill
		ob, err = clients.Store.DrainLegacyOutbox(ctx, clients.Publisher.Publish, opts)
		out.LegacyOutbox = countOf(ob)
		if !c.json {
			line := fmt.Sprintf("legacy outbox: %d undelivered", ob.Pending)
			if !*dryRun {
				line += fmt.Sprintf(", %d published and marked delivered", ob.Updated)
			}
			fmt.Fprintln(c.env.stdout, line)
		}
	}
	if c.json {
		if perr := c.printJSON(out); err == nil {
			err = perr
		}
	}
	if fault.ErrorCode(err) == fault.Unavailable {
		return fault.Errorf(fault.Unavailable, "autonomicsctl backfill", "%v; what succeeded is recorded: run backfill again to resume", err)
	}
	return err
}

// backfillHost describes where a client connects: an emulator's host, or
// Google Cloud.
func backfillHost(emulator string) string {
	if emulator != "" {
		return "emulator " + cell(emulator)
	}
	return "Google Cloud"
}
