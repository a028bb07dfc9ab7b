package terraform

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/ingest"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/topic"
)

// The ingest API (ingest.tf) held to services/ingest and shared/ingest:
// its service (open at the Cloud Run layer, authenticating itself), what
// its identity may do, and the producer rules it is given.

// ingestService returns the ingest API's Cloud Run service.
func ingestService(t *testing.T, c *tfConfig) *tfInstance {
	t.Helper()
	s, ok := byAttr(c, "google_cloud_run_v2_service", "name")[c.Prefix+"autonomics-ingest"]
	if !ok {
		t.Fatalf("no Cloud Run service %sautonomics-ingest", c.Prefix)
	}
	return s
}

// ingestEnv returns the ingest service's environment: plain values, and
// the secret behind each variable that Secret Manager fills.
func ingestEnv(s *tfInstance) (plain map[string]string, secrets map[string]string) {
	plain, secrets = map[string]string{}, map[string]string{}
	for _, ct := range s.Body.One("template").Sub("containers") {
		for _, e := range ct.Sub("env") {
			if ref := e.Path("value_source", "secret_key_ref", "secret"); ctyString(ref) != "" {
				secrets[e.Str("name")] = ctyString(ref) + "@" + ctyString(e.Path("value_source", "secret_key_ref", "version"))
				continue
			}
			plain[e.Str("name")] = ctyString(e.Attr("value"))
		}
	}
	return plain, secrets
}

func TestIngestService(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		s := ingestService(t, c)
		if got := ctyIndex(s.Body.Attr("labels"), "component"); got != "ingest" {
			t.Errorf("%s: component label %q, want ingest", s.Addr(), got)
		}
		// Producers outside Google call it: every request reaches the
		// service, which authenticates it (shared/ingest).
		if got := s.Body.Str("ingress"); got != "INGRESS_TRAFFIC_ALL" {
			t.Errorf("%s: ingress %q, want INGRESS_TRAFFIC_ALL (producers call from outside Google)", s.Addr(), got)
		}
		if v := s.Body.Attr("invoker_iam_disabled"); v == cty.NilVal || !v.IsKnown() || v.IsNull() || !v.True() {
			t.Errorf("%s: invoker_iam_disabled = %#v, want true: HMAC producers hold no Google identity", s.Addr(), v)
		}
		for _, g := range grants(t, c) {
			if g.Type == "google_cloud_run_v2_service_iam_member" && g.Target == s.Body.Str("name") {
				t.Errorf("%s grants %s %s on the ingest service, whose invoker check is off: it authenticates itself", g.Addr, g.Member, g.Role)
			}
		}
		if sa := ctyString(s.Body.Path("template", "service_account")); !strings.HasPrefix(sa, c.Prefix+"svc-ingest@") {
			t.Errorf("%s runs as %q, want its own account %ssvc-ingest", s.Addr(), sa, c.Prefix)
		}
		ct := s.Body.One("template").One("containers")
		if img, tag := ct.Str("image"), ctyString(c.Result.Vars["image_tag"]); !strings.HasSuffix(img, "/ingest:"+tag) {
			t.Errorf("%s: image %q, want the ingest image tagged %q", s.Addr(), img, tag)
		}
		for _, probe := range []string{"startup_probe", "liveness_probe"} {
			if got := ctyString(ct.Path(probe, "http_get", "path")); got != "/healthz" {
				t.Errorf("%s: %s path %q, want /healthz", s.Addr(), probe, got)
			}
		}
		plain, secrets := ingestEnv(s)
		rules, err := ingest.ParseRules([]byte(plain["AUTONOMICS_INGEST_PRODUCERS"]), machines.New(nil))
		if err != nil {
			t.Errorf("%s: AUTONOMICS_INGEST_PRODUCERS = %q does not parse: %v", s.Addr(), plain["AUTONOMICS_INGEST_PRODUCERS"], err)
		} else if got, want := len(rules.Producers()), listLen(c.Result.Vars["ingest_producers"]); got != want {
			t.Errorf("%s: %d producers in the environment, var.ingest_producers has %d", s.Addr(), got, want)
		}
		if got, want := plain["AUTONOMICS_INGEST_AUDIENCE"], ctyString(c.Result.Outputs["ingest_audience"]); got == "" || got != want {
			t.Errorf("%s: AUTONOMICS_INGEST_AUDIENCE = %q, want the output ingest_audience %q (not empty: an empty audience would take tokens for any service)", s.Addr(), got, want)
		}
		if got := plain["AUTONOMICS_TOPIC_PREFIX"]; got != c.Prefix {
			t.Errorf("%s: AUTONOMICS_TOPIC_PREFIX = %q, want %q: it publishes to this environment's domain topics", s.Addr(), got, c.Prefix)
		}
		if got, want := secrets["AUTONOMICS_INGEST_HMAC_KEYS"], c.Prefix+"ingest-hmac-keys@latest"; got != want {
			t.Errorf("%s: AUTONOMICS_INGEST_HMAC_KEYS comes from %q, want the secret %s", s.Addr(), got, want)
		}
		if _, ok := plain["AUTONOMICS_INGEST_HMAC_KEYS"]; ok {
			t.Errorf("%s: the HMAC keys are a plain environment variable", s.Addr())
		}
	})
}

// openServices returns the Cloud Run services whose invoker check is off,
// because they authenticate every request themselves: the ingest API (ID
// tokens, HMAC signatures) and, with the Marketplace side, the sign-up
// page (the Marketplace JWT).
func openServices(t *testing.T, c *tfConfig) []string {
	out := []string{c.Prefix + "autonomics-ingest"}
	if marketplaceEnabled(t, c) {
		out = append(out, c.Prefix+"autonomics-signup")
	}
	slices.Sort(out)
	return out
}

// TestOnlySelfAuthenticatingServicesAreOpen: the invoker check is off on
// the ingest API and the sign-up page, which authenticate every request
// themselves, and on no other service.
func TestOnlySelfAuthenticatingServicesAreOpen(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		var open []string
		for _, s := range c.Result.Find("google_cloud_run_v2_service") {
			if v := s.Body.Attr("invoker_iam_disabled"); v != cty.NilVal && v.IsKnown() && !v.IsNull() && v.True() {
				open = append(open, s.Body.Str("name"))
			}
		}
		slices.Sort(open)
		if want := openServices(t, c); !slices.Equal(open, want) {
			t.Errorf("services without the invoker check: %q, want only %q", open, want)
		}
	})
}

func TestIngestAccess(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		names := topic.Names{Prefix: c.Prefix}
		member := "serviceAccount:" + ctyString(ingestService(t, c).Body.Path("template", "service_account"))
		secret := byAttr(c, "google_secret_manager_secret", "secret_id")[c.Prefix+"ingest-hmac-keys"]
		if secret == nil {
			t.Fatalf("no secret %singest-hmac-keys", c.Prefix)
		}
		secretID := ctyString(secret.Value.GetAttr("id"))
		var want []string
		for _, d := range governor.Domains {
			want = append(want, names.Domain(d))
		}
		var published, accessors []string
		for _, g := range grants(t, c) {
			if g.Type == "google_secret_manager_secret_iam_member" && g.Target == secretID {
				accessors = append(accessors, g.Role+" "+g.Member)
			}
			if g.Member != member {
				continue
			}
			switch {
			case g.Type == "google_pubsub_topic_iam_member" && g.Role == "roles/pubsub.publisher":
				published = append(published, g.Target)
			case g.Type == "google_secret_manager_secret_iam_member" && g.Role == "roles/secretmanager.secretAccessor" && g.Target == secretID:
			case g.Type == "google_project_iam_member" && (g.Role == "roles/telemetry.tracesWriter" || g.Role == "roles/telemetry.metricsWriter"):
			default:
				t.Errorf("%s grants the ingest API %s on %s (%s), which it does not need", g.Addr, g.Role, g.Target, g.Type)
			}
		}
		for _, tp := range setDiff(published, want) {
			t.Errorf("the ingest API may publish to %s, not a domain topic", tp)
		}
		for _, tp := range setDiff(want, published) {
			t.Errorf("the ingest API may not publish to the domain topic %s", tp)
		}
		if w := []string{"roles/secretmanager.secretAccessor " + member}; !slices.Equal(accessors, w) {
			t.Errorf("grants on the HMAC keys = %q, want %q", accessors, w)
		}
		// Terraform's version of the secret holds no key: state must not.
		for _, v := range c.Result.Find("google_secret_manager_secret_version") {
			if v.Body.Str("secret") != secretID {
				continue
			}
			keys, err := ingest.ParseKeys([]byte(v.Body.Str("secret_data")))
			if err != nil || len(keys) != 0 {
				t.Errorf("%s: secret_data holds keys (%d, %v); Terraform creates the secret empty", v.Addr(), len(keys), err)
			}
		}
	})
}

// TestIngestProducersVariable evaluates the configuration with producers
// and checks that the code reads var.ingest_producers as given.
func TestIngestProducersVariable(t *testing.T) {
	f := fixture(t)
	const producers = `[
	  { name = "billing", class = "external", key_ids = ["billing-1", "billing-2"], types = ["autonomics.billing.*"], tenants = ["*"], rate = 20 },
	  { name = "adapter", class = "marketplace", email = "adapter@p.iam.gserviceaccount.com", types = ["autonomics.entitlement.*"], tenants = ["acme", "globex"] },
	]`
	expr, diags := hclsyntax.ParseExpression([]byte(producers), "producers", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, prefix := range []string{"", "dev-"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			r := f.eval.Evaluate(f.root, map[string]cty.Value{
				"project": cty.StringVal(testProject), "source_archive": cty.StringVal(f.archive),
				"prefix": cty.StringVal(prefix), "ingest_producers": v,
			}, "")
			for _, d := range r.Diags {
				if d.Severity == hcl.DiagError {
					t.Errorf("evaluation: %s", d.Error())
				}
			}
			c := &tfConfig{Name: prefix, Prefix: prefix, Result: r}
			plain, _ := ingestEnv(ingestService(t, c))
			rules, err := ingest.ParseRules([]byte(plain["AUTONOMICS_INGEST_PRODUCERS"]), machines.New(nil))
			if err != nil {
				t.Fatalf("AUTONOMICS_INGEST_PRODUCERS = %s: %v", plain["AUTONOMICS_INGEST_PRODUCERS"], err)
			}
			b, a := rules.ByKeyID("billing-2"), rules.ByEmail("adapter@p.iam.gserviceaccount.com")
			if b == nil || b.Rate != 20 || b.Burst != ingest.DefaultBurst || b.Source() != "ingest/billing" {
				t.Errorf("billing = %+v, want key billing-2, rate 20, the default burst", b)
			}
			if a == nil || a.Source() != "marketplace/adapter" || !slices.Equal(a.Tenants, []string{"acme", "globex"}) {
				t.Errorf("adapter = %+v, want a marketplace producer for acme and globex", a)
			}
			if got, want := plain["AUTONOMICS_INGEST_AUDIENCE"], testProject+"/"+prefix+"autonomics-ingest"; got != want {
				t.Errorf("AUTONOMICS_INGEST_AUDIENCE = %q, want %q", got, want)
			}
		})
	}
}

// listLen returns the length of a known list, 0 otherwise.
func listLen(v cty.Value) int {
	if v == cty.NilVal || !v.IsKnown() || v.IsNull() || !v.CanIterateElements() {
		return 0
	}
	return v.LengthInt()
}
