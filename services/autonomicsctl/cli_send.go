package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
)

// fixtureFiles are the named event fixtures of send -fixture, one JSON
// file per name.
//
//go:embed fixtures/*.json
var fixtureFiles embed.FS

// fixture is a named story of one or several events, like stripe
// trigger's: each event's subject may be "{subject}", replaced by -subject
// or the fixture's default subject, which may be "{month}", the current
// month (YYYY-MM, UTC: the billing governor's period).
type fixture struct {
	Name        string         `json:"-"`
	Description string         `json:"description"`
	Subject     string         `json:"subject"`
	Events      []fixtureEvent `json:"events"`
}

// fixtureEvent is one event of a fixture.
type fixtureEvent struct {
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Placeholders of the fixtures.
const (
	subjectPlaceholder = "{subject}"
	monthPlaceholder   = "{month}"
)

// maxEventData bounds the data of one event sent.
const maxEventData = 64 << 10

// loadFixtures returns every fixture by name.
func loadFixtures() (map[string]fixture, error) {
	entries, err := fixtureFiles.ReadDir("fixtures")
	if err != nil {
		return nil, err
	}
	out := map[string]fixture{}
	for _, e := range entries {
		b, err := fixtureFiles.ReadFile(path.Join("fixtures", e.Name()))
		if err != nil {
			return nil, err
		}
		var f fixture
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("fixture %s: %v", e.Name(), err)
		}
		f.Name = strings.TrimSuffix(e.Name(), ".json")
		out[f.Name] = f
	}
	return out, nil
}

// expand returns the events of f for subject ("" for the fixture's
// default) at now.
func (f fixture) expand(subject string, now time.Time) []fixtureEvent {
	if subject == "" {
		subject = strings.ReplaceAll(f.Subject, monthPlaceholder, now.UTC().Format("2006-01"))
	}
	out := make([]fixtureEvent, len(f.Events))
	for i, e := range f.Events {
		e.Subject = strings.ReplaceAll(e.Subject, subjectPlaceholder, subject)
		out[i] = e
	}
	return out
}

// eventType checks an event type given on the command line and returns it
// in full: "subscription.activated" stands for
// "autonomics.subscription.activated".
func eventType(t string) (string, error) {
	full := t
	if !strings.HasPrefix(full, "autonomics.") {
		full = "autonomics." + full
	}
	d, name, ok := strings.Cut(strings.TrimPrefix(full, "autonomics."), ".")
	if !ok || !slices.Contains(governor.Domains, governor.Domain(d)) {
		return "", usagef("event type %q: want autonomics.<domain>.<event> (or <domain>.<event>) of one of the eight domains", t)
	}
	if name == "" || len(name) > 128 || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.')
	}) {
		return "", usagef("event type %q: the event name must match [a-z0-9_.]+", t)
	}
	return full, nil
}

// sendBody is the body of POST /api/v1/events.
type sendBody struct {
	Type    string          `json:"type"`
	Tenant  string          `json:"tenant"`
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
}

// sentEvent is what send reports for one event.
type sentEvent struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Tenant  string `json:"tenant"`
	Subject string `json:"subject"`
}

func runSend(ctx context.Context, c *cliCall) error {
	fs := c.flags("send")
	tenant := fs.String("tenant", "", "tenant the event is for (required)")
	subject := fs.String("subject", "", "instance subject (default: \"default\", or the fixture's)")
	data := fs.String("data", "", "the event's data, a JSON object (default {})")
	fixtureName := fs.String("fixture", "", "send the events of this named fixture instead of TYPE (see -list)")
	list := fs.Bool("list", false, "list the fixtures")
	pos, err := parseInterleaved(fs, c.args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	fixtures, err := loadFixtures()
	if err != nil {
		return err
	}
	if *list {
		return c.listFixtures(fixtures)
	}
	var events []fixtureEvent
	switch {
	case *fixtureName != "" && len(pos) > 0:
		return usagef("give TYPE or -fixture, not both")
	case *fixtureName != "" && *data != "":
		return usagef("-data does not go with -fixture: a fixture carries its own data")
	case *fixtureName != "":
		f, ok := fixtures[*fixtureName]
		if !ok {
			return usagef("no fixture %q; send -list shows them", *fixtureName)
		}
		events = f.expand(*subject, c.env.now())
	case len(pos) == 1:
		t, err := eventType(pos[0])
		if err != nil {
			return err
		}
		events = []fixtureEvent{{Type: t, Subject: firstNonEmpty(*subject, governor.DefaultSubject), Data: json.RawMessage(*data)}}
	case len(pos) == 0:
		return usagef("missing TYPE (or -fixture NAME)")
	default:
		return usagef("unexpected arguments %q", pos[1:])
	}
	if *tenant == "" {
		return usagef("-tenant is required")
	}
	if err := tenantArg(*tenant); err != nil {
		return err
	}
	for i := range events {
		e := &events[i]
		if err := event.ValidSubject(e.Subject); err != nil {
			return usagef("%s", fault.ErrorMessage(err))
		}
		if e.Data, err = dataArg(e.Data); err != nil {
			return err
		}
	}
	if c.client, err = c.open(); err != nil {
		return err
	}
	sent := make([]sentEvent, 0, len(events))
	for _, e := range events {
		var ans struct {
			ID string `json:"id"`
		}
		// Not retried once it may have reached the console: the console
		// names the event, so a second publication would be a second event.
		if _, err := c.client.postJSON(ctx, "/api/v1/events", sendBody{Type: e.Type, Tenant: *tenant, Subject: e.Subject, Data: e.Data}, &ans, false); err != nil {
			if len(sent) > 0 {
				c.printSent(sent)
				fmt.Fprintf(c.env.stderr, "autonomicsctl send: %d of %d events sent before the failure\n", len(sent), len(events))
			}
			return err
		}
		sent = append(sent, sentEvent{ID: ans.ID, Type: e.Type, Tenant: *tenant, Subject: e.Subject})
	}
	return c.printSent(sent)
}

// dataArg checks event data: a JSON object of at most maxEventData bytes;
// none is {}.
func dataArg(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if len(raw) > maxEventData {
		return nil, usagef("-data: %d bytes, at most %d", len(raw), maxEventData)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, usagef("-data %s: want a JSON object", cellN(string(raw), 60))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, usagef("-data: %v", err)
	}
	return buf.Bytes(), nil
}

func (c *cliCall) printSent(sent []sentEvent) error {
	if c.json {
		return c.printJSON(map[string][]sentEvent{"events": sent})
	}
	w := c.table()
	row(w, "ID", "TYPE", "TENANT", "SUBJECT")
	for _, s := range sent {
		row(w, s.ID, s.Type, s.Tenant, s.Subject)
	}
	return w.Flush()
}

func (c *cliCall) listFixtures(fixtures map[string]fixture) error {
	names := make([]string, 0, len(fixtures))
	for n := range fixtures {
		names = append(names, n)
	}
	sort.Strings(names)
	if c.json {
		out := make([]fixture, 0, len(names))
		for _, n := range names {
			out = append(out, fixtures[n])
		}
		type named struct {
			Name string `json:"name"`
			fixture
		}
		list := make([]named, len(out))
		for i, f := range out {
			list[i] = named{Name: f.Name, fixture: f}
		}
		return c.printJSON(map[string]any{"fixtures": list})
	}
	w := c.table()
	row(w, "FIXTURE", "SUBJECT", "EVENTS", "DESCRIPTION")
	for _, n := range names {
		f := fixtures[n]
		types := make([]string, len(f.Events))
		for i, e := range f.Events {
			types[i] = strings.TrimPrefix(e.Type, "autonomics.")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", cell(n), cell(f.Subject), cellN(strings.Join(types, ","), 200), f.Description)
	}
	return w.Flush()
}
