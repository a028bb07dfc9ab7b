package httpjson

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
)

func TestDecode(t *testing.T) {
	type body struct {
		Name  string            `json:"name"`
		Items []map[string]int  `json:"items"`
		Meta  map[string]string `json:"meta"`
	}
	tests := []struct {
		name, in, wantErr string
		limit             int64
	}{
		{name: "ok", in: `{"name":"a","items":[{"x":1}],"meta":{"k":"v"}}`},
		{name: "duplicate top-level key", in: `{"name":"a","name":"b"}`, wantErr: `duplicate member "name"`},
		{name: "duplicate nested key", in: `{"items":[{"x":1,"x":2}]}`, wantErr: `duplicate member "x"`},
		{name: "duplicate map key", in: `{"meta":{"k":"1","k":"2"}}`, wantErr: `duplicate member "k"`},
		{name: "unknown field", in: `{"nam":"a"}`, wantErr: "unknown field"},
		{name: "two values", in: `{"name":"a"} {"name":"b"}`, wantErr: "more than one value"},
		{name: "empty", in: ``, wantErr: "empty"},
		{name: "invalid utf-8", in: "{\"name\":\"\xff\"}", wantErr: "UTF-8"},
		{name: "too large", in: `{"name":"` + strings.Repeat("a", 100) + `"}`, limit: 50, wantErr: "exceeds 50 bytes"},
		{name: "too deep", in: strings.Repeat("[", 100) + strings.Repeat("]", 100), wantErr: "deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 20
			}
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.in))
			var v body
			err := Decode(httptest.NewRecorder(), r, limit, &v)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Decode(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
			if fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("ErrorCode = %v, want invalid", fault.ErrorCode(err))
			}
		})
	}
}

func TestQuoteTruncates(t *testing.T) {
	long := strings.Repeat("é", 1000)
	q := Quote(long)
	if len(q) > MaxEcho+10 {
		t.Errorf("Quote of %d bytes gave %d bytes", len(long), len(q))
	}
}

func TestTooLargeBodyIsAnswered413(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 1000)))
	w := httptest.NewRecorder()
	var v map[string]any
	err := Decode(w, r, 10, &v)
	Error(w, err)
	if w.Code != 413 || !strings.Contains(w.Body.String(), "exceeds 10 bytes") || strings.Contains(w.Body.String(), "xxxx") {
		t.Errorf("Error(too large) = %d %s, want 413 naming the limit", w.Code, w.Body.String())
	}
	if msg := fault.ErrorMessage(err); strings.HasSuffix(msg, ": ") {
		t.Errorf("message %q ends with an empty cause", msg)
	}
}
