package alerting_test

import (
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name, body string
		want       string // substring of the error; "" for success
	}{
		{"full", `{"metric":"cpu","labels":{"region":"eu"},"comparison":"gte","threshold":0.8,"for":"5m","keep_firing_for":"90s","absent_for":"1h","severity":"critical"}`, ""},
		{"absent only", `{"metric":"heartbeat","absent_for":"10m","severity":"warning"}`, ""},
		{"unknown member", `{"metric":"cpu","comparison":"gt","threshold":1,"severity":"warning","windows":"5m"}`, `unknown field "windows"`},
		{"bad comparison", `{"metric":"cpu","comparison":"eq","threshold":1,"severity":"warning"}`, `comparison "eq": want gt, gte, lt or lte`},
		{"comparison without threshold", `{"metric":"cpu","comparison":"gt","severity":"warning"}`, "needs a threshold"},
		{"threshold without comparison", `{"metric":"cpu","threshold":1,"severity":"warning"}`, "threshold needs a comparison"},
		{"nothing to watch", `{"metric":"cpu","severity":"warning"}`, "comparison is required"},
		{"bad duration", `{"metric":"cpu","comparison":"gt","threshold":1,"for":"5 minutes","severity":"warning"}`, `for "5 minutes": want a duration`},
		{"negative duration", `{"metric":"cpu","comparison":"gt","threshold":1,"for":"-1m","severity":"warning"}`, "must not be negative"},
		{"too long", `{"metric":"cpu","comparison":"gt","threshold":1,"keep_firing_for":"48h","severity":"warning"}`, "exceeds 24h"},
		{"missing severity", `{"metric":"cpu","comparison":"gt","threshold":1}`, "severity is required"},
		{"bad severity", `{"metric":"cpu","comparison":"gt","threshold":1,"severity":"page"}`, `severity "page"`},
		{"bad metric", `{"metric":"cpu usage","comparison":"gt","threshold":1,"severity":"warning"}`, "must match [a-zA-Z_:]"},
		{"reserved label", `{"metric":"cpu","labels":{"__name__":"x"},"comparison":"gt","threshold":1,"severity":"warning"}`, "reserved"},
		{"empty label value", `{"metric":"cpu","labels":{"a":""},"comparison":"gt","threshold":1,"severity":"warning"}`, "value is empty"},
		{"threshold as string", `{"metric":"cpu","comparison":"gt","threshold":"1","severity":"warning"}`, "threshold: want float64"},
		{"trailing data", `{"metric":"cpu","comparison":"gt","threshold":1,"severity":"warning"} {}`, "trailing data"},
		{"name mismatch", `{"name":"other","metric":"cpu","comparison":"gt","threshold":1,"severity":"warning"}`, `body names "other"`},
		{"empty body", ``, "empty body"},
		{"duplicate member", `{"metric":"cpu","metric":"mem","comparison":"gt","threshold":1,"severity":"warning"}`, `duplicate member "metric"`},
		{"duplicate label", `{"metric":"cpu","labels":{"a":"1","a":"2"},"comparison":"gt","threshold":1,"severity":"warning"}`, `duplicate member "a"`},
		{"case variant", `{"METRIC":"cpu","comparison":"gt","threshold":1,"severity":"warning"}`, `unknown field "METRIC"`},
		{"trailing bracket", `{"metric":"cpu","comparison":"gt","threshold":1,"severity":"warning"}]`, "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := alerting.ParsePolicy("cpu-high", []byte(tt.body))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ParsePolicy(%s) = %v, want success", tt.body, err)
				}
				if p.Name != "cpu-high" {
					t.Errorf("ParsePolicy(%s).Name = %q, want cpu-high", tt.body, p.Name)
				}
				return
			}
			if err == nil || fault.ErrorCode(err) != fault.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePolicy(%s) = %v, want an invalid error containing %q", tt.body, err, tt.want)
			}
		})
	}
}

func TestParsePolicyDurations(t *testing.T) {
	p, err := alerting.ParsePolicy("x", []byte(`{"metric":"m","comparison":"lt","threshold":-2.5,"for":"1h30m","keep_firing_for":"90s","severity":"warning"}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.For != 90*time.Minute || p.KeepFiringFor != 90*time.Second || p.Threshold != -2.5 || p.Comparison != alerting.LT {
		t.Errorf("ParsePolicy = %+v, want for 1h30m, keep 90s, lt -2.5", p)
	}
}

func TestPolicyNames(t *testing.T) {
	for _, name := range []string{"", "-lead", "_x", "a/b", "a b", "é", strings.Repeat("a", 129), "..", "."} {
		if err := alerting.ValidName("policy name", name); err == nil {
			t.Errorf("ValidName(%q) = nil, want an error", name)
		}
	}
	for _, name := range []string{"a", "cpu-high", "team.cpu_high-2", strings.Repeat("a", 128)} {
		if err := alerting.ValidName("policy name", name); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", name, err)
		}
	}
}

func TestParseSamples(t *testing.T) {
	now := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name, body string
		want       string
	}{
		{"ok", `[{"name":"cpu","labels":{"tenant":"acme"},"value":0.5,"time":"2026-11-03T07:59:00Z"},{"name":"up","value":1}]`, ""},
		{"not an array", `{"name":"cpu","value":1}`, "want a JSON array"},
		{"empty", `[]`, "no metric points"},
		{"huge value", `[{"name":"cpu","value":1e999}]`, "metrics[0]: value 1e999 is not a finite number"},
		{"string value", `[{"name":"cpu","value":"NaN"}]`, "value"},
		{"missing value", `[{"name":"cpu"}]`, "metrics[0]: value is required"},
		{"bad name", `[{"name":"cpu","value":1},{"name":"9cpu","value":1}]`, `metrics[1]: name "9cpu" must match`},
		{"bad label name", `[{"name":"cpu","labels":{"ten-ant":"a"},"value":1}]`, `name "ten-ant" must match`},
		{"reserved label", `[{"name":"cpu","labels":{"__x":"a"},"value":1}]`, "reserved"},
		{"bad utf8", "[{\"name\":\"cpu\",\"labels\":{\"a\":\"\xff\"},\"value\":1}]", "not valid UTF-8"},
		{"future", `[{"name":"cpu","value":1,"time":"2026-11-03T09:00:00Z"}]`, "ahead of the monitor's clock"},
		{"too old", `[{"name":"cpu","value":1,"time":"2026-11-02T00:00:00Z"}]`, "old"},
		{"bad time", `[{"name":"cpu","value":1,"time":"yesterday"}]`, `time "yesterday": want an RFC 3339 timestamp`},
		{"unknown member", `[{"name":"cpu","value":1,"unit":"s"}]`, `unknown field "unit"`},
		{"too many labels", `[{"name":"cpu","labels":{` + manyLabels(33) + `},"value":1}]`, "33 labels, limit 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := alerting.ParseSamples([]byte(tt.body), now, alerting.DefaultSampleRules)
			if tt.want == "" {
				if err != nil || len(got) != 2 || !got[1].Time.Equal(now) {
					t.Fatalf("ParseSamples(%s) = %v, %v, want 2 samples, the second at now", tt.body, got, err)
				}
				return
			}
			if err == nil || fault.ErrorCode(err) != fault.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseSamples(%s) = %v, want an invalid error containing %q", tt.body, err, tt.want)
			}
		})
	}
}

func manyLabels(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"l` + strings.Repeat("x", i) + `":"v"`
	}
	return strings.Join(parts, ",")
}

func TestFingerprint(t *testing.T) {
	a := alerting.Fingerprint("cpu-high", alerting.Labels{"tenant": "acme", "region": "eu"})
	b := alerting.Fingerprint("cpu-high", alerting.Labels{"region": "eu", "tenant": "acme"})
	if a != b || len(a) != 16 {
		t.Errorf("Fingerprint is order dependent or malformed: %s vs %s", a, b)
	}
	// Pinned: fingerprints are stored and must not change between versions.
	if want := "856eb8e795c5c7ff"; a != want {
		t.Errorf("Fingerprint(cpu-high, {region=eu, tenant=acme}) = %s, want %s", a, want)
	}
	for _, other := range []string{
		alerting.Fingerprint("cpu-high", alerting.Labels{"tenant": "acme"}),
		alerting.Fingerprint("cpu-hig", alerting.Labels{"htenant": "acme", "region": "eu"}),
		alerting.Fingerprint("cpu-high", alerting.Labels{"tenant": "acmeregion", "": "eu"}),
	} {
		if other == a {
			t.Errorf("Fingerprint collision for a different policy or label set: %s", other)
		}
	}
}

func TestSilenceValidate(t *testing.T) {
	now := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	ok := alerting.Silence{ID: "s1", Matchers: alerting.Labels{"tenant": "acme"}, StartsAt: now, EndsAt: now.Add(time.Hour)}
	tests := []struct {
		name string
		mod  func(*alerting.Silence)
		want string
	}{
		{"ok", func(*alerting.Silence) {}, ""},
		{"no matchers", func(s *alerting.Silence) { s.Matchers = nil }, "matchers are required"},
		{"past", func(s *alerting.Silence) { s.StartsAt = now.Add(-2 * time.Hour); s.EndsAt = now.Add(-time.Hour) }, "in the past"},
		{"no end", func(s *alerting.Silence) { s.EndsAt = time.Time{} }, "ends_at is required"},
		{"too long", func(s *alerting.Silence) { s.EndsAt = now.Add(100 * 24 * time.Hour) }, "more than"},
		{"bad severity", func(s *alerting.Silence) { s.Matchers = alerting.Labels{"severity": "page"} }, "severity"},
		{"bad id", func(s *alerting.Silence) { s.ID = "a/b" }, "silence id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.mod(&s)
			err := s.Validate(now)
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate(%+v) = %v, want %q", s, err, tt.want)
			}
		})
	}
}
