package terraform

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/autonomics/autonomics/services/marketplace/marketplaceenv"
	"github.com/autonomics/autonomics/services/signup/signupenv"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/telemetry"
	"github.com/autonomics/autonomics/shared/topic"
	"github.com/autonomics/autonomics/shared/webhook"
)

// The Marketplace side (marketplace.tf) held to services/marketplace,
// services/signup and shared/marketplace: two services (one private, one
// authenticating its callers itself), the push subscriptions of the
// Marketplace topic and of marketplace.* actions, the scheduled
// reconciliation and usage report, and what the two identities may do.

// Google's endpoints and the issuer of the sign-up JWTs.
const (
	procurementEndpoint    = "https://cloudcommerceprocurement.googleapis.com/"
	serviceControlEndpoint = "https://servicecontrol.googleapis.com/"
	marketplaceIssuer      = "https://www.googleapis.com/robot/v1/metadata/x509/cloud-commerce-partner@system.gserviceaccount.com"
)

// procurementKinds are the actions the Procurement actuator turns into
// Procurement API calls.
var procurementKinds = []string{
	"marketplace.approve_account",
	"marketplace.reject_account",
	"marketplace.approve_entitlement",
	"marketplace.reject_entitlement",
	"marketplace.approve_plan_change",
	"marketplace.reject_plan_change",
}

// marketplaceMetrics are the counters of the Marketplace side, by their
// key in local.metric_types, with the labels the charts group them by.
var marketplaceMetrics = map[string]struct {
	Name   string
	Labels []string
}{
	"marketplace_notifications": {"autonomics.marketplace.notifications", []string{"event_type", "outcome"}},
	"marketplace_drift":         {"autonomics.marketplace.drift", []string{"state"}},
	"marketplace_actions":       {"autonomics.marketplace.actions", []string{"kind", "outcome"}},
	"marketplace_usage_reports": {"autonomics.marketplace.usage_reports", []string{"outcome"}},
	"marketplace_signups":       {"autonomics.marketplace.signups", []string{"outcome"}},
}

// marketplaceVar returns var.marketplace of a configuration and whether
// it is enabled.
func marketplaceVar(t *testing.T, c *tfConfig) (cty.Value, bool) {
	t.Helper()
	v := c.Result.Vars["marketplace"]
	if v == cty.NilVal || !v.IsWhollyKnown() || v.IsNull() || !v.Type().IsObjectType() {
		t.Fatalf("var.marketplace = %#v, want a known object", v)
	}
	return v, v.GetAttr("enabled").True()
}

// marketplaceOn runs check for each evaluated configuration that enables
// the Marketplace side, and fails when none does: the tests below would
// hold nothing.
func marketplaceOn(t *testing.T, check func(t *testing.T, c *tfConfig, mv cty.Value)) {
	t.Helper()
	f := fixture(t)
	n := 0
	for _, c := range f.configs {
		mv, on := marketplaceVar(t, c)
		if !on {
			continue
		}
		n++
		t.Run(c.Name, func(t *testing.T) { check(t, c, mv) })
	}
	if n == 0 {
		t.Fatal("no environment enables var.marketplace; environments/dev.tfvars should")
	}
}

// runService returns the Cloud Run service <prefix>autonomics-<name>, or
// nil.
func runService(c *tfConfig, name string) *tfInstance {
	return byAttr(c, "google_cloud_run_v2_service", "name")[c.Prefix+"autonomics-"+name]
}

func mustService(t *testing.T, c *tfConfig, name string) *tfInstance {
	t.Helper()
	s := runService(c, name)
	if s == nil {
		t.Fatalf("no Cloud Run service %sautonomics-%s", c.Prefix, name)
	}
	return s
}

// serviceMember returns the IAM member of the identity a service runs as.
func serviceMember(s *tfInstance) string {
	return "serviceAccount:" + ctyString(s.Body.Path("template", "service_account"))
}

// accountEmail returns the email of the service account <prefix><id>.
func accountEmail(c *tfConfig, id string) string {
	for _, a := range c.Result.Find("google_service_account") {
		if a.Body.Str("account_id") == c.Prefix+id {
			return ctyString(a.Value.GetAttr("email"))
		}
	}
	return ""
}

// TestMarketplaceOnlyWhenEnabled: without var.marketplace.enabled nothing
// of the Marketplace side exists, not even an idle identity; with it,
// everything does.
func TestMarketplaceOnlyWhenEnabled(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		mv, on := marketplaceVar(t, c)
		if c.Name == "dev" && !on {
			t.Error("environments/dev.tfvars does not enable the Marketplace side")
		}
		for _, name := range []string{"marketplace", "signup"} {
			if got := runService(c, name) != nil; got != on {
				t.Errorf("Cloud Run service %sautonomics-%s exists = %v, want %v (var.marketplace.enabled)", c.Prefix, name, got, on)
			}
			if got := accountEmail(c, "svc-"+name) != ""; got != on {
				t.Errorf("service account %ssvc-%s exists = %v, want %v", c.Prefix, name, got, on)
			}
		}
		partner := ctyString(mv.GetAttr("partner_topic"))
		var subs, jobs []string
		for _, s := range c.Result.Find("google_pubsub_subscription") {
			ep := ctyString(s.Body.Path("push_config", "push_endpoint"))
			if strings.Contains(ep, "autonomics-marketplace") || (partner != "" && ctyString(s.Value.GetAttr("topic")) == partner) {
				subs = append(subs, s.Body.Str("name"))
			}
		}
		for _, j := range c.Result.Find("google_cloud_scheduler_job") {
			if strings.Contains(j.Body.Str("name"), "marketplace") {
				jobs = append(jobs, j.Body.Str("name"))
			}
		}
		want := 0
		if on {
			want = 2
		}
		if len(subs) != want || len(jobs) != want {
			t.Errorf("Marketplace subscriptions %q and jobs %q, want %d of each", subs, jobs, want)
		}
		out, ok := c.Result.Outputs["marketplace"]
		if !ok {
			t.Fatal("no output marketplace")
		}
		if out.IsNull() == on {
			t.Errorf("output marketplace = %#v with var.marketplace.enabled = %v", out, on)
		}
	})
}

// TestMarketplaceServiceIsPrivate: only the push identity and the
// scheduler identity may call the marketplace service, which accepts
// internal traffic only.
func TestMarketplaceServiceIsPrivate(t *testing.T) {
	marketplaceOn(t, func(t *testing.T, c *tfConfig, mv cty.Value) {
		s := mustService(t, c, "marketplace")
		if got := ctyIndex(s.Body.Attr("labels"), "component"); got != "marketplace" {
			t.Errorf("%s: component label %q, want marketplace", s.Addr(), got)
		}
		if got := s.Body.Str("ingress"); got != "INGRESS_TRAFFIC_INTERNAL_ONLY" {
			t.Errorf("%s: ingress %q, want INGRESS_TRAFFIC_INTERNAL_ONLY (only Pub/Sub and Cloud Scheduler call it)", s.Addr(), got)
		}
		if v := s.Body.Attr("invoker_iam_disabled"); v != cty.NilVal && v.IsKnown() && !v.IsNull() && v.True() {
			t.Errorf("%s: invoker_iam_disabled lets anyone call it", s.Addr())
		}
		var invokers []string
		for _, g := range grants(t, c) {
			if g.Type == "google_cloud_run_v2_service_iam_member" && g.Target == s.Body.Str("name") {
				invokers = append(invokers, g.Role+" "+g.Member)
			}
		}
		slices.Sort(invokers)
		want := []string{
			"roles/run.invoker serviceAccount:" + accountEmail(c, "pubsub-push"),
			"roles/run.invoker serviceAccount:" + accountEmail(c, "scheduler-invoker"),
		}
		slices.Sort(want)
		if !slices.Equal(invokers, want) {
			t.Errorf("grants on %s = %q, want exactly %q", s.Addr(), invokers, want)
		}
		if sa := ctyString(s.Body.Path("template", "service_account")); !strings.HasPrefix(sa, c.Prefix+"svc-marketplace@") {
			t.Errorf("%s runs as %q, want its own account %ssvc-marketplace", s.Addr(), sa, c.Prefix)
		}
		ct := s.Body.One("template").One("containers")
		if img, tag := ct.Str("image"), ctyString(c.Result.Vars["image_tag"]); !strings.HasSuffix(img, "/marketplace:"+tag) {
			t.Errorf("%s: image %q, want the marketplace image tagged %q", s.Addr(), img, tag)
		}
		for _, probe := range []string{"startup_probe", "liveness_probe"} {
			if got := ctyString(ct.Path(probe, "http_get", "path")); got != "/healthz" {
				t.Errorf("%s: %s path %q, want /healthz", s.Addr(), probe, got)
			}
		}
	})
}

// TestSignupAuthenticatesItself: the sign-up page takes every request at
// the Cloud Run layer (customers' browsers carry no Google identity) and
// is given what it needs to verify the Marketplace JWT.
func TestSignupAuthenticatesItself(t *testing.T) {
	marketplaceOn(t, func(t *testing.T, c *tfConfig, mv cty.Value) {
		s := mustService(t, c, "signup")
		if got := ctyIndex(s.Body.Attr("labels"), "component"); got != "signup" {
			t.Errorf("%s: component label %q, want signup", s.Addr(), got)
		}
		if got := s.Body.Str("ingress"); got != "INGRESS_TRAFFIC_ALL" {
			t.Errorf("%s: ingress %q, want INGRESS_TRAFFIC_ALL (customers arrive from Marketplace)", s.Addr(), got)
		}
		if v := s.Body.Attr("invoker_iam_disabled"); v == cty.NilVal || !v.IsKnown() || v.IsNull() || !v.True() {
			t.Errorf("%s: invoker_iam_disabled = %#v, want true: customers hold no identity Cloud Run could check", s.Addr(), v)
		}
		for _, g := range grants(t, c) {
			if g.Type == "google_cloud_run_v2_service_iam_member" && g.Target == s.Body.Str("name") {
				t.Errorf("%s grants %s %s on the sign-up service, whose invoker check is off", g.Addr, g.Member, g.Role)
			}
		}
		if sa := ctyString(s.Body.Path("template", "service_account")); !strings.HasPrefix(sa, c.Prefix+"svc-signup@") {
			t.Errorf("%s runs as %q, want its own account %ssvc-signup", s.Addr(), sa, c.Prefix)
		}
		if img, tag := s.Body.One("template").One("containers").Str("image"), ctyString(c.Result.Vars["image_tag"]); !strings.HasSuffix(img, "/signup:"+tag) {
			t.Errorf("%s: image %q, want the signup image tagged %q", s.Addr(), img, tag)
		}
		env := serviceEnv(s)
		if got, want := env[signupenv.Audience], ctyString(mv.GetAttr("signup_audience")); got == "" || got != want {
			t.Errorf("%s: %s = %q, want var.marketplace.signup_audience %q (never empty: tokens for anyone would pass)", s.Addr(), signupenv.Audience, got, want)
		}
		if got := env[signupenv.Issuer]; got != marketplaceIssuer {
			t.Errorf("%s: %s = %q, want Google's certificates %q", s.Addr(), signupenv.Issuer, got, marketplaceIssuer)
		}
		if got, want := env[signupenv.Redirect], ctyString(mv.GetAttr("signup_redirect")); got != want {
			t.Errorf("%s: %s = %q, want %q", s.Addr(), signupenv.Redirect, got, want)
		}
		if out := c.Result.Outputs["marketplace"]; !out.IsNull() {
			if got, want := ctyString(out.GetAttr("signup_url")), ctyString(s.Value.GetAttr("uri"))+"/signup"; got != want {
				t.Errorf("output marketplace.signup_url = %q, want %q (the URL Producer Portal sends customers to)", got, want)
			}
		}
	})
}

// TestSignupIssuerIsTheCodes holds the issuer Terraform configures to the
// one shared/marketplace/signup defaults to, read from its sources.
func TestSignupIssuerIsTheCodes(t *testing.T) {
	f := fixture(t)
	p, err := f.gm.pkg(f.gm.Path + "/shared/marketplace/signup")
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		t.Skip("shared/marketplace/signup holds no Go files yet")
	}
	if got, ok := p.Consts["GoogleIssuer"]; !ok || got != marketplaceIssuer {
		t.Errorf("shared/marketplace/signup GoogleIssuer = %q (declared %v), want %q as Terraform sets it", got, ok, marketplaceIssuer)
	}
}

// TestMarketplaceEnvironment: both services reach the same links (the
// monitor's database, one namespace), the Marketplace service Google's
// APIs, and the values of var.marketplace arrive as given.
func TestMarketplaceEnvironment(t *testing.T) {
	marketplaceOn(t, func(t *testing.T, c *tfConfig, mv cty.Value) {
		dbs := firestoreDatabases(t, c)
		m, s := mustService(t, c, "marketplace"), mustService(t, c, "signup")
		menv, senv := serviceEnv(m), serviceEnv(s)
		for _, svc := range []struct {
			inst *tfInstance
			env  map[string]string
		}{{m, menv}, {s, senv}} {
			for name, want := range map[string]string{
				"AUTONOMICS_MONITOR_DATABASE":   dbs[dbMonitor],
				"AUTONOMICS_FIRESTORE_DATABASE": dbs[dbMain],
				"AUTONOMICS_TOPIC_PREFIX":       c.Prefix,
				"AUTONOMICS_LISTEN_HOST":        "0.0.0.0",
				platform.EnvMarketplaceProvider: ctyString(mv.GetAttr("provider_id")),
			} {
				if got := svc.env[name]; got != want {
					t.Errorf("%s: %s = %q, want %q", svc.inst.Addr(), name, got, want)
				}
			}
			if svc.env[platform.EnvMarketplaceProvider] == "" {
				t.Errorf("%s: %s is empty", svc.inst.Addr(), platform.EnvMarketplaceProvider)
			}
		}
		if menv[platform.EnvMarketplaceNamespace] == "" || menv[platform.EnvMarketplaceNamespace] != senv[platform.EnvMarketplaceNamespace] {
			t.Errorf("%s = %q (marketplace) and %q (signup): the sign-up page writes the links the marketplace service reads", platform.EnvMarketplaceNamespace, menv[platform.EnvMarketplaceNamespace], senv[platform.EnvMarketplaceNamespace])
		}
		for name, want := range map[string]string{
			marketplaceenv.ProcurementEndpoint:    procurementEndpoint,
			marketplaceenv.ServiceControlEndpoint: serviceControlEndpoint,
			marketplaceenv.Service:                ctyString(mv.GetAttr("service_name")),
		} {
			if got := menv[name]; got != want {
				t.Errorf("%s: %s = %q, want %q", m.Addr(), name, got, want)
			}
		}
		var metrics map[string]string
		if err := json.Unmarshal([]byte(menv[marketplaceenv.UsageMetrics]), &metrics); err != nil {
			t.Fatalf("%s: %s = %q: %v", m.Addr(), marketplaceenv.UsageMetrics, menv[marketplaceenv.UsageMetrics], err)
		}
		want := map[string]string{}
		for it := mv.GetAttr("usage_metrics").ElementIterator(); it.Next(); {
			k, v := it.Element()
			want[k.AsString()] = v.AsString()
		}
		if !maps.Equal(metrics, want) {
			t.Errorf("%s: %s = %v, want var.marketplace.usage_metrics %v", m.Addr(), marketplaceenv.UsageMetrics, metrics, want)
		}
	})
}

// TestMarketplaceNotificationSubscription: the notifications of the
// Marketplace topic (Google's project) reach /v1/notifications/push by an
// authenticated push, retried, dead-lettered to this environment's topic.
func TestMarketplaceNotificationSubscription(t *testing.T) {
	marketplaceOn(t, func(t *testing.T, c *tfConfig, mv cty.Value) {
		s := mustService(t, c, "marketplace")
		uri := ctyString(s.Value.GetAttr("uri"))
		partner := ctyString(mv.GetAttr("partner_topic"))
		if !regexp.MustCompile(`^projects/[a-z][a-z0-9-]+/topics/.+$`).MatchString(partner) {
			t.Errorf("var.marketplace.partner_topic = %q, want the topic's full name", partner)
		}
		gs := grants(t, c)
		topics := byAttr(c, "google_pubsub_topic", "name")
		var found []*tfInstance
		for _, sub := range c.Result.Find("google_pubsub_subscription") {
			if ctyString(sub.Value.GetAttr("topic")) == partner {
				found = append(found, sub)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%d subscriptions on the Marketplace topic %s, want 1", len(found), partner)
		}
		sub := found[0]
		if got := ctyString(sub.Body.Path("push_config", "push_endpoint")); got != uri+"/v1/notifications/push" {
			t.Errorf("%s: push_endpoint %q, want %s/v1/notifications/push", sub.Addr(), got, uri)
		}
		if got := ctyString(sub.Body.Path("push_config", "oidc_token", "audience")); got != uri {
			t.Errorf("%s: OIDC audience %q, want %q", sub.Addr(), got, uri)
		}
		if v := sub.Body.Attr("filter"); v != cty.NilVal && ctyString(v) != "" {
			t.Errorf("%s: filter %q: every notification is mapped or ignored by the service, with the reason", sub.Addr(), ctyString(v))
		}
		checkPushSubscription(t, sub, topics[topic.Names{Prefix: c.Prefix}.DeadLetter()], gs, func(m string) bool {
			return hasGrant(gs, "google_cloud_run_v2_service_iam_member", s.Body.Str("name"), "roles/run.invoker", m)
		})
	})
}

// actionFilter matches the Pub/Sub filter of the actions subscription.
var actionFilter = regexp.MustCompile(`^hasPrefix\(attributes\.(\w+), "([^"]+)"\)$`)

// TestMarketplaceActionSubscription: the marketplace.* actions of the
// governors, and only those, reach /v1/actions/push in tenant order.
func TestMarketplaceActionSubscription(t *testing.T) {
	var kinds []string
	for _, m := range machines.New(nil) {
		kinds = append(kinds, m.Actions()...)
	}
	marketplaceOn(t, func(t *testing.T, c *tfConfig, mv cty.Value) {
		s := mustService(t, c, "marketplace")
		uri := ctyString(s.Value.GetAttr("uri"))
		names := topic.Names{Prefix: c.Prefix}
		topics := byAttr(c, "google_pubsub_topic", "name")
		gs := grants(t, c)
		sub := byAttr(c, "google_pubsub_subscription", "name")[names.Actions()+"-marketplace-push"]
		if sub == nil {
			t.Fatalf("no subscription %s-marketplace-push", names.Actions())
		}
		if got, want := ctyString(sub.Value.GetAttr("topic")), ctyString(topics[names.Actions()].Value.GetAttr("id")); got != want {
			t.Errorf("%s: topic %q, want the actions topic %q", sub.Addr(), got, want)
		}
		if got := ctyString(sub.Body.Path("push_config", "push_endpoint")); got != uri+"/v1/actions/push" {
			t.Errorf("%s: push_endpoint %q, want %s/v1/actions/push", sub.Addr(), got, uri)
		}
		if got := ctyString(sub.Body.Path("push_config", "oidc_token", "audience")); got != uri {
			t.Errorf("%s: OIDC audience %q, want %q", sub.Addr(), got, uri)
		}
		if got, want := sub.Body.Attr("enable_message_ordering"), c.Result.Vars["message_ordering"]; !got.IsKnown() || got.IsNull() || got.True() != want.True() {
			t.Errorf("%s: enable_message_ordering = %#v, want var.message_ordering (%v): an account is approved before its entitlements", sub.Addr(), got, want.True())
		}
		m := actionFilter.FindStringSubmatch(ctyString(sub.Body.Attr("filter")))
		if m == nil {
			t.Fatalf("%s: filter %q, want hasPrefix(attributes.%s, \"marketplace.\")", sub.Addr(), ctyString(sub.Body.Attr("filter")), webhook.AttrAction)
		}
		if m[1] != webhook.AttrAction {
			t.Errorf("%s: the filter reads attributes.%s; the engine names an action's kind in attributes.%s", sub.Addr(), m[1], webhook.AttrAction)
		}
		// What passes the filter is exactly what the Procurement actuator
		// handles, and the machines emit every kind it handles.
		var passes []string
		for _, k := range kinds {
			if strings.HasPrefix(k, m[2]) {
				passes = append(passes, k)
			}
		}
		for _, k := range setDiff(passes, procurementKinds) {
			t.Errorf("%s: action %s passes the filter %q but is no Procurement call", sub.Addr(), k, m[2])
		}
		for _, k := range setDiff(procurementKinds, passes) {
			t.Errorf("%s: no machine emits %s, or the filter %q refuses it", sub.Addr(), k, m[2])
		}
		checkPushSubscription(t, sub, topics[names.DeadLetter()], gs, func(mem string) bool {
			return hasGrant(gs, "google_cloud_run_v2_service_iam_member", s.Body.Str("name"), "roles/run.invoker", mem)
		})
	})
}

// TestMarketplaceJobs: Cloud Scheduler calls the reconciliation and the
// usage report on var.marketplace's schedules, as an identity that may.
func TestMarketplaceJobs(t *testing.T) {
	marketplaceOn(t, func(t *testing.T, c *tfConfig, mv cty.Value) {
		s := mustService(t, c, "marketplace")
		uri := ctyString(s.Value.GetAttr("uri"))
		gs := grants(t, c)
		jobs := map[string]*tfInstance{}
		for _, j := range c.Result.Find("google_cloud_scheduler_job") {
			jobs[ctyString(j.Body.Path("http_target", "uri"))] = j
		}
		for path, schedule := range map[string]string{
			"/v1/reconcile":    ctyString(mv.GetAttr("reconcile_schedule")),
			"/v1/usage/report": ctyString(mv.GetAttr("usage_schedule")),
		} {
			j, ok := jobs[uri+path]
			if !ok {
				t.Errorf("no Cloud Scheduler job calls %s%s", uri, path)
				continue
			}
			if got := ctyString(j.Body.Path("http_target", "http_method")); got != "POST" {
				t.Errorf("%s: http_method %q, want POST", j.Addr(), got)
			}
			if got := j.Body.Str("schedule"); got == "" || got != schedule {
				t.Errorf("%s: schedule %q, want %q", j.Addr(), got, schedule)
			}
			if got := ctyString(j.Body.Path("http_target", "oidc_token", "audience")); got != uri {
				t.Errorf("%s: OIDC audience %q, want %q", j.Addr(), got, uri)
			}
			sa := ctyString(j.Body.Path("http_target", "oidc_token", "service_account_email"))
			if sa == "" || !hasGrant(gs, "google_cloud_run_v2_service_iam_member", s.Body.Str("name"), "roles/run.invoker", "serviceAccount:"+sa) {
				t.Errorf("%s: its identity %q may not invoke the marketplace service", j.Addr(), sa)
			}
		}
	})
}

// marketplaceTopics are the topics each Marketplace identity publishes to.
func marketplaceTopics(names topic.Names) map[string][]string {
	return map[string][]string{
		// Events learned from Marketplace (domain topics, as a producer);
		// actuation_failed and usage_blocked/usage_restored (internal
		// topics); what it cannot read (dead letter).
		"marketplace": {
			names.Domain(governor.Entitlement), names.Domain(governor.CustomerAccount),
			names.Internal(governor.Entitlement), names.Internal(governor.CustomerAccount),
			names.DeadLetter(),
		},
		// customer_account requested/verified.
		"signup": {names.Domain(governor.CustomerAccount)},
	}
}

// TestMarketplaceAccess: each identity holds exactly its publishing
// rights, its Firestore roles (TestFirestoreAccess holds them per
// database) and the telemetry writers; nothing of the project beyond, and
// no role of the Consumer Procurement API, which is the customers' side.
func TestMarketplaceAccess(t *testing.T) {
	marketplaceOn(t, func(t *testing.T, c *tfConfig, mv cty.Value) {
		want := marketplaceTopics(topic.Names{Prefix: c.Prefix})
		gs := grants(t, c)
		for _, name := range []string{"marketplace", "signup"} {
			member := serviceMember(mustService(t, c, name))
			var published []string
			for _, g := range gs {
				if g.Member != member {
					continue
				}
				switch {
				case g.Type == "google_pubsub_topic_iam_member" && g.Role == "roles/pubsub.publisher":
					published = append(published, g.Target)
				case g.Type == "google_project_iam_member" && strings.HasPrefix(g.Role, "roles/datastore.") && g.Condition != "":
				case g.Type == "google_project_iam_member" && (g.Role == "roles/telemetry.tracesWriter" || g.Role == "roles/telemetry.metricsWriter"):
				default:
					t.Errorf("%s grants %s %s on %s (%s), which it does not need", g.Addr, name, g.Role, g.Target, g.Type)
				}
			}
			for _, tp := range setDiff(published, want[name]) {
				t.Errorf("%s may publish to %s; want only %q", name, tp, want[name])
			}
			for _, tp := range setDiff(want[name], published) {
				t.Errorf("%s may not publish to %s, which it sends to", name, tp)
			}
		}
	})
}

// TestMarketplaceMetrics: local.metric_types names the five counters of
// the Marketplace side as the Telemetry API stores them, the code's
// instruments are those counters with the labels the charts use, and with
// the Marketplace side enabled an alert watches failed Procurement calls
// and usage reports of this environment's service.
func TestMarketplaceMetrics(t *testing.T) {
	f := fixture(t)
	ins := codeInstruments(t, f)
	byName := map[string]instrument{}
	for _, in := range ins {
		byName[in.Name] = in
	}
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		types := c.Result.Locals["metric_types"]
		if !types.IsWhollyKnown() {
			t.Fatalf("local.metric_types is not known")
		}
		for key, m := range marketplaceMetrics {
			want := telemetry.MetricType(m.Name, telemetry.KindCounter)
			if !types.Type().HasAttribute(key) || ctyString(types.GetAttr(key)) != want {
				t.Errorf("local.metric_types.%s is not %q", key, want)
			}
			in, ok := byName[m.Name]
			if !ok {
				t.Errorf("no instrument of the code is named %s", m.Name)
				continue
			}
			if in.Type() != want {
				t.Errorf("%s: %s becomes %s, want a counter %s", in.Pos, in.Name, in.Type(), want)
			}
			for _, l := range m.Labels {
				if !slices.Contains(in.Keys, l) {
					t.Errorf("%s: the package of %s writes no label %q (it writes %q)", in.Pos, in.Name, l, in.Keys)
				}
			}
		}
		_, on := marketplaceVar(t, c)
		var watched []string
		for _, p := range c.Result.Find("google_monitoring_alert_policy") {
			for _, cond := range p.Body.Sub("conditions") {
				b := cond.One("condition_threshold")
				if b == nil {
					continue
				}
				filter := ctyString(b.Attr("filter"))
				for _, key := range []string{"marketplace_actions", "marketplace_usage_reports"} {
					if strings.Contains(filter, `"`+ctyString(types.GetAttr(key))+`"`) {
						watched = append(watched, key)
						if !strings.Contains(filter, `resource.label.namespace = "`+c.Prefix+`autonomics-marketplace"`) {
							t.Errorf("%s: the filter %q does not select this environment's marketplace service", p.Addr(), filter)
						}
					}
				}
			}
		}
		slices.Sort(watched)
		if want := []string{"marketplace_actions", "marketplace_usage_reports"}; on && !slices.Equal(watched, want) {
			t.Errorf("alert conditions watch %q, want %q", watched, want)
		} else if !on && len(watched) > 0 {
			t.Errorf("alert conditions watch %q without the Marketplace side", watched)
		}
	})
}

// TestMarketplaceDeliveriesAreWatched: the dead-letter and backlog alerts
// cover the two Marketplace subscriptions.
func TestMarketplaceDeliveriesAreWatched(t *testing.T) {
	marketplaceOn(t, func(t *testing.T, c *tfConfig, mv cty.Value) {
		watched := listStrings(c.Result.Locals["delivery_subscriptions"])
		for _, sub := range c.Result.Find("google_pubsub_subscription") {
			ep := ctyString(sub.Body.Path("push_config", "push_endpoint"))
			if strings.HasPrefix(ep, ctyString(mustService(t, c, "marketplace").Value.GetAttr("uri"))+"/") && !slices.Contains(watched, sub.Body.Str("name")) {
				t.Errorf("%s (%s) is not in local.delivery_subscriptions, which the alerts watch", sub.Addr(), sub.Body.Str("name"))
			}
		}
	})
}

// TestMarketplaceVariable evaluates the configuration without a prefix,
// with the Marketplace side enabled with the defaults of its schedules,
// and checks the names and values the code is given.
func TestMarketplaceVariable(t *testing.T) {
	f := fixture(t)
	const partner = "projects/cloudcommerceproc-prod/topics/acme-saas"
	mv := cty.ObjectVal(map[string]cty.Value{
		"enabled":         cty.True,
		"provider_id":     cty.StringVal("acme-saas"),
		"partner_topic":   cty.StringVal(partner),
		"service_name":    cty.StringVal("acme.endpoints.acme-project.cloud.goog"),
		"signup_audience": cty.StringVal("acme.example.com"),
		"signup_redirect": cty.StringVal("https://acme.example.com/welcome"),
		"usage_metrics": cty.MapVal(map[string]cty.Value{
			"api_calls": cty.StringVal("acme.endpoints.acme-project.cloud.goog/api_calls"),
			"storage":   cty.StringVal("acme.endpoints.acme-project.cloud.goog/storage_gib"),
		}),
	})
	r := f.eval.Evaluate(f.root, map[string]cty.Value{
		"project": cty.StringVal(testProject), "source_archive": cty.StringVal(f.archive),
		"marketplace": mv, "message_ordering": cty.False,
	}, "")
	for _, d := range r.Diags {
		if d.Severity == hcl.DiagError {
			t.Fatalf("evaluation: %s", d.Error())
		}
	}
	c := &tfConfig{Name: "marketplace", Prefix: "", Result: r}
	got, _ := marketplaceVar(t, c)
	for attr, want := range map[string]string{"reconcile_schedule": "0 */6 * * *", "usage_schedule": "5 * * * *"} {
		if s := ctyString(got.GetAttr(attr)); s != want {
			t.Errorf("var.marketplace.%s defaults to %q, want %q", attr, s, want)
		}
	}
	m := mustService(t, c, "marketplace")
	if got := serviceMember(m); got != "serviceAccount:svc-marketplace@"+testProject+".iam.gserviceaccount.com" {
		t.Errorf("the marketplace service runs as %q", got)
	}
	env := serviceEnv(m)
	var metrics map[string]string
	if err := json.Unmarshal([]byte(env[marketplaceenv.UsageMetrics]), &metrics); err != nil || len(metrics) != 2 || metrics["storage"] != "acme.endpoints.acme-project.cloud.goog/storage_gib" {
		t.Errorf("%s = %q (%v), want both usage metrics", marketplaceenv.UsageMetrics, env[marketplaceenv.UsageMetrics], err)
	}
	if got := serviceEnv(mustService(t, c, "signup"))[signupenv.Redirect]; got != "https://acme.example.com/welcome" {
		t.Errorf("%s = %q", signupenv.Redirect, got)
	}
	sub := byAttr(c, "google_pubsub_subscription", "name")["autonomics-actions-marketplace-push"]
	if sub == nil {
		t.Fatal("no subscription autonomics-actions-marketplace-push")
	}
	if v := sub.Body.Attr("enable_message_ordering"); !v.IsKnown() || v.True() {
		t.Errorf("%s: enable_message_ordering = %#v with var.message_ordering = false", sub.Addr(), v)
	}
	var onPartner []string
	for _, s := range c.Result.Find("google_pubsub_subscription") {
		if ctyString(s.Value.GetAttr("topic")) == partner {
			onPartner = append(onPartner, s.Body.Str("name"))
		}
	}
	if want := []string{"autonomics-marketplace-notifications-push"}; !slices.Equal(onPartner, want) {
		t.Errorf("subscriptions on %s = %q, want %q", partner, onPartner, want)
	}
	out := c.Result.Outputs["marketplace"]
	if out.IsNull() || ctyString(out.GetAttr("service_account")) != "svc-marketplace@"+testProject+".iam.gserviceaccount.com" {
		t.Errorf("output marketplace = %#v, want the account to link in Producer Portal", out)
	}
}
