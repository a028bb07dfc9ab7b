package usage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/marketplace"
)

// Path is where Handler serves a run.
const Path = "/v1/usage/report"

// Handler serves POST /v1/usage/report (the scheduler's hourly call): it
// runs the reporter and answers the Report as JSON, 200 when nothing was
// left undone, or the status of the run's error with
// {"report": …, "error": {"code", "message"}} so that the caller retries.
// The body must be empty or {}; a run already in progress in this process
// is a 409. With Options.Callers set, a call from another identity is
// answered 403 and runs nothing.
func (r *Reporter) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		const op = "usage.Handler"
		if !marketplace.Allowed(r.o.Callers, req) {
			marketplace.Forbidden(w, "only the scheduler's identity may start a usage report run")
			return
		}
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			httpjson.Write(w, http.StatusMethodNotAllowed, map[string]any{"error": map[string]string{"code": string(fault.Invalid), "message": "use POST"}})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxHandlerBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				httpjson.Error(w, &fault.Error{Code: fault.Invalid, Op: op, Message: "request body too large", Err: err})
				return
			}
			httpjson.Error(w, fault.Errorf(fault.Invalid, op, "reading the body: %v", err))
			return
		}
		if b := bytes.TrimSpace(body); len(b) > 0 {
			var empty struct{}
			if err := httpjson.Unmarshal(b, &empty); err != nil {
				httpjson.Error(w, fault.Wrap(fault.Invalid, op, err))
				return
			}
		}
		if !r.run.TryLock() {
			httpjson.Error(w, fault.Errorf(fault.Conflict, op, "a usage report run is in progress"))
			return
		}
		defer r.run.Unlock()
		rep, err := r.runLocked(req.Context())
		if err != nil {
			// The run's faults are not the caller's: 503 when a retry may
			// finish the work, 500 otherwise; the logs say more.
			code, status := fault.Unavailable, http.StatusServiceUnavailable
			if fault.ErrorCode(err) != fault.Unavailable {
				code, status = fault.Internal, http.StatusInternalServerError
			}
			msg := fmt.Sprintf("%d operations failed, %d held back by a check; see the logs", rep.Failed, rep.CheckFailed)
			httpjson.Write(w, status, map[string]any{"report": rep, "error": map[string]string{"code": string(code), "message": msg}})
			return
		}
		httpjson.Write(w, http.StatusOK, rep)
	})
}
