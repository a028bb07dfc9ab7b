package signup

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// TokenField is the form field, and the header, that carries the token.
const TokenField = "x-gcp-marketplace-token"

// MaxBody bounds a sign-up request's body.
const MaxBody = 16 << 10

// MetricSignups counts sign-ups by outcome (accepted, refused); refusals
// also carry their reason.
const MetricSignups = "autonomics.marketplace.signups"

// Outcomes of a sign-up, the outcome attribute of MetricSignups.
const (
	OutcomeAccepted = "accepted"
	OutcomeRefused  = "refused"
)

// Names of the customer_account events a sign-up publishes.
const (
	EventRequested governor.EventName = "requested"
	EventVerified  governor.EventName = "verified"
)

// Accounts creates the account-to-tenant link of a signed-up account; it
// is marketplace.Accounts' Link.
type Accounts interface {
	Link(ctx context.Context, account, source string) (marketplace.Link, error)
}

// Options configure a Server.
type Options struct {
	// Audience and Issuer are the Verifier's (Issuer defaults to
	// GoogleIssuer); HTTPClient fetches the issuer's keys.
	Audience, Issuer string
	HTTPClient       *http.Client
	// Accounts keeps the account-to-tenant links. Required.
	Accounts Accounts
	// Publisher publishes the customer_account events. Required.
	Publisher engine.Publisher
	Topics    topic.Names
	// Provider is the Marketplace provider id; the events' source is
	// "marketplace/<Provider>". Required.
	Provider string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger gets a line per sign-up; slog.Default() when nil.
	Logger *slog.Logger
	// MeterProvider receives MetricSignups; a no-op provider when nil.
	MeterProvider metric.MeterProvider
	// Redirect, when set, is where a signed-up customer is sent (303, with
	// the query parameter tenant); otherwise the answer is 200 with JSON
	// {"tenant", "account"}. It must be an absolute http(s) URL.
	Redirect string
	// PublishBackoff is the wait before each retry of an event whose
	// publishing failed, within the request: DefaultPublishBackoff when
	// nil, no retries when empty. The sign-up is answered 503 only once
	// they are spent.
	PublishBackoff []time.Duration
}

// DefaultPublishBackoff is the retry schedule of a failed publish: three
// tries in all, well inside a browser's patience.
var DefaultPublishBackoff = []time.Duration{100 * time.Millisecond, 400 * time.Millisecond}

// Server is the sign-up endpoint. It is an http.Handler.
type Server struct {
	o        Options
	verifier *Verifier
	redirect *url.URL
	source   string
	signups  metric.Int64Counter
	mux      *http.ServeMux
}

// New returns a Server, or an Invalid *fault.Error for bad options.
func New(o Options) (*Server, error) {
	const op = "signup.New"
	if o.Accounts == nil || o.Publisher == nil {
		return nil, fault.Errorf(fault.Invalid, op, "accounts and a publisher are required")
	}
	if err := event.ValidTenant(o.Provider); err != nil {
		return nil, fault.Errorf(fault.Invalid, op, "provider id %s is not valid", httpjson.Quote(o.Provider))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = noop.NewMeterProvider()
	}
	if o.PublishBackoff == nil {
		o.PublishBackoff = DefaultPublishBackoff
	}
	s := &Server{o: o, source: engine.MarketplaceSourcePrefix + o.Provider}
	if o.Redirect != "" {
		u, err := url.Parse(o.Redirect)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return nil, fault.Errorf(fault.Invalid, op, "redirect %s is not an absolute http(s) URL", httpjson.Quote(o.Redirect))
		}
		s.redirect = u
	}
	v, err := NewVerifier(VerifierOptions{Audience: o.Audience, Issuer: o.Issuer, HTTPClient: o.HTTPClient, Now: o.Now, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	s.verifier = v
	s.signups, err = o.MeterProvider.Meter("github.com/autonomics/autonomics/shared/marketplace/signup").Int64Counter(MetricSignups,
		metric.WithDescription("Marketplace sign-ups, by outcome (accepted, refused) and the reason of a refusal."))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /signup", s.signup)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, string(fault.NotFound), "no route for "+httpjson.Quote(r.Method)+" "+httpjson.Quote(r.URL.Path))
	})
	return s, nil
}

// Verifier returns the server's token verifier.
func (s *Server) Verifier() *Verifier { return s.verifier }

// ServeHTTP serves POST /signup, GET /healthz and a 404 for everything
// else.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	s.mux.ServeHTTP(w, r)
}

// Result is the JSON answer to a sign-up without a redirect.
type Result struct {
	Tenant  string `json:"tenant"`
	Account string `json:"account"`
}

// signup verifies the token, links the account and publishes its events.
func (s *Server) signup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	log := s.o.Logger.With("remote", r.RemoteAddr)
	token, err := tokenOf(r)
	var claims Claims
	if err == nil {
		claims, err = s.verifier.Verify(ctx, token)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.count(ctx, OutcomeRefused, ReasonMalformed)
			log.WarnContext(ctx, "sign-up refused", "reason", ReasonMalformed, "error", err.Error())
			s.fail(w, r, http.StatusRequestEntityTooLarge, string(ReasonMalformed), err.Error())
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Reason: ReasonMalformed, Message: err.Error(), Err: err}
		}
		s.count(ctx, OutcomeRefused, e.Reason)
		log.WarnContext(ctx, "sign-up refused", "reason", e.Reason, "error", e.Message)
		if e.Retryable() {
			w.Header().Set("Retry-After", "60")
			s.fail(w, r, http.StatusServiceUnavailable, string(e.Reason), e.Message)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="marketplace-signup", error="invalid_token"`)
		s.fail(w, r, http.StatusUnauthorized, string(e.Reason), e.Message)
		return
	}
	log = log.With("account", claims.Account, "jti", claims.TokenID)

	link, err := s.o.Accounts.Link(ctx, claims.Account, marketplace.LinkedBySignup)
	if err != nil {
		log.ErrorContext(ctx, "sign-up failed: linking the account", "error", err.Error())
		s.failErr(w, r, err)
		return
	}
	log = log.With("tenant", link.Tenant)
	if err := s.publish(ctx, claims.Account, link.Tenant); err != nil {
		log.ErrorContext(ctx, "sign-up failed: publishing its events; the customer can retry", "error", err.Error())
		s.failErr(w, r, fault.Wrap(fault.Unavailable, "signup", err))
		return
	}
	s.count(ctx, OutcomeAccepted, "")
	log.InfoContext(ctx, "sign-up accepted")
	if s.redirect != nil {
		u := *s.redirect
		q := u.Query()
		q.Set("tenant", link.Tenant)
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return
	}
	httpjson.Write(w, http.StatusOK, Result{Tenant: link.Tenant, Account: claims.Account})
}

// tokenOf returns the token of a request: the form field of an
// application/x-www-form-urlencoded body, or else the header. Naming the
// token twice is refused.
func tokenOf(r *http.Request) (string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return "", err
			}
			return "", refuse(ReasonMalformed, "the form does not parse")
		}
		switch vs := r.PostForm[TokenField]; len(vs) {
		case 0:
		case 1:
			if h := r.Header.Values(TokenField); len(h) > 0 && (len(h) > 1 || h[0] != vs[0]) {
				return "", refuse(ReasonMalformed, "the form and the header carry different tokens")
			}
			return strings.TrimSpace(vs[0]), nil
		default:
			return "", refuse(ReasonMalformed, "the form carries %d tokens", len(vs))
		}
	}
	switch h := r.Header.Values(TokenField); len(h) {
	case 0:
		return "", refuse(ReasonMissingToken, "no %s form field or header", TokenField)
	case 1:
		return strings.TrimSpace(h[0]), nil
	default:
		return "", refuse(ReasonMalformed, "the request carries %d %s headers", len(h), TokenField)
	}
}

// publish publishes the account's requested then verified events to the
// customer_account domain topic, in that order, each acknowledged before
// the next. A failed publish is retried after each wait of
// Options.PublishBackoff, so that a verified lost to a passing fault does
// not leave the account requested but never verified; the events' ids
// are deterministic, so a retry is a duplicate the governor ignores.
func (s *Server) publish(ctx context.Context, account, tenant string) error {
	now := s.o.Now().UTC()
	for _, name := range []governor.EventName{EventRequested, EventVerified} {
		ev := SignupEvent(s.source, account, tenant, name, now)
		data, attrs := event.Encode(ev)
		m := store.Message{Topic: s.o.Topics.Domain(governor.CustomerAccount), Data: data, Attributes: attrs, OrderingKey: tenant}
		for try := 0; ; try++ {
			err := s.o.Publisher.Publish(ctx, m)
			if err == nil {
				break
			}
			if try >= len(s.o.PublishBackoff) || ctx.Err() != nil {
				return err
			}
			s.o.Logger.WarnContext(ctx, "sign-up event not published; retrying", "event", string(name), "try", try+1, "error", err.Error())
			t := time.NewTimer(s.o.PublishBackoff[try])
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
		}
	}
	return nil
}

// SignupEvent is the customer_account event name of a sign-up of account
// by tenant: id "signup-<account>-<name>", subject "default", no data and
// no correlation id (an event from outside is the root of its own chain).
func SignupEvent(source, account, tenant string, name governor.EventName, now time.Time) governor.Event {
	return governor.Event{
		ID: "signup-" + account + "-" + string(name), Source: source,
		Type: governor.TypeOf(governor.CustomerAccount, name), Domain: governor.CustomerAccount, Name: name,
		Tenant: tenant, Subject: governor.DefaultSubject, Time: now,
	}
}

// count adds one to MetricSignups.
func (s *Server) count(ctx context.Context, outcome string, reason Reason) {
	attrs := []attribute.KeyValue{attribute.String("outcome", outcome)}
	if reason != "" {
		attrs = append(attrs, attribute.String("reason", string(reason)))
	}
	s.signups.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// failErr answers a failure after verification with the status of its
// code; internal errors keep their message to the logs.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	code := fault.ErrorCode(err)
	msg := fault.ErrorMessage(err)
	if code == fault.Internal {
		msg = "internal error"
	}
	if code == fault.Unavailable {
		w.Header().Set("Retry-After", "1")
	}
	s.fail(w, r, httpjson.Status(code), string(code), msg)
}

// fail answers an error as {"error": {"code", "message"}}, or as a small
// HTML page when the client accepts text/html (a browser posting the
// Marketplace form).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	msg = httpjson.Truncate(msg, 1024)
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		httpjson.Write(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = errorPage.Execute(w, struct {
		Status      int
		Title       string
		Code, Error string
	}{status, http.StatusText(status), code, msg})
}

// errorPage is the HTML answer to a browser whose sign-up failed.
var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-up: {{.Title}}</title>
<style>body{font-family:sans-serif;max-width:40em;margin:4em auto;padding:0 1em}code{background:#eee;padding:0 .2em}</style>
</head><body>
<h1>Sign-up failed</h1>
<p>{{.Error}}</p>
<p>Reason: <code>{{.Code}}</code> ({{.Status}} {{.Title}}). Return to Google Cloud Marketplace and start the sign-up again.</p>
</body></html>
`))
