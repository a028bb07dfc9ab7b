package ingest

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// Codes of the refusals the ingest API answers beyond governor's codes.
// Like fault.Invalid they describe the caller's request; the HTTP
// status, not fault.IsRetryable, says whether a retry can succeed (429
// after Retry-After; 401, 403 and 415 never).
const (
	// CodeUnauthenticated: no credential, or one that does not verify
	// (401).
	CodeUnauthenticated fault.Code = "unauthenticated"
	// CodeForbidden: the producer may not send this, or the identity is no
	// producer (403).
	CodeForbidden fault.Code = "forbidden"
	// CodeRateLimited: the producer is over its rate (429, Retry-After).
	CodeRateLimited fault.Code = "rate_limited"
	// CodeUnsupportedMediaType: not a content mode the API takes (415).
	CodeUnsupportedMediaType fault.Code = "unsupported_media_type"
)

// maxMessage bounds an error message in an answer or a log line; the
// messages quote at most httpjson.MaxEcho bytes of any input, this bounds
// their total.
const maxMessage = 1024

// ErrorBody is the error of an answer: {"code", "message"}.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorBody returns the error body of err; internal errors keep their
// message to the logs.
func errorBody(err error) *ErrorBody {
	code := fault.ErrorCode(err)
	msg := fault.ErrorMessage(err)
	if code == fault.Internal {
		msg = "internal error"
	}
	return &ErrorBody{Code: string(code), Message: httpjson.Truncate(msg, maxMessage)}
}

// retryAfter carries how long a rate-limited caller should wait.
type retryAfter struct{ d time.Duration }

// Error implements the error interface.
func (r retryAfter) Error() string { return "retry after " + r.d.String() }

// limited returns a CodeRateLimited error asking to wait d.
func limited(op string, d time.Duration, format string, args ...any) error {
	e := fault.Errorf(CodeRateLimited, op, format, args...)
	e.Err = retryAfter{d}
	return e
}

// busy returns an Unavailable error asking to wait d.
func busy(op string, d time.Duration, format string, args ...any) error {
	e := fault.Errorf(fault.Unavailable, op, format, args...)
	e.Err = retryAfter{d}
	return e
}

// status returns the HTTP status of err.
func status(err error) int {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	switch fault.ErrorCode(err) {
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	}
	return httpjson.Status(fault.ErrorCode(err))
}

// writeError answers err as {"error": {"code", "message"}}: through
// httpjson.Error for governor's codes, with the status of this API's own
// codes otherwise, Retry-After when err asks to wait and WWW-Authenticate
// on 401.
func writeError(w http.ResponseWriter, err error) {
	var ra retryAfter
	if errors.As(err, &ra) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Max(1, math.Ceil(ra.d.Seconds())))))
	}
	switch fault.ErrorCode(err) {
	case CodeUnauthenticated, CodeForbidden, CodeRateLimited, CodeUnsupportedMediaType:
	default:
		if fault.ErrorCode(err) == fault.Unavailable && !errors.As(err, &ra) {
			w.Header().Set("Retry-After", "1")
		}
		// Governor's codes and 413 keep httpjson's mapping.
		if msg := fault.ErrorMessage(err); len(msg) > maxMessage {
			err = &fault.Error{Code: fault.ErrorCode(err), Message: httpjson.Truncate(msg, maxMessage), Err: unwrapTooBig(err)}
		}
		httpjson.Error(w, err)
		return
	}
	if status(err) == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="autonomics-ingest"`)
	}
	httpjson.Write(w, status(err), map[string]*ErrorBody{"error": errorBody(err)})
}

// unwrapTooBig returns the *http.MaxBytesError in err's chain, or nil.
func unwrapTooBig(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return tooBig
	}
	return nil
}
