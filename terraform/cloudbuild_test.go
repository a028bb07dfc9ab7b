package terraform

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestCloudBuild holds ../cloudbuild.yaml to the configuration: the names
// it derives from its substitutions are those Terraform creates, the
// resources it applies first exist, it builds an image for every Cloud
// Run service, it lints and checks for known vulnerabilities, and it
// validates and plans before every apply.
func TestCloudBuild(t *testing.T) {
	b, err := os.ReadFile("../cloudbuild.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	f := fixture(t)
	var c *tfConfig
	for _, cfg := range f.configs {
		if cfg.Name == "dev" {
			c = cfg
		}
	}
	if c == nil || c.Prefix == "" {
		t.Fatal("no evaluated configuration with a prefix")
	}

	// Substitutions as Cloud Build resolves them (dynamicSubstitutions).
	subst := map[string]string{
		"PROJECT_ID": testProject,
		"BUILD_ID":   "build-1",
		"_PREFIX":    c.Prefix,
		"_REGION":    ctyString(c.Result.Vars["region"]),
	}
	defaults := regexp.MustCompile(`(?m)^  (_[A-Z_]+): *(.*)$`).FindAllStringSubmatch(text, -1)
	if len(defaults) == 0 {
		t.Fatal("cloudbuild.yaml declares no substitutions")
	}
	for _, m := range defaults {
		if _, given := subst[m[1]]; !given {
			subst[m[1]] = strings.Trim(m[2], `"`)
		}
	}
	ref := regexp.MustCompile(`\$\{([A-Z_]+)\}`)
	expand := func(s string) string {
		for range 5 {
			s = ref.ReplaceAllStringFunc(s, func(r string) string {
				if v, ok := subst[r[2:len(r)-1]]; ok {
					return v
				}
				return r
			})
		}
		return s
	}
	for _, name := range []string{"_STATE_BUCKET", "_ENV", "_PREFIX", "_REGION"} {
		if _, ok := subst[name]; !ok {
			t.Errorf("cloudbuild.yaml lacks the substitution %s", name)
		}
	}

	if got, want := expand(subst["_IMAGES"]), ctyString(c.Result.Outputs["image_repository"]); got != want {
		t.Errorf("_IMAGES = %q, want the repository %q", got, want)
	}
	if got, want := expand(subst["_LEDGER_ORIGIN"]), ctyString(c.Result.Locals["ledger_origin"]); got != want {
		t.Errorf("_LEDGER_ORIGIN = %q, want Terraform's default %q", got, want)
	}
	secret := regexp.MustCompile(`secret="([^"]+)"`).FindStringSubmatch(text)
	if secret == nil {
		t.Error("cloudbuild.yaml names no secret")
	} else {
		var ids []string
		for _, s := range c.Result.Find("google_secret_manager_secret") {
			ids = append(ids, s.Body.Str("secret_id"))
		}
		if got := expand(secret[1]); !slices.Contains(ids, got) {
			t.Errorf("cloudbuild.yaml adds the key to %q; Terraform creates %q", got, ids)
		}
	}

	targets := regexp.MustCompile(`-target=(\S+)`).FindAllStringSubmatch(text, -1)
	if len(targets) == 0 {
		t.Error("the bootstrap apply targets nothing")
	}
	for _, m := range targets {
		typ, name, _ := strings.Cut(m[1], ".")
		if !slices.ContainsFunc(f.root.resources, func(b *hclsyntax.Block) bool {
			return b.Type == "resource" && b.Labels[0] == typ && b.Labels[1] == name
		}) {
			t.Errorf("-target=%s: no such resource", m[1])
		}
	}

	services := regexp.MustCompile(`for service in ([a-z ]+); do`).FindStringSubmatch(text)
	if services == nil {
		t.Fatal("cloudbuild.yaml builds no service image")
	}
	built := strings.Fields(services[1])
	var declared []string
	for _, s := range c.Result.Find("google_cloud_run_v2_service") {
		declared = append(declared, strings.TrimPrefix(s.Body.Str("name"), c.Prefix+"autonomics-"))
	}
	slices.Sort(built)
	slices.Sort(declared)
	if !slices.Equal(built, declared) {
		t.Errorf("cloudbuild.yaml builds images %q; Terraform runs services %q", built, declared)
	}

	for _, want := range []string{"make test", `"make", "lint"`, `"make", "vuln"`, `"make", "stage"`, "google-cloud-cli:emulators", "environments/${_ENV}.tfvars", "image_tag=${BUILD_ID}"} {
		if !strings.Contains(text, want) {
			t.Errorf("cloudbuild.yaml does not contain %q", want)
		}
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^vuln:.*\n\t.*govulncheck@\S+ \./\.\.\.$`).Match(mk) {
		t.Error("make vuln does not run govulncheck ./...")
	}

	// Every step that applies has initialized, validated and planned first:
	// nothing reaches the project that Terraform has not checked.
	applies := 0
	for _, step := range regexp.MustCompile(`(?m)^  - id: `).Split(text, -1)[1:] {
		id, _, _ := strings.Cut(step, "\n")
		at := strings.Index(step, "terraform apply")
		if at < 0 {
			continue
		}
		applies++
		before := step[:at]
		for _, want := range []string{"terraform init", "terraform validate", "terraform plan"} {
			if !strings.Contains(before, want) {
				t.Errorf("step %s runs terraform apply before %s", id, want)
			}
		}
		if !regexp.MustCompile(`terraform apply -input=false \S+\.tfplan`).MatchString(step) {
			t.Errorf("step %s applies something else than the plan it printed", id)
		}
	}
	if applies == 0 {
		t.Error("cloudbuild.yaml applies nothing")
	}
	if _, err := os.Stat("environments/" + subst["_ENV"] + ".tfvars"); err != nil {
		t.Errorf("the default _ENV %q has no variable file: %v", subst["_ENV"], err)
	}
}
