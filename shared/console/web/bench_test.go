package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// The benchmarks' data: 10,000 tenants and 100,000 receipts, 90% of them
// on the first 100 tenants (900 each, over their eight governors).
const (
	benchTenants  = 10000
	benchReceipts = 100000
	benchHeavy    = 100
)

var (
	benchOnce sync.Once
	benchData *fakeData
)

func benchConsole(b *testing.B) http.Handler {
	b.Helper()
	benchOnce.Do(func() {
		benchData = newFakeData()
		bulk(benchData, benchTenants, benchReceipts, benchHeavy)
	})
	c, err := New(Options{Data: benchData, Logger: quiet, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	return c.Handler()
}

// servePages serves path(i) b.N times and reports the server time's p99.
func servePages(b *testing.B, h http.Handler, path func(i int) string) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := httptest.NewRequest(http.MethodGet, path(i), nil)
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, r)
		lat = append(lat, time.Since(start))
		if w.Code != http.StatusOK {
			b.Fatalf("GET %s = %d", r.URL, w.Code)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}

// BenchmarkTenantPage renders a tenant's governors (eight diagrams, data
// and timers), cycling through the heavy tenants and the others.
func BenchmarkTenantPage(b *testing.B) {
	h := benchConsole(b)
	servePages(b, h, func(i int) string {
		return fmt.Sprintf("/tenants/tenant-%05d", (i*7919)%benchTenants)
	})
}

// BenchmarkTimelinePage renders one page (50 receipts) of a heavy
// tenant's timeline, newest first, on one of its first five pages.
func BenchmarkTimelinePage(b *testing.B) {
	h := benchConsole(b)
	servePages(b, h, func(i int) string {
		p := fmt.Sprintf("/tenants/tenant-%05d/timeline", i%benchHeavy)
		if n := i % 5; n > 0 {
			p += fmt.Sprintf("?page_token=%d", n*DefaultPageSize)
		}
		return p
	})
}

// BenchmarkTenantsPage renders one page of the tenant list, searched by
// prefix.
func BenchmarkTenantsPage(b *testing.B) {
	h := benchConsole(b)
	servePages(b, h, func(i int) string {
		return fmt.Sprintf("/?prefix=tenant-0%d", i%10)
	})
}
