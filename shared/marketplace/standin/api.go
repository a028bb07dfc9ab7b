package standin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	cp "google.golang.org/api/cloudcommerceprocurement/v1"
)

// Page sizes of entitlements.list.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// apiError is an error answered in Google's shape.
type apiError struct {
	code    int
	status  string
	message string
}

func (e *apiError) Error() string { return e.status + ": " + e.message }

func failedPrecondition(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "FAILED_PRECONDITION", msg}
}
func invalidArgument(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "INVALID_ARGUMENT", msg}
}
func notFound(msg string) *apiError { return &apiError{http.StatusNotFound, "NOT_FOUND", msg} }

// statusName is the google.rpc status Google answers with an HTTP code.
func statusName(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusRequestEntityTooLarge:
		return "INVALID_ARGUMENT"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if code >= 500 {
		return "INTERNAL"
	}
	return "UNKNOWN"
}

// writeError writes Google's error body.
func writeError(w http.ResponseWriter, e *apiError) {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": e.code, "message": e.message, "status": e.status}})
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.code)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// recorder keeps the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Handler serves the Procurement API under /v1/providers/ and the
// sign-up certificates at CertPath; any other path is 404. Every request
// body is capped at 64 KiB and every request is recorded (Calls).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		rec := &recorder{ResponseWriter: w}
		call := Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Time: s.now()}
		call.Body = bytes.Clone(body[:min(len(body), MaxCallBody)])
		defer func() {
			call.Status = rec.status
			s.record(call)
		}()
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(rec, &apiError{http.StatusRequestEntityTooLarge, "INVALID_ARGUMENT", "request body exceeds " + strconv.Itoa(maxBody) + " bytes"})
			return
		case err != nil:
			writeError(rec, invalidArgument("reading the request body: "+err.Error()))
			return
		}
		if st := s.takeFault(r.Method + " " + r.URL.Path); st != 0 {
			writeError(rec, &apiError{st, statusName(st), "injected fault"})
			return
		}
		if r.URL.Path == CertPath {
			s.serveCerts(rec, r)
			return
		}
		s.serveAPI(rec, r, body)
	})
}

// serveAPI routes /v1/providers/{p}/{accounts|entitlements}[/{id}[:verb]].
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, body []byte) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/providers/")
	if !ok {
		writeError(w, notFound("no route for "+truncate(r.URL.Path, 64)))
		return
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 || len(parts) > 3 {
		writeError(w, notFound("no route for "+truncate(r.URL.Path, 64)))
		return
	}
	if parts[0] != s.o.Provider {
		writeError(w, &apiError{http.StatusForbidden, "PERMISSION_DENIED", "the caller may not act for provider " + strconv.Quote(truncate(parts[0], 64))})
		return
	}
	collection := parts[1]
	if len(parts) == 2 {
		if collection == "entitlements" && r.Method == http.MethodGet {
			s.listEntitlements(w, r)
			return
		}
		writeError(w, notFound("no route for "+r.Method+" "+truncate(r.URL.Path, 64)))
		return
	}
	id, verb, _ := strings.Cut(parts[2], ":")
	if err := validID(id); err != nil {
		writeError(w, invalidArgument("resource name: "+err.Error()))
		return
	}
	ctx := r.Context()
	var res any
	var notes []note
	var aerr *apiError
	switch collection + " " + r.Method + " " + verb {
	case "accounts GET ":
		res, aerr = s.getAccount(id)
	case "accounts POST approve":
		notes, aerr = s.approveAccount(id, body)
	case "accounts POST reject":
		aerr = s.rejectAccount(id, body)
	case "accounts POST reset":
		notes, aerr = s.resetAccount(id, body)
	case "entitlements GET ":
		res, aerr = s.getEntitlement(id)
	case "entitlements PATCH ":
		res, aerr = s.patchEntitlement(id, r.URL.Query(), body)
	case "entitlements POST approve":
		notes, aerr = s.approveEntitlement(id, body)
	case "entitlements POST reject":
		notes, aerr = s.rejectEntitlement(id, body)
	case "entitlements POST approvePlanChange":
		aerr = s.approvePlanChange(id, body)
	case "entitlements POST rejectPlanChange":
		notes, aerr = s.rejectPlanChange(id, body)
	default:
		writeError(w, notFound("no route for "+r.Method+" "+truncate(r.URL.Path, 64)))
		return
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if res == nil {
		res = struct{}{}
	}
	writeJSON(w, res)
	if len(notes) > 0 {
		// Marketplace notifies after the change is made; a failure to
		// publish is Marketplace's, logged and kept in Notifications.
		_ = s.send(context.WithoutCancel(ctx), notes)
	}
}

// decode decodes a request body strictly, as Google does: unknown names
// are refused. An empty body is an empty message.
func decode(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidArgument("Invalid JSON payload received. " + truncate(err.Error(), 200))
	}
	if dec.More() {
		return invalidArgument("Invalid JSON payload received. Unexpected data after the message.")
	}
	return nil
}

// --- Accounts --------------------------------------------------------------------

func (s *Server) getAccount(id string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return nil, notFound("Account " + s.AccountName(id) + " not found.")
	}
	c := copyAccount(a)
	return &c, nil
}

// signup returns the account's signup approval; s.mu must be held.
func signup(a *cp.Account) *cp.Approval {
	for _, ap := range a.Approvals {
		if ap.Name == SignupApproval {
			return ap
		}
	}
	return nil
}

// approval finds the approval a request names ("" for the only one).
func (s *Server) approval(id, name string) (*cp.Account, *cp.Approval, *apiError) {
	a, ok := s.accounts[id]
	if !ok {
		return nil, nil, notFound("Account " + s.AccountName(id) + " not found.")
	}
	if name != "" && name != SignupApproval {
		return nil, nil, invalidArgument("Account " + s.AccountName(id) + " has no approval " + strconv.Quote(truncate(name, 64)) + ".")
	}
	return a, signup(a), nil
}

func (s *Server) approveAccount(id string, body []byte) ([]note, *apiError) {
	var req cp.ApproveAccountRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ap, err := s.approval(id, req.ApprovalName)
	if err != nil {
		return nil, err
	}
	if ap.State == ApprovalApproved {
		return nil, failedPrecondition("Approval signup of account " + a.Name + " is already APPROVED.")
	}
	now := stamp(s.now())
	ap.State, ap.Reason, ap.UpdateTime = ApprovalApproved, req.Reason, now
	a.UpdateTime = now
	return []note{{eventType: EventAccountActive, account: id, update: now}}, nil
}

func (s *Server) rejectAccount(id string, body []byte) *apiError {
	var req cp.RejectAccountRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ap, err := s.approval(id, req.ApprovalName)
	if err != nil {
		return err
	}
	if ap.State == ApprovalRejected {
		return failedPrecondition("Approval signup of account " + a.Name + " is already REJECTED.")
	}
	now := stamp(s.now())
	ap.State, ap.Reason, ap.UpdateTime = ApprovalRejected, truncate(req.Reason, 256), now
	a.UpdateTime = now
	return nil
}

func (s *Server) resetAccount(id string, body []byte) ([]note, *apiError) {
	var req cp.ResetAccountRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return nil, notFound("Account " + s.AccountName(id) + " not found.")
	}
	now := stamp(s.now())
	ap := signup(a)
	ap.State, ap.Reason, ap.UpdateTime = ApprovalPending, "", now
	a.UpdateTime = now
	return s.cancelAll(id, "account-reset", now), nil
}

// --- Entitlements ------------------------------------------------------------------

func (s *Server) getEntitlement(id string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ents[id]
	if !ok {
		return nil, notFound("Entitlement " + s.EntitlementName(id) + " not found.")
	}
	c := copyEntitlement(e)
	return &c, nil
}

func (s *Server) entitlement(id string) (*cp.Entitlement, *apiError) {
	e, ok := s.ents[id]
	if !ok {
		return nil, notFound("Entitlement " + s.EntitlementName(id) + " not found.")
	}
	return e, nil
}

func (s *Server) approveEntitlement(id string, body []byte) ([]note, *apiError) {
	var req cp.ApproveEntitlementRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entitlement(id)
	if err != nil {
		return nil, err
	}
	if e.State != ActivationRequested {
		return nil, failedPrecondition("Entitlement " + e.Name + " is in state " + e.State + "; only an entitlement in " + ActivationRequested + " can be approved.")
	}
	a, ok := s.accounts[lastSegment(e.Account)]
	if !ok || signup(a).State != ApprovalApproved {
		return nil, failedPrecondition("Account " + e.Account + " has not been approved; approve the account before its entitlements.")
	}
	now := stamp(s.now())
	e.State, e.UpdateTime = Active, now
	return []note{{eventType: EventEntitlementActive, ent: id, update: now}}, nil
}

func (s *Server) rejectEntitlement(id string, body []byte) ([]note, *apiError) {
	var req cp.RejectEntitlementRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entitlement(id)
	if err != nil {
		return nil, err
	}
	if e.State != ActivationRequested {
		return nil, failedPrecondition("Entitlement " + e.Name + " is in state " + e.State + "; only an entitlement in " + ActivationRequested + " can be rejected.")
	}
	now := stamp(s.now())
	e.State, e.CancellationReason, e.UpdateTime = Cancelled, "rejected", now
	return []note{{eventType: EventEntitlementCancelled, ent: id, update: now}}, nil
}

func (s *Server) approvePlanChange(id string, body []byte) *apiError {
	var req cp.ApproveEntitlementPlanChangeRequest
	if err := decode(body, &req); err != nil {
		return err
	}
	if req.PendingPlanName == "" {
		return invalidArgument("pendingPlanName is required.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entitlement(id)
	if err != nil {
		return err
	}
	if e.State != PendingPlanChangeApproval {
		return failedPrecondition("Entitlement " + e.Name + " is in state " + e.State + "; no plan change awaits approval.")
	}
	if req.PendingPlanName != e.NewPendingPlan {
		return invalidArgument("pendingPlanName " + strconv.Quote(truncate(req.PendingPlanName, 64)) + " is not the pending plan of " + e.Name + ".")
	}
	e.State, e.UpdateTime = PendingPlanChange, stamp(s.now())
	return nil
}

func (s *Server) rejectPlanChange(id string, body []byte) ([]note, *apiError) {
	var req cp.RejectEntitlementPlanChangeRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.PendingPlanName == "" {
		return nil, invalidArgument("pendingPlanName is required.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entitlement(id)
	if err != nil {
		return nil, err
	}
	if e.State != PendingPlanChangeApproval {
		return nil, failedPrecondition("Entitlement " + e.Name + " is in state " + e.State + "; no plan change awaits approval.")
	}
	if req.PendingPlanName != e.NewPendingPlan {
		return nil, invalidArgument("pendingPlanName " + strconv.Quote(truncate(req.PendingPlanName, 64)) + " is not the pending plan of " + e.Name + ".")
	}
	now := stamp(s.now())
	e.State, e.NewPendingPlan, e.UpdateTime = Active, "", now
	return []note{{eventType: EventEntitlementPlanChangeCancel, ent: id, update: now}}, nil
}

func (s *Server) patchEntitlement(id string, q map[string][]string, body []byte) (any, *apiError) {
	if mask := q["updateMask"]; len(mask) != 1 || mask[0] != "messageToUser" {
		return nil, invalidArgument(`updateMask must be "messageToUser".`)
	}
	var req struct {
		MessageToUser string `json:"messageToUser"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, invalidArgument("Invalid JSON payload received. " + truncate(err.Error(), 200))
	}
	if len(req.MessageToUser) > 1024 {
		return nil, invalidArgument("messageToUser exceeds 1024 bytes.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.entitlement(id)
	if err != nil {
		return nil, err
	}
	e.MessageToUser, e.UpdateTime = req.MessageToUser, stamp(s.now())
	c := copyEntitlement(e)
	return &c, nil
}

// --- List ------------------------------------------------------------------------

// predicate is one "key=value" or "key!=value" term of a filter.
type predicate struct {
	key, value string
	negate     bool
}

// parseFilter parses the part of the documented filter syntax the
// stand-in supports: predicates key=value or key!=value, values quoted
// with double quotes when they hold other characters than letters,
// digits and '_', joined by spaces or AND. OR, NOT and parentheses are
// refused.
func parseFilter(f string) ([]predicate, *apiError) {
	var out []predicate
	rest := strings.TrimSpace(f)
	for rest != "" {
		end := 0
		inQuote := false
		for end < len(rest) && (inQuote || rest[end] != ' ') {
			if rest[end] == '"' {
				inQuote = !inQuote
			}
			end++
		}
		if inQuote {
			return nil, invalidArgument("filter: unterminated quote")
		}
		term := rest[:end]
		rest = strings.TrimSpace(rest[end:])
		switch term {
		case "AND":
			continue
		case "OR", "NOT":
			return nil, invalidArgument("filter: " + term + " is not supported by the stand-in")
		}
		if strings.ContainsAny(term, "()") {
			return nil, invalidArgument("filter: parentheses are not supported by the stand-in")
		}
		p := predicate{}
		var ok bool
		if p.key, p.value, ok = strings.Cut(term, "!="); ok {
			p.negate = true
		} else if p.key, p.value, ok = strings.Cut(term, "="); !ok {
			return nil, invalidArgument("filter: " + strconv.Quote(truncate(term, 64)) + " is not key=value")
		}
		if unq, err := strconv.Unquote(p.value); err == nil && strings.HasPrefix(p.value, `"`) {
			p.value = unq
		}
		switch p.key {
		case "state", "account", "plan", "product", "product_external_name", "offer", "newPendingPlan", "new_pending_plan":
		default:
			return nil, invalidArgument("filter: unsupported attribute " + strconv.Quote(truncate(p.key, 64)))
		}
		out = append(out, p)
	}
	return out, nil
}

// matches reports whether e satisfies every predicate.
func (s *Server) matches(e *cp.Entitlement, ps []predicate) bool {
	for _, p := range ps {
		var ok bool
		switch p.key {
		case "state":
			want := strings.ToUpper(p.value)
			if !strings.HasPrefix(want, "ENTITLEMENT_") {
				want = "ENTITLEMENT_" + want
			}
			ok = e.State == want
		case "account":
			ok = e.Account == p.value || e.Account == s.AccountName(p.value)
		case "plan":
			ok = e.Plan == p.value
		case "product", "product_external_name":
			ok = e.Product == p.value || e.ProductExternalName == p.value
		case "offer":
			ok = e.Offer == p.value
		case "newPendingPlan", "new_pending_plan":
			ok = e.NewPendingPlan == p.value
		}
		if ok == p.negate {
			return false
		}
	}
	return true
}

func (s *Server) listEntitlements(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ps, aerr := parseFilter(q.Get("filter"))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	size := DefaultPageSize
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, invalidArgument("pageSize must be a non-negative integer"))
			return
		}
		if n > 0 {
			size = min(n, MaxPageSize)
		}
	}
	start := 0
	if tok := q.Get("pageToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "offset:") || n < 0 {
			writeError(w, invalidArgument("pageToken is not a token this API issued"))
			return
		}
		start = n
	}
	s.mu.Lock()
	resp := &cp.ListEntitlementsResponse{Entitlements: []*cp.Entitlement{}}
	i := start
	for ; i < len(s.order) && len(resp.Entitlements) < size; i++ {
		e := s.ents[s.order[i]]
		if s.matches(e, ps) {
			c := copyEntitlement(e)
			resp.Entitlements = append(resp.Entitlements, &c)
		}
	}
	for ; i < len(s.order); i++ {
		if s.matches(s.ents[s.order[i]], ps) {
			resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(i)))
			break
		}
	}
	s.mu.Unlock()
	writeJSON(w, resp)
}
