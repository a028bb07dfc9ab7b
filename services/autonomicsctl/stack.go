package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/services/integrator/integratorenv"
	"github.com/autonomics/autonomics/services/monitor/monitorenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/listen"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/topic"
)

// entryPoints maps each governor domain to the entry point of its function
// (the function packages' EntryPoint constants).
var entryPoints = map[governor.Domain]string{
	governor.Entitlement:     "Entitlement",
	governor.Billing:         "Billing",
	governor.ProductCatalog:  "ProductCatalog",
	governor.Subscription:    "Subscription",
	governor.CustomerAccount: "CustomerAccount",
	governor.QuotaSLA:        "QuotaSLA",
	governor.ComplianceAudit: "ComplianceAudit",
	governor.MultiTenant:     "MultiTenant",
}

// Pull subscriptions of the operator tools, before the topic prefix.
const (
	pullReceipts   = "autonomicsctl-receipts"
	pullActions    = "autonomicsctl-actions"
	pullDeadLetter = "autonomicsctl-dead-letter"
)

// Settings of the subscriptions the stack creates.
const (
	ackDeadline = 60 * time.Second
	minBackoff  = time.Second
	maxBackoff  = 10 * time.Second
)

// Bounds of the stack's start and stop.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
)

// stackConfig describes the local stack.
type stackConfig struct {
	// Root is the repository root: the stack builds from it and keeps its
	// binaries in Root/bin and its logs in Root/.run.
	Root                      string
	Project                   string
	FirestoreHost, PubSubHost string
	// Database is the Firestore database; demo and load pick a fresh one
	// when it is empty.
	Database       string
	TopicPrefix    string
	ProviderTenant string
	FunctionsPort  int
	QueryPort      int
	Schedule       time.Duration
	Timers         map[string]time.Duration
	// FreshPullSubscriptions recreates the pull subscriptions and the
	// actuator's push subscription so that they hold only this run's
	// messages.
	FreshPullSubscriptions bool
}

// names returns the topic names of the stack.
func (c stackConfig) names() topic.Names { return topic.Names{Prefix: c.TopicPrefix} }

// functionsURL returns the base URL of the functions host.
func (c stackConfig) functionsURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(c.FunctionsPort)
}

// integratorPort and monitorPort follow the query API's port.
func (c stackConfig) integratorPort() int { return c.QueryPort + 1 }
func (c stackConfig) monitorPort() int    { return c.QueryPort + 2 }

// serviceURL returns the base URL of a local service on port.
func serviceURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// receiptPushSubscriptions feed the receipts to the ledger integrator and
// the monitor, unordered, as in production.
func (c stackConfig) receiptPushSubscriptions() []pubsub.Subscription {
	n := c.names()
	return []pubsub.Subscription{
		{Name: n.Receipts() + "-integrator", Topic: n.Receipts(), PushEndpoint: serviceURL(c.integratorPort()) + "/v1/receipts/push",
			AckDeadline: ackDeadline, MinBackoff: minBackoff, MaxBackoff: maxBackoff},
		{Name: n.Receipts() + "-monitor", Topic: n.Receipts(), PushEndpoint: serviceURL(c.monitorPort()) + "/v1/receipts/push",
			AckDeadline: ackDeadline, MinBackoff: minBackoff, MaxBackoff: maxBackoff},
	}
}

// queryURL returns the base URL of the query API.
func (c stackConfig) queryURL() string { return "http://127.0.0.1:" + strconv.Itoa(c.QueryPort) }

// pullName returns the id of one of the tools' pull subscriptions.
func (c stackConfig) pullName(base string) string { return c.TopicPrefix + base }

// pushSubscriptions returns two ordered push subscriptions per domain, on
// its domain topic and on its internal topic, both aimed at the domain's
// function on the functions host, which tells them apart by name. They
// have no dead-letter policy: the emulator crashes when it dead-letters on
// an ordered subscription.
func (c stackConfig) pushSubscriptions() []pubsub.Subscription {
	n := c.names()
	out := make([]pubsub.Subscription, 0, 2*len(governor.Domains))
	for _, d := range governor.Domains {
		for _, t := range []string{n.Domain(d), n.Internal(d)} {
			out = append(out, pubsub.Subscription{
				Name: topic.Push(t), Topic: t,
				PushEndpoint: c.functionsURL() + "/" + entryPoints[d],
				Ordered:      true, AckDeadline: ackDeadline,
				MinBackoff: minBackoff, MaxBackoff: maxBackoff,
			})
		}
	}
	return out
}

// pullSubscriptions returns the pull subscriptions the demo and load tools
// read: receipts, actions and dead letters.
func (c stackConfig) pullSubscriptions() []pubsub.Subscription {
	n := c.names()
	return []pubsub.Subscription{
		{Name: c.pullName(pullReceipts), Topic: n.Receipts(), AckDeadline: ackDeadline},
		{Name: c.pullName(pullActions), Topic: n.Actions(), AckDeadline: ackDeadline},
		{Name: c.pullName(pullDeadLetter), Topic: n.DeadLetter(), AckDeadline: ackDeadline},
	}
}

// childEnv returns the environment of a child process: the parent's,
// with the stack's settings replacing any inherited value; a setting with
// an empty value only removes the inherited one. The settings are written
// name+"="+value, which the Terraform tests' scan of the sources takes for
// setting a child's variable, not reading it (gosrc.Module.EnvReads).
func (c stackConfig) childEnv(port int) []string {
	set := []string{
		"FIRESTORE_EMULATOR_HOST=" + c.FirestoreHost,
		"PUBSUB_EMULATOR_HOST=" + c.PubSubHost,
		platform.EnvProject + "=" + c.Project,
		platform.EnvDatabase + "=" + c.Database,
		platform.EnvTopicPrefix + "=" + c.TopicPrefix,
		platform.EnvProviderTenant + "=" + c.ProviderTenant,
		platform.EnvTimers + "=" + platform.FormatTimers(c.Timers),
		// A non-production stack: test clocks on.
		platform.EnvEnvironment + "=local",
		// Each service's metrics, for the local Prometheus to scrape.
		platform.EnvMetricsAddr + "=" + c.metricsAddr(port),
		listen.EnvPort + "=" + strconv.Itoa(port),
		// Nothing off this machine may reach the local stack: it has no
		// authentication, and the emulators no IAM.
		listen.EnvHost + "=127.0.0.1",
		platform.EnvGoogleProject + "=" + c.Project,
		"FUNCTION_TARGET=",
	}
	replaced := make(map[string]bool, len(set))
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		replaced[k] = true
	}
	env := make([]string, 0, len(os.Environ())+len(set))
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !replaced[k] {
			env = append(env, kv)
		}
	}
	sort.Strings(set)
	for _, kv := range set {
		if !strings.HasSuffix(kv, "=") {
			env = append(env, kv)
		}
	}
	// The services run as Terraform deploys them at their default size
	// (one vCPU, 512Mi), unless the caller's environment says otherwise.
	for _, kv := range deployedGoRuntime {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, name+"=") }) {
			env = append(env, kv)
		}
	}
	return env
}

// deployedGoRuntime is the Go runtime's settings Terraform gives a
// component of one vCPU and 512Mi, every service's default size
// (local.go_runtime_env): GOMAXPROCS, GOGC and GOMEMLIMIT.
var deployedGoRuntime = []string{"GOMAXPROCS=1", "GOGC=400", "GOMEMLIMIT=384MiB"}

// stack is a running local stack.
type stack struct {
	cfg    stackConfig
	out    io.Writer
	pubsub *ps.Client

	functions, query, integrator, monitor *child
	actuator, ingest, receiver            *child
	// market is the Marketplace side: stand-ins and services.
	market *marketplaceSide
	// prometheus is the monitor's metrics engine.
	prometheus *child
	// console is the operator console.
	console *child
	// webhooks holds this run's endpoint secrets and the files written.
	webhooks *webhookSetup
	// failed receives the error of a child that exits on its own.
	failed chan error
}

// startStack brings the local stack up and returns once the functions host
// and the query API answer. The caller must Stop it.
func startStack(ctx context.Context, cfg stackConfig, out io.Writer) (_ *stack, err error) {
	const op = "autonomicsctl.startStack"
	if err := ensureEmulators(ctx, cfg, out); err != nil {
		return nil, err
	}
	for _, p := range []int{cfg.FunctionsPort, cfg.QueryPort, cfg.integratorPort(), cfg.monitorPort(), cfg.actuatorPort(), cfg.ingestPort(), cfg.receiverPort(),
		cfg.marketplacePort(), cfg.signupPort(), cfg.standinPort(), cfg.prometheusPort(), cfg.consolePort()} {
		if listening(net.JoinHostPort("127.0.0.1", strconv.Itoa(p))) {
			return nil, fault.Errorf(fault.Conflict, op, "port %d is in use: is another local stack running?", p)
		}
	}
	fmt.Fprintf(out, "building ./functions/serve and ./services/{query,integrator,monitor,actuator,ingest,marketplace,signup,console} into bin/\n")
	if err := build(ctx, cfg.Root, out); err != nil {
		return nil, err
	}
	client, err := ps.NewClient(ctx, cfg.Project)
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, op+" pubsub", err)
	}
	s := &stack{cfg: cfg, out: out, pubsub: client, failed: make(chan error, 8)}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if cfg.FreshPullSubscriptions {
		// The actuator's subscription too: an action a previous run left
		// behind belongs to that run's database.
		fresh := append(cfg.pullSubscriptions(), cfg.actuatorPushSubscription())
		fresh = append(fresh, cfg.marketplacePushSubscriptions()...)
		fresh = append(fresh, cfg.consolePushSubscription())
		if err := deleteSubscriptions(ctx, client, cfg.Project, fresh); err != nil {
			return nil, err
		}
	}
	if err := pubsub.Ensure(ctx, client, cfg.Project, append(cfg.names().All(), cfg.partnerTopic()), cfg.pullSubscriptions()); err != nil {
		return nil, err
	}
	runDir := filepath.Join(cfg.Root, ".run")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	s.functions, err = startChild("functions", filepath.Join(cfg.Root, "bin", "serve"),
		[]string{"-schedule", cfg.Schedule.String()}, cfg.Root, cfg.childEnv(cfg.FunctionsPort),
		filepath.Join(runDir, "functions.log"), s.failed)
	if err != nil {
		return nil, err
	}
	s.query, err = startChild("query", filepath.Join(cfg.Root, "bin", "query"), nil, cfg.Root,
		cfg.childEnv(cfg.QueryPort), filepath.Join(runDir, "query.log"), s.failed)
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(runDir, "ledger.key")
	if _, statErr := os.Stat(keyFile); os.IsNotExist(statErr) {
		gen := exec.CommandContext(ctx, filepath.Join(cfg.Root, "bin", "integrator"), "-keygen", "-out", keyFile)
		gen.Stdout, gen.Stderr = out, out
		fmt.Fprintf(out, "generating the ledger signing key %s\n", rel(cfg.Root, keyFile))
		if err := gen.Run(); err != nil {
			return nil, fault.Wrap(fault.Internal, op+" keygen", err)
		}
	}
	s.integrator, err = startChild("integrator", filepath.Join(cfg.Root, "bin", "integrator"), nil, cfg.Root,
		append(cfg.childEnv(cfg.integratorPort()), integratorenv.SigningKeyFile+"="+keyFile,
			integratorenv.Interval+"=200ms", integratorenv.IdleInterval+"=2s"),
		filepath.Join(runDir, "integrator.log"), s.failed)
	if err != nil {
		return nil, err
	}
	if err := s.startPrometheus(ctx, runDir); err != nil {
		return nil, err
	}
	s.monitor, err = startChild("monitor", filepath.Join(cfg.Root, "bin", "monitor"), nil, cfg.Root,
		append(append(cfg.childEnv(cfg.monitorPort()), monitorenv.EvalInterval+"=5s", monitorenv.LeaseTTL+"=15s"),
			cfg.monitorEngineEnv()...),
		filepath.Join(runDir, "monitor.log"), s.failed)
	if err != nil {
		return nil, err
	}
	if err := s.startWebhooks(ctx, runDir); err != nil {
		return nil, err
	}
	if err := s.startMarketplace(ctx, runDir); err != nil {
		return nil, err
	}
	if err := s.startConsole(runDir); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	if err := registerEndpoints(ctx, newAPIClient("actuator", serviceURL(cfg.actuatorPort())), cfg, s.webhooks); err != nil {
		return nil, err
	}
	// Push subscriptions last, so that the first deliveries find the
	// functions host, the services and the endpoints ready.
	if err := pubsub.Ensure(ctx, client, cfg.Project, nil, cfg.allPushSubscriptions()); err != nil {
		return nil, err
	}
	return s, nil
}

// allPushSubscriptions returns every push subscription of the stack.
func (c stackConfig) allPushSubscriptions() []pubsub.Subscription {
	push := append(c.pushSubscriptions(), c.receiptPushSubscriptions()...)
	push = append(push, c.actuatorPushSubscription())
	push = append(push, c.marketplacePushSubscriptions()...)
	return append(push, c.consolePushSubscription())
}

// startWebhooks generates this run's secrets and keys and starts the
// ingest API, the receiver (this program's receiver command) and the
// actuator, whose state lives in the monitor's database: the stack's.
func (s *stack) startWebhooks(ctx context.Context, runDir string) error {
	const op = "autonomicsctl.startWebhooks"
	cfg := s.cfg
	w, err := prepareWebhooks(ctx, cfg, runDir)
	if err != nil {
		return err
	}
	s.webhooks = w
	s.ingest, err = startChild("ingest", filepath.Join(cfg.Root, "bin", "ingest"),
		[]string{"-producers", w.ProducersFile, "-hmac-keys", w.KeysFile}, cfg.Root,
		cfg.childEnv(cfg.ingestPort()), filepath.Join(runDir, "ingest.log"), s.failed)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fault.Wrap(fault.Internal, op, err)
	}
	s.receiver, err = startChild("receiver", self, []string{"receiver", "-config", w.ReceiverFile, "-addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.receiverPort()))}, cfg.Root,
		cfg.childEnv(cfg.receiverPort()), filepath.Join(runDir, "receiver.log"), s.failed)
	if err != nil {
		return err
	}
	env := append(cfg.childEnv(cfg.actuatorPort()), platform.EnvMonitorDatabase+"="+cfg.Database)
	s.actuator, err = startChild("actuator", filepath.Join(cfg.Root, "bin", "actuator"), nil, cfg.Root,
		append(env, actuatorEnv...), filepath.Join(runDir, "actuator.log"), s.failed)
	return err
}

// waitReady waits until the functions port is open and the query API's
// /healthz answers 200.
func (s *stack) waitReady(ctx context.Context) error {
	const op = "autonomicsctl.waitReady"
	deadline := time.Now().Add(readyTimeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		fnOK := listening(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.FunctionsPort)))
		qOK := healthy(hc, s.cfg.queryURL())
		others := true
		for _, p := range []int{s.cfg.integratorPort(), s.cfg.monitorPort(), s.cfg.actuatorPort(), s.cfg.ingestPort(), s.cfg.receiverPort(),
			s.cfg.marketplacePort(), s.cfg.signupPort(), s.cfg.consolePort()} {
			others = others && healthy(hc, serviceURL(p))
		}
		if fnOK && qOK && others {
			return nil
		}
		select {
		case err := <-s.failed:
			return err
		case <-ctx.Done():
			return fault.Wrap(fault.Unavailable, op, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fault.Errorf(fault.Unavailable, op,
				"not ready after %v (functions listening %v, query healthy %v, the other services healthy %v); see the logs in %s",
				readyTimeout, fnOK, qOK, others, filepath.Dir(s.functions.logPath))
		}
	}
}

// Failed returns a channel that yields the error of a child process that
// exits before Stop.
func (s *stack) Failed() <-chan error { return s.failed }

// Stop pauses the stack's push subscriptions (pubsub.PausePush), stops the
// child processes and closes the clients. It is safe to call more than
// once.
func (s *stack) Stop() {
	if s.pubsub != nil {
		// Deliveries stop before the endpoints do: what is still to be
		// delivered waits in the subscriptions for the next start, instead
		// of the emulator retrying it against dead ports meanwhile.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := pubsub.PausePush(ctx, s.pubsub, s.cfg.Project, s.cfg.allPushSubscriptions()); err != nil {
			fmt.Fprintf(s.out, "pausing the push subscriptions: %v\n", err)
		}
		cancel()
	}
	if s.market != nil {
		s.market.stop()
	}
	var wg sync.WaitGroup
	for _, c := range []*child{s.actuator, s.receiver, s.ingest, s.monitor, s.integrator, s.query, s.functions, s.prometheus, s.console} {
		if c != nil {
			wg.Go(c.stop)
		}
	}
	wg.Wait()
	if s.pubsub != nil {
		s.pubsub.Close()
		s.pubsub = nil
	}
}

// describe prints what runs where.
func (s *stack) describe(w io.Writer) {
	c := s.cfg
	fmt.Fprintf(w, "Autonomics local stack\n")
	fmt.Fprintf(w, "  Firestore emulator  %s  project %s, database %s\n", c.FirestoreHost, c.Project, c.Database)
	fmt.Fprintf(w, "  Pub/Sub emulator    %s\n", c.PubSubHost)
	fmt.Fprintf(w, "  functions host      %s  pid %d  log %s  (tick and sweep every %v)\n",
		c.functionsURL(), s.functions.pid(), rel(c.Root, s.functions.logPath), c.Schedule)
	fmt.Fprintf(w, "  query API           %s  pid %d  log %s\n", c.queryURL(), s.query.pid(), rel(c.Root, s.query.logPath))
	fmt.Fprintf(w, "  ledger integrator   %s  pid %d  log %s\n", serviceURL(c.integratorPort()), s.integrator.pid(), rel(c.Root, s.integrator.logPath))
	fmt.Fprintf(w, "  monitor             %s  pid %d  log %s\n", serviceURL(c.monitorPort()), s.monitor.pid(), rel(c.Root, s.monitor.logPath))
	s.describePrometheus(w)
	s.describeWebhooks(w)
	s.market.describe(w, c)
	s.describeConsole(w)
	fmt.Fprintf(w, "  provider tenant     %s\n", c.ProviderTenant)
	fmt.Fprintf(w, "  timers              %s\n", platform.FormatTimers(c.Timers))
	fmt.Fprintf(w, "  push subscriptions (ordered, retry %v..%v, no dead-letter policy):\n", minBackoff, maxBackoff)
	for _, p := range append(append(c.pushSubscriptions(), c.actuatorPushSubscription()), c.marketplacePushSubscriptions()...) {
		fmt.Fprintf(w, "    %-40s → %s\n", p.Name, p.PushEndpoint)
	}
	fmt.Fprintf(w, "  pull subscriptions:\n")
	for _, p := range c.pullSubscriptions() {
		fmt.Fprintf(w, "    %-40s ← %s\n", p.Name, p.Topic)
	}
}

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}

// ensureEmulators starts the emulators with .ci/emulators.sh unless both
// already answer.
func ensureEmulators(ctx context.Context, cfg stackConfig, out io.Writer) error {
	const op = "autonomicsctl.ensureEmulators"
	if emulatorReady(cfg.FirestoreHost) && emulatorReady(cfg.PubSubHost) {
		return nil
	}
	fmt.Fprintf(out, "starting the emulators with .ci/emulators.sh\n")
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(cfg.Root, ".ci", "emulators.sh"), "start")
	cmd.Dir = cfg.Root
	cmd.Env = append(os.Environ(),
		"FIRESTORE_EMULATOR_HOST="+cfg.FirestoreHost,
		"PUBSUB_EMULATOR_HOST="+cfg.PubSubHost,
		platform.EnvProject+"="+cfg.Project)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	if !emulatorReady(cfg.FirestoreHost) || !emulatorReady(cfg.PubSubHost) {
		return fault.Errorf(fault.Unavailable, op, "the emulators do not answer at %s and %s", cfg.FirestoreHost, cfg.PubSubHost)
	}
	return nil
}

// emulatorReady reports whether an emulator answers HTTP at host.
func emulatorReady(host string) bool {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + host + "/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// listening reports whether something accepts TCP connections at addr.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// build compiles the functions host and the services into root/bin.
func build(ctx context.Context, root string, out io.Writer) error {
	gobin := firstNonEmpty(os.Getenv("GO"), "go")
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", filepath.Join(root, "bin")+string(filepath.Separator),
		"./functions/serve", "./services/query", "./services/integrator", "./services/monitor", "./services/actuator", "./services/ingest",
		"./services/marketplace", "./services/signup", "./services/console")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fault.Wrap(fault.Internal, "autonomicsctl.build", err)
	}
	return nil
}

// deleteSubscriptions deletes subscriptions that exist.
func deleteSubscriptions(ctx context.Context, client *ps.Client, project string, subs []pubsub.Subscription) error {
	for _, s := range subs {
		err := client.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{
			Subscription: "projects/" + project + "/subscriptions/" + s.Name,
		})
		if err != nil && status.Code(err) != codes.NotFound {
			return fault.Wrap(fault.Unavailable, "autonomicsctl.deleteSubscriptions "+s.Name, err)
		}
	}
	return nil
}

// child is a process of the stack.
type child struct {
	name     string
	logPath  string
	cmd      *exec.Cmd
	log      *os.File
	done     chan struct{}
	err      error
	stopping atomic.Bool
	once     sync.Once
}

// startChild starts path with its output appended to logPath. If the
// process exits before stop, its error is sent on failed.
func startChild(name, path string, args []string, dir string, env []string, logPath string, failed chan<- error) (*child, error) {
	op := "autonomicsctl.start " + name
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	c := &child{name: name, logPath: logPath, cmd: cmd, log: f, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
		if !c.stopping.Load() {
			how := "with status 0"
			if c.err != nil {
				how = c.err.Error()
			}
			select {
			case failed <- fault.Errorf(fault.Unavailable, op, "%s exited unexpectedly (%s); see %s", name, how, logPath):
			default:
			}
		}
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM, waits up to stopTimeout and then kills.
func (c *child) stop() {
	c.once.Do(func() {
		c.stopping.Store(true)
		select {
		case <-c.done:
			return
		default:
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(stopTimeout):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
}

// tail returns the last n lines of a file, or a note why it cannot.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runDev runs the stack until ctx is done or a child fails.
func runDev(ctx context.Context, o options, out io.Writer) error {
	s, err := startStack(ctx, o.stack, out)
	if err != nil {
		return err
	}
	defer s.Stop()
	s.describe(out)
	fmt.Fprintf(out, "Ready. Press Ctrl-C to stop.\n")
	select {
	case <-ctx.Done():
		fmt.Fprintf(out, "\nstopping the local stack\n")
		return nil
	case err := <-s.Failed():
		return errors.Join(err, errors.New(tail(s.functions.logPath, 20)))
	}
}
