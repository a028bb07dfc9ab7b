package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"
	"github.com/chromedp/chromedp"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/store"
)

// TestMain lets the test binary stand in for autonomicsctl where the local
// stack starts this program again: the stack runs its own executable as
// "receiver -config FILE -addr ADDR", which, in a test, is the test binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "receiver" {
		os.Exit(receiverMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// receiverMain runs the receiver command as main does.
func receiverMain(args []string) int {
	o, err := parseArgs(args, os.Getenv, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := runReceiver(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "autonomicsctl receiver: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// Bounds of the end-to-end test.
const (
	// e2eWait bounds every wait for a state, a receipt, a dead letter or
	// a page element.
	e2eWait = 60 * time.Second
	// e2ePoll is the interval of the polls.
	e2ePoll = 250 * time.Millisecond
	// e2eCommand bounds one CLI command.
	e2eCommand = 60 * time.Second
)

// e2e is the running local stack of the end-to-end test and what the
// subtests share.
type e2e struct {
	cfg stackConfig
	s   *stack
	out *lockedWriter
	buf *bytes.Buffer
	fc  *fs.Client
	pub *pubsub.Publisher
	run string
	seq int
	url string
}

// stackPorts are the ports the local stack binds.
func (c stackConfig) stackPorts() []int {
	return []int{c.FunctionsPort, c.QueryPort, c.integratorPort(), c.monitorPort(), c.actuatorPort(), c.ingestPort(), c.receiverPort(),
		c.marketplacePort(), c.signupPort(), c.standinPort(), c.prometheusPort(), c.consolePort()}
}

// startE2E starts the local stack with a fresh database and topic prefix,
// or skips the test when the emulators are not configured. The stack is
// stopped when the test ends; on failure the ends of its logs are printed.
func startE2E(t *testing.T) *e2e {
	t.Helper()
	fsHost, psHost := os.Getenv("FIRESTORE_EMULATOR_HOST"), os.Getenv("PUBSUB_EMULATOR_HOST")
	if fsHost == "" || psHost == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST not set")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	run := runID("e2e", time.Now()) + "-" + strconv.FormatUint(uint64(rand.Uint32()%0x10000), 16)
	timers := make(map[string]time.Duration, len(demoTimers))
	for k, v := range demoTimers {
		timers[k] = v
	}
	cfg := stackConfig{
		Root: root, Project: firstNonEmpty(os.Getenv("AUTONOMICS_PROJECT"), defaultProject),
		FirestoreHost: fsHost, PubSubHost: psHost,
		Database: run,
		// A topic prefix of its own: no message of another run reaches
		// this one's functions, nor one of this run another's.
		TopicPrefix:    run + "-",
		ProviderTenant: defaultProviderTenant,
		FunctionsPort:  defaultFunctionsPort, QueryPort: defaultQueryPort,
		Schedule: time.Second, Timers: timers,
		FreshPullSubscriptions: true,
	}
	for _, p := range cfg.stackPorts() {
		if listening(net.JoinHostPort("127.0.0.1", strconv.Itoa(p))) {
			msg := fmt.Sprintf("port %d is in use: another local stack (make dev, make demo) is running; stop it and run again", p)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	buf := &bytes.Buffer{}
	out := &lockedWriter{w: buf}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := startStack(ctx, cfg, out)
	if err != nil {
		t.Fatalf("start the local stack: %v\n%s\n%s", err, buf.String(), logTails(root))
	}
	e := &e2e{cfg: cfg, s: s, out: out, buf: buf, run: run, url: cfg.consoleURL()}
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		if t.Failed() {
			out.mu.Lock()
			t.Logf("stack output:\n%s", indent(tail2(buf.String(), 40), "  "))
			out.mu.Unlock()
			t.Log(logTails(root))
		}
		if e.pub != nil {
			e.pub.Close()
		}
		if e.fc != nil {
			e.fc.Close()
		}
		s.Stop()
	})
	if e.fc, err = firestoreClient(context.Background(), cfg.Project, cfg.Database); err != nil {
		t.Fatal(err)
	}
	e.pub = pubsub.NewPublisher(s.pubsub, pubsub.PublisherOptions{})
	// A child that exits on its own fails the test at once.
	go func() {
		select {
		case err := <-s.Failed():
			t.Errorf("the local stack failed: %v", err)
		case <-done:
		}
	}()
	return e
}

// tail2 returns the last n lines of s.
func tail2(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logTails returns the last lines of every log of the stack.
func logTails(root string) string {
	logs, _ := filepath.Glob(filepath.Join(root, ".run", "*.log"))
	var b strings.Builder
	for _, l := range logs {
		if strings.HasSuffix(l, "firestore.log") || strings.HasSuffix(l, "pubsub.log") {
			continue
		}
		fmt.Fprintf(&b, "last lines of %s:\n%s\n", rel(root, l), indent(tail(l, 15), "  "))
	}
	return b.String()
}

// cliResult is what one CLI command did.
type cliResult struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("autonomicsctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, indent(r.stdout, "  "), indent(r.stderr, "  "))
}

// cli runs one command of autonomicsctl against the stack's console.
func (e *e2e) cli(args ...string) cliResult {
	ctx, cancel := context.WithTimeout(context.Background(), e2eCommand)
	defer cancel()
	var stdout, stderr bytes.Buffer
	full := append(append([]string{}, args...), "-url", e.url)
	code := runCLI(ctx, full, cliEnv{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }, now: time.Now})
	return cliResult{args: full, code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustCLI runs a command that must exit 0.
func (e *e2e) mustCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := e.cli(args...)
	if r.code != exitOK {
		t.Fatalf("%s", r)
	}
	return r
}

// cliJSON runs a -json command that must exit 0 and decodes its output.
func (e *e2e) cliJSON(t *testing.T, v any, args ...string) cliResult {
	t.Helper()
	r := e.mustCLI(t, append(args, "-json")...)
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("%s\ndecode: %v", r, err)
	}
	return r
}

// poll calls check until it reports done, at most e2eWait; check returns
// what it saw, for the failure message.
func poll(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	seen := ""
	for {
		ok, s := check()
		if ok {
			return
		}
		if s != "" {
			seen = s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen:\n%s", what, e2eWait, indent(seen, "  "))
		}
		time.Sleep(e2ePoll)
	}
}

// governors returns the tenant's governors through the CLI.
func (e *e2e) governors(t *testing.T, tenant string) (governorsAnswer, cliResult) {
	t.Helper()
	var ans governorsAnswer
	r := e.cliJSON(t, &ans, "governors", tenant)
	return ans, r
}

// governorWant is a state an instance must reach, with optional data.
type governorWant struct {
	domain, subject, state string
	// path and value, when path is set: the data at path must print as
	// value.
	path, value string
}

func (w governorWant) String() string {
	s := w.domain + "/" + w.subject + " in " + w.state
	if w.path != "" {
		s += " with " + w.path + " = " + w.value
	}
	return s
}

// holds reports whether w holds in ans.
func (w governorWant) holds(ans governorsAnswer) bool {
	for _, g := range ans.Governors {
		if g.Domain != w.domain || g.Subject != w.subject || g.State != w.state {
			continue
		}
		if w.path == "" {
			return true
		}
		v, ok := dataAt(g.Data, w.path)
		return ok && v == w.value
	}
	return false
}

// waitGovernors polls governors TENANT until every want holds.
func (e *e2e) waitGovernors(t *testing.T, tenant string, wants ...governorWant) governorsAnswer {
	t.Helper()
	var last governorsAnswer
	poll(t, fmt.Sprintf("governors %s: %v", tenant, wants), func() (bool, string) {
		r := e.cli("governors", tenant, "-json")
		if r.code != exitOK {
			return false, r.String()
		}
		var ans governorsAnswer
		if err := json.Unmarshal([]byte(r.stdout), &ans); err != nil {
			return false, r.String()
		}
		last = ans
		for _, w := range wants {
			if !w.holds(ans) {
				return false, describeGovernors(ans)
			}
		}
		return true, ""
	})
	return last
}

// describeGovernors prints the instances of a governors answer.
func describeGovernors(ans governorsAnswer) string {
	var b strings.Builder
	for _, g := range ans.Governors {
		fmt.Fprintf(&b, "%s/%s %s v%d %s\n", g.Domain, g.Subject, g.State, g.Version, compactJSON(g.Data))
	}
	if b.Len() == 0 {
		return "no instance"
	}
	return b.String()
}

// governorOf returns the instance (domain, subject) of ans.
func governorOf(ans governorsAnswer, domain, subject string) (consoleGovernor, bool) {
	for _, g := range ans.Governors {
		if g.Domain == domain && g.Subject == subject {
			return g, true
		}
	}
	return consoleGovernor{}, false
}

// publishForged publishes an event straight to its domain topic, as an
// outsider with publisher rights on the topic would, and returns its id.
func (e *e2e) publishForged(t *testing.T, tenant string, d governor.Domain, name governor.EventName, subject, source, data string) string {
	t.Helper()
	e.seq++
	id := fmt.Sprintf("%s-forged-%03d", e.run, e.seq)
	raw, attrs := event.Encode(governor.Event{
		ID: id, Source: source, Domain: d, Name: name, Tenant: tenant, Subject: subject,
		Time: time.Now().UTC(), Data: []byte(data),
	})
	ctx, cancel := context.WithTimeout(context.Background(), e2eCommand)
	defer cancel()
	if err := e.pub.Publish(ctx, store.Message{Topic: e.cfg.names().Domain(d), Data: raw, Attributes: attrs, OrderingKey: tenant}); err != nil {
		t.Fatalf("publish %s: %v", governor.TypeOf(d, name), err)
	}
	return id
}

// waitDeadLetter polls dlq list until the dead letter of event id is
// there, and returns it.
func (e *e2e) waitDeadLetter(t *testing.T, eventID string) consoleDeadLetter {
	t.Helper()
	var found consoleDeadLetter
	poll(t, "dead letter of event "+eventID, func() (bool, string) {
		r := e.cli("dlq", "list", "-limit", "100", "-json")
		if r.code != exitOK {
			return false, r.String()
		}
		var ans struct {
			DeadLetters []consoleDeadLetter `json:"deadletters"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &ans); err != nil {
			return false, r.String()
		}
		for _, d := range ans.DeadLetters {
			if d.Attributes["ce-id"] == eventID {
				found = d
				return true, ""
			}
		}
		return false, r.stdout
	})
	return found
}

// receiptPath returns the Firestore path of a stored receipt (see
// shared/firestore's layout).
func receiptPath(tenant, domain, subject string, seq int64) string {
	return fmt.Sprintf("tenants/%s/instances/%s:%s/receipts/%012d", tenant, domain, subject, seq)
}

// browserBinary returns the Chromium binary, or "" when there is none;
// with CI=true a missing browser fails the test.
func browserBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("AUTONOMICS_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install -y chromium)")
	}
	return ""
}

// browser starts a headless Chromium and returns a tab in it, closed when
// the test ends.
func browser(t *testing.T, bin string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1366, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// The whole browser part is bounded; each step is bounded by e2eWait.
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser, which lives as long as the
	// context it is given: the tab's, not a step's.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 900)); err != nil {
		t.Fatalf("start the browser: %v", err)
	}
	return ctx
}

// do runs browser steps, bounded by e2eWait.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, e2eWait)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// js evaluates a JavaScript expression in the tab (awaiting a promise).
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, e2eWait)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.200s: %v", expr, err)
	}
	return v
}
