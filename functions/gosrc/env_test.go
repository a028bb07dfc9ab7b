package gosrc_test

import (
	"strings"
	"testing"

	"github.com/autonomics/autonomics/functions/gosrc"
	"github.com/autonomics/autonomics/shared/fault"
)

// envFixture is a module with a service, the names it reads declared in a
// package of their own, and a tool that starts the service with them.
var envFixture = map[string]string{
	"go.mod": "module example.com/fx\n\ngo 1.26\n",
	// The names of shared code, as in shared/platform: some read by
	// FromEnv, the others only by some importers.
	"shared/names/names.go": `package names

const (
	EnvProject = "AUTONOMICS_PROJECT"
	EnvUnread  = "AUTONOMICS_UNREAD"
	EnvOld     = "AUTONOMICS_OLD"
	// EnvRenamed is declared as another constant.
	EnvRenamed = EnvOld
	EnvAlias   = EnvUnread
)

func FromEnv(getenv func(string) string) string { return getenv(EnvProject) }
`,
	// A package such as shared/listen: names, and a function reading them.
	"shared/serve/serve.go": `package serve

const (
	EnvPort = "PORT"
	EnvHost = "AUTONOMICS_HOST"
)

func Addr(getenv func(string) string) string { return getenv(EnvHost) + ":" + port(getenv) }

func port(getenv func(string) string) string { return getenv(EnvPort) }
`,
	// Code that runs whenever the package is imported, and code that runs
	// only when called.
	"shared/lib/lib.go": `package lib

import "os"

var Default = fromVar()

func fromVar() string { return os.Getenv("AUTONOMICS_VAR") }

func init() { _ = os.Getenv("AUTONOMICS_INIT") }

type T struct{}

func (T) Get() string { return lookup("AUTONOMICS_METHOD") }

func lookup(name string) string { v, _ := os.LookupEnv(name); return v }

func Unused() string { return os.Getenv("AUTONOMICS_UNUSED") }
`,
	"services/api/apienv/apienv.go": `package apienv

const (
	Interval = "AUTONOMICS_API_INTERVAL"
	Flag     = "AUTONOMICS_API_FLAG"
	Unset    = "AUTONOMICS_API_UNSET"
)
`,
	"services/api/main.go": `package main

import (
	"os"

	"example.com/fx/services/api/apienv"
	"example.com/fx/shared/names"
	"example.com/fx/shared/serve"
)

func main() {
	_ = serve.Addr(os.Getenv)
	_ = names.FromEnv(os.Getenv)
	_ = envOr(apienv.Interval, "1s")
	_ = flag(apienv.Flag) || flag(names.EnvRenamed)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func flag(name string) bool { return os.Getenv(name) == "true" }
`,
	"services/ctl/main.go": `package main

import (
	"os"
	"os/exec"

	"example.com/fx/services/api/apienv"
	"example.com/fx/shared/lib"
	"example.com/fx/shared/names"
	"example.com/fx/shared/serve"
)

const envToken = "AUTONOMICS_CTL_TOKEN"

func main() {
	cmd := exec.Command("api")
	cmd.Env = append(os.Environ(), apienv.Interval+"=5s", serve.EnvHost+"=127.0.0.1", serve.EnvPort+"=8080",
		names.EnvProject+"="+os.Args[0], names.EnvAlias+"=", "AUTONOMICS_API_FLAG"+"=true")
	_ = os.Setenv(apienv.Flag, "true")
	_ = os.Unsetenv("AUTONOMICS_API_UNSET")
	_ = os.Getenv(envToken)
	_ = lib.T{}.Get()
}
`,
}

func TestEnvReads(t *testing.T) {
	m := load(t, envFixture)
	tests := []struct {
		pkg  string
		want []gosrc.EnvRead
	}{
		{
			// Reads through the functions it calls, its helpers (envOr,
			// and flag, whose name says nothing) and an alias; not the
			// names only declared.
			pkg: "services/api",
			want: []gosrc.EnvRead{
				{Name: "AUTONOMICS_API_FLAG", Pos: "services/api/main.go:15:11"},
				{Name: "AUTONOMICS_API_INTERVAL", Pos: "services/api/main.go:14:6"},
				{Name: "AUTONOMICS_HOST", Pos: "shared/serve/serve.go:8:55"},
				{Name: "AUTONOMICS_OLD", Pos: "services/api/main.go:15:32"},
				{Name: "AUTONOMICS_PROJECT", Pos: "shared/names/names.go:12:58"},
				{Name: "PORT", Pos: "shared/serve/serve.go:10:55"},
			},
		},
		{
			// Sets the service's variables for a child, which is not
			// reading them; imports serve for its names, which does not
			// read PORT; reads its own, and what runs when lib is
			// imported or its method called, but not lib.Unused.
			pkg: "services/ctl",
			want: []gosrc.EnvRead{
				{Name: "AUTONOMICS_CTL_TOKEN", Pos: "services/ctl/main.go:21:6"},
				{Name: "AUTONOMICS_INIT", Pos: "shared/lib/lib.go:9:19"},
				{Name: "AUTONOMICS_METHOD", Pos: "shared/lib/lib.go:13:39"},
				{Name: "AUTONOMICS_VAR", Pos: "shared/lib/lib.go:7:32"},
			},
		},
		{pkg: "services/api/apienv", want: []gosrc.EnvRead{}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			got, err := m.EnvReads("example.com/fx/" + tt.pkg)
			if err != nil {
				t.Fatalf("EnvReads(%s) error = %v", tt.pkg, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("EnvReads(%s) = %+v, want %+v", tt.pkg, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("EnvReads(%s)[%d] = %+v, want %+v", tt.pkg, i, got[i], tt.want[i])
				}
			}
		})
	}
	if _, err := m.EnvReads("example.com/fx/shared/missing"); err == nil || fault.ErrorCode(err) != fault.Invalid || !strings.Contains(err.Error(), "shared/missing") {
		t.Errorf("EnvReads of a missing package: error = %v, want an invalid one naming it", err)
	}
}
