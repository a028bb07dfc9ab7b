package terraform

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// This file reads the Go sources of the module, without building them:
// which packages register which functions, which environment variables a
// package and its dependencies in the module read, and which mains serve
// HTTP.

const frameworkFunctions = "github.com/GoogleCloudPlatform/functions-framework-go/functions"

// goPkg is one parsed package (non-test files) of the module.
type goPkg struct {
	ImportPath string
	Dir        string // relative to the module root, with slashes
	Name       string
	Fset       *token.FileSet
	Files      []*ast.File
	Consts     map[string]string // string constants with literal values
}

// goModule reads packages of one module on demand.
type goModule struct {
	Root string
	Path string
	pkgs map[string]*goPkg
}

func loadGoModule(root string) (*goModule, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return &goModule{Root: root, Path: strings.Trim(f[1], `"`), pkgs: map[string]*goPkg{}}, nil
		}
	}
	return nil, fmt.Errorf("%s/go.mod: no module line", root)
}

// pkg parses the package at a module import path; it returns nil when the
// directory holds no non-test Go files.
func (gm *goModule) pkg(importPath string) (*goPkg, error) {
	if p, ok := gm.pkgs[importPath]; ok {
		return p, nil
	}
	rel, ok := strings.CutPrefix(importPath, gm.Path+"/")
	if !ok {
		return nil, fmt.Errorf("%s is not in module %s", importPath, gm.Path)
	}
	dir := filepath.Join(gm.Root, filepath.FromSlash(rel))
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		gm.pkgs[importPath] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p := &goPkg{ImportPath: importPath, Dir: rel, Fset: token.NewFileSet(), Consts: map[string]string{}}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") ||
			strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") {
			continue
		}
		f, err := parser.ParseFile(p.Fset, filepath.Join(dir, n), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if p.Name != "" && p.Name != f.Name.Name {
			return nil, fmt.Errorf("%s: packages %s and %s", rel, p.Name, f.Name.Name)
		}
		p.Name = f.Name.Name
		p.Files = append(p.Files, f)
		collectConsts(f, p.Consts)
	}
	if len(p.Files) == 0 {
		p = nil
	}
	gm.pkgs[importPath] = p
	return p, nil
}

func collectConsts(f *ast.File, out map[string]string) {
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if v, err := strconv.Unquote(lit.Value); err == nil {
							out[n.Name] = v
						}
					}
				}
			}
		}
	}
}

// imports returns the import paths of a file by local name.
func imports(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := path.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		out[name] = p
	}
	return out
}

// resolveString resolves a string literal, a constant of the package or a
// constant of another package of the module.
func (gm *goModule) resolveString(p *goPkg, f *ast.File, e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind == token.STRING {
			v, err := strconv.Unquote(x.Value)
			return v, err == nil
		}
	case *ast.Ident:
		v, ok := p.Consts[x.Name]
		return v, ok
	case *ast.SelectorExpr:
		id, ok := x.X.(*ast.Ident)
		if !ok {
			return "", false
		}
		ip, ok := imports(f)[id.Name]
		if !ok || !strings.HasPrefix(ip, gm.Path+"/") {
			return "", false
		}
		q, err := gm.pkg(ip)
		if err != nil || q == nil {
			return "", false
		}
		v, ok := q.Consts[x.Sel.Name]
		return v, ok
	}
	return "", false
}

// deps returns the package and the packages of the module it imports,
// transitively, sorted by import path.
func (gm *goModule) deps(importPath string) ([]*goPkg, error) {
	seen := map[string]bool{}
	var out []*goPkg
	queue := []string{importPath}
	for len(queue) > 0 {
		ip := queue[0]
		queue = queue[1:]
		if seen[ip] {
			continue
		}
		seen[ip] = true
		p, err := gm.pkg(ip)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, fmt.Errorf("%s: no Go files", ip)
		}
		out = append(out, p)
		for _, f := range p.Files {
			for _, imp := range f.Imports {
				v, _ := strconv.Unquote(imp.Path.Value)
				if strings.HasPrefix(v, gm.Path+"/") {
					queue = append(queue, v)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ImportPath < out[j].ImportPath })
	return out, nil
}

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

// envReads returns the environment variables read by a package and its
// dependencies in the module: the first argument, when it is a constant
// name of an environment variable, of calls of a function whose name
// contains "env" (os.Getenv, os.LookupEnv, a getenv parameter, helpers
// such as envOr), and every string literal that is an AUTONOMICS_*
// name. Names are sorted; each keeps its first position.
func (gm *goModule) envReads(importPath string) ([]envRead, error) {
	pkgs, err := gm.deps(importPath)
	if err != nil {
		return nil, err
	}
	first := map[string]string{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if v, err := strconv.Unquote(lit.Value); err == nil && autonomicsEnv.MatchString(v) {
						if _, seen := first[v]; !seen {
							first[v] = p.Fset.Position(lit.Pos()).String()
						}
					}
					return true
				}
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				var fn string
				switch x := call.Fun.(type) {
				case *ast.Ident:
					fn = x.Name
				case *ast.SelectorExpr:
					fn = x.Sel.Name
				}
				if !strings.Contains(strings.ToLower(fn), "env") {
					return true
				}
				if v, ok := gm.resolveString(p, f, call.Args[0]); ok && envName.MatchString(v) {
					if _, seen := first[v]; !seen {
						first[v] = p.Fset.Position(call.Pos()).String()
					}
				}
				return true
			})
		}
	}
	out := make([]envRead, 0, len(first))
	for _, name := range sortedKeys(first) {
		out = append(out, envRead{Name: name, Pos: relPos(gm.Root, first[name])})
	}
	return out, nil
}

func relPos(root, pos string) string {
	if r, err := filepath.Rel(root, pos); err == nil {
		return r
	}
	return pos
}

// registration is one function registered with the Functions Framework.
type registration struct {
	Package    string // import path
	Kind       string // CloudEvent, HTTP or Typed
	EntryPoint string
	// Domain is the governor domain when the handler is built from a
	// domain constant, as in runtime.GovernorFunction(governor.Billing).
	Domain string
	Pos    string
}

// registrations scans the packages directly under functions/ (package
// main, a local host, excluded) for framework registrations.
func (gm *goModule) registrations() ([]registration, error) {
	entries, err := os.ReadDir(filepath.Join(gm.Root, "functions"))
	if err != nil {
		return nil, err
	}
	var out []registration
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") || e.Name() == "testdata" {
			continue
		}
		p, err := gm.pkg(gm.Path + "/functions/" + e.Name())
		if err != nil {
			return nil, err
		}
		if p == nil || p.Name == "main" {
			continue
		}
		for _, f := range p.Files {
			local := ""
			for name, ip := range imports(f) {
				if ip == frameworkFunctions {
					local = name
				}
			}
			if local == "" {
				continue
			}
			var scanErr error
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 2 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); !ok || x.Name != local || !slices.Contains([]string{"CloudEvent", "HTTP", "Typed"}, sel.Sel.Name) {
					return true
				}
				pos := relPos(gm.Root, p.Fset.Position(call.Pos()).String())
				name, ok := gm.resolveString(p, f, call.Args[0])
				if !ok {
					scanErr = fmt.Errorf("%s: entry point is not a string constant", pos)
					return false
				}
				r := registration{Package: p.ImportPath, Kind: sel.Sel.Name, EntryPoint: name, Pos: pos}
				if h, ok := call.Args[1].(*ast.CallExpr); ok && len(h.Args) == 1 {
					if d, ok := gm.resolveString(p, f, h.Args[0]); ok {
						r.Domain = d
					}
				}
				out = append(out, r)
				return true
			})
			if scanErr != nil {
				return nil, scanErr
			}
		}
	}
	return out, nil
}

// mains returns the main packages directly under dir (e.g. services), by
// directory name. A directory without Go files is not a package yet.
func (gm *goModule) mains(dir string) (map[string]*goPkg, error) {
	entries, err := os.ReadDir(filepath.Join(gm.Root, dir))
	if os.IsNotExist(err) {
		return map[string]*goPkg{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]*goPkg{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") || e.Name() == "testdata" {
			continue
		}
		p, err := gm.pkg(gm.Path + "/" + dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		if p != nil && p.Name == "main" {
			out[e.Name()] = p
		}
	}
	return out, nil
}
