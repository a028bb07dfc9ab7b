package scstandin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	servicecontrol "google.golang.org/api/servicecontrol/v1"

	"github.com/autonomics/autonomics/shared/marketplace/usage/scstandin"
)

const service = "example.gcpmarketplace.example.com"

func setup(t *testing.T, o scstandin.Options) (*scstandin.StandIn, *servicecontrol.Service, *httptest.Server) {
	t.Helper()
	s := scstandin.New(o)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c, err := servicecontrol.NewService(context.Background(), option.WithEndpoint(srv.URL+"/"), option.WithoutAuthentication(), option.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return s, c, srv
}

func op(id string, value int64) *servicecontrol.Operation {
	return &servicecontrol.Operation{
		OperationId: id, OperationName: "hourly", ConsumerId: "project_number:123",
		StartTime: "2026-03-01T12:00:00Z", EndTime: "2026-03-01T13:00:00Z",
		MetricValueSets: []*servicecontrol.MetricValueSet{{MetricName: "example/api_calls", MetricValues: []*servicecontrol.MetricValue{{Int64Value: &value}}}},
	}
}

// apiStatus returns the google.rpc status name of an error body.
func apiStatus(err error) string {
	var g *googleapi.Error
	if errors.As(err, &g) {
		var body struct {
			Error struct{ Status string }
		}
		_ = json.Unmarshal([]byte(g.Body), &body)
		return body.Error.Status
	}
	return ""
}

func apiCode(err error) int {
	var g *googleapi.Error
	if errors.As(err, &g) {
		return g.Code
	}
	return 0
}

func TestReportIsDeduplicatedByOperationID(t *testing.T) {
	s, c, _ := setup(t, scstandin.Options{Services: []string{service}})
	for range 3 {
		if _, err := c.Services.Report(service, &servicecontrol.ReportRequest{Operations: []*servicecontrol.Operation{op("op-1", 5), op("op-2", 7)}}).Do(); err != nil {
			t.Fatal(err)
		}
	}
	ops := s.Reports()
	if len(ops) != 2 || ops[0].Sent != 3 || s.Total("example/api_calls") != 12 {
		t.Fatalf("reports %+v total %d; want 2 operations sent 3 times, total 12", ops, s.Total("example/api_calls"))
	}
	if ops[0].Start.Hour() != 12 || ops[0].End.Hour() != 13 || ops[0].ConsumerID != "project_number:123" {
		t.Errorf("operation %+v not recorded as sent", ops[0])
	}
}

func TestInvalidRequestsAreRefusedWhole(t *testing.T) {
	mut := func(f func(o *servicecontrol.Operation)) *servicecontrol.Operation {
		o := op("op-x", 1)
		f(o)
		return o
	}
	neg := int64(-1)
	tests := []struct {
		name string
		op   *servicecontrol.Operation
	}{
		{"no operation id", mut(func(o *servicecontrol.Operation) { o.OperationId = "" })},
		{"operation id too long", mut(func(o *servicecontrol.Operation) { o.OperationId = strings.Repeat("a", 129) })},
		{"no operation name", mut(func(o *servicecontrol.Operation) { o.OperationName = "" })},
		{"no consumer", mut(func(o *servicecontrol.Operation) { o.ConsumerId = "" })},
		{"consumer of an unknown kind", mut(func(o *servicecontrol.Operation) { o.ConsumerId = "user:bob" })},
		{"consumer with an empty id", mut(func(o *servicecontrol.Operation) { o.ConsumerId = "project_number:" })},
		{"no start", mut(func(o *servicecontrol.Operation) { o.StartTime = "" })},
		{"start not RFC 3339", mut(func(o *servicecontrol.Operation) { o.StartTime = "yesterday" })},
		{"no end", mut(func(o *servicecontrol.Operation) { o.EndTime = "" })},
		{"end before start", mut(func(o *servicecontrol.Operation) { o.EndTime = "2026-03-01T11:00:00Z" })},
		{"no metrics", mut(func(o *servicecontrol.Operation) { o.MetricValueSets = nil })},
		{"metric without a name", mut(func(o *servicecontrol.Operation) { o.MetricValueSets[0].MetricName = "" })},
		{"metric twice", mut(func(o *servicecontrol.Operation) {
			o.MetricValueSets = append(o.MetricValueSets, o.MetricValueSets[0])
		})},
		{"metric not in the service", mut(func(o *servicecontrol.Operation) { o.MetricValueSets[0].MetricName = "example/other" })},
		{"negative value", mut(func(o *servicecontrol.Operation) { o.MetricValueSets[0].MetricValues[0].Int64Value = &neg })},
		{"no value", mut(func(o *servicecontrol.Operation) { o.MetricValueSets[0].MetricValues[0].Int64Value = nil })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c, _ := setup(t, scstandin.Options{Services: []string{service}, Metrics: []string{"example/api_calls"}})
			_, err := c.Services.Report(service, &servicecontrol.ReportRequest{Operations: []*servicecontrol.Operation{op("op-ok", 1), tc.op}}).Do()
			if apiCode(err) != http.StatusBadRequest || apiStatus(err) != "INVALID_ARGUMENT" {
				t.Fatalf("report = %v; want 400 INVALID_ARGUMENT", err)
			}
			if n := len(s.Reports()); n != 0 {
				t.Errorf("%d operations of a refused request were counted", n)
			}
		})
	}
}

func TestRepeatedOperationIDInOneRequestIsRefused(t *testing.T) {
	_, c, _ := setup(t, scstandin.Options{})
	_, err := c.Services.Report(service, &servicecontrol.ReportRequest{Operations: []*servicecontrol.Operation{op("op-1", 1), op("op-1", 2)}}).Do()
	if apiCode(err) != http.StatusBadRequest {
		t.Fatalf("report = %v; want 400", err)
	}
}

func TestRequestOverOneMegabyteIsRefused(t *testing.T) {
	s, c, _ := setup(t, scstandin.Options{})
	var ops []*servicecontrol.Operation
	for i := range 4000 {
		ops = append(ops, op(strings.Repeat("x", 100)+string(rune('a'+i%26))+strings.Repeat("y", i/26%20), 1))
	}
	_, err := c.Services.Report(service, &servicecontrol.ReportRequest{Operations: ops}).Do()
	if apiCode(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "payload size exceeds the limit") {
		t.Fatalf("report of over 1 MB = %v; want 400 payload size exceeds the limit", err)
	}
	if len(s.Reports()) != 0 {
		t.Error("operations of an oversized request were counted")
	}
}

func TestUnknownFieldIsRefused(t *testing.T) {
	_, _, srv := setup(t, scstandin.Options{})
	res, err := http.Post(srv.URL+"/v1/services/"+service+":report", "application/json", strings.NewReader(`{"operations":[],"extra":1}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d; want 400", res.StatusCode)
	}
}

func TestUnknownServiceIsPermissionDenied(t *testing.T) {
	_, c, _ := setup(t, scstandin.Options{Services: []string{service}})
	_, err := c.Services.Report("other.example.com", &servicecontrol.ReportRequest{Operations: []*servicecontrol.Operation{op("op-1", 1)}}).Do()
	if apiCode(err) != http.StatusForbidden || apiStatus(err) != "PERMISSION_DENIED" {
		t.Fatalf("report to another service = %v; want 403 PERMISSION_DENIED", err)
	}
}

func TestOtherPathsAndMethodsAreRefused(t *testing.T) {
	_, _, srv := setup(t, scstandin.Options{})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/v1/services/" + service + ":allocateQuota", http.StatusNotFound},
		{http.MethodPost, "/v1/services/a/b:check", http.StatusNotFound},
		{http.MethodPost, "/v1/providers/p/entitlements/e", http.StatusNotFound},
		{http.MethodGet, "/v1/services/" + service + ":report", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("{}"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s %s = %d; want %d", tc.method, tc.path, res.StatusCode, tc.status)
		}
	}
}

func TestCheckOfABlockedConsumerAnswersCheckErrors(t *testing.T) {
	s, c, _ := setup(t, scstandin.Options{})
	check := func() *servicecontrol.CheckResponse {
		t.Helper()
		r, err := c.Services.Check(service, &servicecontrol.CheckRequest{Operation: op("op-1", 1)}).Do()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := check(); len(r.CheckErrors) != 0 || r.OperationId != "op-1" {
		t.Fatalf("check of a good consumer = %+v", r)
	}
	s.BlockConsumer("project_number:123", "BILLING_DISABLED")
	r := check()
	if len(r.CheckErrors) != 1 || r.CheckErrors[0].Code != "BILLING_DISABLED" {
		t.Fatalf("check of a blocked consumer = %+v; want a BILLING_DISABLED checkError", r.CheckErrors)
	}
	rr, err := c.Services.Report(service, &servicecontrol.ReportRequest{Operations: []*servicecontrol.Operation{op("op-1", 1)}}).Do()
	if err != nil || len(rr.ReportErrors) != 1 || rr.ReportErrors[0].OperationId != "op-1" || len(s.Reports()) != 0 {
		t.Fatalf("report of a blocked consumer = %+v, %v; want a reportError and nothing counted", rr, err)
	}
	s.Unblock("project_number:123")
	if r := check(); len(r.CheckErrors) != 0 {
		t.Fatalf("check after Unblock = %+v", r.CheckErrors)
	}
	if n := len(s.Checks()); n != 3 {
		t.Errorf("%d checks logged; want 3", n)
	}
}

func TestCheckWithoutOperationIsRefused(t *testing.T) {
	_, c, _ := setup(t, scstandin.Options{})
	if _, err := c.Services.Check(service, &servicecontrol.CheckRequest{}).Do(); apiCode(err) != http.StatusBadRequest {
		t.Fatalf("check without an operation = %v; want 400", err)
	}
}

func TestFailNextInjectsStatuses(t *testing.T) {
	s, c, _ := setup(t, scstandin.Options{})
	s.FailNext(scstandin.MethodReport, http.StatusServiceUnavailable, 2)
	s.FailNext("", http.StatusTooManyRequests, 1)
	report := func() error {
		_, err := c.Services.Report(service, &servicecontrol.ReportRequest{Operations: []*servicecontrol.Operation{op("op-1", 1)}}).Do()
		return err
	}
	if _, err := c.Services.Check(service, &servicecontrol.CheckRequest{Operation: op("op-1", 1)}).Do(); apiCode(err) != http.StatusTooManyRequests {
		t.Errorf("check = %v; want the injected 429", err)
	}
	for i, want := range []int{503, 503, 0} {
		if got := apiCode(report()); got != want {
			t.Errorf("report %d: status %d; want %d", i, got, want)
		}
	}
	if len(s.Reports()) != 1 {
		t.Errorf("%d reports; want 1 after the faults", len(s.Reports()))
	}
	calls := s.Calls()
	if len(calls) != 4 || calls[1].Status != 503 || calls[3].Status != 200 || calls[3].Operations != 1 {
		t.Errorf("calls %+v", calls)
	}
}

func TestStateIsBounded(t *testing.T) {
	s, c, _ := setup(t, scstandin.Options{MaxKept: 5})
	for i := range 12 {
		if _, err := c.Services.Report(service, &servicecontrol.ReportRequest{Operations: []*servicecontrol.Operation{op("op-"+string(rune('a'+i)), 1)}}).Do(); err != nil {
			t.Fatal(err)
		}
	}
	s.FailNext("", 503, 1000)
	for i := range 10 {
		s.BlockConsumer("project_number:"+string(rune('0'+i)), "BILLING_DISABLED")
	}
	if len(s.Reports()) > 5 || len(s.Calls()) > 5 {
		t.Errorf("kept %d reports and %d calls; want at most 5", len(s.Reports()), len(s.Calls()))
	}
	failed := 0
	for range 10 {
		if _, err := c.Services.Check(service, &servicecontrol.CheckRequest{Operation: op("z", 1)}).Do(); err != nil {
			failed++
		}
	}
	if failed != 5 {
		t.Errorf("%d calls failed of 1000 injected with MaxKept 5; want 5 kept", failed)
	}
}
