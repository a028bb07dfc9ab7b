package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	ps "cloud.google.com/go/pubsub/v2"

	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/pubsub"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/testclock"
	"github.com/autonomics/autonomics/shared/topic"
)

// demoSource is the CloudEvents source of the events the demo publishes.
const demoSource = "autonomicsctl/demo"

// Polling of the query API.
const (
	pollEvery       = 150 * time.Millisecond
	actionsTimeout  = 15 * time.Second
	logTailLines    = 25
	runIDTimeLayout = "20060102-150405"
)

// lockedWriter serialises writes of concurrent tenants.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// runID names a demo or load run; it makes event ids and the fresh
// database unique.
func runID(kind string, now time.Time) string { return kind + "-" + now.UTC().Format(runIDTimeLayout) }

// runDemo starts the stack, plays the scenario and reports.
func runDemo(ctx context.Context, o options, stdout io.Writer) error {
	out := &lockedWriter{w: stdout}
	run := runID("demo", time.Now())
	if o.stack.Database == "" {
		o.stack.Database = run
	}
	sc := demoScenario(o.stack.ProviderTenant)
	fmt.Fprintf(out, "starting the local stack (database %s)\n", o.stack.Database)
	s, err := startStack(ctx, o.stack, out)
	if err != nil {
		return err
	}
	defer s.Stop()
	s.describe(out)

	fc, err := firestoreClient(ctx, o.stack.Project, o.stack.Database)
	if err != nil {
		return err
	}
	defer fc.Close()
	pub := pubsub.NewPublisher(s.pubsub, pubsub.PublisherOptions{})
	defer pub.Close()

	tenants := map[string]bool{}
	for _, ts := range sc.All() {
		tenants[ts.Tenant] = true
	}
	col := newCollector(tenants)
	rctx, stopReceiving := context.WithCancel(context.WithoutCancel(ctx))
	recvErr := col.receive(rctx, s.pubsub, o.stack)
	defer stopReceiving()

	r := &demoRunner{
		out: out, q: newQueryClient(o.stack.queryURL()), pub: pub, names: o.stack.names(),
		store: firestore.New(fc, firestore.Options{}), col: col, run: run,
		stepTimeout: o.stepTimeout, functionsLog: s.functions.logPath,
		reactionLogs: []string{s.actuator.logPath, s.receiver.logPath, s.ingest.logPath},
	}
	start := time.Now()
	fmt.Fprintf(out, "\nscenario (run %s)\n", run)
	failures := r.play(ctx, sc, s.Failed())
	if len(failures) == 0 {
		failures = append(failures, col.waitActions(ctx, sc, actionsTimeout)...)
	}
	var marketTenant string
	if len(failures) == 0 {
		var errs []error
		marketTenant, errs = r.playMarketplace(ctx, s.market, o.stack)
		for _, err := range errs {
			r.explain(err)
		}
		failures = append(failures, errs...)
	}
	elapsed := time.Since(start)
	// Let late actions and dead letters arrive before the report.
	time.Sleep(time.Second)
	stopReceiving()
	if err := <-recvErr; err != nil {
		failures = append(failures, err)
	}

	// Report even after Ctrl-C: what was reached is worth seeing.
	reportCtx, cancelReport := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
	defer cancelReport()
	played := len(failures) == 0
	failures = append(failures, r.report(reportCtx, sc, col)...)
	if played {
		wc := &webhookChecks{
			cfg: o.stack, setup: s.webhooks,
			actuator: newAPIClient("actuator", serviceURL(o.stack.actuatorPort())),
			receiver: newAPIClient("receiver", serviceURL(o.stack.receiverPort())),
		}
		failures = append(failures, r.reportWebhooks(reportCtx, wc, col)...)
	}
	if total := r.receiptsVerified; total > 0 {
		var tenants []string
		for _, ts := range sc.All() {
			tenants = append(tenants, ts.Tenant)
		}
		if marketTenant != "" {
			tenants = append(tenants, marketTenant)
		}
		failures = append(failures, verifyLedger(reportCtx, r.q, out, tenants, total, 30*time.Second)...)
	}
	fmt.Fprintf(out, "\nscenario time %.1fs\n", elapsed.Seconds())
	if len(failures) > 0 {
		return fmt.Errorf("%d problem(s):\n  %w", len(failures), joinLines(failures))
	}
	fmt.Fprintf(out, "demo passed: every expected state reached, every action delivered and verified by the receiver, "+
		"the provisioning loop closed through the ingest API, every chain verifies, every receipt is in the signed ledger\n")
	return nil
}

// joinLines joins errors one per line.
func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

// demoRunner plays scenarios against the stack.
type demoRunner struct {
	out          io.Writer
	q            *apiClient
	pub          *pubsub.Publisher
	names        topic.Names
	store        *firestore.Store
	col          *collector
	run          string
	seq          atomic.Int64
	stepTimeout  time.Duration
	functionsLog string
	// reactionLogs are the logs worth reading when a reaction does not
	// arrive: the actuator's, the receiver's and the ingest API's.
	reactionLogs []string
	// receiptsVerified counts the receipts of the verified chains.
	receiptsVerified int

	mu sync.Mutex
	// arrivals are the reactions' events, as they arrived.
	arrivals []arrival
}

// stepError reports a step that did not complete.
type stepError struct {
	Tenant string
	Index  int
	Title  string
	Err    error
	// Logs are logs to show besides the functions host's.
	Logs []string
}

func (e *stepError) Error() string {
	return fmt.Sprintf("%s step %d (%s): %v", e.Tenant, e.Index, e.Title, e.Err)
}

func (e *stepError) Unwrap() error { return e.Err }

// play runs the provider's steps, then the tenants' side by side. The
// first failure stops the others and is the one reported.
func (r *demoRunner) play(ctx context.Context, sc scenario, failed <-chan error) []error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var first error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = err
			r.explain(err)
		}
		cancel()
	}
	go func() {
		select {
		case err := <-failed:
			fail(err)
		case <-ctx.Done():
		}
	}()
	if err := r.runTenant(ctx, sc.Provider); err != nil {
		fail(err)
	} else {
		var wg sync.WaitGroup
		for _, ts := range sc.Tenants {
			wg.Go(func() {
				if err := r.runTenant(ctx, ts); err != nil {
					fail(err)
				}
			})
		}
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		return []error{first}
	}
	return nil
}

// explain prints what a failed step expected, what is, and the end of the
// functions log.
func (r *demoRunner) explain(err error) {
	var se *stepError
	if errors.As(err, &se) {
		fmt.Fprintf(r.out, "\nFAILED: %s step %d: %s\n", se.Tenant, se.Index, se.Title)
	} else {
		fmt.Fprintf(r.out, "\nFAILED: %v\n", err)
	}
	var ce *conditionError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(r.out, "  expected: %s\n  is:       %s\n", ce.Want, ce.Is)
	case se != nil:
		fmt.Fprintf(r.out, "  error: %v\n", se.Err)
	}
	logs := []string{r.functionsLog}
	if se != nil {
		logs = append(logs, se.Logs...)
	}
	for _, l := range logs {
		fmt.Fprintf(r.out, "last lines of %s:\n%s\n", l, indent(tail(l, logTailLines), "  "))
	}
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// runTenant plays one tenant's steps in order.
func (r *demoRunner) runTenant(ctx context.Context, ts tenantScenario) error {
	for i, st := range ts.Steps {
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, r.stepTimeout)
		err := r.runStep(sctx, ts.Tenant, st)
		cancel()
		if err != nil {
			se := &stepError{Tenant: ts.Tenant, Index: i + 1, Title: st.Title, Err: err}
			if st.Reaction != nil {
				se.Logs = r.reactionLogs
			}
			return se
		}
		fmt.Fprintf(r.out, "  ok  %-8s %2d/%d  %s (%.1fs)\n", ts.Tenant, i+1, len(ts.Steps), st.Title, time.Since(start).Seconds())
	}
	return nil
}

// runStep advances the clock if asked, publishes the step's events one
// after the other, each once the previous one's receipt exists, and waits
// for the step's conditions.
func (r *demoRunner) runStep(ctx context.Context, tenant string, st step) error {
	if st.Advance != nil {
		if err := r.advance(ctx, tenant, *st.Advance); err != nil {
			return err
		}
	}
	for _, e := range st.Publish {
		if e.TimerOf != "" {
			data, err := r.armedTimerData(ctx, tenant, e)
			if err != nil {
				return err
			}
			e.Data = data
		}
		id, err := r.publish(ctx, tenant, e)
		if err != nil {
			return err
		}
		if e.DeadLetter != "" {
			if err := r.checkRefused(ctx, tenant, id, e); err != nil {
				return err
			}
			continue
		}
		if err := r.checkReceipt(ctx, tenant, id, e); err != nil {
			return err
		}
	}
	if st.Reaction != nil {
		if err := r.waitReaction(ctx, tenant, *st.Reaction); err != nil {
			return err
		}
	}
	for _, w := range st.Wait {
		if err := r.waitFor(ctx, tenant, w); err != nil {
			return err
		}
	}
	return nil
}

// arrival is a reaction's event as its receipt recorded it.
type arrival struct {
	Tenant string
	// Action and ActionID are the kind and id of the action reacted to.
	Action   string
	ActionID string
	Receipt  receipt.Receipt
}

// waitReaction waits for the action a reaction answers, then for the
// receipt of the provider's event, and checks where it came from and its
// outcome. The demo publishes nothing: the receiver reacts to the action
// through the ingest API.
func (r *demoRunner) waitReaction(ctx context.Context, tenant string, rc reaction) error {
	typ := governor.TypeOf(rc.Event.Domain, rc.Event.Name)
	var actionID string
	for {
		if ids := r.col.actionIDs(rc.Action, tenant, rc.Subject); len(ids) > 0 {
			actionID = ids[0]
			break
		}
		select {
		case <-ctx.Done():
			return &conditionError{Want: fmt.Sprintf("action %s on %s/%s emitted", rc.Action, tenant, rc.Subject), Is: "none within the step timeout"}
		case <-time.After(pollEvery):
		}
	}
	is := "no receipt of " + typ
	for {
		chain, err := r.q.Chain(ctx, tenant, rc.Event.Domain, rc.Event.Subject)
		if err != nil && ctx.Err() == nil {
			return err
		}
		for _, rec := range chain {
			if rec.EventType != typ {
				continue
			}
			if rec.EventSource != rc.Source {
				is = fmt.Sprintf("a receipt of %s from %s", typ, rec.EventSource)
				continue
			}
			if governor.Outcome(rec.Outcome) != rc.Event.wantOutcome() {
				return &conditionError{Want: fmt.Sprintf("%s %s", rc, rc.Event.wantOutcome()), Is: fmt.Sprintf("%s in %s, reason %q", rec.Outcome, rec.FromState, rec.Reason)}
			}
			r.mu.Lock()
			r.arrivals = append(r.arrivals, arrival{Tenant: tenant, Action: rc.Action, ActionID: actionID, Receipt: rec})
			r.mu.Unlock()
			fmt.Fprintf(r.out, "      %-8s %s arrived from %s (receipt seq %d) in reaction to %s %s\n",
				tenant, typ, rec.EventSource, rec.Seq, rc.Action, actionID)
			return nil
		}
		select {
		case <-ctx.Done():
			return &conditionError{Want: rc.String(), Is: is + " within the step timeout"}
		case <-time.After(pollEvery):
		}
	}
}

// armedTimerData returns {"timer_id": id} for the armed timer e.TimerOf of
// e's instance.
func (r *demoRunner) armedTimerData(ctx context.Context, tenant string, e demoEvent) (string, error) {
	insts, err := r.store.Instances(ctx, tenant, e.Domain)
	if err != nil {
		return "", err
	}
	for _, in := range insts {
		if tm, ok := in.Timers[e.TimerOf]; ok && in.Subject == e.Subject {
			return `{"timer_id":"` + tm.ID + `"}`, nil
		}
	}
	return "", fault.Errorf(fault.NotFound, "autonomicsctl.armedTimerData", "%s/%s/%s has no armed timer %s", tenant, e.Domain, e.Subject, e.TimerOf)
}

// checkRefused waits for the dead letter of the forged event id, checks its
// reason, and checks that it has no receipt.
func (r *demoRunner) checkRefused(ctx context.Context, tenant, id string, e demoEvent) error {
	typ := governor.TypeOf(e.Domain, e.Name)
	for {
		if d, ok := r.col.deadLetterOf(id); ok {
			if !strings.Contains(d.Reason, e.DeadLetter) {
				return &conditionError{Want: fmt.Sprintf("forged %s refused with %q", typ, e.DeadLetter), Is: "refused with " + strconv.Quote(d.Reason)}
			}
			if rs, err := r.q.ReceiptsOf(ctx, id); err == nil && len(rs) > 0 {
				return &conditionError{Want: fmt.Sprintf("no receipt for forged %s", typ), Is: "a receipt " + rs[0].Outcome}
			}
			fmt.Fprintf(r.out, "      %-8s refused %s from %s: %s\n", tenant, typ, e.Source, d.Reason)
			return nil
		}
		select {
		case <-ctx.Done():
			return &conditionError{Want: fmt.Sprintf("forged %s %s dead-lettered", typ, id), Is: "no dead letter within the step timeout"}
		case <-time.After(pollEvery):
		}
	}
}

// publish sends e as a binary-mode CloudEvent to its domain topic with the
// tenant as ordering key, and returns its id.
func (r *demoRunner) publish(ctx context.Context, tenant string, e demoEvent) (string, error) {
	id := fmt.Sprintf("%s-%s-%03d", r.run, tenant, r.seq.Add(1))
	src := demoSource
	if e.Source != "" {
		src = e.Source
	}
	if e.DeadLetter != "" {
		r.col.expectDeadLetter(id)
	}
	data, attrs := event.Encode(governor.Event{
		ID: id, Source: src, Domain: e.Domain, Name: e.Name,
		Tenant: tenant, Subject: e.Subject, Time: time.Now().UTC(), Data: []byte(e.Data),
	})
	err := r.pub.Publish(ctx, store.Message{Topic: r.names.Domain(e.Domain), Data: data, Attributes: attrs, OrderingKey: tenant})
	if err != nil {
		return "", fmt.Errorf("publish %s: %w", governor.TypeOf(e.Domain, e.Name), err)
	}
	return id, nil
}

// checkReceipt waits for the receipt of event id and checks its outcome.
func (r *demoRunner) checkReceipt(ctx context.Context, tenant, id string, e demoEvent) error {
	typ := governor.TypeOf(e.Domain, e.Name)
	for {
		rs, err := r.q.ReceiptsOf(ctx, id)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if len(rs) > 0 {
			got := rs[0]
			if governor.Outcome(got.Outcome) != e.wantOutcome() {
				return &conditionError{
					Want: fmt.Sprintf("%s on %s/%s %s", typ, e.Domain, e.Subject, e.wantOutcome()),
					Is:   fmt.Sprintf("%s in %s, reason %q", got.Outcome, got.FromState, got.Reason),
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return &conditionError{
				Want: fmt.Sprintf("a receipt for %s %s on %s/%s", typ, id, e.Domain, e.Subject),
				Is:   "none within the step timeout",
			}
		case <-time.After(pollEvery):
		}
	}
}

// conditionError is a condition not met in time.
type conditionError struct {
	Want, Is string
}

func (e *conditionError) Error() string { return "expected " + e.Want + ", is " + e.Is }

// waitFor polls the query API until w holds.
func (r *demoRunner) waitFor(ctx context.Context, tenant string, w want) error {
	is := "not polled yet"
	for {
		ok, desc, err := r.holds(ctx, tenant, w)
		switch {
		case err != nil && ctx.Err() == nil:
			return err
		case ok:
			return nil
		case desc != "":
			is = desc
		}
		select {
		case <-ctx.Done():
			return &conditionError{Want: w.String(), Is: is}
		case <-time.After(pollEvery):
		}
	}
}

// holds reports whether w holds, and otherwise describes what is.
func (r *demoRunner) holds(ctx context.Context, tenant string, w want) (bool, string, error) {
	insts, err := r.q.Governors(ctx, tenant)
	if err != nil {
		return false, "", err
	}
	var inst *governorView
	for i := range insts {
		if insts[i].Domain == w.Domain && insts[i].Subject == w.Subject {
			inst = &insts[i]
		}
	}
	if inst == nil {
		return false, fmt.Sprintf("%s/%s does not exist", w.Domain, w.Subject), nil
	}
	is := fmt.Sprintf("%s/%s in %s (version %d, data %s)", w.Domain, w.Subject, inst.State, inst.Version, inst.Data)
	if w.Reached {
		chain, err := r.q.Chain(ctx, tenant, w.Domain, w.Subject)
		if err != nil {
			return false, "", err
		}
		if !enteredState(chain, w.State) {
			return false, is + "; never entered " + string(w.State), nil
		}
		return true, is, nil
	}
	if inst.State != w.State {
		return false, is, nil
	}
	if w.Path != "" {
		if v, ok := dataAt(inst.Data, w.Path); !ok || v != w.Value {
			return false, is, nil
		}
	}
	if w.Seen != "" {
		chain, err := r.q.Chain(ctx, tenant, w.Domain, w.Subject)
		if err != nil {
			return false, "", err
		}
		n := 0
		typ := governor.TypeOf(w.Domain, w.Seen)
		for _, rc := range chain {
			if rc.EventType == typ && rc.Outcome == string(governor.Accepted) {
				n++
			}
		}
		if n < w.Times {
			return false, fmt.Sprintf("%s; %s accepted %d times", is, w.Seen, n), nil
		}
	}
	return true, is, nil
}

// enteredState reports whether a chain holds an accepted receipt into s.
func enteredState(chain []receipt.Receipt, s governor.State) bool {
	for _, rc := range chain {
		if rc.ToState == string(s) && rc.Outcome == string(governor.Accepted) {
			return true
		}
	}
	return false
}

// advance plays the step's test clock: it advances the tenant's clock
// (shared/testclock) to the due time of the armed timer the step names,
// which fires that timer, and any of the tenant's falling due before it,
// as timeouts from the test clock, each once its predecessor's receipt
// exists.
func (r *demoRunner) advance(ctx context.Context, tenant string, a clockAdvance) error {
	const op = "autonomicsctl.advance"
	insts, err := r.store.Instances(ctx, tenant, a.Domain)
	if err != nil {
		return err
	}
	var due time.Time
	for _, in := range insts {
		if tm, ok := in.Timers[a.Timer]; ok && in.Subject == a.Subject {
			due = tm.Due
		}
	}
	if due.IsZero() {
		return fault.Errorf(fault.NotFound, op, "%s/%s/%s has no armed timer %s", tenant, a.Domain, a.Subject, a.Timer)
	}
	tc, err := testclock.New(testclock.Options{Enabled: true, Store: r.store, Publisher: r.pub, Topics: r.names})
	if err != nil {
		return err
	}
	fired, err := tc.Advance(ctx, tenant, due)
	for _, f := range fired {
		fmt.Fprintf(r.out, "      %-8s test clock: timer %s of %s/%s due %s fired, %s (receipt %.12s…, event_source %s)\n",
			tenant, f.Timer, f.Domain, f.Subject, f.Due.Format(time.RFC3339), f.Outcome, f.ReceiptHash, f.Source)
	}
	return err
}

// report prints the governors, actions, dead letters and chain
// verification of every tenant, and returns the problems it found.
func (r *demoRunner) report(ctx context.Context, sc scenario, col *collector) []error {
	var problems []error
	tw := tabwriter.NewWriter(r.out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(r.out, "\n== governors ==\n")
	for _, ts := range sc.All() {
		insts, err := r.q.Governors(ctx, ts.Tenant)
		if err != nil {
			problems = append(problems, fmt.Errorf("governors of %s: %w", ts.Tenant, err))
			continue
		}
		sortInstances(insts)
		fmt.Fprintf(tw, "%s\tdomain\tsubject\tstate\tversion\n", ts.Tenant)
		for _, in := range insts {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%d\n", in.Domain, in.Subject, in.State, in.Version)
		}
	}
	tw.Flush()

	fmt.Fprintf(r.out, "\n== actions (autonomics-actions) ==\n")
	fmt.Fprintf(tw, "kind\ttenant\tsubject\tcount\n")
	for _, a := range col.actionCounts() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", a.Kind, a.Tenant, a.Subject, a.Count)
	}
	tw.Flush()

	fmt.Fprintf(r.out, "\n== dead letters (autonomics-dead-letter) ==\n")
	dls := col.deadLetters()
	if len(dls) == 0 {
		fmt.Fprintf(r.out, "none\n")
	}
	for _, d := range dls {
		if col.expected(d.ID) {
			fmt.Fprintf(r.out, "%s %s %s (forged, refused as expected): %s\n", d.Tenant, d.Type, d.ID, d.Reason)
			continue
		}
		fmt.Fprintf(r.out, "%s %s %s: %s\n", d.Tenant, d.Type, d.ID, d.Reason)
		problems = append(problems, fmt.Errorf("dead letter %s %s of %s: %s", d.Type, d.ID, d.Tenant, d.Reason))
	}

	fmt.Fprintf(r.out, "\n== chain verification (GET /v1/tenants/{t}/verify) ==\n")
	for _, ts := range sc.All() {
		v, err := r.q.Verify(ctx, ts.Tenant)
		if err != nil {
			problems = append(problems, fmt.Errorf("verify %s: %w", ts.Tenant, err))
			fmt.Fprintf(tw, "%s\terror\t%v\n", ts.Tenant, err)
			continue
		}
		receipts := 0
		for _, in := range v.Instances {
			receipts += in.Receipts
		}
		r.receiptsVerified += receipts
		if v.OK {
			fmt.Fprintf(tw, "%s\tok\t%d instances, %d receipts\n", ts.Tenant, len(v.Instances), receipts)
			continue
		}
		for _, in := range v.Instances {
			if in.OK || in.Broken == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\tBROKEN\t%s/%s seq %d: %s %s\n", ts.Tenant, in.Domain, in.Subject, in.Broken.Seq, in.Broken.Problem, in.Broken.Detail)
			problems = append(problems, fmt.Errorf("chain %s/%s/%s broken at seq %d: %s", ts.Tenant, in.Domain, in.Subject, in.Broken.Seq, in.Broken.Problem))
		}
	}
	tw.Flush()
	return problems
}

// sortInstances orders instances by the domain order of governor.Domains, then
// subject.
func sortInstances(insts []governorView) {
	rank := func(d governor.Domain) int { return slices.Index(governor.Domains, d) }
	sort.Slice(insts, func(i, j int) bool {
		if a, b := rank(insts[i].Domain), rank(insts[j].Domain); a != b {
			return a < b
		}
		return insts[i].Subject < insts[j].Subject
	})
}

// actionCount is a row of the actions table.
type actionCount struct {
	Kind, Tenant, Subject string
	Count                 int
}

// deadLetter is a message found on the dead-letter topic.
type deadLetter struct {
	Tenant, Type, ID, Reason string
}

// collector gathers the actions and dead letters of the demo's tenants.
type collector struct {
	tenants map[string]bool

	mu      sync.Mutex
	actions map[actionCount]int
	// seen are the actions in arrival order, each once.
	seen    []seenAction
	seenIDs map[string]bool
	dead    []deadLetter
	forged  map[string]bool
	changed chan struct{}
}

// expectDeadLetter records that the event id is forged and must be
// dead-lettered.
func (c *collector) expectDeadLetter(id string) {
	c.mu.Lock()
	c.forged[id] = true
	c.mu.Unlock()
}

// expected reports whether id is a forged event's.
func (c *collector) expected(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forged[id]
}

// deadLetterOf returns the dead letter of event id, if it arrived.
func (c *collector) deadLetterOf(id string) (deadLetter, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.dead {
		if d.ID == id {
			return d, true
		}
	}
	return deadLetter{}, false
}

func newCollector(tenants map[string]bool) *collector {
	return &collector{
		tenants: tenants, actions: map[actionCount]int{}, seenIDs: map[string]bool{},
		forged: map[string]bool{}, changed: make(chan struct{}, 1),
	}
}

// receive pulls actions and dead letters until ctx is done; the returned
// channel yields the first receive error, or nil, once both pulls ended.
func (c *collector) receive(ctx context.Context, client *ps.Client, cfg stackConfig) <-chan error {
	errc := make(chan error, 1)
	pulls := []struct {
		sub string
		fn  func(map[string]string)
	}{
		{cfg.pullName(pullActions), c.addAction},
		{cfg.pullName(pullDeadLetter), c.addDeadLetter},
	}
	go func() {
		errs := make([]error, len(pulls))
		var wg sync.WaitGroup
		for i, p := range pulls {
			wg.Go(func() {
				errs[i] = pubsub.Receive(ctx, client, p.sub, func(_ context.Context, m *ps.Message) {
					m.Ack()
					p.fn(m.Attributes)
				})
			})
		}
		wg.Wait()
		errc <- errors.Join(errs...)
	}()
	return errc
}

func (c *collector) addAction(attrs map[string]string) {
	tenant := attrs["ce-tenantid"]
	if !c.tenants[tenant] {
		return
	}
	key := actionCount{Kind: attrs["action"], Tenant: tenant, Subject: attrs["ce-subject"]}
	id := attrs["ce-id"]
	c.mu.Lock()
	c.actions[key]++
	if id != "" && !c.seenIDs[id] {
		c.seenIDs[id] = true
		c.seen = append(c.seen, seenAction{ID: id, Kind: key.Kind, Tenant: tenant, Subject: key.Subject})
	}
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *collector) addDeadLetter(attrs map[string]string) {
	tenant := attrs["ce-tenantid"]
	if tenant != "" && !c.tenants[tenant] {
		return
	}
	c.mu.Lock()
	c.dead = append(c.dead, deadLetter{Tenant: tenant, Type: attrs["ce-type"], ID: attrs["ce-id"], Reason: deadletter.Parse(attrs).Reason})
	c.mu.Unlock()
}

// actionCounts returns the actions by kind, tenant and subject.
func (c *collector) actionCounts() []actionCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]actionCount, 0, len(c.actions))
	for k, n := range c.actions {
		k.Count = n
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Subject < b.Subject
	})
	return out
}

// seenAction is an action found on the actions topic.
type seenAction struct {
	ID, Kind, Tenant, Subject string
}

// actionIDs returns the ids of the actions of kind on a tenant's subject,
// in arrival order.
func (c *collector) actionIDs(kind, tenant, subject string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, a := range c.seen {
		if a.Kind == kind && a.Tenant == tenant && a.Subject == subject {
			out = append(out, a.ID)
		}
	}
	return out
}

// seenActions returns every action seen, once each, in arrival order.
func (c *collector) seenActions() []seenAction {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

func (c *collector) deadLetters() []deadLetter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.dead)
}

// missingActions lists the expected actions not seen (enough) yet.
func (c *collector) missingActions(sc scenario) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ts := range sc.All() {
		for _, a := range ts.Actions {
			n := c.actions[actionCount{Kind: a.Kind, Tenant: ts.Tenant, Subject: a.Subject}]
			if n < a.Min {
				out = append(out, fmt.Sprintf("%s %s/%s: %d of at least %d", a.Kind, ts.Tenant, a.Subject, n, a.Min))
			}
		}
	}
	return out
}

// waitActions waits until every expected action has arrived.
func (c *collector) waitActions(ctx context.Context, sc scenario, limit time.Duration) []error {
	deadline := time.After(limit)
	for {
		missing := c.missingActions(sc)
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-c.changed:
		case <-ctx.Done():
			return []error{fmt.Errorf("actions missing: %s", strings.Join(missing, "; "))}
		case <-deadline:
			return []error{fmt.Errorf("actions missing after %v: %s", limit, strings.Join(missing, "; "))}
		}
	}
}
