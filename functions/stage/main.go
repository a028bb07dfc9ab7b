package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/autonomics/autonomics/shared/fault"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "stage:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "dist", "directory to write the archive to")
	root := fs.String("root", "", "module root (default: the nearest directory holding go.mod, from the working directory up)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if *root, err = findModuleRoot(wd); err != nil {
			return err
		}
	}
	a, err := Build(*root)
	if err != nil {
		return err
	}
	p, err := a.WriteTo(*out)
	if err != nil {
		return err
	}
	for _, r := range a.Registrations {
		fmt.Fprintf(stderr, "stage: %-16s %-10s %s\n", r.EntryPoint, r.Kind, r.Package)
	}
	fmt.Fprintf(stderr, "stage: %d files, %d bytes\n", len(a.Files), len(a.Data))
	_, err = fmt.Fprintln(stdout, p)
	return err
}

// findModuleRoot returns the nearest directory from dir up holding go.mod.
func findModuleRoot(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fault.Errorf(fault.Invalid, "stage.findModuleRoot", "no go.mod in %s or above", dir)
		}
		d = parent
	}
}
