package web

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"

	"github.com/autonomics/autonomics/shared/governor"
)

// Diagram is a machine's state graph laid out once, from its transition
// table, and drawn as SVG with any one state highlighted. Rows that apply
// in any state are drawn from one "any state" node rather than from every
// state, so that the graph stays readable.
type Diagram struct {
	m      *governor.Machine
	nodes  []dnode
	index  map[governor.State]int
	edges  []dedge
	width  float64
	height float64
	desc   string
}

// anyState is the pseudo state that rows applying in any state start from.
const anyState governor.State = "(any state)"

type dnode struct {
	state    governor.State
	label    string
	x, y     float64 // centre
	w, h     float64
	terminal bool
	start    bool
	pseudo   bool
}

type dedge struct {
	from, to int
	events   []string
}

// Layout constants, in SVG user units (pixels at 100%).
const (
	nodeH    = 30.0
	charW    = 7.2
	padX     = 14.0
	colGap   = 90.0
	rowGap   = 26.0
	margin   = 24.0
	startR   = 8.0
	loopRise = 26.0
)

// NewDiagram lays out m's states in columns by their distance from the
// start (states no row reaches come last), in the machine's order within
// a column.
func NewDiagram(m *governor.Machine) *Diagram {
	d := &Diagram{m: m, index: map[governor.State]int{}}
	add := func(s governor.State, label string) int {
		if i, ok := d.index[s]; ok {
			return i
		}
		n := dnode{state: s, label: label, h: nodeH, terminal: m.IsTerminal(s)}
		switch s {
		case governor.StateNone:
			n.start, n.w, n.h = true, 2*startR, 2*startR
		case anyState:
			n.pseudo = true
		}
		if !n.start {
			n.w = float64(len(label))*charW + 2*padX
		}
		d.nodes = append(d.nodes, n)
		d.index[s] = len(d.nodes) - 1
		return len(d.nodes) - 1
	}
	add(governor.StateNone, "start")
	for _, s := range m.States {
		add(s, string(s))
	}
	type key struct{ from, to int }
	at := map[key]int{}
	edge := func(from, to int, ev string) {
		k := key{from, to}
		i, ok := at[k]
		if !ok {
			d.edges = append(d.edges, dedge{from: from, to: to})
			i = len(d.edges) - 1
			at[k] = i
		}
		if !slices.Contains(d.edges[i].events, ev) {
			d.edges[i].events = append(d.edges[i].events, ev)
		}
	}
	for i := range m.Transitions {
		t := &m.Transitions[i]
		from := slices.Clone(t.From)
		if t.Any {
			from = append(from, anyState)
		}
		for _, f := range from {
			fi := add(f, string(f))
			for _, to := range t.Targets() {
				edge(fi, add(to, string(to)), string(t.On))
			}
		}
	}
	d.layout()
	d.desc = d.describe()
	return d
}

// layout assigns columns by breadth-first distance from the start over
// the rows that are not "any state" rows, then positions.
func (d *Diagram) layout() {
	depth := make([]int, len(d.nodes))
	for i := range depth {
		depth[i] = -1
	}
	depth[0] = 0
	queue := []int{0}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, e := range d.edges {
			if e.from == n && depth[e.to] < 0 {
				depth[e.to] = depth[n] + 1
				queue = append(queue, e.to)
			}
		}
	}
	maxDepth := 0
	for _, v := range depth {
		maxDepth = max(maxDepth, v)
	}
	for i := range d.nodes {
		switch {
		case d.nodes[i].pseudo:
			depth[i] = 0
		case depth[i] < 0:
			depth[i] = maxDepth + 1
		}
	}
	cols := 0
	for _, v := range depth {
		cols = max(cols, v+1)
	}
	colW := make([]float64, cols)
	colH := make([]float64, cols)
	for i, n := range d.nodes {
		colW[depth[i]] = max(colW[depth[i]], n.w)
		colH[depth[i]] += n.h + rowGap
	}
	tallest := 0.0
	for _, h := range colH {
		tallest = max(tallest, h-rowGap)
	}
	x := margin
	for c := range cols {
		y := margin + loopRise + (tallest-(colH[c]-rowGap))/2
		for i := range d.nodes {
			if depth[i] != c {
				continue
			}
			n := &d.nodes[i]
			n.x = x + colW[c]/2
			n.y = y + n.h/2
			y += n.h + rowGap
		}
		x += colW[c] + colGap
	}
	d.width = x - colGap + margin
	d.height = tallest + 2*margin + loopRise + 12
}

func (d *Diagram) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "States: %s.", strings.Join(stateNames(d.m.States), ", "))
	if len(d.m.Terminal) > 0 {
		fmt.Fprintf(&b, " Terminal: %s.", strings.Join(stateNames(d.m.Terminal), ", "))
	}
	b.WriteString(" Transitions:")
	for i, e := range d.edges {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s to %s on %s", d.nodes[e.from].label, d.nodes[e.to].label, strings.Join(e.events, ", "))
	}
	b.WriteString(".")
	return b.String()
}

func stateNames(ss []governor.State) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// HasState reports whether s is drawn in the diagram.
func (d *Diagram) HasState(s governor.State) bool {
	_, ok := d.index[s]
	return ok && s != anyState
}

// SVG draws the diagram with state current highlighted (StateNone: the
// start). id prefixes the element ids, so that several diagrams can share
// a page; it must be unique in the page and made of [A-Za-z0-9_-].
func (d *Diagram) SVG(id string, current governor.State) template.HTML {
	var b strings.Builder
	b.Grow(4096 + 400*len(d.edges))
	esc := template.HTMLEscapeString
	title := fmt.Sprintf("%s state diagram", d.m.Domain)
	if d.HasState(current) {
		if current == governor.StateNone {
			title += ", no instance yet"
		} else {
			title += ", current state " + string(current)
		}
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" aria-labelledby="%s-t %s-d" data-domain="%s">`,
		d.width, d.height, d.width, d.height, id, id, esc(string(d.m.Domain)))
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, esc(title), id, esc(d.desc))
	fmt.Fprintf(&b, `<defs><marker id="%s-a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>`, id)
	for _, e := range d.edges {
		d.drawEdge(&b, id, e)
	}
	for _, n := range d.nodes {
		d.drawNode(&b, n, n.state == current)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func (d *Diagram) drawNode(b *strings.Builder, n dnode, current bool) {
	esc := template.HTMLEscapeString
	class := "node"
	switch {
	case n.start:
		class += " start"
	case n.pseudo:
		class += " pseudo"
	case n.terminal:
		class += " terminal"
	}
	label := n.label
	if current {
		class += " current"
		label += " (current)"
	}
	if n.terminal {
		label += ", terminal"
	}
	fmt.Fprintf(b, `<g class="%s" data-state="%s"`, class, esc(string(n.state)))
	if current {
		b.WriteString(` aria-current="true"`)
	}
	fmt.Fprintf(b, `><title>%s</title>`, esc(label))
	if n.start {
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="%.1f"/>`, n.x, n.y, startR)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" class="start-label">start</text></g>`, n.x, n.y+startR+13)
		return
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="8"/>`, n.x-n.w/2, n.y-n.h/2, n.w, n.h)
	if n.terminal {
		fmt.Fprintf(b, `<rect class="inner" x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="6"/>`, n.x-n.w/2+3, n.y-n.h/2+3, n.w-6, n.h-6)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="central">%s</text></g>`, n.x, n.y, esc(n.label))
}

func (d *Diagram) drawEdge(b *strings.Builder, id string, e dedge) {
	esc := template.HTMLEscapeString
	from, to := d.nodes[e.from], d.nodes[e.to]
	label := e.events[0]
	if len(e.events) > 1 {
		label += fmt.Sprintf(" +%d", len(e.events)-1)
	}
	fmt.Fprintf(b, `<g class="edge"><title>%s → %s: %s</title>`, esc(from.label), esc(to.label), esc(strings.Join(e.events, ", ")))
	if e.from == e.to {
		x0, y0 := from.x-from.w/4, from.y-from.h/2
		x1 := from.x + from.w/4
		fmt.Fprintf(b, `<path d="M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f" marker-end="url(#%s-a)"/>`,
			x0, y0, x0, y0-loopRise, x1, y0-loopRise, x1, y0, id)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text></g>`, from.x, y0-loopRise+4, esc(label))
		return
	}
	dx, dy := to.x-from.x, to.y-from.y
	dist := math.Hypot(dx, dy)
	// Bend every edge to its left, so that a→b and b→a do not overlap.
	bend := math.Min(40, dist/5)
	cx := (from.x+to.x)/2 - dy/dist*bend
	cy := (from.y+to.y)/2 + dx/dist*bend
	sx, sy := clip(from, cx, cy)
	ex, ey := clip(to, cx, cy)
	fmt.Fprintf(b, `<path d="M%.1f,%.1f Q%.1f,%.1f %.1f,%.1f" marker-end="url(#%s-a)"/>`, sx, sy, cx, cy, ex, ey, id)
	mx, my := 0.25*sx+0.5*cx+0.25*ex, 0.25*sy+0.5*cy+0.25*ey
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text></g>`, mx, my-3, esc(label))
}

// clip returns where the segment from n's centre towards (px, py) leaves
// n's box (or circle).
func clip(n dnode, px, py float64) (float64, float64) {
	dx, dy := px-n.x, py-n.y
	if dx == 0 && dy == 0 {
		return n.x, n.y
	}
	if n.start {
		l := math.Hypot(dx, dy)
		return n.x + dx/l*startR, n.y + dy/l*startR
	}
	hw, hh := n.w/2, n.h/2
	t := math.Inf(1)
	if dx != 0 {
		t = math.Min(t, hw/math.Abs(dx))
	}
	if dy != 0 {
		t = math.Min(t, hh/math.Abs(dy))
	}
	return n.x + dx*t, n.y + dy*t
}
