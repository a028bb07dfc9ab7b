package terraform

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// entryPointsMain stands in for the main package the Go buildpack
// generates around the archive's root package: it serves FUNCTION_TARGET
// (every registered function when unset) on PORT. Given an invalid PORT it
// stops right after looking the functions up.
const entryPointsMain = `package main

import (
	"fmt"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	_ "github.com/autonomics/autonomics"
)

func main() {
	if err := funcframework.StartHostPort("127.0.0.1", os.Getenv("PORT")); err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
}
`

func goTool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	return p
}

// goEnv is the environment of go commands run on the unpacked archive: a
// module of its own, outside any workspace.
func goEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOFLAGS=") && !strings.HasPrefix(kv, "GOWORK=") {
			env = append(env, kv)
		}
	}
	return append(env, "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off")
}

func TestStagedArchiveRegistersTerraformEntryPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the staged archive; skipped with -short")
	}
	f := fixture(t)
	gotool := goTool(t)
	out := t.TempDir()

	// Stage twice: the archive is named by its content and reproducible.
	var paths []string
	for range 2 {
		cmd := exec.Command(gotool, "run", "../functions/stage", "-root", "..", "-out", out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("go run ./functions/stage: %v\n%s", err, stderr.Bytes())
		}
		paths = append(paths, strings.TrimSpace(string(b)))
	}
	if paths[0] != paths[1] {
		t.Fatalf("staging twice gave %s and %s", paths[0], paths[1])
	}
	archive := paths[0]
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got, want := filepath.Base(archive), "source-"+hex.EncodeToString(sum[:])+".zip"; got != want {
		t.Errorf("archive name = %s, want %s", got, want)
	}

	src := filepath.Join(t.TempDir(), "src")
	names := unzip(t, data, src)
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") || strings.HasPrefix(n, "terraform/") || strings.HasPrefix(n, ".") {
			t.Errorf("archive holds %s", n)
		}
	}
	for _, n := range []string{"go.mod", "go.sum", "autonomics_functions.go"} {
		if !slices.Contains(names, n) {
			t.Errorf("archive lacks %s", n)
		}
	}
	if err := os.MkdirAll(filepath.Join(src, "cmd", "entrypoints"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "cmd", "entrypoints", "main.go"), []byte(entryPointsMain), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(env []string, args ...string) ([]byte, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = src
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	if b, err := run(goEnv(), gotool, "build", "./..."); err != nil {
		t.Fatalf("go build ./... in the staged archive: %v\n%s", err, b)
	}
	bin := filepath.Join(t.TempDir(), "entrypoints")
	if b, err := run(goEnv(), gotool, "build", "-o", bin, "./cmd/entrypoints"); err != nil {
		t.Fatalf("go build ./cmd/entrypoints: %v\n%s", err, b)
	}

	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "PORT=-1"}
	// Every function the archive registers...
	b, _ := run(base, bin)
	var registered []string
	for _, m := range regexp.MustCompile(`Serving function: "([^"]+)"`).FindAllSubmatch(b, -1) {
		registered = append(registered, string(m[1]))
	}
	slices.Sort(registered)
	// ...is one Terraform deploys, and the other way round.
	var deployed []string
	for ep := range functionsByEntryPoint(t, f.configs[0]) {
		deployed = append(deployed, ep)
	}
	slices.Sort(deployed)
	if !slices.Equal(registered, deployed) {
		t.Errorf("the archive registers %q; Terraform deploys entry points %q", registered, deployed)
	}
	// Started as Cloud Functions starts it, each entry point is found.
	for _, ep := range append(deployed, "NoSuchFunction") {
		b, _ := run(append(base, "FUNCTION_TARGET="+ep), bin)
		missing := bytes.Contains(b, []byte("no matching function found"))
		if want := ep == "NoSuchFunction"; missing != want {
			t.Errorf("FUNCTION_TARGET=%s: output %q, want a missing function %v", ep, b, want)
		}
	}
}

// unzip extracts data into dir and returns the entry names.
func unzip(t *testing.T, data []byte, dir string) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, zf := range zr.File {
		names = append(names, zf.Name)
		if strings.Contains(zf.Name, "..") || filepath.IsAbs(zf.Name) {
			t.Fatalf("archive entry %q escapes the archive", zf.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(zf.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return names
}
