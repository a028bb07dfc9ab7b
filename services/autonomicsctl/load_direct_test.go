package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

func TestDirectPushBodyIsAProductionPushBody(t *testing.T) {
	cfg := stackConfig{Project: "demo-autonomics", TopicPrefix: "x-"}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 8 {
		e := loadPlan(i*3, 3)
		e.Tenant = directTenantPrefix + e.Tenant
		path, body, err := directPushBody(cfg, "ev-1", e, now)
		if err != nil {
			t.Fatalf("directPushBody(%+v): %v", e, err)
		}
		if want := "/" + entryPoints[e.Domain]; path != want {
			t.Errorf("path = %q, want %q", path, want)
		}
		m, err := event.ParsePush(body)
		if err != nil {
			t.Fatalf("ParsePush(%s): %v", body, err)
		}
		if want := stackPushSubscription(t, cfg, e.Domain); m.Subscription != want {
			t.Errorf("subscription = %q, want %q, the push subscription the stack creates on the domain topic", m.Subscription, want)
		}
		if m.OrderingKey != e.Tenant || m.ID != "ev-1" || !m.PublishTime.Equal(now) {
			t.Errorf("message = key %q id %q time %v, want %q ev-1 %v", m.OrderingKey, m.ID, m.PublishTime, e.Tenant, now)
		}
		ev, err := event.Decode(m)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if ev.ID != "ev-1" || ev.Tenant != e.Tenant || ev.Domain != e.Domain || ev.Name != e.Name || ev.Subject != e.Subject {
			t.Errorf("decoded %+v, want the event %+v", ev, e)
		}
	}
}

// stackPushSubscription returns the full name of the push subscription the
// stack creates on domain's topic.
func stackPushSubscription(t *testing.T, cfg stackConfig, d governor.Domain) string {
	t.Helper()
	for _, sub := range cfg.pushSubscriptions() {
		if sub.Topic == cfg.names().Domain(d) {
			return "projects/" + cfg.Project + "/subscriptions/" + sub.Name
		}
	}
	t.Fatalf("the stack has no push subscription on %s", cfg.names().Domain(d))
	return ""
}

// countingServer answers the first failures requests with status, then
// 200, and counts the requests.
func countingServer(t *testing.T, failures int, status int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if int(n.Add(1)) <= failures {
			http.Error(w, `{"error":{"code":"unavailable"}}`, status)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func fastPoster(base string) *directPoster {
	p := newDirectPoster(base, 4)
	p.minBackoff, p.maxBackoff = time.Millisecond, 4*time.Millisecond
	return p
}

func TestDirectPush503ThenSuccess(t *testing.T) {
	srv, n := countingServer(t, 2, http.StatusServiceUnavailable)
	p := fastPoster(srv.URL)
	if err := p.post(context.Background(), "/Billing", []byte(`{}`)); err != nil {
		t.Fatalf("post = %v, want success after the redeliveries", err)
	}
	if n.Load() != 3 || p.retries.Load() != 2 {
		t.Errorf("requests %d, retries %d, want 3 and 2", n.Load(), p.retries.Load())
	}
}

func TestDirectPushClientErrorIsRedelivered(t *testing.T) {
	// Pub/Sub push takes any answer but a 2xx as a negative
	// acknowledgement, a 4xx too.
	srv, n := countingServer(t, 1, http.StatusBadRequest)
	p := fastPoster(srv.URL)
	if err := p.post(context.Background(), "/Billing", []byte(`{}`)); err != nil {
		t.Fatalf("post = %v, want success on the redelivery", err)
	}
	if n.Load() != 2 {
		t.Errorf("requests %d, want 2", n.Load())
	}
}

func TestDirectPushOutageEndsWithTheContext(t *testing.T) {
	srv, _ := countingServer(t, 1<<30, http.StatusServiceUnavailable)
	p := fastPoster(srv.URL)
	// Long enough for a busy machine to answer at least once; the
	// deadline may fall during a request or between two.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := p.post(ctx, "/Billing", []byte(`{}`))
	if !errors.Is(err, context.DeadlineExceeded) || fault.ErrorCode(err) != fault.Unavailable {
		t.Errorf("post during an outage = %v, want the deadline joined with the Unavailable answer", err)
	}
}

func TestDirectPushHugeAnswerIsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, strings.Repeat("x", 4*maxResponseBytes))
	}))
	defer srv.Close()
	p := fastPoster(srv.URL)
	err := p.once(context.Background(), "/Billing", []byte(`{}`))
	if err == nil || len(err.Error()) > maxResponseBytes+256 {
		t.Errorf("once against a huge answer = error of %d bytes, want an error bounded by %d", len(errString(err)), maxResponseBytes)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestLoadMode(t *testing.T) {
	tests := []struct {
		args               []string
		wantDirect, wantEm bool
		wantErr            bool
	}{
		{[]string{"load"}, true, true, false},
		{[]string{"load", "-mode", "direct"}, true, false, false},
		{[]string{"load", "-mode", "emulator"}, false, true, false},
		{[]string{"load", "-mode", "both"}, true, true, false},
		{[]string{"load", "-mode", "pull"}, false, false, true},
		{[]string{"load", "-mode", ""}, false, false, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parseArgs(tt.args, func(string) string { return "" }, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseArgs(%q) error = %v, want error %v", tt.args, err, tt.wantErr)
			}
			if err != nil {
				if fault.ErrorCode(err) != fault.Invalid {
					t.Errorf("parseArgs(%q) = %v, want Invalid", tt.args, err)
				}
				return
			}
			if o.load.direct() != tt.wantDirect || o.load.emulator() != tt.wantEm {
				t.Errorf("mode %q: direct %v emulator %v, want %v %v", o.load.Mode, o.load.direct(), o.load.emulator(), tt.wantDirect, tt.wantEm)
			}
		})
	}
}
