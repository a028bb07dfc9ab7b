package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
)

// monitor returns the monitor or a NotFound error.
func (c *Console) monitor(op string) (Monitor, error) {
	if c.o.Monitor == nil {
		return nil, fault.Wrap(fault.NotFound, op, errNoMonitor)
	}
	return c.o.Monitor, nil
}

// Alerts lists the monitor's alerts, of one state unless state is "".
func (c *Console) Alerts(ctx context.Context, state string) ([]Alert, error) {
	const op = "console.Alerts"
	switch alerting.State(state) {
	case "", alerting.Pending, alerting.Firing, alerting.Resolved:
	default:
		return nil, fault.Errorf(fault.Invalid, op, "state %s: want pending, firing or resolved", quote(state))
	}
	m, err := c.monitor(op)
	if err != nil {
		return nil, err
	}
	as, err := m.Alerts(ctx, state)
	if as == nil && err == nil {
		as = []Alert{}
	}
	return as, err
}

// Silences lists the monitor's silences.
func (c *Console) Silences(ctx context.Context) ([]Silence, error) {
	m, err := c.monitor("console.Silences")
	if err != nil {
		return nil, err
	}
	ss, err := m.Silences(ctx)
	if ss == nil && err == nil {
		ss = []Silence{}
	}
	return ss, err
}

// CreateSilence saves a silence on behalf of by, with a random id
// ("console-<hex>") when s.ID is empty. The monitor validates it.
func (c *Console) CreateSilence(ctx context.Context, by string, s SilenceSpec) (Silence, error) {
	const op = "console.CreateSilence"
	m, err := c.monitor(op)
	if err != nil {
		return Silence{}, err
	}
	if s.ID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		s.ID = "console-" + hex.EncodeToString(b[:])
	}
	if err := alerting.ValidName("silence id", s.ID); err != nil {
		return Silence{}, err
	}
	if len(s.Matchers) == 0 {
		return Silence{}, fault.Errorf(fault.Invalid, op, "a silence needs at least one matcher")
	}
	out, err := m.PutSilence(ctx, s)
	if err != nil {
		return Silence{}, err
	}
	c.o.Logger.InfoContext(ctx, "silence created from the console", "silence", s.ID, "by", orLocal(by))
	return out, nil
}

// ExpireSilence expires the silence id on behalf of by.
func (c *Console) ExpireSilence(ctx context.Context, by, id string) error {
	const op = "console.ExpireSilence"
	m, err := c.monitor(op)
	if err != nil {
		return err
	}
	if err := alerting.ValidName("silence id", id); err != nil {
		return err
	}
	if err := m.ExpireSilence(ctx, id); err != nil {
		return err
	}
	c.o.Logger.InfoContext(ctx, "silence expired from the console", "silence", id, "by", orLocal(by))
	return nil
}

func orLocal(by string) string {
	if by == "" {
		return "local"
	}
	return by
}
