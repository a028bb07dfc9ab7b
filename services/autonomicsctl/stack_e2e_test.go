package main

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	fs "cloud.google.com/go/firestore"
	"github.com/chromedp/chromedp"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// TestStackEndToEnd starts the real local stack once, on the emulators,
// and drives it as an operator does: with the CLI through the console's
// JSON API, then with a headless Chromium on the console's pages, down to
// a receipt tampered with in Firestore that the browser flags.
func TestStackEndToEnd(t *testing.T) {
	e := startE2E(t)
	tenant := e.run + "-acme"
	late := e.run + "-late"
	var st e2eState
	ok := t.Run("CLI", func(t *testing.T) { e.cliThroughStack(t, tenant, late, &st) })
	if !ok {
		t.Fatal("the CLI part failed; the browser part needs its tenants")
	}
	t.Run("Browser", func(t *testing.T) { e.browserThroughStack(t, tenant, &st) })
}

// e2eState is what the CLI part leaves for the browser part.
type e2eState struct {
	// replayable is the id of a dead letter the console may replay,
	// forged the id of one it refuses to.
	replayable, forged string
	// cascade is the correlation id of the entitlement's activation.
	cascade string
}

// cliThroughStack is the CLI part: events sent, governors, tenants,
// receipts, verify, clock advance, dead letters, alerts.
func (e *e2e) cliThroughStack(t *testing.T, tenant, late string, st *e2eState) {
	provider := e.cfg.ProviderTenant

	// The provider's catalog publishes plan starter.
	e.mustCLI(t, "send", "product_catalog.drafted", "-tenant", provider, "-subject", planStarter.SKU, "-data", planStarter.drafted())
	e.waitGovernors(t, provider, governorWant{domain: "product_catalog", subject: planStarter.SKU, state: "draft", path: "currency", value: demoCurrency})
	e.mustCLI(t, "send", "product_catalog.submitted", "-tenant", provider, "-subject", planStarter.SKU)
	e.waitGovernors(t, provider, governorWant{domain: "product_catalog", subject: planStarter.SKU, state: "pending_approval"})
	e.mustCLI(t, "send", "product_catalog.approved", "-tenant", provider, "-subject", planStarter.SKU)
	e.waitGovernors(t, provider, governorWant{domain: "product_catalog", subject: planStarter.SKU, state: "published"})

	// The tenant signs up (table output), then subscribes (-json).
	r := e.mustCLI(t, "send", "-fixture", "signup", "-tenant", tenant)
	for _, want := range []string{"ID", "TYPE", "autonomics.customer_account.requested", "autonomics.customer_account.verified", tenant} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("send -fixture signup prints no %q:\n%s", want, r.stdout)
		}
	}
	e.waitGovernors(t, tenant, governorWant{domain: "customer_account", subject: "default", state: "active"})
	var sent struct {
		Events []sentEvent `json:"events"`
	}
	r = e.cliJSON(t, &sent, "send", "-fixture", "subscribe", "-tenant", tenant)
	if len(sent.Events) != 2 || sent.Events[0].Type != "autonomics.entitlement.creation_requested" || sent.Events[1].Type != "autonomics.entitlement.activated" ||
		sent.Events[0].ID == "" || sent.Events[0].ID == sent.Events[1].ID || sent.Events[0].Subject != "ent-1" {
		t.Fatalf("send -fixture subscribe -json = %+v\n%s", sent.Events, r)
	}
	wants := []governorWant{
		{domain: "customer_account", subject: "default", state: "active"},
		{domain: "entitlement", subject: "ent-1", state: "active", path: "plan", value: planStarter.SKU},
		{domain: "subscription", subject: "ent-1", state: "trialing", path: "plan", value: planStarter.SKU},
		// The provider's system (the stack's receiver) provisions the
		// tenant through the ingest API.
		{domain: "multi_tenant", subject: "default", state: "active"},
	}
	for m, limit := range planStarter.Limits {
		wants = append(wants, governorWant{domain: "quota_sla", subject: m, state: "within_limits", path: "limit", value: strconv.FormatInt(limit, 10)})
	}
	govs := e.waitGovernors(t, tenant, wants...)
	sub, _ := governorOf(govs, "subscription", "ent-1")
	if len(sub.Timers) == 0 || sub.Timers[0].Name != "trial_end" {
		t.Errorf("subscription ent-1 armed timers = %+v, want trial_end", sub.Timers)
	}

	// The governors table.
	r = e.mustCLI(t, "governors", tenant)
	lines := strings.Split(r.stdout, "\n")
	if !strings.HasPrefix(lines[0], "DOMAIN") || !strings.Contains(lines[0], "STATE") {
		t.Errorf("governors table header = %q", lines[0])
	}
	if !tableHas(r.stdout, "subscription", "ent-1", "trialing") || !tableHas(r.stdout, "entitlement", "ent-1", "active") {
		t.Errorf("governors table:\n%s", r.stdout)
	}
	if r := e.cli("governors", "no-such-tenant-"+e.run, "-json"); r.code != exitOK && r.code != exitNotFound {
		t.Errorf("governors of an unknown tenant: %s", r)
	}

	// An event only the scheduler sends is refused by the console itself.
	r = e.cli("send", "subscription.timeout.trial_end", "-tenant", tenant, "-subject", "ent-1", "-data", `{"timer_id":"forged"}`)
	if r.code != exitFailure || !strings.Contains(r.stderr, "may not be sent from outside") {
		t.Errorf("send of a timeout through the console: want exit 1, refused from outside; got %s", r)
	}

	// A second tenant whose account is never verified: its clock moves
	// past the verification timer, which fires on the test clock.
	e.mustCLI(t, "send", "customer_account.requested", "-tenant", late)
	lg := e.waitGovernors(t, late, governorWant{domain: "customer_account", subject: "default", state: "pending_verification"})
	acct, _ := governorOf(lg, "customer_account", "default")
	if len(acct.Timers) != 1 || acct.Timers[0].Name != "verification" {
		t.Fatalf("%s customer_account timers = %+v, want verification", late, acct.Timers)
	}

	// tenants -prefix lists both, in order.
	var tp tenantsPage
	r = e.cliJSON(t, &tp, "tenants", "-prefix", e.run+"-")
	if want := []string{tenant, late}; strings.Join(tp.Tenants, ",") != strings.Join(sortedCopy(want), ",") {
		t.Errorf("tenants -prefix %s- = %v, want %v\n%s", e.run, tp.Tenants, sortedCopy(want), r)
	}
	r = e.mustCLI(t, "tenants", "-prefix", e.run+"-", "-limit", "1")
	if !strings.HasPrefix(r.stdout, "TENANT\n") || !strings.Contains(r.stdout, sortedCopy([]string{tenant, late})[0]) || !strings.Contains(r.stdout, "more: -after") {
		t.Errorf("tenants -limit 1 (table, paged):\n%s", r.stdout)
	}
	var all tenantsPage
	e.cliJSON(t, &all, "tenants", "-all", "-limit", "1")
	if len(all.Tenants) != 3 || !containsAll(all.Tenants, provider, tenant, late) {
		t.Errorf("tenants -all = %v, want %s, %s, %s", all.Tenants, provider, tenant, late)
	}

	// receipts: the table and -json, newest first.
	var rp receiptsPage
	e.cliJSON(t, &rp, "receipts", tenant, "-limit", "200")
	if len(rp.Receipts) < 8 {
		t.Fatalf("receipts %s: %d receipts, want at least 8 (account, entitlement, subscription, provisioning, quotas)", tenant, len(rp.Receipts))
	}
	for i, rc := range rp.Receipts {
		if rc.TenantID != tenant || rc.Hash == "" {
			t.Errorf("receipt %d of %s: tenant %q hash %q", i, tenant, rc.TenantID, rc.Hash)
		}
		if i > 0 && rc.DecidedAt > rp.Receipts[i-1].DecidedAt {
			t.Errorf("receipts not newest first: %s after %s", rc.DecidedAt, rp.Receipts[i-1].DecidedAt)
		}
		if rc.EventType == "autonomics.entitlement.activated" {
			st.cascade = rc.CorrelationID
		}
	}
	if st.cascade == "" {
		t.Errorf("no receipt of autonomics.entitlement.activated among %d", len(rp.Receipts))
	}
	var only receiptsPage
	e.cliJSON(t, &only, "receipts", tenant, "-domain", "customer_account")
	if len(only.Receipts) != 2 {
		t.Errorf("receipts -domain customer_account: %d receipts, want 2 (requested, verified)", len(only.Receipts))
	}
	for _, rc := range only.Receipts {
		if rc.Domain != "customer_account" {
			t.Errorf("receipts -domain customer_account lists a receipt of %s", rc.Domain)
		}
	}
	r = e.mustCLI(t, "receipts", tenant, "-since", "1h")
	if !strings.HasPrefix(r.stdout, "DECIDED") || !tableHas(r.stdout, "customer_account", "default", "autonomics.customer_account.verified", "pending_verification", "active", "accepted") {
		t.Errorf("receipts table:\n%s", r.stdout)
	}

	// verify: exit 0 once the ledger holds every receipt.
	var vo verifyOutput
	poll(t, "verify "+tenant+" with every receipt in the signed ledger", func() (bool, string) {
		r := e.cli("verify", tenant, "-json")
		vo = verifyOutput{}
		if err := json.Unmarshal([]byte(r.stdout), &vo); err != nil {
			return false, r.String()
		}
		return r.code == exitOK && vo.OK && vo.Pending == 0 && vo.Receipts > 0 && vo.Included == vo.Receipts, r.String()
	})
	if vo.Checkpoint == nil || vo.Checkpoint.Size < int64(vo.Receipts) || len(vo.Problems) != 0 {
		t.Fatalf("verify -json: checkpoint %+v, problems %+v", vo.Checkpoint, vo.Problems)
	}
	t.Logf("verify %s: %d receipts of %d instances, all in the signed checkpoint of size %d", tenant, vo.Receipts, len(vo.Instances), vo.Checkpoint.Size)
	r = e.mustCLI(t, "verify", tenant)
	if r.stdout == "" {
		t.Errorf("verify prints nothing")
	}

	// The test clock fires the verification timer of the late tenant.
	r = e.mustCLI(t, "clock", "advance", "-tenant", late, "-to", "+192h")
	if !tableHas(r.stdout, "verification") || !strings.Contains(r.stdout, "1 timers fired") {
		t.Errorf("clock advance:\n%s", r.stdout)
	}
	e.waitGovernors(t, late, governorWant{domain: "customer_account", subject: "default", state: "closed"})
	var lr receiptsPage
	e.cliJSON(t, &lr, "receipts", late, "-domain", "customer_account")
	var fired *receipt.Receipt
	for i := range lr.Receipts {
		if lr.Receipts[i].EventType == "autonomics.customer_account."+string(governor.Timeout("verification")) {
			fired = &lr.Receipts[i]
		}
	}
	switch {
	case fired == nil:
		t.Errorf("no receipt of the verification timeout among %+v", lr.Receipts)
	case fired.EventSource != engine.TestClockSource || fired.ToState != "closed" || fired.Outcome != string(governor.Accepted):
		t.Errorf("the timeout's receipt: source %s, %s → %s %s; want from %s, accepted into closed",
			fired.EventSource, fired.FromState, fired.ToState, fired.Outcome, engine.TestClockSource)
	}
	// A clock does not go back; advancing again fires nothing more.
	if r := e.cli("clock", "advance", "-tenant", late, "-to", "+191h"); r.code != exitFailure || !strings.Contains(r.stderr, "is not after the last advance") {
		t.Errorf("clock advance backwards: want exit 1, not after the last advance; got %s", r)
	}
	var again struct {
		Fired []firedTimer `json:"fired"`
	}
	e.cliJSON(t, &again, "clock", "advance", "-tenant", late, "-to", "+193h")
	if len(again.Fired) != 0 {
		t.Errorf("a second advance fired %+v", again.Fired)
	}

	// Forged events published straight to the domain topic are
	// dead-lettered: one claiming to be the timer (not replayable, its
	// source is Autonomics'), one from an outsider (replayable: it goes
	// through the same validation again).
	asTimer := e.publishForged(t, tenant, governor.Subscription, governor.Timeout("trial_end"), "ent-1", engine.TimerSource, `{"timer_id":"forged"}`)
	outsider := e.publishForged(t, tenant, governor.Subscription, governor.Timeout("trial_end"), "ent-1", "//evil/outsider", `{"timer_id":"forged"}`)
	d1 := e.waitDeadLetter(t, asTimer)
	d2 := e.waitDeadLetter(t, outsider)
	if d1.Replayable || !strings.Contains(d1.Reason, "reserved") || d1.Domain != "subscription" || d1.Tenant != tenant {
		t.Errorf("dead letter of the forged timer event: %+v", d1)
	}
	if !d2.Replayable || !strings.Contains(d2.Reason, "scheduler") || d2.Type != "autonomics.subscription.timeout.trial_end" {
		t.Errorf("dead letter of the outsider's event: %+v", d2)
	}
	st.replayable, st.forged = d2.ID, d1.ID
	t.Logf("dead letters: %s (%s, replayable %v), %s (%s, replayable %v)", d1.ID, d1.Reason, d1.Replayable, d2.ID, d2.Reason, d2.Replayable)
	r = e.mustCLI(t, "dlq", "list")
	if !strings.HasPrefix(r.stdout, "ID") || !tableHas(r.stdout, d1.ID, "subscription", "autonomics.subscription.timeout.trial_end", tenant, "false") ||
		!tableHas(r.stdout, d2.ID, "true") {
		t.Errorf("dlq list table:\n%s", r.stdout)
	}
	// The receipts show neither.
	e.cliJSON(t, &rp, "receipts", tenant, "-domain", "subscription")
	for _, rc := range rp.Receipts {
		if rc.ExecutionID == asTimer || rc.ExecutionID == outsider || rc.EventType == "autonomics.subscription.timeout.trial_end" {
			t.Errorf("a forged event has a receipt: %+v", rc)
		}
	}

	// Replays: the replayable one is published again, the other refused.
	var rep struct {
		Published string `json:"published"`
	}
	e.cliJSON(t, &rep, "dlq", "replay", d2.ID)
	if rep.Published == "" {
		t.Errorf("dlq replay %s published no message", d2.ID)
	}
	if r := e.cli("dlq", "replay", d1.ID); r.code != exitFailure || !strings.Contains(r.stderr, "may not be replayed") {
		t.Errorf("dlq replay of the forged timer event: want exit 1, may not be replayed; got %s", r)
	}
	if r := e.cli("dlq", "replay", "no-such-dead-letter"); r.code != exitNotFound {
		t.Errorf("dlq replay of an unknown id: want exit %d; got %s", exitNotFound, r)
	}

	// Alerts answer, as a table and as JSON.
	r = e.mustCLI(t, "alerts")
	if !strings.HasPrefix(r.stdout, "STATE") {
		t.Errorf("alerts table:\n%s", r.stdout)
	}
	var al struct {
		Alerts []consoleAlert `json:"alerts"`
	}
	e.cliJSON(t, &al, "alerts")
	if r := e.cli("alerts", "-state", "bogus"); r.code != exitUsage {
		t.Errorf("alerts -state bogus: want exit %d; got %s", exitUsage, r)
	}
}

// browserThroughStack is the browser part: the tenant's diagrams, the
// timeline verified in the browser, a tampered receipt flagged, a cascade
// expanded, a silence created, a dead letter replayed.
func (e *e2e) browserThroughStack(t *testing.T, tenant string, st *e2eState) {
	bin := browserBinary(t)
	if bin == "" {
		t.Skip("chromium is not installed (apt-get install -y chromium); set CI=true to fail instead")
	}
	ctx := browser(t, bin)
	base := e.url
	tpath := "/tenants/" + url.PathEscape(tenant)

	// Exactly one highlighted state per diagram, the instance's.
	do(t, ctx, "open the tenant", chromedp.Navigate(base+tpath),
		chromedp.WaitVisible(chromedp.CSS(`section.governor[data-domain="subscription"] svg`)))
	type diagram struct {
		Domain, Subject, State string
		Exists                 bool
		Current                []string
	}
	diagrams := js[[]diagram](t, ctx, `Array.from(document.querySelectorAll('section.governor')).map(function(s){
		return {Domain: s.dataset.domain, Subject: s.dataset.subject, State: s.dataset.state,
			Exists: !s.querySelector('.state.none'),
			Current: Array.from(s.querySelectorAll('svg g.node.current')).map(function(g){return g.dataset.state})}})`)
	if len(diagrams) < len(governor.Domains) {
		t.Errorf("%d governor sections, want at least one per domain (%d)", len(diagrams), len(governor.Domains))
	}
	t.Logf("tenant page: %d diagrams, each with one highlighted state", len(diagrams))
	seen := map[string]bool{}
	for _, d := range diagrams {
		seen[d.Domain] = true
		if len(d.Current) != 1 {
			t.Errorf("%s/%s: %d highlighted states %v, want exactly one", d.Domain, d.Subject, len(d.Current), d.Current)
			continue
		}
		if d.Exists && d.Current[0] != d.State {
			t.Errorf("%s/%s in %s highlights %s", d.Domain, d.Subject, d.State, d.Current[0])
		}
	}
	for _, dom := range governor.Domains {
		if !seen[string(dom)] {
			t.Errorf("no diagram of %s", dom)
		}
	}
	if got := js[string](t, ctx, `(document.querySelector('section.governor[data-domain="subscription"][data-subject="ent-1"] svg g.node.current')||{dataset:{}}).dataset.state||''`); got != "trialing" {
		t.Errorf("subscription ent-1 highlights %q, want trialing", got)
	}
	if timers := js[string](t, ctx, `(document.querySelector('section.governor[data-domain="subscription"][data-subject="ent-1"] ul.timers')||{innerText:''}).innerText`); !strings.Contains(timers, "trial_end") {
		t.Errorf("subscription ent-1 armed timers shown: %q", timers)
	}

	// The timeline verifies in the browser, every row ok.
	timeline := base + tpath + "/timeline"
	var marks map[string][2]string
	poll(t, "every receipt of the timeline verified in the browser", func() (bool, string) {
		var status string
		marks, status = e.verifyTimeline(t, ctx, timeline)
		if len(marks) == 0 {
			return false, "no row: " + status
		}
		for h, m := range marks {
			if m[0] != "ok" {
				return false, status + "\n" + h + ": " + m[1]
			}
		}
		return strings.Contains(status, "verified in this browser"), status
	})

	// Tamper with the last receipt of the account in Firestore: to_state
	// changes, the hash stays.
	govs, _ := e.governors(t, tenant)
	acct, ok := governorOf(govs, "customer_account", "default")
	if !ok || acct.Version < 1 {
		t.Fatalf("no customer_account/default instance: %s", describeGovernors(govs))
	}
	doc := e.fc.Doc(receiptPath(tenant, "customer_account", "default", acct.Version))
	tctx, cancel := context.WithTimeout(context.Background(), e2eCommand)
	defer cancel()
	snap, err := doc.Get(tctx)
	if err != nil {
		t.Fatalf("read the receipt to tamper with: %v", err)
	}
	victim, _ := snap.Data()["hash"].(string)
	if to, _ := snap.Data()["to_state"].(string); victim == "" || to != "active" {
		t.Fatalf("receipt %s: hash %q to_state %q, want active", doc.Path, victim, to)
	}
	if _, err := doc.Update(tctx, []fs.Update{{Path: "to_state", Value: "closed"}}); err != nil {
		t.Fatalf("tamper with %s: %v", doc.Path, err)
	}
	marks, status := e.verifyTimeline(t, ctx, timeline)
	if _, ok := marks[victim]; !ok {
		t.Fatalf("the tampered receipt %s is not on the timeline (%d rows)", victim, len(marks))
	}
	for h, m := range marks {
		switch {
		case h == victim && (m[0] != "bad" || !strings.Contains(m[1], "hash")):
			t.Errorf("tampered receipt marked %v, want bad with a hash mismatch", m)
		case h != victim && m[0] != "ok":
			t.Errorf("intact receipt %s marked %v", h, m)
		}
	}
	t.Logf("after tampering with %s: %q; %s", doc.Path, marks[victim][1], status)
	if !strings.Contains(status, "1 of "+strconv.Itoa(len(marks))+" receipts failed") {
		t.Errorf("status after tampering = %q", status)
	}
	if !js[bool](t, ctx, `document.querySelector('li.receipt[data-hash="`+victim+`"]').classList.contains('verified-bad')`) {
		t.Errorf("the tampered row is not drawn as failed")
	}
	shown := js[string](t, ctx, `document.querySelector('li.receipt[data-hash="`+victim+`"] summary').innerText`)
	if !strings.Contains(shown, "→ closed") {
		t.Errorf("the tampered row shows %q: the page should show what is stored", shown)
	}

	// A cascade: the entitlement's activation and what it caused.
	if st.cascade == "" {
		t.Fatal("no cascade to open")
	}
	do(t, ctx, "open the cascade", chromedp.Navigate(base+tpath+"/cascades/"+url.PathEscape(st.cascade)),
		chromedp.WaitVisible(chromedp.CSS(`ul.tree li.cnode`)))
	if n := js[int](t, ctx, `document.querySelectorAll('ul.tree li.cnode li.cnode').length`); n < 2 {
		t.Errorf("the activation's cascade has %d caused receipts, want at least 2 (subscription, multi_tenant, quotas)", n)
	}
	child := `ul.tree li.cnode li.cnode > details > summary`
	if js[bool](t, ctx, `document.querySelector('`+child+`').parentElement.open`) {
		t.Fatal("the caused receipt is expanded before it is asked to be")
	}
	do(t, ctx, "expand a caused receipt", chromedp.Click(chromedp.CSS(child)))
	body := js[string](t, ctx, `(function(){var d=document.querySelector('`+child+`').parentElement; return d.open ? d.querySelector('pre.json').innerText : ''})()`)
	if !strings.Contains(body, st.cascade) || !strings.Contains(body, `"causation`) && !strings.Contains(body, `"execution_id"`) {
		t.Errorf("expanded receipt shows %q", body)
	}

	// A silence created through the alerts page's form.
	comment := "e2e " + e.run
	do(t, ctx, "open the alerts", chromedp.Navigate(base+"/alerts"), chromedp.WaitVisible(chromedp.ID("matchers")))
	js[bool](t, ctx, `document.getElementById('duration').value = ''; true`)
	do(t, ctx, "create a silence",
		chromedp.SendKeys(chromedp.ID("matchers"), "alertname=receipts_stalled, tenant="+tenant),
		chromedp.SendKeys(chromedp.ID("duration"), "30m"),
		chromedp.SendKeys(chromedp.ID("comment"), comment),
		chromedp.Click(chromedp.CSS(`form.silence-form button[type="submit"]`)))
	poll(t, "the new silence listed on the alerts page", func() (bool, string) {
		rows := js[string](t, ctx, `Array.from(document.querySelectorAll('tr.silence')).map(function(r){return r.innerText}).join('\n')`)
		return strings.Contains(rows, comment) && strings.Contains(rows, "tenant="+tenant), rows
	})
	var sl struct {
		Silences []consoleSilence `json:"silences"`
	}
	e.cliJSON(t, &sl, "silence", "list")
	found := false
	for _, s := range sl.Silences {
		if s.Comment == comment && s.Matchers["tenant"] == tenant && s.Matchers["alertname"] == "receipts_stalled" && s.Active {
			found = true
		}
	}
	if !found {
		t.Errorf("silence list -json does not hold the page's silence: %+v", sl.Silences)
	}

	// A dead letter replayed from the dead letters page; the forged one
	// has no button.
	row := `tr.deadletter[data-id="` + st.replayable + `"]`
	do(t, ctx, "replay a dead letter", chromedp.Navigate(base+"/deadletters"),
		chromedp.Click(chromedp.CSS(row+` button`)),
		chromedp.WaitVisible(chromedp.CSS(`.result.ok code.published`)))
	if got := js[string](t, ctx, `document.querySelector('.result.ok code.published').textContent`); got == "" {
		t.Errorf("the page shows no published message id")
	}
	if n := js[int](t, ctx, `document.querySelectorAll('tr.deadletter[data-id="`+st.forged+`"] button').length`); n != 0 {
		t.Errorf("the forged timer event has a replay button")
	}
}

// verifyTimeline loads the timeline, presses "Verify in browser" and
// returns each row's mark by receipt hash ([verified, text]) and the
// status line.
func (e *e2e) verifyTimeline(t *testing.T, ctx context.Context, timeline string) (map[string][2]string, string) {
	t.Helper()
	do(t, ctx, "open the timeline and verify", chromedp.Navigate(timeline),
		chromedp.WaitVisible(chromedp.ID("verify")),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.CSS(`#verify-status[data-result]`)))
	marks := js[map[string][2]string](t, ctx, `(function(){var m={}; document.querySelectorAll('li.receipt').forEach(function(li){m[li.dataset.hash]=[li.dataset.verified||'', li.querySelector('.mark').textContent]}); return m})()`)
	status := js[string](t, ctx, `document.getElementById('verify-status').textContent`)
	return marks, status
}

// tableHas reports whether a line of a table holds every cell, in order.
func tableHas(table string, cells ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		fields := strings.Fields(line)
		i := 0
		for _, f := range fields {
			if i < len(cells) && f == cells[i] {
				i++
			}
		}
		if i == len(cells) {
			return true
		}
	}
	return false
}

// sortedCopy returns ss sorted.
func sortedCopy(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

// containsAll reports whether ss holds every want.
func containsAll(ss []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, s := range ss {
			found = found || s == w
		}
		if !found {
			return false
		}
	}
	return true
}
