package marketplace_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/api/option"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/marketplace/procurement"
	"github.com/autonomics/autonomics/shared/marketplace/standin"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/topic"
)

// countingPublisher counts what the adapter publishes and keeps nothing.
type countingPublisher struct{ n atomic.Int64 }

func (p *countingPublisher) Publish(context.Context, store.Message) error {
	p.n.Add(1)
	return nil
}

// BenchmarkAdapterThroughStandin measures what the Marketplace path adds
// in front of a governor decision: a notification pushed to the adapter,
// which reads the entitlement back from the Procurement stand-in over
// HTTP through Google's own client, resolves the account's tenant and
// publishes the governor event. ns/op is the added latency per decision;
// notifications/s is its throughput on one connection.
func BenchmarkAdapterThroughStandin(b *testing.B) {
	ctx := context.Background()
	var notes [][]byte
	st, err := standin.New(standin.Options{Provider: "bench-provider", Notify: func(_ context.Context, data []byte) error {
		notes = append(notes, data)
		return nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(st.Handler())
	defer srv.Close()
	client, err := procurement.NewClient(ctx, "bench-provider", option.WithEndpoint(srv.URL+"/"), option.WithoutAuthentication())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Purchase(ctx, "acct-bench", "saas", "starter", standin.PurchaseOptions{AutoApprove: true}); err != nil {
		b.Fatal(err)
	}
	var active []byte
	for _, n := range notes {
		if strings.Contains(string(n), "ENTITLEMENT_ACTIVE") {
			active = n
		}
	}
	if active == nil {
		b.Fatalf("the stand-in sent no ENTITLEMENT_ACTIVE among %d notifications", len(notes))
	}
	pub := &countingPublisher{}
	a, err := marketplace.NewAdapter(marketplace.AdapterOptions{
		Provider: "bench-provider", Procurement: client, Accounts: marketplace.NewMemAccounts(),
		Publisher: pub, Topics: topic.Names{},
	})
	if err != nil {
		b.Fatal(err)
	}
	h := a.Handler()
	bodies := make([]string, 256)
	for i := range bodies {
		bodies[i] = string(event.PushBody(active, nil, "m-"+strconv.Itoa(i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, marketplace.PushPath, strings.NewReader(bodies[i%len(bodies)])))
		if rec.Code != http.StatusNoContent {
			b.Fatalf("push answered %d: %s", rec.Code, rec.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notifications/s")
	if pub.n.Load() < int64(b.N) {
		b.Fatalf("%d events published for %d notifications", pub.n.Load(), b.N)
	}
}
