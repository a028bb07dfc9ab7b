package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autonomics/autonomics/shared/caller"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Bounds of what the pages accept.
const (
	maxPrefix      = 128
	maxToken       = 1024
	maxID          = 256
	maxMatchers    = 16
	maxLabelLength = 256
)

// page is what every template receives.
type page struct {
	Title   string
	Heading string
	Nav     string
	Tenant  string
	Body    any
}

var funcs = template.FuncMap{
	"rfc": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"short": func(s string, n int) string {
		if utf8.RuneCountInString(s) <= n {
			return s
		}
		r := []rune(s)
		return string(r[:n]) + "…"
	},
	"cut": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n]
	},
	"path": url.PathEscape,
	"query": func(kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		if len(v) == 0 {
			return ""
		}
		return template.URL("?" + v.Encode())
	},
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Title = c.o.Title
	var buf bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		c.o.Logger.ErrorContext(r.Context(), "console page failed", "page", name, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorBody is the body of the error page.
type errorBody struct {
	Status  int
	Code    fault.Code
	Message string
}

// fail renders err as an error page with the status its code maps to.
// Internal errors are shown without their message.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := fault.ErrorCode(err)
	msg := fault.ErrorMessage(err)
	status := httpjson.Status(code)
	if code == fault.Internal {
		c.o.Logger.ErrorContext(r.Context(), "console request failed", "path", r.URL.Path, "error", err.Error())
		msg = "internal error"
	} else if code == fault.Unavailable {
		c.o.Logger.WarnContext(r.Context(), "console request failed", "path", r.URL.Path, "error", err.Error())
	}
	c.render(w, r, status, "error.html", page{Heading: http.StatusText(status), Body: errorBody{Status: status, Code: code, Message: msg}})
}

func invalid(format string, args ...any) error {
	return fault.Errorf(fault.Invalid, "web", format, args...)
}

// tenantOf validates the {tenant} path value.
func tenantOf(r *http.Request) (string, error) {
	t := r.PathValue("tenant")
	if err := event.ValidTenant(t); err != nil {
		return "", err
	}
	return t, nil
}

// tenantsBody is the body of the tenants page.
type tenantsBody struct {
	Prefix  string
	After   string
	Tenants []string
	Next    string
}

func (c *Console) tenants(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := TenantQuery{Prefix: v.Get("prefix"), After: v.Get("after"), Limit: c.o.PageSize}
	for name, s := range map[string]string{"prefix": q.Prefix, "after": q.After} {
		if len(s) > maxPrefix || !printable(s) {
			c.fail(w, r, invalid("%s %s: want at most %d printable characters", name, httpjson.Quote(s), maxPrefix))
			return
		}
	}
	ids, next, err := c.o.Data.Tenants(r.Context(), q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(ids) > q.Limit {
		ids = ids[:q.Limit]
	}
	c.render(w, r, http.StatusOK, "tenants.html", page{Heading: "Tenants", Nav: "tenants",
		Body: tenantsBody{Prefix: q.Prefix, After: q.After, Tenants: ids, Next: next}})
}

// governorView is one governor instance on the tenant page.
type governorView struct {
	Domain  governor.Domain
	Subject string
	State   governor.State
	Version int64
	Updated time.Time
	Data    string
	Timers  []timerView
	Diagram template.HTML
	Exists  bool
}

type timerView struct {
	Name  string
	Due   time.Time
	DueIn string
}

// tenantBody is the body of the tenant page.
type tenantBody struct {
	Governors []governorView
}

func (c *Console) tenant(w http.ResponseWriter, r *http.Request) {
	tenant, err := tenantOf(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	insts, err := c.o.Data.Governors(r.Context(), tenant)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	now := c.o.Now()
	byDomain := map[governor.Domain][]governor.Instance{}
	for _, in := range insts {
		byDomain[in.Domain] = append(byDomain[in.Domain], in)
	}
	var body tenantBody
	n := 0
	for _, d := range governor.Domains {
		dg := c.diagrams[d]
		list := byDomain[d]
		if len(list) == 0 {
			list = []governor.Instance{{Key: governor.Key{Tenant: tenant, Domain: d}, State: governor.StateNone}}
		}
		for _, in := range list {
			n++
			gv := governorView{Domain: d, Subject: in.Subject, State: in.State, Version: in.Version,
				Updated: in.UpdatedAt, Exists: in.Version > 0 || in.State != governor.StateNone}
			if gv.Exists {
				gv.Data = prettyJSON(in.Data)
			}
			for _, t := range in.Timers {
				gv.Timers = append(gv.Timers, timerView{Name: t.Name, Due: t.Due, DueIn: dueIn(t.Due, now)})
			}
			slices.SortFunc(gv.Timers, func(a, b timerView) int { return a.Due.Compare(b.Due) })
			if dg != nil {
				gv.Diagram = dg.SVG("g"+strconv.Itoa(n), in.State)
			}
			body.Governors = append(body.Governors, gv)
		}
	}
	c.render(w, r, http.StatusOK, "tenant.html", page{Heading: tenant, Nav: "governors", Tenant: tenant, Body: body})
}

// prettyJSON indents a JSON object for display; {} for none.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "{}"
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// dueIn says when a timer falls due, relative to now: "in 2d 3h",
// "overdue by 5m".
func dueIn(due, now time.Time) string {
	d := due.Sub(now)
	if d < 0 {
		return "overdue by " + roughDuration(-d)
	}
	return "in " + roughDuration(d)
}

// roughDuration renders d in its two largest units: 2d 3h, 4h 10m, 5m 2s.
func roughDuration(d time.Duration) string {
	d = d.Round(time.Second)
	day := 24 * time.Hour
	switch {
	case d >= day:
		return fmt.Sprintf("%dd %dh", d/day, d%day/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// receiptView is one row of the timeline or a node of a cascade.
type receiptView struct {
	R        receipt.Receipt
	JSON     string
	TraceURL string
	Children []*receiptView
}

func (c *Console) view(r receipt.Receipt) *receiptView {
	j, _ := json.MarshalIndent(r, "", "  ")
	v := &receiptView{R: r, JSON: string(j)}
	if r.TraceID != "" && c.o.TraceURL != nil {
		v.TraceURL = c.o.TraceURL(r.TraceID)
	}
	return v
}

// timelineBody is the body of the timeline page.
type timelineBody struct {
	Domains   []governor.Domain
	Domain    string
	Since     string
	Until     string
	PageToken string
	Next      string
	Receipts  []*receiptView
	// Chain is the receipts shown as JSON, for the verifier.
	Chain template.JS
}

// formTime is the layout of <input type="datetime-local">, read as UTC.
const formTime = "2006-01-02T15:04"

// parseTime reads an RFC 3339 time or a datetime-local value (UTC).
func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, formTime, formTime + ":05"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
				break
			}
			return t, nil
		}
	}
	return time.Time{}, invalid("%s=%s: want an RFC 3339 time or YYYY-MM-DDTHH:MM (UTC) in the years 0001 to 9999", name, httpjson.Quote(s))
}

func knownDomain(d governor.Domain) bool { return slices.Contains(governor.Domains, d) }

func (c *Console) timeline(w http.ResponseWriter, r *http.Request) {
	tenant, err := tenantOf(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := r.URL.Query()
	q := TimelineQuery{Tenant: tenant, Limit: c.o.PageSize, PageToken: v.Get("page_token")}
	body := timelineBody{Domains: governor.Domains, Domain: v.Get("domain"), Since: v.Get("since"), Until: v.Get("until"), PageToken: q.PageToken}
	if body.Domain != "" {
		if !knownDomain(governor.Domain(body.Domain)) {
			c.fail(w, r, invalid("domain %s is not one of the eight governor domains", httpjson.Quote(body.Domain)))
			return
		}
		q.Domain = governor.Domain(body.Domain)
	}
	if len(q.PageToken) > maxToken || !printable(q.PageToken) {
		c.fail(w, r, invalid("page_token: want at most %d printable characters", maxToken))
		return
	}
	if q.Since, err = parseTime("since", body.Since); err == nil {
		q.Until, err = parseTime("until", body.Until)
	}
	if err == nil && !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		err = invalid("since must be before until")
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	// The form's inputs show datetime-local values, seconds included.
	if !q.Since.IsZero() {
		body.Since = q.Since.Format(formTime + ":05")
	}
	if !q.Until.IsZero() {
		body.Until = q.Until.Format(formTime + ":05")
	}
	rs, next, err := c.o.Data.Timeline(r.Context(), q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(rs) > q.Limit {
		rs = rs[:q.Limit]
	}
	body.Next = next
	for _, rc := range rs {
		body.Receipts = append(body.Receipts, c.view(rc))
	}
	body.Chain = chainJSON(rs)
	c.render(w, r, http.StatusOK, "timeline.html", page{Heading: tenant, Nav: "timeline", Tenant: tenant, Body: body})
}

// chainJSON returns the receipts in chain order per instance (tenant,
// domain, subject, seq), as the verifier wants them.
func chainJSON(rs []receipt.Receipt) template.JS {
	sorted := slices.Clone(rs)
	slices.SortStableFunc(sorted, func(a, b receipt.Receipt) int {
		if c := strings.Compare(a.TenantID, b.TenantID); c != 0 {
			return c
		}
		if c := strings.Compare(a.Domain, b.Domain); c != 0 {
			return c
		}
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return int(a.Seq - b.Seq)
	})
	if sorted == nil {
		sorted = []receipt.Receipt{}
	}
	j, _ := json.Marshal(sorted) // escapes <, > and & so that it cannot close the script element
	return template.JS(j)
}

// cascadeBody is the body of the cascade page.
type cascadeBody struct {
	CorrelationID string
	Roots         []*receiptView
	Count         int
	Truncated     bool
}

func (c *Console) cascade(w http.ResponseWriter, r *http.Request) {
	tenant, err := tenantOf(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	corr := r.PathValue("correlation")
	if corr == "" || len(corr) > maxID || !printable(corr) {
		c.fail(w, r, invalid("correlation id %s: want 1 to %d printable characters", httpjson.Quote(corr), maxID))
		return
	}
	rs, err := c.o.Data.Cascade(r.Context(), tenant, corr, MaxCascade)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(rs) == 0 {
		c.fail(w, r, fault.Errorf(fault.NotFound, "web", "tenant %s has no receipt with correlation id %s", httpjson.Quote(tenant), httpjson.Quote(corr)))
		return
	}
	body := cascadeBody{CorrelationID: corr, Count: len(rs), Truncated: len(rs) >= MaxCascade, Roots: c.tree(rs)}
	c.render(w, r, http.StatusOK, "cascade.html", page{Heading: tenant, Nav: "timeline", Tenant: tenant, Body: body})
}

// tree arranges receipts (in decided_at order) by causation: a receipt
// whose execution_id is the id of an action of another receipt is that
// receipt's child. Receipts no other receipt caused are roots. Each
// receipt appears once, under the first receipt that caused it.
func (c *Console) tree(rs []receipt.Receipt) []*receiptView {
	views := make([]*receiptView, len(rs))
	byExec := map[string][]int{}
	for i, r := range rs {
		views[i] = c.view(r)
		byExec[r.ExecutionID] = append(byExec[r.ExecutionID], i)
	}
	placed := make([]bool, len(rs))
	for i, r := range rs {
		for _, a := range r.Actions {
			for _, j := range byExec[a.ID] {
				if j != i && !placed[j] && !reaches(views[j], views[i]) {
					placed[j] = true
					views[i].Children = append(views[i].Children, views[j])
				}
			}
		}
	}
	var roots []*receiptView
	for i := range views {
		if !placed[i] {
			roots = append(roots, views[i])
		}
	}
	return roots
}

// reaches reports whether to is in from's subtree, which would make a
// cycle of a hostile or corrupt set of receipts.
func reaches(from, to *receiptView) bool {
	if from == to {
		return true
	}
	for _, ch := range from.Children {
		if reaches(ch, to) {
			return true
		}
	}
	return false
}

// alertsBody is the body of the alerts page.
type alertsBody struct {
	Alerts   []Alert
	Silences []Silence
	// Form echoes a refused silence form.
	Form    silenceForm
	Problem string
}

type silenceForm struct {
	Matchers string
	Duration string
	Comment  string
}

func (c *Console) alerts(w http.ResponseWriter, r *http.Request) {
	c.renderAlerts(w, r, http.StatusOK, silenceForm{Duration: "2h"}, "")
}

func (c *Console) renderAlerts(w http.ResponseWriter, r *http.Request, status int, f silenceForm, problem string) {
	as, err := c.o.Data.Alerts(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	ss, err := c.o.Data.Silences(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "alerts.html", page{Heading: "Alerts and silences", Nav: "alerts",
		Body: alertsBody{Alerts: as, Silences: ss, Form: f, Problem: problem}})
}

// parseForm reads a bounded url-encoded form.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		return invalid("form: %v", err)
	}
	return nil
}

// parseMatchers reads "name=value" pairs separated by commas or new lines.
func parseMatchers(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
		if !ok || k == "" || len(k) > maxLabelLength || len(v) > maxLabelLength || !printable(k) || !printable(v) {
			return nil, invalid("matcher %s: want name=value", httpjson.Quote(part))
		}
		out[k] = v
	}
	if len(out) == 0 || len(out) > maxMatchers {
		return nil, invalid("want 1 to %d matchers name=value, separated by commas", maxMatchers)
	}
	return out, nil
}

func (c *Console) createSilence(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	f := silenceForm{Matchers: r.PostForm.Get("matchers"), Duration: r.PostForm.Get("duration"), Comment: r.PostForm.Get("comment")}
	ms, err := parseMatchers(f.Matchers)
	var d time.Duration
	if err == nil {
		d, err = time.ParseDuration(strings.TrimSpace(f.Duration))
		if err != nil || d <= 0 {
			err = invalid("duration %s: want a positive duration such as 2h or 30m", httpjson.Quote(f.Duration))
		}
	}
	if err != nil {
		c.renderAlerts(w, r, http.StatusBadRequest, f, fault.ErrorMessage(err))
		return
	}
	_, err = c.o.Data.CreateSilence(r.Context(), NewSilence{Matchers: ms, EndsAt: c.o.Now().Add(d).UTC(), Comment: f.Comment}, caller.Email(r))
	if err != nil {
		if fault.ErrorCode(err) == fault.Invalid {
			c.renderAlerts(w, r, http.StatusBadRequest, f, fault.ErrorMessage(err))
			return
		}
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/alerts", http.StatusSeeOther)
}

func (c *Console) expireSilence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || len(id) > maxID || !printable(id) {
		c.fail(w, r, invalid("silence id %s: want 1 to %d printable characters", httpjson.Quote(id), maxID))
		return
	}
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.o.Data.ExpireSilence(r.Context(), id, caller.Email(r)); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/alerts", http.StatusSeeOther)
}

// deadLettersBody is the body of the dead-letters page.
type deadLettersBody struct {
	After   string
	Next    string
	Letters []deadLetterView
	// Result reports a replay.
	Result *replayResult
}

type deadLetterView struct {
	DeadLetter
	Attrs []attr
	Data  string
}

type attr struct{ Name, Value string }

type replayResult struct {
	ID        string
	Published string
	Problem   string
}

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	after := r.URL.Query().Get("after")
	c.renderDeadLetters(w, r, http.StatusOK, after, nil)
}

func (c *Console) renderDeadLetters(w http.ResponseWriter, r *http.Request, status int, after string, res *replayResult) {
	if len(after) > maxID || !printable(after) {
		c.fail(w, r, invalid("after %s: want at most %d printable characters", httpjson.Quote(after), maxID))
		return
	}
	ls, next, err := c.o.Data.DeadLetters(r.Context(), after, c.o.PageSize)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(ls) > c.o.PageSize {
		ls = ls[:c.o.PageSize]
	}
	body := deadLettersBody{After: after, Next: next, Result: res}
	for _, l := range ls {
		v := deadLetterView{DeadLetter: l, Data: displayData(l.Data)}
		for k, val := range l.Attributes {
			v.Attrs = append(v.Attrs, attr{k, val})
		}
		slices.SortFunc(v.Attrs, func(a, b attr) int { return strings.Compare(a.Name, b.Name) })
		body.Letters = append(body.Letters, v)
	}
	c.render(w, r, status, "deadletters.html", page{Heading: "Dead letters", Nav: "deadletters", Body: body})
}

// displayData shows a message's data: indented when it is JSON, quoted
// otherwise, cut at 4 KiB.
func displayData(b []byte) string {
	const limit = 4 << 10
	cut := len(b) > limit
	if cut {
		b = b[:limit]
	}
	var s string
	if json.Valid(b) {
		s = prettyJSON(b)
	} else if utf8.Valid(b) {
		s = string(b)
	} else {
		s = strconv.QuoteToASCII(string(b))
	}
	if cut {
		s += "\n… (cut at 4 KiB)"
	}
	return s
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || len(id) > maxID || !printable(id) {
		c.fail(w, r, invalid("dead letter id %s: want 1 to %d printable characters", httpjson.Quote(id), maxID))
		return
	}
	if err := parseForm(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	res := &replayResult{ID: id}
	status := http.StatusOK
	published, err := c.o.Data.ReplayDeadLetter(r.Context(), id, caller.Email(r))
	switch code := fault.ErrorCode(err); {
	case err == nil:
		res.Published = published
	case code == fault.Internal:
		c.fail(w, r, err)
		return
	default:
		res.Problem = fault.ErrorMessage(err)
		status = httpjson.Status(code)
	}
	c.renderDeadLetters(w, r, status, "", res)
}

// ledgerBody is the body of the ledger page.
type ledgerBody struct {
	Checkpoints []Checkpoint
}

func (c *Console) ledger(w http.ResponseWriter, r *http.Request) {
	cps, err := c.o.Data.Checkpoints(r.Context(), c.o.PageSize)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(cps) > c.o.PageSize {
		cps = cps[:c.o.PageSize]
	}
	c.render(w, r, http.StatusOK, "ledger.html", page{Heading: "Ledger", Nav: "ledger", Body: ledgerBody{Checkpoints: cps}})
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
