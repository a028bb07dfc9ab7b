package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// Bounds of tail.
const (
	// maxStreamLine bounds one line of the event stream.
	maxStreamLine = 1 << 20
	// maxStreamEvent bounds the data of one stream event.
	maxStreamEvent = 4 << 20
	// maxReconnectWait bounds the wait before reconnecting.
	maxReconnectWait = 30 * time.Second
)

// streamEvent is one server-sent event of /api/v1/stream.
type streamEvent struct {
	ID    string
	Event string
	Data  []byte
}

// tailLine is what tail -json prints for each event: its kind ("receipt",
// "action" or the stream's own event name) and its data.
type tailLine struct {
	Event string          `json:"event"`
	ID    string          `json:"id,omitempty"`
	Data  json.RawMessage `json:"data"`
}

// streamItem is the union of the fields of a receipt and an action that
// tail prints.
type streamItem struct {
	// Receipt fields.
	TenantID  string `json:"tenant_id"`
	Domain    string `json:"domain"`
	Subject   string `json:"subject"`
	Seq       int64  `json:"seq"`
	EventType string `json:"event_type"`
	FromState string `json:"from_state"`
	ToState   string `json:"to_state"`
	Outcome   string `json:"outcome"`
	Reason    string `json:"reason"`
	DecidedAt string `json:"decided_at"`
	Hash      string `json:"hash"`
	// Action fields.
	Kind   string `json:"kind"`
	Type   string `json:"type"`
	Tenant string `json:"tenant"`
	ID     string `json:"id"`
	Time   string `json:"time"`
}

func runTail(ctx context.Context, c *cliCall) error {
	fs := c.flags("tail")
	tenant := fs.String("tenant", "", "only this tenant's receipts and actions (default: all)")
	maxEvents := fs.Int("n", 0, "stop after this many receipts and actions (default: until Ctrl-C)")
	if _, err := c.parse(fs, c.args); err != nil {
		return err
	}
	if *tenant != "" {
		if err := tenantArg(*tenant); err != nil {
			return err
		}
	}
	if *maxEvents < 0 {
		return usagef("-n %d: want 0 (no limit) or more", *maxEvents)
	}
	q := url.Values{}
	if *tenant != "" {
		q.Set("tenant", *tenant)
	}
	t := &tailer{c: c, query: q, max: *maxEvents}
	err := t.run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// tailer follows the stream, reconnecting after transient faults with the
// id of the last event seen, so that the console may resume after it.
type tailer struct {
	c     *cliCall
	query url.Values
	max   int
	seen  int
	last  string
}

func (t *tailer) run(ctx context.Context) error {
	failures := 0
	for {
		progressed, err := t.follow(ctx)
		if ctx.Err() != nil || t.done() {
			return nil
		}
		var ce *consoleError
		var te *tokenError
		if errors.As(err, &ce) && !(ce.Status == http.StatusTooManyRequests || ce.Status/100 == 5) || errors.As(err, &te) {
			return err
		}
		if progressed {
			failures = 0
		}
		failures++
		wait := min(time.Duration(1<<min(failures-1, 5))*time.Second, maxReconnectWait)
		why := "the stream ended"
		if err != nil {
			why = plainError(err)
		}
		fmt.Fprintf(t.c.env.stderr, "autonomicsctl tail: %s; reconnecting in %v\n", why, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(t.c.client.backoffStream(wait)):
		}
	}
}

// backoffStream returns the wait before reconnecting a stream; tests make
// it short.
func (cl *consoleClient) backoffStream(d time.Duration) time.Duration {
	if cl.streamWait != nil {
		return cl.streamWait(d)
	}
	return d
}

func (t *tailer) done() bool { return t.max > 0 && t.seen >= t.max }

// follow reads one connection of the stream until it ends. progressed
// says whether an event arrived.
func (t *tailer) follow(ctx context.Context) (progressed bool, err error) {
	cl := t.c.client
	target := cl.base + "/api/v1/stream"
	if len(t.query) > 0 {
		target += "?" + t.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if t.last != "" {
		req.Header.Set("Last-Event-ID", t.last)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		var te *tokenError
		if errors.As(err, &te) {
			return false, te
		}
		return false, fault.Errorf(fault.Unavailable, "autonomicsctl", "GET %s: %v", target, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return false, cl.errorOf(resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, &consoleError{Status: resp.StatusCode, Code: "not_a_stream", Message: fmt.Sprintf("the console answered %s, not text/event-stream", cell(ct))}
	}
	err = readEvents(resp.Body, func(ev streamEvent) error {
		if ev.ID != "" {
			t.last = ev.ID
		}
		if t.print(ev) {
			progressed = true
			t.seen++
			if t.done() {
				return io.EOF
			}
		}
		return nil
	})
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return progressed, err
}

// print prints one event; it reports whether it was a receipt or an
// action (not a keep-alive or another event of the stream's own).
func (t *tailer) print(ev streamEvent) bool {
	if len(ev.Data) == 0 {
		return false
	}
	var it streamItem
	if json.Unmarshal(ev.Data, &it) != nil {
		fmt.Fprintf(t.c.env.stderr, "autonomicsctl tail: skipped an event %s that is not JSON\n", cell(ev.Event))
		return false
	}
	kind := ev.Event
	switch {
	case kind == "receipt" || kind == "action":
	case (kind == "" || kind == "message") && it.Hash != "" && it.Seq > 0:
		kind = "receipt"
	case (kind == "" || kind == "message") && it.Kind != "":
		kind = "action"
	default:
		return false
	}
	if t.c.json {
		b, _ := json.Marshal(tailLine{Event: kind, ID: ev.ID, Data: json.RawMessage(ev.Data)})
		fmt.Fprintln(t.c.env.stdout, string(b))
		return true
	}
	if kind == "receipt" {
		fmt.Fprintf(t.c.env.stdout, "%s receipt %s/%s/%s #%s %s %s→%s %s%s %s\n",
			cell(it.DecidedAt), cell(it.TenantID), cell(it.Domain), cell(it.Subject), strconv.FormatInt(it.Seq, 10),
			cell(strings.TrimPrefix(it.EventType, "autonomics.")), cell(it.FromState), cell(it.ToState), cell(it.Outcome),
			reasonSuffix(it.Reason), cell(shortHash(it.Hash)))
		return true
	}
	fmt.Fprintf(t.c.env.stdout, "%s action  %s/%s/%s %s %s\n",
		cell(firstNonEmpty(it.Time, it.DecidedAt)), cell(firstNonEmpty(it.Tenant, it.TenantID)), cell(it.Domain), cell(it.Subject),
		cell(firstNonEmpty(it.Kind, it.Type)), cell(it.ID))
	return true
}

// reasonSuffix returns " (reason)" or "".
func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + cell(r) + ")"
}

// readEvents parses a text/event-stream body (the WHATWG server-sent
// events format) and calls fn with each event, until the body ends, fn
// fails or an event exceeds its bounds.
func readEvents(body io.Reader, fn func(streamEvent) error) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxStreamLine)
	var ev streamEvent
	var data []byte
	hasData := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if hasData {
				ev.Data = data
				if err := fn(ev); err != nil {
					return err
				}
			}
			ev, data, hasData = streamEvent{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Event = value
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
			if len(data) > maxStreamEvent {
				return fmt.Errorf("an event of the stream exceeds %d bytes", maxStreamEvent)
			}
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID = value
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the stream: %v", err)
	}
	return nil
}
