package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// sse reads server-sent events.
type sse struct{ r *bufio.Reader }

// next returns the next event's name, id and data.
func (s *sse) next(t *testing.T) (name, id, data string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, id, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func openStream(t *testing.T, ctx context.Context, url string) (*http.Response, *sse) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, &sse{bufio.NewReader(resp.Body)}
}

func TestStreamFollowsReceiptsAsTheyAreStored(t *testing.T) {
	f := newFixture(t, func(o *console.Options) { o.Limits.StreamInterval = 5 * time.Millisecond })
	f.apply("acme", governor.CustomerAccount, "requested", "", "")
	f.apply("other", governor.CustomerAccount, "requested", "", "")
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	resp, s := openStream(t, ctx, srv.URL+"/api/v1/stream?tenant=acme&since="+epoch.Format(time.RFC3339))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	name, id, data := s.next(t)
	var r receipt.Receipt
	if err := json.Unmarshal([]byte(data), &r); err != nil || name != "receipt" || r.TenantID != "acme" || r.Seq != 1 || id != r.DecidedAt {
		t.Fatalf("first event = %s %s %s", name, id, data)
	}
	// A decision stored after the stream started arrives next, with its
	// action.
	f.apply("acme", governor.CustomerAccount, "verified", "", "")
	name, _, data = s.next(t)
	if err := json.Unmarshal([]byte(data), &r); err != nil || name != "receipt" || r.Seq != 2 {
		t.Fatalf("second event = %s %s", name, data)
	}
	name, _, data = s.next(t)
	var a console.StreamAction
	if err := json.Unmarshal([]byte(data), &a); err != nil || name != "action" || a.Receipt != r.Hash || a.Type == "" {
		t.Errorf("action event = %s %s", name, data)
	}
}

func TestStreamsAreBoundedInNumberAndLifetime(t *testing.T) {
	f := newFixture(t, func(o *console.Options) {
		o.Limits.Streams = 1
		o.Limits.StreamInterval = 5 * time.Millisecond
		o.Limits.StreamLifetime = 200 * time.Millisecond
	})
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	first, _ := openStream(t, ctx, srv.URL+"/api/v1/stream?tenant=acme")
	if first.StatusCode != 200 {
		t.Fatalf("first stream = %d", first.StatusCode)
	}
	second, _ := openStream(t, ctx, srv.URL+"/api/v1/stream?tenant=acme")
	if second.StatusCode != 503 || second.Header.Get("Retry-After") == "" {
		t.Errorf("second stream = %d, want 503 with Retry-After", second.StatusCode)
	}
	// The first ends at its lifetime: its body reaches EOF.
	if _, err := io.Copy(io.Discard, first.Body); err != nil {
		t.Errorf("first stream: %v, want a clean end", err)
	}
	if code, body := f.do("GET", "/api/v1/stream?tenant=acme", "", "Last-Event-ID", "not-a-time"); code != 400 {
		t.Errorf("bad Last-Event-ID = %d %s, want 400", code, body)
	}
}
