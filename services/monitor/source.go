package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/autonomics/autonomics/shared/httpjson"
)

// Headers that carry the caller's ID token on Cloud Run. When both are
// present Cloud Run checks X-Serverless-Authorization and passes
// Authorization on untouched, so X-Serverless-Authorization wins.
const (
	headerServerlessAuthorization = "X-Serverless-Authorization"
	headerAuthorization           = "Authorization"
)

// Bounds of what sourceOf reads.
const (
	// maxTokenBytes bounds the ID token sourceOf decodes.
	maxTokenBytes = 8 << 10
	// maxSourceBytes bounds a source id; longer ones are hashed.
	maxSourceBytes = 200
)

// sourceOf returns the identity that the series a request creates are
// charged to (alerting.SeriesSet.AddFrom): "email:" and the email claim of
// the bearer ID token of the request, or "addr:" and the remote address
// without its port when there is none.
//
// The token is not verified here. On Cloud Run with IAM (the deployment)
// the platform has already verified it before the request reaches the
// monitor, so its claims are those of an authenticated caller; Cloud Run
// verifies X-Serverless-Authorization rather than Authorization when both
// are present, so that header is read first and, when it is present,
// Authorization is ignored. Where the service is reachable without IAM (a
// local stack) a caller can claim any email, and the share per source then
// bounds only honest callers; the totals of the budget still hold.
func sourceOf(r *http.Request) string {
	h := r.Header.Get(headerServerlessAuthorization)
	if h == "" {
		h = r.Header.Get(headerAuthorization)
	}
	if email := bearerEmail(h); email != "" {
		return boundSource("email:" + email)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return boundSource("addr:" + host)
}

// bearerEmail returns the email claim of the JWT in a "Bearer <token>"
// header value, or "" when there is none. Cloud Run may forward the token
// without its signature, so only the first two segments are needed.
func bearerEmail(h string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || len(token) > maxTokenBytes {
		return ""
	}
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil || httpjson.CheckStrict(payload) != nil {
		return ""
	}
	var claims struct {
		Email string `json:"email"`
	}
	if json.Unmarshal(payload, &claims) != nil || !printableASCII(claims.Email) {
		return ""
	}
	return claims.Email
}

// printableASCII reports whether s is non-empty printable ASCII without
// spaces.
func printableASCII(s string) bool {
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

// boundSource keeps a source id within maxSourceBytes, hashing the excess.
func boundSource(s string) string {
	if len(s) <= maxSourceBytes {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return s[:maxSourceBytes-33] + "#" + hex.EncodeToString(sum[:16])
}
