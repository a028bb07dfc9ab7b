package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestTailFollowsAndResumes: tail prints one line per receipt and action,
// ignores keep-alives and other events, and after the stream drops
// reconnects with the last event id.
func TestTailFollowsAndResumes(t *testing.T) {
	f := newFakeConsole(t)
	r1, _ := json.Marshal(f.receipts["acme"][0])
	r2, _ := json.Marshal(f.receipts["acme"][1])
	var conns atomic.Int32
	var lastIDs []string
	f.mux.HandleFunc("GET /api/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		if r.URL.Query().Get("tenant") != "acme" || r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "bad request", 400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if conns.Add(1) == 1 {
			fmt.Fprintf(w, ": keep-alive\n\nevent: receipt\nid: 1\ndata: %s\n\n", r1)
			fmt.Fprint(w, "event: hello\ndata: {\"tenant\":\"acme\"}\n\n")
			fmt.Fprint(w, "event: action\nid: 2\ndata: {\"kind\":\"tenant.provision\",\"tenant\":\"acme\",\"domain\":\"multi_tenant\",\"subject\":\"default\",\"id\":\"act-1\",\"time\":\"2026-11-20T12:00:00Z\"}\n\n")
			return // the connection drops
		}
		fmt.Fprintf(w, "id: 3\ndata: %s\n\n", r2)
	})
	code, out, errs := f.run(t, "tail", "-tenant", "acme", "-n", "3")
	if code != 0 {
		t.Fatalf("tail = %d %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("tail printed %d lines, want 3:\n%s", len(lines), out)
	}
	for i, want := range []string{"receipt acme/subscription/ent-1 #1 subscription.touched none→active accepted", "action  acme/multi_tenant/default tenant.provision act-1", "receipt acme/subscription/ent-1 #2"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i, lines[i], want)
		}
	}
	if len(lastIDs) != 2 || lastIDs[0] != "" || lastIDs[1] != "2" {
		t.Errorf("Last-Event-ID of the connections %q, want \"\" then 2", lastIDs)
	}
	if !strings.Contains(errs, "reconnecting") {
		t.Errorf("stderr does not say it reconnects: %s", errs)
	}
}

// TestTailJSON prints one JSON object per event.
func TestTailJSON(t *testing.T) {
	f := newFakeConsole(t)
	r1, _ := json.Marshal(f.receipts["acme"][0])
	f.mux.HandleFunc("GET /api/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: receipt\nid: 9\ndata: %s\n\n", r1)
	})
	code, out, errs := f.run(t, "tail", "-n", "1", "-json")
	var line tailLine
	if err := json.Unmarshal([]byte(out), &line); code != 0 || err != nil || line.Event != "receipt" || line.ID != "9" {
		t.Fatalf("tail -json = %d %v %q %s", code, err, out, errs)
	}
}

// TestTailNotFoundIsNotRetried: a console without the stream answers 404:
// exit 3 at once.
func TestTailNotFoundIsNotRetried(t *testing.T) {
	f := newFakeConsole(t)
	code, _, _ := f.run(t, "tail")
	n := 0
	for _, r := range f.requests {
		if strings.HasPrefix(r, "GET /api/v1/stream") {
			n++
		}
	}
	if code != exitNotFound || n != 1 {
		t.Errorf("tail against no stream = %d after %d requests, want 3 after 1", code, n)
	}
}

// TestTailRefusesNonStream: an answer that is not text/event-stream (a
// login page of a proxy) is an error, not silence.
func TestTailRefusesNonStream(t *testing.T) {
	f := newFakeConsole(t)
	f.mux.HandleFunc("GET /api/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>sign in</html>")
	})
	code, _, errs := f.run(t, "tail")
	if code != exitFailure || !strings.Contains(errs, "not text/event-stream") {
		t.Errorf("tail = %d %s", code, errs)
	}
}

// TestOversizedStreamEventIsRefused: the stream parser bounds what it
// holds.
func TestOversizedStreamEventIsRefused(t *testing.T) {
	line := "data: " + strings.Repeat("x", 512<<10) + "\n"
	body := strings.Repeat(line, 10) + "\n"
	err := readEvents(strings.NewReader(body), func(streamEvent) error {
		t.Error("an oversized event was delivered")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("readEvents = %v", err)
	}
	err = readEvents(strings.NewReader("data: "+strings.Repeat("y", 2<<20)+"\n\n"), func(streamEvent) error { return nil })
	if err == nil {
		t.Error("a line over the bound was read")
	}
}

// TestReadEventsMultiline joins data lines and keeps event names and ids.
func TestReadEventsMultiline(t *testing.T) {
	var got []streamEvent
	err := readEvents(strings.NewReader("event: a\nid: 7\ndata: {\ndata: }\n\n: c\n\ndata:x\n\n"), func(e streamEvent) error {
		got = append(got, e)
		return nil
	})
	if err != nil || len(got) != 2 || got[0].Event != "a" || got[0].ID != "7" || string(got[0].Data) != "{\n}" || string(got[1].Data) != "x" || got[1].Event != "" {
		t.Errorf("readEvents = %+v %v", got, err)
	}
}
