package terraform

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/topic"
)

// The trust model of the deployment: who may publish to which topic and
// who may read or write which Firestore database. Expectations come from
// the code where the code declares them (the machines' cascade targets and
// actions) and from the tables below otherwise.

// account is a service account of the configuration.
type account struct {
	// Key is governor-<domain>, scheduler, query, monitor or integrator for
	// the runtime identities (found from the resources that run as them),
	// and the account id without the prefix for the others.
	Key    string
	Domain governor.Domain // of a governor's account
	Member string
}

// accounts returns every service account of the configuration, the
// runtime identities first.
func accounts(t *testing.T, f *testFixture, c *tfConfig) []account {
	t.Helper()
	var out []account
	seen := map[string]string{}
	add := func(a account) {
		if prev, ok := seen[a.Member]; ok {
			if prev != a.Key {
				t.Errorf("%s and %s share the identity %s", prev, a.Key, a.Member)
			}
			return
		}
		seen[a.Member] = a.Key
		out = append(out, a)
	}
	fns := functionsByEntryPoint(t, c)
	for _, r := range f.regs {
		fn, ok := fns[r.EntryPoint]
		if !ok {
			continue
		}
		member := "serviceAccount:" + ctyString(fn.Body.Path("service_config", "service_account_email"))
		switch {
		case r.Domain != "":
			add(account{Key: "governor-" + r.Domain, Domain: governor.Domain(r.Domain), Member: member})
		case r.Kind == "HTTP":
			add(account{Key: "scheduler", Member: member})
		}
	}
	for _, s := range c.Result.Find("google_cloud_run_v2_service") {
		add(account{
			Key:    strings.TrimPrefix(s.Body.Str("name"), c.Prefix+"autonomics-"),
			Member: "serviceAccount:" + ctyString(s.Body.Path("template", "service_account")),
		})
	}
	for _, sa := range c.Result.Find("google_service_account") {
		if _, ok := seen[ctyString(sa.Value.GetAttr("member"))]; ok {
			continue // a runtime identity, found above
		}
		add(account{
			Key:    strings.TrimPrefix(sa.Body.Str("account_id"), c.Prefix),
			Member: ctyString(sa.Value.GetAttr("member")),
		})
	}
	return out
}

// listStrings returns the elements of a known list, set or tuple of
// strings.
func listStrings(v cty.Value) []string {
	if v == cty.NilVal || !v.IsWhollyKnown() || v.IsNull() || !v.CanIterateElements() {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, ctyString(e))
	}
	return out
}

// setDiff returns the elements of a not in b, sorted.
func setDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// TestGovernorDeclarationsFollowMachines holds the per-governor data of
// local.governors, from which iam.tf grants the publishing rights, to
// what each machine declares: the domains it may cascade to and whether
// it actuates.
func TestGovernorDeclarationsFollowMachines(t *testing.T) {
	ms := machines.New(nil)
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		govs := c.Result.Locals["governors"]
		if !govs.IsWhollyKnown() || !govs.Type().IsObjectType() {
			t.Fatalf("local.governors is not a known object: %#v", govs)
		}
		for name := range govs.Type().AttributeTypes() {
			if !slices.Contains(governor.Domains, governor.Domain(name)) {
				t.Errorf("local.governors.%s: no such governor domain", name)
			}
		}
		for _, d := range governor.Domains {
			t.Run(string(d), func(t *testing.T) {
				m := ms[d]
				if m == nil {
					t.Fatalf("machines.New has no machine for %s", d)
				}
				if !govs.Type().HasAttribute(string(d)) {
					t.Fatalf("local.governors has no entry %s", d)
				}
				g := govs.GetAttr(string(d))
				var want []string
				for _, td := range m.CascadeTargets() {
					want = append(want, string(td))
				}
				got := listStrings(g.GetAttr("cascades"))
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("local.governors.%s.cascades = %q, want %q (the machine's CascadeTargets)", d, got, want)
				}
				actuates := g.GetAttr("actuates")
				if actuates.Type() != cty.Bool || actuates.IsNull() {
					t.Fatalf("local.governors.%s.actuates = %#v, want a bool", d, actuates)
				}
				if got, want := actuates.True(), len(m.Actions()) > 0; got != want {
					t.Errorf("local.governors.%s.actuates = %v, want %v (the machine's Actions: %q)", d, got, want, m.Actions())
				}
			})
		}
	})
}

// TestPublishers checks that every account publishes exactly to the topics
// its component sends to, each granted on the topic itself, and that
// nobody else publishes but the Pub/Sub service agent (dead-lettering)
// and var.producers (the domain topics).
func TestPublishers(t *testing.T) {
	ms := machines.New(nil)
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		names := topic.Names{Prefix: c.Prefix}
		gs := grants(t, c)
		var internal, domain []string
		for _, d := range governor.Domains {
			internal = append(internal, names.Internal(d))
			domain = append(domain, names.Domain(d))
		}
		// Topics of the components that are not governors; every other
		// account publishes nowhere.
		fixed := map[string][]string{
			// Tick: timeouts to the internal topics. Sweep: outbox entries,
			// which are receipts, cascades (internal topics) and actions.
			"scheduler": append(slices.Clone(internal), names.Receipts(), names.Actions()),
			// Fairness events to the multi_tenant governor, alerts, and
			// receipts it cannot read copied to the dead-letter topic
			// (services/monitor pushReceipt).
			"monitor":    {names.Internal(governor.MultiTenant), names.Alerts(), names.DeadLetter()},
			"integrator": {names.Checkpoints()},
			"query":      nil,
			// Dead letters, and actuation_failed to the governors whose
			// machines actuate (services/actuator).
			"actuator": actuatorTopics(names, ms),
			// The ingest API publishes producers' events to the domain
			// topics, never to internal ones.
			"ingest": domain,
			// The Marketplace side (marketplace.tf): events learned from
			// Marketplace, actuation_failed and usage events, dead letters;
			// the sign-up page, customer_account sign-ups only.
			"marketplace": marketplaceTopics(names)["marketplace"],
			"signup":      marketplaceTopics(names)["signup"],
			// Operator events and dead-letter replays to the domain topics;
			// outside production, the test clocks' timeouts to the internal
			// topics (console.tf).
			"console": consoleTopics(names, consoleTestClock(c)),
		}
		// Other Pub/Sub roles a runtime account may hold, as "role target".
		otherRoles := map[string][]string{
			// Its health check reads the alerts topic.
			"monitor": {"roles/pubsub.viewer " + names.Alerts()},
		}
		accts := accounts(t, f, c)
		for _, key := range []string{"scheduler", "monitor", "integrator", "query", "ingest", "console"} {
			if !slices.ContainsFunc(accts, func(a account) bool { return a.Key == key }) {
				t.Errorf("no runtime identity of %s found", key)
			}
		}
		known := map[string]bool{}
		for _, a := range accts {
			known[a.Member] = true
			t.Run(a.Key, func(t *testing.T) {
				var want []string
				why := "it publishes nothing"
				if a.Domain != "" {
					m := ms[a.Domain]
					if m == nil {
						t.Fatalf("no machine for %s", a.Domain)
					}
					want = []string{names.Receipts(), names.DeadLetter()}
					for _, d := range m.CascadeTargets() {
						want = append(want, names.Internal(d))
					}
					if len(m.Actions()) > 0 {
						want = append(want, names.Actions())
					}
					why = fmt.Sprintf("receipts, dead-letter, the internal topics of its cascade targets %q, actions only if it actuates (%d actions)", m.CascadeTargets(), len(m.Actions()))
				} else if w, ok := fixed[a.Key]; ok {
					want = w
					why = "the topics its component sends to"
				}
				var got []string
				for _, g := range gs {
					if g.Member != a.Member || !strings.HasPrefix(g.Role, "roles/pubsub.") {
						continue
					}
					switch {
					case g.Role == "roles/pubsub.publisher" && g.Type == "google_pubsub_topic_iam_member":
						got = append(got, g.Target)
					case g.Role == "roles/pubsub.publisher":
						t.Errorf("%s grants %s publisher on %s (%s): publishing is granted topic by topic", g.Addr, a.Member, g.Target, g.Type)
					case !slices.Contains(otherRoles[a.Key], g.Role+" "+g.Target):
						t.Errorf("%s grants %s %s on %s, which its component does not need", g.Addr, a.Member, g.Role, g.Target)
					}
				}
				for _, tp := range setDiff(got, want) {
					t.Errorf("%s (%s) may publish to %s; want only %q: %s", a.Key, a.Member, tp, want, why)
				}
				for _, tp := range setDiff(want, got) {
					t.Errorf("%s (%s) may not publish to %s, which it sends to (%s)", a.Key, a.Member, tp, why)
				}
			})
		}

		producers := listStrings(c.Result.Vars["producers"])
		var domainTopics []string
		for _, d := range governor.Domains {
			domainTopics = append(domainTopics, names.Domain(d))
		}
		for _, g := range gs {
			if g.Role != "roles/pubsub.publisher" || known[g.Member] {
				continue
			}
			switch {
			case strings.Contains(g.Member, "@gcp-sa-pubsub."):
				if g.Target != names.DeadLetter() {
					t.Errorf("%s lets the Pub/Sub service agent publish to %s; it only forwards to %s", g.Addr, g.Target, names.DeadLetter())
				}
			case slices.Contains(producers, g.Member):
				if !slices.Contains(domainTopics, g.Target) {
					t.Errorf("%s lets the producer %s publish to %s, which is not a domain topic", g.Addr, g.Member, g.Target)
				}
			default:
				t.Errorf("%s lets %s publish to %s: neither an account of this configuration, the Pub/Sub service agent nor one of var.producers", g.Addr, g.Member, g.Target)
			}
		}
	})
}

// TestProducers evaluates the configuration with producers and checks that
// they may publish to the eight domain topics and nothing else.
func TestProducers(t *testing.T) {
	f := fixture(t)
	producers := []string{"serviceAccount:meter@example-project.iam.gserviceaccount.com", "group:operators@example.com"}
	for _, tc := range []struct {
		name   string
		prefix string
	}{
		{"no prefix", ""},
		{"prefix", "dev-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var members []cty.Value
			for _, p := range producers {
				members = append(members, cty.StringVal(p))
			}
			r := f.eval.Evaluate(f.root, map[string]cty.Value{
				"project":        cty.StringVal(testProject),
				"source_archive": cty.StringVal(f.archive),
				"prefix":         cty.StringVal(tc.prefix),
				"producers":      cty.ListVal(members),
			}, "")
			for _, d := range r.Diags {
				if d.Severity == hcl.DiagError {
					t.Errorf("evaluation: %s", d.Error())
				}
			}
			c := &tfConfig{Name: tc.name, Prefix: tc.prefix, Result: r}
			names := topic.Names{Prefix: tc.prefix}
			var want []string
			for _, d := range governor.Domains {
				want = append(want, names.Domain(d))
			}
			gs := grants(t, c)
			for _, p := range producers {
				var got []string
				for _, g := range gs {
					if g.Member != p {
						continue
					}
					if g.Role != "roles/pubsub.publisher" || g.Type != "google_pubsub_topic_iam_member" {
						t.Errorf("%s grants the producer %s %s on %s; producers only publish to domain topics", g.Addr, p, g.Role, g.Target)
						continue
					}
					got = append(got, g.Target)
				}
				for _, tp := range setDiff(got, want) {
					t.Errorf("the producer %s may publish to %s, which is not a domain topic", p, tp)
				}
				for _, tp := range setDiff(want, got) {
					t.Errorf("the producer %s may not publish to the domain topic %s", p, tp)
				}
			}
		})
	}
}

// firestoreCondition is the IAM condition that limits a grant to one
// Firestore database.
var firestoreCondition = regexp.MustCompile(`^resource\.name == "projects/([^/"]+)/databases/([^/"]+)"$`)

// readRoles are the Firestore roles that do not write.
var readRoles = []string{"roles/datastore.viewer"}

// TestFirestoreAccess checks each account's Firestore roles, database by
// database: every grant is conditioned on one database, the components
// write only their own data, and the query API writes nothing.
func TestFirestoreAccess(t *testing.T) {
	const (
		viewer = "roles/datastore.viewer"
		user   = "roles/datastore.user"
	)
	type row struct {
		roles  map[string]string // database role => Firestore role
		writes []string          // the only databases it may write
	}
	rows := map[string]row{
		// Both read the ledger, whose receipts witness their decisions'
		// delivery.
		"governor":   {map[string]string{dbMain: user, dbLedger: viewer}, []string{dbMain}},
		"scheduler":  {map[string]string{dbMain: user, dbLedger: viewer}, []string{dbMain}},
		"integrator": {map[string]string{dbMain: viewer, dbLedger: user}, []string{dbLedger}},
		"monitor":    {map[string]string{dbMain: viewer, dbMonitor: user}, []string{dbMonitor}},
		"query":      {map[string]string{dbMain: viewer, dbLedger: viewer}, nil},
		// Its state lives in the monitor's database; governor state it
		// can neither read nor write.
		"actuator": {map[string]string{dbMonitor: user}, []string{dbMonitor}},
		// Links and usage windows in the monitor's database; governor
		// instances it reads to reconcile and report usage, never writes.
		"marketplace": {map[string]string{dbMain: viewer, dbMonitor: user}, []string{dbMonitor}},
		// Links, in the monitor's database.
		"signup": {map[string]string{dbMonitor: user}, []string{dbMonitor}},
		// Dead letters and checkpoint history in the monitor's database;
		// governors and receipts, the ledger's checkpoints and proofs it
		// only reads.
		"console": {map[string]string{dbMain: viewer, dbLedger: viewer, dbMonitor: user}, []string{dbMonitor}},
	}
	// Outside production the console's test clocks move armed timers in
	// the governors' database (console.tf).
	testClockConsole := row{map[string]string{dbMain: user, dbLedger: viewer, dbMonitor: user}, []string{dbMain, dbMonitor}}
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		dbs := firestoreDatabases(t, c)
		roleOf := map[string]string{}
		for role, name := range dbs {
			roleOf[name] = role
		}
		gs := grants(t, c)
		for _, a := range accounts(t, f, c) {
			t.Run(a.Key, func(t *testing.T) {
				component := a.Key
				if a.Domain != "" {
					component = "governor"
				}
				row := rows[component] // none for the accounts that only call or build
				if component == "console" && consoleTestClock(c) {
					row = testClockConsole
				}
				got := map[string][]string{}
				for _, g := range gs {
					if g.Member != a.Member || !strings.HasPrefix(g.Role, "roles/datastore.") {
						continue
					}
					m := firestoreCondition.FindStringSubmatch(g.Condition)
					if m == nil {
						t.Errorf("%s grants %s %s with condition %q, which does not name one database", g.Addr, a.Member, g.Role, g.Condition)
						continue
					}
					if m[1] != testProject {
						t.Errorf("%s: condition %q names project %q, want %q", g.Addr, g.Condition, m[1], testProject)
					}
					role, ok := roleOf[m[2]]
					if !ok {
						t.Errorf("%s: condition %q names database %q, none of %q", g.Addr, g.Condition, m[2], dbs)
						continue
					}
					if !slices.Contains(readRoles, g.Role) && !slices.Contains(row.writes, role) {
						may := "no database"
						if len(row.writes) > 0 {
							var names []string
							for _, w := range row.writes {
								names = append(names, fmt.Sprintf("the %s database %q", w, dbs[w]))
							}
							may = "only " + strings.Join(names, " and ")
						}
						t.Errorf("%s lets %s (%s) write the %s database %q with %s; it may write %s", g.Addr, a.Key, a.Member, role, m[2], g.Role, may)
					}
					got[role] = append(got[role], g.Role)
				}
				for _, role := range []string{dbMain, dbLedger, dbMonitor} {
					var want []string
					if r, ok := row.roles[role]; ok {
						want = []string{r}
					}
					slices.Sort(got[role])
					if !slices.Equal(got[role], want) {
						t.Errorf("%s (%s) holds %q on the %s database %q, want %q", a.Key, a.Member, got[role], role, dbs[role], want)
					}
				}
			})
		}
	})
}

// TestProjectRoles checks the roles each account holds on the whole
// project besides Firestore's (TestFirestoreAccess holds those): the
// telemetry writers of every runtime identity with telemetry = "gcp", and
// what a component needs whatever var.telemetry says. Evaluated with each
// environment and with telemetry = "none", where only the latter remain.
func TestProjectRoles(t *testing.T) {
	telemetryRoles := []string{"roles/telemetry.tracesWriter", "roles/telemetry.metricsWriter"}
	// Project roles an account holds whatever var.telemetry says, by
	// account key.
	fixed := map[string][]string{
		// PromQL queries to Managed Service for Prometheus, and its intake
		// (POST /v1/metrics, receipt-derived metrics) forwarded through the
		// Telemetry API (services/monitor intake.go).
		"monitor": {"roles/monitoring.viewer", "roles/telemetry.metricsWriter"},
		// Builds the functions.
		"fn-builder": {"roles/run.builder"},
	}
	check := func(t *testing.T, f *testFixture, c *tfConfig) {
		gcp := ctyString(c.Result.Vars["telemetry"]) == "gcp"
		gs := grants(t, c)
		for _, a := range accounts(t, f, c) {
			t.Run(a.Key, func(t *testing.T) {
				var got []string
				for _, g := range gs {
					if g.Member == a.Member && strings.HasPrefix(g.Type, "google_project_iam_") && !strings.HasPrefix(g.Role, "roles/datastore.") {
						got = append(got, g.Role)
					}
				}
				want := slices.Clone(fixed[a.Key])
				// Runtime identities run code, which sends telemetry; the
				// calling identities and the builder run none.
				runtime := a.Domain != "" || a.Key == "scheduler" || slices.ContainsFunc(c.Result.Find("google_cloud_run_v2_service"), func(s *tfInstance) bool {
					return "serviceAccount:"+ctyString(s.Body.Path("template", "service_account")) == a.Member
				})
				if gcp && runtime {
					want = append(want, telemetryRoles...)
				}
				slices.Sort(got)
				slices.Sort(want)
				want = slices.Compact(want)
				// Two resources granting one role to one member manage the
				// same binding: removing either removes it.
				if dup := len(got) != len(slices.Compact(slices.Clone(got))); dup {
					t.Errorf("%s (%s) is granted a project role twice: %q", a.Key, a.Member, got)
				}
				if got = slices.Compact(got); !slices.Equal(got, want) {
					t.Errorf("%s (%s) holds %q on the project, want %q", a.Key, a.Member, got, want)
				}
			})
		}
	}
	each(t, check)
	t.Run("telemetry none", func(t *testing.T) {
		f := fixture(t)
		r := f.eval.Evaluate(f.root, map[string]cty.Value{
			"project":        cty.StringVal(testProject),
			"source_archive": cty.StringVal(f.archive),
			"telemetry":      cty.StringVal("none"),
		}, "")
		for _, d := range r.Diags {
			if d.Severity == hcl.DiagError {
				t.Errorf("evaluation: %s", d.Error())
			}
		}
		check(t, f, &tfConfig{Name: "telemetry none", Result: r})
	})
}
