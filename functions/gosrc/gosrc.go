// Package gosrc reads the Go sources of a module without building them:
// its packages (non-test files, parsed with comments), their string
// constants and imports, the packages of the module they depend on, the
// functions the packages under functions/ register with the Functions
// Framework, and the environment variables a package reads. functions/stage
// stages the registering packages from it, and the Terraform tests hold
// the configuration to what it finds.
package gosrc

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/autonomics/autonomics/shared/fault"
)

// FrameworkFunctions is the Functions Framework package whose
// registration calls Registrations looks for.
const FrameworkFunctions = "github.com/GoogleCloudPlatform/functions-framework-go/functions"

// FunctionsDir is the directory of the module that holds one directory
// per function package.
const FunctionsDir = "functions"

// registerCalls are the functions of FrameworkFunctions that register a
// function, named by the kind of function they register.
var registerCalls = []string{"CloudEvent", "HTTP", "Typed"}

// maxAliasDepth bounds the chain of constants ResolveString follows.
const maxAliasDepth = 16

// Module reads the packages of one module on demand and keeps each it
// parsed. It is not safe for concurrent use.
type Module struct {
	// Root is the module's directory, Path its module path.
	Root string
	Path string
	pkgs map[string]*Package
}

// Package is the parsed non-test Go files of one directory of the module.
type Package struct {
	// ImportPath is the package's import path, Dir its directory relative
	// to the module root (with slashes), Name its package name.
	ImportPath string
	Dir        string
	Name       string
	// Fset positions Files, in directory order.
	Fset  *token.FileSet
	Files []*ast.File
	// Consts are the package's string constants declared with a literal
	// value, by name. ResolveString also follows the constants declared
	// as another constant.
	Consts map[string]string
	// aliases are the constants declared as another constant.
	aliases map[string]alias
}

// alias is a constant declared as another constant, in file f.
type alias struct {
	f    *ast.File
	expr ast.Expr
}

// Registration is one function a package registers with the framework.
type Registration struct {
	// Package is the import path of the registering package.
	Package string
	// Kind is the framework call: CloudEvent, HTTP or Typed.
	Kind string
	// EntryPoint is the registered name, the entry point a deployment names.
	EntryPoint string
	// Domain is the governor domain when the handler is built by a call
	// with a string constant as its one argument, as in
	// runtime.GovernorFunction(governor.Billing); "" otherwise.
	Domain string
	// Pos is the position of the call, file relative to the module root.
	Pos string
}

// Load returns the module rooted at root, named by root/go.mod.
func Load(root string) (*Module, error) {
	const op = "gosrc.Load"
	name := filepath.Join(root, "go.mod")
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, op, err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			p, err := strconv.Unquote(f[1])
			if err != nil {
				p = f[1]
			}
			return &Module{Root: root, Path: p, pkgs: map[string]*Package{}}, nil
		}
	}
	return nil, fault.Errorf(fault.Invalid, op, "%s: no module line", name)
}

// Ignored reports whether the go tool ignores a file or directory name.
func Ignored(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// Package parses the package at an import path of the module. It returns
// nil, and no error, when the directory does not exist or holds no
// non-test Go files.
func (m *Module) Package(importPath string) (*Package, error) {
	const op = "gosrc.Package"
	if p, ok := m.pkgs[importPath]; ok {
		return p, nil
	}
	rel, ok := strings.CutPrefix(importPath, m.Path+"/")
	if !ok {
		return nil, fault.Errorf(fault.Invalid, op, "%s is not a package of module %s", importPath, m.Path)
	}
	dir := filepath.Join(m.Root, filepath.FromSlash(rel))
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		m.pkgs[importPath] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, op, err)
	}
	p := &Package{ImportPath: importPath, Dir: rel, Fset: token.NewFileSet(), Consts: map[string]string{}, aliases: map[string]alias{}}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") || Ignored(n) {
			continue
		}
		f, err := parser.ParseFile(p.Fset, filepath.Join(dir, n), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, fault.Wrap(fault.Invalid, op, err)
		}
		if p.Name != "" && f.Name.Name != p.Name {
			return nil, fault.Errorf(fault.Invalid, op, "%s: packages %s and %s in one directory", rel, p.Name, f.Name.Name)
		}
		p.Name = f.Name.Name
		p.Files = append(p.Files, f)
		p.collectConsts(f)
	}
	if len(p.Files) == 0 {
		p = nil
	}
	m.pkgs[importPath] = p
	return p, nil
}

// collectConsts records the string constants of f.
func (p *Package) collectConsts(f *ast.File) {
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i >= len(vs.Values) {
					break
				}
				switch v := vs.Values[i].(type) {
				case *ast.BasicLit:
					if v.Kind != token.STRING {
						continue
					}
					if s, err := strconv.Unquote(v.Value); err == nil {
						p.Consts[n.Name] = s
					}
				case *ast.Ident, *ast.SelectorExpr:
					p.aliases[n.Name] = alias{f: f, expr: v}
				}
			}
		}
	}
}

// Imports returns the import paths of a file by the name the file uses
// for them: the import's name, or else the last element of its path.
func Imports(f *ast.File) map[string]string {
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

// ResolveString returns the value of e, an expression of file f of p,
// when it is a string literal, a string constant of p or a string
// constant of another package of the module; a constant declared as
// another constant is followed.
func (m *Module) ResolveString(p *Package, f *ast.File, e ast.Expr) (string, bool) {
	return m.resolve(p, f, e, 0)
}

func (m *Module) resolve(p *Package, f *ast.File, e ast.Expr, depth int) (string, bool) {
	if depth > maxAliasDepth {
		return "", false
	}
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind == token.STRING {
			v, err := strconv.Unquote(x.Value)
			return v, err == nil
		}
	case *ast.Ident:
		return m.constant(p, x.Name, depth)
	case *ast.SelectorExpr:
		id, ok := x.X.(*ast.Ident)
		if !ok {
			return "", false
		}
		ip, ok := Imports(f)[id.Name]
		if !ok || !strings.HasPrefix(ip, m.Path+"/") {
			return "", false
		}
		q, err := m.Package(ip)
		if err != nil || q == nil {
			return "", false
		}
		return m.constant(q, x.Sel.Name, depth)
	}
	return "", false
}

// constant returns the value of p's string constant name.
func (m *Module) constant(p *Package, name string, depth int) (string, bool) {
	if v, ok := p.Consts[name]; ok {
		return v, true
	}
	if a, ok := p.aliases[name]; ok {
		return m.resolve(p, a.f, a.expr, depth+1)
	}
	return "", false
}

// Pos returns the position pos of p as file:line:column, the file
// relative to the module root.
func (m *Module) Pos(p *Package, pos token.Pos) string {
	s := p.Fset.Position(pos).String()
	if r, err := filepath.Rel(m.Root, s); err == nil {
		return r
	}
	return s
}

// Deps returns the packages at importPaths and every package of the
// module they import, transitively, sorted by import path. A package
// without Go files is an error.
func (m *Module) Deps(importPaths ...string) ([]*Package, error) {
	const op = "gosrc.Deps"
	seen := map[string]bool{}
	var out []*Package
	queue := slices.Clone(importPaths)
	for len(queue) > 0 {
		ip := queue[0]
		queue = queue[1:]
		if seen[ip] {
			continue
		}
		seen[ip] = true
		p, err := m.Package(ip)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, fault.Errorf(fault.Invalid, op, "%s: imported but holds no Go files", ip)
		}
		out = append(out, p)
		for _, f := range p.Files {
			for _, imp := range f.Imports {
				if v, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(v, m.Path+"/") {
					queue = append(queue, v)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b *Package) int { return strings.Compare(a.ImportPath, b.ImportPath) })
	return out, nil
}

// Mains returns the main packages directly under the module's directory
// dir (e.g. "services"), by directory name. A directory without Go files
// is not a package yet, and a missing dir holds none.
func (m *Module) Mains(dir string) (map[string]*Package, error) {
	return m.children(dir, func(p *Package) bool { return p.Name == "main" })
}

// children returns the packages directly under dir that keep says to
// keep, by directory name.
func (m *Module) children(dir string, keep func(*Package) bool) (map[string]*Package, error) {
	entries, err := os.ReadDir(filepath.Join(m.Root, filepath.FromSlash(dir)))
	if os.IsNotExist(err) {
		return map[string]*Package{}, nil
	}
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, "gosrc.children", err)
	}
	out := map[string]*Package{}
	for _, e := range entries {
		if !e.IsDir() || Ignored(e.Name()) || e.Name() == "testdata" {
			continue
		}
		p, err := m.Package(m.Path + "/" + dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		if p != nil && keep(p) {
			out[e.Name()] = p
		}
	}
	return out, nil
}

// Registrations returns the functions registered by the packages directly
// under FunctionsDir, by directory then by position in the source.
// Package main (a local host) is skipped. An entry point must be a string
// literal or a string constant.
func (m *Module) Registrations() ([]Registration, error) {
	const op = "gosrc.Registrations"
	if _, err := os.Stat(filepath.Join(m.Root, FunctionsDir)); err != nil {
		return nil, fault.Wrap(fault.Invalid, op, err)
	}
	pkgs, err := m.children(FunctionsDir, func(p *Package) bool { return p.Name != "main" })
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(pkgs))
	for d := range pkgs {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	var out []Registration
	for _, d := range dirs {
		regs, err := m.registrations(pkgs[d])
		if err != nil {
			return nil, err
		}
		out = append(out, regs...)
	}
	return out, nil
}

// registrations finds the framework registration calls of p.
func (m *Module) registrations(p *Package) ([]Registration, error) {
	const op = "gosrc.Registrations"
	var out []Registration
	for _, f := range p.Files {
		local := ""
		for name, ip := range Imports(f) {
			if ip == FrameworkFunctions && name != "_" {
				local = name
			}
		}
		if local == "" {
			continue
		}
		var err error
		ast.Inspect(f, func(n ast.Node) bool {
			if err != nil {
				return false
			}
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != local || !slices.Contains(registerCalls, sel.Sel.Name) {
				return true
			}
			r := Registration{Package: p.ImportPath, Kind: sel.Sel.Name, Pos: m.Pos(p, call.Pos())}
			if len(call.Args) > 0 {
				r.EntryPoint, ok = m.ResolveString(p, f, call.Args[0])
			}
			if !ok || len(call.Args) == 0 {
				err = fault.Errorf(fault.Invalid, op, "%s: the name given to %s.%s is not a string constant", r.Pos, local, sel.Sel.Name)
				return false
			}
			if len(call.Args) > 1 {
				if h, ok := call.Args[1].(*ast.CallExpr); ok && len(h.Args) == 1 {
					r.Domain, _ = m.ResolveString(p, f, h.Args[0])
				}
			}
			out = append(out, r)
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
