package ingest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/ingest"
)

// benchProducers is the number of producers the benchmark spreads its
// requests over: one producer's rate is at most ingest.MaxRate.
const benchProducers = 4

// benchRules let the benchmark's producers send as fast as they can.
func benchRules() string {
	var ps []string
	for i := range benchProducers {
		ps = append(ps, fmt.Sprintf(`{"name": "bench-%d", "class": "external", "email": "bench-%d@producers.iam.gserviceaccount.com", "key_ids": ["bench-%d"],
		  "types": ["autonomics.billing.*"], "tenants": ["*"], "rate": %d, "burst": %d}`, i, i, i, ingest.MaxRate, ingest.MaxBurst))
	}
	ps = append(ps, `{"name": "billing", "class": "external", "email": "`+billingEmail+`", "types": ["autonomics.billing.*"], "tenants": ["*"]}`)
	return "[" + strings.Join(ps, ",") + "]"
}

// BenchmarkIngest measures ingest requests per second through the HTTP
// API to the Pub/Sub emulator, each answered once Pub/Sub acknowledged
// its events, with the latency percentiles of a request:
//
//	go test -run '^$' -bench Ingest ./shared/ingest   (PUBSUB_EMULATOR_HOST set)
func BenchmarkIngest(b *testing.B) {
	for _, bc := range []struct {
		name   string
		events int
		hmac   bool
	}{
		{"token/single", 1, false},
		{"hmac/single", 1, true},
		{"token/batch10", 10, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, fixtureOptions{rules: benchRules(), noSubscriptions: true})
			var tokens []string
			for i := range benchProducers {
				tokens = append(tokens, "Bearer "+f.token(fmt.Sprintf("bench-%d@producers.iam.gserviceaccount.com", i)))
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			var seq atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					n := seq.Add(1)
					var body []byte
					h := structured()
					if bc.events == 1 {
						body = usage(fmt.Sprintf("bench-%d", n), fmt.Sprintf("tenant-%d", n%64)).json(b)
					} else {
						es := make([]ce, bc.events)
						for i := range es {
							es[i] = usage(fmt.Sprintf("bench-%d-%d", n, i), fmt.Sprintf("tenant-%d", (int(n)+i)%64))
						}
						body, h = jsonArray(b, es...), batch()
					}
					if p := int(n % benchProducers); bc.hmac {
						h = f.signedHeaders(fmt.Sprintf("bench-%d", p), time.Now(), body, h)
					} else {
						h.Set("Authorization", tokens[p])
					}
					req, _ := http.NewRequest(http.MethodPost, f.url(), bytes.NewReader(body))
					req.Header = h
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					mine = append(mine, time.Since(t0))
					if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if len(lat) == 0 {
				return
			}
			slices.Sort(lat)
			pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(len(lat)*bc.events)/elapsed.Seconds(), "events/s")
			b.ReportMetric(pct(0.50), "p50_ms")
			b.ReportMetric(pct(0.99), "p99_ms")
		})
	}
}
