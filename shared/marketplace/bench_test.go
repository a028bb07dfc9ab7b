package marketplace_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/marketplace"
)

// BenchmarkAdapterNotification measures notifications handled through
// the push handler (parse, decode, GET from a fake Procurement, link,
// map, publish to a recording publisher).
func BenchmarkAdapterNotification(b *testing.B) {
	h := newHarness(b)
	h.proc.entitlement(entID, marketplace.EntitlementActive, "basic")
	data := fixture(b, "entitlement_active")
	bodies := make([]string, 256)
	for i := range bodies {
		bodies[i] = string(event.PushBody(data, nil, "m-"+strconv.Itoa(i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := httptest.NewRequest(http.MethodPost, marketplace.PushPath, strings.NewReader(bodies[i%len(bodies)]))
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			b.Fatalf("push = %d", rec.Code)
		}
	}
}
