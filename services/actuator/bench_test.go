package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/fswebhook"
	"github.com/autonomics/autonomics/shared/webhook/memwebhook"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// BenchmarkDelivered measures actions delivered per second through the
// actuator's push endpoint to a receiver on 127.0.0.1, and the latency
// from commit (the action's ce-time, set just before it is pushed) to its
// arrival at the receiver: p50 and p99 in milliseconds. 16 pushes are in
// flight at once, over 256 tenants. The store is in memory, and the
// Firestore emulator's when FIRESTORE_EMULATOR_HOST is set.
func BenchmarkDelivered(b *testing.B) {
	stores := map[string]func(b *testing.B) webhook.Store{
		"memory": func(b *testing.B) webhook.Store { return memwebhook.New() },
	}
	if os.Getenv("FIRESTORE_EMULATOR_HOST") != "" {
		stores["firestore-emulator"] = func(b *testing.B) webhook.Store {
			c, err := fs.NewClientWithDatabase(context.Background(), emulatorProject, "actuator-bench")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			s, err := fswebhook.New(c, fswebhook.Options{Namespace: fmt.Sprintf("bench-%d", time.Now().UnixNano()), MaxAttempts: 200})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range stores {
			if !yield(k) {
				return
			}
		}
	}) {
		b.Run(name, func(b *testing.B) { benchDelivered(b, stores[name](b)) })
	}
}

func benchDelivered(b *testing.B, st webhook.Store) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	pub := &webhooktest.Publisher{}
	d, err := webhook.New(webhook.Options{
		Store: st, Publisher: pub, Topics: topic.Names{}, Kinds: webhook.KindsOf(machines.New(nil)),
		Guard: &webhook.Guard{AllowLoopback: true}, InlineSecrets: true, Logger: log, EndpointCacheTTL: time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var lat []float64
	var delivered atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		if json.Unmarshal(body, &p) == nil {
			if t, err := time.Parse(time.RFC3339Nano, p.Timestamp); err == nil {
				mu.Lock()
				lat = append(lat, float64(time.Since(t).Microseconds())/1000)
				mu.Unlock()
			}
		}
		delivered.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(recv.Close)
	if _, _, err := d.PutEndpoint(ctx, webhook.Endpoint{ID: "bench", URL: recv.URL, Kinds: []string{"*"}, Secrets: []string{webhook.NewSecret().Encode()}, MaxInFlight: 32}); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer((&server{d: d, publisher: pub, topics: topic.Names{}, log: log, inlineWait: 5 * time.Second}).handler())
	b.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	const inFlight = 16
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				m := webhooktest.ActionSpec{
					ID: fmt.Sprintf("bench-%d-%d", start.UnixNano(), i), Domain: governor.MultiTenant, Kind: "tenant.provision",
					Tenant: fmt.Sprintf("tenant-%03d", i%256), Time: time.Now().UTC(), Data: `{"plan":"pro"}`,
				}.Message()
				resp, err := client.Post(srv.URL+"/v1/actions/push", "application/json", bytes.NewReader(event.PushBody(m.Data, m.Attributes, m.ID)))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	_ = d.Wait(wctx)
	cancel()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := delivered.Load(); n < int64(b.N) {
		b.Fatalf("%d of %d actions delivered", n, b.N)
	}
	mu.Lock()
	slices.Sort(lat)
	p := func(q float64) float64 { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "actions/s")
	b.ReportMetric(p(0.50), "p50_ms")
	b.ReportMetric(p(0.99), "p99_ms")
	mu.Unlock()
}
