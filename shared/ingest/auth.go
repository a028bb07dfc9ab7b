package ingest

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// Headers of an HMAC-signed request (Standard Webhooks, plus the key id).
const (
	HeaderWebhookID        = "Webhook-Id"
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	HeaderWebhookSignature = "Webhook-Signature"
	HeaderKeyID            = "Autonomics-Key-Id"
)

// Tolerance is how far a signed request's timestamp may be from the
// server's clock, either way. A webhook id is remembered for twice as
// long: a timestamp still accepted was within Tolerance of its first use.
const Tolerance = 5 * time.Minute

// Bounds of the credentials a request may carry.
const (
	// MaxTokenBytes bounds an ID token (Google's are about 1 KiB).
	MaxTokenBytes = 8 << 10
	// MaxWebhookIDBytes bounds a webhook id.
	MaxWebhookIDBytes = 256
	// MaxSignatures bounds the signatures of one webhook-signature header.
	MaxSignatures = 8
)

// googleIssuers are the issuers of Google-signed ID tokens.
var googleIssuers = []string{"https://accounts.google.com", "accounts.google.com"}

// TokenVerifier verifies the bearer token of a request: a Google-signed ID
// token for the service's audience. It returns the verified email of the
// identity holding it. A token that does not verify is a CodeUnauthenticated
// error; a failure to check it (the signing keys cannot be fetched) is
// fault.Unavailable.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (email string, err error)
}

// GoogleTokens verifies Google-signed ID tokens with
// google.golang.org/api/idtoken: signature (Google's published keys,
// cached as their HTTP headers allow), expiry and audience by the library,
// then the issuer and a verified email claim here.
type GoogleTokens struct {
	validator *idtoken.Validator
	audience  string
}

// NewGoogleTokens returns a verifier of ID tokens whose audience is
// audience, which may not be empty (an empty audience would let tokens
// minted for any other service through). opts configure the HTTP client
// that fetches Google's keys; tests point it at a local server.
func NewGoogleTokens(ctx context.Context, audience string, opts ...option.ClientOption) (*GoogleTokens, error) {
	const op = "ingest.NewGoogleTokens"
	if strings.TrimSpace(audience) == "" {
		return nil, fault.Errorf(fault.Invalid, op, "the audience of ID tokens is required")
	}
	v, err := idtoken.NewValidator(ctx, opts...)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	return &GoogleTokens{validator: v, audience: audience}, nil
}

// Audience returns the audience tokens must carry.
func (g *GoogleTokens) Audience() string { return g.audience }

// VerifyToken implements TokenVerifier.
func (g *GoogleTokens) VerifyToken(ctx context.Context, token string) (string, error) {
	const op = "ingest.VerifyToken"
	p, err := g.validator.Validate(ctx, token, g.audience)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) || strings.Contains(err.Error(), "unable to retrieve cert") {
			return "", fault.Wrap(fault.Unavailable, op, errors.New("cannot fetch Google's token signing keys"))
		}
		return "", fault.Errorf(CodeUnauthenticated, op, "ID token does not verify: %s", tokenReason(err))
	}
	iss := false
	for _, s := range googleIssuers {
		iss = iss || p.Issuer == s
	}
	if !iss {
		return "", fault.Errorf(CodeUnauthenticated, op, "ID token issuer %s is not Google", httpjson.Quote(p.Issuer))
	}
	email, _ := p.Claims["email"].(string)
	if email == "" {
		return "", fault.Errorf(CodeUnauthenticated, op, "ID token has no email claim (mint it with the email included)")
	}
	switch v := p.Claims["email_verified"].(type) {
	case bool:
		if v {
			return email, nil
		}
	case string:
		if v == "true" {
			return email, nil
		}
	}
	return "", fault.Errorf(CodeUnauthenticated, op, "ID token email %s is not verified", httpjson.Quote(email))
}

// tokenReason says why idtoken refused a token, without repeating it.
func tokenReason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "audience"):
		return "audience does not match this service"
	case strings.Contains(msg, "expired"):
		return "expired"
	case strings.Contains(msg, "could not find matching cert keyId"):
		return "signed by an unknown key"
	case strings.Contains(msg, "verification error"), strings.Contains(msg, "signature"):
		return "bad signature"
	case strings.Contains(msg, "expected JWT signed with"):
		return "not signed with RS256 or ES256"
	}
	return "malformed token"
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(h http.Header) (string, bool, error) {
	vs := h.Values("Authorization")
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, fault.Errorf(CodeUnauthenticated, "ingest.authenticate", "Authorization header repeated")
	}
	scheme, token, ok := strings.Cut(vs[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", true, fault.Errorf(CodeUnauthenticated, "ingest.authenticate", "Authorization: want \"Bearer <Google-signed ID token>\"")
	}
	token = strings.TrimSpace(token)
	if len(token) > MaxTokenBytes {
		return "", true, fault.Errorf(CodeUnauthenticated, "ingest.authenticate", "bearer token is %d bytes, limit %d", len(token), MaxTokenBytes)
	}
	return token, true, nil
}

// signed is the parsed signature headers of an HMAC request.
type signed struct {
	id, timestamp, keyID string
	at                   time.Time
	signatures           [][]byte
}

// signedHeaders parses the signature headers. ok is false when the
// request carries none of them.
func signedHeaders(h http.Header) (signed, bool, error) {
	const op = "ingest.authenticate"
	names := []string{HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature, HeaderKeyID}
	vals := make([]string, len(names))
	present := false
	for i, n := range names {
		vs := h.Values(n)
		switch {
		case len(vs) > 1:
			return signed{}, true, fault.Errorf(CodeUnauthenticated, op, "header %s repeated", n)
		case len(vs) == 1:
			present = true
			vals[i] = vs[0]
		}
	}
	if !present {
		return signed{}, false, nil
	}
	for i, n := range names {
		if vals[i] == "" {
			return signed{}, true, fault.Errorf(CodeUnauthenticated, op, "signed request without header %s (send %s)", n, strings.Join(names, ", "))
		}
	}
	s := signed{id: vals[0], timestamp: vals[1], keyID: vals[3]}
	if len(s.id) > MaxWebhookIDBytes || !printable(s.id) {
		return signed{}, true, fault.Errorf(CodeUnauthenticated, op, "header %s: want 1 to %d printable ASCII characters", HeaderWebhookID, MaxWebhookIDBytes)
	}
	if len(s.timestamp) > 12 || !digits(s.timestamp) {
		return signed{}, true, fault.Errorf(CodeUnauthenticated, op, "header %s %s: want Unix seconds", HeaderWebhookTimestamp, httpjson.Quote(s.timestamp))
	}
	secs, _ := strconv.ParseInt(s.timestamp, 10, 64)
	s.at = time.Unix(secs, 0)
	sigs := strings.Fields(vals[2])
	if len(sigs) > MaxSignatures {
		return signed{}, true, fault.Errorf(CodeUnauthenticated, op, "header %s: %d signatures, limit %d", HeaderWebhookSignature, len(sigs), MaxSignatures)
	}
	for _, sig := range sigs {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != SignatureVersion {
			// Other versions may follow; they are ignored.
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(b64); err == nil {
			s.signatures = append(s.signatures, b)
		}
	}
	if len(s.signatures) == 0 {
		return signed{}, true, fault.Errorf(CodeUnauthenticated, op, "header %s: no %s,<base64> signature", HeaderWebhookSignature, SignatureVersion)
	}
	return s, true, nil
}

// verify checks the signature of body under key and the timestamp
// against now.
func (s signed) verify(key, body []byte, now time.Time) error {
	const op = "ingest.authenticate"
	if d := now.Sub(s.at); d > Tolerance || d < -Tolerance {
		return fault.Errorf(CodeUnauthenticated, op, "header %s is %s from the server's clock, tolerance %s", HeaderWebhookTimestamp, d.Abs().Round(time.Second), Tolerance)
	}
	want := mac(key, s.id, s.timestamp, body)
	for _, sig := range s.signatures {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return fault.Errorf(CodeUnauthenticated, op, "no signature of header %s matches the body under key %s", HeaderWebhookSignature, httpjson.Quote(s.keyID))
}

// printable reports whether s is non-empty printable ASCII without spaces.
func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// digits reports whether s is non-empty decimal digits.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
