package marketplace_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/api/cloudcommerceprocurement/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/marketplace"
)

// googleReader is a ProcurementReader over Google's own client, with the
// error mapping the Procurement client of the services makes.
type googleReader struct {
	s *cloudcommerceprocurement.Service
}

func (g googleReader) mapErr(op string, err error) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == http.StatusNotFound:
			return fault.Wrap(fault.NotFound, op, err)
		case ge.Code >= 500 || ge.Code == http.StatusTooManyRequests:
			return fault.Wrap(fault.Unavailable, op, err)
		}
		return fault.Wrap(fault.Invalid, op, err)
	}
	return fault.Wrap(fault.Unavailable, op, err)
}

func (g googleReader) GetEntitlement(ctx context.Context, id string) (*cloudcommerceprocurement.Entitlement, error) {
	e, err := g.s.Providers.Entitlements.Get("providers/" + provider + "/entitlements/" + id).Context(ctx).Do()
	if err != nil {
		return nil, g.mapErr("GetEntitlement", err)
	}
	return e, nil
}

func (g googleReader) GetAccount(ctx context.Context, id string) (*cloudcommerceprocurement.Account, error) {
	a, err := g.s.Providers.Accounts.Get("providers/" + provider + "/accounts/" + id).Context(ctx).Do()
	if err != nil {
		return nil, g.mapErr("GetAccount", err)
	}
	return a, nil
}

// TestGoogleClientAgainstDocumentedShapes runs the adapter on Google's
// client against a server answering the documented JSON: an entitlement,
// then a 503 in Google's error format, then success.
func TestGoogleClientAgainstDocumentedShapes(t *testing.T) {
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`))
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != "/v1/providers/"+provider+"/entitlements/"+entID {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":404,"message":"Entitlement not found.","status":"NOT_FOUND"}}`))
			return
		}
		_, _ = w.Write([]byte(`{
  "name": "providers/` + provider + `/entitlements/` + entID + `",
  "account": "providers/` + provider + `/accounts/` + accountID + `",
  "provider": "` + provider + `",
  "product": "analytics.endpoints.acme-saas.cloud.goog",
  "plan": "basic",
  "state": "ENTITLEMENT_ACTIVE",
  "usageReportingId": "project_number:123456789",
  "offerEndTime": "2027-03-01T00:00:00Z",
  "createTime": "2026-03-01T10:06:00Z",
  "updateTime": "2026-03-01T10:07:00Z",
  "orderId": "` + entID + `"
}`))
	}))
	defer srv.Close()
	svc, err := cloudcommerceprocurement.NewService(context.Background(), option.WithEndpoint(srv.URL+"/"), option.WithoutAuthentication(), option.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(o *marketplace.AdapterOptions) { o.Procurement = googleReader{svc} })
	down.Store(true)
	if code := h.push(t, fixture(t, "entitlement_active"), "m"); code != http.StatusServiceUnavailable {
		t.Fatalf("push with Procurement answering 503 = %d, want 503", code)
	}
	down.Store(false)
	if code := h.push(t, fixture(t, "entitlement_active"), "m"); code != http.StatusNoContent {
		t.Fatalf("push = %d, want 204", code)
	}
	evs := h.events(t, governor.Entitlement)
	if len(evs) != 1 || evs[0].Name != marketplace.EvActivated || evs[0].Tenant != tenant ||
		!strings.Contains(string(evs[0].Data), `"usage_reporting_id":"project_number:123456789"`) {
		t.Errorf("published %+v, want activated for %s carrying the usage reporting id", evs, tenant)
	}
	other := strings.Replace(string(fixture(t, "entitlement_active")), entID, "unknown-entitlement", 1)
	res, err := h.adapter.Handle(context.Background(), eventMessage(other))
	if err != nil || res.Outcome != marketplace.OutcomeIgnored {
		t.Errorf("notification of an entitlement Procurement answers 404 for = %+v, %v; want ignored", res, err)
	}
}
