package governor

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Markdown renders a machine as a Markdown page: a Mermaid stateDiagram-v2
// and the transition table, both generated from the machine's data.
func Markdown(m *Machine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", m.Domain)
	b.WriteString("<!-- Generated from the transition table in shared/machines; do not edit. Run `make docs` to refresh. -->\n\n")
	states := make([]string, len(m.States))
	for i, s := range m.States {
		states[i] = "`" + string(s) + "`"
	}
	fmt.Fprintf(&b, "States: %s.\n\n", strings.Join(states, ", "))
	if len(m.Terminal) > 0 {
		ts := make([]string, len(m.Terminal))
		for i, s := range m.Terminal {
			ts[i] = "`" + string(s) + "`"
		}
		fmt.Fprintf(&b, "Terminal: %s.\n\n", strings.Join(ts, ", "))
	}
	if len(m.Timers) > 0 {
		names := make([]string, 0, len(m.Timers))
		for n := range m.Timers {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			names[i] = fmt.Sprintf("`%s` %s", n, HumanDuration(m.Timers[n]))
		}
		fmt.Fprintf(&b, "Timers (defaults, configurable as `%s.<timer>`): %s.\n\n", m.Domain, strings.Join(names, ", "))
	}
	b.WriteString("```mermaid\n")
	b.WriteString(Mermaid(m))
	b.WriteString("```\n\n")
	b.WriteString("| from | event | to | guards and effects |\n|---|---|---|---|\n")
	for _, t := range m.Transitions {
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", fromCell(&t), t.On, toCell(&t), effectsCell(m, &t))
	}
	if m.actuates() {
		fmt.Fprintf(&b, "| every existing state | `%s` {action_id, kind, reason, attempts} | same | an actuator reports that an action (%s) failed for good; data and timers unchanged, the receipt records it |\n",
			ActuationFailed, "`"+strings.Join(m.Actions(), "`, `")+"`")
	}
	b.WriteString(ReasonsMarkdown(m))
	b.WriteString(SendersMarkdown(m))
	return b.String()
}

// ReasonsMarkdown renders the reason codes m may reject with: its own,
// then those every machine may give.
func ReasonsMarkdown(m *Machine) string {
	var b strings.Builder
	b.WriteString("\n## Rejection reasons\n\n")
	b.WriteString("A rejected receipt's `reason` is one of these codes, then `: ` and a detail when there is one.\n\n")
	b.WriteString("| code | when |\n|---|---|\n")
	for _, r := range append(slices.Clone(m.Reasons), EngineReasons...) {
		fmt.Fprintf(&b, "| `%s` | %s |\n", r.Code, strings.ReplaceAll(r.Doc, "|", `\|`))
	}
	return b.String()
}

// SendersMarkdown renders the sender rules of m: for every event, the
// sender classes that may send it. Any other sender's event is
// dead-lettered.
func SendersMarkdown(m *Machine) string {
	var b strings.Builder
	b.WriteString("\n## Who may send each event\n\n")
	b.WriteString("Events from `external` and `marketplace` senders come by the domain topic; events from `governor`, `scheduler`, `monitor` and `actuator` by the internal topic, which only Autonomics publishes to. Any other sender's event is dead-lettered with the reason.\n\n")
	b.WriteString("| event |")
	for _, s := range Senders {
		fmt.Fprintf(&b, " %s |", s)
	}
	b.WriteString("\n|---|")
	for range Senders {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, name := range m.Events() {
		fmt.Fprintf(&b, "| `%s` |", name)
		for _, s := range Senders {
			if m.May(s, name) {
				b.WriteString(" ✓ |")
			} else {
				b.WriteString(" |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func fromCell(t *Transition) string {
	var parts []string
	for _, s := range t.From {
		if s == StateNone {
			parts = append(parts, "—")
		} else {
			parts = append(parts, "`"+string(s)+"`")
		}
	}
	if t.Any {
		parts = append(parts, "any")
	}
	return strings.Join(parts, ", ")
}

func toCell(t *Transition) string {
	parts := make([]string, 0, 1+len(t.Alt))
	for _, s := range t.Targets() {
		parts = append(parts, "`"+string(s)+"`")
	}
	return strings.Join(parts, " or ")
}

func effectsCell(m *Machine, t *Transition) string {
	var parts []string
	for _, n := range t.Arm {
		parts = append(parts, fmt.Sprintf("timer `%s` %s", n, HumanDuration(m.Timers[n])))
	}
	for _, n := range t.Cancel {
		parts = append(parts, fmt.Sprintf("cancel timer `%s`", n))
	}
	for _, c := range t.Cascade {
		s := fmt.Sprintf("→ %s.`%s`", c.Domain, c.Event)
		if c.Subject != "" {
			s += fmt.Sprintf(" (`%s`)", c.Subject)
		}
		parts = append(parts, s)
	}
	for _, a := range t.Actuate {
		parts = append(parts, fmt.Sprintf("actuate `%s`", a))
	}
	for _, r := range t.Emits {
		parts = append(parts, "may "+r.String()+" "+string(r.Example))
	}
	if t.Note != "" {
		parts = append(parts, strings.ReplaceAll(t.Note, "|", `\|`))
	}
	return strings.Join(parts, "; ")
}

// Mermaid renders a machine as a Mermaid stateDiagram-v2. Rows for "any"
// state are drawn from every non-terminal state.
func Mermaid(m *Machine) string {
	type edge struct{ from, to string }
	labels := map[edge][]string{}
	var order []edge
	node := func(s State) string {
		if s == StateNone {
			return "[*]"
		}
		return string(s)
	}
	for _, t := range m.Transitions {
		from := t.From
		if t.Any {
			for _, s := range m.States {
				if !m.IsTerminal(s) {
					from = append(from, s)
				}
			}
		}
		for _, f := range from {
			for _, to := range t.Targets() {
				e := edge{node(f), node(to)}
				if _, ok := labels[e]; !ok {
					order = append(order, e)
				}
				if !containsString(labels[e], string(t.On)) {
					labels[e] = append(labels[e], string(t.On))
				}
			}
		}
	}
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	for _, e := range order {
		fmt.Fprintf(&b, "    %s --> %s: %s\n", e.from, e.to, strings.Join(labels[e], ", "))
	}
	for _, s := range m.Terminal {
		fmt.Fprintf(&b, "    %s --> [*]\n", s)
	}
	return b.String()
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// HumanDuration renders d in the largest whole unit: 7d, 48h, 30m, 20s.
func HumanDuration(d time.Duration) string {
	day := 24 * time.Hour
	switch {
	case d >= day && d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
