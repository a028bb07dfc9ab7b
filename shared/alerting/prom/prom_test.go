package prom_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/prom"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/promtest"
)

func TestQueryAgainstPrometheus(t *testing.T) {
	s := promtest.Start(t)
	now := time.Now().UTC().Truncate(time.Second)
	s.Write(t, alerting.Sample{Name: "up_test", Labels: alerting.Labels{"Zone": "a", "job": "x"}, Value: 1, Time: now})
	q := s.Querier()
	got, err := q.Query(t.Context(), `up_test`, now)
	if err != nil || len(got) != 1 || got[0].Labels["Zone"] != "a" || got[0].Labels["job"] != "x" || len(got[0].Labels) != 2 {
		t.Errorf("Query(up_test) = %+v, %v; want one series {Zone=a, job=x} without __name__", got, err)
	}
	if got, err := q.Query(t.Context(), `scalar(up_test)`, now); err != nil || len(got) != 1 || got[0].Value != 1 || got[0].Labels != nil {
		t.Errorf("Query(scalar) = %+v, %v; want one unlabelled element", got, err)
	}
	if _, err := q.Query(t.Context(), `sum(rate(up_test[5m])`, now); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("Query(unbalanced) = %v, want invalid", err)
	}
	if _, err := q.Query(t.Context(), `up_test[5m]`, now); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("Query(range vector) = %v, want invalid", err)
	}
}

func TestHugeEngineAnswerIsRefused(t *testing.T) {
	big := `{"status":"success","data":{"resultType":"vector","result":[` + strings.Repeat(`{"metric":{"a":"xxxxxxxxxx"},"value":[1,"1"]},`, 2000) + `{"metric":{},"value":[1,"1"]}]}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.(http.Flusher).Flush() // no Content-Length: the cap applies while reading
		io.WriteString(w, big)
	}))
	defer srv.Close()
	q, err := prom.New(prom.Options{URL: srv.URL, MaxResponseBytes: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Query(t.Context(), "x", time.Now()); fault.ErrorCode(err) != fault.Unavailable {
		t.Errorf("Query with a %d-byte answer over a 10 kB cap = %v, want unavailable", len(big), err)
	}
}

func TestHugeEngineAnswerIsMarkedTooLarge(t *testing.T) {
	big := `{"status":"success","data":{"resultType":"vector","result":[` + strings.Repeat(`{"metric":{"a":"xxxxxxxxxx"},"value":[1,"1"]},`, 2000) + `{"metric":{},"value":[1,"1"]}]}}`
	for _, tt := range []struct {
		name  string
		flush bool
	}{{"announced by Content-Length", false}, {"found while reading", true}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if tt.flush {
					w.(http.Flusher).Flush()
				}
				io.WriteString(w, big)
			}))
			defer srv.Close()
			q, err := prom.New(prom.Options{URL: srv.URL, MaxResponseBytes: 10_000})
			if err != nil {
				t.Fatal(err)
			}
			_, err = q.Query(t.Context(), "x", time.Now())
			if fault.ErrorCode(err) != fault.Unavailable || !errors.Is(err, alerting.ErrAnswerTooLarge) {
				t.Errorf("Query with a %d-byte answer over a 10 kB cap = %v, want unavailable, alerting.ErrAnswerTooLarge", len(big), err)
			}
		})
	}
}

func TestEngineURLMustBeHTTP(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "localhost:9090", "http://"} {
		if _, err := prom.New(prom.Options{URL: u}); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("New(%q) = %v, want invalid", u, err)
		}
		if _, err := prom.NewWriter(prom.WriterOptions{URL: u}); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("NewWriter(%q) = %v, want invalid", u, err)
		}
	}
}

func TestRemoteWrite503ThenSuccess(t *testing.T) {
	var calls atomic.Int32
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Encoding") != "snappy" || r.Header.Get("X-Prometheus-Remote-Write-Version") != "0.1.0" {
			http.Error(w, "bad headers", http.StatusBadRequest)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		body, _ = snappy.Decode(nil, raw)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	w, err := prom.NewWriter(prom.WriterOptions{URL: srv.URL, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	samples := []alerting.Sample{{Name: "m", Labels: alerting.Labels{"a": "b"}, Value: 1, Time: time.UnixMilli(1000)}}
	if err := w.Write(t.Context(), samples); err != nil || calls.Load() != 2 {
		t.Fatalf("Write after one 503 = %v (%d calls), want success on the second", err, calls.Load())
	}
	if want := prom.EncodeWriteRequest(samples); string(body) != string(want) {
		t.Errorf("the engine got %x, want %x", body, want)
	}
}

func TestRemoteWriteRefusalIsNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "out of order sample", http.StatusBadRequest)
	}))
	defer srv.Close()
	w, _ := prom.NewWriter(prom.WriterOptions{URL: srv.URL, Backoff: time.Millisecond})
	err := w.Write(t.Context(), []alerting.Sample{{Name: "m", Value: 1, Time: time.Now()}})
	if fault.ErrorCode(err) != fault.Invalid || calls.Load() != 1 || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("Write refused with 400 = %v after %d calls, want invalid after one", err, calls.Load())
	}
}

func TestRemoteWriteKeepsFailingIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	w, _ := prom.NewWriter(prom.WriterOptions{URL: srv.URL, Backoff: time.Millisecond, Attempts: 3})
	if err := w.Write(t.Context(), []alerting.Sample{{Name: "m", Value: 1, Time: time.Now()}}); fault.ErrorCode(err) != fault.Unavailable {
		t.Errorf("Write to an engine that keeps failing = %v, want unavailable", err)
	}
}
