package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/platform"
)

// Defaults of the local stack.
const (
	defaultProject        = "demo-autonomics"
	defaultFirestoreHost  = "127.0.0.1:8780"
	defaultPubSubHost     = "127.0.0.1:8781"
	defaultFunctionsPort  = 8790
	defaultQueryPort      = 8791
	defaultProviderTenant = "provider"
)

// portsAfterQuery is how many ports after the query API's the services
// take: the integrator, the monitor, the actuator, the ingest API and the
// receiver, in that order.
const portsAfterQuery = 5

// demoTimers are the timer durations of the local stack: the timers a
// scenario waits for fire within seconds, the others last long enough not
// to fire during a demo or a load run.
var demoTimers = map[string]time.Duration{
	"customer_account.verification": 10 * time.Minute,
	"customer_account.suspension":   10 * time.Minute,
	"entitlement.approval":          10 * time.Minute,
	"subscription.trial_end":        5 * time.Second,
	"subscription.period_end":       10 * time.Minute,
	"subscription.grace":            3 * time.Second,
	"subscription.suspension":       10 * time.Minute,
	"billing.retry":                 2 * time.Second,
	"billing.retry_2":               2 * time.Second,
	"billing.retry_3":               2 * time.Second,
	"billing.retry_4":               2 * time.Second,
	"compliance_audit.remediation":  10 * time.Minute,
	"multi_tenant.maintenance":      30 * time.Second,
}

// options is the parsed command line.
type options struct {
	command string
	stack   stackConfig
	// stepTimeout bounds each demo step.
	stepTimeout time.Duration
	load        loadConfig
	receiver    receiverOptions
}

const usage = `usage: autonomicsctl <command> [flags]

commands:
  dev       run the local stack (emulators, functions host, services, webhook receiver) until Ctrl-C
  demo      drive a three-tenant scenario through the local stack and verify it
  load      measure end-to-end throughput and latency against a Firestore baseline
  receiver  serve the webhook receiver that stands in for the provider (the stack starts it)

commands against a deployment, through its console (-url, default $AUTONOMICS_CONSOLE_URL
or http://127.0.0.1:8801; -json for scripts; exit 0 ok, 1 failure, 2 usage, 3 not found):
  tenants    list tenants [-prefix P] [-limit N] [-all]
  governors  show a tenant's governors: governors TENANT
  receipts   a tenant's receipts, newest first: receipts TENANT [-domain D] [-since T] [-until T] [-limit N]
  verify     verify a tenant's receipts client-side against the signed checkpoint: verify TENANT
  send       publish an event: send TYPE -tenant T [-subject S] -data JSON | send -fixture NAME -tenant T | send -list
  tail       follow receipts and actions live until Ctrl-C: tail [-tenant T]
  dlq        dead letters: dlq list [-limit N] | dlq replay ID
  alerts     list alerts [-state pending|firing|resolved]
  silence    silences: silence list | silence create -matcher k=v -for 2h -comment C | silence expire ID
  clock      test clocks: clock advance -tenant T -to RFC3339|+48h

command against a deployment's governors database and Pub/Sub directly ($AUTONOMICS_PROJECT,
$AUTONOMICS_FIRESTORE_DATABASE; FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST for emulators):
  backfill   bring documents of earlier versions to the current layout (timers without their shard,
             the former global outbox): backfill [-dry-run] [-project P] [-database D]

Run "autonomicsctl <command> -h" for the flags of a command.
`

// parseArgs parses the command line (without the program name). getenv
// supplies the project and the emulator hosts.
func parseArgs(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	const op = "autonomicsctl"
	var o options
	if len(args) == 0 {
		return o, fault.Errorf(fault.Invalid, op, "no command given\n%s", usage)
	}
	o.command = args[0]
	switch o.command {
	case "dev", "demo", "load":
	case "receiver":
		return o, parseReceiverArgs(&o, args[1:], stderr)
	case "help", "-h", "-help", "--help":
		return o, flag.ErrHelp
	default:
		return o, fault.Errorf(fault.Invalid, op, "unknown command %q\n%s", o.command, usage)
	}
	fset := flag.NewFlagSet("autonomicsctl "+o.command, flag.ContinueOnError)
	fset.SetOutput(stderr)
	s := &o.stack
	fset.StringVar(&s.Root, "root", "", "repository root (default: the directory holding go.mod, searched upwards from the working directory)")
	fset.IntVar(&s.FunctionsPort, "functions-port", defaultFunctionsPort, "port of the functions host")
	fset.IntVar(&s.QueryPort, "query-port", defaultQueryPort, "port of the query API")
	fset.StringVar(&s.ProviderTenant, "provider", defaultProviderTenant, "tenant whose product catalog prices the plans")
	// The demo's timers end within seconds, so its tick and sweep come
	// every second. A load keeps Cloud Scheduler's minute: on the emulator
	// each of their 32 shard queries scans the whole database, and once a
	// second they add a fifth to a half to its CPU per decision.
	schedule := time.Second
	if o.command == "load" {
		schedule = time.Minute
	}
	fset.DurationVar(&s.Schedule, "schedule", schedule, "interval of the tick and sweep calls")
	dbDefault, dbHelp := "", "Firestore database (default: a fresh one named after the run)"
	if o.command == "dev" {
		dbDefault, dbHelp = "(default)", "Firestore database"
	}
	fset.StringVar(&s.Database, "database", dbDefault, dbHelp)
	timers := fset.String("timers", "", `timer overrides "domain.timer=duration,..." on top of the demo durations`)
	if o.command == "demo" {
		fset.DurationVar(&o.stepTimeout, "step-timeout", 30*time.Second, "how long a step may take to reach its expected states")
	}
	if o.command == "load" {
		l := &o.load
		fset.IntVar(&l.Tenants, "tenants", 1000, "number of tenants, created on the fly by their first event")
		fset.IntVar(&l.Events, "events", 5000, "number of events to publish")
		fset.IntVar(&l.Concurrency, "concurrency", 32, "events in flight (published, receipt not yet received); baseline transactions in parallel")
		fset.DurationVar(&l.Timeout, "timeout", 5*time.Minute, "bound of each measured phase")
		fset.BoolVar(&l.JSON, "json", false, "print the report as JSON")
		fset.BoolVar(&l.Baseline, "baseline", true, "also measure bare Firestore transactions of the same shape")
		registerLoadModeFlag(fset, l)
	}
	if err := fset.Parse(args[1:]); err != nil {
		return o, err
	}
	if fset.NArg() > 0 {
		return o, fault.Errorf(fault.Invalid, op, "unexpected arguments %q", fset.Args())
	}
	overrides, err := platform.ParseTimers(*timers)
	if err != nil {
		return o, fault.Wrap(fault.Invalid, op+" -timers", err)
	}
	s.Timers = make(map[string]time.Duration, len(demoTimers)+len(overrides))
	for k, v := range demoTimers {
		s.Timers[k] = v
	}
	for k, v := range overrides {
		s.Timers[k] = v
	}
	s.Project = firstNonEmpty(getenv(platform.EnvProject), defaultProject)
	s.FirestoreHost = firstNonEmpty(getenv("FIRESTORE_EMULATOR_HOST"), defaultFirestoreHost)
	s.PubSubHost = firstNonEmpty(getenv("PUBSUB_EMULATOR_HOST"), defaultPubSubHost)
	s.TopicPrefix = getenv(platform.EnvTopicPrefix)
	s.FreshPullSubscriptions = o.command != "dev"
	if err := o.validate(); err != nil {
		return o, err
	}
	return o, nil
}

// parseReceiverArgs parses the flags of the receiver command.
func parseReceiverArgs(o *options, args []string, stderr io.Writer) error {
	const op = "autonomicsctl receiver"
	fset := flag.NewFlagSet(op, flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.StringVar(&o.receiver.Config, "config", "", "configuration file (written by the stack into .run/receiver.json)")
	fset.StringVar(&o.receiver.Addr, "addr", "127.0.0.1:8796", "loopback address to bind")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return fault.Errorf(fault.Invalid, op, "unexpected arguments %q", fset.Args())
	}
	if o.receiver.Config == "" {
		return fault.Errorf(fault.Invalid, op, "-config is required")
	}
	return nil
}

// validate checks the values that flags and environment supplied.
func (o *options) validate() error {
	const op = "autonomicsctl"
	s := &o.stack
	for _, h := range []struct{ name, host string }{
		{"FIRESTORE_EMULATOR_HOST", s.FirestoreHost}, {"PUBSUB_EMULATOR_HOST", s.PubSubHost},
	} {
		if !isLoopback(h.host) {
			return fault.Errorf(fault.Invalid, op, "%s=%q: the local stack only talks to emulators on a loopback address", h.name, h.host)
		}
	}
	for _, p := range []struct {
		name string
		port int
	}{{"-functions-port", s.FunctionsPort}, {"-query-port", s.QueryPort}} {
		if p.port < 1 || p.port > 65535 {
			return fault.Errorf(fault.Invalid, op, "%s %d: want 1 to 65535", p.name, p.port)
		}
	}
	if s.FunctionsPort == s.QueryPort {
		return fault.Errorf(fault.Invalid, op, "-functions-port and -query-port are both %d", s.QueryPort)
	}
	if s.QueryPort+portsAfterQuery > 65535 {
		return fault.Errorf(fault.Invalid, op, "-query-port %d: the services take it and the %d ports after it", s.QueryPort, portsAfterQuery)
	}
	if s.FunctionsPort > s.QueryPort && s.FunctionsPort <= s.QueryPort+portsAfterQuery {
		return fault.Errorf(fault.Invalid, op, "-functions-port %d is one of the ports after -query-port %d that the services take", s.FunctionsPort, s.QueryPort)
	}
	if s.Schedule <= 0 {
		return fault.Errorf(fault.Invalid, op, "-schedule %v: want a positive interval", s.Schedule)
	}
	if s.ProviderTenant == "" {
		return fault.Errorf(fault.Invalid, op, "-provider must name a tenant")
	}
	if o.command == "demo" && o.stepTimeout <= 0 {
		return fault.Errorf(fault.Invalid, op, "-step-timeout %v: want a positive duration", o.stepTimeout)
	}
	if o.command == "load" {
		return o.load.validate()
	}
	return nil
}

// isLoopback reports whether host:port names a loopback address.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// findRoot returns the nearest directory at or above dir holding go.mod.
func findRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fault.Errorf(fault.NotFound, "autonomicsctl", "no go.mod at or above %s; pass -root", dir)
		}
	}
}

func main() {
	if len(os.Args) > 1 && isCLICommand(os.Args[1]) {
		os.Exit(runCLIMain(os.Args[1:]))
	}
	o, err := parseArgs(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		if o.command == "" || o.command == "help" || strings.HasPrefix(o.command, "-") {
			fmt.Fprint(os.Stdout, usage)
		}
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if o.command == "receiver" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err := runReceiver(ctx, o, os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintf(os.Stderr, "autonomicsctl receiver: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if o.stack.Root == "" {
		wd, err := os.Getwd()
		if err == nil {
			o.stack.Root, err = findRoot(wd)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	// The client libraries of this process read the emulator hosts from
	// the environment.
	os.Setenv("FIRESTORE_EMULATOR_HOST", o.stack.FirestoreHost)
	os.Setenv("PUBSUB_EMULATOR_HOST", o.stack.PubSubHost)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch o.command {
	case "dev":
		err = runDev(ctx, o, os.Stdout)
	case "demo":
		err = runDemo(ctx, o, os.Stdout)
	case "load":
		err = runLoad(ctx, o, os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "autonomicsctl %s: %v\n", o.command, err)
		stop()
		os.Exit(1)
	}
}
