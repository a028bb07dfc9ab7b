package marketplace

import (
	"net/http"
	"slices"

	"github.com/autonomics/autonomics/shared/caller"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// Allowed reports whether a request comes from one of callers (emails of
// the caller's Cloud Run ID token, see shared/caller); every request is
// when callers is empty.
func Allowed(callers []string, r *http.Request) bool {
	return len(callers) == 0 || slices.Contains(callers, caller.Email(r))
}

// Forbidden answers 403 with an Invalid error saying who may call.
func Forbidden(w http.ResponseWriter, message string) {
	httpjson.Write(w, http.StatusForbidden, map[string]any{"error": map[string]string{
		"code": string(fault.Invalid), "message": message}})
}
