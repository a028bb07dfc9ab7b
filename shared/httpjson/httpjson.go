// Package httpjson writes the JSON responses of the Autonomics HTTP APIs:
// bodies, and errors as {"error": {"code", "message"}} with the HTTP status
// that the error's code maps to.
package httpjson

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/autonomics/autonomics/shared/fault"
)

// Status maps an error code to an HTTP status.
func Status(code fault.Code) int {
	switch code {
	case fault.Invalid:
		return http.StatusBadRequest
	case fault.NotFound:
		return http.StatusNotFound
	case fault.Conflict:
		return http.StatusConflict
	case fault.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error writes err as a JSON error. Internal errors are reported without
// their message, which may reveal implementation details. A body over its
// cap (an *http.MaxBytesError in err's chain) is answered 413.
func Error(w http.ResponseWriter, err error) {
	code := fault.ErrorCode(err)
	msg := fault.ErrorMessage(err)
	if code == fault.Internal {
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
