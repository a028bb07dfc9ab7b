package gosrc

import (
	"go/ast"
	"go/token"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// EnvPrefix begins the names of the module's own environment variables,
// which EnvReads recognises wherever they appear.
const EnvPrefix = "AUTONOMICS_"

// envName matches environment variable names, and ownEnv the module's.
var (
	envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	ownEnv  = regexp.MustCompile(`^` + EnvPrefix + `[A-Z0-9_]+$`)
)

// EnvRead is one environment variable a package reads.
type EnvRead struct {
	Name string
	// Pos is the first read found, file relative to the module root.
	Pos string
}

// EnvReads returns the environment variables read by the package at
// importPath and the code of the module it reaches, sorted by name. A
// read is
//   - the first argument, when it is a constant name of an environment
//     variable, of a call of a function whose name contains "env"
//     (os.Getenv, os.LookupEnv, a getenv parameter, helpers such as
//     envOr), Setenv and Unsetenv excepted;
//   - an EnvPrefix name written as a string literal, or a use of a string
//     constant holding one: configuration code reads them through helpers
//     of all kinds.
//
// Declaring a name is not reading it: a constant counts only where it is
// used, not where it is declared (as a literal or as another constant),
// so that a package may name variables only some of its importers read.
// Setting a name for a child process is not reading it either: a name
// followed by a literal starting with "=" (name+"="+value, an entry of an
// exec.Cmd's Env), or the name given to Setenv or Unsetenv.
//
// Of the packages imported, only the code the package reaches counts:
// their package-level variables, init functions and methods, and the
// functions that counted code names, transitively. A program that
// imports a package for its names does not read what that package's
// unused functions read.
func (m *Module) EnvReads(importPath string) ([]EnvRead, error) {
	pkgs, err := m.Deps(importPath)
	if err != nil {
		return nil, err
	}
	s := &envScan{m: m, consts: map[pkgName]string{}, inDeps: map[string]bool{}, first: map[string]string{}}
	for _, p := range pkgs {
		s.inDeps[p.ImportPath] = true
		for name := range p.Consts {
			s.addConst(p, name)
		}
		for name := range p.aliases {
			s.addConst(p, name)
		}
	}
	for _, d := range reachable(pkgs, importPath) {
		s.inspect(d)
	}
	names := make([]string, 0, len(s.first))
	for name := range s.first {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]EnvRead, 0, len(names))
	for _, name := range names {
		out = append(out, EnvRead{Name: name, Pos: s.first[name]})
	}
	return out, nil
}

// pkgName is a top-level name of a package.
type pkgName struct{ pkg, name string }

// decl is a top-level declaration of file f of package p.
type decl struct {
	p *Package
	f *ast.File
	d ast.Decl
}

// reachable returns, in source order, the top-level declarations of pkgs
// whose code runs when the package root does: all of root's, and of the
// others their variables, types, init functions and methods, and the
// functions named by code already reached.
func reachable(pkgs []*Package, root string) []decl {
	var all []decl
	funcs := map[pkgName]int{}
	on := map[int]bool{}
	var queue []int
	mark := func(i int) {
		if !on[i] {
			on[i] = true
			queue = append(queue, i)
		}
	}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				i := len(all)
				all = append(all, decl{p, f, d})
				fd, ok := d.(*ast.FuncDecl)
				if p.ImportPath == root || !ok || fd.Recv != nil || fd.Name.Name == "init" {
					mark(i)
				} else {
					funcs[pkgName{p.ImportPath, fd.Name.Name}] = i
				}
			}
		}
	}
	for len(queue) > 0 {
		d := all[queue[0]]
		queue = queue[1:]
		imports := Imports(d.f)
		ast.Inspect(d.d, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.Ident:
				// A name shadowing the function marks it too: the scan
				// errs on the side of reading.
				if i, ok := funcs[pkgName{d.p.ImportPath, x.Name}]; ok {
					mark(i)
				}
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok {
					if i, ok := funcs[pkgName{imports[id.Name], x.Sel.Name}]; ok {
						mark(i)
					}
				}
			}
			return true
		})
	}
	out := make([]decl, 0, len(on))
	for i, d := range all {
		if on[i] {
			out = append(out, d)
		}
	}
	return out
}

// envScan collects the reads of EnvReads.
type envScan struct {
	m *Module
	// consts are the string constants of the packages that hold an
	// EnvPrefix name; inDeps the packages scanned.
	consts map[pkgName]string
	inDeps map[string]bool
	// first is the position of each name's first read.
	first map[string]string
}

// addConst records p's constant name when it holds an EnvPrefix name.
func (s *envScan) addConst(p *Package, name string) {
	if v, ok := s.m.constant(p, name, 0); ok && ownEnv.MatchString(v) {
		s.consts[pkgName{p.ImportPath, name}] = v
	}
}

func (s *envScan) read(name string, p *Package, pos token.Pos) {
	if _, seen := s.first[name]; !seen {
		s.first[name] = s.m.Pos(p, pos)
	}
}

// inspect records the reads of one declaration. A top-level constant
// declaration holds none.
func (s *envScan) inspect(d decl) {
	if gd, ok := d.d.(*ast.GenDecl); ok && gd.Tok == token.CONST {
		return
	}
	p, f := d.p, d.f
	imports := Imports(f)
	// selected are the names after a dot, which are not p's; setting the
	// expressions that name a variable being set.
	selected := map[*ast.Ident]bool{}
	setting := map[ast.Expr]bool{}
	ast.Inspect(d.d, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BinaryExpr:
			if lit, ok := x.Y.(*ast.BasicLit); ok && x.Op == token.ADD && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(v, "=") {
					setting[x.X] = true
				}
			}
		case *ast.BasicLit:
			if v, err := strconv.Unquote(x.Value); x.Kind == token.STRING && err == nil && ownEnv.MatchString(v) && !setting[x] {
				s.read(v, p, x.Pos())
			}
		case *ast.SelectorExpr:
			selected[x.Sel] = true
			if id, ok := x.X.(*ast.Ident); ok && s.inDeps[imports[id.Name]] && !setting[x] {
				if v, ok := s.consts[pkgName{imports[id.Name], x.Sel.Name}]; ok {
					s.read(v, p, x.Pos())
				}
			}
		case *ast.Ident:
			if v, ok := s.consts[pkgName{p.ImportPath, x.Name}]; ok && !selected[x] && !setting[x] {
				s.read(v, p, x.Pos())
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
			switch fn = strings.ToLower(fn); {
			case fn == "setenv" || fn == "unsetenv":
				setting[x.Args[0]] = true
			case strings.Contains(fn, "env"):
				if v, ok := s.m.ResolveString(p, f, x.Args[0]); ok && envName.MatchString(v) {
					s.read(v, p, x.Pos())
				}
			}
		}
		return true
	})
}
