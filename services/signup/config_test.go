package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/services/signup/signupenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/platform"
)

// baseEnv is the least environment loadConfig accepts.
var baseEnv = map[string]string{
	platform.EnvProject:             "demo-autonomics",
	platform.EnvMarketplaceProvider: "acme-provider",
	signupenv.Audience:              "acme.example.com",
}

// envWith returns baseEnv changed by key/value pairs; an empty value
// removes the key.
func envWith(kv ...string) func(string) string {
	m := map[string]string{}
	for k, v := range baseEnv {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(m, kv[i])
		} else {
			m[kv[i]] = kv[i+1]
		}
	}
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(envWith())
	if err != nil {
		t.Fatal(err)
	}
	want := config{Platform: c.Platform, Provider: "acme-provider", Audience: "acme.example.com"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("loadConfig = %+v, want %+v", c, want)
	}
	if c.Platform.ProjectID != "demo-autonomics" {
		t.Errorf("project = %q", c.Platform.ProjectID)
	}
	// Issuer empty is Google's, Namespace empty is "default", Redirect
	// empty answers JSON: the packages apply those defaults.
}

func TestLoadConfigReadsAndTrims(t *testing.T) {
	c, err := loadConfig(envWith(
		platform.EnvMarketplaceProvider, " acme-provider\t",
		signupenv.Audience, " acme.example.com ",
		signupenv.Issuer, " http://127.0.0.1:8799/certs ",
		signupenv.Redirect, " https://app.example.com/welcome ",
		platform.EnvMarketplaceNamespace, " staging ",
	))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Platform: c.Platform, Provider: "acme-provider", Audience: "acme.example.com",
		Issuer: "http://127.0.0.1:8799/certs", Redirect: "https://app.example.com/welcome", Namespace: "staging",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("loadConfig =\n%+v\nwant\n%+v", c, want)
	}
}

func TestMissingRequiredVariablesRefused(t *testing.T) {
	tests := []struct {
		name string
		env  func(string) string
		want string
	}{
		{"no project", envWith(platform.EnvProject, ""), platform.EnvProject},
		{"no provider", envWith(platform.EnvMarketplaceProvider, ""), platform.EnvMarketplaceProvider},
		{"blank provider", envWith(platform.EnvMarketplaceProvider, "  "), platform.EnvMarketplaceProvider},
		{"no audience", envWith(signupenv.Audience, ""), signupenv.Audience},
		{"blank audience", envWith(signupenv.Audience, "\t"), signupenv.Audience},
		{"bad platform variable", envWith(platform.EnvLogLevel, "loud"), platform.EnvLogLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.env)
			if err == nil {
				t.Fatalf("loadConfig = %+v, nil; want an error naming %s", c, tt.want)
			}
			if code := fault.ErrorCode(err); code != fault.Invalid {
				t.Errorf("code = %s, want %s (%v)", code, fault.Invalid, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}
