package terraform

import (
	"go/ast"
	"go/token"
	"regexp"
	"strconv"
	"strings"

	"github.com/autonomics/autonomics/functions/gosrc"
)

// This file reads the Go sources of the module with package gosrc, the
// reader functions/stage stages the functions with: which packages
// register which functions, which mains serve HTTP, and, here, which
// environment variables a package and its dependencies in the module read.

// goModule is the module's sources, as the tests read them.
type goModule struct{ *gosrc.Module }

// goPkg is one parsed package (non-test files) of the module.
type goPkg = gosrc.Package

// registration is one function registered with the Functions Framework.
type registration = gosrc.Registration

func loadGoModule(root string) (*goModule, error) {
	m, err := gosrc.Load(root)
	if err != nil {
		return nil, err
	}
	return &goModule{m}, nil
}

// pkg is gosrc.Module.Package.
func (gm *goModule) pkg(importPath string) (*goPkg, error) { return gm.Package(importPath) }

// registrations is gosrc.Module.Registrations.
func (gm *goModule) registrations() ([]registration, error) { return gm.Registrations() }

// mains is gosrc.Module.Mains.
func (gm *goModule) mains(dir string) (map[string]*goPkg, error) { return gm.Mains(dir) }

// envName matches environment variable names, and autonomicsEnv the
// project's own, which are recognised wherever they appear as a string
// literal (configuration code reads them through helpers of all kinds).
var (
	envName       = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	autonomicsEnv = regexp.MustCompile(`^AUTONOMICS_[A-Z0-9_]+$`)
)

// envRead is one read of an environment variable.
type envRead struct {
	Name string
	Pos  string
}

// envConst is a string constant of a package.
type envConst struct{ pkg, name string }

// envReads returns the environment variables read by a package and its
// dependencies in the module: the first argument, when it is a constant
// name of an environment variable, of calls of a function whose name
// contains "env" (os.Getenv, os.LookupEnv, a getenv parameter, helpers
// such as envOr), and every AUTONOMICS_* name that is a string literal.
// A literal declaring a constant counts only where the constant is used:
// a package such as shared/platform names variables that only some of
// its importers read. Names are sorted; each keeps its first position.
func (gm *goModule) envReads(importPath string) ([]envRead, error) {
	pkgs, err := gm.Deps(importPath)
	if err != nil {
		return nil, err
	}
	// The AUTONOMICS_* constants of the packages, and the literals and
	// names that declare them.
	consts := map[envConst]string{}
	declaring := map[ast.Node]bool{}
	inDeps := map[string]bool{}
	for _, p := range pkgs {
		inDeps[p.ImportPath] = true
		for name, v := range p.Consts {
			if autonomicsEnv.MatchString(v) {
				consts[envConst{p.ImportPath, name}] = v
			}
		}
		for _, f := range p.Files {
			for _, d := range f.Decls {
				if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.CONST {
					for _, s := range gd.Specs {
						vs := s.(*ast.ValueSpec)
						for i, n := range vs.Names {
							declaring[n] = true
							if i < len(vs.Values) {
								if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
									declaring[lit] = true
								}
							}
						}
					}
				}
			}
		}
	}
	first := map[string]string{}
	read := func(name string, p *goPkg, pos token.Pos) {
		if _, seen := first[name]; !seen {
			first[name] = gm.Pos(p, pos)
		}
	}
	for _, p := range pkgs {
		for _, f := range p.Files {
			imports := gosrc.Imports(f)
			selected := map[*ast.Ident]bool{}
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.BasicLit:
					if v, err := strconv.Unquote(x.Value); x.Kind == token.STRING && err == nil && autonomicsEnv.MatchString(v) && !declaring[x] {
						read(v, p, x.Pos())
					}
				case *ast.SelectorExpr:
					selected[x.Sel] = true
					if id, ok := x.X.(*ast.Ident); ok && inDeps[imports[id.Name]] {
						if v, ok := consts[envConst{imports[id.Name], x.Sel.Name}]; ok {
							read(v, p, x.Pos())
						}
					}
				case *ast.Ident:
					if v, ok := consts[envConst{p.ImportPath, x.Name}]; ok && !declaring[x] && !selected[x] {
						read(v, p, x.Pos())
					}
				case *ast.CallExpr:
					if len(x.Args) == 0 {
						break
					}
					var fn string
					switch c := x.Fun.(type) {
					case *ast.Ident:
						fn = c.Name
					case *ast.SelectorExpr:
						fn = c.Sel.Name
					}
					if !strings.Contains(strings.ToLower(fn), "env") {
						break
					}
					if v, ok := gm.ResolveString(p, f, x.Args[0]); ok && envName.MatchString(v) {
						read(v, p, x.Pos())
					}
				}
				return true
			})
		}
	}
	out := make([]envRead, 0, len(first))
	for _, name := range sortedKeys(first) {
		out = append(out, envRead{Name: name, Pos: first[name]})
	}
	return out, nil
}
