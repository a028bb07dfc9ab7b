package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// FrameworkFunctions is the Functions Framework package whose registrations
// stage looks for, and which the root file imports so that the buildpack
// uses its declarative template.
const FrameworkFunctions = "github.com/GoogleCloudPlatform/functions-framework-go/functions"

// RootFile is the generated file at the root of the archive.
const RootFile = "autonomics_functions.go"

// FunctionsDir holds one directory per function package.
const FunctionsDir = "functions"

// registerCalls are the framework functions that register a function, by
// the kind of function they register.
var registerCalls = []string{"CloudEvent", "HTTP", "Typed"}

// fixedTime is the modification time of every archive entry.
var fixedTime = time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)

// Registration is one function a package registers with the framework.
type Registration struct {
	// Package is the import path of the registering package.
	Package string
	// Kind is the framework call: CloudEvent, HTTP or Typed.
	Kind string
	// EntryPoint is the registered name, the entry point a deployment names.
	EntryPoint string
}

// Archive is a staged source archive.
type Archive struct {
	// Name is source-<hex SHA-256 of Data>.zip.
	Name string
	// Data is the zip file.
	Data []byte
	// Files lists the archive's entries in order.
	Files []string
	// Registrations lists the functions the archive registers, by package
	// then by position in the source.
	Registrations []Registration
}

// Build stages the module rooted at root.
func Build(root string) (*Archive, error) {
	const op = "stage.Build"
	modPath, err := modulePath(root)
	if err != nil {
		return nil, err
	}
	if err := checkNoRootPackage(root); err != nil {
		return nil, err
	}
	regs, err := Discover(root, modPath)
	if err != nil {
		return nil, err
	}
	if len(regs) == 0 {
		return nil, fault.Errorf(fault.Invalid, op, "no package under %s/ registers a function", FunctionsDir)
	}
	var pkgs []string
	for _, r := range regs {
		if !slices.Contains(pkgs, r.Package) {
			pkgs = append(pkgs, r.Package)
		}
	}
	dirs, err := moduleDeps(root, modPath, pkgs)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return nil, fault.Wrap(fault.Invalid, op, err)
		}
		files[name] = b
	}
	for _, dir := range dirs {
		if err := addPackageFiles(root, dir, files); err != nil {
			return nil, err
		}
	}
	src, err := RootSource(packageName(modPath), pkgs)
	if err != nil {
		return nil, err
	}
	files[RootFile] = src
	data, names, err := zipFiles(files)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return &Archive{
		Name:          "source-" + hex.EncodeToString(sum[:]) + ".zip",
		Data:          data,
		Files:         names,
		Registrations: regs,
	}, nil
}

// WriteTo writes the archive into dir, creating dir if needed, and returns
// the archive's path. An archive already there under the same name is left
// as it is: the name is its content's hash.
func (a *Archive) WriteTo(dir string) (string, error) {
	const op = "stage.WriteTo"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fault.Wrap(fault.Internal, op, err)
	}
	p := filepath.Join(dir, a.Name)
	if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, a.Data) {
		return p, nil
	}
	tmp, err := os.CreateTemp(dir, ".stage-*")
	if err != nil {
		return "", fault.Wrap(fault.Internal, op, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(a.Data); err != nil {
		tmp.Close()
		return "", fault.Wrap(fault.Internal, op, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fault.Wrap(fault.Internal, op, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", fault.Wrap(fault.Internal, op, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fault.Wrap(fault.Internal, op, err)
	}
	return p, nil
}

// Discover returns the functions registered by the packages directly under
// root/functions, in directory order. Package main (a local host) is
// skipped. An entry point must be a string literal or a string constant of
// the registering package.
func Discover(root, modPath string) ([]Registration, error) {
	const op = "stage.Discover"
	entries, err := os.ReadDir(filepath.Join(root, FunctionsDir))
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, op, err)
	}
	var out []Registration
	for _, e := range entries {
		if !e.IsDir() || ignored(e.Name()) || e.Name() == "testdata" {
			continue
		}
		rel := path.Join(FunctionsDir, e.Name())
		pkg, err := parsePackage(root, rel, 0)
		if err != nil {
			return nil, err
		}
		if pkg.name == "" || pkg.name == "main" {
			continue
		}
		regs, err := pkg.registrations(modPath + "/" + rel)
		if err != nil {
			return nil, err
		}
		out = append(out, regs...)
	}
	return out, nil
}

// RootSource returns the generated root file of package name that
// blank-imports the framework's functions package and pkgs.
func RootSource(name string, pkgs []string) ([]byte, error) {
	var b strings.Builder
	b.WriteString("// Code generated by functions/stage. DO NOT EDIT.\n\n")
	b.WriteString("// Package " + name + " is the root package of the Cloud Functions source\n")
	b.WriteString("// archive: importing it registers every function with the Functions\n")
	b.WriteString("// Framework, whose functions package selects the declarative template.\n")
	b.WriteString("package " + name + "\n\nimport (\n")
	b.WriteString("\t_ " + strconv.Quote(FrameworkFunctions) + "\n\n")
	sorted := slices.Clone(pkgs)
	slices.Sort(sorted)
	for _, p := range sorted {
		b.WriteString("\t_ " + strconv.Quote(p) + "\n")
	}
	b.WriteString(")\n")
	src, err := format.Source([]byte(b.String()))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "stage.RootSource", err)
	}
	return src, nil
}

// modulePath reads the module path from root/go.mod.
func modulePath(root string) (string, error) {
	const op = "stage.modulePath"
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fault.Wrap(fault.Invalid, op, err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			p, err := strconv.Unquote(f[1])
			if err != nil {
				p = f[1]
			}
			return p, nil
		}
	}
	return "", fault.Errorf(fault.Invalid, op, "%s: no module line", filepath.Join(root, "go.mod"))
}

// checkNoRootPackage refuses a module that already has a root package: the
// generated file would join it.
func checkNoRootPackage(root string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return fault.Wrap(fault.Invalid, "stage.checkNoRootPackage", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".go") && !ignored(e.Name()) {
			return fault.Errorf(fault.Invalid, "stage.checkNoRootPackage",
				"%s: the module root already holds Go files; the staged root package is generated", e.Name())
		}
	}
	return nil
}

// packageName derives the root package's name from the module path.
func packageName(modPath string) string {
	name := strings.ToLower(path.Base(modPath))
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return -1
	}, name)
	if name == "" || name[0] < 'a' || name[0] > 'z' || token.IsKeyword(name) || name == "main" {
		return "functionsroot"
	}
	return name
}

// ignored reports whether the go tool ignores a file or directory name.
func ignored(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// goPackage is the parsed non-test Go files of one directory.
type goPackage struct {
	dir   string
	name  string
	fset  *token.FileSet
	files []*ast.File
}

// parsePackage parses the non-test Go files of root/rel with mode.
func parsePackage(root, rel string, mode parser.Mode) (*goPackage, error) {
	const op = "stage.parsePackage"
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, op, err)
	}
	pkg := &goPackage{dir: rel, fset: token.NewFileSet()}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") || ignored(n) {
			continue
		}
		f, err := parser.ParseFile(pkg.fset, filepath.Join(root, filepath.FromSlash(rel), n), nil, mode|parser.SkipObjectResolution)
		if err != nil {
			return nil, fault.Wrap(fault.Invalid, op, err)
		}
		if pkg.name != "" && f.Name.Name != pkg.name {
			return nil, fault.Errorf(fault.Invalid, op, "%s: packages %s and %s in one directory", rel, pkg.name, f.Name.Name)
		}
		pkg.name = f.Name.Name
		pkg.files = append(pkg.files, f)
	}
	return pkg, nil
}

// stringConsts returns the package's string constants declared with a
// literal value.
func (p *goPackage) stringConsts() map[string]string {
	out := map[string]string{}
	for _, f := range p.files {
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
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if v, err := strconv.Unquote(lit.Value); err == nil {
							out[n.Name] = v
						}
					}
				}
			}
		}
	}
	return out
}

// registrations finds the framework registration calls of the package.
func (p *goPackage) registrations(importPath string) ([]Registration, error) {
	const op = "stage.registrations"
	consts := p.stringConsts()
	var out []Registration
	for _, f := range p.files {
		local := ""
		for _, imp := range f.Imports {
			if v, _ := strconv.Unquote(imp.Path.Value); v == FrameworkFunctions {
				local = "functions"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" || local == "_" {
			continue
		}
		var err error
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || err != nil {
				return err == nil
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != local || !slices.Contains(registerCalls, sel.Sel.Name) {
				return true
			}
			name, ok := p.constString(call.Args, consts)
			if !ok {
				err = fault.Errorf(fault.Invalid, op, "%s: the name given to %s.%s is not a string constant of the package",
					p.fset.Position(call.Pos()), local, sel.Sel.Name)
				return false
			}
			out = append(out, Registration{Package: importPath, Kind: sel.Sel.Name, EntryPoint: name})
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// constString resolves the first argument of a registration call.
func (p *goPackage) constString(args []ast.Expr, consts map[string]string) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	switch a := args[0].(type) {
	case *ast.BasicLit:
		if a.Kind != token.STRING {
			return "", false
		}
		v, err := strconv.Unquote(a.Value)
		return v, err == nil
	case *ast.Ident:
		v, ok := consts[a.Name]
		return v, ok
	}
	return "", false
}

// moduleDeps returns the module-relative directories of pkgs and of every
// package of the module they import, transitively, sorted.
func moduleDeps(root, modPath string, pkgs []string) ([]string, error) {
	seen := map[string]bool{}
	queue := slices.Clone(pkgs)
	for len(queue) > 0 {
		ip := queue[0]
		queue = queue[1:]
		rel, ok := strings.CutPrefix(ip, modPath+"/")
		if !ok || seen[rel] {
			continue
		}
		seen[rel] = true
		pkg, err := parsePackage(root, rel, parser.ImportsOnly)
		if err != nil {
			return nil, err
		}
		if len(pkg.files) == 0 {
			return nil, fault.Errorf(fault.Invalid, "stage.moduleDeps", "%s: imported but holds no Go files", rel)
		}
		for _, f := range pkg.files {
			for _, imp := range f.Imports {
				v, _ := strconv.Unquote(imp.Path.Value)
				if strings.HasPrefix(v, modPath+"/") {
					queue = append(queue, v)
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for rel := range seen {
		out = append(out, rel)
	}
	slices.Sort(out)
	return out, nil
}

// addPackageFiles adds the regular files of root/rel to files, except
// tests and names the go tool ignores. Subdirectories are packages of their
// own and are added only when they are dependencies.
func addPackageFiles(root, rel string, files map[string][]byte) error {
	const op = "stage.addPackageFiles"
	dir := filepath.Join(root, filepath.FromSlash(rel))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fault.Wrap(fault.Invalid, op, err)
	}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasSuffix(n, "_test.go") || ignored(n) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return fault.Wrap(fault.Invalid, op, err)
		}
		files[path.Join(rel, n)] = b
	}
	return nil
}

// zipFiles writes files into a zip archive with sorted entries, a fixed
// modification time and mode 0644, and returns it with the entry names.
func zipFiles(files map[string][]byte) ([]byte, []string, error) {
	const op = "stage.zipFiles"
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		h := &zip.FileHeader{Name: n, Method: zip.Deflate, Modified: fixedTime}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, nil, fault.Wrap(fault.Internal, op, err)
		}
		if _, err := w.Write(files[n]); err != nil {
			return nil, nil, fault.Wrap(fault.Internal, op, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, nil, fault.Wrap(fault.Internal, op, err)
	}
	return buf.Bytes(), names, nil
}
