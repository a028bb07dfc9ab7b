package gosrc_test

import (
	"go/ast"
	"go/token"
	"slices"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/functions/gosrc"
	"github.com/autonomics/autonomics/functions/gosrc/gosrctest"
	"github.com/autonomics/autonomics/shared/fault"
)

// fixture is a small module with the shapes the scanner must read.
var fixture = map[string]string{
	"go.mod": "module example.com/fx\n\ngo 1.26\n",
	"functions/alpha/alpha.go": `package alpha

import (
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"example.com/fx/shared/core"
)

const EntryPoint = "Alpha"

func init() { functions.HTTP(EntryPoint, core.Handler(core.Billing)) }
`,
	"functions/alpha/alpha_test.go": "package alpha\n\nconst Ignored = \"x\"\n",
	"functions/beta/beta.go": `package beta

import ff "github.com/GoogleCloudPlatform/functions-framework-go/functions"

func init() {
	ff.CloudEvent("Beta", nil)
	ff.Typed("Gamma", nil)
}
`,
	"functions/blank/blank.go":  "package blank\n\nimport _ \"github.com/GoogleCloudPlatform/functions-framework-go/functions\"\n",
	"functions/host/main.go":    "package main\n\nimport \"github.com/GoogleCloudPlatform/functions-framework-go/functions\"\n\nfunc main() { functions.HTTP(\"Host\", nil) }\n",
	"functions/.hidden/x.go":    "package hidden\n",
	"functions/testdata/x.go":   "package testdata\n",
	"functions/empty/README.md": "no Go files\n",
	"services/api/main.go":      "package main\n\nfunc main() {}\n",
	"services/lib/lib.go":       "package lib\n",
	"shared/core/core.go":       "package core\n\nimport \"example.com/fx/shared/deep\"\n\nconst Billing = deep.Billing\n\nfunc Handler(string) any { return nil }\n",
	"shared/deep/deep.go":       "package deep\n\nconst (\n\tBilling = domain\n\tdomain  = \"billing\"\n\tcount   = 3\n)\n",
	"shared/unused/unused.go":   "package unused\n",
	"shared/mixed/a.go":         "package a\n",
	"shared/mixed/b.go":         "package b\n",
	"shared/imports/imports.go": "package imports\n\nimport \"example.com/fx/shared/missing\"\n",
}

func load(t *testing.T, files map[string]string) *gosrc.Module {
	t.Helper()
	m, err := gosrc.Load(gosrctest.WriteTree(t, files))
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	return m
}

func TestRegistrations(t *testing.T) {
	m := load(t, fixture)
	if m.Path != "example.com/fx" {
		t.Errorf("Load().Path = %q, want example.com/fx", m.Path)
	}
	got, err := m.Registrations()
	if err != nil {
		t.Fatalf("Registrations() error = %v", err)
	}
	want := []gosrc.Registration{
		{Package: "example.com/fx/functions/alpha", Kind: "HTTP", EntryPoint: "Alpha", Domain: "billing", Pos: "functions/alpha/alpha.go:11:15"},
		{Package: "example.com/fx/functions/beta", Kind: "CloudEvent", EntryPoint: "Beta", Pos: "functions/beta/beta.go:6:2"},
		{Package: "example.com/fx/functions/beta", Kind: "Typed", EntryPoint: "Gamma", Pos: "functions/beta/beta.go:7:2"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Registrations() = %+v, want %+v", got, want)
	}
}

func TestRegistrationErrors(t *testing.T) {
	tests := []struct {
		name    string
		changes map[string]string
		want    string
	}{
		{
			name: "entry point not constant",
			changes: map[string]string{"functions/beta/beta.go": `package beta

import "github.com/GoogleCloudPlatform/functions-framework-go/functions"

var name = "Beta"

func init() { functions.HTTP(name, nil) }
`},
			want: "functions/beta/beta.go:7:15: the name given to functions.HTTP is not a string constant",
		},
		{
			name:    "two packages in one directory",
			changes: map[string]string{"functions/beta/other.go": "package other\n"},
			want:    "packages beta and other in one directory",
		},
		{
			name:    "syntax error",
			changes: map[string]string{"functions/beta/beta.go": "package beta\n\nfunc {\n"},
			want:    "beta.go",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range fixture {
				files[k] = v
			}
			for k, v := range tt.changes {
				files[k] = v
			}
			_, err := load(t, files).Registrations()
			if err == nil || !strings.Contains(err.Error(), tt.want) || fault.ErrorCode(err) != fault.Invalid {
				t.Fatalf("Registrations() error = %v (code %s), want an invalid one mentioning %q", err, fault.ErrorCode(err), tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"no go.mod":      {"x.go": "package x\n"},
		"no module line": {"go.mod": "go 1.26\n"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := gosrc.Load(gosrctest.WriteTree(t, files))
			if err == nil || !strings.Contains(err.Error(), "go.mod") || fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("Load() error = %v, want an invalid one naming go.mod", err)
			}
		})
	}
}

func TestPackage(t *testing.T) {
	m := load(t, fixture)
	tests := []struct {
		importPath string
		wantName   string
		wantFiles  int
		wantErr    string
	}{
		{importPath: "example.com/fx/functions/alpha", wantName: "alpha", wantFiles: 1},
		{importPath: "example.com/fx/functions/empty"},
		{importPath: "example.com/fx/shared/nowhere"},
		{importPath: "example.com/fx/shared/mixed", wantErr: "packages a and b"},
		{importPath: "example.org/other", wantErr: "not a package of module example.com/fx"},
	}
	for _, tt := range tests {
		t.Run(tt.importPath, func(t *testing.T) {
			p, err := m.Package(tt.importPath)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Package(%s) error = %v, want one mentioning %q", tt.importPath, err, tt.wantErr)
				}
			case err != nil:
				t.Errorf("Package(%s) error = %v", tt.importPath, err)
			case tt.wantName == "" && p != nil:
				t.Errorf("Package(%s) = %+v, want nil", tt.importPath, p)
			case tt.wantName != "" && (p == nil || p.Name != tt.wantName || len(p.Files) != tt.wantFiles):
				t.Errorf("Package(%s) = %+v, want package %s of %d files", tt.importPath, p, tt.wantName, tt.wantFiles)
			}
		})
	}
	if p, _ := m.Package("example.com/fx/functions/alpha"); p != nil {
		if _, ok := p.Consts["Ignored"]; ok || p.Consts["EntryPoint"] != "Alpha" {
			t.Errorf("Package(alpha).Consts = %v, want EntryPoint and no constant of a test file", p.Consts)
		}
	}
}

func TestResolveString(t *testing.T) {
	m := load(t, fixture)
	p, err := m.Package("example.com/fx/shared/core")
	if err != nil || p == nil {
		t.Fatalf("Package(core) = %v, %v", p, err)
	}
	f := p.Files[0]
	tests := []struct {
		name   string
		expr   ast.Expr
		want   string
		wantOK bool
	}{
		{"literal", &ast.BasicLit{Kind: token.STRING, Value: `"x"`}, "x", true},
		{"constant declared as another package's", ast.NewIdent("Billing"), "billing", true},
		{"other package's constant declared as a constant", &ast.SelectorExpr{X: ast.NewIdent("deep"), Sel: ast.NewIdent("Billing")}, "billing", true},
		{"not a string", &ast.SelectorExpr{X: ast.NewIdent("deep"), Sel: ast.NewIdent("count")}, "", false},
		{"unknown name", ast.NewIdent("Nothing"), "", false},
		{"package outside the module", &ast.SelectorExpr{X: ast.NewIdent("strings"), Sel: ast.NewIdent("X")}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := m.ResolveString(p, f, tt.expr); got != tt.want || ok != tt.wantOK {
				t.Errorf("ResolveString(%s) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestDeps(t *testing.T) {
	m := load(t, fixture)
	deps, err := m.Deps("example.com/fx/functions/alpha", "example.com/fx/shared/core")
	if err != nil {
		t.Fatalf("Deps() error = %v", err)
	}
	var got []string
	for _, p := range deps {
		got = append(got, p.ImportPath)
	}
	want := []string{"example.com/fx/functions/alpha", "example.com/fx/shared/core", "example.com/fx/shared/deep"}
	if !slices.Equal(got, want) {
		t.Errorf("Deps() = %q, want %q", got, want)
	}
	if _, err := m.Deps("example.com/fx/shared/imports"); err == nil || !strings.Contains(err.Error(), "shared/missing") || fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("Deps() of a package importing a missing one: error = %v, want an invalid one naming it", err)
	}
}

func TestMains(t *testing.T) {
	m := load(t, fixture)
	for dir, want := range map[string][]string{"services": {"api"}, "functions": {"host"}, "nowhere": nil} {
		got, err := m.Mains(dir)
		if err != nil {
			t.Fatalf("Mains(%s) error = %v", dir, err)
		}
		var names []string
		for name := range got {
			names = append(names, name)
		}
		slices.Sort(names)
		if !slices.Equal(names, want) {
			t.Errorf("Mains(%s) = %q, want %q", dir, names, want)
		}
	}
}
