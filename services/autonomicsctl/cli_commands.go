package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Bounds of the listings.
const (
	// maxListLimit bounds -limit of the listings.
	maxListLimit = 10000
	// pageLimit is the page size asked of the console.
	pageLimit = 500
	// maxAllTenants bounds tenants -all.
	maxAllTenants = 1000000
)

// tenant checks a tenant id given on the command line.
func tenantArg(s string) error {
	if err := event.ValidTenant(s); err != nil {
		return usagef("%s", fault.ErrorMessage(err))
	}
	return nil
}

// tenantPath returns the API path of a tenant.
func tenantPath(t string) string { return "/api/v1/tenants/" + pathSegment(t) }

// limitArg checks a -limit value.
func limitArg(n, max int) error {
	if n < 1 || n > max {
		return usagef("-limit %d: want 1 to %d", n, max)
	}
	return nil
}

// tenantsPage is the answer of GET /api/v1/tenants.
type tenantsPage struct {
	Tenants []string `json:"tenants"`
	Next    string   `json:"next"`
}

func runTenants(ctx context.Context, c *cliCall) error {
	fs := c.flags("tenants")
	prefix := fs.String("prefix", "", "only tenants whose id starts with this")
	after := fs.String("after", "", "only tenants after this id (the next of a previous page)")
	limit := fs.Int("limit", 100, "tenants per page")
	all := fs.Bool("all", false, "follow the pages to the last tenant")
	if _, err := c.parse(fs, c.args); err != nil {
		return err
	}
	if err := limitArg(*limit, maxListLimit); err != nil {
		return err
	}
	for _, p := range []struct{ name, v string }{{"-prefix", *prefix}, {"-after", *after}} {
		if len(p.v) > event.MaxIDLen || strings.ContainsFunc(p.v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return usagef("%s %q: want at most %d printable characters", p.name, p.v, event.MaxIDLen)
		}
	}
	var out tenantsPage
	next := *after
	for {
		q := url.Values{"limit": {strconv.Itoa(*limit)}}
		if *prefix != "" {
			q.Set("prefix", *prefix)
		}
		if next != "" {
			q.Set("after", next)
		}
		var page tenantsPage
		raw, err := c.client.getJSON(ctx, "/api/v1/tenants", q, &page)
		if err != nil {
			return err
		}
		if !*all {
			if c.json {
				return c.printJSON(raw)
			}
			out = page
			break
		}
		out.Tenants = append(out.Tenants, page.Tenants...)
		if page.Next == "" || page.Next == next || len(page.Tenants) == 0 {
			break
		}
		if len(out.Tenants) >= maxAllTenants {
			return fmt.Errorf("more than %d tenants; list them by -prefix", maxAllTenants)
		}
		next = page.Next
	}
	if out.Tenants == nil {
		out.Tenants = []string{}
	}
	if c.json {
		return c.printJSON(out)
	}
	w := c.table()
	row(w, "TENANT")
	for _, t := range out.Tenants {
		row(w, t)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if out.Next != "" {
		fmt.Fprintf(c.env.stdout, "more: -after %s (or -all)\n", cell(out.Next))
	}
	return nil
}

// consoleGovernor is one instance of GET /api/v1/tenants/{t}/governors;
// Timers is there when the console lists the armed timers.
type consoleGovernor struct {
	Domain    string          `json:"domain"`
	Subject   string          `json:"subject"`
	State     string          `json:"state"`
	Version   int64           `json:"version"`
	Data      json.RawMessage `json:"data"`
	UpdatedAt string          `json:"updated_at"`
	// LastHash, when the console lists it, is the hash of the instance's
	// last receipt: verify compares the chain's head with it.
	LastHash string `json:"last_hash,omitempty"`
	Timers   []struct {
		Name string `json:"name"`
		Due  string `json:"due"`
	} `json:"timers,omitempty"`
}

// governorsAnswer is the answer of GET /api/v1/tenants/{t}/governors.
type governorsAnswer struct {
	Tenant    string            `json:"tenant_id"`
	Governors []consoleGovernor `json:"governors"`
}

func runGovernors(ctx context.Context, c *cliCall) error {
	fs := c.flags("governors")
	pos, err := c.parse(fs, c.args, "TENANT")
	if err != nil {
		return err
	}
	if err := tenantArg(pos[0]); err != nil {
		return err
	}
	var ans governorsAnswer
	raw, err := c.client.getJSON(ctx, tenantPath(pos[0])+"/governors", nil, &ans)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw)
	}
	w := c.table()
	row(w, "DOMAIN", "SUBJECT", "STATE", "VERSION", "UPDATED", "TIMERS", "DATA")
	for _, g := range ans.Governors {
		var timers []string
		for _, t := range g.Timers {
			timers = append(timers, t.Name+"@"+t.Due)
		}
		row(w, g.Domain, g.Subject, g.State, strconv.FormatInt(g.Version, 10), g.UpdatedAt, strings.Join(timers, ","), compactJSON(g.Data))
	}
	return w.Flush()
}

// compactJSON returns raw on one line.
func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b strings.Builder
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	out, _ := json.Marshal(v)
	b.Write(out)
	return b.String()
}

// receiptsPage is the answer of GET /api/v1/tenants/{t}/receipts.
type receiptsPage struct {
	Receipts []receipt.Receipt `json:"receipts"`
	Next     string            `json:"next_page_token"`
}

// domainArg checks a -domain value.
func domainArg(d string) error {
	if d == "" || slices.Contains(governor.Domains, governor.Domain(d)) {
		return nil
	}
	names := make([]string, len(governor.Domains))
	for i, k := range governor.Domains {
		names[i] = string(k)
	}
	return usagef("-domain %q: want one of %s", d, strings.Join(names, ", "))
}

// timeArg parses a -since or -until value: an RFC 3339 time, or a
// duration meaning that long before now.
func timeArg(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, usagef("%s %q: want an RFC 3339 time or a duration ago (e.g. 2h)", name, s)
}

func runReceipts(ctx context.Context, c *cliCall) error {
	fs := c.flags("receipts")
	domain := fs.String("domain", "", "only this governor domain")
	since := fs.String("since", "", "only receipts decided at or after this RFC 3339 time or duration ago (e.g. 24h)")
	until := fs.String("until", "", "only receipts decided before this RFC 3339 time or duration ago")
	limit := fs.Int("limit", 50, "at most this many receipts, newest first")
	pos, err := c.parse(fs, c.args, "TENANT")
	if err != nil {
		return err
	}
	if err := tenantArg(pos[0]); err != nil {
		return err
	}
	if err := domainArg(*domain); err != nil {
		return err
	}
	if err := limitArg(*limit, maxListLimit); err != nil {
		return err
	}
	now := c.env.now()
	from, err := timeArg("-since", *since, now)
	if err != nil {
		return err
	}
	to, err := timeArg("-until", *until, now)
	if err != nil {
		return err
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return usagef("-since must be before -until")
	}
	q := url.Values{"order": {"newest"}}
	if *domain != "" {
		q.Set("domain", *domain)
	}
	if !from.IsZero() {
		q.Set("since", from.Format(time.RFC3339Nano))
	}
	if !to.IsZero() {
		q.Set("until", to.Format(time.RFC3339Nano))
	}
	out := receiptsPage{Receipts: []receipt.Receipt{}}
	token := ""
	for len(out.Receipts) < *limit {
		q.Set("limit", strconv.Itoa(min(*limit-len(out.Receipts), pageLimit)))
		if token != "" {
			q.Set("page_token", token)
		}
		var page receiptsPage
		if _, err := c.client.getJSON(ctx, tenantPath(pos[0])+"/receipts", q, &page); err != nil {
			return err
		}
		out.Receipts = append(out.Receipts, page.Receipts...)
		out.Next = page.Next
		if page.Next == "" || page.Next == token || len(page.Receipts) == 0 {
			break
		}
		token = page.Next
	}
	if len(out.Receipts) > *limit {
		out.Receipts = out.Receipts[:*limit]
	}
	if c.json {
		return c.printJSON(out)
	}
	w := c.table()
	row(w, "DECIDED", "DOMAIN", "SUBJECT", "SEQ", "EVENT", "FROM", "TO", "OUTCOME", "REASON", "HASH")
	for i := range out.Receipts {
		r := &out.Receipts[i]
		row(w, r.DecidedAt, r.Domain, r.Subject, strconv.FormatInt(r.Seq, 10), r.EventType, r.FromState, r.ToState, r.Outcome, r.Reason, shortHash(r.Hash))
	}
	return w.Flush()
}

// shortHash returns the first 12 hex digits of a hash.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// deadLetter is one dead letter of GET /api/v1/deadletters.
type consoleDeadLetter struct {
	ID         string            `json:"id"`
	ReceivedAt string            `json:"received_at"`
	Reason     string            `json:"reason"`
	Code       string            `json:"code"`
	Domain     string            `json:"domain"`
	Type       string            `json:"type"`
	Tenant     string            `json:"tenant"`
	Attributes map[string]string `json:"attributes"`
	DataBase64 string            `json:"data_base64"`
	Replayable bool              `json:"replayable"`
}

func runDLQ(ctx context.Context, c *cliCall) error {
	if len(c.args) == 0 || strings.HasPrefix(c.args[0], "-") {
		return usagef("want dlq list or dlq replay ID")
	}
	sub, args := c.args[0], c.args[1:]
	switch sub {
	case "list":
		fs := c.flags("dlq list")
		limit := fs.Int("limit", 50, "at most this many dead letters, newest first")
		after := fs.String("after", "", "the next of a previous page")
		if _, err := c.parse(fs, args); err != nil {
			return err
		}
		if err := limitArg(*limit, maxListLimit); err != nil {
			return err
		}
		q := url.Values{"limit": {strconv.Itoa(*limit)}}
		if *after != "" {
			q.Set("after", *after)
		}
		var ans struct {
			DeadLetters []consoleDeadLetter `json:"deadletters"`
			Next        string              `json:"next"`
		}
		raw, err := c.client.getJSON(ctx, "/api/v1/deadletters", q, &ans)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(raw)
		}
		w := c.table()
		row(w, "ID", "RECEIVED", "DOMAIN", "TYPE", "TENANT", "CODE", "REPLAYABLE", "REASON")
		for _, d := range ans.DeadLetters {
			row(w, d.ID, d.ReceivedAt, d.Domain, d.Type, d.Tenant, d.Code, strconv.FormatBool(d.Replayable), d.Reason)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if ans.Next != "" {
			fmt.Fprintf(c.env.stdout, "more: -after %s\n", cell(ans.Next))
		}
		return nil
	case "replay":
		fs := c.flags("dlq replay")
		pos, err := c.parse(fs, args, "ID")
		if err != nil {
			return err
		}
		if err := idArg("dead letter id", pos[0]); err != nil {
			return err
		}
		var ans struct {
			Published string `json:"published"`
		}
		raw, err := c.client.postJSON(ctx, "/api/v1/deadletters/"+pathSegment(pos[0])+":replay", struct{}{}, &ans, false)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(raw)
		}
		fmt.Fprintf(c.env.stdout, "replayed %s: published as message %s\n", cell(pos[0]), cell(ans.Published))
		return nil
	}
	return usagef("unknown dlq command %q: want list or replay", sub)
}

// idArg checks an id given on the command line: 1 to 256 printable
// characters without '/'.
func idArg(what, id string) error {
	if id == "" || len(id) > 256 || strings.ContainsFunc(id, func(r rune) bool { return r <= 0x20 || r == 0x7f || r == '/' }) {
		return usagef("%s %q: want 1 to 256 printable characters without spaces or '/'", what, id)
	}
	return nil
}

// consoleAlert is one alert of GET /api/v1/alerts (the monitor's).
type consoleAlert struct {
	Fingerprint string            `json:"fingerprint"`
	Policy      string            `json:"policy"`
	Severity    string            `json:"severity"`
	Labels      map[string]string `json:"labels"`
	State       string            `json:"state"`
	Reason      string            `json:"reason"`
	Value       float64           `json:"value"`
	ActiveAt    string            `json:"active_at"`
	FiredAt     string            `json:"fired_at"`
	Silenced    bool              `json:"silenced"`
}

func runAlerts(ctx context.Context, c *cliCall) error {
	fs := c.flags("alerts")
	state := fs.String("state", "", "only alerts in this state: pending, firing or resolved")
	if _, err := c.parse(fs, c.args); err != nil {
		return err
	}
	q := url.Values{}
	switch *state {
	case "":
	case "pending", "firing", "resolved":
		q.Set("state", *state)
	default:
		return usagef("-state %q: want pending, firing or resolved", *state)
	}
	var ans struct {
		Alerts []consoleAlert `json:"alerts"`
	}
	raw, err := c.client.getJSON(ctx, "/api/v1/alerts", q, &ans)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw)
	}
	w := c.table()
	row(w, "STATE", "SEVERITY", "POLICY", "LABELS", "VALUE", "SINCE", "SILENCED", "REASON")
	for _, a := range ans.Alerts {
		row(w, a.State, a.Severity, a.Policy, labelsString(a.Labels), strconv.FormatFloat(a.Value, 'g', 6, 64),
			firstNonEmpty(a.FiredAt, a.ActiveAt), strconv.FormatBool(a.Silenced), a.Reason)
	}
	return w.Flush()
}

// labelsString returns labels as k=v,... sorted by key.
func labelsString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

// consoleSilence is a silence of /api/v1/silences (the monitor's).
type consoleSilence struct {
	ID        string            `json:"id"`
	Matchers  map[string]string `json:"matchers"`
	StartsAt  string            `json:"starts_at"`
	EndsAt    string            `json:"ends_at"`
	Comment   string            `json:"comment"`
	CreatedAt string            `json:"created_at"`
	Active    bool              `json:"active"`
}

// matcherFlags collects repeated -matcher k=v flags.
type matcherFlags map[string]string

func (m matcherFlags) String() string { return labelsString(m) }

func (m matcherFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("matcher %q: want label=value", s)
	}
	if _, dup := m[k]; dup {
		return fmt.Errorf("matcher %q: label %s given twice", s, k)
	}
	m[k] = v
	return nil
}

// silenceBody is the body of POST /api/v1/silences.
type silenceCreate struct {
	ID       string            `json:"id,omitempty"`
	Matchers map[string]string `json:"matchers"`
	EndsAt   string            `json:"ends_at"`
	Comment  string            `json:"comment,omitempty"`
}

func runSilence(ctx context.Context, c *cliCall) error {
	if len(c.args) == 0 || strings.HasPrefix(c.args[0], "-") {
		return usagef("want silence list, silence create or silence expire ID")
	}
	sub, args := c.args[0], c.args[1:]
	switch sub {
	case "list":
		fs := c.flags("silence list")
		if _, err := c.parse(fs, args); err != nil {
			return err
		}
		var ans struct {
			Silences []consoleSilence `json:"silences"`
		}
		raw, err := c.client.getJSON(ctx, "/api/v1/silences", nil, &ans)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(raw)
		}
		w := c.table()
		row(w, "ID", "MATCHERS", "STARTS", "ENDS", "ACTIVE", "COMMENT")
		for _, s := range ans.Silences {
			row(w, s.ID, labelsString(s.Matchers), s.StartsAt, s.EndsAt, strconv.FormatBool(s.Active), s.Comment)
		}
		return w.Flush()
	case "create":
		fs := c.flags("silence create")
		matchers := matcherFlags{}
		fs.Var(matchers, "matcher", "label=value the alerts must carry (repeat for several; alertname and severity match the policy and severity)")
		dur := fs.Duration("for", 0, "how long the silence lasts from now (e.g. 2h)")
		until := fs.String("until", "", "when the silence ends, RFC 3339 (instead of -for)")
		comment := fs.String("comment", "", "why (shown with the silence)")
		id := fs.String("id", "", "the silence's id (default: the console picks one)")
		if _, err := c.parse(fs, args); err != nil {
			return err
		}
		if len(matchers) == 0 {
			return usagef("at least one -matcher label=value is required")
		}
		now := c.env.now().UTC()
		var ends time.Time
		switch {
		case *dur != 0 && *until != "":
			return usagef("give -for or -until, not both")
		case *dur > 0:
			ends = now.Add(*dur)
		case *until != "":
			t, err := time.Parse(time.RFC3339Nano, *until)
			if err != nil {
				return usagef("-until %q: want an RFC 3339 time", *until)
			}
			ends = t.UTC()
		default:
			return usagef("-for DURATION or -until TIME is required")
		}
		if !ends.After(now) || ends.Sub(now) > alerting.MaxSilenceDuration {
			return usagef("the silence must end after now and within %v", alerting.MaxSilenceDuration)
		}
		if len(*comment) > alerting.MaxSilenceComment {
			return usagef("-comment: at most %d bytes", alerting.MaxSilenceComment)
		}
		if *id != "" {
			if err := alerting.ValidName("silence id", *id); err != nil {
				return usagef("%s", fault.ErrorMessage(err))
			}
		}
		body := silenceCreate{ID: *id, Matchers: matchers, EndsAt: ends.Format(time.RFC3339), Comment: *comment}
		var ans consoleSilence
		raw, err := c.client.postJSON(ctx, "/api/v1/silences", body, &ans, *id != "")
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(raw)
		}
		fmt.Fprintf(c.env.stdout, "silence %s created: %s until %s\n", cell(ans.ID), cell(labelsString(ans.Matchers)), cell(firstNonEmpty(ans.EndsAt, body.EndsAt)))
		return nil
	case "expire":
		fs := c.flags("silence expire")
		pos, err := c.parse(fs, args, "ID")
		if err != nil {
			return err
		}
		if err := alerting.ValidName("silence id", pos[0]); err != nil {
			return usagef("%s", fault.ErrorMessage(err))
		}
		if _, err := c.client.call(ctx, request{method: http.MethodDelete, path: "/api/v1/silences/" + pathSegment(pos[0]), idempotent: true}); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]string{"expired": pos[0]})
		}
		fmt.Fprintf(c.env.stdout, "silence %s expired\n", cell(pos[0]))
		return nil
	}
	return usagef("unknown silence command %q: want list, create or expire", sub)
}

// firedTimer is one timer of the answer of clock:advance.
type firedTimer struct {
	Timer string `json:"timer"`
	Due   string `json:"due"`
	// Receipt is the hash of the timeout's receipt, or the receipt.
	Receipt json.RawMessage `json:"receipt"`
}

// receiptRef returns the hash a fired timer's receipt field names.
func (f firedTimer) receiptRef() string {
	var s string
	if json.Unmarshal(f.Receipt, &s) == nil {
		return s
	}
	var r struct {
		Hash    string `json:"hash"`
		ToState string `json:"to_state"`
	}
	if json.Unmarshal(f.Receipt, &r) == nil && r.Hash != "" {
		return r.Hash
	}
	return ""
}

func runClock(ctx context.Context, c *cliCall) error {
	if len(c.args) == 0 || c.args[0] != "advance" {
		return usagef("want clock advance -tenant T -to TIME")
	}
	fs := c.flags("clock advance")
	tenant := fs.String("tenant", "", "tenant whose test clock moves (required)")
	to := fs.String("to", "", "the new time: RFC 3339, or +DURATION from now (e.g. +48h)")
	if _, err := c.parse(fs, c.args[1:]); err != nil {
		return err
	}
	if *tenant == "" {
		return usagef("-tenant is required")
	}
	if err := tenantArg(*tenant); err != nil {
		return err
	}
	var target time.Time
	switch {
	case *to == "":
		return usagef("-to is required")
	case strings.HasPrefix(*to, "+"):
		d, err := time.ParseDuration((*to)[1:])
		if err != nil || d <= 0 {
			return usagef("-to %q: want +DURATION, e.g. +48h", *to)
		}
		target = c.env.now().Add(d).UTC()
	default:
		t, err := time.Parse(time.RFC3339Nano, *to)
		if err != nil {
			return usagef("-to %q: want an RFC 3339 time or +DURATION", *to)
		}
		target = t.UTC()
	}
	var ans struct {
		Fired []firedTimer `json:"fired"`
	}
	// Advancing to a time twice fires nothing the second time: safe to
	// retry.
	raw, err := c.client.postJSON(ctx, tenantPath(*tenant)+"/clock:advance", map[string]string{"to": target.Format(time.RFC3339Nano)}, &ans, true)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(raw)
	}
	if len(ans.Fired) == 0 {
		fmt.Fprintf(c.env.stdout, "clock of %s at %s: no timer was due\n", cell(*tenant), target.Format(time.RFC3339))
		return nil
	}
	w := c.table()
	row(w, "TIMER", "DUE", "RECEIPT")
	for _, f := range ans.Fired {
		row(w, f.Timer, f.Due, shortHash(f.receiptRef()))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.env.stdout, "clock of %s at %s: %d timers fired\n", cell(*tenant), target.Format(time.RFC3339), len(ans.Fired))
	return nil
}
