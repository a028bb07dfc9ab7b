package strictjson

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, ""},
		{`{"a":1,"a":2}`, `duplicate member "a"`},
		{`{"x":{"k":1,"k":1}}`, `duplicate member "k"`},
		{`[{"k":1},{"z":[{"q":1,"q":2}]}]`, `duplicate member "q"`},
		{`"just a string"`, ""},
		{`[{"value":1e400},{"value":-1e-400}]`, ""},
		{`{"Metric":1,"metric":2}`, ""},
		{strings.Repeat("[", 70) + strings.Repeat("]", 70), "deeper than 64"},
	}
	for _, tt := range tests {
		err := Check([]byte(tt.in))
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Check(%.40s) = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}
