package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/functions/gosrc"
	"github.com/autonomics/autonomics/functions/gosrc/gosrctest"
	"github.com/autonomics/autonomics/shared/fault"
)

// fixtureModule is a small module with the shapes stage must handle.
var fixtureModule = map[string]string{
	"go.mod": "module example.com/fx\n\ngo 1.26\n",
	"go.sum": "",
	"functions/alpha/alpha.go": `package alpha

import (
	"context"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"

	"example.com/fx/shared/core"
)

const EntryPoint = "Alpha"

func init() { functions.CloudEvent(EntryPoint, handle) }

func handle(ctx context.Context, e event.Event) error { return core.Do() }
`,
	"functions/alpha/alpha_test.go": "package alpha\n",
	"functions/beta/beta.go": `package beta

import (
	"net/http"

	ff "github.com/GoogleCloudPlatform/functions-framework-go/functions"
)

func init() {
	ff.HTTP("Beta", func(http.ResponseWriter, *http.Request) {})
	ff.HTTP("Gamma", func(http.ResponseWriter, *http.Request) {})
}
`,
	"functions/host/main.go": `package main

import "github.com/GoogleCloudPlatform/functions-framework-go/functions"

func main() { functions.HTTP("Host", nil) }
`,
	"functions/plain/plain.go":   "package plain\n",
	"functions/.hidden/x.go":     "package hidden\n",
	"shared/core/core.go":        "package core\n\nimport \"example.com/fx/shared/deep\"\n\nfunc Do() error { return deep.Do() }\n",
	"shared/core/core_test.go":   "package core\n",
	"shared/core/schema.json":    "{}\n",
	"shared/core/testdata/x.txt": "fixture\n",
	"shared/deep/deep.go":        "package deep\n\nfunc Do() error { return nil }\n",
	"shared/unused/unused.go":    "package unused\n",
	"terraform/main.tf":          "# not staged\n",
	"README.md":                  "# not staged\n",
}

func with(base map[string]string, changes map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range changes {
		if v == "" && k != "go.sum" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

func TestDiscover(t *testing.T) {
	root := gosrctest.WriteTree(t, fixtureModule)
	a, err := Build(root)
	if err != nil {
		t.Fatalf("Build() error = %v", err)
	}
	want := []gosrc.Registration{
		{Package: "example.com/fx/functions/alpha", Kind: "CloudEvent", EntryPoint: "Alpha", Pos: "functions/alpha/alpha.go:14:15"},
		{Package: "example.com/fx/functions/beta", Kind: "HTTP", EntryPoint: "Beta", Pos: "functions/beta/beta.go:10:2"},
		{Package: "example.com/fx/functions/beta", Kind: "HTTP", EntryPoint: "Gamma", Pos: "functions/beta/beta.go:11:2"},
	}
	if got := a.Registrations; !slices.Equal(got, want) {
		t.Errorf("Build().Registrations = %+v, want %+v", got, want)
	}
}

func TestBuild(t *testing.T) {
	root := gosrctest.WriteTree(t, fixtureModule)
	a, err := Build(root)
	if err != nil {
		t.Fatalf("Build() error = %v", err)
	}
	wantFiles := []string{
		RootFile,
		"functions/alpha/alpha.go",
		"functions/beta/beta.go",
		"go.mod",
		"go.sum",
		"shared/core/core.go",
		"shared/core/schema.json",
		"shared/deep/deep.go",
	}
	if !slices.Equal(a.Files, wantFiles) {
		t.Errorf("Build().Files = %q, want %q", a.Files, wantFiles)
	}
	sum := sha256.Sum256(a.Data)
	if want := "source-" + hex.EncodeToString(sum[:]) + ".zip"; a.Name != want {
		t.Errorf("Build().Name = %s, want %s", a.Name, want)
	}

	zr, err := zip.NewReader(bytes.NewReader(a.Data), int64(len(a.Data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if !f.Modified.Equal(fixedTime) || f.Mode() != 0o644 || f.Method != zip.Deflate {
			t.Errorf("entry %s: modified %v, mode %v, method %d; want %v, 0644, deflate", f.Name, f.Modified, f.Mode(), f.Method, fixedTime)
		}
		if f.Name == RootFile {
			r, _ := f.Open()
			var b bytes.Buffer
			_, _ = b.ReadFrom(r)
			r.Close()
			want, _ := RootSource("fx", []string{"example.com/fx/functions/beta", "example.com/fx/functions/alpha"})
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s = %s, want %s", RootFile, b.Bytes(), want)
			}
		}
	}
	if !slices.Equal(names, wantFiles) {
		t.Errorf("zip entries = %q, want %q", names, wantFiles)
	}

	again, err := Build(root)
	if err != nil {
		t.Fatalf("Build() again error = %v", err)
	}
	if again.Name != a.Name || !bytes.Equal(again.Data, a.Data) {
		t.Errorf("Build() twice: %s then %s, want identical archives", a.Name, again.Name)
	}

	changed := gosrctest.WriteTree(t, with(fixtureModule, map[string]string{"shared/deep/deep.go": "package deep\n\nfunc Do() error { return nil } // changed\n"}))
	c, err := Build(changed)
	if err != nil {
		t.Fatalf("Build(changed) error = %v", err)
	}
	if c.Name == a.Name {
		t.Errorf("Build() of a changed dependency kept the name %s", a.Name)
	}
	unrelated := gosrctest.WriteTree(t, with(fixtureModule, map[string]string{"shared/unused/unused.go": "package unused // changed\n"}))
	u, err := Build(unrelated)
	if err != nil {
		t.Fatalf("Build(unrelated) error = %v", err)
	}
	if u.Name != a.Name {
		t.Errorf("Build() after a change outside the functions' packages = %s, want %s", u.Name, a.Name)
	}
}

func TestRootSource(t *testing.T) {
	got, err := RootSource("autonomics", []string{"m/functions/b", "m/functions/a"})
	if err != nil {
		t.Fatalf("RootSource() error = %v", err)
	}
	want := `// Code generated by functions/stage. DO NOT EDIT.

// Package autonomics is the root package of the Cloud Functions source
// archive: importing it registers every function with the Functions
// Framework, whose functions package selects the declarative template.
package autonomics

import (
	_ "github.com/GoogleCloudPlatform/functions-framework-go/functions"

	_ "m/functions/a"
	_ "m/functions/b"
)
`
	if string(got) != want {
		t.Errorf("RootSource() =\n%s\nwant\n%s", got, want)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		changes map[string]string
		want    string
	}{
		{
			name:    "root package exists",
			changes: map[string]string{"root.go": "package fx\n"},
			want:    "already holds Go files",
		},
		{
			name: "entry point not constant",
			changes: map[string]string{"functions/beta/beta.go": `package beta

import "github.com/GoogleCloudPlatform/functions-framework-go/functions"

var name = "Beta"

func init() { functions.HTTP(name, nil) }
`},
			want: "not a string constant",
		},
		{
			name: "no registration",
			changes: map[string]string{
				"functions/alpha/alpha.go": "", "functions/beta/beta.go": "",
			},
			want: "registers a function",
		},
		{
			name:    "missing dependency",
			changes: map[string]string{"shared/deep/deep.go": ""},
			want:    "shared/deep",
		},
		{
			name:    "no go.mod",
			changes: map[string]string{"go.mod": ""},
			want:    "go.mod",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := gosrctest.WriteTree(t, with(fixtureModule, tt.changes))
			_, err := Build(root)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build() error = %v, want one mentioning %q", err, tt.want)
			}
			if code := fault.ErrorCode(err); code != fault.Invalid {
				t.Errorf("ErrorCode(Build()) = %s, want %s", code, fault.Invalid)
			}
		})
	}
}

func TestRun(t *testing.T) {
	root := gosrctest.WriteTree(t, fixtureModule)
	out := filepath.Join(t.TempDir(), "dist")
	var first string
	for i := range 2 {
		var stdout, stderr bytes.Buffer
		if err := run([]string{"-root", root, "-out", out}, &stdout, &stderr); err != nil {
			t.Fatalf("run() error = %v; stderr %s", err, stderr.String())
		}
		p := strings.TrimSpace(stdout.String())
		if i == 0 {
			first = p
		} else if p != first {
			t.Errorf("run() printed %s, then %s", first, p)
		}
		if !strings.HasPrefix(filepath.Base(p), "source-") || filepath.Dir(p) != out {
			t.Errorf("run() printed %q, want %s/source-<sha256>.zip", p, out)
		}
		if !strings.Contains(stderr.String(), "Alpha") {
			t.Errorf("run() stderr = %q, want the registrations listed", stderr.String())
		}
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(first) {
		t.Errorf("%s holds %v, want only %s", out, entries, filepath.Base(first))
	}
}

func TestPackageName(t *testing.T) {
	tests := []struct{ modPath, want string }{
		{"github.com/autonomics/autonomics", "autonomics"},
		{"example.com/fx", "fx"},
		{"example.com/my-module", "mymodule"},
		{"example.com/v2go", "v2go"},
		{"example.com/2fa", "functionsroot"},
		{"example.com/func", "functionsroot"},
		{"example.com/main", "functionsroot"},
	}
	for _, tt := range tests {
		t.Run(tt.modPath, func(t *testing.T) {
			if got := packageName(tt.modPath); got != tt.want {
				t.Errorf("packageName(%q) = %q, want %q", tt.modPath, got, tt.want)
			}
		})
	}
}

func TestFindModuleRoot(t *testing.T) {
	root := gosrctest.WriteTree(t, fixtureModule)
	tests := []struct {
		dir     string
		want    string
		wantErr bool
	}{
		{dir: root, want: root},
		{dir: filepath.Join(root, "functions", "alpha"), want: root},
		{dir: t.TempDir(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			got, err := findModuleRoot(tt.dir)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("findModuleRoot(%s) = %q, %v; want %q, error %v", tt.dir, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
