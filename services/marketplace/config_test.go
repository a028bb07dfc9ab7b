package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/services/marketplace/marketplaceenv"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/platform"
)

// baseEnv is the least environment loadConfig accepts.
var baseEnv = map[string]string{platform.EnvProject: "demo-autonomics", platform.EnvMarketplaceProvider: "acme-provider"}

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

// mustRefuse checks that err is an Invalid error whose message names
// every one of want.
func mustRefuse(t *testing.T, c config, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("loadConfig = %+v, nil; want an error naming %q", c, want)
	}
	if code := fault.ErrorCode(err); code != fault.Invalid {
		t.Errorf("code = %s, want %s (%v)", code, fault.Invalid, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(envWith())
	if err != nil {
		t.Fatal(err)
	}
	if c.Provider != "acme-provider" || c.Platform.ProjectID != "demo-autonomics" {
		t.Errorf("provider %q, project %q", c.Provider, c.Platform.ProjectID)
	}
	// Zero values leave the defaults to the packages: Google's endpoints,
	// no usage reporter, a window of an hour, a give-up of an hour, the
	// "default" namespace, every caller Cloud Run admits.
	if c.ProcurementEndpoint != "" || c.ServiceControlEndpoint != "" || c.Service != "" || c.Namespace != "" {
		t.Errorf("endpoints %q %q, service %q, namespace %q: want all empty", c.ProcurementEndpoint, c.ServiceControlEndpoint, c.Service, c.Namespace)
	}
	if c.UsageMetrics != nil || c.UsageWindow != 0 || c.GiveUpAfter != 0 || c.PushCallers != nil {
		t.Errorf("metrics %v, window %s, give up %s, callers %v: want zero values", c.UsageMetrics, c.UsageWindow, c.GiveUpAfter, c.PushCallers)
	}
}

func TestLoadConfigReadsEverything(t *testing.T) {
	c, err := loadConfig(envWith(
		platform.EnvMarketplaceProvider, " acme-provider ",
		marketplaceenv.ProcurementEndpoint, "http://127.0.0.1:8799/",
		marketplaceenv.ServiceControlEndpoint, "https://servicecontrol.googleapis.com/",
		marketplaceenv.Service, "acme.gcpmarketplace.example.com",
		marketplaceenv.UsageMetrics, `{"api_calls": "acme/api_calls", "storage_gb": "acme/storage"}`,
		marketplaceenv.UsageWindow, " 90s ",
		platform.EnvMarketplaceNamespace, "staging",
		marketplaceenv.GiveUpAfter, "30m",
		marketplaceenv.PushCallers, "push@p.iam.gserviceaccount.com",
	))
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Platform: c.Platform, Provider: "acme-provider",
		ProcurementEndpoint: "http://127.0.0.1:8799/", ServiceControlEndpoint: "https://servicecontrol.googleapis.com/",
		Service:      "acme.gcpmarketplace.example.com",
		UsageMetrics: map[string]string{"api_calls": "acme/api_calls", "storage_gb": "acme/storage"},
		UsageWindow:  90 * time.Second, Namespace: "staging", GiveUpAfter: 30 * time.Minute,
		PushCallers: []string{"push@p.iam.gserviceaccount.com"},
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
		{"blank provider", envWith(platform.EnvMarketplaceProvider, " \t "), platform.EnvMarketplaceProvider},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.env)
			mustRefuse(t, c, err, tt.want)
		})
	}
}

func TestPlatformVariablesChecked(t *testing.T) {
	c, err := loadConfig(envWith(platform.EnvTelemetry, "carrier-pigeon"))
	mustRefuse(t, c, err, platform.EnvTelemetry)
}

func TestEndpointSchemes(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://cloudcommerceprocurement.googleapis.com/", true},
		{"https://stand-in.internal:8443/base/", true},
		{"http://127.0.0.1:8799/", true},
		{"http://127.9.9.9:8799", true},
		{"http://localhost:8799/", true},
		{"http://[::1]:8799/", true},
		{"http://cloudcommerceprocurement.googleapis.com/", false},
		{"http://10.0.0.7:8799/", false},
		{"http://169.254.169.254/", false},
		{"http://localhost.attacker.example/", false},
		{"http://127.0.0.1.nip.io/", false},
		{"http://[::ffff:8.8.8.8]/", false},
		{"ftp://127.0.0.1/", false},
		{"file:///etc/passwd", false},
		{"gopher://localhost/", false},
		{"https://", false},
		{"http://", false},
		{"cloudcommerceprocurement.googleapis.com", false},
		{"//cloudcommerceprocurement.googleapis.com/", false},
		{"https://bad host/", false},
		{"://nothing", false},
	}
	for _, name := range []string{marketplaceenv.ProcurementEndpoint, marketplaceenv.ServiceControlEndpoint} {
		for _, tt := range tests {
			t.Run(name+"="+tt.url, func(t *testing.T) {
				c, err := loadConfig(envWith(name, tt.url))
				if tt.ok {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					got := c.ProcurementEndpoint
					if name == marketplaceenv.ServiceControlEndpoint {
						got = c.ServiceControlEndpoint
					}
					if got != tt.url {
						t.Errorf("endpoint = %q, want %q", got, tt.url)
					}
					return
				}
				mustRefuse(t, c, err, name)
			})
		}
	}
}

func TestOnlyLoopbackEndpointsGoWithoutCredentials(t *testing.T) {
	// Only a loopback endpoint is called without authentication; an
	// https endpoint elsewhere keeps Google's credentials.
	tests := []struct {
		endpoint string
		want     int
	}{
		{"", 0},
		{"https://cloudcommerceprocurement.googleapis.com/", 1},
		{"http://127.0.0.1:8799/", 2},
		{"http://localhost:8799/", 2},
	}
	for _, tt := range tests {
		if got := len(clientOptions(tt.endpoint)); got != tt.want {
			t.Errorf("clientOptions(%q) has %d options, want %d", tt.endpoint, got, tt.want)
		}
	}
}

func TestBadDurationsRefused(t *testing.T) {
	for _, name := range []string{marketplaceenv.UsageWindow, marketplaceenv.GiveUpAfter} {
		for _, v := range []string{"0", "0s", "-1h", "1", "an hour", "1h-", "1y", "9999999999h"} {
			t.Run(name+"="+v, func(t *testing.T) {
				c, err := loadConfig(envWith(name, v))
				mustRefuse(t, c, err, name, v)
			})
		}
	}
}

func TestDurationsParsed(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{marketplaceenv.UsageWindow, "1h", time.Hour},
		{marketplaceenv.UsageWindow, " 5m ", 5 * time.Minute},
		{marketplaceenv.GiveUpAfter, "1h30m", 90 * time.Minute},
		{marketplaceenv.GiveUpAfter, "250ms", 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			c, err := loadConfig(envWith(tt.name, tt.value))
			if err != nil {
				t.Fatal(err)
			}
			got := c.UsageWindow
			if tt.name == marketplaceenv.GiveUpAfter {
				got = c.GiveUpAfter
			}
			if got != tt.want {
				t.Errorf("%s = %s, want %s", tt.name, got, tt.want)
			}
		})
	}
}

func TestOversizeUsageMetricsRefused(t *testing.T) {
	// A well-formed object just over the limit: the size is checked
	// before anything is decoded.
	big := `{"api_calls": "` + strings.Repeat("a", maxUsageMetricsEnv) + `"}`
	c, err := loadConfig(envWith(marketplaceenv.UsageMetrics, big))
	mustRefuse(t, c, err, marketplaceenv.UsageMetrics, "limit")

	// At the limit exactly, it is read.
	pad := maxUsageMetricsEnv - len(`{"api_calls": ""}`)
	exact := `{"api_calls": "` + strings.Repeat("a", pad) + `"}`
	if len(exact) != maxUsageMetricsEnv {
		t.Fatalf("test object is %d bytes, want %d", len(exact), maxUsageMetricsEnv)
	}
	c, err = loadConfig(envWith(marketplaceenv.UsageMetrics, exact))
	if err != nil {
		t.Fatalf("object at the limit refused: %v", err)
	}
	if len(c.UsageMetrics["api_calls"]) != pad {
		t.Errorf("metric name has %d bytes, want %d", len(c.UsageMetrics["api_calls"]), pad)
	}
}

func TestMalformedUsageMetricsRefused(t *testing.T) {
	for _, v := range []string{
		`{`,
		`{"api_calls": "acme/api_calls",}`,
		`["api_calls"]`,
		`"api_calls"`,
		`42`,
		`{"api_calls": 1}`,
		`{"api_calls": {"name": "acme/api_calls"}}`,
		`{"api_calls": ["acme/api_calls"]}`,
		`{"api_calls": "acme/api_calls"} {"x": "y"}`,
		`api_calls=acme/api_calls`,
	} {
		t.Run(v, func(t *testing.T) {
			c, err := loadConfig(envWith(marketplaceenv.UsageMetrics, v))
			mustRefuse(t, c, err, marketplaceenv.UsageMetrics)
		})
	}
}

func TestBlankUsageMetricsReportsEveryMetric(t *testing.T) {
	for _, v := range []string{"", "   ", "\n"} {
		c, err := loadConfig(envWith(marketplaceenv.UsageMetrics, v))
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if c.UsageMetrics != nil {
			t.Errorf("%q: metrics = %v, want nil", v, c.UsageMetrics)
		}
	}
}

func TestPushCallersSplit(t *testing.T) {
	tests := []struct {
		value string
		want  []string
	}{
		{"", nil},
		{" , ,, ", nil},
		{"push@p.iam.gserviceaccount.com", []string{"push@p.iam.gserviceaccount.com"}},
		{"a@p.iam.gserviceaccount.com,b@p.iam.gserviceaccount.com", []string{"a@p.iam.gserviceaccount.com", "b@p.iam.gserviceaccount.com"}},
		{" a@p.iam.gserviceaccount.com ,\tb@p.iam.gserviceaccount.com,, ", []string{"a@p.iam.gserviceaccount.com", "b@p.iam.gserviceaccount.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c, err := loadConfig(envWith(marketplaceenv.PushCallers, tt.value))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.PushCallers, tt.want) {
				t.Errorf("callers = %q, want %q", c.PushCallers, tt.want)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8799", true},
		{"http://127.1.2.3/", true},
		{"http://localhost/", true},
		{"http://[::1]:1/", true},
		{"http://localhost.example/", false},
		{"http://0.0.0.0/", false},
		{"http://192.168.1.1/", false},
		{"http://example.com/", false},
		{"%zz", false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.url); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}

func TestMaxDeliveries(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int
		ok    bool
	}{
		{"", 0, true}, {"100", 100, true}, {" 5 ", 5, true}, {"0", 0, true},
		{"101", 0, false}, {"-1", 0, false}, {"many", 0, false}, {"1e2", 0, false},
	} {
		c, err := loadConfig(envWith(marketplaceenv.MaxDeliveries, tc.value))
		if !tc.ok {
			mustRefuse(t, c, err, marketplaceenv.MaxDeliveries)
			continue
		}
		if err != nil || c.MaxDeliveries != tc.want {
			t.Errorf("%s=%q: MaxDeliveries %d, %v; want %d", marketplaceenv.MaxDeliveries, tc.value, c.MaxDeliveries, err, tc.want)
		}
	}
}

func TestSchedulerCallersSplit(t *testing.T) {
	c, err := loadConfig(envWith(marketplaceenv.SchedulerCallers, " a@x.iam.gserviceaccount.com, ,b@x.iam.gserviceaccount.com "))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SchedulerCallers) != 2 || c.SchedulerCallers[0] != "a@x.iam.gserviceaccount.com" || c.SchedulerCallers[1] != "b@x.iam.gserviceaccount.com" {
		t.Errorf("SchedulerCallers = %q", c.SchedulerCallers)
	}
}
