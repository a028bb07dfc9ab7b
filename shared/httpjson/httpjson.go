// Package httpjson writes the JSON responses of the Autonomics HTTP APIs:
// bodies, and errors as {"error": {"code", "message"}} with the HTTP status
// that the error's code maps to.
package httpjson

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/autonomics/autonomics/shared/governor"
)

// Status maps an error code to an HTTP status.
func Status(code governor.Code) int {
	switch code {
	case governor.Invalid:
		return http.StatusBadRequest
	case governor.NotFound:
		return http.StatusNotFound
	case governor.Conflict:
		return http.StatusConflict
	case governor.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error writes err as a JSON error. Internal errors are reported without
// their message, which may reveal implementation details. A body over its
// cap (an *http.MaxBytesError in err's chain) is answered 413.
func Error(w http.ResponseWriter, err error) {
	code := governor.ErrorCode(err)
	msg := governor.ErrorMessage(err)
	if code == governor.Internal {
		msg = "internal error"
	}
	status := Status(code)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		status = http.StatusRequestEntityTooLarge
	}
	Write(w, status, map[string]any{"error": map[string]string{"code": string(code), "message": msg}})
}

// Write writes v as a JSON body with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
