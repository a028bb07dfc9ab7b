package event

import (
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
)

func TestValidTenant(t *testing.T) {
	tests := []struct {
		id   string
		want string // substring of the error message; "" for valid
	}{
		{"acme", ""},
		{"Acme-Corp_2.eu", ""},
		{"a", ""},
		{"...", ""},
		{"_x", ""},
		{strings.Repeat("t", 128), ""},
		{"", "must match [A-Za-z0-9._-]{1,128}, got 0 characters"},
		{strings.Repeat("t", 129), "got 129 characters"},
		{strings.Repeat("x", 10240), `tenant id "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"... (10240 bytes): must match`},
		{"../x", `tenant id "../x": must match [A-Za-z0-9._-]{1,128}`},
		{"__x__", `tenant id "__x__": must not start with "__"`},
		{".", `must not be "." or ".."`},
		{"..", `must not be "." or ".."`},
		{"tenänt", `tenant id "tenänt": must match`},
		{"a b", "must match"},
		{"a/b", "must match"},
		{"*", "must match"},
		{"a\x00", `"a\x00": must match`},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := ValidTenant(tt.id)
			checkErr(t, "ValidTenant("+quote(tt.id)+")", err, tt.want)
		})
	}
}

func TestValidSubject(t *testing.T) {
	tests := []struct {
		s    string
		want string
	}{
		{"default", ""},
		{"*", ""},
		{"2026-11", ""},
		{"sla", ""},
		{"", `subject "": must be "*" or match [A-Za-z0-9._-]{1,128}`},
		{"**", `must be "*" or match`},
		{"a*", `must be "*" or match`},
		{"..", `subject "..": must not be "." or ".."`},
		{"__meta", `subject "__meta": must not start with "__"`},
		{"a/b", `must be "*" or match`},
		{strings.Repeat("s", 129), "got 129 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			checkErr(t, "ValidSubject("+quote(tt.s)+")", ValidSubject(tt.s), tt.want)
		})
	}
}

func TestValidTraceParent(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := validTraceParent(tt.s); got != tt.want {
			t.Errorf("validTraceParent(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestQuote(t *testing.T) {
	tests := []struct {
		s, want string
	}{
		{"abc", `"abc"`},
		{strings.Repeat("a", 64), `"` + strings.Repeat("a", 64) + `"`},
		{strings.Repeat("a", 65), `"` + strings.Repeat("a", 64) + `"... (65 bytes)`},
		{strings.Repeat("a", 63) + "é", `"` + strings.Repeat("a", 63) + `"... (65 bytes)`},
	}
	for _, tt := range tests {
		if got := quote(tt.s); got != tt.want {
			t.Errorf("quote(%q) = %s, want %s", tt.s, got, tt.want)
		}
	}
}

// checkErr fails unless err is nil when want is "", or an Invalid
// *fault.Error whose message contains want.
func checkErr(t *testing.T, call string, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%s = %v, want nil", call, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%s = nil, want error containing %q", call, want)
		return
	}
	if _, ok := err.(*fault.Error); !ok {
		t.Errorf("%s = %T %v, want *fault.Error", call, err, err)
	}
	if c := fault.ErrorCode(err); c != fault.Invalid {
		t.Errorf("ErrorCode(%s) = %q, want %q", call, c, fault.Invalid)
	}
	if !strings.Contains(fault.ErrorMessage(err), want) {
		t.Errorf("%s = %q, want it to contain %q", call, fault.ErrorMessage(err), want)
	}
}
