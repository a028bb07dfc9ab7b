// Package scstandin is a local stand-in of the Service Control v1 REST
// API, for tests and the local stack: POST /v1/services/{service}:check and
// POST /v1/services/{service}:report with the documented JSON shapes
// (CheckResponse with checkErrors, ReportResponse with reportErrors) and
// Google-style error bodies ({"error": {"code", "message", "status"}}).
//
// It validates what matters to usage reporting as Service Control does:
// the service name, a request of at most 1 MB, and in every operation the
// operationId, operationName, consumerId, startTime and endTime and the
// metricValueSets (for a report: at least one, each metric once, with one
// value each). An invalid request is refused whole and recorded as a call
// only. Reports are deduplicated by operationId: a resent operation counts
// once. Checks answer checkErrors for consumers blocked with
// BlockConsumer, and FailNext makes the next calls fail with an HTTP
// status. Everything it keeps is bounded.
package scstandin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	servicecontrol "google.golang.org/api/servicecontrol/v1"
)

// Methods of the API, as FailNext and Call name them.
const (
	MethodCheck  = "check"
	MethodReport = "report"
)

// Defaults and limits.
const (
	// MaxRequestBytes is Service Control's request size limit.
	MaxRequestBytes = 1 << 20
	// DefaultMaxKept bounds the operations, checks and calls kept.
	DefaultMaxKept = 100_000
	// MaxOperationIDBytes bounds an operation id.
	MaxOperationIDBytes = 128
	// ServiceConfigID is the config id every response names.
	ServiceConfigID = "standin-config-1"
)

// consumerPrefixes are the consumerId formats Service Control accepts.
var consumerPrefixes = []string{"project:", "project_number:", "projects/", "folders/", "organizations/", "api_key:"}

// Options configure a StandIn.
type Options struct {
	// Services are the service names served; any name when empty. A call
	// for another service is refused 403 PERMISSION_DENIED, as Service
	// Control refuses a service the caller may not use.
	Services []string
	// Metrics, when not empty, are the only metric names a report may
	// carry (the metrics of the service configuration).
	Metrics []string
	// MaxKept bounds each log (operations, checks, calls) and the set of
	// operation ids remembered for deduplication; DefaultMaxKept when 0.
	// The oldest entries go first.
	MaxKept int
	// Now is time.Now when nil.
	Now func() time.Time
}

// Operation is one operation as reported, counted once however often it
// was sent.
type Operation struct {
	Service       string           `json:"service"`
	OperationID   string           `json:"operation_id"`
	OperationName string           `json:"operation_name"`
	ConsumerID    string           `json:"consumer_id"`
	Start         time.Time        `json:"start"`
	End           time.Time        `json:"end"`
	Metrics       map[string]int64 `json:"metrics"`
	// Sent is how many times the operation was received (1 + resends).
	Sent       int       `json:"sent"`
	ReceivedAt time.Time `json:"received_at"`
}

// Check is one check call that passed validation.
type Check struct {
	Service     string    `json:"service"`
	OperationID string    `json:"operation_id"`
	ConsumerID  string    `json:"consumer_id"`
	Errors      []string  `json:"errors,omitempty"`
	At          time.Time `json:"at"`
}

// Call is one HTTP request to the stand-in.
type Call struct {
	Method     string    `json:"method"`
	Service    string    `json:"service"`
	Status     int       `json:"status"`
	Bytes      int       `json:"bytes"`
	Operations int       `json:"operations"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
}

// StandIn is the stand-in. It is safe for concurrent use.
type StandIn struct {
	o Options

	mu       sync.Mutex
	ops      []*Operation
	byID     map[string]*Operation
	order    []string
	checks   []Check
	calls    []Call
	faults   map[string][]int
	blocked  map[string]string
	services map[string]bool
	metrics  map[string]bool
}

// New returns a StandIn.
func New(o Options) *StandIn {
	if o.MaxKept <= 0 {
		o.MaxKept = DefaultMaxKept
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &StandIn{
		o: o, byID: map[string]*Operation{}, faults: map[string][]int{}, blocked: map[string]string{},
		services: map[string]bool{}, metrics: map[string]bool{},
	}
	for _, n := range o.Services {
		s.services[n] = true
	}
	for _, n := range o.Metrics {
		s.metrics[n] = true
	}
	return s
}

// Handler serves /v1/services/{service}:check and :report, and answers 404
// to every other path.
func (s *StandIn) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// FailNext makes the next n calls of method (MethodCheck, MethodReport,
// or "" for either) fail with the HTTP status, before they are processed.
func (s *StandIn) FailNext(method string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range min(n, s.o.MaxKept) {
		s.faults[method] = append(s.faults[method], status)
	}
}

// BlockConsumer makes checks of consumerID answer a checkError with code
// (e.g. SERVICE_NOT_ACTIVATED, BILLING_DISABLED, CLIENT_APP_BLOCKED), and
// reports of it a reportError, until Unblock.
func (s *StandIn) BlockConsumer(consumerID, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blocked[consumerID]; !ok && len(s.blocked) >= s.o.MaxKept {
		return
	}
	s.blocked[consumerID] = code
}

// Unblock lifts BlockConsumer.
func (s *StandIn) Unblock(consumerID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.blocked, consumerID)
}

// Reports returns the operations reported, each once, in the order first
// received.
func (s *StandIn) Reports() []Operation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Operation, 0, len(s.ops))
	for _, op := range s.ops {
		c := *op
		c.Metrics = make(map[string]int64, len(op.Metrics))
		for k, v := range op.Metrics {
			c.Metrics[k] = v
		}
		out = append(out, c)
	}
	return out
}

// Checks returns the checks received.
func (s *StandIn) Checks() []Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.checks)
}

// Calls returns every call received, refused ones included.
func (s *StandIn) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Total returns the sum of the values reported for metric, each operation
// counted once.
func (s *StandIn) Total(metric string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, op := range s.ops {
		n += op.Metrics[metric]
	}
	return n
}

// apiError is a Google-style error answer.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func invalid(format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf(format, a...)}
}

// statusCodes maps HTTP statuses to google.rpc.Code names.
var statusCodes = map[int]string{
	http.StatusBadRequest:          "INVALID_ARGUMENT",
	http.StatusUnauthorized:        "UNAUTHENTICATED",
	http.StatusForbidden:           "PERMISSION_DENIED",
	http.StatusNotFound:            "NOT_FOUND",
	http.StatusConflict:            "ABORTED",
	http.StatusTooManyRequests:     "RESOURCE_EXHAUSTED",
	http.StatusInternalServerError: "INTERNAL",
	http.StatusNotImplemented:      "UNIMPLEMENTED",
	http.StatusServiceUnavailable:  "UNAVAILABLE",
	http.StatusGatewayTimeout:      "DEADLINE_EXCEEDED",
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]any{"error": map[string]any{"code": e.status, "message": e.msg, "status": e.code}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *StandIn) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/services/")
	service, method, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || service == "" || strings.Contains(service, "/") || (method != MethodCheck && method != MethodReport) {
		writeError(w, &apiError{http.StatusNotFound, "NOT_FOUND", "the requested URL was not found on this server"})
		return
	}
	call := Call{Method: method, Service: service, At: s.o.Now()}
	status, n, err := s.handle(w, r, &call)
	call.Status, call.Operations = status, n
	if err != nil {
		call.Error = err.Error()
	}
	s.mu.Lock()
	s.calls = keep(append(s.calls, call), s.o.MaxKept)
	s.mu.Unlock()
}

// handle serves one call and returns its status, how many operations it
// carried and the error it was refused with.
func (s *StandIn) handle(w http.ResponseWriter, r *http.Request, call *Call) (int, int, error) {
	if r.Method != http.MethodPost {
		e := &apiError{http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "method " + r.Method + " is not allowed; use POST"}
		writeError(w, e)
		return e.status, 0, e
	}
	if status, ok := s.fault(call.Method); ok {
		code := statusCodes[status]
		if code == "" {
			code = "UNKNOWN"
		}
		e := &apiError{status, code, "injected fault"}
		writeError(w, e)
		return status, 0, e
	}
	if len(s.services) > 0 && !s.services[call.Service] {
		e := &apiError{http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("Permission 'servicemanagement.services.%s' denied on service '%s'.", call.Method, call.Service)}
		writeError(w, e)
		return e.status, 0, e
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	call.Bytes = len(body)
	if err != nil {
		e := invalid("reading the request: %v", err)
		writeError(w, e)
		return e.status, 0, e
	}
	if len(body) > MaxRequestBytes {
		e := invalid("Request payload size exceeds the limit: %d bytes.", MaxRequestBytes)
		writeError(w, e)
		return e.status, 0, e
	}
	if call.Method == MethodCheck {
		return s.check(w, call, body)
	}
	return s.report(w, call, body)
}

// fault takes the next injected fault of method.
func (s *StandIn) fault(method string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range []string{method, ""} {
		if q := s.faults[m]; len(q) > 0 {
			s.faults[m] = q[1:]
			return q[0], true
		}
	}
	return 0, false
}

// decode reads body into v strictly: one JSON object, known fields only.
func decode(body []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("Invalid JSON payload received. %v", err)
	}
	if dec.More() {
		return invalid("Invalid JSON payload received. Unexpected data after the request.")
	}
	return nil
}

func (s *StandIn) check(w http.ResponseWriter, call *Call, body []byte) (int, int, error) {
	var req servicecontrol.CheckRequest
	if e := decode(body, &req); e != nil {
		writeError(w, e)
		return e.status, 0, e
	}
	if req.Operation == nil {
		e := invalid("operation is required")
		writeError(w, e)
		return e.status, 0, e
	}
	if _, e := s.validate(req.Operation, false); e != nil {
		writeError(w, e)
		return e.status, 1, e
	}
	op := req.Operation
	resp := servicecontrol.CheckResponse{OperationId: op.OperationId, ServiceConfigId: ServiceConfigID}
	s.mu.Lock()
	code, blocked := s.blocked[op.ConsumerId]
	ch := Check{Service: call.Service, OperationID: op.OperationId, ConsumerID: op.ConsumerId, At: s.o.Now()}
	if blocked {
		resp.CheckErrors = []*servicecontrol.CheckError{{
			Code: code, Subject: op.ConsumerId,
			Detail: fmt.Sprintf("consumer %s may not use service %s: %s", op.ConsumerId, call.Service, code),
		}}
		ch.Errors = []string{code}
	} else {
		resp.CheckInfo = &servicecontrol.CheckInfo{ConsumerInfo: &servicecontrol.ConsumerInfo{Type: "PROJECT"}}
	}
	s.checks = keep(append(s.checks, ch), s.o.MaxKept)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
	return http.StatusOK, 1, nil
}

func (s *StandIn) report(w http.ResponseWriter, call *Call, body []byte) (int, int, error) {
	var req servicecontrol.ReportRequest
	if e := decode(body, &req); e != nil {
		writeError(w, e)
		return e.status, 0, e
	}
	if len(req.Operations) == 0 {
		e := invalid("operations must not be empty")
		writeError(w, e)
		return e.status, 0, e
	}
	parsed := make([]Operation, len(req.Operations))
	seen := map[string]bool{}
	for i, op := range req.Operations {
		if op == nil {
			e := invalid("operations[%d] is empty", i)
			writeError(w, e)
			return e.status, len(req.Operations), e
		}
		p, e := s.validate(op, true)
		if e != nil {
			e.msg = fmt.Sprintf("operations[%d]: %s", i, e.msg)
			writeError(w, e)
			return e.status, len(req.Operations), e
		}
		if seen[op.OperationId] {
			e := invalid("operations[%d]: operationId %q repeated in the request", i, op.OperationId)
			writeError(w, e)
			return e.status, len(req.Operations), e
		}
		seen[op.OperationId] = true
		p.Service = call.Service
		parsed[i] = p
	}
	var resp servicecontrol.ReportResponse
	resp.ServiceConfigId = ServiceConfigID
	now := s.o.Now()
	s.mu.Lock()
	for _, p := range parsed {
		if code, blocked := s.blocked[p.ConsumerID]; blocked {
			resp.ReportErrors = append(resp.ReportErrors, &servicecontrol.ReportError{
				OperationId: p.OperationID,
				Status:      &servicecontrol.Status{Code: 7, Message: "consumer " + p.ConsumerID + " is blocked: " + code},
			})
			continue
		}
		key := p.Service + "\x00" + p.OperationID
		if prev, ok := s.byID[key]; ok {
			prev.Sent++
			continue
		}
		p.Sent, p.ReceivedAt = 1, now
		op := &p
		s.byID[key] = op
		s.order = append(s.order, key)
		s.ops = append(s.ops, op)
		for len(s.order) > s.o.MaxKept {
			delete(s.byID, s.order[0])
			s.order = s.order[1:]
		}
		s.ops = keep(s.ops, s.o.MaxKept)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
	return http.StatusOK, len(parsed), nil
}

// validate checks one operation; a report's needs an end time and
// metrics.
func (s *StandIn) validate(op *servicecontrol.Operation, report bool) (Operation, *apiError) {
	p := Operation{OperationID: op.OperationId, OperationName: op.OperationName, ConsumerID: op.ConsumerId}
	switch {
	case op.OperationId == "":
		return p, invalid("operationId is required")
	case len(op.OperationId) > MaxOperationIDBytes:
		return p, invalid("operationId is %d bytes, limit %d", len(op.OperationId), MaxOperationIDBytes)
	case op.OperationName == "":
		return p, invalid("operationName is required")
	}
	if err := validConsumer(op.ConsumerId); err != nil {
		return p, invalid("consumerId %q: %v", op.ConsumerId, err)
	}
	start, err := time.Parse(time.RFC3339Nano, op.StartTime)
	if err != nil {
		return p, invalid("startTime %q: want an RFC 3339 timestamp", op.StartTime)
	}
	p.Start = start
	if op.EndTime == "" && !report {
		return p, nil
	}
	end, err := time.Parse(time.RFC3339Nano, op.EndTime)
	if err != nil {
		return p, invalid("endTime %q: want an RFC 3339 timestamp", op.EndTime)
	}
	if end.Before(start) {
		return p, invalid("endTime %s is before startTime %s", op.EndTime, op.StartTime)
	}
	p.End = end
	if !report {
		return p, nil
	}
	if len(op.MetricValueSets) == 0 {
		return p, invalid("metricValueSets must not be empty in a report")
	}
	p.Metrics = make(map[string]int64, len(op.MetricValueSets))
	for _, set := range op.MetricValueSets {
		if set == nil || set.MetricName == "" {
			return p, invalid("metricName is required")
		}
		if len(s.metrics) > 0 && !s.metrics[set.MetricName] {
			return p, invalid("metric %q is not defined in the service configuration", set.MetricName)
		}
		if _, dup := p.Metrics[set.MetricName]; dup {
			return p, invalid("metric %q appears twice in one operation", set.MetricName)
		}
		if len(set.MetricValues) != 1 || set.MetricValues[0] == nil || set.MetricValues[0].Int64Value == nil {
			return p, invalid("metric %q: want exactly one int64Value", set.MetricName)
		}
		if v := *set.MetricValues[0].Int64Value; v < 0 {
			return p, invalid("metric %q: value %d is negative", set.MetricName, v)
		}
		p.Metrics[set.MetricName] = *set.MetricValues[0].Int64Value
	}
	return p, nil
}

// validConsumer checks a consumerId's format.
func validConsumer(id string) error {
	for _, p := range consumerPrefixes {
		if rest, ok := strings.CutPrefix(id, p); ok {
			if rest == "" || len(rest) > 256 || strings.ContainsAny(rest, " \t\r\n/") {
				return errors.New("the part after " + p + " is empty, too long or not an id")
			}
			return nil
		}
	}
	return errors.New("want project:ID, project_number:NUMBER, projects/ID, folders/N, organizations/N or api_key:KEY")
}

// keep drops the oldest entries of s beyond limit.
func keep[T any](s []T, limit int) []T {
	if over := len(s) - limit; over > 0 {
		s = slices.Delete(s, 0, over)
	}
	return s
}
