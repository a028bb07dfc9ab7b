package terraform

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/telemetry"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/fswebhook"
)

// The webhook actuator (actuator.tf) held to services/actuator and
// shared/webhook: its service, push subscription and sweep job, and what
// its identity may do.

// actuatorTopics are the topics the actuator publishes to: dead letters,
// and actuation_failed to the internal topic of every domain whose machine
// actuates.
func actuatorTopics(names topic.Names, ms map[governor.Domain]*governor.Machine) []string {
	out := []string{names.DeadLetter()}
	for _, d := range governor.Domains {
		if len(ms[d].Actions()) > 0 {
			out = append(out, names.Internal(d))
		}
	}
	return out
}

// actuator returns the actuator's Cloud Run service of a configuration.
func actuator(t *testing.T, c *tfConfig) *tfInstance {
	t.Helper()
	s, ok := byAttr(c, "google_cloud_run_v2_service", "name")[c.Prefix+"autonomics-actuator"]
	if !ok {
		t.Fatalf("no Cloud Run service %sautonomics-actuator", c.Prefix)
	}
	return s
}

func TestActuatorService(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		s := actuator(t, c)
		if got := ctyIndex(s.Body.Attr("labels"), "component"); got != "actuator" {
			t.Errorf("%s: component label %q, want actuator", s.Addr(), got)
		}
		sa := ctyString(s.Body.Path("template", "service_account"))
		if !strings.HasPrefix(sa, c.Prefix+"svc-actuator@") {
			t.Errorf("%s runs as %q, want its own account %ssvc-actuator", s.Addr(), sa, c.Prefix)
		}
		ct := s.Body.One("template").One("containers")
		if img := ct.Str("image"); !strings.Contains(img, "/actuator:") {
			t.Errorf("%s: image %q is not the actuator's", s.Addr(), img)
		}
		// Attempts go on after a push is answered: the CPU stays allocated.
		if v := ct.One("resources").Attr("cpu_idle"); v == cty.NilVal || !v.IsKnown() || v.True() {
			t.Errorf("%s: cpu_idle = %#v, want false", s.Addr(), v)
		}
		env := serviceEnv(s)
		push := ""
		for _, a := range c.Result.Find("google_service_account") {
			if a.Body.Str("account_id") == c.Prefix+"pubsub-push" {
				push = ctyString(a.Value.GetAttr("email"))
			}
		}
		for name, want := range map[string]string{
			"AUTONOMICS_MONITOR_DATABASE":        firestoreDatabases(t, c)[dbMonitor],
			"AUTONOMICS_ACTUATOR_ALLOW_LOOPBACK": "false",
			"AUTONOMICS_ACTUATOR_INLINE_SECRETS": "false",
			"AUTONOMICS_ACTUATOR_SWEEP_INTERVAL": "0",
			"AUTONOMICS_ACTUATOR_PUSH_CALLERS":   push,
		} {
			if got := env[name]; got != want || want == "" {
				t.Errorf("%s: %s = %q, want %q", s.Addr(), name, got, want)
			}
		}
	})
}

func TestActuatorPushSubscription(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		s := actuator(t, c)
		uri := ctyString(s.Value.GetAttr("uri"))
		names := topic.Names{Prefix: c.Prefix}
		topics := byAttr(c, "google_pubsub_topic", "name")
		gs := grants(t, c)
		var push *tfInstance
		for _, sub := range c.Result.Find("google_pubsub_subscription") {
			if ctyString(sub.Body.Path("push_config", "push_endpoint")) == uri+"/v1/actions/push" {
				push = sub
			}
		}
		if push == nil {
			t.Fatalf("no push subscription delivers to %s/v1/actions/push", uri)
		}
		if got, want := ctyString(push.Value.GetAttr("topic")), ctyString(topics[names.Actions()].Value.GetAttr("id")); got != want {
			t.Errorf("%s: topic = %q, want the actions topic %q", push.Addr(), got, want)
		}
		if v := push.Body.Attr("enable_message_ordering"); v == cty.NilVal || !v.IsKnown() || !v.True() {
			t.Errorf("%s: enable_message_ordering = %#v, want true (tenant order)", push.Addr(), v)
		}
		if got := ctyString(push.Body.Path("push_config", "oidc_token", "audience")); got != uri {
			t.Errorf("%s: OIDC audience %q, want %q", push.Addr(), got, uri)
		}
		checkPushSubscription(t, push, topics[names.DeadLetter()], gs, func(m string) bool {
			return hasGrant(gs, "google_cloud_run_v2_service_iam_member", s.Body.Str("name"), "roles/run.invoker", m)
		})
	})
}

func TestActuatorSweepJob(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		s := actuator(t, c)
		uri := ctyString(s.Value.GetAttr("uri"))
		gs := grants(t, c)
		var job *tfInstance
		for _, j := range c.Result.Find("google_cloud_scheduler_job") {
			if ctyString(j.Body.Path("http_target", "uri")) == uri+"/v1/sweep" {
				job = j
			}
		}
		if job == nil {
			t.Fatalf("no Cloud Scheduler job calls %s/v1/sweep", uri)
		}
		if m := ctyString(job.Body.Path("http_target", "http_method")); m != "POST" {
			t.Errorf("%s: http_method %q, want POST", job.Addr(), m)
		}
		if got := job.Body.Str("schedule"); got != "* * * * *" {
			t.Errorf("%s: schedule %q, want every minute", job.Addr(), got)
		}
		sa := ctyString(job.Body.Path("http_target", "oidc_token", "service_account_email"))
		if sa == "" || !hasGrant(gs, "google_cloud_run_v2_service_iam_member", s.Body.Str("name"), "roles/run.invoker", "serviceAccount:"+sa) {
			t.Errorf("%s: its identity %q may not invoke the actuator", job.Addr(), sa)
		}
	})
}

// actuatorGrants returns the grants of the actuator's identity.
func actuatorGrants(t *testing.T, c *tfConfig) (string, []grant) {
	t.Helper()
	member := "serviceAccount:" + ctyString(actuator(t, c).Body.Path("template", "service_account"))
	var out []grant
	for _, g := range grants(t, c) {
		if g.Member == member {
			out = append(out, g)
		}
	}
	return member, out
}

func TestActuatorPublishesOnlyWhereItReports(t *testing.T) {
	ms := machines.New(nil)
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		_, gs := actuatorGrants(t, c)
		var got []string
		for _, g := range gs {
			if strings.HasPrefix(g.Role, "roles/pubsub.") {
				if g.Role != "roles/pubsub.publisher" || g.Type != "google_pubsub_topic_iam_member" {
					t.Errorf("%s grants the actuator %s on %s", g.Addr, g.Role, g.Target)
					continue
				}
				got = append(got, g.Target)
			}
		}
		want := actuatorTopics(topic.Names{Prefix: c.Prefix}, ms)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("the actuator publishes to %q, want %q: dead letters and the internal topics of the domains that actuate", got, want)
		}
	})
}

func TestActuatorFirestoreOnlyItsDatabase(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		dbs := firestoreDatabases(t, c)
		_, gs := actuatorGrants(t, c)
		var got []string
		for _, g := range gs {
			if !strings.HasPrefix(g.Role, "roles/datastore.") {
				continue
			}
			m := firestoreCondition.FindStringSubmatch(g.Condition)
			if m == nil {
				t.Errorf("%s: %s with condition %q, which does not name one database", g.Addr, g.Role, g.Condition)
				continue
			}
			got = append(got, g.Role+" "+m[2])
		}
		if want := []string{"roles/datastore.user " + dbs[dbMonitor]}; !slices.Equal(got, want) {
			t.Errorf("the actuator's Firestore roles = %q, want %q (never the governors' database %q)", got, want, dbs[dbMain])
		}
		for _, g := range gs {
			if g.Type == "google_project_iam_member" && !strings.HasPrefix(g.Role, "roles/datastore.") && !strings.HasPrefix(g.Role, "roles/telemetry.") {
				t.Errorf("%s grants the actuator %s on the project", g.Addr, g.Role)
			}
		}
	})
}

// TestActuatorEndpointSecrets evaluates the configuration with initial
// endpoints: one naming its secrets, one without, whose secret Terraform
// creates. The actuator may read exactly those secrets, and the endpoints
// reach it as Secret Manager version names, never values.
func TestActuatorEndpointSecrets(t *testing.T) {
	f := fixture(t)
	obj := func(url string, kinds []string, secrets []string) cty.Value {
		ks := make([]cty.Value, len(kinds))
		for i, k := range kinds {
			ks[i] = cty.StringVal(k)
		}
		ss := cty.ListValEmpty(cty.String)
		if len(secrets) > 0 {
			var vs []cty.Value
			for _, s := range secrets {
				vs = append(vs, cty.StringVal(s))
			}
			ss = cty.ListVal(vs)
		}
		return cty.ObjectVal(map[string]cty.Value{"url": cty.StringVal(url), "kinds": cty.ListVal(ks), "secrets": ss, "disabled": cty.False})
	}
	r := f.eval.Evaluate(f.root, map[string]cty.Value{
		"project":        cty.StringVal(testProject),
		"source_archive": cty.StringVal(f.archive),
		"prefix":         cty.StringVal("dev-"),
		"actuator_endpoints": cty.MapVal(map[string]cty.Value{
			"billing": obj("https://billing.example.com/hooks", []string{"billing.issue_invoice"}, []string{"billing-hook-old", "billing-hook-new"}),
			"ops":     obj("https://ops.example.com/in", []string{"*"}, nil),
		}),
	}, "")
	for _, d := range r.Diags {
		if d.Severity == hcl.DiagError {
			t.Fatalf("evaluation: %s", d.Error())
		}
	}
	c := &tfConfig{Name: "endpoints", Prefix: "dev-", Result: r}
	var created []string
	for _, s := range c.Result.Find("google_secret_manager_secret") {
		if strings.HasPrefix(s.Body.Str("secret_id"), "dev-actuator-") {
			created = append(created, s.Body.Str("secret_id"))
		}
	}
	if want := []string{"dev-actuator-ops"}; !slices.Equal(created, want) {
		t.Errorf("secrets created for the endpoints = %q, want %q", created, want)
	}
	_, gs := actuatorGrants(t, c)
	var readable []string
	for _, g := range gs {
		if g.Type == "google_secret_manager_secret_iam_member" {
			if g.Role != "roles/secretmanager.secretAccessor" {
				t.Errorf("%s grants the actuator %s", g.Addr, g.Role)
			}
			readable = append(readable, g.Target)
		}
	}
	slices.Sort(readable)
	want := []string{
		"projects/" + testProject + "/secrets/billing-hook-new",
		"projects/" + testProject + "/secrets/billing-hook-old",
		"projects/" + testProject + "/secrets/dev-actuator-ops",
	}
	if !slices.Equal(readable, want) {
		t.Errorf("secrets the actuator may read = %q, want %q", readable, want)
	}
	env := serviceEnv(actuator(t, c))[("AUTONOMICS_ACTUATOR_ENDPOINTS")]
	var eps map[string]struct {
		URL     string   `json:"url"`
		Kinds   []string `json:"kinds"`
		Secrets []string `json:"secrets"`
	}
	if err := json.Unmarshal([]byte(env), &eps); err != nil {
		t.Fatalf("AUTONOMICS_ACTUATOR_ENDPOINTS = %q: %v", env, err)
	}
	if len(eps) != 2 {
		t.Fatalf("AUTONOMICS_ACTUATOR_ENDPOINTS has %d endpoints, want 2", len(eps))
	}
	for id, e := range eps {
		for _, s := range e.Secrets {
			if !webhook.IsSecretRef(s) {
				t.Errorf("endpoint %s: secret %q is not a Secret Manager version name", id, s)
			}
		}
	}
	if got := eps["ops"].Secrets; len(got) != 1 || got[0] != "projects/"+testProject+"/secrets/dev-actuator-ops/versions/latest" {
		t.Errorf("endpoint ops: secrets %q, want the created secret's latest version", got)
	}
}

func TestActuatorMetricAndAlert(t *testing.T) {
	want := telemetry.MetricType(webhook.MetricFailures, telemetry.KindOf(sdkmetric.InstrumentKindCounter))
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		ins := codeInstruments(t, f)
		if _, ok := ins[want]; !ok {
			t.Fatalf("no instrument of the code becomes %s", want)
		}
		v := c.Result.Locals["actuator_metric_types"]
		if !v.IsWhollyKnown() || ctyString(v.GetAttr("failures")) != want {
			t.Errorf("local.actuator_metric_types.failures = %#v, want %q", v, want)
		}
		found := false
		for _, p := range c.Result.Find("google_monitoring_alert_policy") {
			for _, cond := range p.Body.Sub("conditions") {
				if b := cond.One("condition_threshold"); b != nil && strings.Contains(ctyString(b.Attr("filter")), want) {
					found = true
					if !strings.Contains(ctyString(b.Attr("filter")), `"`+c.Prefix+`autonomics-actuator"`) {
						t.Errorf("%s: the filter does not select this environment's actuator", p.Addr())
					}
				}
			}
		}
		if !found {
			t.Errorf("no alert policy watches %s", want)
		}
	})
}

// TestActuatorFirestoreFields checks the TTL policies and exemptions that
// shared/webhook/fswebhook documents, in the monitor's database.
func TestActuatorFirestoreFields(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		db := firestoreDatabases(t, c)[dbMonitor]
		have := map[string]*tfInstance{}
		for _, fl := range c.Result.Find("google_firestore_field") {
			if fl.Body.Str("database") == db {
				have[fl.Body.Str("collection")+"."+fl.Body.Str("field")] = fl
			}
		}
		for _, col := range []string{fswebhook.ColActions, fswebhook.ColDeliveries, fswebhook.ColAttempts} {
			fl, ok := have[col+".expire_at"]
			if !ok || fl.Body.One("ttl_config") == nil {
				t.Errorf("no TTL policy on %s.expire_at in %q", col, db)
			}
		}
		for _, name := range []string{"actions.data", "actions.raw", "actions.attributes", "attempts.response"} {
			fl, ok := have[name]
			if !ok || fl.Body.One("index_config") == nil || len(fl.Body.One("index_config").Sub("indexes")) > 0 {
				t.Errorf("%s is not exempt from indexing in %q", name, db)
			}
		}
	})
}
