package terraform

import "github.com/autonomics/autonomics/functions/gosrc"

// This file reads the Go sources of the module with package gosrc, the
// reader functions/stage stages the functions with: which packages
// register which functions, which mains serve HTTP, and which environment
// variables a package and the code of the module it reaches read.

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

// envRead is one read of an environment variable.
type envRead = gosrc.EnvRead

// envReads is gosrc.Module.EnvReads: the environment variables read by a
// package and the code of the module it reaches.
func (gm *goModule) envReads(importPath string) ([]envRead, error) { return gm.EnvReads(importPath) }
