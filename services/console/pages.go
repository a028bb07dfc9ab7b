package main

import (
	"context"
	"net/http"
	"time"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/console/web"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
)

// mountPages serves the pages at / on the same origin as the JSON API,
// so that the browser verifies with the API's checkpoint and proofs.
func mountPages(mux *http.ServeMux, c *console.Console) error {
	w, err := web.New(web.Options{Data: pageData{c}})
	if err != nil {
		return err
	}
	mux.Handle("/", w.Handler())
	return nil
}

// pageData gives the pages the console's data in process.
type pageData struct{ c *console.Console }

var _ web.Data = pageData{}

func (p pageData) Tenants(ctx context.Context, q web.TenantQuery) ([]string, string, error) {
	page, err := p.c.Tenants(ctx, q.Prefix, q.After, q.Limit)
	return page.Tenants, page.Next, err
}

func (p pageData) Governors(ctx context.Context, tenant string) ([]governor.Instance, error) {
	gs, err := p.c.Governors(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]governor.Instance, len(gs))
	for i, g := range gs {
		in := governor.Instance{
			Key:   governor.Key{Tenant: tenant, Domain: g.Domain, Subject: g.Subject},
			State: g.State, Version: g.Version, LastHash: g.LastHash, Data: g.Data, UpdatedAt: g.UpdatedAt,
		}
		if len(g.Timers) > 0 {
			in.Timers = make(map[string]governor.Timer, len(g.Timers))
			for _, t := range g.Timers {
				in.Timers[t.Name] = t
			}
		}
		out[i] = in
	}
	return out, nil
}

func (p pageData) Timeline(ctx context.Context, q web.TimelineQuery) ([]receipt.Receipt, string, error) {
	page, err := p.c.Timeline(ctx, console.TimelineQuery{
		Tenant: q.Tenant, Domain: q.Domain, Since: q.Since, Until: q.Until,
		Limit: q.Limit, PageToken: q.PageToken, Newest: true,
	})
	return page.Receipts, page.NextPageToken, err
}

func (p pageData) Cascade(ctx context.Context, tenant, correlationID string, limit int) ([]receipt.Receipt, error) {
	c, err := p.c.Cascade(ctx, tenant, correlationID)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(c.Receipts) > limit {
		c.Receipts = c.Receipts[:limit]
	}
	return c.Receipts, nil
}

func (p pageData) Alerts(ctx context.Context) ([]web.Alert, error) {
	as, err := p.c.Alerts(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]web.Alert, len(as))
	for i, a := range as {
		out[i] = web.Alert{
			Fingerprint: a.Fingerprint, Policy: a.Policy, Severity: a.Severity, Labels: a.Labels,
			State: a.State, Reason: a.Reason, Value: a.Value, ActiveAt: parseTime(a.ActiveAt), Silenced: a.Silenced,
		}
	}
	return out, nil
}

func (p pageData) Silences(ctx context.Context) ([]web.Silence, error) {
	ss, err := p.c.Silences(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]web.Silence, len(ss))
	for i, s := range ss {
		out[i] = webSilence(s)
	}
	return out, nil
}

func (p pageData) CreateSilence(ctx context.Context, s web.NewSilence, by string) (web.Silence, error) {
	got, err := p.c.CreateSilence(ctx, by, console.SilenceSpec{
		Matchers: s.Matchers, EndsAt: s.EndsAt.UTC().Format(time.RFC3339), Comment: s.Comment,
	})
	return webSilence(got), err
}

func (p pageData) ExpireSilence(ctx context.Context, id, by string) error {
	return p.c.ExpireSilence(ctx, by, id)
}

func (p pageData) DeadLetters(ctx context.Context, after string, limit int) ([]web.DeadLetter, string, error) {
	page, err := p.c.DeadLetters(ctx, after, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]web.DeadLetter, len(page.DeadLetters))
	for i, d := range page.DeadLetters {
		out[i] = web.DeadLetter{
			ID: d.ID, ReceivedAt: d.ReceivedAt, Reason: d.Reason, Code: d.Code, Domain: d.Domain,
			Type: d.Type, Tenant: d.Tenant, Attributes: d.Attributes, Data: d.Data,
			Replayable: d.Replayable, NotReplayable: d.Refusal,
		}
	}
	return out, page.Next, nil
}

func (p pageData) ReplayDeadLetter(ctx context.Context, id, by string) (string, error) {
	return p.c.Replay(ctx, id, by)
}

func (p pageData) Checkpoints(ctx context.Context, limit int) ([]web.Checkpoint, error) {
	cs, err := p.c.Checkpoints(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]web.Checkpoint, len(cs))
	for i, c := range cs {
		out[i] = web.Checkpoint{Size: c.Size, Root: c.Root, Time: c.Time}
	}
	return out, nil
}

func webSilence(s console.Silence) web.Silence {
	return web.Silence{
		ID: s.ID, Matchers: s.Matchers, StartsAt: parseTime(s.StartsAt), EndsAt: parseTime(s.EndsAt),
		Comment: s.Comment, CreatedAt: parseTime(s.CreatedAt), Active: s.Active,
	}
}

// parseTime reads the monitor's RFC 3339 times; the zero time for none.
func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
