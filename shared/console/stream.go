package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// streamPages bounds the pages one poll of a stream reads.
const streamPages = 10

// keepAlive is how often an idle stream sends a comment, so that proxies
// keep it open.
const keepAlive = 15 * time.Second

// StreamAction is an action of a streamed receipt: an event it emitted
// or a command for an actuator.
type StreamAction struct {
	Receipt string `json:"receipt"`
	receipt.Action
}

// apiStream serves GET /api/v1/stream?tenant=T[&since=RFC3339] as
// text/event-stream: every receipt of the tenant decided at or after
// since (or the Last-Event-ID the client sends back; the connection time
// by default), oldest first, as an "receipt" event whose id is its
// decided_at, followed by one "action" event per action it recorded. A
// receipt may be sent twice across a reconnection at the same instant;
// clients deduplicate by hash. The number of streams and their lifetime
// are bounded; a client reconnects when one ends.
func (c *Console) apiStream(w http.ResponseWriter, r *http.Request) {
	const op = "console.stream"
	tenant := r.URL.Query().Get("tenant")
	if err := event.ValidTenant(tenant); err != nil {
		httpjson.Error(w, err)
		return
	}
	since, err := timeParam(r, "since")
	if err != nil {
		httpjson.Error(w, err)
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		t, err := time.Parse(time.RFC3339Nano, id)
		if err != nil {
			httpjson.Error(w, fault.Errorf(fault.Invalid, op, "Last-Event-ID %s: want the id of a streamed receipt", quote(id)))
			return
		}
		since = t.UTC()
	}
	if since.IsZero() {
		since = c.o.Now().UTC()
	}
	if c.streams.Add(1) > int64(c.lim.Streams) {
		c.streams.Add(-1)
		w.Header().Set("Retry-After", "5")
		httpjson.Error(w, fault.Errorf(fault.Unavailable, op, "too many streams (limit %d); retry later", c.lim.Streams))
		return
	}
	defer c.streams.Add(-1)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, "retry: %d\n\n", (5 * time.Second).Milliseconds())
	_ = rc.Flush()

	ctx, cancel := context.WithTimeout(r.Context(), c.lim.StreamLifetime)
	defer cancel()
	s := &streamer{c: c, tenant: tenant, from: since, sent: map[string]bool{}}
	tick := time.NewTicker(c.lim.StreamInterval)
	defer tick.Stop()
	idle := time.Now()
	for {
		n, err := s.poll(ctx, w)
		if err != nil {
			if ctx.Err() == nil {
				c.o.Logger.WarnContext(ctx, "stream ended on a store error", "tenant", tenant, "error", err.Error())
				_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", mustJSON(map[string]string{"code": string(fault.ErrorCode(err)), "message": "the store failed; reconnect"}))
				_ = rc.Flush()
			}
			return
		}
		if n > 0 {
			idle = time.Now()
		} else if time.Since(idle) >= keepAlive {
			_, _ = fmt.Fprint(w, ": keep-alive\n\n")
			idle = time.Now()
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// streamer follows one tenant's receipts.
type streamer struct {
	c      *Console
	tenant string
	// from is the decided_at of the last receipt sent; sent holds the
	// hashes sent at that instant (from is inclusive).
	from time.Time
	sent map[string]bool
}

// poll writes the receipts decided since the last one sent; it returns
// how many it wrote.
func (s *streamer) poll(ctx context.Context, w http.ResponseWriter) (int, error) {
	q := store.ReceiptQuery{Tenant: s.tenant, From: s.from, PageSize: s.c.lim.MaxPageSize}
	n := 0
	for range streamPages {
		rs, next, err := s.c.o.Store.Receipts(ctx, q)
		if err != nil {
			return n, err
		}
		for i := range rs {
			r := &rs[i]
			if s.sent[r.Hash] {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, r.DecidedAt)
			if err != nil {
				continue
			}
			if !at.Equal(s.from) {
				s.from = at
				clear(s.sent)
			}
			s.sent[r.Hash] = true
			if err := writeEvent(w, "receipt", r.DecidedAt, r); err != nil {
				return n, err
			}
			for _, a := range r.Actions {
				if err := writeEvent(w, "action", "", StreamAction{Receipt: r.Hash, Action: a}); err != nil {
					return n, err
				}
			}
			n++
		}
		if next == "" {
			break
		}
		q.PageToken = next
	}
	return n, nil
}

// writeEvent writes one server-sent event.
func writeEvent(w http.ResponseWriter, name, id string, v any) error {
	var b bytes.Buffer
	b.WriteString("event: " + name + "\n")
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("data: ")
	b.Write(mustJSON(v))
	b.WriteString("\n\n")
	_, err := w.Write(b.Bytes())
	return err
}

// mustJSON is the one-line JSON of v, HTML left unescaped so that a
// receipt keeps its canonical bytes.
func mustJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimRight(b.Bytes(), "\n")
}
