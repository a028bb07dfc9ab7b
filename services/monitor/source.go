package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"

	"github.com/autonomics/autonomics/shared/caller"
)

// Bounds of what sourceOf reads.
const (
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
	if email := caller.Email(r); email != "" {
		return boundSource("email:" + email)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return boundSource("addr:" + host)
}

// boundSource keeps a source id within maxSourceBytes, hashing the excess.
func boundSource(s string) string {
	if len(s) <= maxSourceBytes {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return s[:maxSourceBytes-33] + "#" + hex.EncodeToString(sum[:16])
}
