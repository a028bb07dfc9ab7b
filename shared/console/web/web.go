// Package web is the operator console's HTML side: server-rendered pages
// (html/template, a little plain JavaScript, no build step) over the
// console's data, with every governor drawn as its state diagram. Assets
// are embedded. The pages read through the Data interface, in process; the
// browser's own verification (static/verify.js) reads the JSON API of the
// same origin, which another handler serves under /api/v1/.
//
// Routes:
//
//	GET  /                                    tenants, search by prefix, paging
//	GET  /tenants/{t}                         governors: diagram, data, armed timers
//	GET  /tenants/{t}/timeline                receipts newest first, filters, verify in the browser
//	GET  /tenants/{t}/cascades/{correlation}  causation tree of one correlation id
//	GET  /alerts                              alerts and silences
//	POST /alerts/silences                     create a silence (form)
//	POST /alerts/silences/{id}/expire         expire a silence (form)
//	GET  /deadletters                         dead letters with their reasons
//	POST /deadletters/{id}/replay             replay one (form), showing the result
//	GET  /ledger                              the ledger's checkpoint history
//	GET  /static/...                          embedded assets
//
// Forms are refused when they come from another origin
// (http.CrossOriginProtection), every input is validated before any read,
// and each page shows at most one page of data.
package web

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/receipt"
)

// Data is what the pages read and change, in process. The console package
// implements it; errors carry governor codes (Invalid, NotFound, Conflict,
// Unavailable) that the pages map to HTTP statuses.
type Data interface {
	// Tenants returns up to q.Limit tenant ids, ascending, greater than
	// q.After and starting with q.Prefix, and the After of the next page
	// ("" at the end).
	Tenants(ctx context.Context, q TenantQuery) (ids []string, next string, err error)
	// Governors returns the tenant's governor instances, ordered by domain
	// and subject.
	Governors(ctx context.Context, tenant string) ([]governor.Instance, error)
	// Timeline returns a page of the tenant's receipts, newest decided_at
	// first, and the token of the next page ("" at the end).
	Timeline(ctx context.Context, q TimelineQuery) ([]receipt.Receipt, string, error)
	// Cascade returns up to limit receipts of the tenant with that
	// correlation id, in decided_at order.
	Cascade(ctx context.Context, tenant, correlationID string, limit int) ([]receipt.Receipt, error)
	// Alerts lists the monitor's alerts.
	Alerts(ctx context.Context) ([]Alert, error)
	// Silences lists the monitor's silences.
	Silences(ctx context.Context) ([]Silence, error)
	// CreateSilence creates a silence on behalf of by (the caller's email,
	// "" when unknown) and returns it.
	CreateSilence(ctx context.Context, s NewSilence, by string) (Silence, error)
	// ExpireSilence ends a silence now.
	ExpireSilence(ctx context.Context, id, by string) error
	// DeadLetters returns up to limit dead letters, newest first, after
	// the one with id after ("" from the newest), and the after of the
	// next page.
	DeadLetters(ctx context.Context, after string, limit int) ([]DeadLetter, string, error)
	// ReplayDeadLetter republishes a dead letter to its domain topic and
	// returns the new message id; a dead letter that may not be replayed
	// is a Conflict error saying why.
	ReplayDeadLetter(ctx context.Context, id, by string) (string, error)
	// Checkpoints returns up to limit checkpoints the console has seen,
	// newest first.
	Checkpoints(ctx context.Context, limit int) ([]Checkpoint, error)
}

// TenantQuery selects a page of tenants.
type TenantQuery struct {
	Prefix, After string
	Limit         int
}

// TimelineQuery selects a page of a tenant's receipts, newest first.
type TimelineQuery struct {
	Tenant string
	// Domain is "" for every domain.
	Domain governor.Domain
	// Since and Until bound decided_at (inclusive, exclusive); zero is open.
	Since, Until time.Time
	Limit        int
	PageToken    string
}

// Alert is one alert of the monitor, as listed.
type Alert struct {
	Fingerprint string            `json:"fingerprint"`
	Policy      string            `json:"policy"`
	Severity    string            `json:"severity"`
	Labels      map[string]string `json:"labels"`
	State       string            `json:"state"`
	Reason      string            `json:"reason"`
	Value       float64           `json:"value"`
	ActiveAt    time.Time         `json:"active_at"`
	Silenced    bool              `json:"silenced"`
}

// Silence is one silence of the monitor.
type Silence struct {
	ID        string            `json:"id"`
	Matchers  map[string]string `json:"matchers"`
	StartsAt  time.Time         `json:"starts_at"`
	EndsAt    time.Time         `json:"ends_at"`
	Comment   string            `json:"comment"`
	CreatedAt time.Time         `json:"created_at"`
	Active    bool              `json:"active"`
}

// NewSilence is a silence to create.
type NewSilence struct {
	Matchers map[string]string
	EndsAt   time.Time
	Comment  string
}

// DeadLetter is one message the governors refused.
type DeadLetter struct {
	ID         string            `json:"id"`
	ReceivedAt time.Time         `json:"received_at"`
	Reason     string            `json:"reason"`
	Code       string            `json:"code"`
	Domain     string            `json:"domain"`
	Type       string            `json:"type"`
	Tenant     string            `json:"tenant"`
	Attributes map[string]string `json:"attributes"`
	// Data is the original message data.
	Data []byte `json:"data_base64"`
	// Replayable says whether replay is allowed; NotReplayable says why not.
	Replayable    bool   `json:"replayable"`
	NotReplayable string `json:"not_replayable,omitempty"`
}

// Checkpoint is one signed checkpoint of the ledger.
type Checkpoint struct {
	Size int64     `json:"size"`
	Root string    `json:"root"`
	Time time.Time `json:"time"`
}

// Options configure the pages.
type Options struct {
	// Data is required.
	Data Data
	// Machines draws the diagrams; machines.New(nil) when nil.
	Machines map[governor.Domain]*governor.Machine
	// TraceURL returns the link of a trace id (for example Cloud Trace's
	// explorer in the project); nil shows trace ids without links.
	TraceURL func(traceID string) string
	// Logger receives failures; slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock for "due in …"; time.Now when nil.
	Now func() time.Time
	// PageSize is the number of rows a listing shows; DefaultPageSize
	// when zero, at most MaxPageSize.
	PageSize int
	// Title names the deployment in every page's header; "Autonomics"
	// when empty.
	Title string
}

// Page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 100
	// MaxCascade bounds the receipts one cascade page draws.
	MaxCascade = 500
	// MaxFormBytes bounds a form body.
	MaxFormBytes = 16 << 10
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the pages.
type Console struct {
	o        Options
	tmpl     *template.Template
	diagrams map[governor.Domain]*Diagram
	static   http.Handler
	mux      *http.ServeMux
}

// New returns the console's pages over opts.Data.
func New(opts Options) (*Console, error) {
	if opts.Data == nil {
		return nil, fault.Errorf(fault.Invalid, "web.New", "Data is required")
	}
	if opts.Machines == nil {
		opts.Machines = machines.New(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	opts.PageSize = min(opts.PageSize, MaxPageSize)
	if opts.Title == "" {
		opts.Title = "Autonomics"
	}
	c := &Console{o: opts, diagrams: map[governor.Domain]*Diagram{}}
	for d, m := range opts.Machines {
		c.diagrams[d] = NewDiagram(m)
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "web.New", err)
	}
	c.tmpl = t
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "web.New", err)
	}
	c.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", c.tenants)
	m.HandleFunc("GET /tenants/{tenant}", c.tenant)
	m.HandleFunc("GET /tenants/{tenant}/timeline", c.timeline)
	m.HandleFunc("GET /tenants/{tenant}/cascades/{correlation}", c.cascade)
	m.HandleFunc("GET /alerts", c.alerts)
	m.HandleFunc("POST /alerts/silences", c.createSilence)
	m.HandleFunc("POST /alerts/silences/{id}/expire", c.expireSilence)
	m.HandleFunc("GET /deadletters", c.deadLetters)
	m.HandleFunc("POST /deadletters/{id}/replay", c.replay)
	m.HandleFunc("GET /ledger", c.ledger)
	m.Handle("GET /static/", c.static)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, fault.Errorf(fault.NotFound, "web", "no page at %s", r.URL.Path))
	})
	c.mux = m
}

// Handler returns the pages' handler: security headers on every answer,
// cross-origin form posts refused.
func (c *Console) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusForbidden, "error.html", page{Heading: http.StatusText(http.StatusForbidden),
			Body: errorBody{Status: http.StatusForbidden, Code: fault.Invalid, Message: "a form from another origin is refused"}})
	}))
	h := cop.Handler(c.mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}
