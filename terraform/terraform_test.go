package terraform

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/platform"
	"github.com/autonomics/autonomics/shared/topic"
)

const testProject = "test-project"

// tfConfig is the configuration evaluated for one set of variables.
type tfConfig struct {
	Name    string // default, dev or prod
	Prefix  string
	Archive string // content-derived object name the archive must get
	Result  *tfResult
}

type testFixture struct {
	archive string // path of the stand-in source archive
	gm      *goModule
	regs    []registration
	root    *tfModule
	eval    *evaluator
	configs []*tfConfig
}

var (
	fixtureOnce sync.Once
	fixtureVal  *testFixture
	fixtureErr  error
)

// fixture parses the code and evaluates the configuration with no
// variable file and with each file of environments/.
func fixture(t *testing.T) *testFixture {
	t.Helper()
	fixtureOnce.Do(func() { fixtureVal, fixtureErr = loadFixture() })
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureVal
}

func loadFixture() (*testFixture, error) {
	gm, err := loadGoModule("..")
	if err != nil {
		return nil, err
	}
	regs, err := gm.registrations()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "terraform-test-")
	if err != nil {
		return nil, err
	}
	// The archive's content is irrelevant here; its name must follow it.
	content := []byte("staged source")
	sum := sha256.Sum256(content)
	archive := filepath.Join(dir, "source-"+hex.EncodeToString(sum[:])+".zip")
	if err := os.WriteFile(archive, content, 0o644); err != nil {
		return nil, err
	}
	e := newEvaluator(testProject, "us-central1")
	root, err := e.module(".")
	if err != nil {
		return nil, err
	}
	f := &testFixture{archive: archive, gm: gm, regs: regs, root: root, eval: e}
	files, err := filepath.Glob("environments/*.tfvars")
	if err != nil {
		return nil, err
	}
	for _, file := range append([]string{""}, files...) {
		inputs := map[string]cty.Value{}
		name := "default"
		if file != "" {
			name = strings.TrimSuffix(filepath.Base(file), ".tfvars")
			if inputs, err = readTfvars(file); err != nil {
				return nil, err
			}
		}
		// The deployment gives the prefix (Cloud Build's _PREFIX).
		if name == "dev" {
			inputs["prefix"] = cty.StringVal("dev-")
		}
		inputs["project"] = cty.StringVal(testProject)
		inputs["source_archive"] = cty.StringVal(archive)
		r := e.Evaluate(root, inputs, "")
		f.configs = append(f.configs, &tfConfig{
			Name:    name,
			Prefix:  ctyString(r.Vars["prefix"]),
			Archive: filepath.Base(archive),
			Result:  r,
		})
	}
	return f, nil
}

func readTfvars(path string) (map[string]cty.Value, error) {
	f, diags := hclparse.NewParser().ParseHCLFile(path)
	if diags.HasErrors() {
		return nil, diags
	}
	attrs, diags := f.Body.JustAttributes()
	if diags.HasErrors() {
		return nil, diags
	}
	out := map[string]cty.Value{}
	for name, a := range attrs {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, diags
		}
		out[name] = v
	}
	return out, nil
}

// each runs check for every evaluated configuration.
func each(t *testing.T, check func(t *testing.T, f *testFixture, c *tfConfig)) {
	f := fixture(t)
	for _, c := range f.configs {
		t.Run(c.Name, func(t *testing.T) { check(t, f, c) })
	}
}

// TestEvaluates checks that the evaluator of eval_test.go, through which
// the other tests read the configuration, evaluates it without error.
// Whether the configuration is valid Terraform (references, arguments,
// types) is for `terraform validate` and the plans: .ci/tf-check.sh runs
// them in `make test` where the providers are installed, and Cloud Build
// before every apply.
func TestEvaluates(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		for _, d := range c.Result.Diags {
			if d.Severity == hcl.DiagError {
				t.Errorf("evaluation: %s", d.Error())
			}
		}
		if len(c.Result.Instances) == 0 {
			t.Fatalf("evaluation produced no resources")
		}
	})
}

// functionsByEntryPoint returns the function resources by entry point.
func functionsByEntryPoint(t *testing.T, c *tfConfig) map[string]*tfInstance {
	t.Helper()
	out := map[string]*tfInstance{}
	for _, fn := range c.Result.Find("google_cloudfunctions2_function") {
		ep := fn.Body.Path("build_config", "entry_point")
		if ctyString(ep) == "" {
			t.Errorf("%s: entry point %#v is not a known string", fn.Addr(), ep)
			continue
		}
		if prev, dup := out[ctyString(ep)]; dup {
			t.Errorf("%s and %s both run entry point %s", prev.Addr(), fn.Addr(), ctyString(ep))
		}
		out[ctyString(ep)] = fn
	}
	return out
}

func functionURI(fn *tfInstance) string {
	sc := fn.Value.GetAttr("service_config")
	if !sc.IsKnown() || sc.LengthInt() != 1 {
		return ""
	}
	return ctyString(sc.Index(cty.NumberIntVal(0)).GetAttr("uri"))
}

func byAttr(c *tfConfig, typ, attr string) map[string]*tfInstance {
	out := map[string]*tfInstance{}
	for _, i := range c.Result.Find(typ) {
		if v := ctyString(i.Value.GetAttr(attr)); v != "" {
			out[v] = i
		}
	}
	return out
}

// grant is one IAM member of one role on one resource.
type grant struct {
	Addr   string
	Type   string
	Target string // the resource the role is granted on
	Role   string
	Member string
	// Condition is the expression of the grant's IAM condition, "" for none.
	Condition string
}

// grants returns every IAM grant of the configuration: *_iam_member,
// *_iam_binding and *_iam_policy resources.
func grants(t *testing.T, c *tfConfig) []grant {
	t.Helper()
	var out []grant
	for _, i := range c.Result.Instances {
		if i.Mode != "resource" {
			continue
		}
		target := ""
		for _, a := range []string{"topic", "subscription", "secret_id", "service_account_id", "service", "name", "bucket", "repository", "project"} {
			if v := ctyString(i.Body.Attr(a)); v != "" {
				target = v
				break
			}
		}
		condition := ""
		if i.Body.One("condition") != nil {
			condition = ctyString(i.Body.Path("condition", "expression"))
		}
		switch {
		case strings.HasSuffix(i.Type, "_iam_member"):
			out = append(out, grant{Addr: i.Addr(), Type: i.Type, Target: target, Role: i.Body.Str("role"), Member: i.Body.Str("member"), Condition: condition})
		case strings.HasSuffix(i.Type, "_iam_binding"):
			members := i.Body.Attr("members")
			if !members.IsWhollyKnown() {
				t.Errorf("%s: members are not known", i.Addr())
				continue
			}
			for it := members.ElementIterator(); it.Next(); {
				_, m := it.Element()
				out = append(out, grant{Addr: i.Addr(), Type: i.Type, Target: target, Role: i.Body.Str("role"), Member: ctyString(m), Condition: condition})
			}
		case strings.HasSuffix(i.Type, "_iam_policy"):
			var policy struct {
				Bindings []struct {
					Role      string   `json:"role"`
					Members   []string `json:"members"`
					Condition *struct {
						Expression string `json:"expression"`
					} `json:"condition"`
				} `json:"bindings"`
			}
			if err := json.Unmarshal([]byte(i.Body.Str("policy_data")), &policy); err != nil {
				t.Errorf("%s: policy_data: %v", i.Addr(), err)
				continue
			}
			for _, b := range policy.Bindings {
				cond := ""
				if b.Condition != nil {
					cond = b.Condition.Expression
				}
				for _, m := range b.Members {
					out = append(out, grant{Addr: i.Addr(), Type: i.Type, Target: target, Role: b.Role, Member: m, Condition: cond})
				}
			}
		}
	}
	return out
}

func hasGrant(gs []grant, typ, target, role, member string) bool {
	return slices.ContainsFunc(gs, func(g grant) bool {
		return g.Type == typ && g.Target == target && g.Role == role && g.Member == member
	})
}

func TestEveryRegisteredFunctionIsDeployed(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		if len(f.regs) == 0 {
			t.Fatal("the code registers no function")
		}
		fns := functionsByEntryPoint(t, c)
		names := topic.Names{Prefix: c.Prefix}
		topics := byAttr(c, "google_pubsub_topic", "name")
		subsByEndpoint := map[string][]*tfInstance{}
		subsByName := map[string]*tfInstance{}
		for _, s := range c.Result.Find("google_pubsub_subscription") {
			if ep := ctyString(s.Body.Path("push_config", "push_endpoint")); ep != "" {
				subsByEndpoint[ep] = append(subsByEndpoint[ep], s)
			}
			subsByName[s.Body.Str("name")] = s
		}
		jobsByURI := map[string]*tfInstance{}
		for _, j := range c.Result.Find("google_cloud_scheduler_job") {
			jobsByURI[ctyString(j.Body.Path("http_target", "uri"))] = j
		}
		gs := grants(t, c)
		deadLetter := topics[names.DeadLetter()]
		for _, r := range f.regs {
			t.Run(r.EntryPoint, func(t *testing.T) {
				fn, ok := fns[r.EntryPoint]
				if !ok {
					t.Fatalf("%s registers %s (%s): no google_cloudfunctions2_function has that entry point", r.Pos, r.EntryPoint, r.Kind)
				}
				sc := fn.Body.One("service_config")
				if got := sc.Str("ingress_settings"); got != "ALLOW_INTERNAL_ONLY" {
					t.Errorf("%s: ingress_settings = %q, want ALLOW_INTERNAL_ONLY", fn.Addr(), got)
				}
				if v := sc.Attr("max_instance_request_concurrency"); v == cty.NilVal || !v.IsKnown() || v.IsNull() {
					t.Errorf("%s: max_instance_request_concurrency is not set", fn.Addr())
				}
				if got := ctyString(fn.Body.Path("build_config", "source", "storage_source", "object")); got != c.Archive {
					t.Errorf("%s: source object = %q, want %q (source-<sha256 of the archive>.zip)", fn.Addr(), got, c.Archive)
				}
				uri := functionURI(fn)
				invoker := func(member string) bool {
					return hasGrant(gs, "google_cloud_run_v2_service_iam_member", fn.Body.Str("name"), "roles/run.invoker", member)
				}
				switch {
				case r.Domain != "" && (r.Kind == "CloudEvent" || r.Kind == "HTTP"):
					// A governor: fed by one push subscription on its domain
					// topic and one on its internal topic, each named
					// topic.Push(topic), since the function tells an internal
					// delivery by the subscription's name.
					d := governor.Domain(r.Domain)
					var got []string
					for _, s := range subsByEndpoint[uri] {
						got = append(got, s.Body.Str("name"))
					}
					slices.Sort(got)
					want := []string{topic.Push(names.Domain(d)), topic.Push(names.Internal(d))}
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Errorf("push subscriptions delivering to %s (%s) = %q, want %q (topic.Push of its domain and internal topics)", fn.Addr(), uri, got, want)
					}
					for _, name := range []string{names.Domain(d), names.Internal(d)} {
						tp, ok := topics[name]
						if !ok {
							t.Errorf("no topic %s for %s", name, r.EntryPoint)
							continue
						}
						sub, ok := subsByName[topic.Push(name)]
						if !ok {
							t.Errorf("no push subscription %s on %s for %s", topic.Push(name), name, fn.Addr())
							continue
						}
						if got, want := ctyString(sub.Value.GetAttr("topic")), ctyString(tp.Value.GetAttr("id")); got != want {
							t.Errorf("%s: topic = %q, want %q", sub.Addr(), got, want)
						}
						if got := ctyString(sub.Body.Path("push_config", "push_endpoint")); got != uri {
							t.Errorf("%s: push_endpoint = %q, want %s's URL %q", sub.Addr(), got, fn.Addr(), uri)
						}
						checkPushSubscription(t, sub, deadLetter, gs, invoker)
					}
				case r.Kind == "CloudEvent":
					t.Fatalf("%s: cannot tell the domain (and so the topics) of %s", r.Pos, r.EntryPoint)
				case r.Kind == "HTTP":
					job, ok := jobsByURI[uri]
					if !ok {
						t.Fatalf("no Cloud Scheduler job calls %s (%s)", fn.Addr(), uri)
					}
					sa := ctyString(job.Body.Path("http_target", "oidc_token", "service_account_email"))
					if sa == "" {
						t.Errorf("%s: no OIDC token", job.Addr())
					} else if !invoker("serviceAccount:" + sa) {
						t.Errorf("%s: %s may not invoke %s", job.Addr(), sa, fn.Addr())
					}
				default:
					t.Errorf("%s: %s functions are not deployed by this configuration", r.Pos, r.Kind)
				}
			})
		}
		registered := map[string]bool{}
		for _, r := range f.regs {
			registered[r.EntryPoint] = true
		}
		for ep, fn := range fns {
			if !registered[ep] {
				t.Errorf("%s runs entry point %s, which no package registers", fn.Addr(), ep)
			}
		}
	})
}

// checkPushSubscription checks the delivery policy of a push subscription
// and the grants it relies on.
func checkPushSubscription(t *testing.T, sub, deadLetter *tfInstance, gs []grant, invoker func(string) bool) {
	t.Helper()
	sa := ctyString(sub.Body.Path("push_config", "oidc_token", "service_account_email"))
	if sa == "" {
		t.Errorf("%s: push without an OIDC token", sub.Addr())
	} else if !invoker("serviceAccount:" + sa) {
		t.Errorf("%s: the push identity %s may not invoke the endpoint", sub.Addr(), sa)
	}
	if sub.Body.One("retry_policy") == nil {
		t.Errorf("%s: no retry_policy", sub.Addr())
	}
	dlp := sub.Body.One("dead_letter_policy")
	if dlp == nil {
		t.Fatalf("%s: no dead_letter_policy", sub.Addr())
	}
	if deadLetter == nil {
		t.Fatalf("no dead-letter topic")
	}
	if got, want := dlp.Str("dead_letter_topic"), ctyString(deadLetter.Value.GetAttr("id")); got != want {
		t.Errorf("%s: dead_letter_topic = %q, want %q", sub.Addr(), got, want)
	}
	if v := dlp.Attr("max_delivery_attempts"); v == cty.NilVal || !v.IsKnown() || v.IsNull() {
		t.Errorf("%s: max_delivery_attempts is not set", sub.Addr())
	} else if n, _ := v.AsBigFloat().Int64(); n < 5 || n > 100 {
		t.Errorf("%s: max_delivery_attempts = %d, want 5 to 100", sub.Addr(), n)
	}
	// The Pub/Sub service agent forwards to the dead-letter topic and
	// acknowledges on the source subscription.
	agent := ""
	for _, g := range gs {
		if g.Type == "google_pubsub_topic_iam_member" && g.Target == deadLetter.Body.Str("name") &&
			g.Role == "roles/pubsub.publisher" && strings.Contains(g.Member, "@gcp-sa-pubsub.") {
			agent = g.Member
		}
	}
	if agent == "" {
		t.Errorf("the Pub/Sub service agent may not publish to %s", deadLetter.Body.Str("name"))
	} else if !hasGrant(gs, "google_pubsub_subscription_iam_member", sub.Body.Str("name"), "roles/pubsub.subscriber", agent) {
		t.Errorf("%s: the Pub/Sub service agent is not a subscriber, so it cannot dead-letter", sub.Addr())
	}
}

func TestMessageOrdering(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		want := c.Result.Vars["message_ordering"].True()
		names := topic.Names{Prefix: c.Prefix}
		topics := byAttr(c, "google_pubsub_topic", "name")
		var governorTopics []string
		for _, d := range governor.Domains {
			governorTopics = append(governorTopics, names.Domain(d), names.Internal(d))
		}
		for _, name := range governorTopics {
			tp, ok := topics[name]
			if !ok {
				t.Errorf("no topic %s", name)
				continue
			}
			id := ctyString(tp.Value.GetAttr("id"))
			for _, s := range c.Result.Find("google_pubsub_subscription") {
				if ctyString(s.Value.GetAttr("topic")) != id {
					continue
				}
				if got := s.Body.Attr("enable_message_ordering"); !got.IsKnown() || got.IsNull() || got.True() != want {
					t.Errorf("%s: enable_message_ordering = %#v, want %v", s.Addr(), got, want)
				}
			}
		}
	})
}

func TestTopics(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		want := topic.Names{Prefix: c.Prefix}.All()
		var got []string
		for _, tp := range c.Result.Find("google_pubsub_topic") {
			got = append(got, tp.Body.Str("name"))
		}
		for _, name := range want {
			if !slices.Contains(got, name) {
				t.Errorf("topic %s, which the code publishes to, is not created", name)
			}
		}
		for _, name := range got {
			if !slices.Contains(want, name) {
				t.Errorf("topic %q is created but shared/topic does not name it", name)
			}
		}
	})
}

// optionalServices are the services under services/ that a configuration
// deploys only when a variable asks for them, with the test of that.
var optionalServices = map[string]func(t *testing.T, c *tfConfig) bool{
	"marketplace": marketplaceEnabled,
	"signup":      marketplaceEnabled,
}

// marketplaceEnabled says whether a configuration enables the Marketplace
// side (var.marketplace.enabled).
func marketplaceEnabled(t *testing.T, c *tfConfig) bool {
	_, on := marketplaceVar(t, c)
	return on
}

// platformEnv are the variables the code reads that a deployment does not
// set: the platform sets them, or another variable takes precedence.
var platformEnv = map[string]string{
	"PORT":                    "set by Cloud Run and Cloud Functions",
	"K_SERVICE":               "set by Cloud Run and Cloud Functions",
	"K_REVISION":              "set by Cloud Run and Cloud Functions",
	"K_CONFIGURATION":         "set by Cloud Run",
	"FUNCTION_TARGET":         "set by Cloud Functions",
	"FUNCTION_SIGNATURE_TYPE": "set by Cloud Functions",
	platform.EnvGoogleProject: "fallback of " + platform.EnvProject,
}

// localOnlyEnv point clients at the emulators and must never be deployed.
var localOnlyEnv = []string{"FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"}

// deployedEnv returns the environment variable names a resource sets.
func deployedEnv(i *tfInstance) ([]string, bool) {
	var out []string
	switch i.Type {
	case "google_cloudfunctions2_function":
		v := i.Body.Path("service_config", "environment_variables")
		if v == cty.NilVal || !v.IsKnown() || v.IsNull() {
			return nil, false
		}
		for it := v.ElementIterator(); it.Next(); {
			k, _ := it.Element()
			out = append(out, k.AsString())
		}
		for _, s := range i.Body.One("service_config").Sub("secret_environment_variables") {
			out = append(out, s.Str("key"))
		}
	case "google_cloud_run_v2_service":
		for _, c := range i.Body.One("template").Sub("containers") {
			for _, e := range c.Sub("env") {
				out = append(out, e.Str("name"))
			}
		}
	}
	return out, true
}

func TestEnvironment(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		fns := functionsByEntryPoint(t, c)
		pkgOf := map[string]string{}
		for _, r := range f.regs {
			pkgOf[r.EntryPoint] = r.Package
		}
		type deployed struct {
			inst *tfInstance
			pkg  string
		}
		var all []deployed
		for ep, fn := range fns {
			if p, ok := pkgOf[ep]; ok {
				all = append(all, deployed{fn, p})
			}
		}
		services, err := f.gm.mains("services")
		if err != nil {
			t.Fatal(err)
		}
		runServices := map[string]*tfInstance{}
		for _, s := range c.Result.Find("google_cloud_run_v2_service") {
			dir := strings.TrimPrefix(s.Body.Str("name"), c.Prefix+"autonomics-")
			runServices[dir] = s
			if p, ok := services[dir]; ok {
				all = append(all, deployed{s, p.ImportPath})
			} else {
				t.Logf("%s: services/%s holds no main package yet; its environment is not checked", s.Addr(), dir)
			}
		}
		for _, dir := range sortedKeys(services) {
			reads, err := f.gm.envReads(services[dir].ImportPath)
			if err != nil {
				t.Fatal(err)
			}
			serves := slices.ContainsFunc(reads, func(r envRead) bool { return r.Name == "PORT" })
			if optional, ok := optionalServices[dir]; ok && !optional(t, c) {
				continue // not deployed in this configuration, on purpose
			}
			if _, ok := runServices[dir]; serves && !ok {
				t.Errorf("services/%s serves HTTP (reads PORT) but no google_cloud_run_v2_service is named %sautonomics-%s", dir, c.Prefix, dir)
			}
		}
		leftToCode := c.Result.Locals["env_left_to_code"]
		if !leftToCode.IsWhollyKnown() {
			t.Fatalf("local.env_left_to_code is not known")
		}
		for _, d := range all {
			set, ok := deployedEnv(d.inst)
			if !ok {
				t.Errorf("%s: environment is not known", d.inst.Addr())
				continue
			}
			component := ctyIndex(d.inst.Body.Attr("labels"), "component")
			if component == "" {
				t.Errorf("%s has no component label, which names its entry in local.env_left_to_code and var.extra_env", d.inst.Addr())
			}
			var defaulted []string
			if leftToCode.Type().HasAttribute(component) {
				for it := leftToCode.GetAttr(component).ElementIterator(); it.Next(); {
					_, v := it.Element()
					defaulted = append(defaulted, v.AsString())
				}
			}
			reads, err := f.gm.envReads(d.pkg)
			if err != nil {
				t.Fatal(err)
			}
			read := map[string]bool{}
			for _, r := range reads {
				read[r.Name] = true
				if _, ok := platformEnv[r.Name]; ok || slices.Contains(localOnlyEnv, r.Name) || slices.Contains(defaulted, r.Name) {
					continue
				}
				if !slices.Contains(set, r.Name) {
					t.Errorf("%s does not set %s, which %s reads (%s); set it, or list it in local.env_left_to_code.%s",
						d.inst.Addr(), r.Name, d.pkg, r.Pos, component)
				}
			}
			for _, name := range set {
				if slices.Contains(localOnlyEnv, name) {
					t.Errorf("%s sets %s, which points clients at an emulator", d.inst.Addr(), name)
				}
				if strings.HasPrefix(name, "AUTONOMICS_") && !read[name] {
					t.Errorf("%s sets %s, which %s does not read", d.inst.Addr(), name, d.pkg)
				}
			}
			for _, name := range defaulted {
				if !read[name] {
					t.Errorf("local.env_left_to_code.%s lists %s, which %s does not read", component, name, d.pkg)
				}
				if slices.Contains(set, name) && !slices.Contains(extraEnvNames(c, component), name) {
					t.Errorf("%s sets %s, which local.env_left_to_code.%s leaves to the code", d.inst.Addr(), name, component)
				}
			}
		}
	})
}

// TestEnvironmentScanSeesDatabases checks that the scan of the sources
// finds the database variables where the services read them, so that
// TestEnvironment holds the configuration to them (TestFirestore checks
// their values).
func TestEnvironmentScanSeesDatabases(t *testing.T) {
	f := fixture(t)
	for _, tc := range []struct {
		service string
		envs    []string
	}{
		{"integrator", []string{platform.EnvDatabase, platform.EnvLedgerDatabase}},
		{"query", []string{platform.EnvDatabase, platform.EnvLedgerDatabase}},
		{"monitor", []string{platform.EnvDatabase, platform.EnvMonitorDatabase}},
	} {
		t.Run(tc.service, func(t *testing.T) {
			pkg := f.gm.Path + "/services/" + tc.service
			reads, err := f.gm.envReads(pkg)
			if err != nil {
				t.Fatal(err)
			}
			for _, env := range tc.envs {
				if !slices.ContainsFunc(reads, func(r envRead) bool { return r.Name == env }) {
					t.Errorf("the scan of %s and its dependencies finds no read of %s", pkg, env)
				}
			}
		})
	}
}

// ctyIndex returns the string element key of a known map or object, or "".
func ctyIndex(v cty.Value, key string) string {
	if v == cty.NilVal || !v.IsKnown() || v.IsNull() {
		return ""
	}
	switch t := v.Type(); {
	case t.IsObjectType():
		if t.HasAttribute(key) {
			return ctyString(v.GetAttr(key))
		}
	case t.IsMapType():
		if v.HasIndex(cty.StringVal(key)).True() {
			return ctyString(v.Index(cty.StringVal(key)))
		}
	}
	return ""
}

// extraEnvNames returns the names var.extra_env sets for a component.
func extraEnvNames(c *tfConfig, component string) []string {
	v := c.Result.Vars["extra_env"]
	if !v.IsWhollyKnown() || v.IsNull() || !v.Type().IsMapType() || !v.HasIndex(cty.StringVal(component)).True() {
		return nil
	}
	var out []string
	for it := v.Index(cty.StringVal(component)).ElementIterator(); it.Next(); {
		k, _ := it.Element()
		out = append(out, k.AsString())
	}
	return out
}

// primitiveRoles are the basic roles no account of Autonomics may hold.
var primitiveRoles = []string{"roles/owner", "roles/editor", "roles/viewer"}

// projectRoles are the only roles granted on the whole project; everything
// else is granted on the topic, subscription, service or secret it is for.
var projectRoles = []string{
	"roles/datastore.user",
	"roles/datastore.viewer",
	"roles/telemetry.tracesWriter",
	"roles/telemetry.metricsWriter",
	// The monitor's PromQL queries to Managed Service for Prometheus,
	// which answers for the whole project.
	"roles/monitoring.viewer",
	"roles/run.builder",
}

func TestLeastPrivilege(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		gs := grants(t, c)
		if len(gs) == 0 {
			t.Fatal("no IAM grants")
		}
		for _, g := range gs {
			if g.Role == "" || g.Member == "" {
				t.Errorf("%s: role %q, member %q: not known", g.Addr, g.Role, g.Member)
			}
			if slices.Contains(primitiveRoles, g.Role) {
				t.Errorf("%s grants the primitive role %s to %s", g.Addr, g.Role, g.Member)
			}
			if strings.HasPrefix(g.Type, "google_project_iam_") && !slices.Contains(projectRoles, g.Role) {
				t.Errorf("%s grants %s on the whole project; grant it on the resource it is for", g.Addr, g.Role)
			}
			if strings.HasSuffix(g.Role, "Admin") || strings.HasSuffix(g.Role, ".admin") {
				t.Errorf("%s grants the administrative role %s to %s", g.Addr, g.Role, g.Member)
			}
		}
		// Every runtime and calling identity is a service account of this
		// configuration, and one identity serves one component.
		accounts := map[string]bool{}
		for _, sa := range c.Result.Find("google_service_account") {
			accounts[ctyString(sa.Value.GetAttr("email"))] = true
		}
		usedBy := map[string]string{}
		use := func(addr, email string) {
			if !accounts[email] {
				t.Errorf("%s runs as %q, not a service account of this configuration", addr, email)
			}
			if prev, ok := usedBy[email]; ok && prev != addr && !strings.HasPrefix(addr, "google_cloudfunctions2_function.scheduler[") {
				t.Errorf("%s and %s share the identity %s", prev, addr, email)
			}
			usedBy[email] = addr
		}
		for _, fn := range c.Result.Find("google_cloudfunctions2_function") {
			use(fn.Addr(), ctyString(fn.Body.Path("service_config", "service_account_email")))
		}
		for _, s := range c.Result.Find("google_cloud_run_v2_service") {
			use(s.Addr(), ctyString(s.Body.Path("template", "service_account")))
		}
	})
}

func TestNoPublicAccess(t *testing.T) {
	public := []string{"allUsers", "allAuthenticatedUsers"}
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		for _, g := range grants(t, c) {
			if slices.Contains(public, g.Member) {
				t.Errorf("%s grants %s to %s", g.Addr, g.Role, g.Member)
			}
		}
		for _, s := range c.Result.Find("google_cloud_run_v2_service") {
			// The ingest API (ID tokens and HMAC signatures) and the
			// Marketplace sign-up page (the Marketplace JWT) authenticate
			// their callers themselves; TestOnlySelfAuthenticatingServicesAreOpen
			// holds them.
			if slices.Contains(openServices(t, c), s.Body.Str("name")) {
				continue
			}
			if v := s.Body.Attr("invoker_iam_disabled"); v != cty.NilVal && v.IsKnown() && !v.IsNull() && v.True() {
				t.Errorf("%s: invoker_iam_disabled lets anyone call it", s.Addr())
			}
			if s.Body.Str("ingress") == "" {
				t.Errorf("%s: ingress is not set", s.Addr())
			}
		}
		for _, fn := range c.Result.Find("google_cloudfunctions2_function") {
			if got := ctyString(fn.Body.Path("service_config", "ingress_settings")); got != "ALLOW_INTERNAL_ONLY" {
				t.Errorf("%s: ingress_settings = %q, want ALLOW_INTERNAL_ONLY", fn.Addr(), got)
			}
		}
		for _, b := range c.Result.Find("google_storage_bucket") {
			if b.Body.Str("public_access_prevention") != "enforced" {
				t.Errorf("%s: public access is not prevented", b.Addr())
			}
		}
	})
}

func TestServices(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		names := topic.Names{Prefix: c.Prefix}
		svc := byAttr(c, "google_cloud_run_v2_service", "name")
		gs := grants(t, c)
		get := func(name string) *tfInstance {
			s, ok := svc[c.Prefix+"autonomics-"+name]
			if !ok {
				t.Fatalf("no Cloud Run service %sautonomics-%s", c.Prefix, name)
			}
			return s
		}
		monitor, integrator := get("monitor"), get("integrator")
		for _, svc := range c.Result.Find("google_cloud_run_v2_service") {
			sc := svc.Body.One("template").One("scaling")
			lo, hi := sc.Attr("min_instance_count"), sc.Attr("max_instance_count")
			if lo == cty.NilVal || hi == cty.NilVal || !lo.IsKnown() || !hi.IsKnown() || lo.IsNull() || hi.IsNull() {
				t.Errorf("%s: scaling %#v..%#v is not known", svc.Addr(), lo, hi)
				continue
			}
			if lo.GreaterThan(hi).True() {
				t.Errorf("%s: min instances %s above max %s", svc.Addr(), lo.AsBigFloat().Text('f', -1), hi.AsBigFloat().Text('f', -1))
			}
		}
		// The monitor holds no series (Managed Service for Prometheus does)
		// and evaluation holds its lease in Firestore, so nothing pins it
		// to one instance.
		if hi := monitor.Body.One("template").One("scaling").Attr("max_instance_count"); hi.IsKnown() && !hi.IsNull() && !hi.GreaterThan(cty.NumberIntVal(1)).True() {
			t.Errorf("%s: max_instance_count = %s, want more than 1 (services/monitor is stateless; the evaluation lease keeps one evaluator)", monitor.Addr(), hi.AsBigFloat().Text('f', -1))
		}
		if q := get("query"); q.Body.Str("ingress") == "" {
			t.Errorf("%s: no ingress", q.Addr())
		}
		uri := func(s *tfInstance) string { return ctyString(s.Value.GetAttr("uri")) }
		invoker := func(s *tfInstance) func(string) bool {
			return func(member string) bool {
				return hasGrant(gs, "google_cloud_run_v2_service_iam_member", s.Body.Str("name"), "roles/run.invoker", member)
			}
		}

		// The monitor and the integrator receive every receipt by push.
		topics := byAttr(c, "google_pubsub_topic", "name")
		for _, consumer := range []*tfInstance{monitor, integrator} {
			var push *tfInstance
			for _, s := range c.Result.Find("google_pubsub_subscription") {
				if ctyString(s.Body.Path("push_config", "push_endpoint")) == uri(consumer)+"/v1/receipts/push" {
					push = s
				}
			}
			if push == nil {
				t.Errorf("no push subscription delivers to %s/v1/receipts/push", uri(consumer))
				continue
			}
			if got, want := ctyString(push.Value.GetAttr("topic")), ctyString(topics[names.Receipts()].Value.GetAttr("id")); got != want {
				t.Errorf("%s: topic = %q, want %q", push.Addr(), got, want)
			}
			checkPushSubscription(t, push, topics[names.DeadLetter()], gs, invoker(consumer))
		}

		// Cloud Scheduler calls the monitor's evaluation and the integrator.
		jobs := map[string]*tfInstance{}
		for _, j := range c.Result.Find("google_cloud_scheduler_job") {
			jobs[ctyString(j.Body.Path("http_target", "uri"))] = j
		}
		for _, want := range []struct {
			svc  *tfInstance
			path string
		}{{monitor, "/v1/evaluate"}, {integrator, "/v1/integrate"}} {
			j, ok := jobs[uri(want.svc)+want.path]
			if !ok {
				t.Errorf("no Cloud Scheduler job calls %s%s", uri(want.svc), want.path)
				continue
			}
			if m := j.Body.Path("http_target", "http_method"); ctyString(m) != "POST" {
				t.Errorf("%s: http_method = %#v, want POST", j.Addr(), m)
			}
			sa := ctyString(j.Body.Path("http_target", "oidc_token", "service_account_email"))
			if sa == "" || !invoker(want.svc)("serviceAccount:"+sa) {
				t.Errorf("%s: the job's identity %q may not invoke %s", j.Addr(), sa, want.svc.Addr())
			}
		}

		// The integrator alone reads the signing key, from Secret Manager.
		secret := byAttr(c, "google_secret_manager_secret", "secret_id")[c.Prefix+"checkpoint-signing-key"]
		if secret == nil {
			t.Fatalf("no secret %scheckpoint-signing-key", c.Prefix)
		}
		found := false
		for _, ct := range integrator.Body.One("template").Sub("containers") {
			for _, e := range ct.Sub("env") {
				if e.Str("name") == "AUTONOMICS_SIGNING_KEY" {
					found = true
					if got := ctyString(e.Path("value_source", "secret_key_ref", "secret")); got != secret.Body.Str("secret_id") {
						t.Errorf("%s: AUTONOMICS_SIGNING_KEY comes from %q, want the secret %s", integrator.Addr(), got, secret.Body.Str("secret_id"))
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: AUTONOMICS_SIGNING_KEY is not mounted", integrator.Addr())
		}
		var accessors []string
		for _, g := range gs {
			if g.Type == "google_secret_manager_secret_iam_member" && g.Target == ctyString(secret.Value.GetAttr("id")) {
				accessors = append(accessors, g.Role+" "+g.Member)
			}
		}
		want := []string{"roles/secretmanager.secretAccessor serviceAccount:" + ctyString(integrator.Body.Path("template", "service_account"))}
		if !slices.Equal(accessors, want) {
			t.Errorf("grants on the signing key = %q, want %q", accessors, want)
		}
	})
}

// Roles of the Firestore databases: governor state and receipts, the
// ledger, and the monitor's state.
const (
	dbMain    = "main"
	dbLedger  = "ledger"
	dbMonitor = "monitor"
)

// docDatabase names the database whose layout each file of
// shared/firestore documents; the other files document the main one.
var docDatabase = map[string]string{
	"ledger.go":   dbLedger,
	"alerting.go": dbMonitor,
}

// firestoreDocs returns the comments of shared/firestore by the database
// they document: the package documentation lists the governors' indexes,
// the Ledger type the ledger's, the AlertStore the monitor's.
func firestoreDocs(t *testing.T, f *testFixture) map[string]string {
	t.Helper()
	p, err := f.gm.pkg(f.gm.Path + "/shared/firestore")
	if err != nil || p == nil {
		t.Fatalf("shared/firestore: %v", err)
	}
	out := map[string]*strings.Builder{}
	for _, file := range p.Files {
		db, ok := docDatabase[filepath.Base(p.Fset.Position(file.Pos()).Filename)]
		if !ok {
			db = dbMain
		}
		if out[db] == nil {
			out[db] = &strings.Builder{}
		}
		for _, cg := range file.Comments {
			out[db].WriteString(cg.Text())
			out[db].WriteString("\n")
		}
	}
	docs := map[string]string{}
	for db, b := range out {
		docs[db] = b.String()
	}
	return docs
}

// serviceEnv returns the plain environment variables of a Cloud Run
// service.
func serviceEnv(s *tfInstance) map[string]string {
	out := map[string]string{}
	for _, ct := range s.Body.One("template").Sub("containers") {
		for _, e := range ct.Sub("env") {
			if v := e.Attr("value"); v != cty.NilVal {
				out[e.Str("name")] = ctyString(v)
			}
		}
	}
	return out
}

// firestoreDatabases returns the database id of each role as the code is
// configured to use it: the main database from local.platform_env
// (AUTONOMICS_FIRESTORE_DATABASE, every component), the ledger's from the
// integrator and the query API (AUTONOMICS_LEDGER_DATABASE), the
// monitor's from the monitor (AUTONOMICS_MONITOR_DATABASE).
func firestoreDatabases(t *testing.T, c *tfConfig) map[string]string {
	t.Helper()
	out := map[string]string{dbMain: ctyString(c.Result.Locals["platform_env"].GetAttr(platform.EnvDatabase))}
	svc := byAttr(c, "google_cloud_run_v2_service", "name")
	for _, u := range []struct {
		service, role, env string
	}{
		{"integrator", dbLedger, platform.EnvLedgerDatabase},
		{"query", dbLedger, platform.EnvLedgerDatabase},
		{"monitor", dbMonitor, platform.EnvMonitorDatabase},
	} {
		s, ok := svc[c.Prefix+"autonomics-"+u.service]
		if !ok {
			t.Fatalf("no Cloud Run service %sautonomics-%s", c.Prefix, u.service)
		}
		v := serviceEnv(s)[u.env]
		switch prev, seen := out[u.role]; {
		case v == "":
			t.Errorf("%s does not set %s", s.Addr(), u.env)
		case seen && prev != v:
			t.Errorf("%s: %s = %q, but another service uses %q for the %s database", s.Addr(), u.env, v, prev, u.role)
		default:
			out[u.role] = v
		}
	}
	return out
}

var (
	// "receipts  COLLECTION_GROUP  tenant_id, decided_at_ts" (a field
	// followed by DESC is descending)
	docIndex = regexp.MustCompile(`(?m)^\s*(\w+)\s+(COLLECTION|COLLECTION_GROUP)\s+([\w, ]+?)\s*$`)
	// "receipts.execution_id  ascending index with COLLECTION_GROUP scope"
	docFieldIndex = regexp.MustCompile(`(?m)^\s*(\w+)\.(\w+)\s+ascending index with (COLLECTION|COLLECTION_GROUP) scope`)
	// "dedup.expire_at        TTL policy (collection group "dedup")"
	docTTL = regexp.MustCompile(`(?m)^\s*(\w+)\.(\w+)\s+TTL policy`)
	// "composite index (index ASC, arrived_at ASC) on the "entries" collection"
	docProseIndex = regexp.MustCompile(`composite\s+index\s+\(([\w ,]+)\)\s+on\s+the\s+"(\w+)"\s+collection`)
	// "entries.leaf and tiles.data are exempt from indexing", "... should be
	// exempt from indexing"
	docExempt = regexp.MustCompile(`(\w+\.\w+(?:(?:,\s*|\s+and\s+)\w+\.\w+)*)\s+(?:are\s+|should\s+be\s+)?exempt from indexing`)
	fieldRef  = regexp.MustCompile(`(\w+)\.(\w+)`)
)

func TestFirestore(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		docs := firestoreDocs(t, f)
		want := firestoreDatabases(t, c)
		dbs := map[string]*tfInstance{}
		for _, db := range c.Result.Find("google_firestore_database") {
			dbs[db.Body.Str("name")] = db
		}
		if len(dbs) != 3 {
			t.Errorf("%d Firestore databases %q, want 3: %s, %s and %s", len(dbs), sortedKeys(dbs), dbMain, dbLedger, dbMonitor)
		}
		roleOf := map[string]string{}
		for _, role := range []string{dbMain, dbLedger, dbMonitor} {
			name := want[role]
			if prev, dup := roleOf[name]; dup {
				t.Errorf("the %s and %s data share the database %q: IAM could not keep their writers apart", prev, role, name)
			}
			roleOf[name] = role
			db, ok := dbs[name]
			if !ok {
				t.Errorf("no google_firestore_database %q for the %s data", name, role)
				continue
			}
			if got := db.Body.Str("type"); got != "FIRESTORE_NATIVE" {
				t.Errorf("%s: type = %q, want FIRESTORE_NATIVE", db.Addr(), got)
			}
			if role != dbMain && name == "(default)" {
				t.Errorf("%s: the %s data in the (default) database", db.Addr(), role)
			}
		}
		if got, want := ctyString(c.Result.Locals["platform_env"].GetAttr(platform.EnvTopicPrefix)), c.Prefix; got != want {
			t.Errorf("%s = %q, want the prefix %q", platform.EnvTopicPrefix, got, want)
		}
		if (c.Prefix == "") != (want[dbMain] == "(default)") {
			t.Errorf("prefix %q uses database %q: a prefixed environment needs a database of its own", c.Prefix, want[dbMain])
		}

		// Indexes and field settings by database.
		indexes := map[string][]string{}
		for _, ix := range c.Result.Find("google_firestore_index") {
			db := ix.Body.Str("database")
			if _, ok := roleOf[db]; !ok {
				t.Errorf("%s: database = %q, none of %q", ix.Addr(), db, sortedKeys(roleOf))
			}
			var fields []string
			for _, fl := range ix.Body.Sub("fields") {
				switch o := fl.Str("order"); o {
				case "ASCENDING":
					fields = append(fields, fl.Str("field_path"))
				case "DESCENDING":
					fields = append(fields, fl.Str("field_path")+" DESC")
				default:
					t.Errorf("%s: field %s order %q, want ASCENDING or DESCENDING", ix.Addr(), fl.Str("field_path"), o)
				}
			}
			indexes[roleOf[db]] = append(indexes[roleOf[db]], fmt.Sprintf("%s %s %s", ix.Body.Str("collection"), ix.Body.Str("query_scope"), strings.Join(fields, ",")))
		}
		fields := map[string]map[string]*tfInstance{}
		for _, fl := range c.Result.Find("google_firestore_field") {
			db := fl.Body.Str("database")
			role, ok := roleOf[db]
			if !ok {
				t.Errorf("%s: database = %q, none of %q", fl.Addr(), db, sortedKeys(roleOf))
				continue
			}
			if fields[role] == nil {
				fields[role] = map[string]*tfInstance{}
			}
			fields[role][fl.Body.Str("collection")+"."+fl.Body.Str("field")] = fl
		}
		for _, role := range []string{dbMain, dbLedger, dbMonitor} {
			t.Run(role, func(t *testing.T) {
				checkDocumentedIndexes(t, role, want[role], docs[role], indexes[role], fields[role])
			})
		}
	})
}

// checkDocumentedIndexes checks that the indexes, field settings and TTL
// policies shared/firestore documents for one database exist in it.
func checkDocumentedIndexes(t *testing.T, role, db, doc string, indexes []string, fields map[string]*tfInstance) {
	where := fmt.Sprintf("database %q (%s)", db, role)
	wantIdx := docIndex.FindAllStringSubmatch(doc, -1)
	if role == dbMain && len(wantIdx) == 0 {
		t.Error("shared/firestore documents no composite index of the main database")
	}
	documented := map[string]bool{}
	for _, m := range wantIdx {
		w := fmt.Sprintf("%s %s %s", m[1], m[2], strings.ReplaceAll(m[3], ", ", ","))
		documented[w] = true
		if !slices.Contains(indexes, w) {
			t.Errorf("composite index %q (shared/firestore) is not created in %s; have %q", w, where, indexes)
		}
	}
	prose := docProseIndex.FindAllStringSubmatch(doc, -1)
	// Every index created is one a query of shared/firestore needs: an
	// index no query uses only costs writes.
	for _, have := range indexes {
		c, rest, _ := strings.Cut(have, " ")
		_, fl, _ := strings.Cut(rest, " ")
		if !documented[have] && !slices.ContainsFunc(prose, func(m []string) bool {
			return m[2] == c && strings.ReplaceAll(strings.ReplaceAll(m[1], " ASC", ""), ", ", ",") == fl
		}) {
			t.Errorf("composite index %q in %s is documented by no query of shared/firestore", have, where)
		}
	}
	for _, m := range prose {
		var want []string
		for _, fl := range strings.Split(m[1], ",") {
			name, order, _ := strings.Cut(strings.TrimSpace(fl), " ")
			if order != "" && order != "ASC" {
				t.Errorf("index on %s: field %s order %s is not created by this configuration", m[2], name, order)
			}
			want = append(want, name)
		}
		w := strings.Join(want, ",")
		if !slices.ContainsFunc(indexes, func(have string) bool {
			c, rest, _ := strings.Cut(have, " ")
			_, fl, _ := strings.Cut(rest, " ")
			return c == m[2] && fl == w
		}) {
			t.Errorf("composite index (%s) on %s (shared/firestore) is not created in %s; have %q", w, m[2], where, indexes)
		}
	}
	for _, m := range docFieldIndex.FindAllStringSubmatch(doc, -1) {
		fl, ok := fields[m[1]+"."+m[2]]
		if !ok {
			t.Errorf("no google_firestore_field for %s.%s (%s index) in %s", m[1], m[2], m[3], where)
			continue
		}
		found := false
		for _, ix := range fl.Body.One("index_config").Sub("indexes") {
			found = found || ix.Str("order") == "ASCENDING" && ix.Str("query_scope") == m[3]
		}
		if !found {
			t.Errorf("%s: no ascending %s index", fl.Addr(), m[3])
		}
	}
	exempt := docExempt.FindAllStringSubmatch(doc, -1)
	if role != dbMonitor && len(exempt) == 0 {
		t.Errorf("shared/firestore documents no field of the %s database exempt from indexing", role)
	}
	for _, m := range exempt {
		for _, ref := range fieldRef.FindAllStringSubmatch(m[1], -1) {
			fl, ok := fields[ref[1]+"."+ref[2]]
			switch {
			case !ok:
				t.Errorf("%s.%s is documented as exempt from indexing; no google_firestore_field exempts it in %s", ref[1], ref[2], where)
			case fl.Body.One("index_config") == nil || len(fl.Body.One("index_config").Sub("indexes")) > 0:
				t.Errorf("%s: %s.%s keeps single-field indexes", fl.Addr(), ref[1], ref[2])
			}
		}
	}
	ttls := docTTL.FindAllStringSubmatch(doc, -1)
	if role == dbMain && len(ttls) == 0 {
		t.Error("shared/firestore documents no TTL policy of the main database")
	}
	for _, m := range ttls {
		fl, ok := fields[m[1]+"."+m[2]]
		if !ok || fl.Body.One("ttl_config") == nil {
			t.Errorf("no TTL policy on %s.%s in %s", m[1], m[2], where)
		}
	}
}

func TestTimers(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		env := c.Result.Locals["platform_env"]
		if !env.IsWhollyKnown() {
			t.Fatalf("local.platform_env is not known: %#v", env)
		}
		spec := env.GetAttr(platform.EnvTimers).AsString()
		timers, err := platform.ParseTimers(spec)
		if err != nil {
			t.Fatalf("ParseTimers(%q) = %v", spec, err)
		}
		for key := range timers {
			d, name, _ := strings.Cut(key, ".")
			m := machines.Machine(governor.Domain(d))
			if m == nil {
				t.Errorf("timer %s: no domain %s", key, d)
				continue
			}
			if _, ok := m.Timers[name]; !ok {
				t.Errorf("timer %s: %s has no timer %s", key, d, name)
			}
		}
	})
}

func TestOutputs(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		for _, name := range []string{"function_urls", "service_urls", "topics", "subscriptions"} {
			v, ok := c.Result.Outputs[name]
			if !ok {
				t.Errorf("no output %s", name)
				continue
			}
			if v.IsNull() || (v.IsKnown() && v.LengthInt() == 0) {
				t.Errorf("output %s is empty", name)
			}
		}
		topics := c.Result.Outputs["topics"]
		if topics.IsWhollyKnown() {
			var got []string
			for it := topics.ElementIterator(); it.Next(); {
				_, v := it.Element()
				got = append(got, v.AsString())
			}
			slices.Sort(got)
			want := topic.Names{Prefix: c.Prefix}.All()
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("output topics = %q, want %q", got, want)
			}
		}
	})
}

func TestFormat(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not on PATH")
	}
	cmd := exec.Command(tf, "fmt", "-check", "-recursive", "-diff", ".")
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("terraform fmt -check -recursive: %v\n%s", err, out)
	}
}

// TestGoRuntimeFollowsSize checks that every function and Cloud Run
// service runs its Go runtime with GOMAXPROCS at its vCPUs rounded down
// (at least 1: Go's own default would give a one-vCPU instance two),
// GOGC=400 and GOMEMLIMIT at three quarters of its memory.
func TestGoRuntimeFollowsSize(t *testing.T) {
	procs := func(cpu string) (string, bool) {
		n, err := strconv.ParseFloat(strings.TrimSuffix(cpu, "m"), 64)
		if err != nil {
			return "", false
		}
		if strings.HasSuffix(cpu, "m") {
			n /= 1000
		}
		return strconv.Itoa(max(1, int(math.Floor(n)))), true
	}
	limit := func(memory string) (string, bool) {
		units := []struct {
			suffix string
			mib    float64
		}{{"Gi", 1024}, {"Mi", 1}, {"G", 1e9 / (1 << 20)}, {"M", 1e6 / (1 << 20)}}
		for _, u := range units {
			if v, ok := strings.CutSuffix(memory, u.suffix); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return "", false
				}
				return fmt.Sprintf("%dMiB", int(math.Floor(n*u.mib*3/4))), true
			}
		}
		return "", false
	}
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		checked := 0
		check := func(addr, cpu, memory string, env func(string) string) {
			t.Helper()
			checked++
			p, ok := procs(cpu)
			if !ok {
				t.Errorf("%s: cpu %q is not a number of vCPUs", addr, cpu)
			}
			m, ok := limit(memory)
			if !ok {
				t.Errorf("%s: memory %q is not a size", addr, memory)
			}
			for name, want := range map[string]string{"GOMAXPROCS": p, "GOGC": "400", "GOMEMLIMIT": m} {
				if got := env(name); got != want {
					t.Errorf("%s: %s = %q with cpu %q and memory %q, want %q", addr, name, got, cpu, memory, want)
				}
			}
		}
		for _, fn := range c.Result.Find("google_cloudfunctions2_function") {
			vars := fn.Body.Path("service_config", "environment_variables")
			check(fn.Addr(), ctyString(fn.Body.Path("service_config", "available_cpu")),
				ctyString(fn.Body.Path("service_config", "available_memory")),
				func(name string) string { return ctyIndex(vars, name) })
		}
		for _, s := range c.Result.Find("google_cloud_run_v2_service") {
			cpu, memory := "", ""
			for _, ct := range s.Body.One("template").Sub("containers") {
				limits := ct.One("resources").Attr("limits")
				cpu, memory = ctyIndex(limits, "cpu"), ctyIndex(limits, "memory")
			}
			env := serviceEnv(s)
			check(s.Addr(), cpu, memory, func(name string) string { return env[name] })
		}
		if checked == 0 {
			t.Fatal("no function or service found")
		}
	})
}
