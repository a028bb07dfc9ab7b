// Package caller names who made a request to a Cloud Run service, from
// what Cloud Run has already checked: the email claim of the caller's ID
// token.
//
// The token is not verified here. On Cloud Run with IAM the platform
// verifies it before the request reaches the service, so its claims are
// those of an authenticated caller. When both X-Serverless-Authorization
// and Authorization are present, Cloud Run verifies the first and passes
// the second on untouched, so the first wins. Where a service is reachable
// without IAM (the local stack) a caller can claim any email: use the
// result to charge or route, never to grant what IAM would not.
package caller

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/autonomics/autonomics/shared/strictjson"
)

// Headers that carry the caller's ID token on Cloud Run.
const (
	HeaderServerlessAuthorization = "X-Serverless-Authorization"
	HeaderAuthorization           = "Authorization"
)

// MaxTokenBytes bounds the token Email decodes.
const MaxTokenBytes = 8 << 10

// Email returns the email claim of the request's bearer ID token, or ""
// when there is none or it is not printable ASCII without spaces.
func Email(r *http.Request) string {
	h := r.Header.Get(HeaderServerlessAuthorization)
	if h == "" {
		h = r.Header.Get(HeaderAuthorization)
	}
	return BearerEmail(h)
}

// BearerEmail returns the email claim of the JWT in a "Bearer <token>"
// header value, or "". Cloud Run may forward the token without its
// signature, so only the first two segments are read.
func BearerEmail(h string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || len(token) > MaxTokenBytes {
		return ""
	}
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil || !json.Valid(payload) || strictjson.Check(payload) != nil {
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
