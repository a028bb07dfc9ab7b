package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/idtoken"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// Bounds of the console client.
const (
	// maxAnswer bounds a JSON answer of the console.
	maxAnswer = 32 << 20
	// requestTimeout bounds one request (not a stream).
	requestTimeout = 60 * time.Second
	// attempts is how many times a request is tried when the answer or
	// its absence says that trying again may succeed.
	attempts = 4
)

// consoleClient calls the console's JSON API.
type consoleClient struct {
	// base is the console's URL without a trailing slash.
	base string
	http *http.Client
	// authenticated says whether requests carry an ID token.
	authenticated bool
	// backoff is the wait before the n-th retry (n from 1).
	backoff func(n int) time.Duration
	// streamWait, when set, maps the wait before reconnecting a stream.
	streamWait func(time.Duration) time.Duration
}

// consoleError is an error answer of the console, {"error": {"code",
// "message"}}, or an answer that is not one.
type consoleError struct {
	Status  int
	Code    string
	Message string
	// Hint says what to do about it, when there is something to say.
	Hint string
}

// Error implements error: the console's message, plainly.
func (e *consoleError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%s (%s, HTTP %d)", msg, firstNonEmpty(e.Code, "error"), e.Status)
	if e.Hint != "" {
		s += "\n" + e.Hint
	}
	return s
}

// open returns the client of the console that -url or the environment
// names. A console that is not on a loopback address is called with a
// Google ID token for its URL as audience, over HTTPS only.
func (c *cliCall) open() (*consoleClient, error) {
	raw := firstNonEmpty(c.url, c.env.getenv(envConsoleURL), defaultConsoleURL)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, usagef("-url %q: want http(s)://host[:port][/path]", raw)
	}
	base := strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/")
	transport := c.env.transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	cl := &consoleClient{base: base, streamWait: c.env.wait}
	cl.backoff = func(n int) time.Duration {
		d := time.Duration(n*n) * 250 * time.Millisecond
		if c.env.wait != nil {
			d = c.env.wait(d)
		}
		return d
	}
	if loopbackURL(u) {
		cl.http = &http.Client{Transport: transport}
		return cl, nil
	}
	if u.Scheme != "https" {
		return nil, usagef("-url %s: a console that is not on this machine is called with an ID token, which must not travel unencrypted: use https", raw)
	}
	audience := u.Scheme + "://" + u.Host
	src, err := c.tokenSource(audience)
	if err != nil {
		return nil, err
	}
	cl.http = &http.Client{Transport: &idTokenTransport{base: transport, src: src, audience: audience}}
	cl.authenticated = true
	return cl, nil
}

// tokenSource returns the source of ID tokens for audience: the token of
// $AUTONOMICS_ID_TOKEN, or tokens minted from the Application Default
// Credentials.
func (c *cliCall) tokenSource(audience string) (oauth2.TokenSource, error) {
	if t := strings.TrimSpace(c.env.getenv(envIDToken)); t != "" {
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: t, TokenType: "Bearer"}), nil
	}
	newSource := c.env.tokenSource
	if newSource == nil {
		newSource = func(ctx context.Context, aud string) (oauth2.TokenSource, error) {
			return idtoken.NewTokenSource(ctx, aud)
		}
	}
	src, err := newSource(context.Background(), audience)
	if err != nil {
		return nil, fmt.Errorf("cannot get Google ID tokens for %s: %v\n%s", audience, err, idTokenHint)
	}
	return src, nil
}

// idTokenHint says how to get credentials that mint ID tokens.
const idTokenHint = `ID tokens are minted from the Application Default Credentials, which must be a
service account: run on Google Cloud, set GOOGLE_APPLICATION_CREDENTIALS to a
service account key, or run
  gcloud auth application-default login --impersonate-service-account=SA_EMAIL
(user credentials from plain "gcloud auth application-default login" cannot mint
them). Or pass a token yourself: export ` + envIDToken + `=$(gcloud auth print-identity-token)`

// loopbackURL reports whether u names this machine: localhost or a
// loopback IP address.
func loopbackURL(u *url.URL) bool {
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// idTokenTransport adds a Google ID token to every request.
type idTokenTransport struct {
	base     http.RoundTripper
	src      oauth2.TokenSource
	audience string
}

// RoundTrip implements http.RoundTripper.
func (t *idTokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.src.Token()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &tokenError{audience: t.audience, err: err}
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return t.base.RoundTrip(r)
}

// tokenError is a failure to mint an ID token: never retried.
type tokenError struct {
	audience string
	err      error
}

func (e *tokenError) Error() string {
	return fmt.Sprintf("cannot get a Google ID token for %s: %v\n%s", e.audience, e.err, idTokenHint)
}

// request is one call of the console API.
type request struct {
	method string
	path   string
	query  url.Values
	// body, when not nil, is sent as JSON.
	body any
	// idempotent requests are retried after any transient fault; others
	// only when the request did not reach the console.
	idempotent bool
}

// call sends r and returns the 2xx answer's body; other answers are
// *consoleError.
func (cl *consoleClient) call(ctx context.Context, r request) ([]byte, error) {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return nil, fault.Wrap(fault.Internal, "autonomicsctl", err)
		}
	}
	target := cl.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var last error
	for n := 0; n < attempts; n++ {
		if n > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(cl.backoff(n)):
			}
		}
		body, retry, err := cl.once(ctx, r.method, target, payload, r.idempotent)
		if err == nil {
			return body, nil
		}
		last = err
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// once sends one request. retry says whether another attempt may succeed
// and is safe.
func (cl *consoleClient) once(ctx context.Context, method, target string, payload []byte, idempotent bool) (body []byte, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, false, fault.Wrap(fault.Invalid, "autonomicsctl", err)
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		var te *tokenError
		if errors.As(err, &te) {
			return nil, false, te
		}
		// A request that was never sent may always be sent again.
		var oe *net.OpError
		notSent := errors.As(err, &oe) && oe.Op == "dial"
		return nil, idempotent || notSent, fault.Errorf(fault.Unavailable, "autonomicsctl", "%s %s: %v", method, redact(target), unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, idempotent, fault.Errorf(fault.Unavailable, "autonomicsctl", "%s %s: reading the answer: %v", method, redact(target), err)
	}
	if len(body) > maxAnswer {
		return nil, false, fault.Errorf(fault.Unavailable, "autonomicsctl", "%s %s: the answer exceeds %d bytes", method, redact(target), maxAnswer)
	}
	if resp.StatusCode/100 == 2 {
		return body, false, nil
	}
	ce := cl.errorOf(resp.StatusCode, body)
	transient := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusBadGateway ||
		resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout
	return nil, idempotent && transient, ce
}

// errorOf decodes an error answer.
func (cl *consoleClient) errorOf(status int, body []byte) *consoleError {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	ce := &consoleError{Status: status}
	if json.Unmarshal(body, &e) == nil && (e.Error.Code != "" || e.Error.Message != "") {
		ce.Code, ce.Message = cell(e.Error.Code), oneLine(e.Error.Message)
	} else if s := strings.TrimSpace(string(body)); s != "" {
		// Not the console's JSON: a proxy's or the platform's page.
		ce.Message = oneLine(httpjson.Truncate(s, 200))
	}
	switch {
	case (status == http.StatusUnauthorized || status == http.StatusForbidden) && cl.authenticated:
		ce.Hint = "the deployment refused the ID token: is your account (or service account) allowed to invoke the console (roles/run.invoker)?"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		ce.Hint = "the console asks for credentials; is -url the console you meant?"
	}
	return ce
}

// oneLine makes a message printable on one line.
func oneLine(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || r == '\r' || r == '\t' {
			r = ' '
		}
		b.WriteRune(r)
	}
	return cellN(b.String(), 500)
}

// unwrapURLError drops the *url.Error wrapper, which repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact returns target without its query string.
func redact(target string) string {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i]
	}
	return target
}

// getJSON fetches path with query and decodes the answer into v (when not
// nil); it returns the raw answer too.
func (cl *consoleClient) getJSON(ctx context.Context, path string, query url.Values, v any) (json.RawMessage, error) {
	body, err := cl.call(ctx, request{method: http.MethodGet, path: path, query: query, idempotent: true})
	if err != nil {
		return nil, err
	}
	return body, decodeAnswer(path, body, v)
}

// postJSON sends body to path and decodes the answer into v (when not
// nil).
func (cl *consoleClient) postJSON(ctx context.Context, path string, body, v any, idempotent bool) (json.RawMessage, error) {
	ans, err := cl.call(ctx, request{method: http.MethodPost, path: path, body: body, idempotent: idempotent})
	if err != nil {
		return nil, err
	}
	return ans, decodeAnswer(path, ans, v)
}

// decodeAnswer decodes a JSON answer into v (when not nil).
func decodeAnswer(path string, body []byte, v any) error {
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fault.Errorf(fault.Internal, "autonomicsctl", "the console's answer to %s is not the JSON expected: %v", path, err)
	}
	return nil
}

// text fetches path as plain text.
func (cl *consoleClient) text(ctx context.Context, path string) ([]byte, error) {
	return cl.call(ctx, request{method: http.MethodGet, path: path, idempotent: true})
}

// pathSegment escapes s as one path segment, ':' included (the console's
// "{id}:verb" routes).
func pathSegment(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
}
