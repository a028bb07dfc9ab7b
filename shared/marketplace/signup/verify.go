package signup

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/listen"
)

// GoogleIssuer is the iss of Marketplace sign-up tokens and the URL of
// their keys (a JSON object mapping each kid to a PEM X.509 certificate).
const GoogleIssuer = "https://www.googleapis.com/robot/v1/metadata/x509/cloud-commerce-partner@system.gserviceaccount.com"

// Limits and defaults of verification.
const (
	// Algorithm is the only signing algorithm accepted.
	Algorithm = "RS256"
	// Leeway is the clock skew tolerated on exp, iat and nbf.
	Leeway = 30 * time.Second
	// MaxLifetime is the longest exp - iat accepted (Marketplace issues
	// tokens for five minutes); Leeway is added to it.
	MaxLifetime = 5 * time.Minute
	// MaxTokenBytes bounds a token.
	MaxTokenBytes = 8 << 10
	// DefaultMaxKeys bounds how many keys one issuer response may hold.
	DefaultMaxKeys = 16
	// DefaultMaxKeysBytes bounds an issuer response.
	DefaultMaxKeysBytes = 64 << 10
	// DefaultFetchTimeout bounds one fetch of the keys.
	DefaultFetchTimeout = 10 * time.Second
	// DefaultRefetchInterval is the least time between two fetches of the
	// keys, whatever tokens arrive.
	DefaultRefetchInterval = time.Minute
	// DefaultKeysTTL is how long keys stay fresh when the issuer's
	// response says nothing about caching.
	DefaultKeysTTL = 5 * time.Minute
	// MaxKeysTTL is the longest keys stay fresh, whatever the issuer says.
	MaxKeysTTL = 24 * time.Hour
)

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	// Audience is the aud tokens must carry: the provider's domain.
	// Required.
	Audience string
	// Issuer is the iss tokens must carry and the URL their keys are
	// fetched from; GoogleIssuer when empty. It must be an absolute http
	// or https URL.
	Issuer string
	// HTTPClient fetches the keys; a client without other settings when
	// nil. Each fetch is bounded by FetchTimeout either way.
	HTTPClient *http.Client
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger gets a line per fetch of the keys; slog.Default() when nil.
	Logger *slog.Logger
	// MaxKeys, MaxKeysBytes, FetchTimeout and RefetchInterval bound the
	// key cache; the Default values when zero.
	MaxKeys         int
	MaxKeysBytes    int64
	FetchTimeout    time.Duration
	RefetchInterval time.Duration
}

// Claims are what a verified token says.
type Claims struct {
	// Account is the Procurement account id (sub).
	Account string
	// TokenID is jti, when the token has one.
	TokenID string
	// IssuedAt and ExpiresAt are iat and exp.
	IssuedAt, ExpiresAt time.Time
	// Roles and UserIdentity are the google.roles and
	// google.user_identity claims, when present.
	Roles        []string
	UserIdentity string
}

// Verifier verifies Marketplace sign-up tokens. It is safe for concurrent
// use.
type Verifier struct {
	audience, issuer string
	now              func() time.Time
	parser           *jwt.Parser
	keys             *keySet
}

// loopback reports whether host names this machine: localhost or a
// loopback address.
func loopback(host string) bool { return listen.IsLoopbackHost(host) }

// NewVerifier returns a Verifier, or an Invalid *fault.Error for bad
// options.
func NewVerifier(o VerifierOptions) (*Verifier, error) {
	const op = "signup.NewVerifier"
	if o.Audience == "" {
		return nil, fault.Errorf(fault.Invalid, op, "an audience (the provider's domain) is required")
	}
	if o.Issuer == "" {
		o.Issuer = GoogleIssuer
	}
	u, err := url.Parse(o.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fault.Errorf(fault.Invalid, op, "issuer %s is not an absolute http(s) URL", httpjson.Quote(o.Issuer))
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		// Keys fetched in the clear could be swapped by anyone on the path.
		return nil, fault.Errorf(fault.Invalid, op, "issuer %s: http is allowed only on a loopback host (localhost, 127.0.0.0/8, ::1); use https", httpjson.Quote(o.Issuer))
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.MaxKeysBytes <= 0 {
		o.MaxKeysBytes = DefaultMaxKeysBytes
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	if o.RefetchInterval <= 0 {
		o.RefetchInterval = DefaultRefetchInterval
	}
	v := &Verifier{
		audience: o.Audience, issuer: o.Issuer, now: o.Now,
		keys: &keySet{
			url: o.Issuer, client: o.HTTPClient, now: o.Now, logger: o.Logger,
			maxKeys: o.MaxKeys, maxBytes: o.MaxKeysBytes, timeout: o.FetchTimeout, interval: o.RefetchInterval,
		},
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithAudience(o.Audience),
		jwt.WithIssuer(o.Issuer),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(o.Now),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
		jwt.WithStrictDecoding(),
	)
	return v, nil
}

// tokenClaims is the claims set of a sign-up token.
type tokenClaims struct {
	jwt.RegisteredClaims
	Google struct {
		Roles        []string `json:"roles,omitempty"`
		UserIdentity string   `json:"user_identity,omitempty"`
	} `json:"google"`
}

// Validate adds the checks of a sign-up token to the registered claims'
// ones: iat and sub present, sub a valid account id, and a lifetime of at
// most MaxLifetime.
func (c *tokenClaims) Validate() error {
	switch {
	case c.IssuedAt == nil:
		return refuse(ReasonMissingClaim, "the token has no iat")
	case c.Subject == "":
		return refuse(ReasonMissingClaim, "the token has no sub (the account id)")
	case c.Subject == governor.BroadcastSubject || event.ValidTenant(c.Subject) != nil:
		return refuse(ReasonBadSubject, "sub %s is not a valid account id", httpjson.Quote(c.Subject))
	case c.ExpiresAt != nil && c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxLifetime+Leeway:
		return refuse(ReasonLongLived, "the token lives %s, limit %s", c.ExpiresAt.Sub(c.IssuedAt.Time), MaxLifetime)
	}
	return nil
}

// Verify checks token and returns its claims, or an *Error saying why it
// is refused.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if token == "" {
		return Claims{}, refuse(ReasonMissingToken, "no %s", TokenField)
	}
	if len(token) > MaxTokenBytes {
		return Claims{}, refuse(ReasonMalformed, "the token is %d bytes, limit %d", len(token), MaxTokenBytes)
	}
	var c tokenClaims
	tok, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		return v.keyOf(ctx, t, &c)
	})
	if err != nil {
		return Claims{}, classify(tok, err)
	}
	out := Claims{
		Account: c.Subject, TokenID: c.ID,
		IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time,
		Roles: c.Google.Roles, UserIdentity: c.Google.UserIdentity,
	}
	return out, nil
}

// keyOf returns the public key of a token whose algorithm the parser
// accepted: the header must name a kid and no critical extension, iss must
// be the configured issuer (before anything is fetched for the token), and
// the key's certificate must be valid now.
func (v *Verifier) keyOf(ctx context.Context, t *jwt.Token, c *tokenClaims) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, refuse(ReasonMalformed, "the token names critical header parameters")
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, refuse(ReasonMissingKid, "the token's header names no kid")
	}
	if c.Issuer != v.issuer {
		return nil, refuse(ReasonWrongIssuer, "iss %s is not the Marketplace issuer", httpjson.Quote(c.Issuer))
	}
	k, err := v.keys.get(ctx, kid)
	if err != nil {
		return nil, err
	}
	now := v.now()
	if now.Before(k.notBefore.Add(-Leeway)) || now.After(k.notAfter.Add(Leeway)) {
		return nil, refuse(ReasonKeyNotValid, "the certificate of key %s is valid from %s to %s", httpjson.Quote(kid),
			k.notBefore.UTC().Format(time.RFC3339), k.notAfter.UTC().Format(time.RFC3339))
	}
	return k.pub, nil
}

// classify turns a parser error into an *Error.
func classify(tok *jwt.Token, err error) *Error {
	var e *Error
	wrap := func(r Reason, msg string) *Error { return &Error{Reason: r, Message: msg, Err: err} }
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed) || tok == nil || tok.Header == nil:
		return wrap(ReasonMalformed, "the token is not a well-formed JWT")
	case tok.Header["alg"] != Algorithm:
		alg, _ := tok.Header["alg"].(string)
		return wrap(ReasonWrongAlg, "the token is signed with "+httpjson.Quote(alg)+", not "+Algorithm)
	case errors.As(err, &e) && !errors.Is(err, jwt.ErrTokenInvalidClaims):
		// From keyOf: the signature was not checked.
		return e
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return wrap(ReasonBadSignature, "the token's signature does not verify")
	case errors.Is(err, jwt.ErrTokenExpired):
		return wrap(ReasonExpired, "the token has expired")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return wrap(ReasonNotYetValid, "the token is not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return wrap(ReasonWrongAudience, "the token is for another audience")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return wrap(ReasonWrongIssuer, "the token is from another issuer")
	case errors.As(err, &e):
		return e
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return wrap(ReasonMissingClaim, "the token lacks a required claim")
	}
	return wrap(ReasonMalformed, "the token does not verify")
}
