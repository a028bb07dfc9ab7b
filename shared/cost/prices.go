package cost

import (
	"fmt"
	"slices"
	"strings"
)

// Prices are list prices in US dollars.
type Prices struct {
	// Date is when the prices were read from the providers' price lists.
	Date string
	// FirestoreRead, FirestoreWrite and FirestoreDelete are per document.
	FirestoreRead, FirestoreWrite, FirestoreDelete float64
	// PubSubByte is per billable byte of Pub/Sub throughput (publish and
	// delivery alike).
	PubSubByte float64
	// CPUSecond is per vCPU-second of Cloud Run.
	CPUSecond float64
}

// ListPrices are the list prices of 2026-12-01:
//   - Firestore (Standard edition, multi-region): $0.06 per 100,000
//     document reads, $0.18 per 100,000 writes, $0.02 per 100,000
//     deletes (https://cloud.google.com/firestore/pricing).
//   - Pub/Sub message delivery: $40 per TiB of throughput, publish and
//     each delivery counted apart; a message's volume is its data,
//     attribute keys and values, 20 bytes of timestamp and its message id,
//     at least 1,000 bytes per publish, push or pull request
//     (https://cloud.google.com/pubsub/pricing).
//   - Cloud Run CPU: $0.000018 per vCPU-second (Tier 1, instance-based
//     billing; request-based billing costs more)
//     (https://cloud.google.com/run/pricing).
//
// Free tiers are left out.
var ListPrices = Prices{
	Date:            "2026-12-01",
	FirestoreRead:   0.06 / 100_000,
	FirestoreWrite:  0.18 / 100_000,
	FirestoreDelete: 0.02 / 100_000,
	PubSubByte:      40.0 / (1 << 40),
	CPUSecond:       0.000018,
}

// Firestore returns the price of the reads, writes and deletes of o.
func (p Prices) Firestore(o Op) float64 {
	return float64(o.Reads)*p.FirestoreRead + float64(o.Writes)*p.FirestoreWrite + float64(o.Deletes)*p.FirestoreDelete
}

// PubSub returns the price of publishing the messages of o and delivering
// each once by push.
func (p Prices) PubSub(o Op) float64 {
	return float64(o.PublishBytes+o.DeliveryBytes) * p.PubSubByte
}

// CPU returns the price of ms milliseconds of one vCPU.
func (p Prices) CPU(ms float64) float64 { return ms / 1000 * p.CPUSecond }

// Row is the cost of one kind of decision, averaged over Runs runs.
type Row struct {
	Kind string
	// Runs is the number of decisions (or receipts) measured.
	Runs int
	// Client is the total at the client level (gRPC) over the runs;
	// RoundTrips the sequential round trips over the runs.
	Client     Op
	RoundTrips int64
	// Path is the sequence of round trips of one run.
	Path []string
	// Interface is the total at the store and publisher interfaces over
	// the runs.
	Interface Op
	// ClientOps and InterfaceOps are the totals over the runs by
	// operation name.
	ClientOps, InterfaceOps map[string]Op
	// CPUms is the process CPU time over the runs in milliseconds; < 0
	// when it was not measured.
	CPUms float64
}

// per returns v per run.
func (r Row) per(v int64) float64 { return float64(v) / float64(max(r.Runs, 1)) }

// Per returns the client-level cost of one run, rounded down to whole
// documents and messages, for checks.
func (r Row) Per() Op {
	n := int64(max(r.Runs, 1))
	c := r.Client
	return Op{Calls: c.Calls / n, Reads: c.Reads / n, Writes: c.Writes / n, Deletes: c.Deletes / n,
		Messages: c.Messages / n, PublishBytes: c.PublishBytes / n, DeliveryBytes: c.DeliveryBytes / n}
}

// Dollars returns the price of a million runs: Firestore, Pub/Sub, CPU (0
// when not measured) and their total.
func (r Row) Dollars(p Prices) (firestore, pubsub, cpu, total float64) {
	scale := 1e6 / float64(max(r.Runs, 1))
	firestore = p.Firestore(r.Client) * scale
	pubsub = p.PubSub(r.Client) * scale
	if r.CPUms >= 0 {
		cpu = p.CPU(r.CPUms) * scale
	}
	return firestore, pubsub, cpu, firestore + pubsub + cpu
}

// num formats a per-run count: an integer when it is one.
func num(v float64) string {
	switch {
	case v == float64(int64(v)):
		return fmt.Sprint(int64(v))
	case v < 0.01:
		return fmt.Sprintf("%.4f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// Table returns rows as a Markdown table priced at p: per run the
// documents read, written and deleted, the RPCs, the sequential round
// trips and the messages published, and the dollars per million runs. The
// CPU columns appear when every row measured CPU.
func Table(rows []Row, p Prices) string {
	cpu := len(rows) > 0
	for _, r := range rows {
		cpu = cpu && r.CPUms >= 0
	}
	var b strings.Builder
	b.WriteString("| kind | reads | writes | deletes | RPCs | sequential round trips | publishes | Firestore $/M | Pub/Sub $/M |")
	if cpu {
		b.WriteString(" CPU ms | CPU $/M |")
	}
	b.WriteString(" total $/M |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	if cpu {
		b.WriteString("---:|---:|")
	}
	b.WriteString("---:|\n")
	for _, r := range rows {
		f, ps, c, t := r.Dollars(p)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f |", r.Kind,
			num(r.per(r.Client.Reads)), num(r.per(r.Client.Writes)), num(r.per(r.Client.Deletes)),
			num(r.per(r.Client.Calls)), num(r.per(r.RoundTrips)), num(r.per(r.Client.Messages)), f, ps)
		if cpu {
			fmt.Fprintf(&b, " %.2f | %.2f |", r.CPUms/float64(max(r.Runs, 1)), c)
		}
		fmt.Fprintf(&b, " %.2f |\n", t)
	}
	return b.String()
}

// Paths returns, for each row, its round trips in order: one line per
// row, round trips separated by " → ", concurrent calls joined by "+".
func Paths(rows []Row) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "- %s: %s\n", r.Kind, strings.Join(compress(r.Path), " → "))
	}
	return b.String()
}

// compress writes a repeated sequence of round trips once, as "name ×n"
// for one round trip and "(a → b) ×n" for several, taking at each point
// the repetition that covers the most round trips.
func compress(path []string) []string {
	var out []string
	for i := 0; i < len(path); {
		bestK, bestN := 1, 1
		for k := 1; i+2*k <= len(path); k++ {
			n := 1
			for i+(n+1)*k <= len(path) && slices.Equal(path[i:i+k], path[i+n*k:i+(n+1)*k]) {
				n++
			}
			if n > 1 && n*k > bestN*bestK {
				bestK, bestN = k, n
			}
		}
		switch {
		case bestN == 1:
			out = append(out, path[i])
		case bestK == 1:
			out = append(out, fmt.Sprintf("%s ×%d", path[i], bestN))
		default:
			out = append(out, fmt.Sprintf("(%s) ×%d", strings.Join(compress(path[i:i+bestK]), " → "), bestN))
		}
		i += bestK * bestN
	}
	return out
}

// Add adds n runs that cost client at the client level and iface at the
// interface level, and cpuMs milliseconds of CPU (< 0: not measured,
// which leaves the row unmeasured). The path of the first runs added is
// kept.
func (r *Row) Add(n int, client, iface Counts, cpuMs float64) {
	if r.Runs == 0 {
		r.Path = client.Path
		r.CPUms = 0
	}
	r.Runs += n
	r.Client.add(client.Total)
	r.RoundTrips += client.RoundTrips
	r.Interface.add(iface.Total)
	r.ClientOps = addOps(r.ClientOps, client.Ops)
	r.InterfaceOps = addOps(r.InterfaceOps, iface.Ops)
	if cpuMs < 0 || r.CPUms < 0 {
		r.CPUms = -1
	} else {
		r.CPUms += cpuMs
	}
}

func addOps(into, m map[string]Op) map[string]Op {
	if into == nil {
		into = map[string]Op{}
	}
	for name, o := range m {
		t := into[name]
		t.add(o)
		into[name] = t
	}
	return into
}

// Breakdown returns, for each row, its calls per run by operation at the
// client level and at the interface level, with the documents and
// messages each touched, as a Markdown table.
func Breakdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| kind | RPCs per decision (documents) | store and publisher calls per decision (documents) |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.Kind, r.ops(r.ClientOps), r.ops(r.InterfaceOps))
	}
	return b.String()
}

// ops lists the operations of m per run, by name.
func (r Row) ops(m map[string]Op) string {
	var parts []string
	for _, name := range (Counts{Ops: m}).Names() {
		o := m[name]
		var docs []string
		for _, d := range []struct {
			n    int64
			what string
		}{{o.Reads, "read"}, {o.Writes, "written"}, {o.Deletes, "deleted"}, {o.Messages, "messages"}} {
			if d.n > 0 {
				docs = append(docs, num(r.per(d.n))+" "+d.what)
			}
		}
		s := name + " ×" + num(r.per(o.Calls))
		if len(docs) > 0 {
			s += " (" + strings.Join(docs, ", ") + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "; ")
}
