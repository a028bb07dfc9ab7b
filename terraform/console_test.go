package terraform

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/console/fsconsole"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/topic"
)

// The operator console (console.tf) held to services/console and
// shared/console: a private service, the dead-letter push, its access to
// the monitor, and what its identity may do, in production and outside.

// consoleTestClock says whether a configuration runs test clocks: its
// var.env is not production (shared/platform Config.TestClock).
func consoleTestClock(c *tfConfig) bool {
	return platform.Config{Env: ctyString(c.Result.Vars["env"])}.TestClock()
}

// consoleTopics are the topics the console publishes to: the domain
// topics (operator events, replays) and, with test clocks, the internal
// topics (their timeouts).
func consoleTopics(names topic.Names, testClock bool) []string {
	var out []string
	for _, d := range governor.Domains {
		out = append(out, names.Domain(d))
		if testClock {
			out = append(out, names.Internal(d))
		}
	}
	return out
}

// evaluate evaluates the configuration with the variables given, over the
// project and archive of the fixture, and fails on an evaluation error.
func evaluate(t *testing.T, name string, vars map[string]cty.Value) *tfConfig {
	t.Helper()
	f := fixture(t)
	in := map[string]cty.Value{"project": cty.StringVal(testProject), "source_archive": cty.StringVal(f.archive)}
	for k, v := range vars {
		in[k] = v
	}
	r := f.eval.Evaluate(f.root, in, "")
	for _, d := range r.Diags {
		if d.Severity == hcl.DiagError {
			t.Fatalf("evaluation: %s", d.Error())
		}
	}
	prefix := ""
	if p, ok := vars["prefix"]; ok {
		prefix = p.AsString()
	}
	return &tfConfig{Name: name, Prefix: prefix, Result: r}
}

func TestConsoleService(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		s := mustService(t, c, "console")
		if got := ctyIndex(s.Body.Attr("labels"), "component"); got != "console" {
			t.Errorf("%s: component label %q, want console", s.Addr(), got)
		}
		if sa := ctyString(s.Body.Path("template", "service_account")); !strings.HasPrefix(sa, c.Prefix+"svc-console@") {
			t.Errorf("%s runs as %q, want its own account %ssvc-console", s.Addr(), sa, c.Prefix)
		}
		if img := s.Body.One("template").One("containers").Str("image"); !strings.Contains(img, "/console:") {
			t.Errorf("%s: image %q is not the console's", s.Addr(), img)
		}
		dbs := firestoreDatabases(t, c)
		monitor := mustService(t, c, "monitor")
		env := serviceEnv(s)
		for name, want := range map[string]string{
			platform.EnvDatabase:        dbs[dbMain],
			platform.EnvLedgerDatabase:  dbs[dbLedger],
			platform.EnvMonitorDatabase: dbs[dbMonitor],
			platform.EnvTopicPrefix:     c.Prefix,
			platform.EnvEnvironment:     ctyString(c.Result.Vars["env"]),
			"AUTONOMICS_LISTEN_HOST":    "0.0.0.0",
			// The monitor's API, called with an ID token for its URL.
			"AUTONOMICS_CONSOLE_MONITOR_URL": ctyString(monitor.Value.GetAttr("uri")),
			"AUTONOMICS_CONSOLE_NAMESPACE":   "default",
			// Only the push identity may push dead letters.
			"AUTONOMICS_CONSOLE_PUSH_CALLERS": accountEmail(c, "pubsub-push"),
		} {
			if got := env[name]; got != want || (want == "" && name != platform.EnvTopicPrefix) {
				t.Errorf("%s: %s = %q, want %q", s.Addr(), name, got, want)
			}
		}
		// A stream lasts StreamLifetime; the request may not end first.
		if got, want := s.Body.One("template").Str("timeout"), int(console.DefaultLimits.StreamLifetime.Seconds()); got == "" || atoiSeconds(got) <= want {
			t.Errorf("%s: timeout %q, want above the %ds a stream lasts", s.Addr(), got, want)
		}
	})
}

// atoiSeconds parses a Cloud Run duration "<n>s", or returns 0.
func atoiSeconds(s string) int {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "s"))
	if err != nil || !strings.HasSuffix(s, "s") {
		return 0
	}
	return n
}

// TestConsoleIsPrivate: only var.console_invokers and the push identity
// may call the console; the invoker check stays on.
func TestConsoleIsPrivate(t *testing.T) {
	operators := "group:operators@example.com"
	check := func(t *testing.T, c *tfConfig, want []string) {
		s := mustService(t, c, "console")
		if v := s.Body.Attr("invoker_iam_disabled"); v != cty.NilVal && v.IsKnown() && !v.IsNull() && v.True() {
			t.Errorf("%s: invoker_iam_disabled lets anyone call the console", s.Addr())
		}
		var got []string
		for _, g := range grants(t, c) {
			if g.Type == "google_cloud_run_v2_service_iam_member" && g.Target == s.Body.Str("name") {
				if g.Role != "roles/run.invoker" {
					t.Errorf("%s grants %s %s on the console", g.Addr, g.Member, g.Role)
				}
				got = append(got, g.Member)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("invokers of the console = %q, want %q (var.console_invokers and the push identity)", got, want)
		}
	}
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		want := append(listStrings(c.Result.Vars["console_invokers"]), "serviceAccount:"+accountEmail(c, "pubsub-push"))
		check(t, c, want)
	})
	t.Run("operators", func(t *testing.T) {
		c := evaluate(t, "operators", map[string]cty.Value{"console_invokers": cty.ListVal([]cty.Value{cty.StringVal(operators)})})
		check(t, c, []string{operators, "serviceAccount:" + accountEmail(c, "pubsub-push")})
	})
	t.Run("allUsers is refused", func(t *testing.T) {
		for _, m := range []string{"allUsers", "allAuthenticatedUsers"} {
			if validates(t, "console_invokers", cty.ListVal([]cty.Value{cty.StringVal(m)})) {
				t.Errorf("var.console_invokers accepts %s", m)
			}
		}
		if !validates(t, "console_invokers", cty.ListVal([]cty.Value{cty.StringVal(operators)})) {
			t.Errorf("var.console_invokers refuses %s", operators)
		}
	})
}

// TestConsoleDeadLetterPush: every dead letter reaches the console's
// /v1/deadletters/push by an authenticated, retried push with no dead
// letter of its own (it reads the dead-letter topic), and the inspection
// subscription stays.
func TestConsoleDeadLetterPush(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		s := mustService(t, c, "console")
		uri := ctyString(s.Value.GetAttr("uri"))
		names := topic.Names{Prefix: c.Prefix}
		deadLetter := byAttr(c, "google_pubsub_topic", "name")[names.DeadLetter()]
		if deadLetter == nil {
			t.Fatalf("no topic %s", names.DeadLetter())
		}
		gs := grants(t, c)
		var push []*tfInstance
		inspect := false
		for _, sub := range c.Result.Find("google_pubsub_subscription") {
			if ctyString(sub.Value.GetAttr("topic")) != ctyString(deadLetter.Value.GetAttr("id")) {
				continue
			}
			switch ep := ctyString(sub.Body.Path("push_config", "push_endpoint")); ep {
			case "":
				inspect = true
			case uri + console.PushPath:
				push = append(push, sub)
			default:
				t.Errorf("%s pushes the dead letters to %s, not the console", sub.Addr(), ep)
			}
		}
		if !inspect {
			t.Errorf("no inspection (pull) subscription on %s", names.DeadLetter())
		}
		if len(push) != 1 {
			t.Fatalf("%d push subscriptions deliver %s to %s%s, want 1", len(push), names.DeadLetter(), uri, console.PushPath)
		}
		sub := push[0]
		sa := ctyString(sub.Body.Path("push_config", "oidc_token", "service_account_email"))
		if sa != accountEmail(c, "pubsub-push") {
			t.Errorf("%s: pushes as %q, want the push identity %q (AUTONOMICS_CONSOLE_PUSH_CALLERS)", sub.Addr(), sa, accountEmail(c, "pubsub-push"))
		}
		if !hasGrant(gs, "google_cloud_run_v2_service_iam_member", s.Body.Str("name"), "roles/run.invoker", "serviceAccount:"+sa) {
			t.Errorf("%s: the push identity %s may not invoke the console", sub.Addr(), sa)
		}
		if got := ctyString(sub.Body.Path("push_config", "oidc_token", "audience")); got != uri {
			t.Errorf("%s: OIDC audience %q, want %q", sub.Addr(), got, uri)
		}
		if sub.Body.One("retry_policy") == nil {
			t.Errorf("%s: no retry_policy", sub.Addr())
		}
		if sub.Body.One("dead_letter_policy") != nil {
			t.Errorf("%s: a dead-letter policy on the dead-letter reader would loop dead letters back to it", sub.Addr())
		}
		if v := sub.Body.Attr("filter"); v != cty.NilVal && ctyString(v) != "" {
			t.Errorf("%s: filter %q: the console keeps every dead letter", sub.Addr(), ctyString(v))
		}
		if !slices.Contains(listStrings(c.Result.Locals["delivery_subscriptions"]), sub.Body.Str("name")) {
			t.Errorf("%s is not in local.delivery_subscriptions, which the alerts watch", sub.Addr())
		}
	})
}

// TestConsoleCallsMonitor: the console may invoke the monitor, whose API
// serves its alerts and silences, and nothing else.
func TestConsoleCallsMonitor(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		member := serviceMember(mustService(t, c, "console"))
		var got []string
		for _, g := range grants(t, c) {
			if g.Member == member && g.Type == "google_cloud_run_v2_service_iam_member" {
				got = append(got, g.Role+" "+g.Target)
			}
		}
		if want := []string{"roles/run.invoker " + c.Prefix + "autonomics-monitor"}; !slices.Equal(got, want) {
			t.Errorf("the console may call %q, want %q", got, want)
		}
	})
}

// TestProductionConsolePublishesOnlyToDomainTopics: in production an
// operator's event and a replay enter where any event from outside does,
// and the console cannot reach an internal topic nor write governor state;
// only outside production do the test clocks add the internal topics and
// the governors' database.
func TestProductionConsolePublishesOnlyToDomainTopics(t *testing.T) {
	for _, tc := range []struct {
		env       string
		testClock bool
	}{{"prod", false}, {"dev", true}, {"staging", true}} {
		t.Run(tc.env, func(t *testing.T) {
			c := evaluate(t, tc.env, map[string]cty.Value{"env": cty.StringVal(tc.env)})
			if consoleTestClock(c) != tc.testClock {
				t.Fatalf("env %q: test clocks %v, want %v", tc.env, consoleTestClock(c), tc.testClock)
			}
			member := serviceMember(mustService(t, c, "console"))
			dbs := firestoreDatabases(t, c)
			var topics, roles []string
			for _, g := range grants(t, c) {
				if g.Member != member {
					continue
				}
				switch {
				case g.Type == "google_pubsub_topic_iam_member" && g.Role == "roles/pubsub.publisher":
					topics = append(topics, g.Target)
				case strings.HasPrefix(g.Role, "roles/pubsub."):
					t.Errorf("%s grants the console %s on %s", g.Addr, g.Role, g.Target)
				case strings.HasPrefix(g.Role, "roles/datastore."):
					m := firestoreCondition.FindStringSubmatch(g.Condition)
					if m == nil {
						t.Errorf("%s: %s with condition %q, which does not name one database", g.Addr, g.Role, g.Condition)
						continue
					}
					roles = append(roles, g.Role+" "+m[2])
				}
			}
			want := consoleTopics(topic.Names{}, tc.testClock)
			slices.Sort(topics)
			slices.Sort(want)
			if !slices.Equal(topics, want) {
				t.Errorf("env %q: the console publishes to %q, want %q", tc.env, topics, want)
			}
			main := "roles/datastore.viewer "
			if tc.testClock {
				main = "roles/datastore.user "
			}
			wantRoles := []string{main + dbs[dbMain], "roles/datastore.user " + dbs[dbMonitor], "roles/datastore.viewer " + dbs[dbLedger]}
			slices.Sort(roles)
			slices.Sort(wantRoles)
			if !slices.Equal(roles, wantRoles) {
				t.Errorf("env %q: the console's Firestore roles = %q, want %q", tc.env, roles, wantRoles)
			}
		})
	}
}

// TestEnvironmentName: every component is told the environment, production
// by default and in environments/prod.tfvars, so that test clocks are off
// unless a configuration says otherwise; spellings of production other
// than "prod" are refused, as shared/platform refuses them.
func TestEnvironmentName(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		want := map[string]string{"default": platform.ProdEnvironment, "prod": platform.ProdEnvironment, "dev": "dev"}[c.Name]
		if got := ctyString(c.Result.Vars["env"]); want != "" && got != want {
			t.Errorf("var.env = %q, want %q", got, want)
		}
		env := c.Result.Locals["platform_env"]
		if !env.IsWhollyKnown() {
			t.Fatalf("local.platform_env is not known")
		}
		if got := ctyString(env.GetAttr(platform.EnvEnvironment)); got != ctyString(c.Result.Vars["env"]) {
			t.Errorf("local.platform_env.%s = %q, want var.env %q", platform.EnvEnvironment, got, ctyString(c.Result.Vars["env"]))
		}
		if _, err := platform.FromEnv(func(k string) string {
			if k == platform.EnvProject {
				return testProject
			}
			if k == platform.EnvEnvironment {
				return ctyString(c.Result.Vars["env"])
			}
			return ""
		}); err != nil {
			t.Errorf("shared/platform refuses var.env %q: %v", ctyString(c.Result.Vars["env"]), err)
		}
	})
	for _, v := range []string{"production", "PROD", " prod", "Prod", ""} {
		if validates(t, "env", cty.StringVal(v)) {
			t.Errorf("var.env accepts %q", v)
		}
	}
	for _, v := range []string{"prod", "dev", "staging", "qa-2"} {
		if !validates(t, "env", cty.StringVal(v)) {
			t.Errorf("var.env refuses %q", v)
		}
	}
}

// TestConsoleFirestoreFields checks the TTL policy and the exemptions
// shared/console/fsconsole documents, in the monitor's database.
func TestConsoleFirestoreFields(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		db := firestoreDatabases(t, c)[dbMonitor]
		have := map[string]*tfInstance{}
		for _, fl := range c.Result.Find("google_firestore_field") {
			if fl.Body.Str("database") == db {
				have[fl.Body.Str("collection")+"."+fl.Body.Str("field")] = fl
			}
		}
		if fl, ok := have[fsconsole.ColDeadLetters+".expire_at"]; !ok || fl.Body.One("ttl_config") == nil {
			t.Errorf("no TTL policy on %s.expire_at in %q", fsconsole.ColDeadLetters, db)
		}
		for _, field := range []string{"data", "attributes"} {
			fl, ok := have[fsconsole.ColDeadLetters+"."+field]
			if !ok || fl.Body.One("index_config") == nil || len(fl.Body.One("index_config").Sub("indexes")) > 0 {
				t.Errorf("%s.%s is not exempt from indexing in %q", fsconsole.ColDeadLetters, field, db)
			}
		}
	})
}

// validates evaluates the validation rules of a root variable for value.
func validates(t *testing.T, name string, value cty.Value) bool {
	t.Helper()
	f := fixture(t)
	b, ok := f.root.variables[name]
	if !ok {
		t.Fatalf("no variable %q", name)
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{name: value})},
		Functions: tfFunctions(),
	}
	for _, v := range b.Body.Blocks {
		if v.Type != "validation" {
			continue
		}
		a, ok := v.Body.Attributes["condition"]
		if !ok {
			t.Fatalf("variable %q: a validation without a condition", name)
		}
		got, diags := a.Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("variable %q: validation: %s", name, diags.Error())
		}
		if !got.IsKnown() || got.IsNull() || got.False() {
			return false
		}
	}
	return true
}
